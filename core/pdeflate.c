/* SPDX-License-Identifier: MIT */
/*
 * Single-threaded zlib implementation of the pdeflate API. The parallel
 * block implementation replaces this; the API and the guarantees stay.
 */
#include "core/pdeflate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

struct lp_pdeflate {
	z_stream zs;
	lp_sink_fn sink;
	void *ctx;
	uint32_t crc;
	uint64_t in, out;
	unsigned char buf[1 << 16];
};

int lp_pdeflate_new(const struct lp_pdeflate_opts *o, struct lp_pdeflate **ret)
{
	struct lp_pdeflate *z = calloc(1, sizeof(*z));

	if (!z)
		return -ENOMEM;
	if (deflateInit2(&z->zs, o->level ? o->level : 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		free(z);
		return -ENOMEM;
	}
	z->sink = o->sink;
	z->ctx = o->sink_ctx;
	z->crc = (uint32_t)crc32(0, NULL, 0);
	*ret = z;
	return 0;
}

static int pump(struct lp_pdeflate *z, int flush)
{
	do {
		int zr, r;
		size_t have;

		z->zs.next_out = z->buf;
		z->zs.avail_out = sizeof(z->buf);
		zr = deflate(&z->zs, flush);
		if (zr == Z_STREAM_ERROR)
			return -EIO;
		have = sizeof(z->buf) - z->zs.avail_out;
		if (have) {
			r = z->sink(z->ctx, z->buf, have);
			if (r < 0)
				return r;
			z->out += have;
		}
		if (flush == Z_FINISH && zr == Z_STREAM_END)
			return 0;
	} while (z->zs.avail_out == 0 || flush == Z_FINISH);
	return 0;
}

int lp_pdeflate_write(struct lp_pdeflate *z, const void *buf, size_t n)
{
	const unsigned char *p = buf;

	z->crc = (uint32_t)crc32_z(z->crc, p, n);
	z->in += n;
	while (n) {
		uInt take = n > (1u << 30) ? (1u << 30) : (uInt)n;
		int r;

		z->zs.next_in = (unsigned char *)p;
		z->zs.avail_in = take;
		r = pump(z, Z_NO_FLUSH);
		if (r < 0)
			return r;
		p += take;
		n -= take;
	}
	return 0;
}

int lp_pdeflate_finish(struct lp_pdeflate *z, uint32_t *ret_crc, uint64_t *ret_in, uint64_t *ret_out)
{
	int r;

	z->zs.next_in = NULL;
	z->zs.avail_in = 0;
	r = pump(z, Z_FINISH);
	if (r < 0)
		return r;
	if (ret_crc)
		*ret_crc = z->crc;
	if (ret_in)
		*ret_in = z->in;
	if (ret_out)
		*ret_out = z->out;
	return 0;
}

void lp_pdeflate_free(struct lp_pdeflate *z)
{
	if (!z)
		return;
	deflateEnd(&z->zs);
	free(z);
}

void lp_gzip_header(uint8_t out[10], int level)
{
	static const uint8_t h[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255 };

	memcpy(out, h, 10);
	/* XFL: 2 = best compression, 4 = fastest, as gzip sets it. */
	out[8] = level >= 9 ? 2 : level == 1 ? 4 : 0;
}

void lp_gzip_trailer(uint8_t out[8], uint32_t crc, uint64_t isize)
{
	for (int i = 0; i < 4; i++) {
		out[i] = (uint8_t)(crc >> (8 * i));
		out[4 + i] = (uint8_t)(isize >> (8 * i));
	}
}
