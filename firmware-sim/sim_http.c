/*
 * sim_http.c - a tiny blocking HTTP/1.1 client for sokod's admin API
 * (docs/api.md): float top-ups before a fleet run and balances for its
 * check.  One request per connection (Connection: close); every step has
 * a timeout.  Not a general client: it reads "balance" out of the JSON by
 * hand, which is enough for the one document shape it asks for.
 *
 * Layer: firmware-sim/ (sim.h).  The API key is never printed.
 */
#include "sim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define HTTP_TIMEOUT_MS 30000

int
sim_http_request(const char *hostport, const char *api_key, const char *method,
                 const char *path, const char *idem, const char *body,
                 int *status, char *resp, size_t cap)
{
	struct timeval tv = {HTTP_TIMEOUT_MS / 1000, 0};
	char host[256], port[16], head[1024], *buf = NULL, *p;
	size_t len = 0, bcap = 4096, blen = body != NULL ? strlen(body) : 0;
	int fd = -1, n, rc = -1;
	ssize_t r;

	*status = 0;
	if (cap > 0)
		resp[0] = '\0';
	if (sim_prov_hostport(host, sizeof host, port, sizeof port, hostport) !=
	        0 ||
	    sokoterm_posix_connect(host, port, HTTP_TIMEOUT_MS, &fd) !=
	        SOKOTERM_OK)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	n = snprintf(head, sizeof head,
	             "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
	             "Authorization: Bearer %s\r\n%s%s%s"
	             "Content-Type: application/json\r\n"
	             "Content-Length: %zu\r\n\r\n",
	             method, path, host, api_key,
	             idem != NULL ? "Idempotency-Key: " : "",
	             idem != NULL ? idem : "", idem != NULL ? "\r\n" : "",
	             blen);
	if (n < 0 || (size_t)n >= sizeof head)
		goto out;
	if (send(fd, head, (size_t)n, MSG_NOSIGNAL) != n ||
	    (blen > 0 && send(fd, body, blen, MSG_NOSIGNAL) != (ssize_t)blen))
		goto out;
	if ((buf = malloc(bcap)) == NULL)
		goto out;
	for (;;) {
		if (len + 1 == bcap) {
			if (bcap >= (1u << 20) ||
			    (p = realloc(buf, 2 * bcap)) == NULL)
				goto out;
			buf = p;
			bcap *= 2;
		}
		r = recv(fd, buf + len, bcap - 1 - len, 0);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			goto out;
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	if (sscanf(buf, "HTTP/1.%*d %d", status) != 1)
		goto out;
	if ((p = strstr(buf, "\r\n\r\n")) != NULL && cap > 0)
		snprintf(resp, cap, "%s", p + 4);
	rc = 0;
out:
	free(buf);
	close(fd);
	return rc;
}

int
sim_http_balance(const char *hostport, const char *api_key, const char *account,
                 const struct sim_currency *cur, int64_t *minor, char *err,
                 size_t errlen)
{
	char path[256], resp[2048], val[64];
	const char *p;
	uint64_t v;
	int status;
	size_t n;
	bool is_neg;

	snprintf(path, sizeof path, "/v1/accounts/%s", account);
	if (sim_http_request(hostport, api_key, "GET", path, NULL, NULL,
	                     &status, resp, sizeof resp) != 0) {
		snprintf(err, errlen, "GET %s: no answer", path);
		return -1;
	}
	if (status != 200 || (p = strstr(resp, "\"balance\":\"")) == NULL) {
		snprintf(err, errlen, "GET %s: %d %.200s", path, status, resp);
		return -1;
	}
	p += strlen("\"balance\":\"");
	n = strcspn(p, "\"");
	if (n == 0 || n >= sizeof val) {
		snprintf(err, errlen, "GET %s: bad balance", path);
		return -1;
	}
	memcpy(val, p, n);
	val[n] = '\0';
	is_neg = val[0] == '-';
	if (sim_prov_amount(&v, cur, val + (is_neg ? 1 : 0)) != 0 ||
	    v > INT64_MAX) {
		snprintf(err, errlen, "GET %s: bad balance \"%s\"", path, val);
		return -1;
	}
	*minor = is_neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

int
sim_http_topup(const char *hostport, const char *api_key, const char *idem,
               const char *debit, const char *credit,
               const struct sim_currency *cur, const char *amount, char *err,
               size_t errlen)
{
	char body[512], resp[1024];
	int status;

	snprintf(body, sizeof body,
	         "{\"type\":\"float_topup\",\"currency\":\"%s\","
	         "\"amount\":\"%s\",\"debit\":\"%s\",\"credit\":\"%s\","
	         "\"memo\":\"soko-pos fleet\"}",
	         cur->alpha, amount, debit, credit);
	if (sim_http_request(hostport, api_key, "POST", "/v1/movements", idem,
	                     body, &status, resp, sizeof resp) != 0) {
		snprintf(err, errlen, "POST /v1/movements: no answer");
		return -1;
	}
	if (status != 201) {
		snprintf(err, errlen, "top-up of %s: %d %.200s", credit, status,
		         resp);
		return -1;
	}
	return 0;
}
