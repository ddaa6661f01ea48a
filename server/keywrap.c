/*
 * keywrap.c - AES-256-GCM wrapping of terminal keys (keywrap.h).
 */
#include "keywrap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "config.h"

#define NONCE_LEN 12
#define TAG_LEN   16
#define AAD_TAG   "soko-pos-kt-v1:"

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
keywrap_load_kek(uint8_t kek[KEYWRAP_KEY_LEN], const char *path, char *err,
                 size_t errlen)
{
	char *hex;
	int bad = 0, rc = -1;
	size_t i;

	if (path == NULL || path[0] == '\0') {
		snprintf(err, errlen, "pos_kek_file is not set");
		return -1;
	}
	if ((hex = config_secret(path, NULL, &bad, err, errlen)) == NULL) {
		if (!bad)
			snprintf(err, errlen, "%s: empty", path);
		return -1;
	}
	if (strlen(hex) != 2 * KEYWRAP_KEY_LEN) {
		snprintf(err, errlen, "%s: want 64 hex digits (32 bytes)",
		         path);
		goto out;
	}
	for (i = 0; i < KEYWRAP_KEY_LEN; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			snprintf(err, errlen, "%s: not hex", path);
			explicit_bzero(kek, KEYWRAP_KEY_LEN);
			goto out;
		}
		kek[i] = (uint8_t)(hi << 4 | lo);
	}
	rc = 0;
out:
	explicit_bzero(hex, strlen(hex));
	free(hex);
	return rc;
}

/* One GCM pass: encrypt (enc = 1) or decrypt and check the tag (enc = 0).
 * in and out are KEYWRAP_KEY_LEN bytes. */
static int
gcm(int enc, const uint8_t kek[KEYWRAP_KEY_LEN], const uint8_t *nonce,
    const char *id, const uint8_t *in, uint8_t *out, uint8_t *tag)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0, rc = -1;

	if (ctx == NULL)
		return -1;
	if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) !=
	        1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) !=
	        1 ||
	    EVP_CipherInit_ex(ctx, NULL, NULL, kek, nonce, enc) != 1 ||
	    EVP_CipherUpdate(ctx, NULL, &n, (const uint8_t *)AAD_TAG,
	                     (int)strlen(AAD_TAG)) != 1 ||
	    EVP_CipherUpdate(ctx, NULL, &n, (const uint8_t *)id,
	                     (int)strlen(id)) != 1 ||
	    EVP_CipherUpdate(ctx, out, &n, in, KEYWRAP_KEY_LEN) != 1 ||
	    n != KEYWRAP_KEY_LEN)
		goto out;
	if (!enc &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1)
		goto out;
	if (EVP_CipherFinal_ex(ctx, out + n, &n) != 1)
		goto out; /* decrypt: the tag did not verify */
	if (enc &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1)
		goto out;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

int
keywrap_wrap(uint8_t out[KEYWRAP_WRAPPED_LEN],
             const uint8_t kek[KEYWRAP_KEY_LEN],
             const uint8_t key[KEYWRAP_KEY_LEN], const char *id)
{
	if (RAND_bytes(out, NONCE_LEN) != 1)
		return -1;
	return gcm(1, kek, out, id, key, out + NONCE_LEN,
	           out + NONCE_LEN + KEYWRAP_KEY_LEN);
}

int
keywrap_unwrap(uint8_t key[KEYWRAP_KEY_LEN], const uint8_t kek[KEYWRAP_KEY_LEN],
               const uint8_t in[KEYWRAP_WRAPPED_LEN], const char *id)
{
	uint8_t tag[TAG_LEN];

	memcpy(tag, in + NONCE_LEN + KEYWRAP_KEY_LEN, TAG_LEN);
	if (gcm(0, kek, in, id, in + NONCE_LEN, key, tag) != 0) {
		explicit_bzero(key, KEYWRAP_KEY_LEN);
		return -1;
	}
	return 0;
}
