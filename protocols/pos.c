/*
 * pos.c - POS terminal wire protocol v1 (docs/pos-protocol.md); see pos.h.
 *
 * Pure: no I/O, no allocation, no clock.  Every length is checked against
 * the bytes present and against POS_FRAME_MAX before use.  Bodies go
 * through the field tables generated from pos_msg.def, so the catalogue,
 * the structs and the codec cannot disagree.
 */
#include "pos.h"

#include <limits.h>
#include <string.h>

#include "sha256.h"

/* ---- tables generated from pos_msg.def ------------------------------ */

#define POS_IS_REQ           true
#define POS_IS_OPT           false
#define POS_AUX_REQ(o, name) 0
#define POS_AUX_OPT(o, name) offsetof(struct pos_##o, has_##name)

#define POS_CODE(NAME, v, name)
#define POS_ITEM(name) static const struct pos_field fields_##name[] = {
#define POS_MSG(NAME, type, name, dir)                                         \
	static const struct pos_field fields_##name[] = {
#define POS_F(o, k, name, T, R, mx)                                            \
	{k,                                                                    \
	 POS_T_##T,                                                            \
	 POS_IS_##R,                                                           \
	 mx,                                                                   \
	 #name,                                                                \
	 offsetof(struct pos_##o, name),                                       \
	 POS_AUX_##R(o, name),                                                 \
	 NULL},
#define POS_L(o, k, name, it, mx)                                              \
	{k,                                                                    \
	 POS_T_LIST,                                                           \
	 true,                                                                 \
	 mx,                                                                   \
	 #name,                                                                \
	 offsetof(struct pos_##o, name),                                       \
	 offsetof(struct pos_##o, n_##name),                                   \
	 &schema_##it},
#define POS_END(o)                                                             \
	}                                                                      \
	;                                                                      \
	static const struct pos_schema schema_##o = {                          \
	    #o, fields_##o, sizeof fields_##o / sizeof fields_##o[0],          \
	    sizeof(struct pos_##o)};
#include "pos_msg.def"
#undef POS_ITEM
#undef POS_MSG
#undef POS_F
#undef POS_L
#undef POS_END

static const struct pos_msg_info msgs[] = {
#define POS_ITEM(name)
#define POS_MSG(NAME, type, name, dir) {type, #NAME, dir, &schema_##name},
#define POS_F(o, k, name, T, R, mx)
#define POS_L(o, k, name, it, mx)
#define POS_END(o)
#include "pos_msg.def"
#undef POS_CODE
#undef POS_MSG
};

static const struct {
	unsigned code;
	const char *name;
} codes[] = {
#define POS_CODE(NAME, v, name) {v, #name},
#define POS_MSG(NAME, type, name, dir)
#include "pos_msg.def"
#undef POS_CODE
#undef POS_ITEM
#undef POS_MSG
#undef POS_F
#undef POS_L
#undef POS_END
};

#define N_MSGS  (sizeof msgs / sizeof msgs[0])
#define N_CODES (sizeof codes / sizeof codes[0])

static const struct pos_msg_info *
find_msg(uint16_t type)
{
	size_t i;

	for (i = 0; i < N_MSGS; i++)
		if (msgs[i].type == type)
			return &msgs[i];
	return NULL;
}

const struct pos_msg_info *
pos_msg_info(uint16_t type)
{
	const struct pos_msg_info *req;
	uint16_t low = (uint16_t)(type & 0x3fffu);

	if ((type & POS_TYPE_FAIL) != POS_TYPE_FAIL)
		return find_msg(type);
	if (low == 0)
		return find_msg(POS_MSG_ERROR);
	/* only requests (0x0001-0x1fff, sent by terminals) can be refused */
	req = low < 0x2000 ? find_msg(low) : NULL;
	return req != NULL && req->dir == POS_T2S ? find_msg(POS_MSG_ERROR)
	                                          : NULL;
}

const char *
pos_msg_name(uint16_t type)
{
	const struct pos_msg_info *mi = pos_msg_info(type);

	if (type == POS_MSG_LOGIN_FAIL)
		return "LOGIN_FAIL";
	return mi != NULL ? mi->name : "UNKNOWN";
}

const struct pos_msg_info *
pos_msg_table(size_t *n)
{
	*n = N_MSGS;
	return msgs;
}

const char *
pos_code_name(unsigned code)
{
	size_t i;

	for (i = 0; i < N_CODES; i++)
		if (codes[i].code == code)
			return codes[i].name;
	return "unknown";
}

int
pos_msg_code(const struct pos_msg *m)
{
	const struct pos_msg_info *mi = pos_msg_info(m->type);
	const struct pos_field *f;
	uint64_t v;

	if (mi == NULL || mi->schema->n_fields == 0)
		return -1;
	f = &mi->schema->fields[0];
	if (f->key != 1 || f->type != POS_T_UINT || !f->is_required ||
	    strcmp(f->name, "code") != 0)
		return -1;
	memcpy(&v, (const uint8_t *)&m->u + f->off, sizeof v);
	return v <= INT_MAX ? (int)v : -1;
}

/* ---- frames --------------------------------------------------------- */

static uint64_t
get_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static void
put_be(uint8_t *p, uint64_t v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

/* LOGIN, LOGIN_OK and LOGIN_FAIL are sent before counters start (§4.4). */
static bool
is_login_family(uint16_t type)
{
	return type == POS_MSG_LOGIN || type == POS_MSG_LOGIN_OK ||
	       type == POS_MSG_LOGIN_FAIL;
}

enum codec_rc
pos_frame_decode(struct pos_frame *out, const uint8_t *buf, size_t len,
                 size_t *used, const char **why)
{
	size_t flen;

	out->refusal = POS_CODE_MALFORMED;
	if (len < 2)
		return CODEC_NEED_MORE;
	flen = 2 + (size_t)get_be(buf, 2);
	if (flen > POS_FRAME_MAX) {
		*why = "oversized frame";
		return CODEC_BAD;
	}
	if (flen < POS_FRAME_MIN) {
		*why = "undersized frame";
		return CODEC_BAD;
	}
	if (len < 3)
		return CODEC_NEED_MORE;
	if (buf[2] != POS_VER_MAJOR) {
		out->refusal = POS_CODE_UNSUPPORTED_VERSION;
		*why = "unsupported major version";
		return CODEC_BAD;
	}
	if (len < flen)
		return CODEC_NEED_MORE;
	out->hdr.ver_major = buf[2];
	out->hdr.ver_minor = buf[3];
	out->hdr.type = (uint16_t)get_be(buf + 4, 2);
	out->hdr.req_id = (uint32_t)get_be(buf + 6, 4);
	out->hdr.counter = get_be(buf + 10, 8);
	if (is_login_family(out->hdr.type) && out->hdr.counter != 0) {
		*why = "login frame with a nonzero counter";
		return CODEC_BAD;
	}
	out->body = buf + POS_HDR_LEN;
	out->body_len = flen - POS_HDR_LEN - POS_MAC_LEN;
	out->auth = buf + 2;
	out->auth_len = flen - 2 - POS_MAC_LEN;
	out->mac = buf + flen - POS_MAC_LEN;
	*used = flen;
	return CODEC_OK;
}

void
pos_key_init(struct pos_key *k, const uint8_t key[POS_KEY_LEN])
{
	sha256_hmac_key_init(&k->hmac, key, POS_KEY_LEN);
}

bool
pos_frame_verify_key(const struct pos_frame *f, const struct pos_key *k)
{
	uint8_t tag[SHA256_LEN];
	bool ok;

	sha256_hmac_keyed(tag, &k->hmac, f->auth, f->auth_len);
	ok = sha256_equal(tag, f->mac, POS_MAC_LEN);
	sha256_wipe(tag, sizeof tag);
	return ok;
}

bool
pos_frame_verify(const struct pos_frame *f, const uint8_t key[POS_KEY_LEN])
{
	struct pos_key k;
	bool ok;

	pos_key_init(&k, key);
	ok = pos_frame_verify_key(f, &k);
	sha256_wipe(&k, sizeof k);
	return ok;
}

enum codec_rc
pos_frame_encode(uint8_t *dst, size_t cap, const struct pos_hdr *h,
                 const uint8_t *body, size_t body_len, const uint8_t *key,
                 size_t *written, const char **why)
{
	struct pos_key k;
	enum codec_rc rc;

	if (key == NULL)
		return pos_frame_encode_key(dst, cap, h, body, body_len, NULL,
		                            written, why);
	pos_key_init(&k, key);
	rc = pos_frame_encode_key(dst, cap, h, body, body_len, &k, written,
	                          why);
	sha256_wipe(&k, sizeof k);
	return rc;
}

enum codec_rc
pos_frame_encode_key(uint8_t *dst, size_t cap, const struct pos_hdr *h,
                     const uint8_t *body, size_t body_len,
                     const struct pos_key *key, size_t *written,
                     const char **why)
{
	uint8_t tag[SHA256_LEN];
	size_t flen;

	if (h->ver_major != POS_VER_MAJOR) {
		*why = "unsupported major version";
		return CODEC_BAD;
	}
	if (body_len == 0) {
		*why = "empty body";
		return CODEC_BAD;
	}
	if (body_len > POS_BODY_MAX) {
		*why = "oversized frame";
		return CODEC_BAD;
	}
	if (is_login_family(h->type) && h->counter != 0) {
		*why = "login frame with a nonzero counter";
		return CODEC_BAD;
	}
	flen = POS_HDR_LEN + body_len + POS_MAC_LEN;
	*written = flen;
	if (cap < flen)
		return CODEC_NEED_MORE;
	if (body != dst + POS_HDR_LEN)
		memcpy(dst + POS_HDR_LEN, body, body_len);
	put_be(dst, flen - 2, 2);
	dst[2] = h->ver_major;
	dst[3] = h->ver_minor;
	put_be(dst + 4, h->type, 2);
	put_be(dst + 6, h->req_id, 4);
	put_be(dst + 10, h->counter, 8);
	if (key == NULL) {
		memset(dst + flen - POS_MAC_LEN, 0, POS_MAC_LEN);
		return CODEC_OK;
	}
	sha256_hmac_keyed(tag, &key->hmac, dst + 2, flen - 2 - POS_MAC_LEN);
	memcpy(dst + flen - POS_MAC_LEN, tag, POS_MAC_LEN);
	sha256_wipe(tag, sizeof tag);
	return CODEC_OK;
}

/* ---- bodies --------------------------------------------------------- */

/* Decodes one map at the cursor into body (a struct of schema s). */
static enum codec_rc
decode_map(void *body, const struct pos_schema *s, struct cbor_dec *d,
           const char **why)
{
	uint8_t *base = body;
	struct cbor_item it;
	uint64_t n_pairs, i, j, seen = 0;
	size_t fi = 0;

	memset(body, 0, s->size);
	if (cbor_dec_item(d, &it, why) != CODEC_OK)
		return CODEC_BAD;
	if (it.type != CBOR_MAP) {
		*why = "body is not a map";
		return CODEC_BAD;
	}
	n_pairs = it.u;
	for (i = 0; i < n_pairs; i++) {
		const struct pos_field *f = NULL;
		uint8_t *v;

		if (cbor_dec_item(d, &it, why) != CODEC_OK)
			return CODEC_BAD;
		if (it.type != CBOR_UINT) {
			*why = "map key is not an unsigned integer";
			return CODEC_BAD;
		}
		/* keys arrive in increasing order (cbor_check), as in s */
		while (fi < s->n_fields && s->fields[fi].key < it.u)
			fi++;
		if (fi < s->n_fields && s->fields[fi].key == it.u)
			f = &s->fields[fi];
		if (f == NULL) { /* a newer minor's key: ignore (§8) */
			if (cbor_dec_skip(d, why) != CODEC_OK)
				return CODEC_BAD;
			continue;
		}
		if (cbor_dec_item(d, &it, why) != CODEC_OK)
			return CODEC_BAD;
		v = base + f->off;
		switch (f->type) {
		case POS_T_UINT:
			if (it.type != CBOR_UINT) {
				*why = "field is not an unsigned integer";
				return CODEC_BAD;
			}
			if (it.u > f->max) {
				*why = "field value over its limit";
				return CODEC_BAD;
			}
			memcpy(v, &it.u, sizeof it.u);
			break;
		case POS_T_BOOL:
			if (it.type != CBOR_BOOL) {
				*why = "field is not a boolean";
				return CODEC_BAD;
			}
			memcpy(v, &it.is_true, sizeof it.is_true);
			break;
		case POS_T_TEXT:
		case POS_T_BYTES: {
			struct pos_bytes b;

			if (it.type !=
			    (f->type == POS_T_TEXT ? CBOR_TEXT : CBOR_BYTES)) {
				*why = f->type == POS_T_TEXT
				           ? "field is not a text string"
				           : "field is not a byte string";
				return CODEC_BAD;
			}
			if (it.u > f->max) {
				*why = "field longer than its limit";
				return CODEC_BAD;
			}
			b.ptr = it.ptr;
			b.len = (size_t)it.u;
			memcpy(v, &b, sizeof b);
			break;
		}
		case POS_T_B16:
			if (it.type != CBOR_BYTES || it.u != POS_ID_LEN) {
				*why = "field is not 16 bytes";
				return CODEC_BAD;
			}
			memcpy(v, it.ptr, POS_ID_LEN);
			break;
		default: { /* POS_T_LIST */
			size_t n;

			if (it.type != CBOR_ARRAY) {
				*why = "field is not an array";
				return CODEC_BAD;
			}
			if (it.u > f->max) {
				*why = "list longer than its limit";
				return CODEC_BAD;
			}
			n = (size_t)it.u;
			for (j = 0; j < n; j++)
				if (decode_map(v + j * f->item->size, f->item,
				               d, why) != CODEC_OK)
					return CODEC_BAD;
			memcpy(base + f->aux_off, &n, sizeof n);
			break;
		}
		}
		if (!f->is_required && f->type != POS_T_LIST) {
			bool t = true;

			memcpy(base + f->aux_off, &t, sizeof t);
		}
		seen |= (uint64_t)1 << fi;
	}
	for (fi = 0; fi < s->n_fields; fi++)
		if (s->fields[fi].is_required && !(seen & (uint64_t)1 << fi)) {
			*why = "required field missing";
			return CODEC_BAD;
		}
	return CODEC_OK;
}

enum codec_rc
pos_msg_decode(struct pos_msg *out, uint16_t type, const uint8_t *body,
               size_t len, const char **why)
{
	const struct pos_msg_info *mi = pos_msg_info(type);
	struct cbor_dec d;
	size_t used;

	if (mi == NULL) {
		*why = "unknown message type";
		return CODEC_BAD;
	}
	switch (cbor_check(body, len, &used, why)) {
	case CODEC_OK:
		break;
	case CODEC_NEED_MORE:
		*why = "truncated body";
		return CODEC_BAD;
	default:
		return CODEC_BAD;
	}
	if (used != len) {
		*why = "bytes after the body";
		return CODEC_BAD;
	}
	out->type = type;
	cbor_dec_init(&d, body, len);
	return decode_map(&out->u, mi->schema, &d, why);
}

/* Encodes body (a struct of schema s) as a map; -1 and *why if a field
 * breaks its limit. */
static int
encode_map(struct cbor_enc *e, const void *body, const struct pos_schema *s,
           const char **why)
{
	const uint8_t *base = body;
	size_t i, j, n_pairs = 0;
	bool has;

	for (i = 0; i < s->n_fields; i++) {
		has = true;
		if (!s->fields[i].is_required)
			memcpy(&has, base + s->fields[i].aux_off, sizeof has);
		n_pairs += has;
	}
	cbor_put_map(e, n_pairs);
	for (i = 0; i < s->n_fields; i++) {
		const struct pos_field *f = &s->fields[i];
		const uint8_t *v = base + f->off;

		if (!f->is_required) {
			memcpy(&has, base + f->aux_off, sizeof has);
			if (!has)
				continue;
		}
		cbor_put_uint(e, f->key);
		switch (f->type) {
		case POS_T_UINT: {
			uint64_t u;

			memcpy(&u, v, sizeof u);
			if (u > f->max) {
				*why = "field value over its limit";
				return -1;
			}
			cbor_put_uint(e, u);
			break;
		}
		case POS_T_BOOL: {
			bool b;

			memcpy(&b, v, sizeof b);
			cbor_put_bool(e, b);
			break;
		}
		case POS_T_TEXT:
		case POS_T_BYTES: {
			struct pos_bytes b;

			memcpy(&b, v, sizeof b);
			if (b.len > f->max) {
				*why = "field longer than its limit";
				return -1;
			}
			if (b.ptr == NULL && b.len > 0) {
				*why = "field has a length but no bytes";
				return -1;
			}
			if (f->type == POS_T_BYTES) {
				cbor_put_bytes(e, b.ptr, b.len);
				break;
			}
			if (!cbor_utf8_valid(b.ptr, b.len)) {
				*why = "text field is not valid UTF-8";
				return -1;
			}
			cbor_put_text(e, (const char *)b.ptr, b.len);
			break;
		}
		case POS_T_B16:
			cbor_put_bytes(e, v, POS_ID_LEN);
			break;
		default: { /* POS_T_LIST */
			size_t n;

			memcpy(&n, base + f->aux_off, sizeof n);
			if (n > f->max) {
				*why = "list longer than its limit";
				return -1;
			}
			cbor_put_array(e, n);
			for (j = 0; j < n; j++)
				if (encode_map(e, v + j * f->item->size,
				               f->item, why) == -1)
					return -1;
			break;
		}
		}
	}
	return 0;
}

enum codec_rc
pos_msg_encode(uint8_t *dst, size_t cap, const struct pos_msg *m,
               size_t *written, const char **why)
{
	const struct pos_msg_info *mi = pos_msg_info(m->type);
	struct cbor_enc e;

	if (mi == NULL) {
		*why = "unknown message type";
		return CODEC_BAD;
	}
	cbor_enc_init(&e, dst, cap);
	if (encode_map(&e, &m->u, mi->schema, why) == -1)
		return CODEC_BAD;
	return cbor_enc_finish(&e, written) == 0 ? CODEC_OK : CODEC_NEED_MORE;
}

enum codec_rc
pos_encode(uint8_t *dst, size_t cap, const struct pos_hdr *h,
           const struct pos_msg *m, const uint8_t *key, size_t *written,
           const char **why)
{
	struct pos_key k;
	enum codec_rc rc;

	if (key == NULL)
		return pos_encode_key(dst, cap, h, m, NULL, written, why);
	pos_key_init(&k, key);
	rc = pos_encode_key(dst, cap, h, m, &k, written, why);
	sha256_wipe(&k, sizeof k);
	return rc;
}

enum codec_rc
pos_encode_key(uint8_t *dst, size_t cap, const struct pos_hdr *h,
               const struct pos_msg *m, const struct pos_key *key,
               size_t *written, const char **why)
{
	size_t room = cap > POS_HDR_LEN + POS_MAC_LEN
	                  ? cap - POS_HDR_LEN - POS_MAC_LEN
	                  : 0;
	size_t body_len;
	enum codec_rc rc;

	if (h->type != m->type) {
		*why = "header and message types differ";
		return CODEC_BAD;
	}
	rc = pos_msg_encode(room > 0 ? dst + POS_HDR_LEN : NULL, room, m,
	                    &body_len, why);
	if (rc == CODEC_BAD)
		return rc;
	if (body_len > POS_BODY_MAX) {
		*why = "oversized frame";
		return CODEC_BAD;
	}
	if (rc == CODEC_NEED_MORE) {
		*written = POS_HDR_LEN + body_len + POS_MAC_LEN;
		return rc;
	}
	return pos_frame_encode_key(dst, cap, h, dst + POS_HDR_LEN, body_len,
	                            key, written, why);
}

/* ---- session -------------------------------------------------------- */

bool
pos_counter_accept(uint64_t last, uint64_t got)
{
	return got > last;
}

void
pos_session_key(uint8_t out[POS_KEY_LEN], const uint8_t kt[POS_KEY_LEN],
                const uint8_t *terminal_id, size_t terminal_id_len,
                const uint8_t client_nonce[POS_NONCE_LEN],
                const uint8_t server_nonce[POS_NONCE_LEN])
{
	static const char label[] = "soko-pos-v1 session";
	struct sha256_hmac_ctx c;

	sha256_hmac_init(&c, kt, POS_KEY_LEN);
	sha256_hmac_update(&c, label, sizeof label - 1);
	sha256_hmac_update(&c, terminal_id, terminal_id_len);
	sha256_hmac_update(&c, client_nonce, POS_NONCE_LEN);
	sha256_hmac_update(&c, server_nonce, POS_NONCE_LEN);
	sha256_hmac_final(&c, out);
}

enum pos_code
pos_frame_open(struct pos_msg *out, const struct pos_frame *f,
               const uint8_t *key, enum pos_dir from, uint64_t *last_rx,
               const char **why)
{
	struct pos_key k;
	enum pos_code rc;

	if (key == NULL)
		return pos_frame_open_key(out, f, NULL, from, last_rx, why);
	pos_key_init(&k, key);
	rc = pos_frame_open_key(out, f, &k, from, last_rx, why);
	sha256_wipe(&k, sizeof k);
	return rc;
}

enum pos_code
pos_frame_open_key(struct pos_msg *out, const struct pos_frame *f,
                   const struct pos_key *key, enum pos_dir from,
                   uint64_t *last_rx, const char **why)
{
	const struct pos_msg_info *mi;

	if (key != NULL && !pos_frame_verify_key(f, key)) {
		*why = "bad MAC";
		return POS_CODE_BAD_MAC;
	}
	if (last_rx != NULL) {
		if (!pos_counter_accept(*last_rx, f->hdr.counter)) {
			*why = "counter not increasing";
			return POS_CODE_BAD_COUNTER;
		}
		*last_rx = f->hdr.counter;
	}
	mi = pos_msg_info(f->hdr.type);
	if (mi == NULL || mi->dir != from) {
		*why = mi == NULL ? "unknown message type"
		                  : "message type not allowed from this side";
		return POS_CODE_UNSUPPORTED_TYPE;
	}
	if (pos_msg_decode(out, f->hdr.type, f->body, f->body_len, why) !=
	    CODEC_OK)
		return POS_CODE_MALFORMED;
	return POS_CODE_APPROVED;
}

/* ---- HTTP /rpc.batch envelope ---------------------------------------- */

bool
pos_rpc_type_ok(uint64_t t)
{
	return t > 0 && t <= 0x3fff && t != POS_MSG_LOGIN;
}

enum codec_rc
pos_rpc_batch_decode(const uint8_t *buf, size_t len, struct pos_rpc_item *items,
                     size_t cap, size_t *n, const char **why)
{
	struct cbor_dec d;
	struct cbor_item it;
	size_t i;

	*n = 0;
	if (cap > POS_RPC_ITEMS_MAX)
		cap = POS_RPC_ITEMS_MAX;
	cbor_dec_init(&d, buf, len);
	if (cbor_dec_item(&d, &it, why) != CODEC_OK || it.type != CBOR_ARRAY ||
	    it.u == 0 || it.u > cap) {
		*why = "not an array of 1..32 requests";
		return CODEC_BAD;
	}
	for (i = 0; i < (size_t)it.u; i++) {
		struct cbor_item h, t;
		size_t start;

		if (cbor_dec_item(&d, &h, why) != CODEC_OK ||
		    h.type != CBOR_ARRAY || h.u != 2 ||
		    cbor_dec_item(&d, &t, why) != CODEC_OK ||
		    t.type != CBOR_UINT || !pos_rpc_type_ok(t.u)) {
			*why = "a request is not [request type, body]";
			return CODEC_BAD;
		}
		start = d.pos;
		/* major type 5: a map, whose whole extent is skipped */
		if (start >= len || (buf[start] >> 5) != 5 ||
		    cbor_dec_skip(&d, why) != CODEC_OK) {
			*why = "a request's body is not a CBOR map";
			return CODEC_BAD;
		}
		items[i].type = (uint16_t)t.u;
		items[i].body = buf + start;
		items[i].len = d.pos - start;
	}
	if (d.pos != len) {
		*why = "bytes after the array";
		return CODEC_BAD;
	}
	*n = (size_t)it.u;
	return CODEC_OK;
}
