/*
 * fuzz_rpc.c - libFuzzer target for pos_rpc_batch_decode() (protocols/
 * pos.c), the envelope of HTTP /rpc.batch (docs/api.md).
 *
 * Asserts the properties, not just "no crash", for every input the
 * decoder accepts:
 *  - 1..32 requests, each of a type pos_rpc_type_ok() takes;
 *  - each body is one complete CBOR map that lies inside the input and
 *    that cbor_dec_skip() consumes exactly;
 *  - encoding the array back (canonical heads, the bodies' bytes as they
 *    were) gives the input byte for byte: nothing was skipped, added or
 *    reordered, and there is nothing after the array.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pos.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t again[1 << 17];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pos_rpc_item items[POS_RPC_ITEMS_MAX];
	const char *why = "";
	struct cbor_enc e;
	size_t n = 0, i, len = 0;

	if (pos_rpc_batch_decode(data, size, items, POS_RPC_ITEMS_MAX, &n,
	                         &why) != CODEC_OK)
		return 0;
	if (n == 0 || n > POS_RPC_ITEMS_MAX)
		abort();
	cbor_enc_init(&e, again, sizeof again);
	cbor_put_array(&e, n);
	for (i = 0; i < n; i++) {
		struct cbor_dec d;

		if (!pos_rpc_type_ok(items[i].type) || items[i].body < data ||
		    items[i].body + items[i].len > data + size ||
		    items[i].len == 0 || (items[i].body[0] >> 5) != 5)
			abort();
		cbor_dec_init(&d, items[i].body, items[i].len);
		if (cbor_dec_skip(&d, &why) != CODEC_OK ||
		    d.pos != items[i].len)
			abort();
		cbor_put_array(&e, 2);
		cbor_put_uint(&e, items[i].type);
		if (cbor_enc_finish(&e, &len) != 0 ||
		    len + items[i].len > sizeof again)
			abort();
		memcpy(again + len, items[i].body, items[i].len);
		e.len = len + items[i].len;
	}
	if (cbor_enc_finish(&e, &len) != 0 || len != size ||
	    memcmp(again, data, size) != 0)
		abort();
	return 0;
}
