/*
 * pos.h - POS terminal wire protocol v1: frame codec, MAC, session key and
 * message bodies (docs/pos-protocol.md).
 *
 * Layer: protocols/ (STYLE.md §1).  Both ends use it: sokod's listener
 * (server/net_pos.c) and libsokoterm (terminal/).  Pure ISO C17: no I/O, no
 * clock, no allocation, no globals but const tables.  Decoded frames and
 * bodies hold views into the caller's buffer, valid until that buffer is
 * reused or drained; copy what must outlive it.  Nothing here ever logs a
 * key; callers must not either (§4.5).
 *
 * Receiving, in order (§3, §4):
 *   pos_frame_decode()  one frame out of a byte stream, no MAC check;
 *   pos_frame_open()    MAC, counter, type, body -> struct pos_msg, or the
 *                       response code to refuse with.
 * Sending: pos_encode() (struct pos_msg -> MAC'd frame), or
 * pos_msg_encode() + pos_frame_encode() for a body built another way.
 */
#ifndef SOKO_POS_H
#define SOKO_POS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cbor.h"
#include "sha256.h"

#define POS_VER_MAJOR 1
#define POS_VER_MINOR 0

#define POS_FRAME_MAX 4096 /* whole frame, length field included (§2) */
#define POS_HDR_LEN   18   /* length 2, ver 1+1, type 2, req_id 4, counter 8 */
#define POS_MAC_LEN   16   /* HMAC-SHA256 truncated to 16 bytes (§4.3) */
#define POS_FRAME_MIN (POS_HDR_LEN + 1 + POS_MAC_LEN) /* body >= 1 byte */
#define POS_BODY_MAX  (POS_FRAME_MAX - POS_HDR_LEN - POS_MAC_LEN)
#define POS_KEY_LEN   32 /* K_t and K_s */
#define POS_NONCE_LEN 16
#define POS_ID_LEN    16 /* terminal transaction id (a UUID), B16 fields */

#define POS_AMOUNT_MAX 1000000000000000u    /* 10^15 minor units (money.h) */
#define POS_SUM_MAX    9223372036854775807u /* INT64_MAX: EOD sums */
#define POS_TIME_MAX   9223372036854775807u /* ms since 1970 UTC, int64 */
#define POS_BATCH_MAX  32 /* items in one ADVICE_BATCH (and results) */
#define POS_TOTALS_MAX 16 /* lines in one EOD_TOTALS */

/* Message type bits (§6.1). */
#define POS_TYPE_RESP      0x8000u /* response to request type & 0x3fff */
#define POS_TYPE_FAIL      0xc000u /* refusal of request type & 0x3fff */
#define POS_MSG_LOGIN_FAIL 0xc001u

enum pos_dir {
	POS_T2S, /* sent by terminals, received by the server */
	POS_S2T, /* sent by the server */
};

enum pos_code {
#define POS_CODE(NAME, v, name) POS_CODE_##NAME = v,
#define POS_ITEM(name)
#define POS_MSG(NAME, type, name, dir)
#define POS_F(o, key, name, T, R, max)
#define POS_L(o, key, name, item, max)
#define POS_END(o)
#include "pos_msg.def"
#undef POS_CODE
#undef POS_MSG
};

enum pos_msg_type {
#define POS_CODE(NAME, v, name)
#define POS_MSG(NAME, type, name, dir) POS_MSG_##NAME = type,
#include "pos_msg.def"
#undef POS_CODE
#undef POS_ITEM
#undef POS_MSG
#undef POS_F
#undef POS_L
#undef POS_END
};

/* A view into a caller's buffer; not NUL-terminated. */
struct pos_bytes {
	const uint8_t *ptr;
	size_t len;
};

/*
 * Body structs, one per item and message: struct pos_login, struct
 * pos_float_transfer_resp, ...  A field is its C type (UINT uint64_t, BOOL
 * bool, TEXT/BYTES struct pos_bytes, B16 uint8_t[16]); an optional field
 * has a bool has_<name> next to it (set by the decoder; the encoder sends
 * the field iff it is set); a list is <name>[max] with size_t n_<name>.
 */
#define POS_DECL_UINT(n)    uint64_t n;
#define POS_DECL_BOOL(n)    bool n;
#define POS_DECL_TEXT(n)    struct pos_bytes n;
#define POS_DECL_BYTES(n)   struct pos_bytes n;
#define POS_DECL_B16(n)     uint8_t n[POS_ID_LEN];
#define POS_DECL_HAS_REQ(n) /* always present */
#define POS_DECL_HAS_OPT(n) bool has_##n;
#define POS_CODE(NAME, v, name)
#define POS_ITEM(name)                 struct pos_##name {
#define POS_MSG(NAME, type, name, dir) struct pos_##name {
#define POS_F(o, key, name, T, R, max) POS_DECL_##T(name) POS_DECL_HAS_##R(name)
#define POS_L(o, key, name, item, max)                                         \
	struct pos_##item name[max];                                           \
	size_t n_##name;
#define POS_END(o)                                                             \
	}                                                                      \
	;
#include "pos_msg.def"
#undef POS_CODE
#undef POS_ITEM
#undef POS_MSG
#undef POS_F
#undef POS_L
#undef POS_END

/* A decoded or to-be-encoded message: type selects the union member
 * (every type T | POS_TYPE_FAIL uses u.error). */
struct pos_msg {
	uint16_t type; /* enum pos_msg_type, or T | POS_TYPE_FAIL */
	union {
#define POS_CODE(NAME, v, name)
#define POS_ITEM(name)
#define POS_MSG(NAME, type, name, dir) struct pos_##name name;
#define POS_F(o, key, name, T, R, max)
#define POS_L(o, key, name, item, max)
#define POS_END(o)
#include "pos_msg.def"
#undef POS_CODE
#undef POS_ITEM
#undef POS_MSG
#undef POS_F
#undef POS_L
#undef POS_END
	} u;
};

/* ---- the catalogue as data (for generic code, tests, docs) --------- */

enum pos_ftype {
	POS_T_UINT,
	POS_T_BOOL,
	POS_T_TEXT,
	POS_T_BYTES,
	POS_T_B16,
	POS_T_LIST,
};

struct pos_schema;

struct pos_field {
	uint8_t key;                   /* CBOR map key, 1..63 */
	uint8_t type;                  /* enum pos_ftype */
	bool is_required;              /* lists are always required */
	uint64_t max;                  /* UINT: value; TEXT/BYTES: bytes;
	                                  LIST: items */
	const char *name;              /* the C member name */
	size_t off;                    /* of the value in the body struct */
	size_t aux_off;                /* has_<name> (OPT) or n_<name> (LIST) */
	const struct pos_schema *item; /* LIST: the item's schema */
};

struct pos_schema {
	const char *name;
	const struct pos_field *fields; /* in increasing key order */
	size_t n_fields;
	size_t size; /* sizeof the body struct */
};

struct pos_msg_info {
	uint16_t type;    /* as in the catalogue (POS_MSG_ERROR for fails) */
	const char *name; /* "FLOAT_TRANSFER" */
	enum pos_dir dir; /* who may send it */
	const struct pos_schema *schema;
};

/* The catalogue entry of a wire type, or NULL if v1 does not know it.
 * T | POS_TYPE_FAIL maps to ERROR when T is 0 or a known request. */
const struct pos_msg_info *pos_msg_info(uint16_t type);
/* Stable name for logs: "LOGIN_OK", "LOGIN_FAIL", "ERROR", or "UNKNOWN". */
const char *pos_msg_name(uint16_t type);
/* Stable lower-case name for logs: "insufficient_float", or "unknown". */
const char *pos_code_name(unsigned code);
/* The response code m carries (its key 1 `code`), or -1 for a message
 * without one (LOGIN_OK, ECHO_RESP, requests ...). */
int pos_msg_code(const struct pos_msg *m);
/* All catalogue entries, for iteration (tests, docs). */
const struct pos_msg_info *pos_msg_table(size_t *n);

/* ---- frames (§2) ---------------------------------------------------- */

struct pos_hdr {
	uint8_t ver_major; /* POS_VER_MAJOR */
	uint8_t ver_minor; /* sender's minor; any is accepted */
	uint16_t type;     /* enum pos_msg_type */
	uint32_t req_id;   /* chosen by the terminal, echoed; 0 = server push */
	uint64_t counter;  /* 0 in LOGIN/LOGIN_OK/LOGIN_FAIL, then 1, 2, ... */
};

struct pos_frame {
	struct pos_hdr hdr;
	const uint8_t *body; /* view: the CBOR body */
	size_t body_len;
	const uint8_t *auth; /* view: the MAC'd bytes (after the length) */
	size_t auth_len;
	const uint8_t *mac;    /* view: POS_MAC_LEN bytes */
	enum pos_code refusal; /* on CODEC_BAD: MALFORMED or
	                          UNSUPPORTED_VERSION, the code to answer */
};

/*
 * Decodes one frame at the start of buf[0..len); does not check the MAC.
 * CODEC_OK: *out holds views into buf, *used is the frame size.
 * CODEC_NEED_MORE: buf is a valid prefix; nothing is set.
 * CODEC_BAD: out->refusal and *why say why (length below POS_FRAME_MIN or
 * above POS_FRAME_MAX, another major version, a LOGIN-family frame with a
 * nonzero counter).  Refused as soon as the bytes that decide are present.
 * Any minor version is accepted (§8).
 */
enum codec_rc pos_frame_decode(struct pos_frame *out, const uint8_t *buf,
                               size_t len, size_t *used, const char **why);

/* true iff f's MAC is the first 16 bytes of HMAC-SHA256(key, f->auth).
 * Constant time in the MAC's content. */
bool pos_frame_verify(const struct pos_frame *f,
                      const uint8_t key[POS_KEY_LEN]);

/*
 * A MAC key (K_t or K_s) ready for use: its HMAC schedule (sha256.h), so
 * that each frame MACed or checked under it costs 3 SHA-256 compressions
 * instead of 5.  Every function below that takes `const uint8_t *key`
 * has a _key twin taking one of these, with the same results; a session
 * makes it once, after pos_session_key().  Key material: wipe it
 * (sha256_wipe) with the key.
 */
struct pos_key {
	struct sha256_hmac_key hmac;
};

void pos_key_init(struct pos_key *k, const uint8_t key[POS_KEY_LEN]);
bool pos_frame_verify_key(const struct pos_frame *f, const struct pos_key *k);

/*
 * Writes one frame: header h, body[0..body_len) (may be exactly
 * dst + POS_HDR_LEN, as pos_encode() does; other overlap is not allowed)
 * and its MAC under key, or 16 zero bytes when key is NULL (only for the
 * unauthenticated refusals of §4.2).  CODEC_OK: *written = frame size.
 * CODEC_NEED_MORE: cap is too small, *written = the size needed.
 * CODEC_BAD: body empty or too large, or h->ver_major != POS_VER_MAJOR.
 */
enum codec_rc pos_frame_encode(uint8_t *dst, size_t cap,
                               const struct pos_hdr *h, const uint8_t *body,
                               size_t body_len, const uint8_t *key,
                               size_t *written, const char **why);
enum codec_rc pos_frame_encode_key(uint8_t *dst, size_t cap,
                                   const struct pos_hdr *h,
                                   const uint8_t *body, size_t body_len,
                                   const struct pos_key *k, size_t *written,
                                   const char **why);

/* ---- bodies (§5, §6) ------------------------------------------------ */

/*
 * Decodes body[0..len) of a frame of the given type into *out, through the
 * catalogue: a canonical CBOR map (cbor_check()) with unsigned keys, every
 * known key of the right CBOR type and within its limit, every required key
 * present, no bytes after the map.  Unknown keys are skipped (§8).  Strings
 * are views into body.  Returns CODEC_OK or CODEC_BAD (*why; unknown type
 * included: check pos_msg_info() first to answer UNSUPPORTED_TYPE rather
 * than MALFORMED).  Never CODEC_NEED_MORE: a body is complete.
 */
enum codec_rc pos_msg_decode(struct pos_msg *out, uint16_t type,
                             const uint8_t *body, size_t len, const char **why);

/*
 * Encodes m's body as canonical CBOR into dst[0..cap): required fields,
 * optional ones whose has_<name> is set, in key order.  CODEC_BAD if the
 * type is unknown or a field breaks its limit (value, length, list size,
 * invalid UTF-8 text, NULL view with a length).  CODEC_NEED_MORE if cap is
 * too small (*written = the size needed).  CODEC_OK: *written bytes.
 */
enum codec_rc pos_msg_encode(uint8_t *dst, size_t cap, const struct pos_msg *m,
                             size_t *written, const char **why);

/* pos_msg_encode() + pos_frame_encode() in place in dst.  h->type must be
 * m->type.  Same results as pos_frame_encode(). */
enum codec_rc pos_encode(uint8_t *dst, size_t cap, const struct pos_hdr *h,
                         const struct pos_msg *m, const uint8_t *key,
                         size_t *written, const char **why);
enum codec_rc pos_encode_key(uint8_t *dst, size_t cap,
                             const struct pos_hdr *h, const struct pos_msg *m,
                             const struct pos_key *k, size_t *written,
                             const char **why);

/* ---- session (§4) --------------------------------------------------- */

/* true iff a frame with counter got may follow the last accepted counter
 * last in the same direction: strictly greater (so 0 after login never). */
bool pos_counter_accept(uint64_t last, uint64_t got);

/*
 * K_s = HMAC-SHA256(K_t, "soko-pos-v1 session" || terminal_id ||
 * client_nonce || server_nonce) (§4.2).  Borrows everything; the caller
 * wipes K_t and K_s when done.
 */
void pos_session_key(uint8_t out[POS_KEY_LEN], const uint8_t kt[POS_KEY_LEN],
                     const uint8_t *terminal_id, size_t terminal_id_len,
                     const uint8_t client_nonce[POS_NONCE_LEN],
                     const uint8_t server_nonce[POS_NONCE_LEN]);

/*
 * Checks a decoded frame from a peer and decodes its body, in the order of
 * §4.4: MAC under key (skipped when key is NULL: LOGIN before the terminal
 * is known), counter against *last_rx (skipped when last_rx is NULL: the
 * LOGIN family), type known and sent by the right side (from), body.
 * Returns POS_CODE_APPROVED with *out filled and *last_rx advanced, or the
 * code to refuse with: BAD_MAC, BAD_COUNTER, UNSUPPORTED_TYPE, MALFORMED
 * (*why set).  *last_rx advances once MAC and counter pass, even if the
 * type or body is then refused: the frame was authentic and is consumed.
 */
enum pos_code pos_frame_open(struct pos_msg *out, const struct pos_frame *f,
                             const uint8_t *key, enum pos_dir from,
                             uint64_t *last_rx, const char **why);
enum pos_code pos_frame_open_key(struct pos_msg *out,
                                 const struct pos_frame *f,
                                 const struct pos_key *k, enum pos_dir from,
                                 uint64_t *last_rx, const char **why);

/* ---- HTTP /rpc.batch envelope (docs/api.md) ------------------------ */

#define POS_RPC_ITEMS_MAX POS_BATCH_MAX /* requests in one /rpc.batch */

/* One request of a batch: its type and its body's bytes (a view). */
struct pos_rpc_item {
	uint16_t type;
	const uint8_t *body;
	size_t len;
};

/* true iff t is a type an /rpc client may send: a request type
 * (1..0x3fff) other than LOGIN. */
bool pos_rpc_type_ok(uint64_t t);

/*
 * Splits an /rpc.batch body: a CBOR array of 1..cap (<= POS_RPC_ITEMS_MAX)
 * arrays [type, body], type an unsigned pos_rpc_type_ok() accepts and
 * body one complete CBOR map (its content is the POS layer's to check),
 * canonical heads, nothing after the array.  CODEC_OK with items[0..*n)
 * viewing into buf, or CODEC_BAD with *why.
 */
enum codec_rc pos_rpc_batch_decode(const uint8_t *buf, size_t len,
                                   struct pos_rpc_item *items, size_t cap,
                                   size_t *n, const char **why);

#endif
