/*
 * config.h - sokod configuration: defaults, file, command-line overrides
 * (keys in config.def; docs/configuration.md).
 *
 * File format: one "key = value" per line; '#' starts a comment; values
 * may be double-quoted.  Unknown keys, bad values and values out of range
 * are errors reported as "FILE:LINE: ...".  Secrets are never values:
 * keys ending in _file name a file that holds them.
 */
#ifndef SOKO_CONFIG_H
#define SOKO_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct config {
#define CFG_STR(name, def, doc) char *name;
#define CFG_INT(name, def, min, max, doc) int64_t name;
#define CFG_BOOL(name, def, doc) bool name;
#include "config.def"
#undef CFG_STR
#undef CFG_INT
#undef CFG_BOOL
};

/* A config holding every default.  Caller frees with config_free. */
struct config *config_new(void);
void config_free(struct config *c); /* NULL-safe */

/* Sets one key from its text value.  Returns 0, or -1 with a reason
 * ("unknown key", "not an integer", "out of range 1..100") in err. */
int config_set(struct config *c, const char *key, const char *value,
               char *err, size_t errlen);

/* Reads FILE; the first error stops it with "FILE:LINE: reason" in err.
 * Returns 0 or -1. */
int config_load(struct config *c, const char *path, char *err,
                size_t errlen);

/* Checks what only makes sense across keys (log level syntax, store URL
 * scheme, listen address).  Returns 0 or -1 with a reason. */
int config_check(const struct config *c, char *err, size_t errlen);

/* Prints every key with its default, range and doc. */
void config_help(FILE *out);

/*
 * Reads a secret: the first line of file `path` (trailing newline
 * stripped), or else the environment variable `env`.  Returns a malloc'd
 * string (caller wipes and frees) or NULL if neither is set; -1 in *bad
 * with a reason when the file cannot be read.
 */
char *config_secret(const char *path, const char *env, int *bad, char *err,
                    size_t errlen);

#endif
