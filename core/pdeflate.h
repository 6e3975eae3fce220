/* SPDX-License-Identifier: MIT */
/*
 * Streaming deflate that produces ONE raw deflate stream (for a zip entry or
 * a gzip member) from input of any size, compressing blocks in parallel the
 * way pigz does, with memory bounded by the number of blocks in flight.
 * The bytes produced depend only on the input, the level and the block size,
 * never on the thread count or timing. Stretches that deflate would hardly
 * shrink (random or already compressed data) go out as stored blocks, so
 * incompressible input costs little time and grows only by their 5-byte
 * headers (one per 64 KiB at most).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct lp_pdeflate;

/* Receives compressed bytes in stream order. Return 0 or -errno. */
typedef int (*lp_sink_fn)(void *ctx, const void *buf, size_t n);

/*
 * Which compressor makes the deflated blocks. Both give one raw deflate
 * stream whose bytes depend only on input, level, block size and engine.
 */
enum lp_pdeflate_engine {
	/* zlib, each block primed with the previous 32 KiB (as pigz does). */
	LP_PDEFLATE_ZLIB = 0,
	/*
	 * libdeflate, each block on its own (no preset dictionary), its final
	 * flag cleared and a sync marker appended: about 2.5x less CPU per byte
	 * than zlib for a fraction of a percent in size.
	 */
	LP_PDEFLATE_LIBDEFLATE,
};

struct lp_pdeflate_opts {
	int level;		/* 1..9 (zlib), 1..12 (libdeflate); 0 = default (6) */
	enum lp_pdeflate_engine engine;
	unsigned threads;	/* worker threads; 0 = online CPUs */
	size_t block;		/* input block size; 0 = default (128 KiB) */
	lp_sink_fn sink;
	void *sink_ctx;
};

int lp_pdeflate_new(const struct lp_pdeflate_opts *o, struct lp_pdeflate **ret);
/* Feed input. May block while workers catch up (bounded memory). */
int lp_pdeflate_write(struct lp_pdeflate *z, const void *buf, size_t n);
/* Flush everything, end the stream; CRC-32 and sizes of what went through. */
int lp_pdeflate_finish(struct lp_pdeflate *z, uint32_t *ret_crc, uint64_t *ret_in, uint64_t *ret_out);
void lp_pdeflate_free(struct lp_pdeflate *z);

/*
 * Would deflate gain next to nothing on all of buf (judged per 32 KiB
 * segment exactly as the stream judges them)? 1 yes, 0 no, -errno. Lets a
 * caller holding a whole file skip compressing random or already
 * compressed data; the answer depends only on the bytes.
 */
int lp_deflate_incompressible(const void *buf, size_t n);

/* The fixed 10-byte gzip header lambdapack writes: no name, mtime 0, OS 255. */
void lp_gzip_header(uint8_t out[10], int level);
/* The 8-byte gzip trailer (CRC-32, ISIZE mod 2^32). */
void lp_gzip_trailer(uint8_t out[8], uint32_t crc, uint64_t isize);
