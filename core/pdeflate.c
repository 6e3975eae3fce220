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
};

struct lp_pdeflate {
	int level;
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
}

static int compress_job(struct pd_coder *c, int level, struct pd_job *j)
{
	z_stream *zs = &c->zs;
	int flush = j->last ? Z_FINISH : Z_SYNC_FLUSH;
	int r;

	j->crc = libdeflate_crc32(0, j->in + PD_DICT, j->len);
	r = zinit(c, level);
	if (r < 0)
		return r;
	if (deflateReset(zs) != Z_OK)
		return -EIO;
	if (j->dictlen &&
	    deflateSetDictionary(zs, j->in + PD_DICT - j->dictlen, (uInt)j->dictlen) != Z_OK)
		return -EIO;
	zs->next_in = j->in + PD_DICT;
	zs->avail_in = (uInt)j->len;
	j->outlen = 0;
	for (;;) {
		int zr;

		if (j->outcap - j->outlen < 64) {
			size_t cap = j->outcap * 2;
			unsigned char *p = realloc(j->out, cap);

			if (!p)
				return -ENOMEM;
			j->out = p;
			j->outcap = cap;
		}
		zs->next_out = j->out + j->outlen;
		zs->avail_out = (uInt)(j->outcap - j->outlen);
		zr = deflate(zs, flush);
		j->outlen = j->outcap - zs->avail_out;
		if (zr == Z_STREAM_ERROR)
			return -EIO;
		if (j->last ? zr == Z_STREAM_END : (zs->avail_in == 0 && zs->avail_out != 0))
			return 0;
	}
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
		r = compress_job(&c, z->level, j);
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

	if (level < 1 || level > 9 || block < PD_MIN_BLOCK || block > PD_MAX_BLOCK || !o->sink)
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
		j->err = compress_job(&z->coder, z->level, j);
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
