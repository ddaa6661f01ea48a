/*
 * test_json.c - unit tests for protocols/json.c: token structure of valid
 * documents, every truncation of each (-> CODEC_BAD), the strictness
 * refusals (UTF-8, surrogates, control characters, duplicate keys, depth
 * limit and one past it, leading zeros, NaN, trailing bytes), the token
 * array limit and one past it, key lookup and unescaping, exact decimal
 * conversion, and the writer (escaping, overflow, misuse, and
 * parse(write(x)) == x).
 */
#include "json.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

static struct json_tok toks[512];

static enum codec_rc
parse(struct json_doc *d, const char *s, const char **why)
{
	return json_parse(d, toks, sizeof toks / sizeof toks[0], s, strlen(s),
	                  why);
}

static const char *const valid[] = {
    "{}",
    "[]",
    "0",
    "-0.5e+3",
    "\"a\\u00e9\\ud83d\\ude00\\n\"",
    " {\"a\" : [1, 2.5, -3e2, true, false, null, {}, []], "
    "\"b\":{\"c\":\"d\"}} ",
    "{\"Body\":{\"stkCallback\":{\"ResultCode\":0,\"ResultDesc\":\"ok\"}}}",
    "[\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]",
    "{\"a\":1,\"\\u0061b\":2,\"ab\\u0000\":3}",
};

static void
test_valid(void)
{
	size_t i;

	for (i = 0; i < sizeof valid / sizeof valid[0]; i++) {
		struct json_doc d;
		const char *why = NULL;

		if (parse(&d, valid[i], &why) != CODEC_OK) {
			fprintf(stderr, "  doc %zu: %s\n", i, why);
			CHECK(0);
		}
	}
}

static void
test_structure(void)
{
	struct json_doc d;
	const char *why;
	const char *s = "{\"a\":[1,{\"x\":null}],\"b\":\"c\\\"d\",\"e\":{}}";
	size_t a, b, e, it;

	CHECK(parse(&d, s, &why) == CODEC_OK);
	CHECK_EQ_INT(d.n_toks, 11);
	CHECK_EQ_INT(d.toks[0].type, JSON_OBJECT);
	CHECK_EQ_INT(d.toks[0].n_items, 3);
	CHECK_EQ_INT(d.toks[0].end, 11);
	CHECK_EQ_INT(d.toks[0].len, strlen(s));
	a = json_obj_get(&d, 0, "a");
	CHECK_EQ_INT(a, 2);
	CHECK_EQ_INT(d.toks[a].type, JSON_ARRAY);
	CHECK_EQ_INT(d.toks[a].n_items, 2);
	it = json_first(&d, a);
	CHECK_EQ_INT(d.toks[it].type, JSON_NUMBER);
	it = json_next(&d, a, it);
	CHECK_EQ_INT(d.toks[it].type, JSON_OBJECT);
	CHECK_EQ_INT(json_next(&d, a, it), 0);
	CHECK_EQ_INT(d.toks[json_obj_get(&d, it, "x")].type, JSON_NULL);
	b = json_obj_get(&d, 0, "b");
	CHECK(json_str_eq(&d, b, "c\"d"));
	CHECK(!json_str_eq(&d, b, "c\""));
	CHECK(!json_str_eq(&d, b, "c\"dd"));
	CHECK(d.toks[b].has_escape);
	e = json_obj_get(&d, 0, "e");
	CHECK_EQ_INT(d.toks[e].n_items, 0);
	CHECK_EQ_INT(json_first(&d, e), 0);
	CHECK_EQ_INT(json_obj_get(&d, 0, "z"), 0);
	CHECK_EQ_INT(json_obj_get(&d, a, "a"), 0); /* not an object */
	/* Keys are compared after unescaping. */
	CHECK(parse(&d, "{\"\\u0041b\":1}", &why) == CODEC_OK);
	CHECK_EQ_INT(json_obj_get(&d, 0, "Ab"), 2);
}

static void
test_truncations(void)
{
	size_t i, n;

	for (i = 0; i < sizeof valid / sizeof valid[0]; i++) {
		size_t len = strlen(valid[i]);

		for (n = 0; n < len; n++) {
			struct json_doc d;
			const char *why = NULL;
			enum codec_rc rc;
			char buf[256];

			memcpy(buf, valid[i], n);
			rc = json_parse(&d, toks, 512, buf, n, &why);
			/* A prefix of a number can be a number; a prefix that
			 * only drops trailing whitespace is still the value. */
			if (rc == CODEC_OK) {
				CHECK(i == 2 || i == 3 || i == 5);
				continue;
			}
			CHECK(rc == CODEC_BAD);
			CHECK(why != NULL);
		}
	}
}

static const struct {
	const char *doc, *why;
} refused[] = {
    {"", "unexpected end of input"},
    {"   ", "unexpected end of input"},
    {"{} x", "trailing bytes after the value"},
    {"{}{}", "trailing bytes after the value"},
    {"[1,]", "unexpected character"},
    {"{\"a\":1,}", "expected a string key"},
    {"{\"a\" 1}", "expected ':'"},
    {"{a:1}", "expected a string key"},
    {"[1 2]", "expected ',' or ']'"},
    {"{\"a\":1 \"b\":2}", "expected ',' or '}'"},
    {"[01]", "leading zero in number"},
    {"-01", "leading zero in number"},
    {"1.", "invalid number fraction"},
    {".5", "unexpected character"},
    {"1e", "invalid number exponent"},
    {"+1", "unexpected character"},
    {"-", "invalid number"},
    {"NaN", "NaN/Infinity are not JSON"},
    {"Infinity", "NaN/Infinity are not JSON"},
    {"-Infinity", "invalid number"},
    {"nul", "invalid literal"},
    {"True", "unexpected character"},
    {"truex", "trailing bytes after the value"},
    {"\"a\tb\"", "control character in string"},
    {"\"a\x01\"", "control character in string"},
    {"\"\\x\"", "invalid escape"},
    {"\"\\u12G4\"", "invalid \\u escape"},
    {"\"\\ud800\"", "lone high surrogate escape"},
    {"\"\\ud800\\u0041\"", "lone high surrogate escape"},
    {"\"\\udc00\"", "lone low surrogate escape"},
    {"\"\xc0\xaf\"", "invalid UTF-8 in string"},
    {"\"\xe0\x80\xaf\"", "invalid UTF-8 in string"},
    {"\"\xf0\x80\x80\xaf\"", "invalid UTF-8 in string"},
    {"\"\xed\xa0\x80\"", "invalid UTF-8 in string"},
    {"\"\xf4\x90\x80\x80\"", "invalid UTF-8 in string"},
    {"\"\x80\"", "invalid UTF-8 in string"},
    {"\"\xc3\"", "invalid UTF-8 in string"},
    {"\"\xff\"", "invalid UTF-8 in string"},
    {"\xef\xbb\xbf{}", "unexpected character"},
    {"{\"a\":1,\"a\":2}", "duplicate key"},
    {"{\"a\":1,\"\\u0061\":2}", "duplicate key"},
    {"{\"x\":{\"a\":1},\"b\":[{\"a\":1,\"b\":2,\"a\":3}]}", "duplicate key"},
    {"'a'", "unexpected character"},
    {"[1,2", "unexpected end of input"},
    {"\"abc", "unterminated string"},
};

static void
test_refused(void)
{
	size_t i;

	for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		struct json_doc d;
		const char *why = NULL;

		if (parse(&d, refused[i].doc, &why) != CODEC_BAD ||
		    why == NULL || strcmp(why, refused[i].why) != 0) {
			fprintf(stderr, "  doc %zu: %s\n", i, why ? why : "-");
			CHECK(0);
		}
	}
	/* A NUL byte inside a string is a control character. */
	{
		struct json_doc d;
		const char *why = NULL;

		CHECK(json_parse(&d, toks, 512, "\"a\0b\"", 5, &why) ==
		      CODEC_BAD);
	}
}

static void
test_depth(void)
{
	char buf[2 * JSON_MAX_DEPTH + 8];
	struct json_doc d;
	const char *why = NULL;
	size_t i, n = 0;

	for (i = 0; i < JSON_MAX_DEPTH; i++)
		buf[n++] = '[';
	for (i = 0; i < JSON_MAX_DEPTH; i++)
		buf[n++] = ']';
	CHECK(json_parse(&d, toks, 512, buf, n, &why) == CODEC_OK);
	n = 0;
	for (i = 0; i <= JSON_MAX_DEPTH; i++)
		buf[n++] = '[';
	for (i = 0; i <= JSON_MAX_DEPTH; i++)
		buf[n++] = ']';
	CHECK(json_parse(&d, toks, 512, buf, n, &why) == CODEC_BAD);
	CHECK_EQ_STR(why, "nesting too deep");
	/* Deep objects too; and a huge nesting fails fast, no recursion. */
	{
		static char big[100000];

		memset(big, '[', sizeof big);
		CHECK(json_parse(&d, toks, 512, big, sizeof big, &why) ==
		      CODEC_BAD);
		for (i = 0; i + 5 < sizeof big; i += 5)
			memcpy(big + i, "{\"a\":", 5);
		CHECK(json_parse(&d, toks, 512, big, i, &why) == CODEC_BAD);
		CHECK_EQ_STR(why, "nesting too deep");
	}
}

static void
test_token_limit(void)
{
	struct json_doc d;
	struct json_tok few[4];
	const char *why = NULL;

	CHECK(json_parse(&d, few, 4, "[1,2,3]", 7, &why) == CODEC_OK);
	CHECK_EQ_INT(d.n_toks, 4);
	CHECK(json_parse(&d, few, 4, "[1,2,3,4]", 9, &why) == CODEC_NEED_MORE);
	CHECK_EQ_STR(why, "too many tokens");
	CHECK(json_parse(&d, few, 0, "1", 1, &why) == CODEC_NEED_MORE);
	/* Invalid input is BAD even if it would also be too big. */
	CHECK(json_parse(&d, few, 4, "[1,2,", 5, &why) == CODEC_BAD);
}

static void
test_unescape(void)
{
	struct json_doc d;
	const char *why = NULL;
	char out[32];
	size_t len;

	CHECK(parse(&d,
	            "[\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00z\","
	            "\"x\\u0000y\",\"plain\"]",
	            &why) == CODEC_OK);
	CHECK(json_str_unescape(out, sizeof out, &d, 1, &len, &why) ==
	      CODEC_OK);
	CHECK_EQ_STR(out, "a\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80z");
	CHECK_EQ_INT(len, 16);
	CHECK(json_str_unescape(out, 16, &d, 1, &len, &why) == CODEC_NEED_MORE);
	CHECK_EQ_INT(len, 17);
	CHECK(json_str_unescape(out, 17, &d, 1, &len, &why) == CODEC_OK);
	CHECK(json_str_unescape(out, sizeof out, &d, 2, &len, &why) ==
	      CODEC_BAD);
	CHECK(json_str_unescape(out, sizeof out, &d, 0, &len, &why) ==
	      CODEC_BAD);
	CHECK(json_str_unescape(out, sizeof out, &d, 3, &len, &why) ==
	      CODEC_OK);
	CHECK_EQ_STR(out, "plain");
}

static struct json_span
sp(const char *s)
{
	struct json_span r;

	r.ptr = s;
	r.len = strlen(s);
	return r;
}

static void
test_num_to_minor(void)
{
	static const struct {
		const char *s;
		unsigned exp;
		int ok;
		int64_t v;
	} t[] = {
	    {"1", 2, 1, 100},
	    {"1.00", 2, 1, 100},
	    {"100.5", 2, 1, 10050},
	    {"5.00", 2, 1, 500},
	    {"0.01", 2, 1, 1},
	    {"1.000000000000000000000000000", 2, 1, 100},
	    {"-1980.00", 2, 1, -198000},
	    {"8959269.60", 2, 1, 895926960},
	    {"0", 2, 1, 0},
	    {"-0", 2, 1, 0},
	    {"0.000", 0, 1, 0},
	    {"0e999999999999", 2, 1, 0},
	    {"1.5e2", 2, 1, 15000},
	    {"15E-1", 2, 1, 150},
	    {"1e-2", 2, 1, 1},
	    {"1e-3", 2, 0, 0},
	    {"1.005", 2, 0, 0},
	    {"0.001", 2, 0, 0},
	    {"100.5", 0, 0, 0},
	    {"100", 0, 1, 100},
	    {"1050", 3, 1, 1050000},
	    {"92233720368547758.07", 2, 1, INT64_MAX},
	    {"92233720368547758.08", 2, 0, 0},
	    {"-92233720368547758.08", 2, 1, INT64_MIN},
	    {"-92233720368547758.09", 2, 0, 0},
	    {"1e17", 2, 0, 0},
	    {"1e16", 2, 1, 1000000000000000000LL},
	    {"1e999999999999999999999", 2, 0, 0},
	    {"12345678901234567890123", 0, 0, 0},
	    {"01", 2, 0, 0},
	    {"1.", 2, 0, 0},
	    {"", 2, 0, 0},
	    {" 1", 2, 0, 0},
	    {"1 ", 2, 0, 0},
	    {"0x10", 2, 0, 0},
	    {"NaN", 2, 0, 0},
	};
	size_t i;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		int64_t v = 0;
		const char *why = NULL;
		enum codec_rc rc =
		    json_num_to_minor(sp(t[i].s), t[i].exp, &v, &why);

		if ((rc == CODEC_OK) != t[i].ok || (t[i].ok && v != t[i].v) ||
		    (!t[i].ok && why == NULL)) {
			fprintf(stderr, "  %s: rc %d v %lld\n", t[i].s, rc,
			        (long long)v);
			CHECK(0);
		}
	}
}

static void
test_int_helpers(void)
{
	int64_t i;
	uint64_t u;
	const char *why;

	CHECK(json_num_to_i64(sp("9223372036854775807"), &i, &why) ==
	          CODEC_OK &&
	      i == INT64_MAX);
	CHECK(json_num_to_i64(sp("-9223372036854775808"), &i, &why) ==
	          CODEC_OK &&
	      i == INT64_MIN);
	CHECK(json_num_to_i64(sp("9223372036854775808"), &i, &why) ==
	      CODEC_BAD);
	CHECK(json_num_to_i64(sp("1.0"), &i, &why) == CODEC_BAD);
	CHECK(json_num_to_i64(sp("1e2"), &i, &why) == CODEC_BAD);
	CHECK(json_num_to_i64(sp("20191219102115"), &i, &why) == CODEC_OK &&
	      i == 20191219102115LL);
	CHECK(json_num_to_u64(sp("18446744073709551615"), &u, &why) ==
	          CODEC_OK &&
	      u == UINT64_MAX);
	CHECK(json_num_to_u64(sp("18446744073709551616"), &u, &why) ==
	      CODEC_BAD);
	CHECK(json_num_to_u64(sp("-1"), &u, &why) == CODEC_BAD);
	CHECK(json_num_to_u64(sp("-0"), &u, &why) == CODEC_OK && u == 0);
	CHECK(json_num_to_u64(sp("100"), &u, &why) == CODEC_OK && u == 100);
}

static void
test_writer(void)
{
	char buf[256];
	struct json_w w;
	struct json_doc d;
	size_t n, v;
	const char *why = NULL;

	json_w_init(&w, buf, sizeof buf);
	json_w_obj_begin(&w);
	json_w_key(&w, "s");
	json_w_cstr(&w, "q\"b\\n\n\x01\x1f\xc3\xa9");
	json_w_key(&w, "n");
	json_w_int(&w, INT64_MIN);
	json_w_key(&w, "u");
	json_w_uint(&w, UINT64_MAX);
	json_w_key(&w, "m");
	json_w_minor(&w, 10050, 2);
	json_w_key(&w, "neg");
	json_w_minor(&w, -5, 2);
	json_w_key(&w, "a");
	json_w_arr_begin(&w);
	json_w_bool(&w, true);
	json_w_bool(&w, false);
	json_w_null(&w);
	json_w_raw(&w, "{}", 2);
	json_w_arr_begin(&w);
	json_w_arr_end(&w);
	json_w_arr_end(&w);
	json_w_obj_end(&w);
	CHECK(json_w_finish(&w, &n, &why) == CODEC_OK);
	CHECK_EQ_STR(buf, "{\"s\":\"q\\\"b\\\\n\\n\\u0001\\u001f\xc3\xa9\","
	                  "\"n\":-9223372036854775808,"
	                  "\"u\":18446744073709551615,\"m\":100.50,"
	                  "\"neg\":-0.05,\"a\":[true,false,null,{},[]]}");
	CHECK_EQ_INT(n, strlen(buf));
	/* And back. */
	CHECK(parse(&d, buf, &why) == CODEC_OK);
	{
		char s[32];
		int64_t m;

		CHECK(json_str_unescape(s, sizeof s, &d,
		                        json_obj_get(&d, 0, "s"), &n,
		                        &why) == CODEC_OK);
		CHECK_EQ_STR(s, "q\"b\\n\n\x01\x1f\xc3\xa9");
		v = json_obj_get(&d, 0, "m");
		CHECK(json_num_to_minor(json_span(&d, v), 2, &m, &why) ==
		          CODEC_OK &&
		      m == 10050);
		v = json_obj_get(&d, 0, "neg");
		CHECK(json_num_to_minor(json_span(&d, v), 2, &m, &why) ==
		          CODEC_OK &&
		      m == -5);
	}
}

static void
test_writer_overflow(void)
{
	char buf[64];
	struct json_w w;
	size_t n, cap, need;
	const char *why;

	/* Measure, then every smaller cap is NEED_MORE and the exact one
	 * is OK; nothing is written past cap. */
	json_w_init(&w, NULL, 0);
	json_w_obj_begin(&w);
	json_w_key(&w, "key");
	json_w_cstr(&w, "value");
	json_w_obj_end(&w);
	CHECK(json_w_finish(&w, &need, &why) == CODEC_NEED_MORE);
	CHECK_EQ_INT(need, strlen("{\"key\":\"value\"}") + 1);
	for (cap = 0; cap <= need; cap++) {
		memset(buf, 'X', sizeof buf);
		json_w_init(&w, buf, cap);
		json_w_obj_begin(&w);
		json_w_key(&w, "key");
		json_w_cstr(&w, "value");
		json_w_obj_end(&w);
		if (cap < need) {
			CHECK(json_w_finish(&w, &n, &why) == CODEC_NEED_MORE);
			CHECK_EQ_INT(n, need);
		} else {
			CHECK(json_w_finish(&w, &n, &why) == CODEC_OK);
		}
		CHECK(buf[cap] == 'X');
	}
}

static void
test_writer_misuse(void)
{
	char buf[64];
	struct json_w w;
	size_t n, i;
	const char *why;

	json_w_init(&w, buf, sizeof buf);
	json_w_obj_begin(&w);
	json_w_int(&w, 1); /* value without key */
	json_w_obj_end(&w);
	CHECK(json_w_finish(&w, &n, &why) == CODEC_BAD);

	json_w_init(&w, buf, sizeof buf);
	json_w_arr_begin(&w);
	json_w_key(&w, "k");
	CHECK(json_w_finish(&w, &n, &why) == CODEC_BAD);

	json_w_init(&w, buf, sizeof buf);
	json_w_arr_begin(&w);
	json_w_obj_end(&w);
	CHECK(json_w_finish(&w, &n, &why) == CODEC_BAD);

	json_w_init(&w, buf, sizeof buf);
	json_w_obj_begin(&w);
	CHECK(json_w_finish(&w, &n, &why) == CODEC_BAD);
	CHECK_EQ_STR(why, "unclosed container");

	json_w_init(&w, buf, sizeof buf);
	CHECK(json_w_finish(&w, &n, &why) == CODEC_BAD);

	json_w_init(&w, buf, sizeof buf);
	json_w_int(&w, 1);
	json_w_int(&w, 2);
	CHECK(json_w_finish(&w, &n, &why) == CODEC_BAD);

	json_w_init(&w, buf, sizeof buf);
	json_w_str(&w, "\xc0\xaf", 2);
	CHECK(json_w_finish(&w, &n, &why) == CODEC_BAD);
	CHECK_EQ_STR(why, "invalid UTF-8 in string");

	json_w_init(&w, buf, sizeof buf);
	for (i = 0; i <= JSON_MAX_DEPTH; i++)
		json_w_arr_begin(&w);
	CHECK(json_w_finish(&w, &n, &why) == CODEC_BAD);
	CHECK_EQ_STR(why, "nesting too deep");

	json_w_init(&w, buf, sizeof buf);
	json_w_obj_begin(&w);
	json_w_key(&w, "a");
	json_w_obj_end(&w);
	CHECK(json_w_finish(&w, &n, &why) == CODEC_BAD);
	CHECK_EQ_STR(why, "key without a value");
}

int
main(void)
{
	RUN(test_valid);
	RUN(test_structure);
	RUN(test_truncations);
	RUN(test_refused);
	RUN(test_depth);
	RUN(test_token_limit);
	RUN(test_unescape);
	RUN(test_num_to_minor);
	RUN(test_int_helpers);
	RUN(test_writer);
	RUN(test_writer_overflow);
	RUN(test_writer_misuse);
	return check_report("json");
}
