/*
 * base64.h - standard base64 (RFC 4648 §4, with '=' padding).
 *
 * Layer: protocols/ (STYLE.md §1): pure, no allocation.  Used for the
 * M-Pesa STK password, HTTP Basic credentials and the RSA
 * SecurityCredential (docs/providers.md §2).
 */
#ifndef SOKO_BASE64_H
#define SOKO_BASE64_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

/* Characters base64_encode() writes for n input bytes (no NUL). */
#define BASE64_ENC_LEN(n) ((((n) + 2) / 3) * 4)
/* Upper bound of the bytes base64_decode() writes for n characters. */
#define BASE64_DEC_MAX(n) (((n) / 4) * 3)

/*
 * Encodes src[0..len) into dst followed by a NUL.  Returns CODEC_OK
 * (*written = characters before the NUL) or CODEC_NEED_MORE (*written =
 * the cap needed, NUL included; dst untouched).
 */
enum codec_rc base64_encode(char *dst, size_t cap, const uint8_t *src,
                            size_t len, size_t *written);

/*
 * Strict decode of src[0..len) into dst[0..cap): the length must be a
 * multiple of 4, only the standard alphabet, '=' only as the last one or
 * two characters, and the unused bits before the padding must be zero (so
 * every byte string has exactly one accepted encoding).  No whitespace.
 * Returns CODEC_OK (*written = bytes), CODEC_NEED_MORE (dst too small;
 * *written = the cap needed) or CODEC_BAD (*why static).
 */
enum codec_rc base64_decode(uint8_t *dst, size_t cap, const char *src,
                            size_t len, size_t *written, const char **why);

#endif
