/*
 * prov_sig.h - signatures, shared secrets and credentials of the payment
 * providers (docs/providers.md §8): Paystack's webhook HMAC, Flutterwave's
 * verif-hash, the per-merchant M-Pesa callback URL token, the M-Pesa
 * SecurityCredential (RSA), and MoMo's X-Reference-Id (UUID v4).
 *
 * Layer: server/ (OpenSSL).  No logging, no globals; every function is
 * thread-safe.  Every comparison of a secret is constant time in the
 * secret's content (CRYPTO_memcmp), and a missing or empty configured
 * secret never accepts anything.
 */
#ifndef SOKO_PROV_SIG_H
#define SOKO_PROV_SIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROV_UUID_LEN 36 /* 8-4-4-4-12, without the NUL */

/*
 * Paystack webhook: true iff hex_header (the x-paystack-signature value,
 * NUL-terminated) is hex(HMAC-SHA512(key = secret, msg = body[0..len))),
 * computed over the raw bytes as received.  The header must be exactly
 * 128 hex digits (either case); any other length or a non-hex character
 * is false.  secret: the Paystack secret key, non-empty.
 */
bool prov_paystack_sig_ok(const char *secret, const uint8_t *body, size_t len,
                          const char *hex_header);

/*
 * Flutterwave webhook: true iff header (the verif-hash value) equals the
 * secret hash set in the dashboard.  Both are compared through their
 * SHA-256 digests with CRYPTO_memcmp, so the time taken does not depend
 * on where they differ, nor on the secret's length.  NULL or empty
 * secret_hash: false.
 */
bool prov_flw_hash_ok(const char *secret_hash, const char *header);

/*
 * true iff the NUL-terminated a and b are equal byte for byte, compared
 * as prov_flw_hash_ok() does; false if either is NULL or empty.  For the
 * M-Pesa per-merchant callback URL token and Orange's notif_token.
 */
bool prov_token_eq(const char *a, const char *b);

/*
 * M-Pesa SecurityCredential (reference/wire-formats.md §1.5, CONFIRMED):
 * base64(RSA PKCS#1 v1.5 encryption of the raw initiator password with
 * the public key of Safaricom's certificate).  cert is either a PEM
 * buffer (it starts with "-----BEGIN": an X.509 CERTIFICATE or a PUBLIC
 * KEY) or the path of a PEM or DER certificate file (the .cer from the
 * Daraja portal).  Writes the NUL-terminated base64 into out[0..outlen)
 * (344 characters for a 2048-bit key).  The ciphertext is randomized:
 * two calls give different credentials, both valid.
 * Returns 0, or -1 with a reason in err (never the password).
 */
int prov_mpesa_security_credential(const char *cert,
                                   const char *initiator_password, char *out,
                                   size_t outlen, char *err, size_t errlen);

/*
 * A random UUID version 4 in lower-case 8-4-4-4-12 form, from the CSPRNG
 * (RAND_bytes), for MoMo's X-Reference-Id.  Writes 37 bytes (NUL
 * included).  Returns 0, or -1 if the random source failed (out is then
 * "").
 */
int prov_uuid4(char out[PROV_UUID_LEN + 1]);

#endif
