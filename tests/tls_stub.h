/*
 * tls_stub.h - an HTTPS peer for tests and benchmarks: a CA and a server
 * certificate made in memory (OpenSSL, EC P-256, nothing on disk unless
 * asked), and an evhttp server on 127.0.0.1 whose connections are
 * bufferevent_openssl ones.  Used by tests/unit/server/test_net_curl.c and
 * bench/provider_bench.c, which #include tls_stub.c (one translation unit
 * each, no library).  Test code: errors return -1, never abort.
 */
#ifndef SOKO_TLS_STUB_H
#define SOKO_TLS_STUB_H

#include <openssl/ssl.h>
#include <openssl/x509.h>

struct event_base;
struct evhttp;
struct evhttp_request;

struct tls_ca {
	EVP_PKEY *key;
	X509 *cert;
};

/* A self-signed CA named cn.  0 or -1. */
int tls_ca_make(struct tls_ca *ca, const char *cn);
void tls_ca_fini(struct tls_ca *ca);
/* Writes the CA certificate as PEM to path.  0 or -1. */
int tls_ca_write_pem(const struct tls_ca *ca, const char *path);
/* A server SSL_CTX (TLS 1.2+) with a fresh key and a certificate signed by
 * ca whose subjectAltName is san (e.g. "IP:127.0.0.1,DNS:localhost").
 * NULL on failure; caller frees with SSL_CTX_free(). */
SSL_CTX *tls_server_ctx(const struct tls_ca *ca, const char *san);

struct tls_srv {
	struct evhttp *http;
	SSL_CTX *ctx; /* borrowed */
	int port;
	int n_accepts; /* TLS connections accepted */
};

/* Starts an HTTPS evhttp server on 127.0.0.1:port (0: any) answering
 * every request with cb.  0 or -1. */
int tls_srv_start(struct tls_srv *s, struct event_base *base, SSL_CTX *ctx,
                  int port, void (*cb)(struct evhttp_request *, void *),
                  void *arg);
void tls_srv_stop(struct tls_srv *s);

#endif
