/*
 * prov_sig.c - provider signatures, secrets and credentials
 * (docs/providers.md §8).  OpenSSL only; no logging, no globals.
 */
#include "prov_sig.h"

#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "base64.h"

#define SHA512_LEN 64

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool
prov_paystack_sig_ok(const char *secret, const uint8_t *body, size_t len,
                     const char *hex_header)
{
	uint8_t want[SHA512_LEN], got[SHA512_LEN];
	unsigned int n = 0;
	size_t i, klen;
	bool ok;

	if (secret == NULL || (klen = strlen(secret)) == 0 ||
	    hex_header == NULL || strlen(hex_header) != 2 * SHA512_LEN ||
	    (body == NULL && len != 0) || klen > INT32_MAX)
		return false;
	for (i = 0; i < SHA512_LEN; i++) {
		int hi = hexval(hex_header[2 * i]);
		int lo = hexval(hex_header[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		got[i] = (uint8_t)(hi << 4 | lo);
	}
	if (HMAC(EVP_sha512(), secret, (int)klen, body != NULL ? body : got,
	         len, want, &n) == NULL ||
	    n != SHA512_LEN)
		return false;
	ok = CRYPTO_memcmp(want, got, SHA512_LEN) == 0;
	OPENSSL_cleanse(want, sizeof want);
	return ok;
}

/* SHA-256 of s into d; false on an OpenSSL failure. */
static bool
digest(const char *s, uint8_t d[32])
{
	unsigned int n = 0;

	return EVP_Digest(s, strlen(s), d, &n, EVP_sha256(), NULL) == 1 &&
	       n == 32;
}

bool
prov_token_eq(const char *a, const char *b)
{
	uint8_t da[32], db[32];
	bool ok;

	if (a == NULL || b == NULL || a[0] == '\0' || b[0] == '\0')
		return false;
	if (!digest(a, da) || !digest(b, db))
		return false;
	/* Equal digests of different strings would need a SHA-256
	 * collision. */
	ok = CRYPTO_memcmp(da, db, sizeof da) == 0;
	OPENSSL_cleanse(da, sizeof da);
	OPENSSL_cleanse(db, sizeof db);
	return ok;
}

bool
prov_flw_hash_ok(const char *secret_hash, const char *header)
{
	return prov_token_eq(secret_hash, header);
}

/* ---- SecurityCredential ------------------------------------------------ */

/* The public key in a PEM buffer (certificate or public key). */
static EVP_PKEY *
key_from_pem(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = NULL;
	X509 *x = NULL;

	if (b == NULL)
		return NULL;
	if (strstr(pem, "-----BEGIN CERTIFICATE-----") != NULL) {
		x = PEM_read_bio_X509(b, NULL, NULL, NULL);
		if (x != NULL)
			k = X509_get_pubkey(x);
	} else {
		k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
	}
	X509_free(x);
	BIO_free(b);
	return k;
}

/* The public key of a certificate file, PEM or DER. */
static EVP_PKEY *
key_from_file(const char *path, char *err, size_t errlen)
{
	char buf[16384];
	size_t n;
	FILE *f;
	EVP_PKEY *k = NULL;

	if ((f = fopen(path, "rb")) == NULL) {
		snprintf(err, errlen, "cannot open certificate %s", path);
		return NULL;
	}
	n = fread(buf, 1, sizeof buf - 1, f);
	if (!feof(f)) {
		fclose(f);
		snprintf(err, errlen,
		         "certificate %s: unreadable or over %zu "
		         "bytes",
		         path, sizeof buf - 1);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	if (memchr(buf, '\0', n) == NULL && strstr(buf, "-----BEGIN") != NULL) {
		k = key_from_pem(buf);
	} else {
		const unsigned char *p = (const unsigned char *)buf;
		X509 *x = d2i_X509(NULL, &p, (long)n);

		if (x != NULL) {
			k = X509_get_pubkey(x);
			X509_free(x);
		}
	}
	if (k == NULL)
		snprintf(err, errlen, "certificate %s: no public key found",
		         path);
	return k;
}

int
prov_mpesa_security_credential(const char *cert, const char *initiator_password,
                               char *out, size_t outlen, char *err,
                               size_t errlen)
{
	EVP_PKEY *k = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	uint8_t *ct = NULL;
	size_t ctlen = 0, plen, written;
	int rc = -1;

	if (outlen > 0)
		out[0] = '\0';
	if (cert == NULL || cert[0] == '\0') {
		snprintf(err, errlen, "no certificate");
		return -1;
	}
	if (initiator_password == NULL ||
	    (plen = strlen(initiator_password)) == 0) {
		snprintf(err, errlen, "empty initiator password");
		return -1;
	}
	if (strncmp(cert, "-----BEGIN", 10) == 0) {
		if ((k = key_from_pem(cert)) == NULL) {
			snprintf(err, errlen, "certificate PEM: no public key");
			goto out;
		}
	} else if ((k = key_from_file(cert, err, errlen)) == NULL) {
		goto out;
	}
	if (EVP_PKEY_base_id(k) != EVP_PKEY_RSA) {
		snprintf(err, errlen, "certificate key is not RSA");
		goto out;
	}
	if ((ctx = EVP_PKEY_CTX_new(k, NULL)) == NULL ||
	    EVP_PKEY_encrypt_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1 ||
	    EVP_PKEY_encrypt(ctx, NULL, &ctlen,
	                     (const uint8_t *)initiator_password, plen) != 1) {
		snprintf(err, errlen, "RSA setup failed");
		goto out;
	}
	if ((ct = OPENSSL_malloc(ctlen)) == NULL ||
	    EVP_PKEY_encrypt(ctx, ct, &ctlen,
	                     (const uint8_t *)initiator_password, plen) != 1) {
		/* e.g. a password longer than the key allows (k - 11) */
		snprintf(err, errlen, "RSA encryption failed");
		goto out;
	}
	if (base64_encode(out, outlen, ct, ctlen, &written) != CODEC_OK) {
		snprintf(err, errlen, "output buffer: %zu bytes needed",
		         written);
		if (outlen > 0)
			out[0] = '\0';
		goto out;
	}
	rc = 0;
out:
	OPENSSL_free(ct);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(k);
	return rc;
}

/* ---- UUID v4 ------------------------------------------------------------ */

int
prov_uuid4(char out[PROV_UUID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t r[16];
	size_t i, j = 0;

	out[0] = '\0';
	if (RAND_bytes(r, sizeof r) != 1)
		return -1;
	r[6] = (uint8_t)((r[6] & 0x0f) | 0x40); /* version 4 */
	r[8] = (uint8_t)((r[8] & 0x3f) | 0x80); /* variant 10xx */
	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[j++] = '-';
		out[j++] = hex[r[i] >> 4];
		out[j++] = hex[r[i] & 15];
	}
	out[j] = '\0';
	return 0;
}
