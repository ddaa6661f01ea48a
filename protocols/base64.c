/*
 * base64.c - standard base64, strict decoder (RFC 4648 §4).
 *
 * Pure: no I/O, no allocation, no globals (the tables are const).
 */
#include "base64.h"

static const char b64_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

enum codec_rc
base64_encode(char *dst, size_t cap, const uint8_t *src, size_t len,
              size_t *written)
{
	size_t need, i, o = 0;

	if (len > (SIZE_MAX - 3) / 4 * 3 - 3) {
		*written = SIZE_MAX;
		return CODEC_NEED_MORE;
	}
	need = BASE64_ENC_LEN(len) + 1;
	if (cap < need) {
		*written = need;
		return CODEC_NEED_MORE;
	}
	for (i = 0; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)src[i] << 16 |
		             (uint32_t)src[i + 1] << 8 | src[i + 2];

		dst[o++] = b64_alpha[v >> 18];
		dst[o++] = b64_alpha[(v >> 12) & 63];
		dst[o++] = b64_alpha[(v >> 6) & 63];
		dst[o++] = b64_alpha[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)src[i] << 16;

		dst[o++] = b64_alpha[v >> 18];
		dst[o++] = b64_alpha[(v >> 12) & 63];
		dst[o++] = '=';
		dst[o++] = '=';
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8;

		dst[o++] = b64_alpha[v >> 18];
		dst[o++] = b64_alpha[(v >> 12) & 63];
		dst[o++] = b64_alpha[(v >> 6) & 63];
		dst[o++] = '=';
	}
	dst[o] = '\0';
	*written = o;
	return CODEC_OK;
}

/* The 6-bit value of c, or -1. */
static int
b64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

enum codec_rc
base64_decode(uint8_t *dst, size_t cap, const char *src, size_t len,
              size_t *written, const char **why)
{
	size_t n_pad = 0, need, i, o = 0;

	if (len % 4 != 0) {
		*why = "base64 length not a multiple of 4";
		return CODEC_BAD;
	}
	if (len > 0 && src[len - 1] == '=')
		n_pad = len > 1 && src[len - 2] == '=' ? 2 : 1;
	need = len / 4 * 3 - n_pad;
	for (i = 0; i < len - n_pad; i++) {
		if (b64_val(src[i]) < 0) {
			*why = src[i] == '=' ? "misplaced base64 padding"
			                     : "invalid base64 character";
			return CODEC_BAD;
		}
	}
	if ((n_pad == 1 && (b64_val(src[len - 2]) & 3) != 0) ||
	    (n_pad == 2 && (b64_val(src[len - 3]) & 15) != 0)) {
		*why = "non-zero base64 padding bits";
		return CODEC_BAD;
	}
	if (cap < need) {
		*written = need;
		return CODEC_NEED_MORE;
	}
	for (i = 0; i < len; i += 4) {
		uint32_t v = 0;
		size_t k;

		for (k = 0; k < 4; k++) {
			int b = i + k >= len - n_pad ? 0 : b64_val(src[i + k]);

			v = v << 6 | (uint32_t)b;
		}
		dst[o++] = (uint8_t)(v >> 16);
		if (o < need)
			dst[o++] = (uint8_t)(v >> 8);
		if (o < need)
			dst[o++] = (uint8_t)v;
	}
	*written = o;
	return CODEC_OK;
}
