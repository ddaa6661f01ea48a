/*
 * test_log.c - unit tests for server/log.c: level specs (good ones, and bad
 * ones that must change nothing), log_enabled, MSISDN masking, and the
 * shape of a log line, captured by pointing stderr at a temporary file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "log.h"

static const enum log_level all_levels[] = {
	LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_NOTICE, LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};
#define N_LEVELS (sizeof all_levels / sizeof all_levels[0])

/* The most verbose level enabled for sub, or -1 if none. */
static int
level_of(enum log_sub sub)
{
	int lv = -1;
	size_t i;

	for (i = 0; i < N_LEVELS; i++)
		if (log_enabled(sub, all_levels[i]))
			lv = (int)all_levels[i];
	return lv;
}

/* Every sub's level, as a string of digits ("33333333"). */
static void
snapshot(char *dst)
{
	int s;

	for (s = 0; s < LOG_SUB_COUNT; s++)
		dst[s] = (char)('0' + level_of((enum log_sub)s));
	dst[LOG_SUB_COUNT] = '\0';
}

static void
set_ok(const char *spec)
{
	char err[256] = "";

	CHECK_EQ_INT(log_set_levels(spec, err, sizeof err), 0);
	CHECK_EQ_STR(err, "");
}

/* Runs log_msg-calling fn with stderr pointed at a temporary file and
 * returns what it wrote (malloc'd, NUL-terminated). */
static char *
capture(void (*fn)(void), size_t *len)
{
	FILE *tmp = tmpfile();
	char *buf;
	long n;
	int saved;

	*len = 0;
	if (tmp == NULL)
		return NULL;
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	dup2(fileno(tmp), STDERR_FILENO);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	fseek(tmp, 0, SEEK_END);
	n = ftell(tmp);
	rewind(tmp);
	buf = calloc(1, (size_t)n + 1);
	if (buf != NULL && n > 0)
		*len = fread(buf, 1, (size_t)n, tmp);
	fclose(tmp);
	return buf;
}

static size_t
count_char(const char *s, size_t n, char c)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		k += s[i] == c;
	return k;
}

/* ------------------------------------------------------------ levels */

static void
test_defaults(void)
{
	char snap[LOG_SUB_COUNT + 1], want[LOG_SUB_COUNT + 1];
	char buf[32];

	/* before any spec: info everywhere, MSISDNs masked */
	memset(want, '0' + LOG_LEVEL_INFO, LOG_SUB_COUNT);
	want[LOG_SUB_COUNT] = '\0';
	snapshot(snap);
	CHECK_EQ_STR(snap, want);
	CHECK_EQ_STR(log_msisdn(buf, sizeof buf, "254712345601"),
	             "2547******01");
}

static void
test_set_all(void)
{
	size_t i;
	int s;

	set_ok("debug");
	for (s = 0; s < LOG_SUB_COUNT; s++)
		for (i = 0; i < N_LEVELS; i++)
			CHECK(log_enabled((enum log_sub)s, all_levels[i]));
	set_ok("error");
	for (s = 0; s < LOG_SUB_COUNT; s++) {
		CHECK(log_enabled((enum log_sub)s, LOG_LEVEL_ERROR));
		CHECK(!log_enabled((enum log_sub)s, LOG_LEVEL_WARN));
		CHECK(!log_enabled((enum log_sub)s, LOG_LEVEL_DEBUG));
	}
	set_ok("warn");
	CHECK(log_enabled(LOG_CORE, LOG_LEVEL_WARN));
	CHECK(!log_enabled(LOG_CORE, LOG_LEVEL_NOTICE));
	set_ok("notice");
	CHECK(log_enabled(LOG_PROV, LOG_LEVEL_NOTICE));
	CHECK(!log_enabled(LOG_PROV, LOG_LEVEL_INFO));
	set_ok("info");
	CHECK(log_enabled(LOG_USSD, LOG_LEVEL_INFO));
	CHECK(!log_enabled(LOG_USSD, LOG_LEVEL_DEBUG));
}

static void
test_set_per_sub(void)
{
	char snap[LOG_SUB_COUNT + 1];

	set_ok("info,http=debug");
	snapshot(snap);
	CHECK_EQ_STR(snap, "343333333");
	CHECK(log_enabled(LOG_HTTP, LOG_LEVEL_DEBUG));
	CHECK(!log_enabled(LOG_CORE, LOG_LEVEL_DEBUG));
	CHECK(log_enabled(LOG_CORE, LOG_LEVEL_INFO));

	set_ok("info,http=debug,store=warn,prov=error");
	snapshot(snap);
	CHECK_EQ_STR(snap, "341333303");

	/* left to right: a later "all" overrides an earlier sub */
	set_ok("http=debug,warn");
	snapshot(snap);
	CHECK_EQ_STR(snap, "111111111");

	/* a sub alone leaves the others as they were */
	set_ok("ledger=debug");
	snapshot(snap);
	CHECK_EQ_STR(snap, "111411111");

	/* every sub name is accepted */
	set_ok("error,core=debug,http=debug,store=debug,ledger=debug,"
	       "pos=debug,smpp=debug,ussd=debug,prov=debug,curl=debug");
	snapshot(snap);
	CHECK_EQ_STR(snap, "444444444");
	set_ok("info");
}

static void
test_set_bad(void)
{
	static const char *const bad[] = {
		"loud",           /* no such level */
		"Info",           /* levels are lower case */
		"info,http=loud", /* bad level for a good sub */
		"info,web=debug", /* no such subsystem */
		"debug,http",     /* second part is neither */
		"=debug",         /* empty subsystem */
		"http=",          /* empty level */
		"info,,debug",    /* empty part */
		",",
		"info ",          /* no trimming */
		"http=debug=x",
	};
	char before[LOG_SUB_COUNT + 1], after[LOG_SUB_COUNT + 1];
	char err[256];
	size_t i;

	set_ok("warn,ledger=debug");
	snapshot(before);
	CHECK_EQ_STR(before, "111411111");
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		if (log_set_levels(bad[i], err, sizeof err) != -1)
			fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
		CHECK_EQ_INT(log_set_levels(bad[i], err, sizeof err), -1);
		CHECK(err[0] != '\0');
		snapshot(after);
		CHECK_EQ_STR(after, before);
	}
	/* the reason names the offending part */
	CHECK_EQ_INT(log_set_levels("info,web=debug", err, sizeof err), -1);
	CHECK(strstr(err, "web=debug") != NULL);
	/* a tiny err buffer is still NUL-terminated */
	memset(err, 'x', sizeof err);
	CHECK_EQ_INT(log_set_levels("loud", err, 4), -1);
	CHECK_EQ_INT(strlen(err), 3);
	set_ok("info");
}

/* ------------------------------------------------------------ msisdn */

static void
test_msisdn(void)
{
	char buf[32], small[6];

	log_set_redact_msisdn(true);
	CHECK_EQ_STR(log_msisdn(buf, sizeof buf, "254712345601"),
	             "2547******01");
	CHECK_EQ_STR(log_msisdn(buf, sizeof buf, "+254712345601"),
	             "+254*******01");
	CHECK_EQ_STR(log_msisdn(buf, sizeof buf, "2547123"), "2547*23");
	/* too short to mask usefully: nothing of it shown */
	CHECK_EQ_STR(log_msisdn(buf, sizeof buf, "254712"), "***");
	CHECK_EQ_STR(log_msisdn(buf, sizeof buf, "1"), "***");
	CHECK_EQ_STR(log_msisdn(buf, sizeof buf, ""), "***");
	/* a small buffer truncates, never overflows, never unmasks */
	CHECK(log_msisdn(small, sizeof small, "254712345601") == small);
	CHECK_EQ_STR(small, "2547*");
	CHECK_EQ_STR(log_msisdn(small, 2, "254712"), "*");
	memset(small, 'x', sizeof small);
	log_msisdn(small, 0, "254712345601");
	CHECK_EQ_INT(small[0], 'x');

	log_set_redact_msisdn(false);
	CHECK_EQ_STR(log_msisdn(buf, sizeof buf, "254712345601"),
	             "254712345601");
	CHECK_EQ_STR(log_msisdn(buf, sizeof buf, "254712"), "254712");
	CHECK_EQ_STR(log_msisdn(buf, sizeof buf, ""), "");
	CHECK_EQ_STR(log_msisdn(small, sizeof small, "254712345601"),
	             "25471");
	log_set_redact_msisdn(true);
	CHECK_EQ_STR(log_msisdn(buf, sizeof buf, "254712345601"),
	             "2547******01");
}

/* -------------------------------------------------------------- lines */

static void
emit_one(void)
{
	log_msg(LOG_HTTP, LOG_LEVEL_INFO, "event=listening port=%d", 8080);
}

static void
emit_filtered(void)
{
	log_msg(LOG_HTTP, LOG_LEVEL_DEBUG, "event=hidden");
	log_msg(LOG_STORE, LOG_LEVEL_INFO, "event=hidden");
	log_msg(LOG_STORE, LOG_LEVEL_WARN, "event=shown");
}

static void
emit_long(void)
{
	char big[5000];

	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	log_msg(LOG_CORE, LOG_LEVEL_ERROR, "event=long v=%s", big);
}

static void
emit_newline(void)
{
	log_msg(LOG_CORE, LOG_LEVEL_NOTICE, "event=x key=%s",
	        "abc\nts=forged level=error\r");
}

static void
test_line_shape(void)
{
	char *out;
	size_t n;
	const char *p;

	set_ok("info");
	out = capture(emit_one, &n);
	CHECK(out != NULL);
	if (out == NULL)
		return;
	/* ts=2026-11-22T05:04:50.123Z level=info sub=http event=... */
	CHECK(n > 0 && out[n - 1] == '\n');
	CHECK_EQ_INT(count_char(out, n, '\n'), 1);
	CHECK(strncmp(out, "ts=", 3) == 0);
	CHECK(n > 28 && out[7] == '-' && out[10] == '-' && out[13] == 'T' &&
	      out[16] == ':' && out[19] == ':' && out[22] == '.' &&
	      out[26] == 'Z' && out[27] == ' ');
	p = out + 27;
	CHECK(strncmp(p, " level=info sub=http event=listening port=8080\n",
	              47) == 0);
	free(out);
}

static void
test_line_filtered(void)
{
	char *out;
	size_t n;

	set_ok("info,store=warn");
	out = capture(emit_filtered, &n);
	CHECK(out != NULL);
	if (out == NULL)
		return;
	CHECK_EQ_INT(count_char(out, n, '\n'), 1);
	CHECK(strstr(out, "level=warn sub=store event=shown\n") != NULL);
	CHECK(strstr(out, "hidden") == NULL);
	free(out);
	set_ok("info");
}

static void
test_line_long(void)
{
	char *out;
	size_t n;

	out = capture(emit_long, &n);
	CHECK(out != NULL);
	if (out == NULL)
		return;
	/* truncated, but still one whole line */
	CHECK(n > 1000 && n <= 2048);
	CHECK_EQ_INT(count_char(out, n, '\n'), 1);
	CHECK(out[n - 1] == '\n');
	CHECK(strstr(out, "level=error sub=core event=long v=aaa") != NULL);
	free(out);
}

/* A value with a line break must not forge a second event. */
static void
test_line_no_injection(void)
{
	char *out;
	size_t n;

	out = capture(emit_newline, &n);
	CHECK(out != NULL);
	if (out == NULL)
		return;
	CHECK_EQ_INT(count_char(out, n, '\n'), 1);
	CHECK_EQ_INT(count_char(out, n, '\r'), 0);
	CHECK(n > 0 && out[n - 1] == '\n');
	CHECK(strstr(out, "level=notice sub=core event=x key=abc") != NULL);
	free(out);
}

int
main(void)
{
	RUN(test_defaults);
	RUN(test_set_all);
	RUN(test_set_per_sub);
	RUN(test_set_bad);
	RUN(test_msisdn);
	RUN(test_line_shape);
	RUN(test_line_filtered);
	RUN(test_line_long);
	RUN(test_line_no_injection);
	return check_report("log");
}
