/*
 * sim_prov.c - soko-pos helpers: the provisioning file (one terminal per
 * line, made from `sokoctl terminal add` output), hex, currencies and
 * amounts, host:port, the monotonic clock.
 *
 * Layer: firmware-sim/ (sim.h).  Amounts are integers in minor units; the
 * decimal strings are those of the HTTP API (docs/api.md).
 */
#include "sim.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The currencies soko's ledger knows best; add rows as needed. */
static const struct sim_currency currencies[] = {
    {"KES", 404, 2}, {"UGX", 800, 0}, {"TZS", 834, 2}, {"RWF", 646, 0},
    {"USD", 840, 2}, {"EUR", 978, 2}, {"GHS", 936, 2}, {"NGN", 566, 2},
};

const struct sim_currency *
sim_prov_currency(const char *s)
{
	size_t i;

	for (i = 0; i < sizeof currencies / sizeof currencies[0]; i++) {
		char num[8];

		snprintf(num, sizeof num, "%u", currencies[i].numeric);
		if (strcmp(s, currencies[i].alpha) == 0 || strcmp(s, num) == 0)
			return &currencies[i];
	}
	return NULL;
}

int
sim_prov_amount(uint64_t *minor, const struct sim_currency *cur, const char *s)
{
	uint64_t v = 0;
	unsigned frac = 0;
	bool is_frac = false, has_digit = false;

	for (; *s != '\0'; s++) {
		if (*s == '.' && !is_frac) {
			is_frac = true;
			continue;
		}
		if (!isdigit((unsigned char)*s))
			return -1;
		if (is_frac && ++frac > cur->exponent)
			return -1;
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
		has_digit = true;
	}
	if (!has_digit)
		return -1;
	for (; frac < cur->exponent; frac++) {
		if (v > UINT64_MAX / 10)
			return -1;
		v *= 10;
	}
	*minor = v;
	return 0;
}

void
sim_prov_amount_str(char *buf, size_t cap, const struct sim_currency *cur,
                    int64_t minor)
{
	uint64_t a =
	    minor < 0 ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;
	uint64_t div = 1;
	unsigned i;

	for (i = 0; i < cur->exponent; i++)
		div *= 10;
	if (cur->exponent == 0)
		snprintf(buf, cap, "%s%llu", minor < 0 ? "-" : "",
		         (unsigned long long)a);
	else
		snprintf(buf, cap, "%s%llu.%0*llu", minor < 0 ? "-" : "",
		         (unsigned long long)(a / div), (int)cur->exponent,
		         (unsigned long long)(a % div));
}

int
sim_prov_unhex(uint8_t *out, size_t len, const char *hex)
{
	size_t i;

	if (strlen(hex) != 2 * len)
		return -1;
	for (i = 0; i < 2 * len; i++) {
		int c = tolower((unsigned char)hex[i]), v;

		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else
			return -1;
		if (i % 2 == 0)
			out[i / 2] = (uint8_t)(v << 4);
		else
			out[i / 2] = (uint8_t)(out[i / 2] | v);
	}
	return 0;
}

void
sim_prov_hex(char *out, const uint8_t *in, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

/* Trims ASCII spaces at both ends, in place. */
static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
	                 e[-1] == '\n'))
		*--e = '\0';
	return s;
}

int
sim_prov_load(struct sim_prov **out, size_t *n, const char *path, char *err,
              size_t errlen)
{
	struct sim_prov *v = NULL, *p;
	size_t len = 0, cap = 0, lineno = 0;
	char line[512];
	FILE *f;

	*out = NULL;
	*n = 0;
	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		char *fields[4] = {NULL, NULL, NULL, NULL}, *s = trim(line);
		size_t k = 0;

		lineno++;
		if (*s == '\0' || *s == '#' ||
		    strncmp(s, "terminal_id,", 12) == 0)
			continue;
		while (k < 4 && s != NULL) {
			char *comma = strchr(s, ',');

			if (comma != NULL)
				*comma = '\0';
			fields[k++] = trim(s);
			s = comma != NULL ? comma + 1 : NULL;
		}
		if (k < 3 || s != NULL || strlen(fields[0]) == 0 ||
		    strlen(fields[0]) > 32 || strlen(fields[1]) == 0 ||
		    strlen(fields[1]) > 32) {
			snprintf(
			    err, errlen,
			    "%s:%zu: want "
			    "terminal_id,agent_code,key_hex[,float_account]",
			    path, lineno);
			goto fail;
		}
		if (len == cap) {
			size_t ncap = cap == 0 ? 64 : 2 * cap;

			if ((p = realloc(v, ncap * sizeof *v)) == NULL) {
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
			v = p;
			cap = ncap;
		}
		p = &v[len];
		memset(p, 0, sizeof *p);
		snprintf(p->terminal_id, sizeof p->terminal_id, "%s",
		         fields[0]);
		snprintf(p->agent, sizeof p->agent, "%s", fields[1]);
		if (sim_prov_unhex(p->key, sizeof p->key, fields[2]) != 0) {
			snprintf(err, errlen, "%s:%zu: key is not %d hex bytes",
			         path, lineno, SOKOTERM_KEY_LEN);
			goto fail;
		}
		if (k == 4 && fields[3][0] != '\0')
			snprintf(p->float_account, sizeof p->float_account,
			         "%s", fields[3]);
		else
			snprintf(p->float_account, sizeof p->float_account,
			         "agent:%s:float", p->agent);
		len++;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		goto fail;
	}
	fclose(f);
	if (len == 0) {
		snprintf(err, errlen, "%s: no terminals", path);
		free(v);
		return -1;
	}
	*out = v;
	*n = len;
	return 0;
fail:
	fclose(f);
	if (v != NULL)
		explicit_bzero(v, cap * sizeof *v);
	free(v);
	return -1;
}

int
sim_prov_hostport(char *host, size_t hcap, char *port, size_t pcap,
                  const char *hp)
{
	const char *colon = strrchr(hp, ':');
	const char *h = hp;
	size_t hlen;

	if (colon == NULL || colon[1] == '\0')
		return -1;
	hlen = (size_t)(colon - hp);
	if (hlen >= 2 && hp[0] == '[' && colon[-1] == ']') {
		h = hp + 1;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= hcap || strlen(colon + 1) >= pcap)
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	snprintf(port, pcap, "%s", colon + 1);
	return 0;
}

uint64_t
sim_prov_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int
sim_prov_read_secret(char *buf, size_t cap, const char *path)
{
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return -1;
	if (fgets(buf, (int)cap, f) == NULL) {
		fclose(f);
		errno = EINVAL;
		return -1;
	}
	fclose(f);
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}
