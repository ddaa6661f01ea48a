/*
 * log.h - structured logging: one event per line, key=value, to stderr
 * (journald-friendly), with a level per subsystem (STYLE.md §9).
 *
 *   ts=2026-11-22T05:04:50.123Z level=info sub=http event=listening ...
 *
 * Callers write key=value pairs; values with spaces are quoted by the
 * caller.  Never pass a PIN, a key, a full token or a PAN; MSISDNs go
 * through log_msisdn() which masks them when log_redact_msisdn is on.
 * Thread-safe: each line is one write(2).
 */
#ifndef SOKO_LOG_H
#define SOKO_LOG_H

#include <stdbool.h>
#include <stddef.h>

#define LOG_SUBS(X)                                                          \
	X(CORE, "core")                                                      \
	X(HTTP, "http")                                                      \
	X(STORE, "store")                                                    \
	X(LEDGER, "ledger")                                                  \
	X(POS, "pos")                                                        \
	X(SMPP, "smpp")                                                      \
	X(USSD, "ussd")                                                      \
	X(PROV, "prov")                                                      \
	X(CURL, "curl")

enum log_sub {
#define X(name, str) LOG_##name,
	LOG_SUBS(X)
#undef X
	LOG_SUB_COUNT
};

enum log_level {
	LOG_LEVEL_ERROR,  /* needs an operator */
	LOG_LEVEL_WARN,
	LOG_LEVEL_NOTICE,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* Sets levels from a spec: "info" (all) or "info,http=debug,store=warn".
 * Returns 0, or -1 (nothing changed) with a reason in err. */
int log_set_levels(const char *spec, char *err, size_t errlen);
bool log_enabled(enum log_sub sub, enum log_level level);
void log_msg(enum log_sub sub, enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Whether MSISDNs are masked in logs (default on). */
void log_set_redact_msisdn(bool on);
/* MSISDN for a log line: "2547******01" when redaction is on.  Writes into
 * dst (cap bytes) and returns dst. */
const char *log_msisdn(char *dst, size_t cap, const char *msisdn);

#endif
