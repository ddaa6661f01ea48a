/*
 * fuzz_cbor.c - libFuzzer target for protocols/cbor.c.
 *
 * Input: any bytes.  Asserts the properties, not just "no crash": an item
 * cbor_check() accepts is walked by the cursor and written again by the
 * encoder to exactly the same bytes (the subset is canonical: one
 * encoding per value); cbor_dec_skip() lands where cbor_check() ended; a
 * refused input stays refused with any bytes appended.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cbor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[1 << 16];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cbor_dec d;
	struct cbor_enc e;
	struct cbor_item it;
	const char *why = NULL;
	uint64_t pending = 1;
	size_t used = 0, w;
	enum codec_rc rc;

	rc = cbor_check(data, size, &used, &why);
	if (rc == CODEC_BAD) {
		if (why == NULL)
			abort();
		return 0;
	}
	if (rc == CODEC_NEED_MORE)
		return 0;
	if (used == 0 || used > size)
		abort();
	cbor_dec_init(&d, data, size);
	if (cbor_dec_skip(&d, &why) != CODEC_OK || d.pos != used)
		abort();
	cbor_dec_init(&d, data, used);
	cbor_enc_init(&e, out, sizeof out);
	while (pending > 0) {
		if (cbor_dec_item(&d, &it, &why) != CODEC_OK)
			abort();
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
			if (!cbor_utf8_valid(it.ptr, (size_t)it.u))
				abort();
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
	if (d.pos != used || cbor_enc_finish(&e, &w) != 0 || w != used ||
	    memcmp(out, data, used) != 0)
		abort();
	return 0;
}
