/*
 * replay.c - runs a fuzz target over every file of its corpus directories
 * with the ordinary compiler (and ASan in the asan build), so a crash found
 * once stays fixed (STYLE.md §13).  Prints "fuzz_NAME: N passed, 0 failed";
 * a failing input aborts the process, which fails the suite.
 *
 *   replay_NAME DIR...
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
main(int argc, char **argv)
{
	const char *name = strrchr(argv[0], '/');
	long n = 0;
	int i;

	name = name ? name + 1 : argv[0];
	for (i = 1; i < argc; i++) {
		DIR *d = opendir(argv[i]);
		struct dirent *e;

		if (d == NULL) {
			fprintf(stderr, "%s: cannot open %s\n", name, argv[i]);
			return 1;
		}
		while ((e = readdir(d)) != NULL) {
			char path[4096];
			FILE *f;
			uint8_t *buf;
			long len;

			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
			if ((f = fopen(path, "rb")) == NULL)
				continue;
			fseek(f, 0, SEEK_END);
			len = ftell(f);
			fseek(f, 0, SEEK_SET);
			buf = malloc(len > 0 ? (size_t)len : 1);
			if (buf == NULL ||
			    fread(buf, 1, (size_t)len, f) != (size_t)len) {
				fprintf(stderr, "%s: cannot read %s\n", name,
				        path);
				return 1;
			}
			fclose(f);
			LLVMFuzzerTestOneInput(buf, (size_t)len);
			free(buf);
			n++;
		}
		closedir(d);
	}
	if (n == 0) {
		fprintf(stderr, "%s: empty corpus\n", name);
		return 1;
	}
	printf("%s: %ld passed, 0 failed\n", name, n);
	return 0;
}
