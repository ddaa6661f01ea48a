/*
 * test_sha256.c - unit tests for protocols/sha256.c: FIPS 180-4 example
 * vectors (one-shot and fed in every chunk size), RFC 4231 HMAC-SHA256
 * test cases 1-7, a differential check against OpenSSL over lengths
 * 0..300 of message and key, and the constant-time compare.
 */
#include "sha256.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "check.h"

static void
unhex(uint8_t *out, const char *hex)
{
	size_t i, n = strlen(hex) / 2;

	for (i = 0; i < n; i++) {
		unsigned v;

		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
}

static int
digest_is(const uint8_t *got, const char *hex, size_t n)
{
	uint8_t want[SHA256_LEN];

	unhex(want, hex);
	return memcmp(got, want, n) == 0;
}

static const struct {
	const char *msg;
	const char *hex;
} fips[] = {
    {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
     "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
     "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
};

static void
test_fips_vectors(void)
{
	uint8_t out[SHA256_LEN];
	size_t i;

	for (i = 0; i < sizeof fips / sizeof fips[0]; i++) {
		sha256_digest(out, fips[i].msg, strlen(fips[i].msg));
		CHECK(digest_is(out, fips[i].hex, SHA256_LEN));
	}
}

/* Every chunk size 1..130 gives the same digest as one-shot. */
static void
test_streaming_chunks(void)
{
	const char *m = fips[3].msg;
	size_t len = strlen(m), chunk, off;
	uint8_t out[SHA256_LEN];

	for (chunk = 1; chunk <= 130; chunk++) {
		struct sha256_ctx c;

		sha256_init(&c);
		for (off = 0; off < len; off += chunk)
			sha256_update(&c, m + off,
			              len - off < chunk ? len - off : chunk);
		sha256_final(&c, out);
		CHECK(digest_is(out, fips[3].hex, SHA256_LEN));
	}
}

static void
test_million_a(void)
{
	static uint8_t block[1000];
	struct sha256_ctx c;
	uint8_t out[SHA256_LEN];
	int i;

	memset(block, 'a', sizeof block);
	sha256_init(&c);
	for (i = 0; i < 1000; i++)
		sha256_update(&c, block, sizeof block);
	sha256_final(&c, out);
	CHECK(digest_is(out,
	                "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e"
	                "046d39ccc7112cd0",
	                SHA256_LEN));
}

/* RFC 4231 §4.2-4.8 (test case 5 is truncated to 128 bits). */
static void
test_rfc4231(void)
{
	uint8_t key[131], data[200], out[SHA256_LEN];
	const char *tc7 = "This is a test using a larger than block-size key "
			  "and a larger than block-size data. The key needs "
			  "to be hashed before being used by the HMAC "
			  "algorithm.";
	size_t i;

	memset(key, 0x0b, 20);
	sha256_hmac(out, key, 20, "Hi There", 8);
	CHECK(digest_is(out,
	                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da7"
	                "26e9376c2e32cff7",
	                32));
	sha256_hmac(out, (const uint8_t *)"Jefe", 4,
	            "what do ya want for nothing?", 28);
	CHECK(digest_is(out,
	                "5bdcc146bf60754e6a042426089575c75a003f089d273983"
	                "9dec58b964ec3843",
	                32));
	memset(key, 0xaa, 20);
	memset(data, 0xdd, 50);
	sha256_hmac(out, key, 20, data, 50);
	CHECK(digest_is(out,
	                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122"
	                "d9635514ced565fe",
	                32));
	for (i = 0; i < 25; i++)
		key[i] = (uint8_t)(i + 1);
	memset(data, 0xcd, 50);
	sha256_hmac(out, key, 25, data, 50);
	CHECK(digest_is(out,
	                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f807"
	                "7a2e3ff46729665b",
	                32));
	memset(key, 0x0c, 20);
	sha256_hmac(out, key, 20, "Test With Truncation", 20);
	CHECK(digest_is(out, "a3b6167473100ee06e0c796c2955552b", 16));
	memset(key, 0xaa, 131);
	sha256_hmac(out, key, 131,
	            "Test Using Larger Than Block-Size Key - Hash Key First",
	            54);
	CHECK(digest_is(out,
	                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c514"
	                "0546040f0ee37f54",
	                32));
	sha256_hmac(out, key, 131, tc7, strlen(tc7));
	CHECK(digest_is(out,
	                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f071393"
	                "8a7f51535c3a35e2",
	                32));
}

/* Our SHA-256 and HMAC equal OpenSSL's for every message length 0..300
 * and key lengths 0..150 (crossing the block size on both). */
static void
test_against_openssl(void)
{
	uint8_t msg[300], key[150], a[SHA256_LEN], b[SHA256_LEN];
	struct sha256_hmac_key hk;
	unsigned blen;
	size_t n, k;

	for (n = 0; n < sizeof msg; n++)
		msg[n] = (uint8_t)(n * 7 + 3);
	for (k = 0; k < sizeof key; k++)
		key[k] = (uint8_t)(k * 13 + 1);
	for (n = 0; n <= sizeof msg; n++) {
		sha256_digest(a, msg, n);
		EVP_Digest(msg, n, b, &blen, EVP_sha256(), NULL);
		CHECK(memcmp(a, b, SHA256_LEN) == 0);
		k = n % (sizeof key + 1);
		sha256_hmac(a, key, k, msg, n);
		HMAC(EVP_sha256(), key, (int)k, msg, n, b, &blen);
		CHECK(memcmp(a, b, SHA256_LEN) == 0);
		/* the precomputed schedule gives the same MAC */
		sha256_hmac_key_init(&hk, key, k);
		memset(a, 0, sizeof a);
		sha256_hmac_keyed(a, &hk, msg, n);
		CHECK(memcmp(a, b, SHA256_LEN) == 0);
	}
}

static void
test_equal_and_wipe(void)
{
	uint8_t x[16], y[16];

	memset(x, 5, sizeof x);
	memcpy(y, x, sizeof y);
	CHECK(sha256_equal(x, y, 16));
	CHECK(sha256_equal(x, y, 0));
	y[15] ^= 0x80;
	CHECK(!sha256_equal(x, y, 16));
	CHECK(sha256_equal(x, y, 15));
	y[0] ^= 1;
	CHECK(!sha256_equal(x, y, 15));
	sha256_wipe(x, sizeof x);
	memset(y, 0, sizeof y);
	CHECK(memcmp(x, y, 16) == 0);
}

int
main(void)
{
	bool has_hw;
	int pass;

	/* every test with the x86 SHA extensions when this CPU has them,
	 * then again in portable C */
	has_hw = sha256_use_hw(true);
	printf("# SHA extensions: %s\n", has_hw ? "yes" : "no");
	for (pass = 0; pass < (has_hw ? 2 : 1); pass++) {
		if (pass == 1)
			CHECK(!sha256_use_hw(false));
		RUN(test_fips_vectors);
		RUN(test_streaming_chunks);
		RUN(test_million_a);
		RUN(test_rfc4231);
		RUN(test_against_openssl);
	}
	(void)sha256_use_hw(true);
	RUN(test_equal_and_wipe);
	return check_report("sha256");
}
