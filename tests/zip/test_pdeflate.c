/* SPDX-License-Identifier: MIT */
/*
 * pdeflate: the stream must decode to the input, carry the right CRC and
 * sizes, and be byte-identical for any thread count and any way the input
 * is split into write calls. Incompressible segments go out as stored
 * blocks; compressible ones, including random bytes that repeat, must not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <cmocka.h>
#include <zlib.h>
#include <libdeflate.h>

#include "core/pdeflate.h"

struct buf {
	unsigned char *p;
	size_t n, cap;
	int fail_after;		/* >0: fail on that call */
	int calls;
};

static int sink(void *ctx, const void *data, size_t n)
{
	struct buf *b = ctx;

	if (b->fail_after && ++b->calls >= b->fail_after)
		return -ENOSPC;
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->n, data, n);
	b->n += n;
	return 0;
}

enum { TEXT, RANDOM, ZEROS, MIXED, REPEATED, NKINDS };

/*
 * Deterministic test data: text-like, random, zero runs, mixed, and random
 * 4 KiB chunks each written twice (uniform bytes, yet half of it repeats).
 */
static unsigned char *make_data(size_t n, int kind)
{
	unsigned char *d = malloc(n ? n : 1);
	uint32_t x = 2463534242u;
	static const char *const words[] = { "def ", "return ", "self", ".value", " = ",
		"import ", "lambda", "(event, context)", "\n    ", "# comment\n" };

	assert_non_null(d);
	for (size_t i = 0; i < n;) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		if (kind == REPEATED && i % 8192 >= 4096) {
			d[i] = d[i - 4096];
			i++;
		} else if (kind == REPEATED) {
			d[i++] = (unsigned char)x;
		} else if (kind == TEXT || (kind == MIXED && (i / 70000) % 3 == 0)) {
			const char *w = words[x % 10];

			for (; *w && i < n; w++)
				d[i++] = (unsigned char)*w;
		} else if (kind == RANDOM || (kind == MIXED && (i / 70000) % 3 == 1)) {
			d[i++] = (unsigned char)x;
		} else {
			d[i++] = 0;
		}
	}
	return d;
}

/* The engine run() uses; the libdeflate tests switch it and back. */
static enum lp_pdeflate_engine g_engine = LP_PDEFLATE_ZLIB;

static void run(const unsigned char *in, size_t n, unsigned threads, size_t block, int level,
		size_t chunk, struct buf *out, uint32_t *crc)
{
	struct lp_pdeflate_opts o = { .level = level, .threads = threads, .block = block,
		.sink = sink, .sink_ctx = out, .engine = g_engine };
	struct lp_pdeflate *z;
	uint64_t tin, tout;

	assert_int_equal(lp_pdeflate_new(&o, &z), 0);
	for (size_t off = 0; off < n;) {
		size_t k = n - off < chunk ? n - off : chunk;

		assert_int_equal(lp_pdeflate_write(z, in + off, k), 0);
		off += k;
	}
	assert_int_equal(lp_pdeflate_finish(z, crc, &tin, &tout), 0);
	assert_int_equal(tin, n);
	assert_int_equal(tout, out->n);
	lp_pdeflate_free(z);
}

static void check_inflate(const struct buf *c, const unsigned char *in, size_t n)
{
	z_stream zs = { 0 };
	unsigned char *o = malloc(n + 16);

	assert_non_null(o);
	assert_int_equal(inflateInit2(&zs, -15), Z_OK);
	zs.next_in = c->p;
	zs.avail_in = (uInt)c->n;
	zs.next_out = o;
	zs.avail_out = (uInt)(n + 16);
	/* Z_STREAM_END proves the final block is there and nothing trails it. */
	assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
	assert_int_equal(zs.total_out, n);
	assert_int_equal(zs.avail_in, 0);
	assert_memory_equal(o, in, n);
	inflateEnd(&zs);
	free(o);
}

static void test_identity(void **state)
{
	/* Around the probe minimum, stored-block limit, segment and block sizes. */
	static const size_t sizes[] = { 0, 1, 1000, 4095, 4096, 32768, 65535, 65536,
		65537, 131071, 131072, 131073, 131072 + 4095, 5 * 131072,
		3 * 1024 * 1024 + 17 };
	static const unsigned th[] = { 1, 2, 4 };
	static const size_t chunks[] = { 1 << 20, 7777, 131072 };

	for (int kind = 0; kind < NKINDS; kind++) {
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			size_t n = sizes[s];
			unsigned char *in = make_data(n, kind);
			struct buf ref = { 0 };
			uint32_t ref_crc;

			run(in, n, 1, 0, 6, 1 << 20, &ref, &ref_crc);
			check_inflate(&ref, in, n);
			assert_int_equal(ref_crc, (uint32_t)crc32(0, in, (uInt)n));
			for (size_t t = 0; t < 3; t++) {
				for (size_t c = 0; c < 3; c++) {
					struct buf b = { 0 };
					uint32_t crc;

					if (n > 200000 && chunks[c] == 7777 && t == 0)
						continue;
					run(in, n, th[t], 0, 6, chunks[c], &b, &crc);
					assert_int_equal(crc, ref_crc);
					assert_int_equal(b.n, ref.n);
					assert_memory_equal(b.p, ref.p, ref.n);
					free(b.p);
				}
			}
			free(ref.p);
			free(in);
		}
	}
}

/* Tiny writes exercise the block boundary logic one byte at a time. */
static void test_bytewise(void **state)
{
	size_t n = 3 * 4096 + 5;
	unsigned char *in = make_data(n, MIXED);
	struct buf a = { 0 }, b = { 0 };
	uint32_t ca, cb;

	run(in, n, 2, 4096, 6, 1, &a, &ca);
	run(in, n, 4, 4096, 6, n, &b, &cb);
	assert_int_equal(ca, cb);
	assert_int_equal(a.n, b.n);
	assert_memory_equal(a.p, b.p, a.n);
	check_inflate(&a, in, n);
	free(a.p);
	free(b.p);
	free(in);
}

/* Input below one block is one plain deflate call: same bytes as zlib's. */
static void test_single_block_is_plain_deflate(void **state)
{
	size_t n = 100000;
	unsigned char *in = make_data(n, TEXT);
	struct buf a = { 0 };
	uint32_t crc;
	z_stream zs = { 0 };
	unsigned char *o = malloc(n + 1024);

	run(in, n, 4, 0, 9, 4096, &a, &crc);
	assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
	zs.next_in = in;
	zs.avail_in = (uInt)n;
	zs.next_out = o;
	zs.avail_out = (uInt)(n + 1024);
	assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
	assert_int_equal(zs.total_out, a.n);
	assert_memory_equal(o, a.p, a.n);
	deflateEnd(&zs);
	free(o);
	free(a.p);
	free(in);
}

/* Levels and block sizes are part of the identity; each still round-trips. */
static void test_levels_blocks(void **state)
{
	size_t n = 700000;
	unsigned char *in = make_data(n, MIXED);

	for (int level = 1; level <= 9; level += 4) {
		for (size_t block = 32768; block <= 262144; block *= 2) {
			struct buf a = { 0 }, b = { 0 };
			uint32_t ca, cb;

			run(in, n, 1, block, level, 65536, &a, &ca);
			run(in, n, 3, block, level, 65536, &b, &cb);
			assert_int_equal(a.n, b.n);
			assert_memory_equal(a.p, b.p, a.n);
			check_inflate(&a, in, n);
			free(a.p);
			free(b.p);
		}
	}
	free(in);
}

/* Deflate's size for n input bytes deflated whole by zlib at level. */
static size_t zlib_size(const unsigned char *in, size_t n, int level)
{
	z_stream zs = { 0 };
	size_t cap = n + n / 100 + 1024, r;
	unsigned char *o = malloc(cap);

	assert_non_null(o);
	assert_int_equal(deflateInit2(&zs, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
	zs.next_in = (unsigned char *)in;
	zs.avail_in = (uInt)n;
	zs.next_out = o;
	zs.avail_out = (uInt)cap;
	assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
	r = zs.total_out;
	deflateEnd(&zs);
	free(o);
	return r;
}

/*
 * Random input goes out as stored blocks of at most 65535 bytes: 5 header
 * bytes each, nothing else, BFINAL only on the very last. That is what any
 * level and thread count write, as the choice depends on the bytes alone.
 */
static void test_random_is_stored(void **state)
{
	size_t n = 200000;
	unsigned char *in = make_data(n, RANDOM);
	struct buf ref = { 0 };
	uint32_t crc;
	/* Block 0: 65535 + 65535 + 2 bytes; block 1 (last): 65535 + 3393. */
	static const size_t at[] = { 0, 65540, 131080, 131087, 196627 };
	static const size_t len[] = { 65535, 65535, 2, 65535, 3393 };

	run(in, n, 1, 0, 6, n, &ref, &crc);
	assert_int_equal(ref.n, n + 5 * 5);
	for (int i = 0; i < 5; i++) {
		const unsigned char *h = ref.p + at[i];

		assert_int_equal(h[0], i == 4 ? 1 : 0);
		assert_int_equal(h[1] | h[2] << 8, len[i]);
		assert_int_equal(h[3] | h[4] << 8, len[i] ^ 0xffff);
		assert_memory_equal(h + 5, in + (at[i] - 5 * i), len[i]);
	}
	check_inflate(&ref, in, n);
	assert_int_equal(crc, (uint32_t)crc32(0, in, (uInt)n));
	for (int level = 1; level <= 9; level += 4) {
		for (unsigned t = 1; t <= 4; t *= 2) {
			struct buf b = { 0 };

			run(in, n, t, 0, level, 65536, &b, &crc);
			assert_int_equal(b.n, ref.n);
			assert_memory_equal(b.p, ref.p, ref.n);
			free(b.p);
		}
	}
	free(ref.p);
	free(in);
}

/* Incompressible input costs at most the stored-block headers. */
static void test_random_bound(void **state)
{
	size_t n = 3 * 1024 * 1024 + 17;
	unsigned char *in = make_data(n, RANDOM);

	for (unsigned t = 1; t <= 4; t *= 2) {
		struct buf b = { 0 };
		uint32_t crc;

		run(in, n, t, 0, 6, 1 << 20, &b, &crc);
		/* 3 stored blocks per 128 KiB block: 15 bytes. */
		assert_true(b.n <= n + 15 * (n / 131072 + 1));
		check_inflate(&b, in, n);
		free(b.p);
	}
	free(in);
}

/* Compressible data must still be deflated, however the bytes look. */
static void test_compressible_is_deflated(void **state)
{
	size_t n = 2 * 1024 * 1024 + 333;
	unsigned char *text = make_data(n, TEXT);
	unsigned char *rep = make_data(n, REPEATED);

	for (unsigned t = 1; t <= 4; t *= 2) {
		struct buf a = { 0 }, b = { 0 };
		uint32_t crc;

		run(text, n, t, 0, 6, 1 << 20, &a, &crc);
		assert_true(a.n < n / 2);
		check_inflate(&a, text, n);
		/* Uniform bytes, but every other 4 KiB repeats the one before. */
		run(rep, n, t, 0, 6, 1 << 20, &b, &crc);
		assert_true(b.n < n * 52 / 100);
		check_inflate(&b, rep, n);
		free(a.p);
		free(b.p);
	}
	free(text);
	free(rep);
}

/*
 * One random 4 KiB chunk occurring twice, at distances up to the 32 KiB
 * deflate can reach, inside otherwise random data: zlib saves about 4 KiB,
 * and so must we (a histogram alone would call this incompressible).
 */
/* The whole-buffer question the zip writer asks before deflating a file. */
static void test_incompressible_whole(void **state)
{
	static const size_t sizes[] = { 4096, 40000, 200000, 1u << 20 };

	(void)state;
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t n = sizes[k];
		unsigned char *r = make_data(n, RANDOM), *t = make_data(n, TEXT), *m = make_data(n, MIXED);
		unsigned char *rep = make_data(n, REPEATED);

		assert_int_equal(lp_deflate_incompressible(r, n), 1);
		assert_int_equal(lp_deflate_incompressible(t, n), 0);
		assert_int_equal(lp_deflate_incompressible(m, n), 0);
		if (n > 8192)	/* REPEATED repeats from byte 4096 on */
			assert_int_equal(lp_deflate_incompressible(rep, n), 0);
		/* One compressible 4 KiB anywhere in random bytes: deflate it. */
		memcpy(r + n - 4096, t, 4096);
		assert_int_equal(lp_deflate_incompressible(r, n), 0);
		free(r);
		free(t);
		free(m);
		free(rep);
	}
	/* Too short to judge: always deflated. */
	{
		unsigned char *r = make_data(4095, RANDOM);

		assert_int_equal(lp_deflate_incompressible(r, 4095), 0);
		free(r);
	}
}

static void test_repeat_in_random(void **state)
{
	static const size_t dist[] = { 4096, 10000, 20000, 28000 };

	for (size_t k = 0; k < sizeof(dist) / sizeof(dist[0]); k++) {
		size_t n = 32768;
		unsigned char *in = make_data(n, RANDOM);
		struct buf b = { 0 };
		uint32_t crc;

		memcpy(in + 512 + dist[k], in + 512, 4096);
		run(in, n, 2, 0, 6, n, &b, &crc);
		assert_true(b.n < n - 3500);
		assert_true(b.n <= zlib_size(in, n, 6) + 64);
		check_inflate(&b, in, n);
		free(b.p);
		free(in);
	}
}

/*
 * The same when the second copy starts a new segment or a new block: the
 * check looks back as far as deflate does, into the dictionary too.
 */
static void test_repeat_across_segments(void **state)
{
	static const size_t at[] = { 32768, 131072 };

	for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
		size_t n = 196608;
		unsigned char *in = make_data(n, RANDOM);
		struct buf b = { 0 };
		uint32_t crc;

		memcpy(in + at[k], in + at[k] - 20480, 20480);
		run(in, n, 2, 0, 6, n, &b, &crc);
		assert_true(b.n < n - 20000);
		check_inflate(&b, in, n);
		free(b.p);
		free(in);
	}
}

/*
 * Text and random bytes in one block: the random part is stored and the
 * text around it deflated, with stored bytes as part of the dictionary
 * for what follows (the text repeats across the random gap).
 */
static void test_mixed_block(void **state)
{
	size_t n = 5 * 131072 + 999;
	unsigned char *in = make_data(n, TEXT);
	unsigned char *rnd = make_data(n, RANDOM);
	struct buf ref = { 0 };
	uint32_t ref_crc;

	/* Random stretches that start and end inside blocks and segments. */
	for (size_t off = 20000; off + 70000 < n; off += 150000)
		memcpy(in + off, rnd + off, 70000);
	run(in, n, 1, 0, 6, n, &ref, &ref_crc);
	check_inflate(&ref, in, n);
	assert_int_equal(ref_crc, (uint32_t)crc32(0, in, (uInt)n));
	/* Not worse than zlib by more than the stored headers and sync markers. */
	assert_true(ref.n <= zlib_size(in, n, 6) + n / 1000);
	for (unsigned t = 2; t <= 4; t *= 2) {
		struct buf b = { 0 };
		uint32_t crc;

		run(in, n, t, 0, 6, 7777, &b, &crc);
		assert_int_equal(crc, ref_crc);
		assert_int_equal(b.n, ref.n);
		assert_memory_equal(b.p, ref.p, ref.n);
		free(b.p);
	}
	free(ref.p);
	free(rnd);
	free(in);
}

/*
 * A deflated segment right after a stored one can refer back into it: the
 * stored bytes are part of the window. Here the second 32 KiB repeats the
 * last 16 KiB of the random first one, then turns to text.
 */
static void test_dictionary_after_stored(void **state)
{
	size_t n = 65536;
	unsigned char *in = make_data(n, RANDOM);
	unsigned char *text = make_data(16384, TEXT);
	struct buf b = { 0 };
	uint32_t crc;

	memcpy(in + 32768, in + 16384, 16384);
	memcpy(in + 49152, text, 16384);
	run(in, n, 1, 0, 6, n, &b, &crc);
	check_inflate(&b, in, n);
	/* Stored 32 KiB, then the repeat as matches and the text deflated. */
	assert_true(b.n < 32768 + 16384 / 2);
	assert_int_equal(b.p[0], 0);	/* it did start with a stored block */
	free(b.p);
	free(text);
	free(in);
}

static void test_sink_error(void **state)
{
	size_t n = 2 * 1024 * 1024;
	unsigned char *in = make_data(n, RANDOM);
	struct buf b = { .fail_after = 3 };
	struct lp_pdeflate_opts o = { .threads = 2, .sink = sink, .sink_ctx = &b };
	struct lp_pdeflate *z;
	int r = 0;

	assert_int_equal(lp_pdeflate_new(&o, &z), 0);
	for (size_t off = 0; off < n && r == 0; off += 65536)
		r = lp_pdeflate_write(z, in + off, 65536);
	if (r == 0)
		r = lp_pdeflate_finish(z, NULL, NULL, NULL);
	assert_int_equal(r, -ENOSPC);
	/* Sticky: later calls keep failing the same way. */
	assert_int_equal(lp_pdeflate_write(z, in, 10), -ENOSPC);
	lp_pdeflate_free(z);
	free(b.p);
	free(in);
}

static void test_bad_opts(void **state)
{
	struct buf b = { 0 };
	struct lp_pdeflate_opts o = { .level = 10, .sink = sink, .sink_ctx = &b };
	struct lp_pdeflate *z = NULL;

	assert_int_equal(lp_pdeflate_new(&o, &z), -EINVAL);
	o.level = 6;
	o.block = 100;
	assert_int_equal(lp_pdeflate_new(&o, &z), -EINVAL);
	o.block = 0;
	o.sink = NULL;
	assert_int_equal(lp_pdeflate_new(&o, &z), -EINVAL);
	/* Freeing without finishing (error paths) must not leak or hang. */
	o.sink = sink;
	o.threads = 4;
	assert_int_equal(lp_pdeflate_new(&o, &z), 0);
	{
		unsigned char *in = make_data(1 << 20, RANDOM);

		assert_int_equal(lp_pdeflate_write(z, in, 1 << 20), 0);
		free(in);
	}
	lp_pdeflate_free(z);
	free(b.p);
}

static void test_gzip_framing(void **state)
{
	uint8_t h[10], t[8];

	lp_gzip_header(h, 9);
	assert_int_equal(h[0], 0x1f);
	assert_int_equal(h[1], 0x8b);
	assert_int_equal(h[8], 2);
	assert_int_equal(h[9], 255);
	lp_gzip_trailer(t, 0x11223344u, 0x100000005ull);
	assert_int_equal(t[0], 0x44);
	assert_int_equal(t[3], 0x11);
	assert_int_equal(t[4], 5);
	assert_int_equal(t[7], 0);
}


/*
 * The libdeflate engine: every block is a libdeflate stream of its own,
 * glued by clearing its final flag and a sync marker. The result must be
 * one raw deflate stream (zlib reads it to the end with nothing left over),
 * the same for any thread count and write pattern, at every level.
 */
static void test_ld_identity(void **state)
{
	static const size_t sizes[] = { 0, 1, 1000, 4096, 65537, 131072, 131073,
		5 * 131072 + 77, 3 * 1024 * 1024 + 17 };
	static const unsigned th[] = { 1, 2, 4 };

	g_engine = LP_PDEFLATE_LIBDEFLATE;
	for (int kind = 0; kind < NKINDS; kind++) {
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			size_t n = sizes[s];
			unsigned char *in = make_data(n, kind);
			struct buf ref = { 0 };
			uint32_t ref_crc;

			run(in, n, 1, 0, 6, 1 << 20, &ref, &ref_crc);
			check_inflate(&ref, in, n);
			assert_int_equal(ref_crc, (uint32_t)crc32(0, in, (uInt)n));
			for (size_t t = 0; t < 3; t++) {
				struct buf b = { 0 };
				uint32_t crc;

				run(in, n, th[t], 0, 6, t == 1 ? 7777 : 131072, &b, &crc);
				assert_int_equal(crc, ref_crc);
				assert_int_equal(b.n, ref.n);
				assert_memory_equal(b.p, ref.p, ref.n);
				free(b.p);
			}
			free(ref.p);
			free(in);
		}
	}
	g_engine = LP_PDEFLATE_ZLIB;
}

/* Levels 1..12 and small blocks (many glued pieces); text shrinks about as zlib's does. */
static void test_ld_levels_blocks(void **state)
{
	size_t n = 700000;
	unsigned char *in = make_data(n, MIXED), *text = make_data(n, TEXT);

	g_engine = LP_PDEFLATE_LIBDEFLATE;
	for (int level = 1; level <= 12; level += 11 / 3) {
		for (size_t block = 4096; block <= 262144; block *= 8) {
			struct buf a = { 0 }, b = { 0 };
			uint32_t ca, cb;

			run(in, n, 1, block, level, 65536, &a, &ca);
			run(in, n, 3, block, level, 65536, &b, &cb);
			assert_int_equal(a.n, b.n);
			assert_memory_equal(a.p, b.p, a.n);
			check_inflate(&a, in, n);
			free(a.p);
			free(b.p);
		}
	}
	{
		struct buf a = { 0 };
		uint32_t c;

		run(text, n, 2, 0, 6, 65536, &a, &c);
		check_inflate(&a, text, n);
		/*
		 * Against libdeflate on the whole buffer: the blocks lose only
		 * their head start (no dictionary), a few percent on this
		 * 10-word text, a fraction of a percent on real trees.
		 */
		{
			struct libdeflate_compressor *ld = libdeflate_alloc_compressor(6);
			size_t cap = libdeflate_deflate_compress_bound(ld, n);
			unsigned char *o = malloc(cap);
			size_t whole = libdeflate_deflate_compress(ld, text, n, o, cap);

			assert_true(whole > 0);
			assert_true(a.n <= whole * 110 / 100);
			free(o);
			libdeflate_free_compressor(ld);
		}
		free(a.p);
	}
	g_engine = LP_PDEFLATE_ZLIB;
	free(in);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_bytewise),
		cmocka_unit_test(test_single_block_is_plain_deflate),
		cmocka_unit_test(test_levels_blocks),
		cmocka_unit_test(test_random_is_stored),
		cmocka_unit_test(test_random_bound),
		cmocka_unit_test(test_compressible_is_deflated),
		cmocka_unit_test(test_repeat_in_random),
		cmocka_unit_test(test_incompressible_whole),
		cmocka_unit_test(test_repeat_across_segments),
		cmocka_unit_test(test_mixed_block),
		cmocka_unit_test(test_dictionary_after_stored),
		cmocka_unit_test(test_sink_error),
		cmocka_unit_test(test_bad_opts),
		cmocka_unit_test(test_gzip_framing),
		cmocka_unit_test(test_ld_identity),
		cmocka_unit_test(test_ld_levels_blocks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
