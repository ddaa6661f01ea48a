/*
 * keywrap.h - terminal keys at rest: K_t wrapped with AES-256-GCM under a
 * key-encryption key (KEK) read from the file named by pos_kek_file
 * (docs/configuration.md, docs/operations.md §POS terminals).
 *
 * Wrapped form (STORE_KEY_WRAPPED_LEN = 60 bytes): a fresh 12-byte nonce,
 * the 32-byte ciphertext, the 16-byte tag.  The additional data is
 * "soko-pos-kt-v1:" || terminal id, so a wrapped key copied onto another
 * terminal's row does not unwrap.  OpenSSL EVP only; never logs.
 */
#ifndef SOKO_KEYWRAP_H
#define SOKO_KEYWRAP_H

#include <stddef.h>
#include <stdint.h>

#define KEYWRAP_KEY_LEN     32
#define KEYWRAP_WRAPPED_LEN 60

/* Reads the KEK: the first line of path, exactly 64 hex digits.  Returns 0,
 * or -1 with a reason in err (which never holds key material). */
int keywrap_load_kek(uint8_t kek[KEYWRAP_KEY_LEN], const char *path, char *err,
                     size_t errlen);

/* Wraps key for terminal id (borrowed).  Returns 0 or -1 (OpenSSL or the
 * random source failed). */
int keywrap_wrap(uint8_t out[KEYWRAP_WRAPPED_LEN],
                 const uint8_t kek[KEYWRAP_KEY_LEN],
                 const uint8_t key[KEYWRAP_KEY_LEN], const char *id);

/* Unwraps into key.  Returns 0, or -1 (wrong KEK, wrong terminal id,
 * damaged row): key is then zeroed. */
int keywrap_unwrap(uint8_t key[KEYWRAP_KEY_LEN],
                   const uint8_t kek[KEYWRAP_KEY_LEN],
                   const uint8_t in[KEYWRAP_WRAPPED_LEN], const char *id);

#endif
