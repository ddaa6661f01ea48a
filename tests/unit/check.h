/*
 * check.h - soko's tiny unit-test harness (STYLE.md §12).
 *
 *   CHECK(cond)              record a failure and go on
 *   CHECK_EQ_INT(a, b)       integers, both printed on failure
 *   CHECK_EQ_STR(a, b)       strings
 *   RUN(test_fn)             run one test function, print its name
 *   return check_report("suite");   prints "N passed, N failed"
 *
 * A check counts once; a test function passes when none of its checks
 * failed.  Header-only, so each test binary stands alone.
 */
#ifndef SOKO_CHECK_H
#define SOKO_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int check_n_pass, check_n_fail, check_cur_failed;
static const char *check_cur_name = "";

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "  FAIL %s:%d: %s: %s\n", __FILE__, \
			        __LINE__, check_cur_name, #cond);           \
			check_cur_failed = 1;                                \
		}                                                            \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                   \
	do {                                                                 \
		long long check_a_ = (long long)(a),                         \
			  check_b_ = (long long)(b);                         \
		if (check_a_ != check_b_) {                                  \
			fprintf(stderr,                                      \
			        "  FAIL %s:%d: %s: %s == %s (%lld != %lld)\n", \
			        __FILE__, __LINE__, check_cur_name, #a, #b,  \
			        check_a_, check_b_);                         \
			check_cur_failed = 1;                                \
		}                                                            \
	} while (0)

#define CHECK_EQ_STR(a, b)                                                   \
	do {                                                                 \
		const char *check_a_ = (a), *check_b_ = (b);                 \
		if (check_a_ == NULL || check_b_ == NULL ||                  \
		    strcmp(check_a_, check_b_) != 0) {                       \
			fprintf(stderr,                                      \
			        "  FAIL %s:%d: %s: %s == %s (\"%s\" != "     \
			        "\"%s\")\n",                                 \
			        __FILE__, __LINE__, check_cur_name, #a, #b,  \
			        check_a_ ? check_a_ : "(null)",              \
			        check_b_ ? check_b_ : "(null)");             \
			check_cur_failed = 1;                                \
		}                                                            \
	} while (0)

#define RUN(fn)                                                              \
	do {                                                                 \
		check_cur_name = #fn;                                        \
		check_cur_failed = 0;                                        \
		fn();                                                        \
		if (check_cur_failed) {                                      \
			check_n_fail++;                                      \
			fprintf(stderr, "not ok %s\n", #fn);                 \
		} else {                                                     \
			check_n_pass++;                                      \
			printf("ok %s\n", #fn);                              \
		}                                                            \
		fflush(stdout);                                              \
	} while (0)

static inline int
check_report(const char *suite)
{
	printf("%s: %d passed, %d failed\n", suite, check_n_pass,
	       check_n_fail);
	return check_n_fail == 0 ? 0 : 1;
}

#endif
