/*
 * fsync_rate.c - the durability floor of a filesystem: how many
 * write + fdatasync (and write + fsync) round trips per second one thread
 * gets, like pg_test_fsync's "one 8kB write" test (docs/benchmarks.md).
 *
 *   fsync_rate DIR [SECONDS]
 *
 * Three loops of SECONDS/3 each, on a scratch file in DIR (removed):
 *   overwrite_fdatasync  8 kB pwrite at offset 0, fdatasync (pg_test_fsync);
 *   overwrite_fsync      the same with fsync;
 *   append_fdatasync     8 kB appended, fdatasync (how a WAL grows: the
 *                        size change makes the filesystem journal commit).
 * Prints one "result key=value ..." line on stdout.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 8192

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
loop(int fd, const char *buf, double secs, int use_fsync, int append)
{
	double t0 = now_s(), t;
	long n = 0;
	off_t off = 0;

	do {
		if (pwrite(fd, buf, BLOCK, off) != BLOCK) {
			fprintf(stderr, "fsync_rate: pwrite: %s\n",
			        strerror(errno));
			exit(1);
		}
		if (append)
			off += BLOCK;
		if ((use_fsync ? fsync(fd) : fdatasync(fd)) != 0) {
			fprintf(stderr, "fsync_rate: sync: %s\n",
			        strerror(errno));
			exit(1);
		}
		n++;
		t = now_s();
	} while (t - t0 < secs);
	return (double)n / (t - t0);
}

int
main(int argc, char **argv)
{
	static char buf[BLOCK];
	char path[4096];
	double secs = argc > 2 ? strtod(argv[2], NULL) : 3.0;
	double ow_fdatasync, ow_fsync, app_fdatasync;
	int fd;

	if (argc < 2 || secs <= 0) {
		fprintf(stderr, "usage: fsync_rate DIR [SECONDS]\n");
		return 2;
	}
	snprintf(path, sizeof path, "%s/fsync_rate.%ld.tmp", argv[1],
	         (long)getpid());
	memset(buf, 'x', sizeof buf);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		fprintf(stderr, "fsync_rate: %s: %s\n", path, strerror(errno));
		return 1;
	}
	/* the overwrite loops rewrite an allocated, synced block */
	if (pwrite(fd, buf, BLOCK, 0) != BLOCK || fsync(fd) != 0) {
		fprintf(stderr, "fsync_rate: prepare: %s\n", strerror(errno));
		return 1;
	}
	ow_fdatasync = loop(fd, buf, secs / 3, 0, 0);
	ow_fsync = loop(fd, buf, secs / 3, 1, 0);
	if (ftruncate(fd, 0) != 0 || fsync(fd) != 0) {
		fprintf(stderr, "fsync_rate: truncate: %s\n", strerror(errno));
		return 1;
	}
	app_fdatasync = loop(fd, buf, secs / 3, 0, 1);
	close(fd);
	unlink(path);
	printf("result overwrite_fdatasync_per_s=%.0f overwrite_fsync_per_s=%.0f "
	       "append_fdatasync_per_s=%.0f\n",
	       ow_fdatasync, ow_fsync, app_fdatasync);
	return 0;
}
