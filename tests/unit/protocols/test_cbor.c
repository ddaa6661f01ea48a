/*
 * test_cbor.c - unit tests for protocols/cbor.c: the RFC 8949 Appendix A
 * vectors of the supported subset (decode, re-encode byte for byte, and
 * encode from values), every truncation of each (-> CODEC_NEED_MORE), the
 * refusals (floats, tags, indefinite lengths, simple values, non-shortest
 * heads, duplicate and unordered keys, nesting past CBOR_MAX_DEPTH, bad
 * UTF-8), encoder overflow, and cbor_dec_skip.
 */
#include "cbor.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

static size_t
unhex(uint8_t *out, const char *hex)
{
	size_t i, n = strlen(hex) / 2;

	for (i = 0; i < n; i++) {
		unsigned v;

		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
	return n;
}

/* Walks one checked item with the cursor and writes it again with the
 * encoder: the canonical subset has one encoding, so out == in. */
static int
reencode(const uint8_t *in, size_t len, uint8_t *out, size_t cap,
         size_t *out_len)
{
	struct cbor_dec d;
	struct cbor_enc e;
	struct cbor_item it;
	const char *why;
	uint64_t pending = 1;

	cbor_dec_init(&d, in, len);
	cbor_enc_init(&e, out, cap);
	while (pending > 0) {
		if (cbor_dec_item(&d, &it, &why) != CODEC_OK)
			return -1;
		pending--;
		switch (it.type) {
		case CBOR_UINT:
			cbor_put_uint(&e, it.u);
			break;
		case CBOR_NINT:
			cbor_put_nint(&e, it.u);
			break;
		case CBOR_BYTES:
			cbor_put_bytes(&e, it.ptr, (size_t)it.u);
			break;
		case CBOR_TEXT:
			cbor_put_text(&e, (const char *)it.ptr, (size_t)it.u);
			break;
		case CBOR_ARRAY:
			cbor_put_array(&e, it.u);
			pending += it.u;
			break;
		case CBOR_MAP:
			cbor_put_map(&e, it.u);
			pending += 2 * it.u;
			break;
		case CBOR_BOOL:
			cbor_put_bool(&e, it.is_true);
			break;
		case CBOR_NULL:
			cbor_put_null(&e);
			break;
		}
	}
	return cbor_enc_finish(&e, out_len);
}

/* RFC 8949 Appendix A, the items of the supported subset. */
static const char *const appendix_a[] = {
    "00",
    "01",
    "0a",
    "17",
    "1818",
    "1819",
    "1864",
    "1903e8",
    "1a000f4240",
    "1b000000e8d4a51000",
    "1bffffffffffffffff",
    "3bffffffffffffffff",
    "20",
    "29",
    "3863",
    "3903e7",
    "f4",
    "f5",
    "f6",
    "40",
    "4401020304",
    "60",
    "6161",
    "6449455446",
    "62225c",
    "62c3bc",
    "63e6b0b4",
    "64f0908591",
    "80",
    "83010203",
    "8301820203820405",
    "98190102030405060708090a0b0c0d0e0f101112131415161718181819",
    "a0",
    "a201020304",
    "a26161016162820203",
    "826161a161626163",
    "a56161614161626142616361436164614461656145",
};

#define N_APPX (sizeof appendix_a / sizeof appendix_a[0])

static void
test_appendix_a_decode(void)
{
	uint8_t in[64], out[64];
	size_t i, n, used, out_len;
	const char *why = "";

	for (i = 0; i < N_APPX; i++) {
		n = unhex(in, appendix_a[i]);
		used = 0;
		CHECK_EQ_INT(cbor_check(in, n, &used, &why), CODEC_OK);
		CHECK_EQ_INT(used, n);
		CHECK_EQ_INT(reencode(in, n, out, sizeof out, &out_len), 0);
		CHECK_EQ_INT(out_len, n);
		CHECK(memcmp(in, out, n) == 0);
	}
}

/* Every proper prefix of every vector is CODEC_NEED_MORE, never BAD, and
 * is read from a heap copy of exactly that size (ASan sees overreads). */
static void
test_truncations(void)
{
	uint8_t in[64];
	size_t i, k, n, used;
	const char *why = "";

	for (i = 0; i < N_APPX; i++) {
		n = unhex(in, appendix_a[i]);
		for (k = 0; k < n; k++) {
			uint8_t *p = malloc(k ? k : 1);

			memcpy(p, in, k);
			CHECK_EQ_INT(cbor_check(p, k, &used, &why),
			             CODEC_NEED_MORE);
			free(p);
		}
	}
}

static int
encodes_to(void (*put)(struct cbor_enc *, uint64_t), uint64_t v,
           const char *hex)
{
	uint8_t want[16], got[16];
	struct cbor_enc e;
	size_t n = unhex(want, hex), w;

	cbor_enc_init(&e, got, sizeof got);
	put(&e, v);
	return cbor_enc_finish(&e, &w) == 0 && w == n &&
	       memcmp(got, want, n) == 0;
}

static void
test_encode_values(void)
{
	struct cbor_enc e;
	uint8_t buf[64], want[64];
	size_t w, n;

	CHECK(encodes_to(cbor_put_uint, 0, "00"));
	CHECK(encodes_to(cbor_put_uint, 23, "17"));
	CHECK(encodes_to(cbor_put_uint, 24, "1818"));
	CHECK(encodes_to(cbor_put_uint, 255, "18ff"));
	CHECK(encodes_to(cbor_put_uint, 256, "190100"));
	CHECK(encodes_to(cbor_put_uint, 65535, "19ffff"));
	CHECK(encodes_to(cbor_put_uint, 65536, "1a00010000"));
	CHECK(encodes_to(cbor_put_uint, 4294967295u, "1affffffff"));
	CHECK(encodes_to(cbor_put_uint, 4294967296u, "1b0000000100000000"));
	CHECK(encodes_to(cbor_put_uint, 1000000000000u, "1b000000e8d4a51000"));
	CHECK(encodes_to(cbor_put_uint, UINT64_MAX, "1bffffffffffffffff"));
	CHECK(encodes_to(cbor_put_nint, UINT64_MAX, "3bffffffffffffffff"));
	CHECK(encodes_to(cbor_put_nint, 999, "3903e7"));
	CHECK(encodes_to(cbor_put_array, 25, "9819"));
	CHECK(encodes_to(cbor_put_map, 2, "a2"));

	cbor_enc_init(&e, buf, sizeof buf);
	cbor_put_int(&e, -1);
	cbor_put_int(&e, -100);
	cbor_put_int(&e, INT64_MIN);
	cbor_put_int(&e, 10);
	cbor_put_bool(&e, false);
	cbor_put_bool(&e, true);
	cbor_put_null(&e);
	cbor_put_bytes(&e, (const uint8_t *)"\1\2\3\4", 4);
	cbor_put_text(&e, "\xc3\xbc", 2);
	cbor_put_text(&e, "", 0);
	CHECK_EQ_INT(cbor_enc_finish(&e, &w), 0);
	n = unhex(want, "203863"
	                "3b7fffffffffffffff"
	                "0a"
	                "f4f5f6"
	                "4401020304"
	                "62c3bc"
	                "60");
	CHECK_EQ_INT(w, n);
	CHECK(memcmp(buf, want, n) == 0);
}

/* A too-small buffer: -1, nothing written past cap, *written = needed. */
static void
test_encode_overflow(void)
{
	uint8_t buf[8];
	struct cbor_enc e;
	size_t w, cap;

	for (cap = 0; cap < 7; cap++) {
		memset(buf, 0xee, sizeof buf);
		cbor_enc_init(&e, buf, cap);
		cbor_put_uint(&e, 1000);     /* 3 bytes */
		cbor_put_text(&e, "abc", 3); /* 4 bytes */
		CHECK_EQ_INT(cbor_enc_finish(&e, &w), -1);
		CHECK_EQ_INT(w, 7);
		CHECK(buf[cap] == 0xee);
	}
	cbor_enc_init(&e, buf, 7);
	cbor_put_uint(&e, 1000);
	cbor_put_text(&e, "abc", 3);
	CHECK_EQ_INT(cbor_enc_finish(&e, &w), 0);
	CHECK_EQ_INT(w, 7);
	cbor_enc_init(&e, NULL, 100); /* measuring */
	cbor_put_bytes(&e, buf, 7);
	CHECK_EQ_INT(cbor_enc_finish(&e, &w), -1);
	CHECK_EQ_INT(w, 8);
}

static const struct {
	const char *hex;
	const char *why;
} bad[] = {
    /* floats (Appendix A) */
    {"f90000", "floats not supported"},
    {"f93c00", "floats not supported"},
    {"fa47c35000", "floats not supported"},
    {"fb3ff199999999999a", "floats not supported"},
    /* tags */
    {"c074323031332d30332d32315432303a30343a30305a", "tags not supported"},
    {"c249010000000000000000", "tags not supported"},
    {"d82076687474703a2f2f7777772e6578616d706c652e636f6d",
     "tags not supported"},
    /* indefinite lengths and break */
    {"5f42010243030405ff", "indefinite length not supported"},
    {"7f657374726561646d696e67ff", "indefinite length not supported"},
    {"9fff", "indefinite length not supported"},
    {"bf61610161629f0203ffff", "indefinite length not supported"},
    {"ff", "unexpected break"},
    {"1f", "indefinite length not supported"},
    {"1c", "reserved additional information"},
    /* simple values other than false/true/null */
    {"f7", "simple value not supported"},
    {"f0", "simple value not supported"},
    {"f8ff", "simple value not supported"},
    /* non-shortest heads */
    {"1800", "non-shortest integer encoding"},
    {"1817", "non-shortest integer encoding"},
    {"1900ff", "non-shortest integer encoding"},
    {"1a0000ffff", "non-shortest integer encoding"},
    {"1b00000000ffffffff", "non-shortest integer encoding"},
    {"3800", "non-shortest integer encoding"},
    {"580161", "non-shortest integer encoding"},
    {"98020102", "non-shortest integer encoding"},
    {"b80101f6", "non-shortest integer encoding"},
    /* map keys */
    {"a201020103", "duplicate map key"},
    {"a203040102", "map keys not in canonical order"},
    {"a2616201616102", "map keys not in canonical order"},
    {"a2186401181802", "map keys not in canonical order"},
    {"a1800102", "map key is not an integer or string"},
    {"a1f601", "map key is not an integer or string"},
    /* depth 9 */
    {"818181818181818180", "nesting too deep"},
    {"a101a101a101a101a101a101a101a101a0", "nesting too deep"},
    /* UTF-8 */
    {"6180", "text is not valid UTF-8"},
    {"62c080", "text is not valid UTF-8"},
    {"63e08080", "text is not valid UTF-8"},
    {"63eda080", "text is not valid UTF-8"},
    {"64f4908080", "text is not valid UTF-8"},
    {"61ff", "text is not valid UTF-8"},
    {"61c3", "text is not valid UTF-8"},
    {"62e6b0", "text is not valid UTF-8"},
};

static void
test_refusals(void)
{
	uint8_t in[64];
	size_t i, n, used;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *why = "";

		n = unhex(in, bad[i].hex);
		if (cbor_check(in, n, &used, &why) != CODEC_BAD)
			fprintf(stderr, "  accepted %s\n", bad[i].hex);
		CHECK_EQ_STR(why, bad[i].why);
	}
}

/* The limits: depth 8 is fine, one more is not; nested keys keep their own
 * order per level. */
static void
test_limits(void)
{
	uint8_t in[64];
	size_t n, used;
	const char *why = "";

	n = unhex(in, "8181818181818180");
	CHECK_EQ_INT(cbor_check(in, n, &used, &why), CODEC_OK);
	n = unhex(in, "a101a101a101a101a101a101a101a0");
	CHECK_EQ_INT(cbor_check(in, n, &used, &why), CODEC_OK);
	n = unhex(in, "a201a1020302a10203");
	CHECK_EQ_INT(cbor_check(in, n, &used, &why), CODEC_OK);
	CHECK_EQ_INT(used, n);
	/* trailing bytes are the caller's business */
	n = unhex(in, "0102");
	CHECK_EQ_INT(cbor_check(in, n, &used, &why), CODEC_OK);
	CHECK_EQ_INT(used, 1);
	/* a count no buffer of this size could hold: need more, not a crash */
	n = unhex(in, "9bffffffffffffffff");
	CHECK_EQ_INT(cbor_check(in, n, &used, &why), CODEC_NEED_MORE);
	n = unhex(in, "bb7fffffffffffffff01");
	CHECK_EQ_INT(cbor_check(in, n, &used, &why), CODEC_NEED_MORE);
	n = unhex(in, "5bffffffffffffffff00");
	CHECK_EQ_INT(cbor_check(in, n, &used, &why), CODEC_NEED_MORE);
}

static void
test_skip(void)
{
	uint8_t in[64];
	struct cbor_dec d;
	struct cbor_item it;
	size_t n;
	const char *why = "";

	n = unhex(in, "8301820203820405"
	              "a26161016162820203"
	              "17");
	cbor_dec_init(&d, in, n);
	CHECK_EQ_INT(cbor_dec_skip(&d, &why), CODEC_OK);
	CHECK_EQ_INT(d.pos, 8);
	CHECK_EQ_INT(cbor_dec_skip(&d, &why), CODEC_OK);
	CHECK_EQ_INT(d.pos, 17);
	CHECK_EQ_INT(cbor_dec_item(&d, &it, &why), CODEC_OK);
	CHECK_EQ_INT(it.type, CBOR_UINT);
	CHECK_EQ_INT(it.u, 23);
	CHECK_EQ_INT(cbor_dec_skip(&d, &why), CODEC_NEED_MORE);
	cbor_dec_init(&d, in, 7); /* truncated: cursor must not move */
	CHECK_EQ_INT(cbor_dec_skip(&d, &why), CODEC_NEED_MORE);
	CHECK_EQ_INT(d.pos, 0);
	n = unhex(in, "82fa00000000");
	cbor_dec_init(&d, in, n);
	CHECK_EQ_INT(cbor_dec_skip(&d, &why), CODEC_BAD);
	CHECK_EQ_INT(d.pos, 0);
}

static void
test_utf8(void)
{
	CHECK(cbor_utf8_valid((const uint8_t *)"", 0));
	CHECK(cbor_utf8_valid((const uint8_t *)"a\0b", 3));
	CHECK(cbor_utf8_valid((const uint8_t *)"\xf4\x8f\xbf\xbf", 4));
	CHECK(cbor_utf8_valid((const uint8_t *)"\xed\x9f\xbf", 3));
	CHECK(cbor_utf8_valid((const uint8_t *)"\xee\x80\x80", 3));
	CHECK(!cbor_utf8_valid((const uint8_t *)"\xed\xbf\xbf", 3));
	CHECK(!cbor_utf8_valid((const uint8_t *)"\xf0\x8f\xbf\xbf", 4));
	CHECK(!cbor_utf8_valid((const uint8_t *)"\xf5\x80\x80\x80", 4));
	CHECK(!cbor_utf8_valid((const uint8_t *)"\xc1\xbf", 2));
}

int
main(void)
{
	RUN(test_appendix_a_decode);
	RUN(test_truncations);
	RUN(test_encode_values);
	RUN(test_encode_overflow);
	RUN(test_refusals);
	RUN(test_limits);
	RUN(test_skip);
	RUN(test_utf8);
	return check_report("cbor");
}
