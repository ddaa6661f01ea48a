/*
 * log.c - structured logging (log.h).
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const sub_names[LOG_SUB_COUNT] = {
#define X(name, str) str,
	LOG_SUBS(X)
#undef X
};
static const char *const level_names[] = {"error", "warn", "notice", "info",
                                          "debug"};

static _Atomic int levels[LOG_SUB_COUNT] = {
#define X(name, str) LOG_LEVEL_INFO,
	LOG_SUBS(X)
#undef X
};
static atomic_bool redact_msisdn = true;

static int
parse_level(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
		if (strlen(level_names[i]) == n &&
		    strncmp(level_names[i], s, n) == 0)
			return (int)i;
	return -1;
}

int
log_set_levels(const char *spec, char *err, size_t errlen)
{
	int next[LOG_SUB_COUNT];
	const char *p = spec;
	int i;

	for (i = 0; i < LOG_SUB_COUNT; i++)
		next[i] = atomic_load(&levels[i]);
	while (*p != '\0') {
		const char *end = strchr(p, ',');
		const char *eq;
		size_t n = end ? (size_t)(end - p) : strlen(p);
		int lv;

		eq = memchr(p, '=', n);
		if (eq == NULL) {
			if ((lv = parse_level(p, n)) < 0)
				goto bad;
			for (i = 0; i < LOG_SUB_COUNT; i++)
				next[i] = lv;
		} else {
			size_t sn = (size_t)(eq - p);

			if ((lv = parse_level(eq + 1, n - sn - 1)) < 0)
				goto bad;
			for (i = 0; i < LOG_SUB_COUNT; i++)
				if (strlen(sub_names[i]) == sn &&
				    strncmp(sub_names[i], p, sn) == 0)
					break;
			if (i == LOG_SUB_COUNT)
				goto bad;
			next[i] = lv;
		}
		p += n;
		if (*p == ',')
			p++;
		continue;
	bad:
		snprintf(err, errlen,
		         "bad log level \"%.*s\" (want LEVEL or SUB=LEVEL; "
		         "levels error..debug)",
		         (int)n, p);
		return -1;
	}
	for (i = 0; i < LOG_SUB_COUNT; i++)
		atomic_store(&levels[i], next[i]);
	return 0;
}

bool
log_enabled(enum log_sub sub, enum log_level level)
{
	return (int)level <= atomic_load_explicit(&levels[sub],
	                                          memory_order_relaxed);
}

void
log_msg(enum log_sub sub, enum log_level level, const char *fmt, ...)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t off, start, i;
	int n;
	va_list ap;

	if (!log_enabled(sub, level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	off = strftime(line, sizeof line, "ts=%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line + off, sizeof line - off, ".%03ldZ level=%s sub=%s ",
	             ts.tv_nsec / 1000000, level_names[level], sub_names[sub]);
	off += (size_t)n;
	start = off;
	va_start(ap, fmt);
	n = vsnprintf(line + off, sizeof line - off - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	off += (size_t)n < sizeof line - off - 1 ? (size_t)n
	                                          : sizeof line - off - 2;
	/* one event per line: a value with a line break (or any control
	 * byte) must not forge a second event */
	for (i = start; i < off; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	line[off++] = '\n';
	/* one write: lines from threads never interleave */
	if (write(STDERR_FILENO, line, off) < 0) {
		/* nowhere left to report it */
	}
}

void
log_set_redact_msisdn(bool on)
{
	atomic_store(&redact_msisdn, on);
}

const char *
log_msisdn(char *dst, size_t cap, const char *msisdn)
{
	size_t n = strlen(msisdn), i;

	if (cap == 0)
		return dst;
	if (!atomic_load(&redact_msisdn) || n < 7) {
		snprintf(dst, cap, "%s", atomic_load(&redact_msisdn) ? "***"
		                                                    : msisdn);
		return dst;
	}
	/* keep country+operator prefix (4) and the last 2 digits */
	for (i = 0; i < n && i + 1 < cap; i++)
		dst[i] = (i < 4 || i >= n - 2) ? msisdn[i] : '*';
	dst[i] = '\0';
	return dst;
}
