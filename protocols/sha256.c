/*
 * sha256.c - SHA-256 (FIPS 180-4 §6.2) and HMAC-SHA256 (RFC 2104); see
 * sha256.h.
 *
 * Pure: no I/O, no allocation.  Big-endian loads and stores are written
 * byte by byte, so the code is the same on any host.
 */
#include "sha256.h"

#include <string.h>

static const uint32_t k256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
    0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t
ror(uint32_t x, unsigned n)
{
	return (x >> n) | (x << (32u - n));
}

/* One 64-byte block into c->h (FIPS 180-4 §6.2.2), in portable C. */
static void
compress_c(struct sha256_ctx *c, const uint8_t *p)
{
	uint32_t w[64], a, b, cc, d, e, f, g, h, t1, t2;
	size_t i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
	for (i = 16; i < 64; i++) {
		uint32_t s0 =
		    ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 =
		    ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3];
	e = c->h[4], f = c->h[5], g = c->h[6], h = c->h[7];
	for (i = 0; i < 64; i++) {
		t1 = h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) +
		     ((e & f) ^ (~e & g)) + k256[i] + w[i];
		t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) +
		     ((a & b) ^ (a & cc) ^ (b & cc));
		h = g, g = f, f = e, e = d + t1;
		d = cc, cc = b, b = a, a = t1 + t2;
	}
	c->h[0] += a, c->h[1] += b, c->h[2] += cc, c->h[3] += d;
	c->h[4] += e, c->h[5] += f, c->h[6] += g, c->h[7] += h;
	sha256_wipe(w, sizeof w);
}

#if (defined(__x86_64__) || defined(__i386__)) &&                            \
    (defined(__GNUC__) || defined(__clang__))
/*
 * The same block with the x86 SHA extensions (Intel SHA-NI: SHA256RNDS2
 * does two rounds, SHA256MSG1/MSG2 the message schedule), about six
 * times faster than compress_c on CPUs that have them.  The state is
 * kept as the instructions want it: one register (A,B,E,F) and one
 * (C,D,G,H), A and C in the highest lane.  Used only when CPUID says
 * the CPU has SHA, SSSE3 and SSE4.1 (sha256_hw, set once at load).
 */
#include <cpuid.h>
#include <immintrin.h>

#define SHA256_HW 1

__attribute__((target("sha,ssse3,sse4.1"))) static void
compress_ni(struct sha256_ctx *c, const uint8_t *p)
{
	const __m128i bswap =
	    _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
	__m128i abef, cdgh, abef0, cdgh0, t, w[4], x;
	int i;

	/* (a,b,c,d) and (e,f,g,h) as loaded -> (a,b,e,f), (c,d,g,h) */
	t = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&c->h[0]),
	                      0xB1);
	cdgh = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&c->h[4]),
	                         0x1B);
	abef = _mm_alignr_epi8(t, cdgh, 8);
	cdgh = _mm_blend_epi16(cdgh, t, 0xF0);
	abef0 = abef;
	cdgh0 = cdgh;
	for (i = 0; i < 16; i++) {
		__m128i *wi = &w[i & 3];

		if (i < 4) /* W[0..15]: the block's big-endian words */
			*wi = _mm_shuffle_epi8(
			    _mm_loadu_si128((const __m128i *)(p + 16 * i)),
			    bswap);
		else /* W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16] */
			*wi = _mm_sha256msg2_epu32(
			    _mm_add_epi32(_mm_sha256msg1_epu32(*wi,
			                                       w[(i + 1) & 3]),
			                  _mm_alignr_epi8(w[(i + 3) & 3],
			                                  w[(i + 2) & 3], 4)),
			    w[(i + 3) & 3]);
		x = _mm_add_epi32(*wi, _mm_loadu_si128(
		                           (const __m128i *)&k256[4 * i]));
		cdgh = _mm_sha256rnds2_epu32(cdgh, abef, x);
		abef = _mm_sha256rnds2_epu32(abef, cdgh,
		                             _mm_shuffle_epi32(x, 0x0E));
	}
	abef = _mm_add_epi32(abef, abef0);
	cdgh = _mm_add_epi32(cdgh, cdgh0);
	/* back to (a,b,c,d), (e,f,g,h) */
	t = _mm_shuffle_epi32(abef, 0x1B);
	cdgh = _mm_shuffle_epi32(cdgh, 0xB1);
	_mm_storeu_si128((__m128i *)&c->h[0], _mm_blend_epi16(t, cdgh, 0xF0));
	_mm_storeu_si128((__m128i *)&c->h[4], _mm_alignr_epi8(cdgh, t, 8));
}

/* Whether compress_ni runs: set once when the program loads, from CPUID
 * (leaf 7: SHA; leaf 1: SSSE3, SSE4.1), and only read afterwards (but
 * by sha256_use_hw, for tests). */
static bool sha256_hw;

__attribute__((constructor)) static void
sha256_hw_detect(void)
{
	unsigned a, b, cx, d;

	if (__get_cpuid(1, &a, &b, &cx, &d) == 0 || !(cx & bit_SSSE3) ||
	    !(cx & bit_SSE4_1))
		return;
	if (__get_cpuid_count(7, 0, &a, &b, &cx, &d) == 0 || !(b & bit_SHA))
		return;
	sha256_hw = true;
}
#endif

/* One 64-byte block into c->h. */
static void
compress(struct sha256_ctx *c, const uint8_t *p)
{
#ifdef SHA256_HW
	if (sha256_hw) {
		compress_ni(c, p);
		return;
	}
#endif
	compress_c(c, p);
}

bool
sha256_use_hw(bool on)
{
#ifdef SHA256_HW
	if (on)
		sha256_hw_detect();
	else
		sha256_hw = false;
	return sha256_hw;
#else
	(void)on;
	return false;
#endif
}

void
sha256_init(struct sha256_ctx *c)
{
	static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372,
	                               0xa54ff53a, 0x510e527f, 0x9b05688c,
	                               0x1f83d9ab, 0x5be0cd19};

	memcpy(c->h, iv, sizeof iv);
	c->n_bytes = 0;
	c->block_len = 0;
}

void
sha256_update(struct sha256_ctx *c, const void *data, size_t len)
{
	const uint8_t *p = data;

	if (len == 0)
		return;
	c->n_bytes += len;
	if (c->block_len > 0) {
		size_t take = SHA256_BLOCK - c->block_len;

		if (take > len)
			take = len;
		memcpy(c->block + c->block_len, p, take);
		c->block_len += take;
		p += take;
		len -= take;
		if (c->block_len < SHA256_BLOCK)
			return;
		compress(c, c->block);
		c->block_len = 0;
	}
	for (; len >= SHA256_BLOCK; p += SHA256_BLOCK, len -= SHA256_BLOCK)
		compress(c, p);
	if (len > 0) {
		memcpy(c->block, p, len);
		c->block_len = len;
	}
}

void
sha256_final(struct sha256_ctx *c, uint8_t out[SHA256_LEN])
{
	uint64_t bits = c->n_bytes * 8u;
	size_t i;

	c->block[c->block_len++] = 0x80;
	if (c->block_len > SHA256_BLOCK - 8) {
		memset(c->block + c->block_len, 0, SHA256_BLOCK - c->block_len);
		compress(c, c->block);
		c->block_len = 0;
	}
	memset(c->block + c->block_len, 0, SHA256_BLOCK - 8 - c->block_len);
	for (i = 0; i < 8; i++)
		c->block[SHA256_BLOCK - 1 - i] = (uint8_t)(bits >> (8 * i));
	compress(c, c->block);
	for (i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(c->h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
		out[4 * i + 3] = (uint8_t)c->h[i];
	}
	sha256_wipe(c, sizeof *c);
}

void
sha256_digest(uint8_t out[SHA256_LEN], const void *data, size_t len)
{
	struct sha256_ctx c;

	sha256_init(&c);
	sha256_update(&c, data, len);
	sha256_final(&c, out);
}

void
sha256_hmac_init(struct sha256_hmac_ctx *c, const uint8_t *key, size_t key_len)
{
	uint8_t k[SHA256_BLOCK], pad[SHA256_BLOCK];
	size_t i;

	memset(k, 0, sizeof k);
	if (key_len > SHA256_BLOCK)
		sha256_digest(k, key, key_len);
	else if (key_len > 0)
		memcpy(k, key, key_len);
	for (i = 0; i < SHA256_BLOCK; i++)
		pad[i] = (uint8_t)(k[i] ^ 0x36);
	sha256_init(&c->inner);
	sha256_update(&c->inner, pad, sizeof pad);
	for (i = 0; i < SHA256_BLOCK; i++)
		pad[i] = (uint8_t)(k[i] ^ 0x5c);
	sha256_init(&c->outer);
	sha256_update(&c->outer, pad, sizeof pad);
	sha256_wipe(k, sizeof k);
	sha256_wipe(pad, sizeof pad);
}

void
sha256_hmac_update(struct sha256_hmac_ctx *c, const void *data, size_t len)
{
	sha256_update(&c->inner, data, len);
}

void
sha256_hmac_final(struct sha256_hmac_ctx *c, uint8_t out[SHA256_LEN])
{
	uint8_t ih[SHA256_LEN];

	sha256_final(&c->inner, ih);
	sha256_update(&c->outer, ih, sizeof ih);
	sha256_final(&c->outer, out);
	sha256_wipe(ih, sizeof ih);
}

void
sha256_hmac(uint8_t out[SHA256_LEN], const uint8_t *key, size_t key_len,
            const void *data, size_t len)
{
	struct sha256_hmac_ctx c;

	sha256_hmac_init(&c, key, key_len);
	sha256_hmac_update(&c, data, len);
	sha256_hmac_final(&c, out);
}

void
sha256_hmac_key_init(struct sha256_hmac_key *k, const uint8_t *key,
                      size_t key_len)
{
	struct sha256_hmac_ctx c;

	/* after exactly one block each, nothing is pending: the states are
	 * the whole of the context */
	sha256_hmac_init(&c, key, key_len);
	memcpy(k->ih, c.inner.h, sizeof k->ih);
	memcpy(k->oh, c.outer.h, sizeof k->oh);
	sha256_wipe(&c, sizeof c);
}

void
sha256_hmac_init_key(struct sha256_hmac_ctx *c,
                     const struct sha256_hmac_key *k)
{
	memcpy(c->inner.h, k->ih, sizeof k->ih);
	c->inner.n_bytes = SHA256_BLOCK;
	c->inner.block_len = 0;
	memcpy(c->outer.h, k->oh, sizeof k->oh);
	c->outer.n_bytes = SHA256_BLOCK;
	c->outer.block_len = 0;
}

void
sha256_hmac_keyed(uint8_t out[SHA256_LEN], const struct sha256_hmac_key *k,
                  const void *data, size_t len)
{
	struct sha256_hmac_ctx c;

	sha256_hmac_init_key(&c, k);
	sha256_hmac_update(&c, data, len);
	sha256_hmac_final(&c, out);
}

bool
sha256_equal(const void *a, const void *b, size_t len)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t d = 0;
	size_t i;

	for (i = 0; i < len; i++)
		d = (uint8_t)(d | (x[i] ^ y[i]));
	return d == 0;
}

/* memset called through a volatile pointer: the compiler cannot know
 * which function runs, so it cannot drop the call as a dead store, and
 * the bytes are cleared by the C library's memset (a byte loop through a
 * volatile pointer cost as much as a quarter of a compression). */
void
sha256_wipe(void *p, size_t len)
{
	void *(*volatile wipe)(void *, int, size_t) = memset;

	(void)wipe(p, 0, len);
}
