/*
 * test_base64.c - unit tests for protocols/base64.c: the RFC 4648 §10
 * vectors both ways, the Daraja OAuth sample header (wire-formats §1.1),
 * the strict decoder's refusals, and output overflow.
 */
#include "base64.h"

#include <string.h>

#include "check.h"

static const char *const vec[][2] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
    /* Daraja Authorization page sample (CONFIRMED). */
    {"CdmNbdt0iBN1oqDfKasm4dabdpKmtaNn:DLKG7PBun720GZim",
     "Q2RtTmJkdDBpQk4xb3FEZkthc200ZGFiZHBLbXRhTm46RExLRzdQQnVuNzIwR1ppbQ=="},
};

static void
test_vectors(void)
{
	size_t i;

	for (i = 0; i < sizeof vec / sizeof vec[0]; i++) {
		char enc[128];
		uint8_t dec[128];
		size_t n;
		const char *why;

		CHECK(base64_encode(enc, sizeof enc, (const uint8_t *)vec[i][0],
		                    strlen(vec[i][0]), &n) == CODEC_OK);
		CHECK_EQ_STR(enc, vec[i][1]);
		CHECK_EQ_INT(n, strlen(vec[i][1]));
		CHECK(base64_decode(dec, sizeof dec, vec[i][1],
		                    strlen(vec[i][1]), &n, &why) == CODEC_OK);
		CHECK_EQ_INT(n, strlen(vec[i][0]));
		CHECK(memcmp(dec, vec[i][0], n) == 0);
	}
}

static void
test_all_bytes_round_trip(void)
{
	uint8_t in[256], out[256];
	char enc[400];
	size_t len, n, m;
	const char *why;

	for (n = 0; n < 256; n++)
		in[n] = (uint8_t)(255 - n);
	for (len = 0; len <= 256; len++) {
		CHECK(base64_encode(enc, sizeof enc, in, len, &n) == CODEC_OK);
		CHECK_EQ_INT(n, BASE64_ENC_LEN(len));
		CHECK(base64_decode(out, sizeof out, enc, n, &m, &why) ==
		      CODEC_OK);
		CHECK_EQ_INT(m, len);
		CHECK(memcmp(in, out, len) == 0);
	}
}

static void
test_refusals(void)
{
	static const char *const bad[] = {
	    "Zg=",  "Zg",    "Zm9v=",  "Zh==", "Zm9=", "Zg==Zg==", "Z===",
	    "====", "Zm 9v", "Zm9v\n", "Zm-v", "Zm_v", "Zm9\x80",
	};
	size_t i, n;
	uint8_t out[32];

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *why = NULL;

		CHECK(base64_decode(out, sizeof out, bad[i], strlen(bad[i]), &n,
		                    &why) == CODEC_BAD);
		CHECK(why != NULL);
	}
}

static void
test_overflow(void)
{
	char enc[8];
	uint8_t dec[2];
	size_t n;
	const char *why;

	CHECK(base64_encode(enc, 8, (const uint8_t *)"foobar", 6, &n) ==
	      CODEC_NEED_MORE);
	CHECK_EQ_INT(n, 9);
	CHECK(base64_encode(enc, 5, (const uint8_t *)"foo", 3, &n) == CODEC_OK);
	CHECK_EQ_STR(enc, "Zm9v");
	CHECK(base64_decode(dec, sizeof dec, "Zm9v", 4, &n, &why) ==
	      CODEC_NEED_MORE);
	CHECK_EQ_INT(n, 3);
}

int
main(void)
{
	RUN(test_vectors);
	RUN(test_all_bytes_round_trip);
	RUN(test_refusals);
	RUN(test_overflow);
	return check_report("base64");
}
