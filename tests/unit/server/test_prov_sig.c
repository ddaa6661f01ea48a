/*
 * test_prov_sig.c - unit tests for server/prov_sig.c: Paystack's webhook
 * HMAC-SHA512 against vectors computed independently with the openssl
 * command line, the constant-time secret comparisons, the M-Pesa
 * SecurityCredential decrypted back with an RSA key generated here, and
 * the UUID v4 form.
 */
#include "prov_sig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "base64.h"
#include "check.h"
#include "prov_momo.h"

/* The body and key of reference/wire-formats.md §5.4.  Expected value made
 * with:
 *   printf '%s' '<body>' | openssl dgst -sha512 -hmac sk_test_simulator
 * (it also equals the vector printed in wire-formats.md). */
static const char ps_body1[] = "{\"event\":\"charge.success\",\"data\":{"
			       "\"reference\":\"T123\",\"status\":\"success\","
			       "\"amount\":10000}}";
static const char ps_sig1[] =
    "230b81f5aec3974eafe87c3e0689e1abdd76d2ffe72abfd20bbdacc50540e130"
    "2841976483d63ecf59821da11f4624df265bbee33f8cf8f426e8c63e8be05275";

/* A second vector, made with:
 *   printf '%s' '<body>' | openssl dgst -sha512 -hmac \
 *       'sk_test_0123456789abcdef' */
static const char ps_body2[] =
    "{\"event\":\"charge.failed\",\"data\":{\"reference\":\"soko-42\","
    "\"status\":\"failed\",\"amount\":2500,\"currency\":\"GHS\","
    "\"gateway_response\":\"Declined\"}}";
static const char ps_sig2[] =
    "bdf3ae1cf21921391c013302dc55c60f30ecdcab32f6d03dc5d6935c797d38aa"
    "b393c686f60512126114fa34443ea53b43228fb40b9af2f965403c6e089e7063";

static void
test_paystack_sig(void)
{
	char sig[160], body[256];
	size_t i;

	CHECK(prov_paystack_sig_ok("sk_test_simulator",
	                           (const uint8_t *)ps_body1, strlen(ps_body1),
	                           ps_sig1));
	CHECK(prov_paystack_sig_ok("sk_test_0123456789abcdef",
	                           (const uint8_t *)ps_body2, strlen(ps_body2),
	                           ps_sig2));
	/* Upper-case hex is the same digest. */
	for (i = 0; i <= strlen(ps_sig1); i++)
		sig[i] = (char)(ps_sig1[i] >= 'a' && ps_sig1[i] <= 'f'
		                    ? ps_sig1[i] - 'a' + 'A'
		                    : ps_sig1[i]);
	CHECK(prov_paystack_sig_ok("sk_test_simulator",
	                           (const uint8_t *)ps_body1, strlen(ps_body1),
	                           sig));
	/* Wrong key, one body byte changed, one digest nibble changed. */
	CHECK(!prov_paystack_sig_ok("sk_test_simulatoR",
	                            (const uint8_t *)ps_body1, strlen(ps_body1),
	                            ps_sig1));
	memcpy(body, ps_body1, sizeof ps_body1);
	body[strlen(body) - 3] = '1';
	CHECK(!prov_paystack_sig_ok("sk_test_simulator", (const uint8_t *)body,
	                            strlen(body), ps_sig1));
	CHECK(!prov_paystack_sig_ok("sk_test_simulator",
	                            (const uint8_t *)ps_body1,
	                            strlen(ps_body1) - 1, ps_sig1));
	memcpy(sig, ps_sig1, sizeof ps_sig1);
	sig[127] = sig[127] == '5' ? '6' : '5';
	CHECK(!prov_paystack_sig_ok("sk_test_simulator",
	                            (const uint8_t *)ps_body1, strlen(ps_body1),
	                            sig));
	/* Wrong lengths, non-hex, empty or missing secret. */
	memcpy(sig, ps_sig1, sizeof ps_sig1);
	sig[127] = '\0';
	CHECK(!prov_paystack_sig_ok("sk_test_simulator",
	                            (const uint8_t *)ps_body1, strlen(ps_body1),
	                            sig));
	snprintf(sig, sizeof sig, "%s0", ps_sig1);
	CHECK(!prov_paystack_sig_ok("sk_test_simulator",
	                            (const uint8_t *)ps_body1, strlen(ps_body1),
	                            sig));
	memcpy(sig, ps_sig1, sizeof ps_sig1);
	sig[10] = 'g';
	CHECK(!prov_paystack_sig_ok("sk_test_simulator",
	                            (const uint8_t *)ps_body1, strlen(ps_body1),
	                            sig));
	sig[10] = ' ';
	CHECK(!prov_paystack_sig_ok("sk_test_simulator",
	                            (const uint8_t *)ps_body1, strlen(ps_body1),
	                            sig));
	CHECK(!prov_paystack_sig_ok("", (const uint8_t *)ps_body1,
	                            strlen(ps_body1), ps_sig1));
	CHECK(!prov_paystack_sig_ok(NULL, (const uint8_t *)ps_body1,
	                            strlen(ps_body1), ps_sig1));
	CHECK(!prov_paystack_sig_ok("sk_test_simulator",
	                            (const uint8_t *)ps_body1, strlen(ps_body1),
	                            NULL));
	CHECK(!prov_paystack_sig_ok("sk_test_simulator",
	                            (const uint8_t *)ps_body1, strlen(ps_body1),
	                            ""));
	/* An empty body still has a signature; all zeros is not it. */
	memset(sig, '0', 128);
	sig[128] = '\0';
	CHECK(!prov_paystack_sig_ok("k", (const uint8_t *)"", 0, sig));
}

static void
test_secrets(void)
{
	CHECK(prov_flw_hash_ok("my-secret-hash", "my-secret-hash"));
	CHECK(!prov_flw_hash_ok("my-secret-hash", "my-secret-hasH"));
	CHECK(!prov_flw_hash_ok("my-secret-hash", "my-secret-has"));
	CHECK(!prov_flw_hash_ok("my-secret-hash", "my-secret-hash "));
	CHECK(!prov_flw_hash_ok("my-secret-hash", ""));
	CHECK(!prov_flw_hash_ok("my-secret-hash", NULL));
	/* An unset secret never accepts, not even an empty header. */
	CHECK(!prov_flw_hash_ok("", ""));
	CHECK(!prov_flw_hash_ok(NULL, "x"));
	CHECK(prov_token_eq("Zq3x9-AbC", "Zq3x9-AbC"));
	CHECK(!prov_token_eq("Zq3x9-AbC", "zq3x9-AbC"));
	CHECK(!prov_token_eq("Zq3x9-AbC", "Zq3x9-AbC\n"));
	CHECK(!prov_token_eq("", ""));
	CHECK(!prov_token_eq(NULL, NULL));
}

static void
test_uuid4(void)
{
	char a[PROV_UUID_LEN + 1], b[PROV_UUID_LEN + 1];
	int i;

	for (i = 0; i < 200; i++) {
		CHECK(prov_uuid4(a) == 0);
		CHECK_EQ_INT(strlen(a), 36);
		CHECK(momo_reference_id_ok(a));
		CHECK(a[14] == '4');
		CHECK(strchr("89ab", a[19]) != NULL);
		CHECK(strspn(a, "0123456789abcdef-") == 36);
	}
	CHECK(prov_uuid4(b) == 0);
	CHECK(strcmp(a, b) != 0);
}

/* ---- SecurityCredential ------------------------------------------------ */

static EVP_PKEY *
gen_key(void)
{
	EVP_PKEY *k = NULL;
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, NULL);

	if (c == NULL || EVP_PKEY_keygen_init(c) != 1 ||
	    EVP_PKEY_CTX_set_rsa_keygen_bits(c, 2048) != 1 ||
	    EVP_PKEY_keygen(c, &k) != 1)
		k = NULL;
	EVP_PKEY_CTX_free(c);
	return k;
}

/* A self-signed certificate for k, as PEM (malloc'd) and DER. */
static char *
cert_pem(EVP_PKEY *k, unsigned char **der, int *der_len)
{
	X509 *x = X509_new();
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *out = NULL;
	long n;

	if (x == NULL || b == NULL)
		goto done;
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	                           (const unsigned char *)"soko test", -1, -1,
	                           0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	if (X509_sign(x, k, EVP_sha256()) == 0 || !PEM_write_bio_X509(b, x))
		goto done;
	n = BIO_get_mem_data(b, &p);
	out = malloc((size_t)n + 1);
	memcpy(out, p, (size_t)n);
	out[n] = '\0';
	*der = NULL;
	*der_len = i2d_X509(x, der);
done:
	BIO_free(b);
	X509_free(x);
	return out;
}

/* Decrypts the base64 credential with k; the plaintext into pt. */
static int
decrypt(EVP_PKEY *k, const char *b64, char *pt, size_t cap)
{
	uint8_t ct[512];
	size_t n, ptlen = cap - 1;
	const char *why;
	EVP_PKEY_CTX *c;
	int rc = -1;

	if (base64_decode(ct, sizeof ct, b64, strlen(b64), &n, &why) !=
	    CODEC_OK)
		return -1;
	if (n != 256)
		return -1;
	c = EVP_PKEY_CTX_new(k, NULL);
	if (c != NULL && EVP_PKEY_decrypt_init(c) == 1 &&
	    EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) == 1 &&
	    EVP_PKEY_decrypt(c, (uint8_t *)pt, &ptlen, ct, n) == 1) {
		pt[ptlen] = '\0';
		rc = 0;
	}
	EVP_PKEY_CTX_free(c);
	return rc;
}

static void
test_security_credential(void)
{
	EVP_PKEY *k = gen_key(), *other = gen_key();
	unsigned char *der = NULL;
	int der_len = 0;
	char *pem, out[400], out2[400], pt[300], err[200];
	char path[] = "/tmp/soko_test_certXXXXXX";
	char derpath[] = "/tmp/soko_test_derXXXXXX";
	char pub[4096];
	int fd;

	CHECK(k != NULL && other != NULL);
	if (k == NULL || other == NULL)
		return;
	pem = cert_pem(k, &der, &der_len);
	CHECK(pem != NULL && der_len > 0);
	if (pem == NULL)
		return;

	/* PEM buffer: decrypts back to the raw password. */
	CHECK(prov_mpesa_security_credential(pem, "Safaricom999!*!", out,
	                                     sizeof out, err, sizeof err) == 0);
	CHECK_EQ_INT(strlen(out), 344);
	CHECK(decrypt(k, out, pt, sizeof pt) == 0);
	CHECK_EQ_STR(pt, "Safaricom999!*!");
	CHECK(decrypt(other, out, pt, sizeof pt) != 0);
	/* Randomized padding: a second call differs and also decrypts. */
	CHECK(prov_mpesa_security_credential(pem, "Safaricom999!*!", out2,
	                                     sizeof out2, err,
	                                     sizeof err) == 0);
	CHECK(strcmp(out, out2) != 0);
	CHECK(decrypt(k, out2, pt, sizeof pt) == 0);
	CHECK_EQ_STR(pt, "Safaricom999!*!");

	/* A PEM file path and a DER file path. */
	fd = mkstemp(path);
	CHECK(fd >= 0);
	CHECK(write(fd, pem, strlen(pem)) == (ssize_t)strlen(pem));
	close(fd);
	CHECK(prov_mpesa_security_credential(path, "pw-file", out, sizeof out,
	                                     err, sizeof err) == 0);
	CHECK(decrypt(k, out, pt, sizeof pt) == 0);
	CHECK_EQ_STR(pt, "pw-file");
	fd = mkstemp(derpath);
	CHECK(fd >= 0);
	CHECK(write(fd, der, (size_t)der_len) == der_len);
	close(fd);
	CHECK(prov_mpesa_security_credential(derpath, "pw-der", out, sizeof out,
	                                     err, sizeof err) == 0);
	CHECK(decrypt(k, out, pt, sizeof pt) == 0);
	CHECK_EQ_STR(pt, "pw-der");

	/* A PUBLIC KEY PEM works too. */
	{
		BIO *b = BIO_new(BIO_s_mem());
		char *p;
		long n;

		PEM_write_bio_PUBKEY(b, k);
		n = BIO_get_mem_data(b, &p);
		memcpy(pub, p, (size_t)n);
		pub[n] = '\0';
		BIO_free(b);
	}
	CHECK(prov_mpesa_security_credential(pub, "pw-pub", out, sizeof out,
	                                     err, sizeof err) == 0);
	CHECK(decrypt(k, out, pt, sizeof pt) == 0);
	CHECK_EQ_STR(pt, "pw-pub");

	/* Errors: small buffer, empty password, a password over k - 11
	 * bytes, missing file, garbage PEM. */
	CHECK(prov_mpesa_security_credential(pem, "pw", out, 100, err,
	                                     sizeof err) == -1);
	CHECK(strstr(err, "345") != NULL);
	CHECK_EQ_STR(out, "");
	CHECK(prov_mpesa_security_credential(pem, "", out, sizeof out, err,
	                                     sizeof err) == -1);
	{
		char big[300];

		memset(big, 'p', 250);
		big[250] = '\0';
		CHECK(prov_mpesa_security_credential(pem, big, out, sizeof out,
		                                     err, sizeof err) == -1);
		CHECK(strstr(err, "pppp") == NULL);
	}
	CHECK(prov_mpesa_security_credential("/nonexistent/cert.cer", "pw", out,
	                                     sizeof out, err,
	                                     sizeof err) == -1);
	CHECK(strstr(err, "cannot open") != NULL);
	CHECK(prov_mpesa_security_credential(
		  "-----BEGIN CERTIFICATE-----\nAAAA\n-----END "
	          "CERTIFICATE-----\n",
		  "pw", out, sizeof out, err, sizeof err) == -1);
	CHECK(prov_mpesa_security_credential(NULL, "pw", out, sizeof out, err,
	                                     sizeof err) == -1);

	unlink(path);
	unlink(derpath);
	OPENSSL_free(der);
	free(pem);
	EVP_PKEY_free(k);
	EVP_PKEY_free(other);
}

int
main(void)
{
	RUN(test_paystack_sig);
	RUN(test_secrets);
	RUN(test_uuid4);
	RUN(test_security_credential);
	return check_report("prov_sig");
}
