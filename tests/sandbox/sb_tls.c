/*
 * sb_tls.c - soko-sandbox's keys and certificates (OpenSSL 3 C API).
 *
 * With no DIR/ca.pem, makes a throwaway test CA (EC P-256, its key never
 * written anywhere) and a server certificate it signs for IP 127.0.0.1 and
 * DNS localhost, plus a self-signed RSA 2048 certificate standing in for
 * Safaricom's M-Pesa public certificate (SecurityCredential, wire-formats
 * §1.5).  Key files are created with mode 0600.  With DIR/ca.pem present,
 * the existing files are loaded instead, so several runs share one CA.
 *
 *   DIR/ca.pem  DIR/server.pem  DIR/server.key
 *   DIR/mpesa_cert.pem (public, for sokod)  DIR/mpesa_key.pem (private)
 */
#include "sb.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static void
ssl_err(char *err, size_t errlen, const char *what)
{
	char buf[256];
	unsigned long e = ERR_get_error();

	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s: %s", what, e ? buf : "failed");
	ERR_clear_error();
}

static int
add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ex;
	int rc;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ex == NULL)
		return -1;
	rc = X509_add_ext(cert, ex, -1) == 1 ? 0 : -1;
	X509_EXTENSION_free(ex);
	return rc;
}

/* A certificate for key, named cn, signed by (issuer, issuer_key), or
 * self-signed when issuer is NULL.  Caller frees. */
static X509 *
make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
          bool is_ca, const char *san)
{
	X509 *c = X509_new();
	uint8_t serial[16];
	BIGNUM *bn = NULL;
	X509_NAME *name;

	if (c == NULL)
		return NULL;
	if (RAND_bytes(serial, sizeof(serial)) != 1)
		goto fail;
	serial[0] &= 0x7f; /* positive */
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (bn == NULL ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c)) == NULL)
		goto fail;
	if (X509_set_version(c, 2) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(c), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(c), 3650L * 86400) == NULL ||
	    X509_set_pubkey(c, key) != 1)
		goto fail;
	name = X509_get_subject_name(c);
	if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
	                               (const unsigned char *)"soko-sandbox",
	                               -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	                               (const unsigned char *)cn, -1, -1,
	                               0) != 1)
		goto fail;
	if (X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer)
	                                   : name) != 1)
		goto fail;
	if (add_ext(c, issuer ? issuer : c, NID_subject_key_identifier,
	            "hash") != 0 ||
	    add_ext(c, issuer ? issuer : c, NID_authority_key_identifier,
	            "keyid:always") != 0)
		goto fail;
	if (is_ca) {
		if (add_ext(c, c, NID_basic_constraints, "critical,CA:TRUE") ||
		    add_ext(c, c, NID_key_usage,
		            "critical,keyCertSign,cRLSign"))
			goto fail;
	} else {
		if (add_ext(c, issuer ? issuer : c, NID_basic_constraints,
		            "critical,CA:FALSE") ||
		    add_ext(c, issuer ? issuer : c, NID_key_usage,
		            "critical,digitalSignature,keyEncipherment"))
			goto fail;
		if (san != NULL &&
		    (add_ext(c, issuer, NID_subject_alt_name, san) ||
		     add_ext(c, issuer, NID_ext_key_usage, "serverAuth")))
			goto fail;
	}
	if (X509_sign(c, issuer_key ? issuer_key : key, EVP_sha256()) == 0)
		goto fail;
	BN_free(bn);
	return c;
fail:
	BN_free(bn);
	X509_free(c);
	return NULL;
}

/* Writes PEM to path: a key (mode 0600) or a certificate (0644). */
static int
write_pem(const char *path, EVP_PKEY *key, X509 *cert)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	              key ? 0600 : 0644);
	FILE *f;
	int ok;

	if (fd == -1)
		return -1;
	if (key != NULL && fchmod(fd, 0600) != 0) {
		close(fd);
		return -1;
	}
	f = fdopen(fd, "w");
	if (f == NULL) {
		close(fd);
		return -1;
	}
	ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
	         : PEM_write_X509(f, cert);
	if (fclose(f) != 0)
		ok = 0;
	return ok == 1 ? 0 : -1;
}

static int
generate(const char *dir, char *err, size_t errlen)
{
	EVP_PKEY *ca_key = NULL, *srv_key = NULL, *rsa = NULL;
	X509 *ca = NULL, *srv = NULL, *mp = NULL;
	char path[4096];
	int rc = -1;

	ca_key = EVP_EC_gen("P-256");
	srv_key = EVP_EC_gen("P-256");
	rsa = EVP_RSA_gen(2048);
	if (ca_key == NULL || srv_key == NULL || rsa == NULL) {
		ssl_err(err, errlen, "key generation");
		goto out;
	}
	ca = make_cert(ca_key, "soko-sandbox test CA", NULL, NULL, true, NULL);
	srv = ca ? make_cert(srv_key, "localhost", ca, ca_key, false,
	                     "IP:127.0.0.1,DNS:localhost")
	         : NULL;
	mp = make_cert(rsa, "soko-sandbox M-Pesa SecurityCredential", NULL,
	               NULL, false, NULL);
	if (ca == NULL || srv == NULL || mp == NULL) {
		ssl_err(err, errlen, "certificate");
		goto out;
	}
#define W(name, k, c)                                                          \
	do {                                                                   \
		snprintf(path, sizeof(path), "%s/%s", dir, name);              \
		if (write_pem(path, k, c) != 0) {                              \
			snprintf(err, errlen, "%s: %s", path,                  \
			         strerror(errno));                             \
			goto out;                                              \
		}                                                              \
	} while (0)
	W("server.key", srv_key, NULL);
	W("server.pem", NULL, srv);
	W("mpesa_key.pem", rsa, NULL);
	W("mpesa_cert.pem", NULL, mp);
	W("ca.pem", NULL, ca); /* last: its presence means "all written" */
#undef W
	rc = 0;
out:
	X509_free(ca);
	X509_free(srv);
	X509_free(mp);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(srv_key);
	EVP_PKEY_free(rsa);
	return rc;
}

int
sb_tls_init(struct sb *sb, const char *dir, char *err, size_t errlen)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	if (access(path, F_OK) != 0) {
		if (generate(dir, err, errlen) != 0)
			return -1;
		sb_log(sb, SB_LOG_INFO, "event=tls_generated dir=%s", dir);
	}
	sb->server_ctx = SSL_CTX_new(TLS_server_method());
	sb->client_ctx = SSL_CTX_new(TLS_client_method());
	if (sb->server_ctx == NULL || sb->client_ctx == NULL) {
		ssl_err(err, errlen, "SSL_CTX_new");
		return -1;
	}
	SSL_CTX_set_min_proto_version(sb->server_ctx, TLS1_2_VERSION);
	/* keep-alive clients at 10k requests/s: no session tickets needed,
	 * but they are harmless; one connection usually carries everything */
	snprintf(path, sizeof(path), "%s/server.pem", dir);
	if (SSL_CTX_use_certificate_chain_file(sb->server_ctx, path) != 1) {
		ssl_err(err, errlen, path);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/server.key", dir);
	if (SSL_CTX_use_PrivateKey_file(sb->server_ctx, path,
	                                SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(sb->server_ctx) != 1) {
		ssl_err(err, errlen, path);
		return -1;
	}
	/* Callbacks go to sokod's own listener, whose certificate the test
	 * chooses: not verified (README "Deviations"). */
	SSL_CTX_set_verify(sb->client_ctx, SSL_VERIFY_NONE, NULL);
	snprintf(path, sizeof(path), "%s/mpesa_key.pem", dir);
	f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	sb->mpesa_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (sb->mpesa_key == NULL) {
		ssl_err(err, errlen, path);
		return -1;
	}
	if (RAND_bytes(sb->token_key, sizeof(sb->token_key)) != 1) {
		ssl_err(err, errlen, "RAND_bytes");
		return -1;
	}
	return 0;
}

void
sb_tls_fini(struct sb *sb)
{
	SSL_CTX_free(sb->server_ctx);
	SSL_CTX_free(sb->client_ctx);
	EVP_PKEY_free(sb->mpesa_key);
	OPENSSL_cleanse(sb->token_key, sizeof(sb->token_key));
}

bool
sb_tls_credential_ok(struct sb *sb, const char *b64, const char *pw)
{
	uint8_t ct[1024], pt[1024];
	size_t ptlen = sizeof(pt);
	long n;
	EVP_PKEY_CTX *ctx;
	bool ok = false;

	if (strlen(b64) > 4 * sizeof(ct) / 3)
		return false;
	n = sb_unb64(ct, sizeof(ct), b64);
	if (n <= 0)
		return false;
	ctx = EVP_PKEY_CTX_new(sb->mpesa_key, NULL);
	if (ctx == NULL)
		return false;
	if (EVP_PKEY_decrypt_init(ctx) == 1 &&
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
	    EVP_PKEY_decrypt(ctx, pt, &ptlen, ct, (size_t)n) == 1)
		ok = ptlen == strlen(pw) && sb_ct_eq(pt, pw, ptlen);
	ERR_clear_error();
	EVP_PKEY_CTX_free(ctx);
	OPENSSL_cleanse(pt, sizeof(pt));
	return ok;
}

void
sb_hmac512_hex(char *dst, const char *key, const char *body, size_t len)
{
	uint8_t mac[64];
	unsigned int mlen = sizeof(mac);

	if (HMAC(EVP_sha512(), key, (int)strlen(key), (const uint8_t *)body,
	         len, mac, &mlen) == NULL)
		mlen = 0;
	sb_hex(dst, mac, mlen);
}

void
sb_hmac256(uint8_t out[32], const uint8_t *key, size_t klen, const void *msg,
           size_t len)
{
	unsigned int mlen = 32;

	if (HMAC(EVP_sha256(), key, (int)klen, msg, len, out, &mlen) == NULL)
		memset(out, 0, 32);
}

void
sb_sha256_hex(char *dst, const char *s)
{
	uint8_t d[32];

	SHA256((const uint8_t *)s, strlen(s), d);
	sb_hex(dst, d, sizeof(d));
}
