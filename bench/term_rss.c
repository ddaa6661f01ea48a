/*
 * term_rss.c - a minimal libsokoterm host for the term.rss_kb figure
 * (bench/pos.sh, docs/benchmarks.md "POS channel").
 *
 *   term_rss HOST PORT TERMINAL_ID KEY_HEX TO_AGENT QUEUE_PATH N
 *
 * What firmware does, nothing more: opens the queue, stores N float
 * transfers offline (the link is down), connects with the POSIX helper,
 * logs in (the queue replays as ADVICE_BATCH), then N online transfers
 * one at a time, until the queue is empty.  Prints VmHWM (peak resident
 * set, kB) from /proc/self/status, honestly: it includes libc, SQLite's
 * code pages and page cache, and the library.  Also the peak of RssAnon
 * (private anonymous memory: heap, stacks, SQLite's page cache, the
 * library's structs; no shared library's pages), sampled after every
 * submit and every pump, which is the performance envelope's G9(e)
 * definition ("excluding shared libraries"), and the peak of what the
 * library itself allocated through its allocator hook.  Exit 1 if
 * anything failed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sokoterm.h"

struct host {
	unsigned n_results, n_ok, n_logins;
	bool is_closed;
	long anon_peak_kb; /* peak RssAnon seen by sample() */
};

/* The library's allocations, counted: a header before each block keeps
 * its size. */
struct mem_count {
	size_t cur, peak;
};

union mem_hdr {
	size_t n;
	max_align_t align;
};

static void *
count_alloc(void *ctx, size_t n)
{
	struct mem_count *m = ctx;
	union mem_hdr *h;

	if (n > SIZE_MAX - sizeof *h || (h = malloc(sizeof *h + n)) == NULL)
		return NULL;
	h->n = n;
	m->cur += n;
	if (m->cur > m->peak)
		m->peak = m->cur;
	return h + 1;
}

static void
count_free(void *ctx, void *p)
{
	struct mem_count *m = ctx;
	union mem_hdr *h;

	if (p == NULL)
		return;
	h = (union mem_hdr *)p - 1;
	m->cur -= h->n;
	free(h);
}

static void
on_event(void *ctx, const struct sokoterm_event *ev)
{
	struct host *h = ctx;

	switch (ev->type) {
	case SOKOTERM_EV_LOGIN:
		h->n_logins++;
		break;
	case SOKOTERM_EV_RESULT:
		if (ev->op == SOKOTERM_OP_FLOAT_TRANSFER) {
			h->n_results++;
			if (ev->err == SOKOTERM_OK &&
			    (ev->code == SOKOTERM_CODE_APPROVED ||
			     ev->code == SOKOTERM_CODE_STORED))
				h->n_ok++;
		}
		break;
	case SOKOTERM_EV_CLOSE:
	case SOKOTERM_EV_LOGIN_FAIL:
		h->is_closed = true;
		break;
	default:
		break;
	}
}

static int
unhex(uint8_t *out, size_t n, const char *s)
{
	size_t i;

	if (strlen(s) != 2 * n)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

/* The kB of the "name: N kB" line of /proc/self/status (name includes
 * the colon), or -1. */
static long
status_kb(const char *name)
{
	char line[256];
	long kb = -1;
	size_t n = strlen(name);
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, name, n) == 0) {
			kb = strtol(line + n, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}

/* Keeps the peak of RssAnon (the kernel keeps no peak of it). */
static void
sample(struct host *h)
{
	long kb = status_kb("RssAnon:");

	if (kb > h->anon_peak_kb)
		h->anon_peak_kb = kb;
}

/* Resident kB per mapping (from /proc/self/smaps) on stderr: what the
 * peak is made of. */
static void
rss_by_mapping(void)
{
	char line[512], name[256] = "";
	long kb;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (f == NULL)
		return;
	while (fgets(line, sizeof line, f) != NULL) {
		char *sp;

		if (sscanf(line, "Rss: %ld kB", &kb) == 1) {
			if (kb > 0)
				fprintf(stderr, "term_rss rss_kb=%ld %s\n", kb,
				        name[0] ? name : "[anon]");
			continue;
		}
		/* a mapping header: "addr-addr perms off dev inode path" */
		if (strchr(line, '-') == line + strcspn(line, "-") &&
		    (sp = strrchr(line, ' ')) != NULL && line[0] != ' ' &&
		    strchr(line, ':') != NULL && line[strlen(line) - 1] == '\n') {
			size_t k;
			int fields = 0;

			for (k = 0; line[k] != '\0'; k++)
				if (line[k] == ' ' && line[k + 1] != ' ')
					fields++;
			if (fields >= 4 && strncmp(line, "VmFlags", 7) != 0) {
				snprintf(name, sizeof name, "%s", sp + 1);
				name[strcspn(name, "\n")] = '\0';
			}
		}
	}
	fclose(f);
}

/* Pumps until cond() or ~30 s; 0 ok, -1 failed. */
static int
pump_until(struct sokoterm *t, int fd, struct host *h, unsigned want)
{
	int i;

	for (i = 0; i < 3000 && h->n_results < want; i++) {
		if (h->is_closed ||
		    sokoterm_posix_pump(t, fd, 10) != SOKOTERM_OK)
			return -1;
		sample(h);
	}
	return h->n_results >= want ? 0 : -1;
}

int
main(int argc, char **argv)
{
	struct sokoterm_config cfg;
	struct sokoterm_request r;
	struct sokoterm *t = NULL;
	struct host h;
	struct mem_count mc = {0, 0};
	uint8_t key[SOKOTERM_KEY_LEN];
	uint64_t open_n = 1, tot;
	unsigned n, i;
	int fd = -1, rc = 1;

	if (argc != 8 || unhex(key, sizeof key, argv[4]) != 0 ||
	    (n = (unsigned)strtoul(argv[7], NULL, 10)) == 0) {
		fprintf(stderr, "usage: term_rss HOST PORT TERMINAL_ID KEY_HEX "
		                "TO_AGENT QUEUE_PATH N\n");
		return 2;
	}
	memset(&h, 0, sizeof h);
	memset(&cfg, 0, sizeof cfg);
	cfg.terminal_id = argv[3];
	cfg.key = key;
	cfg.queue_path = argv[6];
	cfg.random = sokoterm_posix_random;
	cfg.on_event = on_event;
	cfg.event_ctx = &h;
	cfg.mem_alloc = count_alloc;
	cfg.mem_free = count_free;
	cfg.mem_ctx = &mc;
	cfg.offline.allowed_ops = SOKOTERM_OP_BIT(SOKOTERM_OP_FLOAT_TRANSFER);
	cfg.offline.floor_limit = 100;
	cfg.offline.total_limit = 100 * (uint64_t)n;
	if (sokoterm_new(&t, &cfg) != SOKOTERM_OK ||
	    sokoterm_tick(t, sokoterm_posix_now_ms()) != SOKOTERM_OK)
		goto out;
	memset(&r, 0, sizeof r);
	r.op = SOKOTERM_OP_FLOAT_TRANSFER;
	r.amount = 100;
	r.currency = 404;
	r.to_agent = argv[5];
	sample(&h);
	for (i = 0; i < n; i++) { /* offline: stored, will be sent */
		if (sokoterm_submit(t, &r, NULL, NULL) != SOKOTERM_OK)
			goto out;
		sample(&h);
	}
	if (sokoterm_posix_connect(argv[1], argv[2], 5000, &fd) !=
	        SOKOTERM_OK ||
	    sokoterm_connect(t, sokoterm_posix_now_ms()) != SOKOTERM_OK)
		goto out;
	if (pump_until(t, fd, &h, n) != 0) /* login and replay */
		goto out;
	for (i = 0; i < n; i++) { /* online, one at a time */
		if (sokoterm_submit(t, &r, NULL, NULL) != SOKOTERM_OK)
			goto out;
		sample(&h);
		if (pump_until(t, fd, &h, n + i + 1) != 0)
			goto out;
	}
	if (sokoterm_queue_count(t, &open_n, &tot) != SOKOTERM_OK ||
	    open_n != 0 || h.n_ok != 2 * n)
		goto out;
	rc = 0;
	rss_by_mapping();
out:
	printf("term_rss transactions=%u ok=%u logins=%u queue_open=%llu "
	       "vm_hwm_kb=%ld anon_peak_kb=%ld lib_heap_peak_kb=%zu\n",
	       2 * n, h.n_ok, h.n_logins, (unsigned long long)open_n,
	       status_kb("VmHWM:"), h.anon_peak_kb,
	       (mc.peak + 1023) / 1024);
	if (fd >= 0)
		close(fd);
	sokoterm_free(t);
	explicit_bzero(key, sizeof key);
	return rc;
}
