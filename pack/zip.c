/* SPDX-License-Identifier: MIT */
/*
 * The zip emitter.
 *
 * Workers take entries in list order and prepare them ahead of the writer:
 * a file up to whole_max is read and deflated in one libdeflate call (or
 * kept as is when that does not shrink it). The calling thread writes the
 * prepared entries strictly in order, and streams larger files itself
 * through pdeflate (zlib, parallel blocks), so memory stays bounded by the
 * read-ahead window plus pdeflate's ring. Which path an entry takes depends
 * only on its size, never on timing, so the bytes do not either.
 *
 * No data descriptors: a streamed entry's local header is written with
 * placeholders and patched with pwrite once its CRC and size are known.
 *
 * With a build cache, an entry's data is keyed by the file's SHA-256 (the
 * entry's, the stat index's, or computed from the bytes just read) and the
 * settings that shape it; a verified cached copy replaces reading and
 * deflating, and what is computed is stored. Both give the same bytes.
 */
#include "pack/zip.h"

#include <errno.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "cache/cache.h"
#include "core/classify.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/util.h"
#include "core/fsutil.h"
#include "core/pdeflate.h"
#include "core/progress.h"
#include "core/util.h"

#define SIG_LOCAL	0x04034b50u
#define SIG_CENTRAL	0x02014b50u
#define SIG_EOCD	0x06054b50u
#define SIG_EOCD64	0x06064b50u
#define SIG_LOC64	0x07064b50u

#define MADE_BY_UNIX	(3u << 8)
#define VER_DEFAULT	20u	/* 2.0: deflate, directories */
#define VER_ZIP64	45u	/* 4.5: only on entries/records that need zip64 */
#define FLAG_UTF8	0x0800u
#define DOS_DIR		0x10u	/* MS-DOS directory attribute, as Info-ZIP and Python set it */

#define LOCAL_LEN	30u
#define CENTRAL_LEN	46u
#define OUTBUF		(1u << 20)
#define READ_CHUNK	(1u << 20)
#define EPOCH_MAX	4354819198LL	/* 2107-12-31T23:59:58Z, the last DOS time */

enum job_state {
	J_PENDING = 0,
	J_RUNNING,
	J_DONE,
};

struct zjob {
	enum job_state state;
	int err;
	char *msg;		/* worker's lp_errmsg() when err */
	uint16_t method;
	bool streamed;		/* the writer deflates it through pdeflate */
	uint32_t crc;
	uint64_t usize, csize;
	unsigned char *data;	/* csize bytes of entry data */
	size_t cost;		/* bytes charged to the window */
	/*
	 * A cache hit whose header checked out, left open: the writer copies
	 * the payload through its own buffer and verifies the CRC-32 on the
	 * way (see emit_cached), instead of a worker reading it into fresh
	 * memory first.
	 */
	bool held;
	/*
	 * A small hit read whole into data by the worker (lp_cache_get_small:
	 * open, one read, close), holding a slot like a held entry so workers
	 * stay within held_max jobs of the writer and the buffers recycle.
	 */
	bool slot;
	bool refetch;		/* its held entry was bad: make the data from the file */
	uint8_t dg[32];		/* the content digest the held entry was found by */
	struct lp_cache_rd rd;
};

struct zw {
	const struct lp_entries *l;
	const struct lp_zip_opts *o;
	int level;
	uint64_t whole_max;
	uint64_t lim;		/* zip64 size/offset threshold */
	uint32_t lim_count;
	uint16_t dos_time, dos_date;

	/* Output: buf holds bytes [buf_at, buf_at + blen) of the archive. */
	int fd;
	off_t base;
	unsigned char *buf;
	size_t blen;
	uint64_t buf_at;
	/*
	 * SHA-256 of the bytes in order as they go out, so the caller need
	 * not read the archive back for it; a patch or rewind behind what was
	 * hashed spoils it (sha_ok false: the caller hashes the file).
	 */
	struct lp_sha256 sha;
	bool sha_ok;
	uint64_t synced;	/* archive bytes handed to writeback (sync_file_range) */
	/*
	 * With workers, a hasher thread takes each flushed buffer while the
	 * writer fills the other one (buf2), so hashing overlaps the writing.
	 */
	unsigned char *buf2;
	bool hasher_on;
	pthread_t hasher;
	pthread_mutex_t hmu;
	pthread_cond_t hcv;
	const unsigned char *hp;	/* what the hasher is given (under hmu) */
	size_t hn;
	bool hbusy, hstop;

	/* Central directory, built as entries are written. */
	unsigned char *cd;
	size_t cdlen, cdcap;
	size_t count;
	uint64_t unzipped;
	bool any64;

	/* Pipeline. */
	struct zjob *jobs;
	size_t window;
	size_t next;		/* next job a worker takes */
	size_t inflight;	/* bytes charged by taken, unwritten jobs */
	bool stop;
	pthread_mutex_t mu;
	pthread_cond_t cv_work;	/* window freed, or stop */
	pthread_cond_t cv_done;	/* a job finished */
	/*
	 * Who sleeps on which condition (set under mu, read without it):
	 * nobody is woken when nobody waits, so a warm run whose workers
	 * stay ahead of the writer makes almost no futex calls.
	 */
	unsigned nwait_work;	/* workers waiting for window or held room (atomic, changed under mu) */
	int writer_waiting;	/* atomic: the writer sleeps on cv_done */
	pthread_t *tid;
	unsigned nworkers;
	bool sync_ok;

	unsigned char *rbuf;	/* READ_CHUNK, for streamed files */
	struct lp_cache_wr *tee;	/* a streamed entry's data also goes here */
	unsigned nheld;		/* jobs with an open cache entry (atomic) */
	unsigned held_max;	/* how many may, from the fd limit */
	struct libdeflate_compressor *wc;	/* the writer's, for a bad cached entry */
};

/* emit_cached reads into the output buffer when this much of it is free, else flushes first. */
#define CACHED_MIN_ROOM	(64u << 10)

/*
 * Files up to this size take their cached data into memory in one read
 * (lp_cache_get_small, verified by the worker); bigger ones are held open
 * and copied through the writer's buffer.
 */
#define SMALL_HIT_MAX	(64u << 10)

/* Open cache entries that jobs may hold at once: a quarter of the fd limit, within these. */
#define HELD_MIN	16u
#define HELD_MAX	1024u

static void put16(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get16(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

uint32_t lp_zip_crc32(uint32_t crc, const void *buf, size_t n)
{
	return libdeflate_crc32(crc, buf, n);
}

uint32_t lp_zip_dostime(int64_t epoch)
{
	struct tm tm;
	time_t t;

	if (epoch < LP_ZIP_EPOCH_MIN)
		epoch = LP_ZIP_EPOCH_MIN;
	if (epoch > EPOCH_MAX)
		epoch = EPOCH_MAX;
	t = (time_t)epoch;
	gmtime_r(&t, &tm);
	return (uint32_t)((tm.tm_year - 80) << 9 | (tm.tm_mon + 1) << 5 | tm.tm_mday) << 16 |
	       (uint32_t)(tm.tm_hour << 11 | tm.tm_min << 5 | tm.tm_sec / 2);
}

void lp_zip_opts_init(struct lp_zip_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->level = LP_ZIP_LEVEL_DEFAULT;
	o->epoch = LP_ZIP_EPOCH_MIN;
}

/* ---- output ---- */

static int write_fail(struct zw *w, int r)
{
	return lp_fail(r, w->o->name, "cannot write the zip: %s", lp_strerror(r));
}

static int pwrite_all(int fd, const void *p, size_t n, off_t at)
{
	const unsigned char *c = p;

	while (n) {
		ssize_t k = pwrite(fd, c, n, at);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			return -EIO;
		c += k;
		n -= (size_t)k;
		at += k;
	}
	return 0;
}

static void *hasher_main(void *arg)
{
	struct zw *w = arg;

	pthread_mutex_lock(&w->hmu);
	for (;;) {
		const unsigned char *p;
		size_t n;

		while (!w->hbusy && !w->hstop)
			pthread_cond_wait(&w->hcv, &w->hmu);
		if (!w->hbusy)
			break;
		p = w->hp;
		n = w->hn;
		pthread_mutex_unlock(&w->hmu);
		lp_sha256_update(&w->sha, p, n);
		pthread_mutex_lock(&w->hmu);
		w->hbusy = false;
		pthread_cond_broadcast(&w->hcv);
	}
	pthread_mutex_unlock(&w->hmu);
	return NULL;
}

/* Wait until the hasher is done with what it was given. */
static void hash_wait(struct zw *w)
{
	if (!w->hasher_on)
		return;
	pthread_mutex_lock(&w->hmu);
	while (w->hbusy)
		pthread_cond_wait(&w->hcv, &w->hmu);
	pthread_mutex_unlock(&w->hmu);
}

/* Hash p (left untouched until the next hash_give or hash_wait returns). */
static void hash_give(struct zw *w, const unsigned char *p, size_t n)
{
	if (!w->hasher_on) {
		lp_sha256_update(&w->sha, p, n);
		return;
	}
	pthread_mutex_lock(&w->hmu);
	while (w->hbusy)
		pthread_cond_wait(&w->hcv, &w->hmu);
	w->hp = p;
	w->hn = n;
	w->hbusy = true;
	pthread_cond_broadcast(&w->hcv);
	pthread_mutex_unlock(&w->hmu);
}

/*
 * Start the disk writes of what is written so far, every WRITEBACK_STEP
 * bytes, without waiting for them: the caller's fsync before the rename
 * then finds most of the archive on disk already instead of writing it
 * all at the end. Only a hint (errors ignored; fsync reports them).
 */
#define WRITEBACK_STEP	(8u << 20)

static void start_writeback(struct zw *w)
{
	if (w->buf_at - w->synced < WRITEBACK_STEP)
		return;
	(void)sync_file_range(w->fd, w->base + (off_t)w->synced, (off_t)(w->buf_at - w->synced),
			      SYNC_FILE_RANGE_WRITE);
	w->synced = w->buf_at;
}

static int out_flush(struct zw *w)
{
	int r;

	if (!w->blen)
		return 0;
	if (w->sha_ok)
		hash_give(w, w->buf, w->blen);
	r = pwrite_all(w->fd, w->buf, w->blen, w->base + (off_t)w->buf_at);
	if (r < 0)
		return write_fail(w, r);
	w->buf_at += w->blen;
	w->blen = 0;
	start_writeback(w);
	if (w->hasher_on) {
		/* The hasher may still read this one: fill the other (it finished with that before taking this). */
		unsigned char *t = w->buf;

		w->buf = w->buf2;
		w->buf2 = t;
	}
	return 0;
}

static uint64_t out_off(const struct zw *w)
{
	return w->buf_at + w->blen;
}

static int out_put(struct zw *w, const void *p, size_t n)
{
	int r;

	if (n == 0)
		return 0;	/* an empty central directory has no buffer to copy */
	if (w->blen + n > OUTBUF) {
		r = out_flush(w);
		if (r < 0)
			return r;
		if (n >= OUTBUF) {
			/* Big prepared entries go straight out, skipping the copy. */
			if (w->sha_ok)
				hash_give(w, p, n);
			r = pwrite_all(w->fd, p, n, w->base + (off_t)w->buf_at);
			hash_wait(w);	/* p is the caller's */
			if (r < 0)
				return write_fail(w, r);
			w->buf_at += n;
			start_writeback(w);
			return 0;
		}
	}
	memcpy(w->buf + w->blen, p, n);
	w->blen += n;
	return 0;
}

/* Overwrite already written bytes (a local header) at archive offset at. */
static int out_patch(struct zw *w, uint64_t at, const void *p, size_t n)
{
	int r;

	if (at >= w->buf_at) {
		memcpy(w->buf + (at - w->buf_at), p, n);
		return 0;
	}
	r = out_flush(w);
	if (r < 0)
		return r;
	w->sha_ok = false;
	r = pwrite_all(w->fd, p, n, w->base + (off_t)at);
	return r < 0 ? write_fail(w, r) : 0;
}

/* Go back to offset at (rewriting a streamed entry as stored). */
static int out_rewind(struct zw *w, uint64_t at)
{
	int r = out_flush(w);

	if (r < 0)
		return r;
	if (at != w->buf_at)
		w->sha_ok = false;
	w->buf_at = at;
	if (w->synced > at)
		w->synced = at;
	return 0;
}

static int pd_sink(void *ctx, const void *buf, size_t n)
{
	struct zw *w = ctx;

	lp_cache_wr_write(w->tee, buf, n);
	return out_put(w, buf, n);
}

/* ---- reading sources ---- */

static int open_src(const struct lp_entry *e, int *ret)
{
	int fd;

	if (!e->src)
		return lp_fail(-EINVAL, e->path, "no source file to read");
	fd = open(e->src, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return lp_fail(-errno, e->src, "cannot open for reading: %s", strerror(errno));
	*ret = fd;
	return 0;
}

/* read() up to n bytes; fewer only at end of file. */
static int read_some(int fd, const struct lp_entry *e, unsigned char *p, size_t n, size_t *got)
{
	size_t have = 0;

	while (have < n) {
		ssize_t k = read(fd, p + have, n - have);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return lp_fail(-errno, e->src, "read failed: %s", strerror(errno));
		}
		if (k == 0)
			break;
		have += (size_t)k;
	}
	*got = have;
	return 0;
}

static int changed(const struct lp_entry *e)
{
	return lp_fail(-EIO, e->src, "file changed size while being zipped (expected %llu bytes)",
		       (unsigned long long)e->size);
}

/* The next read must hit end of file, or the file grew under us. */
static int expect_eof(int fd, const struct lp_entry *e)
{
	unsigned char c;
	size_t got;
	int r = read_some(fd, e, &c, 1, &got);

	if (r < 0)
		return r;
	return got ? changed(e) : 0;
}

/* ---- jobs ---- */

static bool is_data_file(const struct lp_entry *e)
{
	return e->kind == LP_FILE && !(e->flags & LP_F_DUPLICATE) && !(e->flags & LP_F_REMOVED);
}

/* Window bytes an entry needs while it is being prepared. */
static size_t job_cost(const struct zw *w, const struct lp_entry *e)
{
	if (!is_data_file(e) || e->size == 0 || e->size > w->whole_max)
		return 0;
	return (size_t)e->size + libdeflate_deflate_compress_bound(NULL, (size_t)e->size);
}

/*
 * The cache key of an entry's data: its content and everything that shapes
 * the bytes the writer makes of it (the path it takes, level, block size,
 * the compressor libraries' versions).
 */
static void zip_key(const struct zw *w, const uint8_t digest[32], uint64_t size, struct lp_cache_key *ret)
{
	struct lp_cache_keyer k;
	bool streamed = size > w->whole_max;

	lp_cache_key_begin(&k, "zip-entry/1");
	lp_cache_key_add_str(&k, LIBDEFLATE_VERSION_STRING);
	lp_cache_key_add_u64(&k, (uint64_t)w->level);
	lp_cache_key_add_u64(&k, streamed);
	if (streamed) {
		lp_cache_key_add_str(&k, zlibVersion());
		lp_cache_key_add_u64(&k, w->o->block);
	}
	lp_cache_key_add(&k, digest, 32);
	lp_cache_key_add_u64(&k, size);
	lp_cache_key_end(&k, ret);
}

/*
 * The content digest of a file without reading it: the entry's own, or
 * the stat index's. Stripped copies live in this run's staging directory
 * and are never indexed.
 */
static bool known_digest(const struct zw *w, const struct lp_entry *e, uint8_t d[32])
{
	struct stat st;

	if (e->flags & LP_F_HAS_DIGEST) {
		memcpy(d, e->digest, 32);
		return true;
	}
	/* The walk asked the index already (and counted the miss). */
	if (!w->o->cache || (e->flags & LP_F_MEMO_MISS) || !e->src || (e->flags & LP_F_STRIPPED) || stat(e->src, &st) < 0)
		return false;
	return lp_cache_index_lookup(w->o->cache, e->src, &st, d) == 1;
}

/*
 * An entry the index did not know whose digest was made since (dedupe
 * hashes files that share a size): record it under the walk's stat,
 * which was taken before those bytes were read, so the next run finds it.
 */
static void record_walk_digest(const struct zw *w, const struct lp_entry *e, const uint8_t d[32])
{
	struct stat st;

	if (!w->o->cache || !e->src || (e->flags & (LP_F_MEMO_MISS | LP_F_STAT_ID | LP_F_HAS_DIGEST | LP_F_STRIPPED)) !=
	    (LP_F_MEMO_MISS | LP_F_STAT_ID | LP_F_HAS_DIGEST) || e->stat_id.size != e->size)
		return;
	memset(&st, 0, sizeof(st));
	st.st_mode = S_IFREG;
	st.st_dev = (dev_t)e->stat_id.dev;
	st.st_ino = (ino_t)e->stat_id.ino;
	st.st_size = (off_t)e->stat_id.size;
	st.st_mtim.tv_sec = (time_t)(e->stat_id.mtime_ns / 1000000000LL);
	st.st_mtim.tv_nsec = (long)(e->stat_id.mtime_ns % 1000000000LL);
	st.st_ctim.tv_sec = (time_t)(e->stat_id.ctime_ns / 1000000000LL);
	st.st_ctim.tv_nsec = (long)(e->stat_id.ctime_ns % 1000000000LL);
	lp_cache_index_record_facts(w->o->cache, e->src, &st, d, lp_entry_sniff_facts(e));
}

/* A verified cached copy of the entry's data, or false. */
static bool job_from_cache(struct zw *w, const struct lp_entry *e, struct zjob *j,
			   const struct lp_cache_key *key)
{
	struct lp_cache_meta m;
	unsigned char *data;
	uint64_t len;

	/* A zip entry's data is never longer than the file: small ones take one read. */
	if (e->size <= SMALL_HIT_MAX) {
		if (lp_cache_get_small(w->o->cache, LP_CACHE_ZIP, key, e->path, e->size, &m, &data, &len) != 1)
			return false;
	} else if (lp_cache_get_mem(w->o->cache, LP_CACHE_ZIP, key, e->path, &m, &data, &len) != 1) {
		return false;
	}
	if (m.usize != e->size || (m.method != LP_ZIP_STORED && m.method != LP_ZIP_DEFLATED) ||
	    (m.method == LP_ZIP_STORED && len != e->size)) {
		free(data);
		return false;
	}
	j->method = (uint16_t)m.method;
	j->crc = m.crc;
	j->usize = e->size;
	j->csize = len;
	j->data = data;
	return true;
}

/* One open entry fewer: a worker may be waiting for held room (see worker()). */
static void unheld(struct zw *w)
{
	__atomic_fetch_sub(&w->nheld, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&w->nwait_work, __ATOMIC_SEQ_CST)) {
		pthread_mutex_lock(&w->mu);
		pthread_cond_broadcast(&w->cv_work);
		pthread_mutex_unlock(&w->mu);
	}
}

/* One of held_max slots for a job that keeps a cache hit for the writer, or false. */
static bool take_slot(struct zw *w)
{
	unsigned n = __atomic_load_n(&w->nheld, __ATOMIC_RELAXED);
	bool ok;

	do {
		ok = n < w->held_max;
	} while (ok && !__atomic_compare_exchange_n(&w->nheld, &n, n + 1, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	return ok;
}

/*
 * Open a cached entry and check its header, keeping it open for the
 * writer, while fewer than held_max jobs hold one (beyond that the job
 * reads it into memory as before). 1 held, 0 no usable entry (counted
 * as a miss already), -1 not tried.
 */
static int job_hold_cached(struct zw *w, const struct lp_entry *e, struct zjob *j,
			    const struct lp_cache_key *key)
{
	struct lp_cache_rd *rd = &j->rd;

	if (!take_slot(w))
		return -1;
	if (lp_cache_rd_open_fast(w->o->cache, LP_CACHE_ZIP, key, e->path, rd) == 1) {
		if (rd->meta.usize == e->size &&
		    (rd->meta.method == LP_ZIP_DEFLATED ||
		     (rd->meta.method == LP_ZIP_STORED && rd->len == e->size))) {
			j->held = true;
			j->method = (uint16_t)rd->meta.method;
			j->crc = rd->meta.crc;
			j->usize = e->size;
			j->csize = rd->len;
			return 1;
		}
		lp_cache_rd_close(rd);
	}
	unheld(w);
	return 0;
}

static void job_unhold(struct zw *w, struct zjob *j)
{
	if (!j->held)
		return;
	lp_cache_rd_close(&j->rd);
	j->held = false;
	unheld(w);
}

/* Read and deflate one whole file. Runs on a worker (or the writer with one thread). */
static int job_run(struct zw *w, const struct lp_entry *e, struct zjob *j,
		   struct libdeflate_compressor *c)
{
	unsigned char *in = NULL, *out = NULL;
	size_t n = (size_t)e->size, got, bound, cs;
	struct lp_cache_key key;
	uint8_t dg[32];
	bool have_digest = false;
	struct stat st;
	int fd = -1, r;

	if (!is_data_file(e))
		return 0;
	if (e->size == 0 && !e->src) {
		/* A synthesized empty file: nothing to read. */
		j->method = LP_ZIP_STORED;
		j->crc = 0;
		return 0;
	}
	if (e->size > w->whole_max) {
		j->streamed = true;
		return 0;
	}
	if (w->o->cache) {
		/* A refetch knows the digest already (one index lookup per entry, as counted). */
		have_digest = j->refetch || known_digest(w, e, dg);
		if (j->refetch)
			memcpy(dg, j->dg, 32);
		else if (have_digest)
			record_walk_digest(w, e, dg);
		if (have_digest) {
			zip_key(w, dg, e->size, &key);
			memcpy(j->dg, dg, 32);
			if (!j->refetch && e->size <= SMALL_HIT_MAX && take_slot(w)) {
				if (job_from_cache(w, e, j, &key)) {
					j->slot = true;
					return 0;
				}
				unheld(w);	/* a miss (counted): make it from the file */
			} else if (!j->refetch) {
				int h = job_hold_cached(w, e, j, &key);

				if (h == 1 || (h < 0 && job_from_cache(w, e, j, &key)))
					return 0;
			}
		}
	}
	r = open_src(e, &fd);
	if (r < 0)
		return r;
	/* What the index records must be the stat from before the read. */
	if (w->o->cache && fstat(fd, &st) < 0)
		st.st_mode = 0;
	in = malloc(n ? n : 1);
	if (!in) {
		r = -ENOMEM;
		goto out;
	}
	r = read_some(fd, e, in, n, &got);
	if (r < 0)
		goto out;
	if (got != n) {
		r = changed(e);
		goto out;
	}
	r = expect_eof(fd, e);
	if (r < 0)
		goto out;
	/*
	 * Not in the stat index (a fresh checkout stamps every file anew):
	 * the bytes are here, so hash them and look again before deflating.
	 */
	if (w->o->cache && !have_digest) {
		lp_sha256(in, n, dg);
		have_digest = true;
		if (!(e->flags & LP_F_STRIPPED) && e->src)
			lp_cache_index_record_facts(w->o->cache, e->src, &st, dg, lp_entry_sniff_facts(e));
		zip_key(w, dg, e->size, &key);
		if (job_from_cache(w, e, j, &key))
			goto out;
	}
	j->usize = n;
	j->crc = libdeflate_crc32(0, in, n);
	j->method = LP_ZIP_STORED;
	j->csize = n;
	/* Random or already compressed bytes: do not spend a deflate finding out. */
	if (n && (r = lp_deflate_incompressible(in, n)) != 0) {
		if (r < 0)
			goto out;
		r = 0;
	} else if (n) {
		bound = libdeflate_deflate_compress_bound(NULL, n);
		out = malloc(bound);
		if (!out) {
			r = -ENOMEM;
			goto out;
		}
		cs = libdeflate_deflate_compress(c, in, n, out, bound);
		if (cs && cs < n) {
			unsigned char *shrunk = realloc(out, cs);

			j->method = LP_ZIP_DEFLATED;
			j->csize = cs;
			j->data = shrunk ? shrunk : out;
			out = NULL;
		}
	}
	if (j->method == LP_ZIP_STORED) {
		j->data = in;
		in = NULL;
	}
	if (w->o->cache && r == 0) {
		struct lp_cache_meta m = { .method = j->method, .crc = j->crc, .usize = n };

		lp_cache_put_mem(w->o->cache, LP_CACHE_ZIP, &key, &m, j->data, j->csize);
	}
out:
	free(in);
	free(out);
	close(fd);
	return r;
}

static void job_finish(struct zjob *j, int r)
{
	j->err = r;
	if (r < 0) {
		const char *m = lp_errmsg();

		j->msg = strdup(*m ? m : lp_strerror(r));
	}
}

/* Job i is done: wake the writer only if it sleeps (see take_job for the other half). */
static void job_done(struct zw *w, struct zjob *j)
{
	__atomic_store_n(&j->state, J_DONE, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&w->writer_waiting, __ATOMIC_SEQ_CST)) {
		pthread_mutex_lock(&w->mu);
		pthread_cond_broadcast(&w->cv_done);
		pthread_mutex_unlock(&w->mu);
	}
}

/*
 * A worker takes a run of consecutive jobs under one lock: up to
 * BATCH_MAX, the second and later only while cheap (a directory, a link,
 * a small file), so the writer, which waits for them in order, is never
 * kept waiting long behind one worker's queue.
 */
#define BATCH_MAX	16u
#define BATCH_CHEAP	(256u << 10)

static void *worker(void *arg)
{
	struct zw *w = arg;
	struct libdeflate_compressor *c = libdeflate_alloc_compressor(w->level);
	size_t refund = 0;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		size_t first, taken = 0, cost;

		/* Window bytes charged for data that was not kept. */
		w->inflight -= refund;
		if (refund && __atomic_load_n(&w->nwait_work, __ATOMIC_SEQ_CST))
			pthread_cond_broadcast(&w->cv_work);
		refund = 0;
		/*
		 * Take jobs strictly in order, and only while the window has
		 * room (an empty window admits anything, so the entry the
		 * writer waits for can always start).
		 */
		while (!w->stop && w->next < w->l->n) {
			bool room;

			cost = job_cost(w, &w->l->v[w->next]);
			room = !cost || !w->inflight || w->inflight + cost <= w->window;
			/*
			 * Nor run further ahead than held_max open entries:
			 * beyond them a hit would be read into memory. (The
			 * writer has released every job before the one it
			 * waits for, so this never stops the job it needs.)
			 */
			if (room && __atomic_load_n(&w->nheld, __ATOMIC_SEQ_CST) < w->held_max)
				break;
			__atomic_store_n(&w->nwait_work, w->nwait_work + 1, __ATOMIC_SEQ_CST);
			/* Look again after saying so: unheld() sees the count or we see its release. */
			if (!room || __atomic_load_n(&w->nheld, __ATOMIC_SEQ_CST) >= w->held_max)
				pthread_cond_wait(&w->cv_work, &w->mu);
			__atomic_store_n(&w->nwait_work, w->nwait_work - 1, __ATOMIC_SEQ_CST);
		}
		if (w->stop || w->next >= w->l->n)
			break;
		first = w->next;
		while (w->next < w->l->n && taken < BATCH_MAX) {
			cost = job_cost(w, &w->l->v[w->next]);
			if (taken && (cost > BATCH_CHEAP || (cost && w->inflight + cost > w->window)))
				break;
			w->inflight += cost;
			w->jobs[w->next].cost = cost;
			__atomic_store_n(&w->jobs[w->next].state, J_RUNNING, __ATOMIC_RELAXED);
			w->next++;
			taken++;
		}
		pthread_mutex_unlock(&w->mu);

		for (size_t i = first; i < first + taken; i++) {
			struct zjob *j = &w->jobs[i];
			size_t kept;
			int r;

			lp_errmsg_clear();
			r = c ? job_run(w, &w->l->v[i], j, c) : -ENOMEM;
			job_finish(j, r);
			kept = j->data ? (size_t)j->csize : 0;
			/* Only what is kept for the writer stays charged (the rest at the next lock). */
			refund += j->cost - kept;
			j->cost = kept;
			job_done(w, j);
		}
		pthread_mutex_lock(&w->mu);
	}
	w->inflight -= refund;
	if (refund && __atomic_load_n(&w->nwait_work, __ATOMIC_SEQ_CST))
		pthread_cond_broadcast(&w->cv_work);
	pthread_mutex_unlock(&w->mu);
	libdeflate_free_compressor(c);
	return NULL;
}

static void stop_workers(struct zw *w)
{
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_broadcast(&w->cv_work);
	pthread_mutex_unlock(&w->mu);
	for (unsigned i = 0; i < w->nworkers; i++)
		pthread_join(w->tid[i], NULL);
	w->nworkers = 0;
}

/* ---- headers ---- */

static bool ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

/* ---- names ---- */

/*
 * Why a path cannot be a member name, or NULL. Backslashes count as
 * separators: libarchive (bsdtar) and Windows tools read "a\b" as "a/b", so
 * "..\x" would climb out of the extraction directory there.
 */
static const char *name_problem(const char *p)
{
	size_t len = strlen(p);

	if (len == 0)
		return "it is empty";
	if (len + 1 > 0xFFFF)
		return "it is longer than a zip name can be";
	if (p[0] == '/' || p[0] == '\\')
		return "it is absolute";
	if (p[len - 1] == '/' || p[len - 1] == '\\')
		return "it ends with a slash (a reader would make it a directory)";
	for (const char *s = p; *s;) {
		size_t k = strcspn(s, "/\\");

		if (k == 0)
			return "it has an empty path component";
		if ((k == 1 && s[0] == '.') || (k == 2 && s[0] == '.' && s[1] == '.'))
			return "it has a '.' or '..' component";
		s += k;
		if (*s)
			s++;
	}
	return NULL;
}

struct zname {
	char *key;		/* the path with '\\' read as '/', as an extractor sees it */
	const struct lp_entry *e;
};

static int cmp_zname(const void *a, const void *b)
{
	return strcmp(((const struct zname *)a)->key, ((const struct zname *)b)->key);
}

static int name_fail(int err, const char *path, const char *what, const char *other, const char *tail)
{
	char esc[512], esc2[512];

	lp_escape(path, esc, sizeof(esc));
	if (other)
		lp_escape(other, esc2, sizeof(esc2));
	return lp_fail(err, esc, "%s%s%s", what, other ? esc2 : "", tail ? tail : "");
}

/*
 * Every member must extract to its own place: a safe name, no two members
 * with one name (as an extractor reads it), and nothing beneath a file or a
 * symlink (writing through a link is how an archive escapes). Checked before
 * the first byte is written.
 */
static int check_names(const struct lp_entries *l)
{
	struct zname *v = calloc(l->n + 1, sizeof(*v));
	char *prefix = malloc(0x10000);		/* name_problem() bounds every name */
	size_t n = 0;
	int r = 0;

	if (!v || !prefix) {
		free(v);
		free(prefix);
		return -ENOMEM;
	}
	for (size_t i = 0; i < l->n; i++) {
		const struct lp_entry *e = &l->v[i];
		const char *why;

		if (e->flags & LP_F_REMOVED)
			continue;
		why = name_problem(e->path);
		if (why) {
			r = name_fail(-LP_E_UNSAFEPATH, e->path, "cannot be a zip entry name: ", NULL, why);
			goto out;
		}
		v[n].e = e;
		v[n].key = strdup(e->path);
		if (!v[n].key) {
			r = -ENOMEM;
			goto out;
		}
		for (char *c = v[n].key; *c; c++)
			if (*c == '\\')
				*c = '/';
		n++;
	}
	qsort(v, n, sizeof(*v), cmp_zname);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && !strcmp(v[i].key, v[i - 1].key)) {
			if (!strcmp(v[i].e->path, v[i - 1].e->path))
				r = name_fail(-LP_E_DUPLICATE, v[i].e->path, "is given twice", NULL, NULL);
			else
				r = name_fail(-LP_E_DUPLICATE, v[i].e->path, "would be extracted to the same place as ",
					      v[i - 1].e->path, " (a backslash reads as a slash)");
			goto out;
		}
		strcpy(prefix, v[i].key);
		for (char *c = strchr(prefix, '/'); c; c = strchr(c + 1, '/')) {
			struct zname k = { .key = prefix }, *hit;

			*c = '\0';
			hit = bsearch(&k, v, n, sizeof(*v), cmp_zname);
			*c = '/';
			if (hit && hit->e->kind != LP_DIR) {
				r = name_fail(-LP_E_UNSAFEPATH, v[i].e->path, "lies beneath ", hit->e->path,
					      ", which is not a directory in the zip (extracting it would write through it or fail)");
				goto out;
			}
		}
	}
out:
	for (size_t i = 0; i < n; i++)
		free(v[i].key);
	free(v);
	free(prefix);
	return r;
}

struct hdr {
	const char *name;	/* without the directory slash */
	size_t nlen;		/* with it */
	bool dir;
	uint16_t flags, method;
	uint32_t crc, ext;
	uint64_t usize, csize, offset;
	bool local64;		/* local header carries the zip64 sizes */
};

static size_t local_len(const struct hdr *h)
{
	return LOCAL_LEN + h->nlen + (h->local64 ? 20 : 0);
}

static void build_local(const struct zw *w, const struct hdr *h, unsigned char *p)
{
	put32(p, SIG_LOCAL);
	put16(p + 4, h->local64 ? VER_ZIP64 : VER_DEFAULT);
	put16(p + 6, h->flags);
	put16(p + 8, h->method);
	put16(p + 10, w->dos_time);
	put16(p + 12, w->dos_date);
	put32(p + 14, h->crc);
	put32(p + 18, h->local64 ? 0xFFFFFFFFu : (uint32_t)h->csize);
	put32(p + 22, h->local64 ? 0xFFFFFFFFu : (uint32_t)h->usize);
	put16(p + 26, (uint32_t)h->nlen);
	put16(p + 28, h->local64 ? 20 : 0);
	memcpy(p + LOCAL_LEN, h->name, h->nlen - h->dir);
	if (h->dir)
		p[LOCAL_LEN + h->nlen - 1] = '/';
	if (h->local64) {
		unsigned char *x = p + LOCAL_LEN + h->nlen;

		/* The local zip64 field must hold both sizes, in this order. */
		put16(x, 1);
		put16(x + 2, 16);
		put64(x + 4, h->usize);
		put64(x + 12, h->csize);
	}
}

static int cd_reserve(struct zw *w, size_t n)
{
	if (w->cdlen + n > w->cdcap) {
		size_t cap = w->cdcap ? w->cdcap : 65536;
		unsigned char *p;

		while (cap < w->cdlen + n)
			cap *= 2;
		p = realloc(w->cd, cap);
		if (!p)
			return -ENOMEM;
		w->cd = p;
		w->cdcap = cap;
	}
	return 0;
}

static int add_central(struct zw *w, const struct hdr *h)
{
	bool u64 = h->usize >= w->lim, c64 = h->csize >= w->lim, o64 = h->offset >= w->lim;
	uint16_t xlen = (u64 || c64 || o64) ? 4 + 8 * (u64 + c64 + o64) : 0;
	uint16_t ver = xlen || h->local64 ? VER_ZIP64 : VER_DEFAULT;
	unsigned char *p, *x;
	int r = cd_reserve(w, CENTRAL_LEN + h->nlen + xlen);

	if (r < 0)
		return r;
	p = w->cd + w->cdlen;
	put32(p, SIG_CENTRAL);
	put16(p + 4, MADE_BY_UNIX | ver);
	put16(p + 6, ver);
	put16(p + 8, h->flags);
	put16(p + 10, h->method);
	put16(p + 12, w->dos_time);
	put16(p + 14, w->dos_date);
	put32(p + 16, h->crc);
	put32(p + 20, c64 ? 0xFFFFFFFFu : (uint32_t)h->csize);
	put32(p + 24, u64 ? 0xFFFFFFFFu : (uint32_t)h->usize);
	put16(p + 28, (uint32_t)h->nlen);
	put16(p + 30, xlen);
	put16(p + 32, 0);	/* comment */
	put16(p + 34, 0);	/* disk */
	put16(p + 36, 0);	/* internal attributes */
	put32(p + 38, h->ext);
	put32(p + 42, o64 ? 0xFFFFFFFFu : (uint32_t)h->offset);
	memcpy(p + CENTRAL_LEN, h->name, h->nlen - h->dir);
	if (h->dir)
		p[CENTRAL_LEN + h->nlen - 1] = '/';
	if (xlen) {
		/* Only the fields that overflowed, in the order the spec fixes. */
		x = p + CENTRAL_LEN + h->nlen;
		put16(x, 1);
		put16(x + 2, (uint32_t)xlen - 4);
		x += 4;
		if (u64) {
			put64(x, h->usize);
			x += 8;
		}
		if (c64) {
			put64(x, h->csize);
			x += 8;
		}
		if (o64)
			put64(x, h->offset);
		w->any64 = true;
	}
	if (h->local64)
		w->any64 = true;
	w->cdlen += CENTRAL_LEN + h->nlen + xlen;
	return 0;
}

static int emit_header(struct zw *w, struct hdr *h)
{
	unsigned char tmp[LOCAL_LEN + 20 + 65536];

	h->offset = out_off(w);
	build_local(w, h, tmp);
	return out_put(w, tmp, local_len(h));
}

/* Header plus data already in memory. */
static int emit_simple(struct zw *w, struct hdr *h, const void *data)
{
	int r;

	h->local64 = h->usize >= w->lim || h->csize >= w->lim;
	r = emit_header(w, h);
	if (r == 0 && h->csize)
		r = out_put(w, data, (size_t)h->csize);
	return r;
}

/* Copy the file as stored data (the fallback when deflate did not shrink it). */
static int stream_stored(struct zw *w, const struct lp_entry *e, uint32_t want_crc)
{
	uint64_t left = e->size;
	uint32_t crc = 0;
	int fd, r;

	r = open_src(e, &fd);
	if (r < 0)
		return r;
	while (left) {
		size_t n = left < READ_CHUNK ? (size_t)left : READ_CHUNK, got;

		r = lp_check_cancel(e->path);
		if (r == 0)
			r = read_some(fd, e, w->rbuf, n, &got);
		if (r == 0 && got != n)
			r = changed(e);
		if (r < 0)
			goto out;
		crc = libdeflate_crc32(crc, w->rbuf, n);
		r = out_put(w, w->rbuf, n);
		if (r < 0)
			goto out;
		left -= n;
	}
	r = expect_eof(fd, e);
	if (r == 0 && crc != want_crc)
		r = lp_fail(-EIO, e->src, "file changed while being zipped");
out:
	close(fd);
	return r;
}

/*
 * A streamed entry from the cache: header from the entry's facts, then the
 * payload copied with its length and CRC-32 checked as it goes (one read).
 * If the check fails the writer goes back to the header (what it wrote is
 * only in the unfinished output, and is overwritten), the entry is dropped
 * and *done stays false: the caller deflates the file. Nothing unverified
 * is shipped.
 */
static int streamed_from_cache(struct zw *w, const struct lp_entry *e, struct hdr *h,
			       const struct lp_cache_key *key, bool *done)
{
	struct lp_cache_rd rd;
	struct hdr saved = *h;
	long k = 0;
	int r = 0;

	*done = false;
	if (lp_cache_rd_open(w->o->cache, LP_CACHE_ZIP, key, e->path, &rd) != 1)
		return 0;
	if (rd.meta.usize != e->size || rd.meta.method != LP_ZIP_DEFLATED) {
		lp_cache_rd_close(&rd);
		return 0;
	}
	h->method = LP_ZIP_DEFLATED;
	h->usize = e->size;
	h->csize = rd.len;
	h->crc = rd.meta.crc;
	h->local64 = e->size >= w->lim;
	r = emit_header(w, h);
	while (r == 0 && (k = lp_cache_rd_read(&rd, w->rbuf, READ_CHUNK)) > 0) {
		r = lp_check_cancel(e->path);
		if (r == 0)
			r = out_put(w, w->rbuf, (size_t)k);
	}
	if (r < 0) {
		lp_cache_rd_close(&rd);
		return r;
	}
	if (k == 0 && lp_cache_rd_crc_ok(&rd)) {
		lp_cache_rd_close(&rd);
		*done = true;
		return 0;
	}
	lp_cache_rd_drop(&rd, e->path, k < 0 ? "unreadable" : "CRC-32 mismatch");
	r = out_rewind(w, h->offset);
	*h = saved;
	return r;
}

/* SHA-256 of the rest of fd, which must be e->size bytes. */
static int hash_fd(struct zw *w, const struct lp_entry *e, int fd, uint8_t d[32])
{
	struct lp_sha256 sha;
	uint64_t left = e->size;

	lp_sha256_init(&sha);
	while (left) {
		size_t n = left < READ_CHUNK ? (size_t)left : READ_CHUNK, got;
		int r = lp_check_cancel(e->path);

		if (r == 0)
			r = read_some(fd, e, w->rbuf, n, &got);
		if (r == 0 && got != n)
			r = changed(e);
		if (r < 0)
			return r;
		lp_sha256_update(&sha, w->rbuf, n);
		left -= n;
	}
	lp_sha256_final(&sha, d);
	return 0;
}

/* A file above whole_max: deflate it through pdeflate while writing. */
static int emit_streamed(struct zw *w, const struct lp_entry *e, struct hdr *h)
{
	struct lp_pdeflate_opts po = {
		.level = w->level > 9 ? 9 : w->level,
		.threads = w->o->threads,
		.block = w->o->block,
		.sink = pd_sink,
		.sink_ctx = w,
	};
	struct lp_pdeflate *z = NULL;
	uint64_t left = e->size, in, out, data_at;
	uint32_t crc;
	unsigned char fix[LOCAL_LEN + 20 + 65536];
	struct lp_cache_key key;
	struct stat st;
	uint8_t dg[32];
	bool have_digest = false, done;
	int fd = -1, r;

	if (w->o->cache) {
		have_digest = known_digest(w, e, dg);
		if (have_digest)
			record_walk_digest(w, e, dg);
		if (have_digest) {
			zip_key(w, dg, e->size, &key);
			r = streamed_from_cache(w, e, h, &key, &done);
			if (done || r < 0)
				return r;
		}
	}
	r = open_src(e, &fd);
	if (r < 0)
		return r;
	if (w->o->cache) {
		if (fstat(fd, &st) < 0)
			st.st_mode = 0;
		/*
		 * Not in the stat index: one pass to hash it (the page cache
		 * then serves the second) may spare deflating it at all.
		 */
		if (!have_digest) {
			r = hash_fd(w, e, fd, dg);
			if (r < 0)
				goto out;
			have_digest = true;
			if (!(e->flags & LP_F_STRIPPED) && e->src)
				lp_cache_index_record_facts(w->o->cache, e->src, &st, dg, lp_entry_sniff_facts(e));
			zip_key(w, dg, e->size, &key);
			r = streamed_from_cache(w, e, h, &key, &done);
			if (done || r < 0)
				goto out;
			if (lseek(fd, 0, SEEK_SET) < 0) {
				r = lp_fail(-errno, e->src, "cannot seek: %s", strerror(errno));
				goto out;
			}
		}
		w->tee = lp_cache_wr_begin(w->o->cache, LP_CACHE_ZIP);
	}
	/*
	 * The stored fallback is never bigger than the file, so the file size
	 * alone decides whether the local header needs zip64 sizes.
	 */
	h->method = LP_ZIP_DEFLATED;
	h->usize = e->size;
	h->csize = 0;
	h->crc = 0;
	h->local64 = e->size >= w->lim;
	r = emit_header(w, h);
	if (r < 0)
		goto out;
	data_at = out_off(w);
	r = lp_pdeflate_new(&po, &z);
	if (r < 0)
		goto out;
	while (left) {
		size_t n = left < READ_CHUNK ? (size_t)left : READ_CHUNK, got;

		r = lp_check_cancel(e->path);
		if (r == 0)
			r = read_some(fd, e, w->rbuf, n, &got);
		if (r == 0 && got != n)
			r = changed(e);
		if (r < 0)
			goto out;
		r = lp_pdeflate_write(z, w->rbuf, n);
		if (r < 0)
			goto out;
		left -= n;
	}
	r = expect_eof(fd, e);
	if (r < 0)
		goto out;
	r = lp_pdeflate_finish(z, &crc, &in, &out);
	if (r < 0)
		goto out;
	h->crc = crc;
	h->csize = out;
	if (out >= in) {
		/* Kept as is: nothing worth caching. */
		lp_cache_wr_abort(w->tee);
		w->tee = NULL;
		r = out_rewind(w, data_at);
		if (r == 0)
			r = stream_stored(w, e, crc);
		if (r < 0)
			goto out;
		h->method = LP_ZIP_STORED;
		h->csize = in;
	}
	build_local(w, h, fix);
	r = out_patch(w, h->offset, fix, local_len(h));
	if (r == 0 && w->o->cache) {
		struct lp_cache_meta m = { .method = LP_ZIP_DEFLATED, .crc = crc, .usize = e->size };

		if (w->tee)
			lp_cache_wr_commit(w->tee, &key, &m);
		w->tee = NULL;
	}
out:
	lp_cache_wr_abort(w->tee);
	w->tee = NULL;
	/* A sink failure already carries its detail; keep it. */
	lp_pdeflate_free(z);
	if (fd >= 0)
		close(fd);
	return r;
}

/*
 * A held cache entry: header from the entry's facts, then the payload
 * copied through rbuf with its CRC-32 and length checked as it goes (one
 * read). Bytes written before a mismatch are only in the unfinished
 * output: the writer goes back to the header, drops the entry and makes
 * the data from the file instead, so nothing unverified is shipped.
 */
static int emit_cached(struct zw *w, const struct lp_entry *e, struct hdr *h, struct zjob *j)
{
	uint64_t at;
	long k = 0;
	int r;

	h->method = j->method;
	h->crc = j->crc;
	h->usize = j->usize;
	h->csize = j->csize;
	h->local64 = h->usize >= w->lim || h->csize >= w->lim;
	r = emit_header(w, h);
	if (r < 0)
		return r;
	at = h->offset;
	/* Straight into the output buffer: no copy through rbuf. */
	for (;;) {
		if (OUTBUF - w->blen < CACHED_MIN_ROOM && (r = out_flush(w)) < 0)
			return r;
		k = lp_cache_rd_read(&j->rd, w->buf + w->blen, OUTBUF - w->blen);
		if (k <= 0)
			break;
		w->blen += (size_t)k;
	}
	if (k == 0 && lp_cache_rd_crc_ok(&j->rd)) {
		job_unhold(w, j);
		return 0;
	}
	lp_cache_rd_drop(&j->rd, e->path, k < 0 ? "unreadable" : "CRC-32 mismatch");
	job_unhold(w, j);
	r = out_rewind(w, at);
	if (r < 0)
		return r;
	if (!w->wc && !(w->wc = libdeflate_alloc_compressor(w->level)))
		return -ENOMEM;
	/* The entry file is gone, so this reads and deflates the file (and stores it anew). */
	j->method = 0;
	j->crc = 0;
	j->usize = j->csize = 0;
	j->refetch = true;
	r = job_run(w, e, j, w->wc);
	if (r < 0)
		return r;
	h->method = j->method;
	h->crc = j->crc;
	h->usize = j->usize;
	h->csize = j->csize;
	return emit_simple(w, h, j->data);
}

static int emit_entry(struct zw *w, size_t i, struct zjob *j)
{
	const struct lp_entry *e = &w->l->v[i];
	struct hdr h = { .name = e->path };
	char *rel = NULL;
	const void *data = NULL;
	size_t plen = strlen(e->path);
	int r;

	if (!plen || e->path[0] == '/' || plen + 1 > 0xFFFF)
		return lp_fail(-LP_E_USAGE, e->path, "cannot be a zip entry name");
	h.nlen = plen;
	/* Bit 11 promises UTF-8: never for bytes that are not (readers then refuse the zip). */
	h.flags = ascii(e->path) || !lp_utf8_valid(e->path) ? 0 : FLAG_UTF8;
	h.method = LP_ZIP_STORED;

	switch (e->kind) {
	case LP_DIR:
		h.dir = true;
		h.nlen++;
		h.ext = (uint32_t)(S_IFDIR | 0755) << 16 | DOS_DIR;
		r = emit_simple(w, &h, NULL);
		break;
	case LP_SYMLINK:
		if (!e->target)
			return lp_fail(-LP_E_SYMLINK, e->path, "symlink without a target");
		data = e->target;
		goto link;
	case LP_FILE:
		if (e->flags & LP_F_DUPLICATE) {
			if (!e->target)
				return lp_fail(-EINVAL, e->path, "duplicate without a canonical path");
			/* Same bytes as target: store a relative link to it instead. */
			rel = lp_path_relative(e->path, e->target);
			if (!rel)
				return -ENOMEM;
			data = rel;
			goto link;
		}
		h.ext = (uint32_t)(S_IFREG | ((e->mode & 0111) ? 0755 : 0644)) << 16;
		if (j->streamed) {
			r = emit_streamed(w, e, &h);
		} else if (j->held) {
			r = emit_cached(w, e, &h, j);
		} else {
			h.method = j->method;
			h.crc = j->crc;
			h.usize = j->usize;
			h.csize = j->csize;
			r = emit_simple(w, &h, j->data);
		}
		break;
	default:
		return lp_fail(-LP_E_BADTYPE, e->path, "cannot be stored in a zip");
	}
	goto done;
link:
	h.ext = (uint32_t)(S_IFLNK | 0777) << 16;
	h.usize = h.csize = strlen(data);
	h.crc = libdeflate_crc32(0, data, (size_t)h.usize);
	r = emit_simple(w, &h, data);
done:
	free(rel);
	if (r < 0)
		return r;
	r = add_central(w, &h);
	if (r < 0)
		return r;
	w->count++;
	w->unzipped += h.usize;
	if (w->o->on_entry) {
		struct lp_zip_entry_info info = {
			.usize = h.usize, .csize = h.csize, .offset = h.offset,
			.crc = h.crc, .method = h.method,
			.zip64 = h.local64 || h.usize >= w->lim || h.csize >= w->lim || h.offset >= w->lim,
		};

		w->o->on_entry(w->o->on_entry_ctx, i, e, &info);
	}
	return 0;
}

static int emit_end(struct zw *w)
{
	uint64_t cd_at = out_off(w), cd_size = w->cdlen, count = w->count;
	bool n64 = count >= w->lim_count, s64 = cd_size >= w->lim, o64 = cd_at >= w->lim;
	unsigned char e[56 + 20 + 22];
	size_t len = 0;
	int r;

	/*
	 * Readers (Python's zipfile, unzip) take the 20 bytes before the end
	 * record for a zip64 locator when they start with its signature. A
	 * member name can put those bytes at the end of the central directory;
	 * then a real zip64 end record and locator go there instead.
	 */
	bool fake_loc = w->cdlen >= 20 && !memcmp(w->cd + w->cdlen - 20, "PK\x06\x07", 4);

	r = out_put(w, w->cd, w->cdlen);
	if (r < 0)
		return r;
	if (n64 || s64 || o64 || fake_loc) {
		uint64_t rec = out_off(w);

		put32(e, SIG_EOCD64);
		put64(e + 4, 44);	/* size of the rest of the record */
		put16(e + 12, MADE_BY_UNIX | VER_ZIP64);
		put16(e + 14, VER_ZIP64);
		put32(e + 16, 0);
		put32(e + 20, 0);
		put64(e + 24, count);
		put64(e + 32, count);
		put64(e + 40, cd_size);
		put64(e + 48, cd_at);
		put32(e + 56, SIG_LOC64);
		put32(e + 60, 0);
		put64(e + 64, rec);
		put32(e + 72, 1);
		len = 76;
		w->any64 = true;
	}
	put32(e + len, SIG_EOCD);
	put16(e + len + 4, 0);
	put16(e + len + 6, 0);
	put16(e + len + 8, n64 ? 0xFFFFu : (uint32_t)count);
	put16(e + len + 10, n64 ? 0xFFFFu : (uint32_t)count);
	put32(e + len + 12, s64 ? 0xFFFFFFFFu : (uint32_t)cd_size);
	put32(e + len + 16, o64 ? 0xFFFFFFFFu : (uint32_t)cd_at);
	put16(e + len + 20, 0);
	return out_put(w, e, len + 22);
}

static int zw_init(struct zw *w, const struct lp_entries *l, int fd, const struct lp_zip_opts *o)
{
	uint32_t dt;
	unsigned threads = o->threads;
	struct rlimit rl;

	memset(w, 0, sizeof(*w));
	w->l = l;
	w->o = o;
	w->fd = fd;
	w->level = o->level ? o->level : LP_ZIP_LEVEL_DEFAULT;
	if (w->level < 1 || w->level > 12)
		return lp_fail(-LP_E_USAGE, NULL, "compression level %d is not in 1..12", o->level);
	w->whole_max = o->whole_max ? o->whole_max : LP_ZIP_WHOLE_MAX;
	if (w->whole_max > SIZE_MAX / 4)
		return lp_fail(-LP_E_USAGE, NULL, "whole-file threshold too large");
	if (o->block && (o->block < 1024 || o->block > (64u << 20)))
		return lp_fail(-LP_E_USAGE, NULL, "deflate block size %zu is not in 1 KiB..64 MiB", o->block);
	w->window = o->window ? o->window : LP_ZIP_WINDOW;
	w->lim = o->zip64_size ? o->zip64_size : 0xFFFFFFFFu;
	if (w->lim > 0xFFFFFFFFu)
		w->lim = 0xFFFFFFFFu;
	w->lim_count = o->zip64_count ? o->zip64_count : 0xFFFFu;
	if (w->lim_count > 0xFFFFu)
		w->lim_count = 0xFFFFu;
	dt = lp_zip_dostime(o->epoch);
	w->dos_date = (uint16_t)(dt >> 16);
	w->dos_time = (uint16_t)dt;

	lp_sha256_init(&w->sha);
	w->sha_ok = true;
	w->base = lseek(fd, 0, SEEK_CUR);
	if (w->base < 0)
		return lp_fail(-errno, o->name, "the zip output must be a seekable file: %s", strerror(errno));
	w->held_max = HELD_MIN;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur / 4 >= HELD_MAX)
			w->held_max = HELD_MAX;
		else if (rl.rlim_cur / 4 > HELD_MIN)
			w->held_max = (unsigned)(rl.rlim_cur / 4);
	}
	w->buf = malloc(OUTBUF);
	w->rbuf = malloc(READ_CHUNK);
	w->jobs = calloc(l->n ? l->n : 1, sizeof(*w->jobs));
	if (!w->buf || !w->rbuf || !w->jobs)
		return -ENOMEM;

	if (!threads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		threads = n > 0 ? (unsigned)n : 1;
	}
	if (threads > 64)
		threads = 64;
	if (pthread_mutex_init(&w->mu, NULL) != 0)
		return -ENOMEM;
	pthread_cond_init(&w->cv_work, NULL);
	pthread_cond_init(&w->cv_done, NULL);
	w->sync_ok = true;
	if (threads > 1 && pthread_mutex_init(&w->hmu, NULL) == 0) {
		pthread_cond_init(&w->hcv, NULL);
		w->buf2 = malloc(OUTBUF);
		if (w->buf2 && pthread_create(&w->hasher, NULL, hasher_main, w) == 0) {
			w->hasher_on = true;
		} else {
			pthread_cond_destroy(&w->hcv);
			pthread_mutex_destroy(&w->hmu);
		}
	}
	if (threads > 1) {
		w->tid = calloc(threads, sizeof(*w->tid));
		if (!w->tid)
			return -ENOMEM;
		for (unsigned i = 0; i < threads; i++) {
			if (pthread_create(&w->tid[i], NULL, worker, w) != 0)
				break;
			w->nworkers++;
		}
		/* With no worker at all the writer prepares entries itself. */
	}
	return 0;
}

static void zw_free(struct zw *w)
{
	if (w->hasher_on) {
		pthread_mutex_lock(&w->hmu);
		w->hstop = true;
		pthread_cond_broadcast(&w->hcv);
		pthread_mutex_unlock(&w->hmu);
		pthread_join(w->hasher, NULL);
		pthread_cond_destroy(&w->hcv);
		pthread_mutex_destroy(&w->hmu);
		w->hasher_on = false;
	}
	if (w->sync_ok) {
		stop_workers(w);
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv_work);
		pthread_cond_destroy(&w->cv_done);
	}
	if (w->jobs) {
		for (size_t i = 0; i < w->l->n; i++) {
			free(w->jobs[i].data);
			free(w->jobs[i].msg);
			if (w->jobs[i].held)
				lp_cache_rd_close(&w->jobs[i].rd);
		}
	}
	free(w->jobs);
	free(w->tid);
	free(w->buf);
	free(w->buf2);
	free(w->rbuf);
	free(w->cd);
	libdeflate_free_compressor(w->wc);
}

/* Wait for job i (or prepare it here when there are no workers). */
static int take_job(struct zw *w, size_t i, struct libdeflate_compressor **c)
{
	struct zjob *j = &w->jobs[i];

	if (!w->nworkers) {
		if (!*c) {
			*c = libdeflate_alloc_compressor(w->level);
			if (!*c)
				return -ENOMEM;
		}
		lp_errmsg_clear();
		job_finish(j, job_run(w, &w->l->v[i], j, *c));
		j->state = J_DONE;
	}
	/*
	 * Say we sleep before looking (both sequentially consistent): a
	 * worker that finishes the job either is seen here or sees the flag
	 * and wakes us, taking mu, which cond_wait holds until it sleeps.
	 */
	if (__atomic_load_n(&j->state, __ATOMIC_SEQ_CST) != J_DONE) {
		pthread_mutex_lock(&w->mu);
		__atomic_store_n(&w->writer_waiting, 1, __ATOMIC_SEQ_CST);
		while (__atomic_load_n(&j->state, __ATOMIC_SEQ_CST) != J_DONE)
			pthread_cond_wait(&w->cv_done, &w->mu);
		__atomic_store_n(&w->writer_waiting, 0, __ATOMIC_SEQ_CST);
		pthread_mutex_unlock(&w->mu);
	}
	if (j->err < 0) {
		lp_errmsg_set(j->msg);
		return j->err;
	}
	return 0;
}

static void release_job(struct zw *w, size_t i)
{
	struct zjob *j = &w->jobs[i];

	free(j->data);
	j->data = NULL;
	job_unhold(w, j);
	if (j->slot) {
		j->slot = false;
		unheld(w);
	}
	if (!j->cost)
		return;
	pthread_mutex_lock(&w->mu);
	w->inflight -= j->cost;
	j->cost = 0;
	if (__atomic_load_n(&w->nwait_work, __ATOMIC_SEQ_CST))
		pthread_cond_broadcast(&w->cv_work);
	pthread_mutex_unlock(&w->mu);
}

int lp_zip_write(const struct lp_entries *l, int fd, const struct lp_zip_opts *o,
		 struct lp_zip_result *res)
{
	struct zw w;
	struct lp_zip_opts def;
	struct libdeflate_compressor *c = NULL;
	struct stat st;
	int r;

	if (!o) {
		lp_zip_opts_init(&def);
		o = &def;
	}
	lp_errmsg_clear();
	r = check_names(l);
	if (r < 0)
		return r == -ENOMEM ? lp_fail(r, o->name, "out of memory while writing the zip") : r;
	r = zw_init(&w, l, fd, o);
	if (r < 0)
		goto out;
	lp_progress_begin(lp_entries_unzipped_size(l));
	for (size_t i = 0; i < l->n; i++) {
		r = lp_check_cancel(o->name);
		if (r == 0)
			r = take_job(&w, i, &c);
		if (r == 0 && !(l->v[i].flags & LP_F_REMOVED)) {
			r = emit_entry(&w, i, &w.jobs[i]);
			lp_progress_add(l->v[i].kind == LP_DIR ? 0 : l->v[i].size);
		}
		release_job(&w, i);
		if (r < 0)
			goto out;
	}
	r = emit_end(&w);
	if (r == 0)
		r = out_flush(&w);
	if (r < 0)
		goto out;
	/* Whatever the file held beyond our end (a rewound entry, old bytes) goes. */
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    ftruncate(fd, w.base + (off_t)w.buf_at) < 0) {
		r = write_fail(&w, -errno);
		goto out;
	}
	if (lseek(fd, w.base + (off_t)w.buf_at, SEEK_SET) < 0) {
		r = write_fail(&w, -errno);
		goto out;
	}
	if (res) {
		res->entries = w.count;
		res->unzipped = w.unzipped;
		res->zipped = w.buf_at;
		res->zip64 = w.any64;
		hash_wait(&w);
		res->have_sha256 = w.sha_ok;
		if (w.sha_ok)
			lp_sha256_final(&w.sha, res->sha256);
	}
out:
	if (r == -ENOMEM && !*lp_errmsg())
		lp_fail(r, o->name, "out of memory while writing the zip");
	libdeflate_free_compressor(c);
	zw_free(&w);
	return r;
}

/* ---- reading back ---- */

static int bad(const char *what)
{
	return lp_fail(-LP_E_BADARCHIVE, NULL, "zip: %s", what);
}

void lp_zip_central_free(struct lp_zip_central *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].name);
	free(c->v);
	memset(c, 0, sizeof(*c));
}

static int read_local(int fd, struct lp_zip_centry *ce)
{
	unsigned char h[LOCAL_LEN];
	size_t nlen = strlen(ce->name);
	char *name;
	int r = lp_pread_all(fd, h, sizeof(h), (off_t)ce->offset);

	if (r < 0)
		return bad("local header out of range");
	if (get32(h) != SIG_LOCAL || get16(h + 26) != nlen)
		return bad("local header does not match the central directory");
	if (get16(h + 6) != ce->flags || get16(h + 8) != ce->method ||
	    get16(h + 10) != ce->dos_time || get16(h + 12) != ce->dos_date || get32(h + 14) != ce->crc)
		return bad("local header fields differ from the central directory");
	ce->local_extra_len = (uint16_t)get16(h + 28);
	name = malloc(nlen + 1);
	if (!name)
		return -ENOMEM;
	r = lp_pread_all(fd, name, nlen, (off_t)ce->offset + LOCAL_LEN);
	if (r == 0 && memcmp(name, ce->name, nlen) != 0)
		r = bad("local name differs from the central directory");
	free(name);
	if (r < 0)
		return r;
	if (get32(h + 18) == 0xFFFFFFFFu && get32(h + 22) == 0xFFFFFFFFu) {
		unsigned char x[20];

		r = lp_pread_all(fd, x, sizeof(x), (off_t)(ce->offset + LOCAL_LEN + nlen));
		if (r < 0 || ce->local_extra_len < 20 || get16(x) != 1 || get16(x + 2) != 16 ||
		    get64(x + 4) != ce->usize || get64(x + 12) != ce->csize)
			return bad("local zip64 sizes differ from the central directory");
	} else if (get32(h + 18) != ce->csize || get32(h + 22) != ce->usize) {
		return bad("local sizes differ from the central directory");
	}
	return 0;
}

static int parse_central(const unsigned char *p, size_t len, struct lp_zip_central *c, uint64_t count)
{
	size_t at = 0;

	c->v = calloc(count ? count : 1, sizeof(*c->v));
	if (!c->v)
		return -ENOMEM;
	for (uint64_t i = 0; i < count; i++) {
		struct lp_zip_centry *ce = &c->v[c->n];
		size_t nlen, xlen, clen;
		const unsigned char *x;

		if (len - at < CENTRAL_LEN || get32(p + at) != SIG_CENTRAL)
			return bad("bad central directory record");
		nlen = get16(p + at + 28);
		xlen = get16(p + at + 30);
		clen = get16(p + at + 32);
		if (len - at - CENTRAL_LEN < nlen + xlen + clen)
			return bad("truncated central directory record");
		ce->made_by = (uint16_t)get16(p + at + 4);
		ce->needed = (uint16_t)get16(p + at + 6);
		ce->flags = (uint16_t)get16(p + at + 8);
		ce->method = (uint16_t)get16(p + at + 10);
		ce->dos_time = (uint16_t)get16(p + at + 12);
		ce->dos_date = (uint16_t)get16(p + at + 14);
		ce->crc = get32(p + at + 16);
		ce->csize = get32(p + at + 20);
		ce->usize = get32(p + at + 24);
		ce->ext_attr = get32(p + at + 38);
		ce->offset = get32(p + at + 42);
		ce->extra_len = (uint16_t)xlen;
		ce->name = strndup((const char *)p + at + CENTRAL_LEN, nlen);
		if (!ce->name)
			return -ENOMEM;
		c->n++;
		x = p + at + CENTRAL_LEN + nlen;
		for (size_t k = 0; k + 4 <= xlen;) {
			size_t id = get16(x + k), sz = get16(x + k + 2);
			const unsigned char *f = x + k + 4, *end = f + sz;

			if (k + 4 + sz > xlen)
				return bad("bad extra field");
			if (id == 1) {
				ce->zip64 = true;
				if (ce->usize == 0xFFFFFFFFu) {
					if (end - f < 8)
						return bad("short zip64 field");
					ce->usize = get64(f);
					f += 8;
				}
				if (ce->csize == 0xFFFFFFFFu) {
					if (end - f < 8)
						return bad("short zip64 field");
					ce->csize = get64(f);
					f += 8;
				}
				if (ce->offset == 0xFFFFFFFFu) {
					if (end - f < 8)
						return bad("short zip64 field");
					ce->offset = get64(f);
				}
			}
			k += 4 + sz;
		}
		at += CENTRAL_LEN + nlen + xlen + clen;
	}
	return 0;
}

int lp_zip_read_central(int fd, struct lp_zip_central *c)
{
	unsigned char tail[22 + 65535], *cd = NULL;
	struct stat st;
	size_t tlen;
	ssize_t eocd = -1;
	uint64_t count, cd_size, cd_at;
	int r;

	memset(c, 0, sizeof(*c));
	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size < 22)
		return bad("too short");
	tlen = st.st_size < (off_t)sizeof(tail) ? (size_t)st.st_size : sizeof(tail);
	r = lp_pread_all(fd, tail, tlen, st.st_size - (off_t)tlen);
	if (r < 0)
		return r;
	for (ssize_t i = (ssize_t)tlen - 22; i >= 0; i--) {
		if (get32(tail + i) == SIG_EOCD && (size_t)i + 22 + get16(tail + i + 20) == tlen) {
			eocd = i;
			break;
		}
	}
	if (eocd < 0)
		return bad("no end of central directory record");
	count = get16(tail + eocd + 10);
	cd_size = get32(tail + eocd + 12);
	cd_at = get32(tail + eocd + 16);
	if (eocd >= 20 && get32(tail + eocd - 20) == SIG_LOC64) {
		unsigned char z[56];
		uint64_t rec = get64(tail + eocd - 20 + 8);

		r = lp_pread_all(fd, z, sizeof(z), (off_t)rec);
		if (r < 0 || get32(z) != SIG_EOCD64)
			return bad("bad zip64 end of central directory record");
		c->zip64 = true;
		count = get64(z + 32);
		cd_size = get64(z + 40);
		cd_at = get64(z + 48);
	}
	if (cd_at + cd_size > (uint64_t)st.st_size || cd_size > (64u << 20))
		return bad("central directory out of range");
	c->cd_offset = cd_at;
	c->cd_size = cd_size;
	cd = malloc(cd_size ? cd_size : 1);
	if (!cd)
		return -ENOMEM;
	r = lp_pread_all(fd, cd, (size_t)cd_size, (off_t)cd_at);
	if (r == 0)
		r = parse_central(cd, (size_t)cd_size, c, count);
	for (size_t i = 0; r == 0 && i < c->n; i++)
		r = read_local(fd, &c->v[i]);
	free(cd);
	if (r < 0)
		lp_zip_central_free(c);
	return r;
}
