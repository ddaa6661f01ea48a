/*
 * config.c - configuration parsing and checks (config.h).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "util.h"

struct config *
config_new(void)
{
	struct config *c = xcalloc(1, sizeof *c);

#define CFG_STR(name, def, doc) c->name = xstrdup(def);
#define CFG_INT(name, def, min, max, doc) c->name = def;
#define CFG_BOOL(name, def, doc) c->name = def;
#include "config.def"
#undef CFG_STR
#undef CFG_INT
#undef CFG_BOOL
	return c;
}

void
config_free(struct config *c)
{
	if (c == NULL)
		return;
#define CFG_STR(name, def, doc) free(c->name);
#define CFG_INT(name, def, min, max, doc)
#define CFG_BOOL(name, def, doc)
#include "config.def"
#undef CFG_STR
#undef CFG_INT
#undef CFG_BOOL
	free(c);
}

static int
parse_int(const char *v, int64_t min, int64_t max, int64_t *out, char *err,
          size_t errlen)
{
	char *end;
	long long n;

	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0') {
		snprintf(err, errlen, "\"%s\" is not an integer", v);
		return -1;
	}
	if (n < min || n > max) {
		snprintf(err, errlen, "%lld is out of range %lld..%lld", n,
		         (long long)min, (long long)max);
		return -1;
	}
	*out = n;
	return 0;
}

static int
parse_bool(const char *v, bool *out, char *err, size_t errlen)
{
	if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 ||
	    strcmp(v, "on") == 0 || strcmp(v, "1") == 0)
		*out = true;
	else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0 ||
	         strcmp(v, "off") == 0 || strcmp(v, "0") == 0)
		*out = false;
	else {
		snprintf(err, errlen,
		         "\"%s\" is not a boolean (true/false, yes/no, on/off)",
		         v);
		return -1;
	}
	return 0;
}

int
config_set(struct config *c, const char *key, const char *value, char *err,
           size_t errlen)
{
#define CFG_STR(name, def, doc)                                              \
	if (strcmp(key, #name) == 0) {                                       \
		free(c->name);                                               \
		c->name = xstrdup(value);                                    \
		return 0;                                                    \
	}
#define CFG_INT(name, def, min, max, doc)                                    \
	if (strcmp(key, #name) == 0)                                         \
		return parse_int(value, min, max, &c->name, err, errlen);
#define CFG_BOOL(name, def, doc)                                             \
	if (strcmp(key, #name) == 0)                                         \
		return parse_bool(value, &c->name, err, errlen);
#include "config.def"
#undef CFG_STR
#undef CFG_INT
#undef CFG_BOOL
	snprintf(err, errlen, "unknown key \"%s\"", key);
	return -1;
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' ||
	                 e[-1] == '\r'))
		*--e = '\0';
	return s;
}

int
config_load(struct config *c, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char line[4096], why[256];
	int lineno = 0, rc = 0;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		char *k, *v, *eq, *hash;
		size_t vl;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			snprintf(err, errlen, "%s:%d: line too long", path,
			         lineno);
			rc = -1;
			break;
		}
		k = trim(line);
		if (*k == '\0' || *k == '#')
			continue;
		if ((eq = strchr(k, '=')) == NULL) {
			snprintf(err, errlen, "%s:%d: expected key = value",
			         path, lineno);
			rc = -1;
			break;
		}
		*eq = '\0';
		v = trim(eq + 1);
		k = trim(k);
		if (*v == '"') {
			vl = strlen(v);
			if (vl < 2 || v[vl - 1] != '"') {
				snprintf(err, errlen,
				         "%s:%d: unterminated quoted value", path,
				         lineno);
				rc = -1;
				break;
			}
			v[vl - 1] = '\0';
			v++;
		} else if ((hash = strstr(v, " #")) != NULL) {
			*hash = '\0';
			v = trim(v);
		}
		if (config_set(c, k, v, why, sizeof why) != 0) {
			snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
			rc = -1;
			break;
		}
	}
	fclose(f);
	return rc;
}

int
config_check(const struct config *c, char *err, size_t errlen)
{
	char why[256];
	const char *colon;

	if (strncmp(c->store, "sqlite:", 7) != 0 &&
	    strncmp(c->store, "pg:", 3) != 0 &&
	    strncmp(c->store, "postgresql://", 13) != 0 &&
	    strncmp(c->store, "postgres://", 11) != 0) {
		snprintf(err, errlen,
		         "store: \"%s\" is not sqlite:PATH or postgresql://...",
		         c->store);
		return -1;
	}
	if (strcmp(c->store, "sqlite:") == 0) {
		snprintf(err, errlen, "store: sqlite: needs a path");
		return -1;
	}
	colon = strrchr(c->http_listen, ':');
	if (colon == NULL || colon == c->http_listen || colon[1] == '\0' ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
	    atol(colon + 1) > 65535) {
		snprintf(err, errlen,
		         "http_listen: \"%s\" is not ADDRESS:PORT (0-65535)",
		         c->http_listen);
		return -1;
	}
	if (c->pos_listen[0] != '\0') {
		colon = strrchr(c->pos_listen, ':');
		if (colon == NULL || colon == c->pos_listen ||
		    colon[1] == '\0' ||
		    strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
		    atol(colon + 1) > 65535) {
			snprintf(err, errlen,
			         "pos_listen: \"%s\" is not ADDRESS:PORT "
			         "(0-65535)",
			         c->pos_listen);
			return -1;
		}
		if (c->pos_kek_file[0] == '\0') {
			snprintf(err, errlen,
			         "pos_listen is set but pos_kek_file is not");
			return -1;
		}
		/* POS TLS: both files or neither (net_pos.c) */
		if ((c->pos_tls_cert_file[0] == '\0') !=
		    (c->pos_tls_key_file[0] == '\0')) {
			snprintf(err, errlen,
			         "pos_tls_cert_file and pos_tls_key_file: set "
			         "both or neither");
			return -1;
		}
	}
	{
		/* log_set_levels() applies a valid spec; main applies the
		 * same one right after, so checking here is harmless */
		char *spec = xstrdup(c->log_level);
		int ok = log_set_levels(spec, why, sizeof why);

		free(spec);
		if (ok != 0) {
			snprintf(err, errlen, "log_level: %s", why);
			return -1;
		}
	}
	if (c->dbq_batch_max > c->dbq_queue_max) {
		snprintf(err, errlen,
		         "dbq_batch_max (%lld) exceeds dbq_queue_max (%lld)",
		         (long long)c->dbq_batch_max,
		         (long long)c->dbq_queue_max);
		return -1;
	}
	return 0;
}

void
config_help(FILE *out)
{
#define CFG_STR(name, def, doc)                                              \
	fprintf(out, "%s = \"%s\"\n    string. %s\n", #name, def, doc);
#define CFG_INT(name, def, min, max, doc)                                    \
	fprintf(out, "%s = %lld\n    integer %lld..%lld. %s\n", #name,       \
	        (long long)(def), (long long)(min), (long long)(max), doc);
#define CFG_BOOL(name, def, doc)                                             \
	fprintf(out, "%s = %s\n    boolean. %s\n", #name,                    \
	        (def) ? "true" : "false", doc);
#include "config.def"
#undef CFG_STR
#undef CFG_INT
#undef CFG_BOOL
}

char *
config_secret(const char *path, const char *env, int *bad, char *err,
              size_t errlen)
{
	const char *e;

	*bad = 0;
	if (path != NULL && path[0] != '\0') {
		FILE *f = fopen(path, "r");
		char buf[1024];
		struct stat sb;
		char *s;

		if (f == NULL) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			*bad = -1;
			return NULL;
		}
		if (fstat(fileno(f), &sb) == 0 && (sb.st_mode & 0004) != 0)
			log_msg(LOG_CORE, LOG_LEVEL_WARN,
			        "event=secret_file_world_readable path=%s",
			        path);
		if (fgets(buf, sizeof buf, f) == NULL) {
			fclose(f);
			snprintf(err, errlen, "%s: empty", path);
			*bad = -1;
			return NULL;
		}
		fclose(f);
		buf[strcspn(buf, "\r\n")] = '\0';
		s = xstrdup(buf);
		explicit_bzero(buf, sizeof buf);
		return s;
	}
	if (env != NULL && (e = getenv(env)) != NULL && e[0] != '\0')
		return xstrdup(e);
	return NULL;
}
