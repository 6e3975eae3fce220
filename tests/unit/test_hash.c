/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"

static void hexof(const void *d, size_t n, char out[65])
{
	uint8_t md[32];

	lp_sha256(d, n, md);
	lp_hex(md, 32, out);
}

static void test_unhex_reverses_hex(void **state)
{
	uint8_t d[32], back[32];
	char hex[65];

	(void)state;
	for (int i = 0; i < 32; i++)
		d[i] = (uint8_t)(i * 37 + 5);
	lp_hex(d, 32, hex);
	assert_true(lp_unhex(hex, back, 32));
	assert_memory_equal(d, back, 32);
	hex[10] = 'A';		/* digests are lowercase */
	assert_false(lp_unhex(hex, back, 32));
	hex[10] = 'g';
	assert_false(lp_unhex(hex, back, 32));
	assert_false(lp_unhex("00ff", back, 3));	/* too short */
	assert_false(lp_unhex("00ff00", back, 2));	/* something after */
}

static void test_known_vectors(void **state)
{
	char hex[65];

	hexof("", 0, hex);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	hexof("abc", 3, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	hexof("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, hex);
	assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_million_a_streamed(void **state)
{
	struct lp_sha256 c;
	uint8_t md[32];
	char hex[65];
	char chunk[997];

	memset(chunk, 'a', sizeof(chunk));
	lp_sha256_init(&c);
	/* Odd chunk sizes exercise the partial-block path. */
	for (size_t left = 1000000; left;) {
		size_t take = left < sizeof(chunk) ? left : sizeof(chunk);

		lp_sha256_update(&c, chunk, take);
		left -= take;
	}
	lp_sha256_final(&c, md);
	lp_hex(md, 32, hex);
	assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_impls_agree(void **state)
{
	/* The SHA-NI and portable paths must give the same digests. */
	uint8_t *buf = malloc(100003);
	uint8_t a[32], b[32];

	for (size_t i = 0; i < 100003; i++)
		buf[i] = (uint8_t)(i * 131 + (i >> 7));
	lp_sha256(buf, 100003, a);
	lp_sha256_force_portable(1);
	assert_string_equal(lp_sha256_impl(), "portable");
	lp_sha256(buf, 100003, b);
	lp_sha256_force_portable(0);
	assert_memory_equal(a, b, 32);
	free(buf);
}

static void test_base64(void **state)
{
	char out[64];
	const uint8_t d[] = { 0xfb, 0xff, 0x00, 'M', 'a' };

	lp_base64((const uint8_t *)"", 0, out);
	assert_string_equal(out, "");
	lp_base64((const uint8_t *)"f", 1, out);
	assert_string_equal(out, "Zg==");
	lp_base64((const uint8_t *)"fo", 2, out);
	assert_string_equal(out, "Zm8=");
	lp_base64((const uint8_t *)"foobar", 6, out);
	assert_string_equal(out, "Zm9vYmFy");
	lp_base64(d, sizeof(d), out);
	assert_string_equal(out, "+/8ATWE=");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_vectors),
		cmocka_unit_test(test_million_a_streamed),
		cmocka_unit_test(test_impls_agree),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_unhex_reverses_hex),
	};

	return cmocka_run_group_tests_name("hash", tests, NULL, NULL);
}
