/*
 * io_tls.c - optional TLS for libsokoterm's POSIX helper: an OpenSSL
 * client over the socket sokoterm_posix_connect() opened
 * (docs/pos-protocol.md §4.6, terminal/README.md).
 *
 * Layer: terminal/ (STYLE.md §1), like io_posix.c: the engine
 * (sokoterm.c) stays I/O-free and knows nothing of TLS; this file only
 * moves the engine's outbox and inbox bytes through SSL_write/SSL_read.
 * Built into its own archive, libsokoterm_tls.a, so libsokoterm.a still
 * links without OpenSSL.  No global state: each session has its own
 * SSL_CTX.  Never prints; reasons go to the caller's buffer.
 *
 * Always verifies: the chain against the caller's CA file, the name
 * (DNS, or an IP address literal) against the certificate, TLS 1.2 or
 * later.
 */
#include "sokoterm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct sokoterm_tls {
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;
};

static void
set_why(char *why, size_t cap, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char r[160] = "";

	if (why == NULL || cap == 0)
		return;
	if (e != 0)
		ERR_error_string_n(e, r, sizeof r);
	snprintf(why, cap, "%s%s%s", what, r[0] ? ": " : "", r);
	ERR_clear_error();
}

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		return 0;
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void
sokoterm_tls_close(struct sokoterm_tls *s)
{
	if (s == NULL)
		return;
	if (s->ssl != NULL) {
		/* best effort: the socket is non-blocking here, so a full
		 * send buffer drops close_notify instead of waiting */
		int flags = fcntl(s->fd, F_GETFL);

		if (flags != -1 &&
		    fcntl(s->fd, F_SETFL, flags | O_NONBLOCK) != -1) {
			(void)SSL_shutdown(s->ssl);
			(void)fcntl(s->fd, F_SETFL, flags);
		}
		SSL_free(s->ssl);
	}
	SSL_CTX_free(s->ctx);
	ERR_clear_error();
	free(s);
}

/* The handshake on a non-blocking fd, polling until deadline. */
static enum sokoterm_err
handshake(struct sokoterm_tls *s, uint32_t timeout_ms, char *why, size_t cap)
{
	uint64_t deadline = mono_ms() + timeout_ms;

	for (;;) {
		struct pollfd pfd;
		uint64_t now;
		int rc = SSL_connect(s->ssl), e;

		if (rc == 1)
			return SOKOTERM_OK;
		e = SSL_get_error(s->ssl, rc);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
			long v = SSL_get_verify_result(s->ssl);

			if (v != X509_V_OK) {
				if (why != NULL && cap > 0)
					snprintf(
					    why, cap, "certificate: %s",
					    X509_verify_cert_error_string(v));
				ERR_clear_error();
			} else {
				set_why(why, cap, "handshake");
			}
			return SOKOTERM_ERR_IO;
		}
		now = mono_ms();
		if (now >= deadline) {
			set_why(why, cap, "handshake timed out");
			return SOKOTERM_ERR_IO;
		}
		pfd.fd = s->fd;
		pfd.events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		pfd.revents = 0;
		rc = poll(&pfd, 1, (int)(deadline - now));
		if (rc == -1 && errno != EINTR) {
			set_why(why, cap, "poll");
			return SOKOTERM_ERR_IO;
		}
	}
}

enum sokoterm_err
sokoterm_tls_open(struct sokoterm_tls **out, int fd, const char *host,
                  const char *ca_file, uint32_t timeout_ms, char *why,
                  size_t cap)
{
	struct sokoterm_tls *s;
	unsigned char ip[16];
	bool is_ip;
	enum sokoterm_err e = SOKOTERM_ERR_IO;
	int flags;

	if (why != NULL && cap > 0)
		why[0] = '\0';
	if (out == NULL || fd < 0 || host == NULL || host[0] == '\0' ||
	    ca_file == NULL)
		return SOKOTERM_ERR_ARG;
	*out = NULL;
	if ((s = calloc(1, sizeof *s)) == NULL)
		return SOKOTERM_ERR_NOMEM;
	s->fd = fd;
	is_ip = inet_pton(AF_INET, host, ip) == 1 ||
	        inet_pton(AF_INET6, host, ip) == 1;
	if ((s->ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		set_why(why, cap, "context");
		e = SOKOTERM_ERR_NOMEM;
		goto fail;
	}
	if (SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION) != 1) {
		set_why(why, cap, "min version");
		goto fail;
	}
	SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_load_verify_locations(s->ctx, ca_file, NULL) != 1) {
		set_why(why, cap, "CA file");
		goto fail;
	}
	/* a read that only meets a TLS 1.3 ticket returns instead of
	 * blocking for application data (sokoterm_tls_pump) */
	SSL_CTX_clear_mode(s->ctx, SSL_MODE_AUTO_RETRY);
	if ((s->ssl = SSL_new(s->ctx)) == NULL) {
		set_why(why, cap, "session");
		e = SOKOTERM_ERR_NOMEM;
		goto fail;
	}
	if (is_ip) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl),
		                                  host) != 1) {
			set_why(why, cap, "host");
			goto fail;
		}
	} else if (SSL_set1_host(s->ssl, host) != 1 ||
	           SSL_set_tlsext_host_name(s->ssl, host) != 1) {
		set_why(why, cap, "host");
		goto fail;
	}
	if (SSL_set_fd(s->ssl, fd) != 1) {
		set_why(why, cap, "fd");
		goto fail;
	}
	if ((flags = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1) {
		set_why(why, cap, "fcntl");
		goto fail;
	}
	e = handshake(s, timeout_ms, why, cap);
	if (fcntl(fd, F_SETFL, flags) == -1 && e == SOKOTERM_OK) {
		set_why(why, cap, "fcntl");
		e = SOKOTERM_ERR_IO;
	}
	if (e != SOKOTERM_OK)
		goto fail;
	*out = s;
	return SOKOTERM_OK;
fail:
	if (s->ssl != NULL) {
		SSL_free(s->ssl); /* no close_notify: nothing was agreed */
		s->ssl = NULL;
	}
	sokoterm_tls_close(s);
	return e;
}

enum sokoterm_err
sokoterm_tls_pump(struct sokoterm *t, struct sokoterm_tls *s, uint32_t wait_ms)
{
	uint8_t buf[4096];
	const uint8_t *p;
	size_t len;
	int rc;

	if (t == NULL || s == NULL)
		return SOKOTERM_ERR_ARG;
	sokoterm_outbox(t, &p, &len);
	while (len > 0) {
		int n = SSL_write(s->ssl, p, len > 16384 ? 16384 : (int)len);

		if (n <= 0) {
			int e = SSL_get_error(s->ssl, n);

			if (e == SSL_ERROR_WANT_READ ||
			    e == SSL_ERROR_WANT_WRITE)
				continue; /* blocking socket: retry */
			ERR_clear_error();
			return SOKOTERM_ERR_IO;
		}
		sokoterm_sent(t, (size_t)n);
		sokoterm_outbox(t, &p, &len);
	}
	if (SSL_pending(s->ssl) == 0) {
		struct pollfd pfd;

		pfd.fd = s->fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		rc = poll(&pfd, 1, (int)(wait_ms & 0x7fffffff));
		if (rc == -1 && errno != EINTR)
			return SOKOTERM_ERR_IO;
		if (rc != 1)
			return sokoterm_tick(t, sokoterm_posix_now_ms());
	}
	rc = SSL_read(s->ssl, buf, (int)sizeof buf);
	if (rc > 0) {
		enum sokoterm_err e = sokoterm_feed(t, buf, (size_t)rc);

		if (e != SOKOTERM_OK)
			return e;
	} else {
		int e = SSL_get_error(s->ssl, rc);

		ERR_clear_error();
		/* WANT_READ: a record that was not data (a ticket) or
		 * not complete yet */
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			return SOKOTERM_ERR_IO; /* closed or failed */
	}
	return sokoterm_tick(t, sokoterm_posix_now_ms());
}
