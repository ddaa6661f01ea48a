/*
 * sha256.h - SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), pure C17.
 *
 * Layer: protocols/ (STYLE.md §1).  POS firmware cannot assume OpenSSL, so
 * the POS codec (docs/pos-protocol.md §4) MACs frames with this one and
 * both ends of the wire share the code.  No I/O, no allocation, no globals
 * but the constant round table and, on x86, whether the CPU has the SHA
 * extensions (sha256_use_hw).  Not hardened against cache-timing on the
 * message (SHA-256 has no secret-dependent table lookups anyway); MAC
 * comparison goes through sha256_equal(), which takes constant time.
 */
#ifndef SOKO_SHA256_H
#define SOKO_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN   32 /* digest, bytes */
#define SHA256_BLOCK 64 /* block, bytes */

/* Streaming state; caller storage, no _fini needed (plain bytes). */
struct sha256_ctx {
	uint32_t h[8];
	uint64_t n_bytes;            /* total bytes hashed so far */
	uint8_t block[SHA256_BLOCK]; /* pending partial block */
	size_t block_len;            /* bytes pending in block */
};

/* HMAC state: the inner hash in progress and the outer hash keyed with
 * K ^ opad.  Holds key-derived material: sha256_hmac_final() wipes it. */
struct sha256_hmac_ctx {
	struct sha256_ctx inner;
	struct sha256_ctx outer;
};

/* HMAC key schedule: the inner and outer hash states after the key's
 * ipad and opad blocks.  The same for every message under one key, so a
 * session computes it once (sha256_hmac_key_init) and each MAC then costs
 * two compressions less (a POS frame: 3 instead of 5).  Key-derived
 * material: wipe it with sha256_wipe() when the key goes. */
struct sha256_hmac_key {
	uint32_t ih[8];
	uint32_t oh[8];
};

void sha256_init(struct sha256_ctx *c);
/* Hashes len bytes of data (data may be NULL when len is 0). */
void sha256_update(struct sha256_ctx *c, const void *data, size_t len);
/* Writes the digest to out and wipes *c; re-init before reuse. */
void sha256_final(struct sha256_ctx *c, uint8_t out[SHA256_LEN]);
/* One-shot SHA-256 of len bytes of data. */
void sha256_digest(uint8_t out[SHA256_LEN], const void *data, size_t len);

/* HMAC-SHA256 with a key of any length (hashed first when over 64 bytes,
 * as RFC 2104 says).  Borrows key only for the duration of the call. */
void sha256_hmac_init(struct sha256_hmac_ctx *c, const uint8_t *key,
                      size_t key_len);
void sha256_hmac_update(struct sha256_hmac_ctx *c, const void *data,
                        size_t len);
/* Writes the full 32-byte tag to out and wipes *c. */
void sha256_hmac_final(struct sha256_hmac_ctx *c, uint8_t out[SHA256_LEN]);
void sha256_hmac(uint8_t out[SHA256_LEN], const uint8_t *key, size_t key_len,
                 const void *data, size_t len);

/* The schedule of key (any length, as sha256_hmac_init). */
void sha256_hmac_key_init(struct sha256_hmac_key *k, const uint8_t *key,
                          size_t key_len);
/* sha256_hmac_init() from a schedule: the same MACs as with its key. */
void sha256_hmac_init_key(struct sha256_hmac_ctx *c,
                          const struct sha256_hmac_key *k);
/* One-shot HMAC-SHA256 of len bytes of data under schedule k. */
void sha256_hmac_keyed(uint8_t out[SHA256_LEN],
                       const struct sha256_hmac_key *k, const void *data,
                       size_t len);

/* The x86 SHA extensions are used when the CPU has them (CPUID, read
 * once at load); elsewhere, and when off, portable C.  Tests and
 * benchmarks compare the two: on false turns them off, true back on if
 * the CPU has them.  Returns whether they are used now.  Not to be
 * called while another thread hashes. */
bool sha256_use_hw(bool on);

/* true iff the len bytes at a and b are equal; the time taken depends on
 * len only, never on where they differ (libsodium sodium_memcmp). */
bool sha256_equal(const void *a, const void *b, size_t len);

/* Overwrites len bytes at p with zeros through a volatile pointer, so the
 * compiler cannot drop it (protocols/ has no explicit_bzero: no POSIX). */
void sha256_wipe(void *p, size_t len);

#endif
