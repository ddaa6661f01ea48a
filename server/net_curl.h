/*
 * net_curl.h - outbound HTTPS for the provider adapters: one libcurl multi
 * handle driven by the libevent loop (CURLMOPT_SOCKETFUNCTION /
 * TIMERFUNCTION), keep-alive connection pools, a timeout on every call, a
 * bounded number of calls in flight, and a circuit breaker per provider
 * endpoint (docs/providers.md §Outbound calls).
 *
 * Layer: net_* (libevent + libcurl glue).  Everything here runs on the loop
 * thread: ncurl_submit() and the completion callbacks are called there only.
 * Certificate verification is always on (the CA file comes from the
 * config); there is no switch to turn it off.
 */
#ifndef SOKO_NET_CURL_H
#define SOKO_NET_CURL_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct ncurl;

/* How a call ended, from the caller's point of view: what matters for
 * money is whether the provider may have acted on the request. */
enum ncurl_outcome {
	/* an HTTP response arrived (any status: the caller reads it) */
	NCURL_ANSWERED = 0,
	/* the request certainly never reached the provider: connection
	 * refused, DNS failure, TLS handshake failure, breaker open, queue
	 * full, shutdown.  Safe to send again. */
	NCURL_NOT_SENT,
	/* the request may have been delivered but no (complete) answer came:
	 * timeout after connecting, reset, truncated body.  NEVER re-send a
	 * non-idempotent call on this: query its status. */
	NCURL_UNKNOWN,
};

const char *ncurl_outcome_name(enum ncurl_outcome o);

enum ncurl_method { NCURL_GET, NCURL_POST, NCURL_PUT };

#define NCURL_MAX_HEADERS 12

struct ncurl_req {
	enum ncurl_method method;
	const char *url;
	/* "Name: value" lines, copied by ncurl_submit() */
	const char *headers[NCURL_MAX_HEADERS];
	size_t n_headers;
	const char *body; /* copied; NULL for none */
	size_t body_len;
	/* whole-call timeout; 0 = the config's default */
	int timeout_ms;
	/* the circuit breaker this call counts against, e.g.
	 * "mpesa.stkpush"; at most 47 bytes */
	const char *endpoint;
};

struct ncurl_result {
	enum ncurl_outcome outcome;
	long http_status;   /* 0 unless ANSWERED */
	const char *body;   /* response body, valid during the callback */
	size_t body_len;
	const char *errstr; /* static text; "" when ANSWERED */
	int64_t elapsed_us; /* submit to completion */
};

/* Called exactly once per accepted call, on the loop thread, never from
 * inside ncurl_submit(). */
typedef void (*ncurl_done_fn)(void *arg, const struct ncurl_result *r);

struct ncurl_config {
	const char *ca_file;     /* PEM bundle to trust; NULL = system */
	int default_timeout_ms;  /* whole call (default 10000) */
	int connect_timeout_ms;  /* (default 3000) */
	int max_inflight;        /* calls in flight + queued (default 4096) */
	int max_host_conns;      /* keep-alive pool per host (default 64) */
	size_t max_body;         /* response bytes kept (default 1 MiB) */
	/* breaker: this many consecutive failures (NOT_SENT, UNKNOWN or 5xx)
	 * open it (default 5); it stays open open_ms (default 5000), then
	 * lets one probe through (half-open): success closes it, failure
	 * opens it again. */
	int breaker_failures;
	int breaker_open_ms;
};

enum ncurl_breaker_state { NCURL_CLOSED, NCURL_OPEN, NCURL_HALF_OPEN };

/* NULL on failure (err filled). */
struct ncurl *ncurl_new(struct event_base *base, const struct ncurl_config *c,
                        char *err, size_t errlen);
/* Ends every call still in flight with NCURL_UNKNOWN (queued but not
 * started: NCURL_NOT_SENT; "started" = curl began writing the request, so a
 * call still connecting is NOT_SENT too), then frees.  Never from inside a
 * done() callback. */
void ncurl_free(struct ncurl *nc);

/* 0: accepted, done() will be called.  -1: refused now (queue full,
 * breaker open, bad request); *why says which; done() is not called. */
int ncurl_submit(struct ncurl *nc, const struct ncurl_req *req,
                 ncurl_done_fn done, void *arg, const char **why);

/* Calls in flight or queued. */
int ncurl_inflight(const struct ncurl *nc);
enum ncurl_breaker_state ncurl_breaker(const struct ncurl *nc,
                                       const char *endpoint);

#endif
