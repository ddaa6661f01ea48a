/*
 * fuzz_pos.c - libFuzzer target for protocols/pos.c (frames and bodies).
 *
 * Input: a byte stream of frames.  Asserts the properties, not just "no
 * crash", for each frame pos_frame_decode() accepts:
 *  - pos_frame_encode() of its header and body gives back the same bytes
 *    up to the MAC (the whole frame when the MAC verifies under the fuzz
 *    key);
 *  - a body pos_msg_decode() accepts re-encodes to the same bytes unless
 *    it carried keys v1.0 does not know (those are dropped, §8), and the
 *    re-encoding decodes to a message that encodes the same again;
 *  - pos_frame_open() agrees with pos_msg_decode() and moves the counter
 *    only when the MAC and counter pass.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pos.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* K_s of docs/pos-protocol.md §10.3, so the spec's frames verify. */
static const uint8_t key[POS_KEY_LEN] = {
    0x02, 0xb1, 0xe4, 0x26, 0x80, 0x05, 0xe2, 0xf8, 0x1d, 0xc1, 0xa5,
    0xca, 0x02, 0x99, 0xe9, 0x10, 0x0e, 0x7e, 0x42, 0x53, 0xe1, 0x8e,
    0x1a, 0xad, 0xbe, 0x39, 0x29, 0x24, 0x2e, 0x48, 0xd9, 0x29};

static struct pos_msg m1, m2, m3;
static uint8_t b1[1 << 16], b2[1 << 16], frame[POS_FRAME_MAX];

/* Counts map keys unknown to schema s in the map at the cursor, items of
 * lists included.  The body already passed pos_msg_decode(). */
static size_t
n_unknown(struct cbor_dec *d, const struct pos_schema *s)
{
	struct cbor_item it;
	const char *why;
	uint64_t i, j;
	size_t n = 0, k;

	if (cbor_dec_item(d, &it, &why) != CODEC_OK)
		abort();
	for (i = it.u; i > 0; i--) {
		const struct pos_field *f = NULL;

		if (cbor_dec_item(d, &it, &why) != CODEC_OK)
			abort();
		for (k = 0; k < s->n_fields; k++)
			if (s->fields[k].key == it.u)
				f = &s->fields[k];
		if (f != NULL && f->type == POS_T_LIST) {
			if (cbor_dec_item(d, &it, &why) != CODEC_OK)
				abort();
			for (j = 0; j < it.u; j++)
				n += n_unknown(d, f->item);
			continue;
		}
		n += f == NULL;
		if (cbor_dec_skip(d, &why) != CODEC_OK)
			abort();
	}
	return n;
}

static void
check_body(const struct pos_frame *f)
{
	const struct pos_msg_info *mi = pos_msg_info(f->hdr.type);
	struct cbor_dec d;
	const char *why = NULL;
	size_t l1, l2;

	if (pos_msg_decode(&m1, f->hdr.type, f->body, f->body_len, &why) !=
	    CODEC_OK) {
		if (why == NULL)
			abort();
		return;
	}
	if (mi == NULL)
		abort();
	if (pos_msg_encode(b1, sizeof b1, &m1, &l1, &why) != CODEC_OK)
		abort();
	cbor_dec_init(&d, f->body, f->body_len);
	if (n_unknown(&d, mi->schema) == 0 &&
	    (l1 != f->body_len || memcmp(b1, f->body, l1) != 0))
		abort();
	if (l1 > f->body_len)
		abort();
	if (pos_msg_decode(&m2, f->hdr.type, b1, l1, &why) != CODEC_OK ||
	    pos_msg_encode(b2, sizeof b2, &m2, &l2, &why) != CODEC_OK ||
	    l2 != l1 || memcmp(b1, b2, l1) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;
	uint64_t last = 0;

	while (off < size) {
		struct pos_frame f;
		const char *why = NULL;
		size_t used = 0, w;
		uint64_t before = last;
		enum pos_code code;
		enum codec_rc rc;
		bool is_authentic;

		rc = pos_frame_decode(&f, data + off, size - off, &used, &why);
		if (rc == CODEC_NEED_MORE)
			break;
		if (rc == CODEC_BAD) {
			if (why == NULL ||
			    (f.refusal != POS_CODE_MALFORMED &&
			     f.refusal != POS_CODE_UNSUPPORTED_VERSION))
				abort();
			break;
		}
		if (used < POS_FRAME_MIN || used > POS_FRAME_MAX ||
		    used > size - off)
			abort();
		if (pos_frame_encode(frame, sizeof frame, &f.hdr, f.body,
		                     f.body_len, key, &w, &why) != CODEC_OK ||
		    w != used ||
		    memcmp(frame, data + off, w - POS_MAC_LEN) != 0)
			abort();
		is_authentic = pos_frame_verify(&f, key);
		if (is_authentic != (memcmp(frame, data + off, w) == 0))
			abort();
		check_body(&f);
		code = pos_frame_open(&m3, &f, key, POS_T2S, &last, &why);
		if (!is_authentic &&
		    (code != POS_CODE_BAD_MAC || last != before))
			abort();
		if (code == POS_CODE_APPROVED &&
		    (last != f.hdr.counter || last <= before))
			abort();
		off += used;
	}
	return 0;
}
