/*
 * provider_bench.c - outbound provider calls through server/net_curl.c
 * (docs/benchmarks.md "Provider calls"; performance-envelope G8).
 *
 *   provider_bench --serve-trivial --tls-dir DIR [--port P]
 *       the baseline peer: an evhttp HTTPS server (one process, one loop)
 *       answering every request with a small MoMo-status-like JSON body
 *       that carries its own handling time ("srv_us"); writes its CA to
 *       DIR/ca.pem and prints
 *       "provider_bench trivial ready https=127.0.0.1:P pid=N".
 *
 *   provider_bench --url URL --ca FILE [--outstanding K] [--conns C]
 *       [--seconds S] [--warmup W] [--latency-seconds L] [--header H]...
 *       the client, one loop thread, three phases on one struct ncurl:
 *       1. memory: one call, RSS; then C calls at once (C connections),
 *          RSS again: conn_kb = RSS delta / connections opened;
 *       2. throughput: closed loop, K calls always outstanding, W s of
 *          warm-up then S s measured: calls/s, latency percentiles, client
 *          CPU per call;
 *       3. latency: one call at a time for L s: client-added latency =
 *          elapsed (ncurl's elapsed_us) - the server's own handling time
 *          (srv_us from the body; 0 when the peer does not send it);
 *          in 250 ms slices alternating with a bare blocking OpenSSL
 *          client doing the same GET on one keep-alive connection
 *          (raw_*: the floor of loopback + TLS + the peer, under the same
 *          machine noise).
 *       Prints one line of key=value on stdout.  Any call that is not
 *       ANSWERED with a 2xx fails the run (exit 1): no figure from errors.
 */
#include "../tests/tls_stub.c"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "log.h"
#include "metrics.h"
#include "net_curl.h"
#include "util.h"

/* ------------------------------------------------------ trivial server */

/* evhttp never sets TCP_NODELAY; a reply written as two TLS records
 * would then wait for the client's delayed ACK (40 ms) */
static void
nodelay(struct evhttp_request *req)
{
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	evutil_socket_t fd;
	int one = 1;

	if (c != NULL &&
	    (fd = bufferevent_getfd(evhttp_connection_get_bufferevent(c))) >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void
on_trivial(struct evhttp_request *req, void *arg)
{
	int64_t t0 = util_mono_us();
	struct evbuffer *b = evbuffer_new();
	static uint64_t n;

	(void)arg;
	n++;
	nodelay(req);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	                  "Content-Type", "application/json");
	evbuffer_add_printf(
	    b,
	    "{\"amount\":\"100\",\"currency\":\"EUR\","
	    "\"financialTransactionId\":\"%llu\",\"externalId\":\"bench\","
	    "\"payer\":{\"partyIdType\":\"MSISDN\",\"partyId\":"
	    "\"46733123454\"},\"payerMessage\":\"bench\",\"payeeNote\":"
	    "\"bench\",\"status\":\"SUCCESSFUL\",\"srv_us\":%lld}",
	    (unsigned long long)n, (long long)(util_mono_us() - t0));
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

static void
on_stop_signal(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

static int
serve_trivial(const char *dir, int port)
{
	struct event_base *base = event_base_new();
	struct event *sig_term, *sig_int;
	struct tls_ca ca;
	struct tls_srv srv;
	SSL_CTX *ctx;
	char path[4096];

	snprintf(path, sizeof path, "%s/ca.pem", dir);
	if (base == NULL || tls_ca_make(&ca, "provider_bench CA") != 0 ||
	    tls_ca_write_pem(&ca, path) != 0 ||
	    (ctx = tls_server_ctx(&ca, "IP:127.0.0.1,DNS:localhost")) == NULL ||
	    tls_srv_start(&srv, base, ctx, port, on_trivial, NULL) != 0) {
		fprintf(stderr,
		        "provider_bench: cannot start the trivial "
		        "server (CA in %s)\n",
		        path);
		return 1;
	}
	sig_term = evsignal_new(base, SIGTERM, on_stop_signal, base);
	sig_int = evsignal_new(base, SIGINT, on_stop_signal, base);
	event_add(sig_term, NULL);
	event_add(sig_int, NULL);
	printf("provider_bench trivial ready https=127.0.0.1:%d pid=%ld\n",
	       srv.port, (long)getpid());
	fflush(stdout);
	event_base_dispatch(base);
	tls_srv_stop(&srv);
	SSL_CTX_free(ctx);
	tls_ca_fini(&ca);
	event_free(sig_term);
	event_free(sig_int);
	event_base_free(base);
	return 0;
}

/* ------------------------------------------------- the bare TLS client */

/* The same GET over one blocking, keep-alive OpenSSL connection, with the
 * same verification: the floor that libcurl, libevent and ncurl add to. */
struct raw {
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;
	char req[4096];
	size_t req_len;
};

static void
raw_close(struct raw *r)
{
	if (r->ssl != NULL)
		SSL_free(r->ssl);
	if (r->ctx != NULL)
		SSL_CTX_free(r->ctx);
	if (r->fd >= 0)
		close(r->fd);
	r->ssl = NULL;
	r->ctx = NULL;
	r->fd = -1;
}

static int
raw_open(struct raw *r, const char *url, const char *ca,
         const struct ncurl_req *req)
{
	char ip[64], path[2048];
	struct sockaddr_in sin = {0};
	int port, one = 1, n;
	size_t i;

	memset(r, 0, sizeof *r);
	r->fd = -1;
	if (sscanf(url, "https://%63[0-9.]:%d%2047s", ip, &port, path) != 3)
		return -1;
	n = snprintf(r->req, sizeof r->req,
	             "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: */*\r\n", path,
	             ip, port);
	for (i = 0; i < req->n_headers && n > 0; i++)
		n += snprintf(r->req + n, sizeof r->req - (size_t)n, "%s\r\n",
		              req->headers[i]);
	n += snprintf(r->req + n, sizeof r->req - (size_t)n, "\r\n");
	r->req_len = (size_t)n;
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, ip, &sin.sin_addr) != 1 ||
	    (r->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    connect(r->fd, (struct sockaddr *)&sin, sizeof sin) != 0)
		goto fail;
	setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if ((r->ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_load_verify_locations(r->ctx, ca, NULL) != 1)
		goto fail;
	SSL_CTX_set_verify(r->ctx, SSL_VERIFY_PEER, NULL);
	if ((r->ssl = SSL_new(r->ctx)) == NULL ||
	    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(r->ssl), ip) != 1 ||
	    SSL_set_fd(r->ssl, r->fd) != 1 || SSL_connect(r->ssl) != 1)
		goto fail;
	return 0;
fail:
	raw_close(r);
	return -1;
}

/* One GET; 0 with the server's srv_us, or -1. */
static int
raw_call(struct raw *r, int64_t *srv_us)
{
	char buf[16384];
	size_t len = 0, want = 0;
	const char *p;

	if (SSL_write(r->ssl, r->req, (int)r->req_len) != (int)r->req_len)
		return -1;
	for (;;) {
		int n =
		    SSL_read(r->ssl, buf + len, (int)(sizeof buf - 1 - len));

		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		if (want == 0 && (p = strstr(buf, "\r\n\r\n")) != NULL) {
			const char *cl = strstr(buf, "Content-Length: ");

			if (cl == NULL || cl > p)
				return -1;
			want =
			    (size_t)(p + 4 - buf) + strtoul(cl + 16, NULL, 10);
		}
		if (want != 0 && len >= want)
			break;
		if (len == sizeof buf - 1)
			return -1;
	}
	p = strstr(buf, "\"srv_us\":");
	*srv_us = p != NULL ? strtoll(p + 9, NULL, 10) : 0;
	return strncmp(buf, "HTTP/1.1 2", 10) == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------- client */

enum phase { PH_MEM, PH_WARM, PH_MEASURE, PH_LATENCY, PH_STOP };

struct samples {
	int64_t *v;
	size_t n, cap;
};

struct bench {
	struct event_base *base;
	struct ncurl *nc;
	struct ncurl_req req;
	enum phase phase;
	int outstanding; /* calls in flight */
	int target;      /* calls to keep in flight */
	uint64_t n_done, n_bad;
	long bad_status;
	const char *bad_why;
	struct samples lat, added;
	int64_t t_measure_us;
};

static void
push(struct samples *s, int64_t v)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 65536;
		s->v = xreallocarray(s->v, s->cap, sizeof *s->v);
	}
	s->v[s->n++] = v;
}

static int
cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Percentile q (0..1000, per mille) in ms of sorted s. */
static double
pct_ms(const struct samples *s, int q)
{
	size_t i;

	if (s->n == 0)
		return 0;
	i = (s->n * (size_t)q) / 1000;
	if (i >= s->n)
		i = s->n - 1;
	return (double)s->v[i] / 1000.0;
}

static void submit_one(struct bench *b);

static void
on_done(void *arg, const struct ncurl_result *r)
{
	struct bench *b = arg;
	const char *p;
	int64_t srv = 0;

	b->outstanding--;
	if (r->outcome != NCURL_ANSWERED || r->http_status < 200 ||
	    r->http_status > 299) {
		b->n_bad++;
		b->bad_status = r->http_status;
		b->bad_why = r->outcome != NCURL_ANSWERED ? r->errstr : "";
	}
	if ((p = strstr(r->body, "\"srv_us\":")) != NULL)
		srv = strtoll(p + 9, NULL, 10);
	if (b->phase == PH_MEASURE) {
		b->n_done++;
		push(&b->lat, r->elapsed_us);
	} else if (b->phase == PH_LATENCY) {
		b->n_done++;
		push(&b->lat, r->elapsed_us);
		push(&b->added, r->elapsed_us - srv);
	}
	if (b->phase != PH_STOP && b->phase != PH_MEM &&
	    b->outstanding < b->target)
		submit_one(b);
	if (b->outstanding == 0 && (b->phase == PH_STOP || b->phase == PH_MEM))
		event_base_loopbreak(b->base);
}

static void
submit_one(struct bench *b)
{
	const char *why = NULL;

	if (ncurl_submit(b->nc, &b->req, on_done, b, &why) != 0) {
		fprintf(stderr, "provider_bench: submit refused: %s\n", why);
		exit(1);
	}
	b->outstanding++;
}

static int64_t
rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, res = 0;

	if (f == NULL)
		return 0;
	if (fscanf(f, "%ld %ld", &size, &res) != 2)
		res = 0;
	fclose(f);
	return (int64_t)res * sysconf(_SC_PAGESIZE);
}

static int64_t
cpu_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
	       ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

/* soko_curl_connects_total from /metrics (net_curl's own count). */
static long
connects(void)
{
	size_t len;
	char *t = metrics_render(&len);
	const char *p = strstr(t, "\nsoko_curl_connects_total ");
	long n = p != NULL ? strtol(p + 26, NULL, 10) : -1;

	free(t);
	return n;
}

/* Runs the loop for ms milliseconds. */
static void
run_ms(struct event_base *base, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

/* Runs until the calls in flight have all ended. */
static void
drain(struct bench *b)
{
	while (b->outstanding > 0)
		event_base_loop(b->base, EVLOOP_ONCE);
}

static void
usage(void)
{
	fprintf(
	    stderr,
	    "usage: provider_bench --serve-trivial --tls-dir DIR [--port P]\n"
	    "       provider_bench --url URL --ca FILE [--outstanding K] "
	    "[--conns C]\n"
	    "           [--seconds S] [--warmup W] [--latency-seconds L] "
	    "[--header 'Name: value']...\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *url = NULL, *ca = NULL, *tls_dir = NULL;
	int k = 32, conns = 32, secs = 10, warm = 2, lat_secs = 3, port = 0;
	bool serve = false;
	struct bench b;
	struct raw raw;
	struct samples raw_added = {0};
	struct ncurl_config cfg = {0};
	char err[256];
	int64_t rss0, rss1, cpu0, cpu1, t1;
	long c0, c1;
	double conn_kb, calls_s;
	int i;

	memset(&b, 0, sizeof b);
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--serve-trivial") == 0) {
			serve = true;
			continue;
		}
		if (v == NULL)
			usage();
		i++;
		if (strcmp(a, "--url") == 0)
			url = v;
		else if (strcmp(a, "--ca") == 0)
			ca = v;
		else if (strcmp(a, "--tls-dir") == 0)
			tls_dir = v;
		else if (strcmp(a, "--port") == 0)
			port = atoi(v);
		else if (strcmp(a, "--outstanding") == 0)
			k = atoi(v);
		else if (strcmp(a, "--conns") == 0)
			conns = atoi(v);
		else if (strcmp(a, "--seconds") == 0)
			secs = atoi(v);
		else if (strcmp(a, "--warmup") == 0)
			warm = atoi(v);
		else if (strcmp(a, "--latency-seconds") == 0)
			lat_secs = atoi(v);
		else if (strcmp(a, "--header") == 0 &&
		         b.req.n_headers < NCURL_MAX_HEADERS)
			b.req.headers[b.req.n_headers++] = v;
		else
			usage();
	}
	signal(SIGPIPE, SIG_IGN);
	if (serve) {
		if (tls_dir == NULL)
			usage();
		return serve_trivial(tls_dir, port);
	}
	if (url == NULL || k < 1 || conns < 1 || secs < 1)
		usage();
	log_set_levels("warn", err, sizeof err);
	b.base = event_base_new();
	cfg.ca_file = ca;
	cfg.max_inflight = MAX(k, conns);
	cfg.max_host_conns = conns;
	cfg.default_timeout_ms = 10000;
	cfg.breaker_failures = 1000000; /* measure, never refuse */
	if ((b.nc = ncurl_new(b.base, &cfg, err, sizeof err)) == NULL) {
		fprintf(stderr, "provider_bench: %s\n", err);
		return 1;
	}
	b.req.method = NCURL_GET;
	b.req.url = url;
	b.req.endpoint = "bench";

	/* 1. memory per pooled connection */
	b.phase = PH_MEM;
	submit_one(&b);
	drain(&b);
	run_ms(b.base, 200);
	rss0 = rss_bytes();
	c0 = connects();
	for (i = 0; i < conns; i++)
		submit_one(&b);
	drain(&b);
	run_ms(b.base, 200);
	rss1 = rss_bytes();
	c1 = connects();
	conn_kb =
	    c1 > c0 ? (double)(rss1 - rss0) / 1024.0 / (double)(c1 - c0) : 0;

	/* 2. throughput, closed loop */
	b.target = k;
	b.phase = PH_WARM;
	for (i = 0; i < k; i++)
		submit_one(&b);
	run_ms(b.base, warm * 1000);
	b.phase = PH_MEASURE;
	b.n_done = 0;
	cpu0 = cpu_us();
	b.t_measure_us = util_mono_us();
	run_ms(b.base, secs * 1000);
	t1 = util_mono_us();
	cpu1 = cpu_us();
	calls_s = (double)b.n_done * 1e6 / (double)(t1 - b.t_measure_us);
	{
		uint64_t n_measured = b.n_done;
		struct samples lat = b.lat;

		b.phase = PH_STOP;
		drain(&b);
		qsort(lat.v, lat.n, sizeof *lat.v, cmp64);
		printf("provider calls_per_s=%.0f outstanding=%d conns=%d "
		       "p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f "
		       "cpu_us_per_call=%.1f ",
		       calls_s, k, conns, pct_ms(&lat, 500), pct_ms(&lat, 990),
		       pct_ms(&lat, 999), pct_ms(&lat, 1000),
		       n_measured ? (double)(cpu1 - cpu0) / (double)n_measured
		                  : 0.0);
		free(lat.v);
		memset(&b.lat, 0, sizeof b.lat);
	}

	/* 3. client-added latency, one call at a time, in 250 ms slices
	 * alternating with the bare TLS client (same noise for both) */
	if (lat_secs > 0 && raw_open(&raw, url, ca, &b.req) != 0) {
		fprintf(stderr,
		        "provider_bench: the bare TLS client cannot "
		        "connect to %s\n",
		        url);
		return 1;
	}
	for (i = 0; i < lat_secs * 4; i++) {
		int64_t end = util_mono_us() + 250000;

		b.target = 1;
		b.phase = PH_LATENCY;
		submit_one(&b);
		run_ms(b.base, 250);
		b.phase = PH_STOP;
		drain(&b);
		end = util_mono_us() + 250000;
		while (util_mono_us() < end) {
			int64_t t0 = util_mono_us(), srv;

			if (raw_call(&raw, &srv) != 0) {
				fprintf(stderr, "provider_bench: the bare TLS "
				                "client's call failed\n");
				return 1;
			}
			push(&raw_added, util_mono_us() - t0 - srv);
		}
	}
	if (lat_secs > 0)
		raw_close(&raw);
	qsort(b.lat.v, b.lat.n, sizeof *b.lat.v, cmp64);
	qsort(b.added.v, b.added.n, sizeof *b.added.v, cmp64);
	qsort(raw_added.v, raw_added.n, sizeof *raw_added.v, cmp64);
	printf("serial_calls=%zu serial_p50_ms=%.3f serial_p99_ms=%.3f "
	       "client_p50_ms=%.3f client_p99_ms=%.3f client_p999_ms=%.3f "
	       "raw_calls=%zu raw_p50_ms=%.3f raw_p99_ms=%.3f "
	       "raw_p999_ms=%.3f "
	       "conn_kb=%.1f conns_opened=%ld rss_mb=%.1f bad=%llu\n",
	       b.lat.n, pct_ms(&b.lat, 500), pct_ms(&b.lat, 990),
	       pct_ms(&b.added, 500), pct_ms(&b.added, 990),
	       pct_ms(&b.added, 999), raw_added.n, pct_ms(&raw_added, 500),
	       pct_ms(&raw_added, 990), pct_ms(&raw_added, 999), conn_kb,
	       c1 - c0, (double)rss_bytes() / 1048576.0,
	       (unsigned long long)b.n_bad);
	free(raw_added.v);
	fflush(stdout);
	free(b.lat.v);
	free(b.added.v);
	ncurl_free(b.nc);
	event_base_free(b.base);
	if (b.n_bad > 0) {
		fprintf(stderr,
		        "provider_bench: %llu calls not answered 2xx (last: "
		        "status %ld, %s)\n",
		        (unsigned long long)b.n_bad, b.bad_status, b.bad_why);
		return 1;
	}
	return 0;
}
