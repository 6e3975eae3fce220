/* SPDX-License-Identifier: MIT */
/*
 * Parallel deflate, the pigz scheme: the input is cut into fixed-size
 * blocks; each block is compressed by a worker with the previous block's
 * last 32 KiB as preset dictionary and ends with a sync flush (the last one
 * with Z_FINISH), so the pieces concatenate into one raw deflate stream.
 *
 * What each block compresses to depends only on its bytes, its dictionary,
 * the level and whether it is last, so the stream is the same for any
 * thread count. A block is dispatched only once the next byte arrives (or
 * at finish), which is how we know whether it is the last one without
 * appending an empty final block.
 *
 * Within a block, 32 KiB segments that deflate could hardly shrink (random
 * or already compressed data) are written as stored blocks instead, which
 * saves zlib's futile match search on them; see incompressible().
 *
 * Blocks live in a ring of 2*threads+2 slots: the caller fills one, workers
 * compress others, and finished ones are handed to the sink in order from
 * the caller's thread, so the sink never needs locking.
 */
#include "core/pdeflate.h"

#include <errno.h>
#include <libdeflate.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define PD_DICT		32768u
#define PD_DEF_BLOCK	(128u * 1024)
#define PD_MIN_BLOCK	1024u
#define PD_MAX_BLOCK	(64u * 1024 * 1024)
#define PD_MAX_THREADS	64u
#define PD_STORED_MAX	65535u		/* data bytes in one stored deflate block */
#define PD_SEG		32768u		/* incompressibility is judged per segment */
#define PD_PROBE_MIN	4096u		/* shorter segments are always deflated */

/* The longest segment: PD_SEG and a tail too short to judge on its own. */
#define PD_SEG_MAX	(PD_SEG + PD_PROBE_MIN - 1)

enum pd_state {
	PD_FREE = 0,
	PD_FILLING,
	PD_QUEUED,
	PD_BUSY,
	PD_DONE,
};

struct pd_job {
	unsigned char *in;	/* [PD_DICT bytes of dictionary][block bytes] */
	size_t dictlen;		/* dictionary bytes, right-aligned before the data */
	size_t len;		/* data bytes */
	unsigned char *out;
	size_t outcap, outlen;
	uint32_t crc;		/* CRC-32 of this block's data alone */
	bool last;
	enum pd_state state;
	int err;
};

/* What one compressing thread owns; set up on its first block. */
struct pd_coder {
	z_stream zs;
	bool zs_ok;
	struct libdeflate_compressor *ld;	/* the incompressibility probe */
	unsigned char *scratch;			/* its output, PD_SEG_MAX bytes */
	/* The libdeflate engine: its compressor, and an inflater that finds block boundaries. */
	struct libdeflate_compressor *ldc;
	z_stream inf;
	bool inf_ok;
	unsigned char *iout;			/* the inflater's output */
	size_t iout_cap;
};

struct lp_pdeflate {
	int level;
	enum lp_pdeflate_engine engine;
	unsigned threads;
	size_t block;
	lp_sink_fn sink;
	void *ctx;

	struct pd_job *slot;
	unsigned nslots;
	uint64_t fill;		/* sequence number of the block being filled */
	uint64_t emit;		/* next block to hand to the sink */
	uint64_t take;		/* next queued block a worker takes */
	uint64_t queued;	/* blocks dispatched so far */
	bool have_fill;		/* slot(fill) is FILLING */

	uint32_t crc;
	uint64_t in, out;
	int err;		/* sticky: first error seen */
	bool finished;

	/* Inline compression when threads == 1, and the single-block fast path. */
	struct pd_coder coder;

	pthread_t *tid;
	unsigned nworkers;	/* started so far (lazily, on the first dispatch) */
	pthread_mutex_t mu;
	pthread_cond_t work;	/* a block was queued, or stop */
	pthread_cond_t done;	/* a block finished */
	bool stop;
};

static struct pd_job *slot_of(struct lp_pdeflate *z, uint64_t seq)
{
	return &z->slot[seq % z->nslots];
}

static int zinit(struct pd_coder *c, int level)
{
	if (c->zs_ok)
		return 0;
	memset(&c->zs, 0, sizeof(c->zs));
	/* Raw deflate, 32 KiB window, zlib's default memLevel: what gzip and zip use. */
	if (deflateInit2(&c->zs, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	c->zs_ok = true;
	return 0;
}

static void coder_end(struct pd_coder *c)
{
	if (c->zs_ok)
		deflateEnd(&c->zs);
	c->zs_ok = false;
	libdeflate_free_compressor(c->ld);
	c->ld = NULL;
	free(c->scratch);
	c->scratch = NULL;
	libdeflate_free_compressor(c->ldc);
	c->ldc = NULL;
	if (c->inf_ok)
		inflateEnd(&c->inf);
	c->inf_ok = false;
	free(c->iout);
	c->iout = NULL;
	c->iout_cap = 0;
}

static uint64_t le64(const unsigned char *p)
{
	/* Spelled out so that compilers make it one load on little-endian
	 * machines, and big-endian ones decide the same way. */
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
	       (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
	       (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

/*
 * Could deflate match 8 or more bytes somewhere in p[0..n), looking back as
 * far as it can, into the back bytes before p too? Only anchors, positions
 * whose next 8 bytes hash to one value in 16, touch the table; both copies
 * of a repeat have the same anchors wherever they lie, so a repeat of a
 * hundred bytes is all but surely seen, for a fraction of a compressor's
 * work. Two random 8-byte strings are equal with odds 2^-64, so a hit is
 * real.
 */
static bool has_repeats(const unsigned char *p, size_t n, size_t back)
{
	uint32_t last[8192] = { 0 };	/* offset + 1 of an anchor, by hash */
	const unsigned char *base = p - back;

	for (size_t i = 0; i + 8 <= back + n; i++) {
		uint32_t h = (uint32_t)((le64(base + i) * 0x9e3779b97f4a7c15ull) >> 47);
		size_t prev;

		if (h & 15)
			continue;
		prev = last[h >> 4];
		last[h >> 4] = (uint32_t)(i + 1);
		/* The bytes before p only fill the table. */
		if (i >= back && prev && i - (prev - 1) <= PD_DICT &&
		    !memcmp(base + prev - 1, base + i, 8))
			return true;
	}
	return false;
}

/*
 * Would deflate gain next to nothing on p[0..n), which the back bytes
 * before it are in reach of (random, encrypted or already compressed
 * data)? Then its match search is wasted work, and storing the bytes costs
 * at most a few tenths of a percent. 1 yes, 0 no, or -errno.
 *
 * The answer depends only on these bytes, so the stream stays the same for
 * any thread count. It is meant to be conservative: a wrong "yes" costs
 * compression, a wrong "no" only the time zlib would have spent anyway.
 *
 * 1. An order-0 byte histogram turns away text, code, ELF files and most
 *    other compressible data for a few percent of what deflating costs.
 *    It tests the sum of squared counts (collision entropy, a lower bound
 *    for the Shannon entropy) in integers, so that no libm rounding can
 *    make two machines decide differently. Uniform bytes give about
 *    n*n/256 + n; above n*n/256 * (1 + 1/64) + n we deflate.
 * 2. We also deflate if deflate could match a run of 8 or more bytes, in
 *    the segment or the 32 KiB before it: uniform bytes can still repeat
 *    (the same compressed file twice in a tar), which the histogram does
 *    not show.
 * 3. Near-uniform bytes (within 1/256) without such repeats are stored:
 *    that is what random and encrypted data look like, and Huffman coding
 *    alone could gain about 0.2% at most on a whole segment.
 * 4. What lies in between (deflate output often does: zip, gz, png) goes
 *    to libdeflate's fastest level, at about a quarter of zlib's time, and
 *    is stored only if that cannot save 1/256 of it.
 */
static int incompressible(struct pd_coder *c, const unsigned char *p, size_t n,
			  size_t back)
{
	uint32_t h[4][256] = { { 0 } };
	uint64_t sq = 0, nn = (uint64_t)n * n, uniform = nn + 256 * (uint64_t)n;
	size_t i;

	if (n < PD_PROBE_MIN)
		return 0;
	/* Four tables so runs of one byte do not serialise on one counter. */
	for (i = 0; i + 4 <= n; i += 4) {
		h[0][p[i]]++;
		h[1][p[i + 1]]++;
		h[2][p[i + 2]]++;
		h[3][p[i + 3]]++;
	}
	for (; i < n; i++)
		h[0][p[i]]++;
	for (i = 0; i < 256; i++) {
		uint64_t k = (uint64_t)h[0][i] + h[1][i] + h[2][i] + h[3][i];

		sq += k * k;
	}
	if (256 * sq > uniform + nn / 64 || has_repeats(p, n, back))
		return 0;
	if (256 * sq <= uniform + nn / 256)
		return 1;

	/*
	 * Failing here must fail the stream: deflating instead would be
	 * valid, but the bytes would then depend on memory pressure.
	 */
	if (!c->ld) {
		c->ld = libdeflate_alloc_compressor(1);
		if (!c->ld)
			return -ENOMEM;
	}
	if (!c->scratch) {
		c->scratch = malloc(PD_SEG_MAX);
		if (!c->scratch)
			return -ENOMEM;
	}
	/* 0: the compressed bytes do not fit in that many. */
	return libdeflate_deflate_compress(c->ld, p, n, c->scratch, n - n / 256) == 0;
}

int lp_deflate_incompressible(const void *buf, size_t n)
{
	const unsigned char *p = buf;
	struct pd_coder c = { 0 };
	int r = n >= PD_PROBE_MIN;

	/* Same segments as the stream: PD_SEG each, a short tail joins the one before. */
	for (size_t off = 0; r == 1 && off < n;) {
		size_t len = n - off <= PD_SEG_MAX ? n - off : PD_SEG;

		r = incompressible(&c, p + off, len, off < PD_DICT ? off : PD_DICT);
		off += len;
	}
	coder_end(&c);
	return r;
}

static int out_reserve(struct pd_job *j, size_t n)
{
	size_t cap = j->outcap;
	unsigned char *p;

	if (cap - j->outlen >= n)
		return 0;
	while (cap - j->outlen < n)
		cap *= 2;
	p = realloc(j->out, cap);
	if (!p)
		return -ENOMEM;
	j->out = p;
	j->outcap = cap;
	return 0;
}

/*
 * Block data [from, to) as stored deflate blocks. They start on a byte
 * boundary: the stream's start, or after a sync flush or other stored
 * blocks. Stored data is in the window like any other, so what follows is
 * deflated with the same dictionary as if this had been deflated.
 */
static int store_range(struct pd_job *j, size_t from, size_t to, bool fin)
{
	const unsigned char *p = j->in + PD_DICT + from;
	size_t left = to - from;
	unsigned char *o;
	int r;

	r = out_reserve(j, left + 5 * (left / PD_STORED_MAX + 1));
	if (r < 0)
		return r;
	o = j->out + j->outlen;
	do {
		size_t k = left < PD_STORED_MAX ? left : PD_STORED_MAX;

		left -= k;
		/* BFINAL in bit 0, BTYPE 00, then padding to the byte boundary. */
		*o++ = fin && !left;
		*o++ = (unsigned char)k;
		*o++ = (unsigned char)(k >> 8);
		*o++ = (unsigned char)~k;
		*o++ = (unsigned char)(~k >> 8);
		memcpy(o, p, k);
		o += k;
		p += k;
	} while (left);
	j->outlen = (size_t)(o - j->out);
	return 0;
}

/*
 * Deflate block data [from, to) with the 32 KiB before it as dictionary,
 * ending with a sync flush (byte-aligned, more to come) or, with fin, the
 * final block.
 */
static int deflate_range(struct pd_coder *c, int level, struct pd_job *j,
			 size_t from, size_t to, bool fin)
{
	z_stream *zs = &c->zs;
	int flush = fin ? Z_FINISH : Z_SYNC_FLUSH;
	size_t dictlen = j->dictlen + from < PD_DICT ? j->dictlen + from : PD_DICT;
	int r;

	r = zinit(c, level);
	if (r < 0)
		return r;
	if (deflateReset(zs) != Z_OK)
		return -EIO;
	if (dictlen &&
	    deflateSetDictionary(zs, j->in + PD_DICT + from - dictlen, (uInt)dictlen) != Z_OK)
		return -EIO;
	zs->next_in = j->in + PD_DICT + from;
	zs->avail_in = (uInt)(to - from);
	for (;;) {
		int zr;

		r = out_reserve(j, 64);
		if (r < 0)
			return r;
		zs->next_out = j->out + j->outlen;
		zs->avail_out = (uInt)(j->outcap - j->outlen);
		zr = deflate(zs, flush);
		j->outlen = j->outcap - zs->avail_out;
		if (zr == Z_STREAM_ERROR)
			return -EIO;
		if (fin ? zr == Z_STREAM_END : (zs->avail_in == 0 && zs->avail_out != 0))
			return 0;
	}
}

/*
 * Where, in the raw deflate stream p[0..n) that decodes to out_len bytes,
 * does its last block's header start, and where does the stream end (in
 * bits)? zlib's inflate with Z_BLOCK stops at every block boundary and
 * tells how many bits of the last byte it took, which is all we need; it
 * runs several times faster than the compression it follows.
 */
static int find_last_block(struct pd_coder *c, const unsigned char *p, size_t n, size_t out_len,
			   uint64_t *ret_last, uint64_t *ret_end)
{
	z_stream *zs = &c->inf;
	uint64_t last = 0;

	if (!c->inf_ok) {
		memset(zs, 0, sizeof(*zs));
		if (inflateInit2(zs, -15) != Z_OK)
			return -ENOMEM;
		c->inf_ok = true;
	}
	if (c->iout_cap < out_len + 1) {
		unsigned char *o = realloc(c->iout, out_len + 1);

		if (!o)
			return -ENOMEM;
		c->iout = o;
		c->iout_cap = out_len + 1;
	}
	if (inflateReset(zs) != Z_OK)
		return -EIO;
	zs->next_in = (unsigned char *)p;
	zs->avail_in = (uInt)n;
	zs->next_out = c->iout;
	zs->avail_out = (uInt)c->iout_cap;
	for (;;) {
		int zr = inflate(zs, Z_BLOCK);
		uint64_t at;

		if (zr != Z_OK)
			return -EIO;	/* our own compressor's output must decode */
		if (!(zs->data_type & 128))
			continue;
		/* At a block boundary: bits consumed so far. */
		at = (uint64_t)(n - zs->avail_in) * 8 - (uint64_t)(zs->data_type & 7);
		if (zs->data_type & 64) {
			/* Just past the end of the final block. */
			if (zs->total_out != out_len)
				return -EIO;
			*ret_last = last;
			*ret_end = at;
			return 0;
		}
		last = at;
	}
}

/*
 * Block data [from, to) deflated by libdeflate as a stream of its own
 * (libdeflate takes no dictionary). Unless it ends the whole stream, the
 * final flag of its last block is cleared and an empty stored block
 * appended, the same sync marker zlib's Z_SYNC_FLUSH writes, so the next
 * piece starts on a byte boundary and the pieces read as one stream.
 */
static int deflate_range_ld(struct pd_coder *c, int level, struct pd_job *j,
			    size_t from, size_t to, bool fin)
{
	const unsigned char *in = j->in + PD_DICT + from;
	size_t n = to - from, bound, cs, at;
	uint64_t last, end;
	unsigned char *o;
	int r;

	if (!c->ldc) {
		c->ldc = libdeflate_alloc_compressor(level);
		if (!c->ldc)
			return -ENOMEM;
	}
	bound = libdeflate_deflate_compress_bound(c->ldc, n) + 8;
	r = out_reserve(j, bound);
	if (r < 0)
		return r;
	o = j->out + j->outlen;
	cs = libdeflate_deflate_compress(c->ldc, in, n, o, bound);
	if (!cs)
		return -EIO;
	if (fin) {
		j->outlen += cs;
		return 0;
	}
	r = find_last_block(c, o, cs, n, &last, &end);
	if (r < 0)
		return r;
	o[last / 8] &= (unsigned char)~(1u << (last % 8));
	/* Drop the padding after the end, then 3 zero bits (not final, stored), aligned. */
	if (end % 8)
		o[end / 8] &= (unsigned char)((1u << (end % 8)) - 1);
	at = (size_t)((end + 3 + 7) / 8);
	for (size_t k = (size_t)((end + 7) / 8); k < at; k++)
		o[k] = 0;
	o[at] = 0;
	o[at + 1] = 0;
	o[at + 2] = 0xff;
	o[at + 3] = 0xff;
	j->outlen += at + 4;
	return 0;
}

static int deflate_any(struct pd_coder *c, enum lp_pdeflate_engine eng, int level, struct pd_job *j,
		       size_t from, size_t to, bool fin)
{
	return eng == LP_PDEFLATE_LIBDEFLATE ? deflate_range_ld(c, level, j, from, to, fin) :
					       deflate_range(c, level, j, from, to, fin);
}

/*
 * Incompressibility is judged per PD_SEG-byte segment, so a block that is
 * mostly random with some text (a file boundary) stores the random part
 * and deflates the rest. Runs of segments judged alike go out together;
 * a block with no incompressible segment is one deflate call, as before.
 */
static int compress_job(struct pd_coder *c, enum lp_pdeflate_engine eng, int level, struct pd_job *j)
{
	const unsigned char *p = j->in + PD_DICT;
	size_t from = 0, at, k;
	bool stored = false;

	j->crc = libdeflate_crc32(0, p, j->len);
	j->outlen = 0;
	if (!j->len)	/* an empty last block still ends the stream */
		return deflate_any(c, eng, level, j, 0, 0, j->last);
	for (at = 0; at < j->len; at += k) {
		bool next;
		int r;

		/* A tail too short to judge joins the segment before it. */
		k = j->len - at < PD_SEG + PD_PROBE_MIN ? j->len - at : PD_SEG;
		r = incompressible(c, p + at, k,
				   j->dictlen + at < PD_DICT ? j->dictlen + at : PD_DICT);
		if (r < 0)
			return r;
		next = r;
		if (at && next != stored) {
			r = stored ? store_range(j, from, at, false) :
				     deflate_any(c, eng, level, j, from, at, false);
			if (r < 0)
				return r;
			from = at;
		}
		stored = next;
	}
	return stored ? store_range(j, from, j->len, j->last) :
			deflate_any(c, eng, level, j, from, j->len, j->last);
}

static void *worker(void *arg)
{
	struct lp_pdeflate *z = arg;
	struct pd_coder c = { 0 };

	pthread_mutex_lock(&z->mu);
	for (;;) {
		struct pd_job *j;
		int r;

		while (!z->stop && z->take == z->queued)
			pthread_cond_wait(&z->work, &z->mu);
		if (z->stop)
			break;
		j = slot_of(z, z->take++);
		j->state = PD_BUSY;
		pthread_mutex_unlock(&z->mu);
		r = compress_job(&c, z->engine, z->level, j);
		pthread_mutex_lock(&z->mu);
		j->err = r;
		j->state = PD_DONE;
		pthread_cond_broadcast(&z->done);
	}
	pthread_mutex_unlock(&z->mu);
	coder_end(&c);
	return NULL;
}

int lp_pdeflate_new(const struct lp_pdeflate_opts *o, struct lp_pdeflate **ret)
{
	struct lp_pdeflate *z;
	unsigned threads = o->threads;
	size_t block = o->block ? o->block : PD_DEF_BLOCK;
	int level = o->level ? o->level : 6;

	if (level < 1 || level > (o->engine == LP_PDEFLATE_LIBDEFLATE ? 12 : 9) || block < PD_MIN_BLOCK || block > PD_MAX_BLOCK || !o->sink)
		return -EINVAL;
	if (!threads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		threads = n > 0 ? (unsigned)n : 1;
	}
	if (threads > PD_MAX_THREADS)
		threads = PD_MAX_THREADS;

	z = calloc(1, sizeof(*z));
	if (!z)
		return -ENOMEM;
	z->level = level;
	z->engine = o->engine;
	z->threads = threads;
	z->block = block;
	z->sink = o->sink;
	z->ctx = o->sink_ctx;
	/* Two blocks per worker keep them busy while the sink drains; +2 for the caller. */
	z->nslots = threads == 1 ? 2 : 2 * threads + 2;
	z->slot = calloc(z->nslots, sizeof(*z->slot));
	z->tid = calloc(threads, sizeof(*z->tid));
	if (!z->slot || !z->tid) {
		free(z->slot);
		free(z->tid);
		free(z);
		return -ENOMEM;
	}
	pthread_mutex_init(&z->mu, NULL);
	pthread_cond_init(&z->work, NULL);
	pthread_cond_init(&z->done, NULL);
	*ret = z;
	return 0;
}

/* Buffers are allocated on first use so that small inputs cost one slot. */
static int job_alloc(struct lp_pdeflate *z, struct pd_job *j)
{
	if (!j->in) {
		j->in = malloc(PD_DICT + z->block);
		if (!j->in)
			return -ENOMEM;
	}
	if (!j->out) {
		/* Bound of a raw stream plus room for the sync marker. */
		j->outcap = z->block + (z->block >> 8) + 256;
		j->out = malloc(j->outcap);
		if (!j->out)
			return -ENOMEM;
	}
	return 0;
}

/* Hand one finished block to the sink. Called with the lock NOT held. */
static int emit_one(struct lp_pdeflate *z, struct pd_job *j)
{
	int r = j->err;

	if (r == 0 && j->outlen) {
		r = z->sink(z->ctx, j->out, j->outlen);
		z->out += j->outlen;
	}
	z->crc = (uint32_t)crc32_combine(z->crc, j->crc, (z_off_t)j->len);
	return r;
}

/*
 * Emit finished blocks in order. With wait, block until slot(emit) is done
 * (used when the ring is full or at finish); otherwise only take what is ready.
 */
static int drain(struct lp_pdeflate *z, uint64_t until, bool wait)
{
	while (z->emit < until) {
		struct pd_job *j = slot_of(z, z->emit);
		bool ready;
		int r;


		pthread_mutex_lock(&z->mu);
		while (wait && j->state != PD_DONE)
			pthread_cond_wait(&z->done, &z->mu);
		ready = j->state == PD_DONE;
		pthread_mutex_unlock(&z->mu);
		if (!ready)
			return 0;
		r = emit_one(z, j);
		j->state = PD_FREE;
		z->emit++;
		if (r < 0)
			return r;
	}
	return 0;
}

static int start_workers(struct lp_pdeflate *z)
{
	while (z->nworkers < z->threads) {
		if (pthread_create(&z->tid[z->nworkers], NULL, worker, z) != 0)
			return z->nworkers ? 0 : -EAGAIN;	/* fewer workers is still correct */
		z->nworkers++;
	}
	return 0;
}

static int dispatch(struct lp_pdeflate *z, bool last)
{
	struct pd_job *j = slot_of(z, z->fill);
	int r;

	j->last = last;
	z->have_fill = false;
	if (z->threads == 1 || (last && z->fill == 0)) {
		/* One thread, or the whole input fits in one block: no hand-off. */
		j->err = compress_job(&z->coder, z->engine, z->level, j);
		j->state = PD_DONE;
		z->queued++;
		z->take++;
	} else {
		r = start_workers(z);
		if (r < 0)
			return r;
		pthread_mutex_lock(&z->mu);
		j->state = PD_QUEUED;
		z->queued++;
		pthread_cond_signal(&z->work);
		pthread_mutex_unlock(&z->mu);
	}
	z->fill++;
	return drain(z, z->fill, false);
}

/* Make slot(fill) the block being filled, carrying the dictionary over. */
static int open_fill(struct lp_pdeflate *z)
{
	struct pd_job *j, *prev;
	int r;

	/* The ring is full: wait for the oldest block and pass it on. */
	r = drain(z, z->fill + 1 > z->nslots ? z->fill + 1 - z->nslots : 0, true);
	if (r < 0)
		return r;
	j = slot_of(z, z->fill);
	r = job_alloc(z, j);
	if (r < 0)
		return r;
	j->len = 0;
	j->dictlen = 0;
	j->err = 0;
	if (z->fill > 0) {
		/*
		 * The previous slot is still intact: it was dispatched but a
		 * slot is only reused nslots blocks later.
		 */
		prev = slot_of(z, z->fill - 1);
		j->dictlen = prev->len < PD_DICT ? prev->len : PD_DICT;
		memcpy(j->in + PD_DICT - j->dictlen, prev->in + PD_DICT + prev->len - j->dictlen, j->dictlen);
	}
	j->state = PD_FILLING;
	z->have_fill = true;
	return 0;
}

int lp_pdeflate_write(struct lp_pdeflate *z, const void *buf, size_t n)
{
	const unsigned char *p = buf;

	if (z->err)
		return z->err;
	if (z->finished)
		return -EINVAL;
	while (n) {
		struct pd_job *j;
		size_t take;
		int r;

		if (!z->have_fill) {
			r = open_fill(z);
			if (r < 0)
				return z->err = r;
		}
		j = slot_of(z, z->fill);
		if (j->len == z->block) {
			/* More input follows, so this full block is not the last. */
			r = dispatch(z, false);
			if (r < 0)
				return z->err = r;
			continue;
		}
		take = z->block - j->len;
		if (take > n)
			take = n;
		memcpy(j->in + PD_DICT + j->len, p, take);
		j->len += take;
		z->in += take;
		p += take;
		n -= take;
	}
	return 0;
}

int lp_pdeflate_finish(struct lp_pdeflate *z, uint32_t *ret_crc, uint64_t *ret_in, uint64_t *ret_out)
{
	int r;

	if (z->err)
		return z->err;
	if (z->finished)
		return -EINVAL;
	/* Empty input still needs a final (empty) block. */
	if (!z->have_fill) {
		r = open_fill(z);
		if (r < 0)
			return z->err = r;
	}
	r = dispatch(z, true);
	if (r == 0)
		r = drain(z, z->fill, true);
	if (r < 0)
		return z->err = r;
	z->finished = true;
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
	pthread_mutex_lock(&z->mu);
	z->stop = true;
	pthread_cond_broadcast(&z->work);
	pthread_mutex_unlock(&z->mu);
	for (unsigned i = 0; i < z->nworkers; i++)
		pthread_join(z->tid[i], NULL);
	coder_end(&z->coder);
	for (unsigned i = 0; i < z->nslots; i++) {
		free(z->slot[i].in);
		free(z->slot[i].out);
	}
	pthread_mutex_destroy(&z->mu);
	pthread_cond_destroy(&z->work);
	pthread_cond_destroy(&z->done);
	free(z->slot);
	free(z->tid);
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
