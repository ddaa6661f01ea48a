/*
 * fuzz_json.c - libFuzzer target for protocols/json.c.
 *
 * Input: any bytes.  Asserts the properties, not just "no crash": every
 * token of an accepted document lies inside the input; writing the tokens
 * again with the writer (compact, strings and numbers verbatim) gives a
 * document that tokenizes to the same structure and the same scalar text;
 * json_obj_get() finds each key's own value (keys are unique); the number
 * and string helpers terminate on every token; a refused document's *why
 * is set; a string unescaped and written again by the writer parses
 * back to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N_TOKS 1024

static struct json_tok toks[N_TOKS], toks2[N_TOKS];
static char out[1 << 17];

/* A string the parser accepted, unescaped, written again by the writer
 * and parsed back, unescapes to the same bytes. */
static void
check_writer(const char *s, size_t len)
{
	static char w_out[256], back[128];
	struct json_w w;
	struct json_doc d;
	struct json_tok t[2];
	const char *why;
	size_t n, blen;

	json_w_init(&w, w_out, sizeof w_out);
	json_w_str(&w, s, len);
	if (json_w_finish(&w, &n, &why) != CODEC_OK)
		abort();
	if (json_parse(&d, t, 2, w_out, n, &why) != CODEC_OK ||
	    json_str_unescape(back, sizeof back, &d, 0, &blen, &why) !=
	        CODEC_OK ||
	    blen != len || memcmp(back, s, len) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_doc d, d2;
	const char *why = NULL;
	enum codec_rc rc;
	size_t i;

	if (size > sizeof out)
		return 0;
	rc = json_parse(&d, toks, N_TOKS, (const char *)data, size, &why);
	if (rc != CODEC_OK) {
		if (why == NULL || d.n_toks != 0)
			abort();
		return 0;
	}
	if (d.n_toks == 0 || d.toks[0].end != d.n_toks)
		abort();
	for (i = 0; i < d.n_toks; i++) {
		const struct json_tok *t = &d.toks[i];
		char buf[64];
		size_t len;
		int64_t v;
		uint64_t u;

		if (t->start > size || t->len > size - t->start ||
		    t->end <= i || t->end > d.n_toks)
			abort();
		if (t->type == JSON_NUMBER) {
			(void)json_num_to_minor(json_span(&d, i), 2, &v, &why);
			(void)json_num_to_i64(json_span(&d, i), &v, &why);
			(void)json_num_to_u64(json_span(&d, i), &u, &why);
		}
		if (t->type == JSON_STRING) {
			rc = json_str_unescape(buf, sizeof buf, &d, i, &len,
			                       &why);
			if (rc == CODEC_OK &&
			    (len >= sizeof buf || strlen(buf) != len))
				abort();
			if (rc == CODEC_OK)
				check_writer(buf, len);
		}
		if (t->type == JSON_OBJECT) {
			size_t k;

			for (k = json_first(&d, i); k != 0;
			     k = json_next(&d, i, k + 1)) {
				if (json_str_unescape(buf, sizeof buf, &d, k,
				                      &len, &why) == CODEC_OK &&
				    json_obj_get(&d, i, buf) != k + 1)
					abort();
			}
		}
	}
	/* Re-serialize compactly: containers with the writer, scalars
	 * verbatim (strings re-quoted around their raw escaped text). */
	{
		size_t n = 0, stack[JSON_MAX_DEPTH + 1], depth = 0;

		for (i = 0; i < d.n_toks; i++) {
			const struct json_tok *t = &d.toks[i];

			while (depth > 0 && d.toks[stack[depth - 1]].end <= i) {
				size_t c = stack[--depth];

				out[n++] =
				    d.toks[c].type == JSON_OBJECT ? '}' : ']';
			}
			if (depth > 0 && i != stack[depth - 1] + 1) {
				/* A sibling follows: ':' after a key, else ','.
				 */
				size_t c = stack[depth - 1], k, idx = 0;

				for (k = c + 1; k < i; k = d.toks[k].end)
					idx++;
				out[n++] = d.toks[c].type == JSON_OBJECT &&
				                   idx % 2 == 1
				               ? ':'
				               : ',';
			}
			if (t->type == JSON_OBJECT || t->type == JSON_ARRAY) {
				out[n++] = t->type == JSON_OBJECT ? '{' : '[';
				stack[depth++] = i;
				continue;
			}
			if (t->type == JSON_STRING)
				out[n++] = '"';
			memcpy(out + n, data + t->start, t->len);
			n += t->len;
			if (t->type == JSON_STRING)
				out[n++] = '"';
		}
		while (depth > 0)
			out[n++] = d.toks[stack[--depth]].type == JSON_OBJECT
			               ? '}'
			               : ']';
		if (json_parse(&d2, toks2, N_TOKS, out, n, &why) != CODEC_OK ||
		    d2.n_toks != d.n_toks)
			abort();
		for (i = 0; i < d.n_toks; i++) {
			const struct json_tok *a = &d.toks[i], *b = &d2.toks[i];

			if (a->type != b->type || a->n_items != b->n_items ||
			    a->end != b->end || a->has_escape != b->has_escape)
				abort();
			if (a->type != JSON_OBJECT && a->type != JSON_ARRAY &&
			    (a->len != b->len ||
			     memcmp(data + a->start, out + b->start, a->len) !=
			         0))
				abort();
		}
	}
	return 0;
}
