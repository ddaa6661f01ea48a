/*
 * tls_stub.c - in-memory CA, server certificates and an HTTPS evhttp
 * server for tests and benchmarks (tls_stub.h).
 */
#include "tls_stub.h"

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/util.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

static long tls_serial = 1;

static int
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int rc;

	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value)) == NULL)
		return -1;
	rc = X509_add_ext(x, ext, -1) == 1 ? 0 : -1;
	X509_EXTENSION_free(ext);
	return rc;
}

/* A certificate for key, named cn, signed by issuer (NULL: self). */
static X509 *
make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
          const char *san)
{
	X509 *x = X509_new();
	X509_NAME *name;

	if (x == NULL)
		return NULL;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), tls_serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 7L * 86400);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	                           (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer)
	                                       : name);
	if (issuer == NULL) {
		if (add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") ||
		    add_ext(x, x, NID_key_usage,
		            "critical,keyCertSign,cRLSign") ||
		    add_ext(x, x, NID_subject_key_identifier, "hash"))
			goto fail;
	} else {
		if (add_ext(x, issuer, NID_basic_constraints, "CA:FALSE") ||
		    add_ext(x, issuer, NID_ext_key_usage, "serverAuth") ||
		    add_ext(x, issuer, NID_subject_alt_name, san) ||
		    add_ext(x, issuer, NID_authority_key_identifier, "keyid"))
			goto fail;
	}
	if (X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha256()) ==
	    0)
		goto fail;
	return x;
fail:
	X509_free(x);
	return NULL;
}

int
tls_ca_make(struct tls_ca *ca, const char *cn)
{
	ca->cert = NULL;
	if ((ca->key = EVP_EC_gen("P-256")) == NULL)
		return -1;
	if ((ca->cert = make_cert(ca->key, cn, NULL, NULL, NULL)) == NULL) {
		EVP_PKEY_free(ca->key);
		ca->key = NULL;
		return -1;
	}
	return 0;
}

void
tls_ca_fini(struct tls_ca *ca)
{
	X509_free(ca->cert);
	EVP_PKEY_free(ca->key);
	ca->cert = NULL;
	ca->key = NULL;
}

int
tls_ca_write_pem(const struct tls_ca *ca, const char *path)
{
	FILE *f = fopen(path, "w");
	int rc;

	if (f == NULL)
		return -1;
	rc = PEM_write_X509(f, ca->cert) == 1 ? 0 : -1;
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

SSL_CTX *
tls_server_ctx(const struct tls_ca *ca, const char *san)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert = NULL;
	SSL_CTX *ctx = NULL;

	if (key == NULL)
		return NULL;
	if ((cert = make_cert(key, "soko test server", ca->cert, ca->key,
	                      san)) == NULL)
		goto out;
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL)
		goto out;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, key) != 1) {
		SSL_CTX_free(ctx);
		ctx = NULL;
	}
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	return ctx;
}

static struct bufferevent *
tls_bevcb(struct event_base *base, void *arg)
{
	struct tls_srv *s = arg;
	SSL *ssl = SSL_new(s->ctx);
	struct bufferevent *bev;

	if (ssl == NULL)
		return NULL;
	s->n_accepts++;
	bev = bufferevent_openssl_socket_new(
	    base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev != NULL)
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

int
tls_srv_start(struct tls_srv *s, struct event_base *base, SSL_CTX *ctx,
              int port, void (*cb)(struct evhttp_request *, void *), void *arg)
{
	struct evhttp_bound_socket *h;
	struct sockaddr_in sin;
	socklen_t sl = sizeof sin;

	memset(s, 0, sizeof *s);
	s->ctx = ctx;
	if ((s->http = evhttp_new(base)) == NULL)
		return -1;
	evhttp_set_bevcb(s->http, tls_bevcb, s);
	evhttp_set_gencb(s->http, cb, arg);
	evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	                                        EVHTTP_REQ_PUT);
	h = evhttp_bind_socket_with_handle(s->http, "127.0.0.1",
	                                   (ev_uint16_t)port);
	if (h == NULL || getsockname(evhttp_bound_socket_get_fd(h),
	                             (struct sockaddr *)&sin, &sl) != 0) {
		evhttp_free(s->http);
		s->http = NULL;
		return -1;
	}
	s->port = ntohs(sin.sin_port);
	return 0;
}

void
tls_srv_stop(struct tls_srv *s)
{
	if (s->http != NULL)
		evhttp_free(s->http);
	s->http = NULL;
}
