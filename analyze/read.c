/* SPDX-License-Identifier: MIT */
/*
 * Reading a target once: directories through core/input (same excludes as
 * pack) plus one parallel pass that hashes, sniffs and estimates the zip
 * size; archives and image layers through libarchive, streamed. Layer blobs
 * inside an image tar are read as nested archives straight from the outer
 * stream, so nothing is extracted to disk.
 */
#include "analyze/internal.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "core/hash.h"
#include "core/util.h"
#include "pack/strip.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK		(1u << 20)
#define SAMPLE		(64u << 10)	/* files (chunks) up to this size are deflated whole */
#define BIG_SAMPLE	(16u << 10)	/* of a bigger chunk, this much is deflated and scaled up */
#define MAX_MEMBERS	4000000u	/* entries per target: beyond this it is hostile */
#define MAX_RECORD	(16u << 20)
#define BOMB_RATIO	200u		/* expansion ratio that, past BOMB_FLOOR, is a bomb */
#define BOMB_FLOOR	(256ULL << 20)
#define NO_ESTIMATE	UINT64_MAX	/* stored_size of a small file left to its extension's ratio */

/* ---- per-thread scratch ---------------------------------------------- */

struct scratch {
	uint8_t *buf;
	struct libdeflate_compressor *dc;
	uint8_t *out;
	size_t outcap;
};

static int scratch_init(struct scratch *s)
{
	s->buf = malloc(CHUNK);
	s->dc = libdeflate_alloc_compressor(6);
	s->outcap = libdeflate_deflate_compress_bound(NULL, SAMPLE);
	s->out = malloc(s->outcap);
	return s->buf && s->dc && s->out ? 0 : -ENOMEM;
}

static void scratch_free(struct scratch *s)
{
	free(s->buf);
	if (s->dc)
		libdeflate_free_compressor(s->dc);
	free(s->out);
	memset(s, 0, sizeof(*s));
}

static uint64_t deflate_sample(struct scratch *s, const uint8_t *p, size_t n, bool exact)
{
	uint64_t est = 0;

	/* Whole chunks when asked; otherwise a 64 KiB sample scaled up. */
	while (n) {
		size_t take = n <= SAMPLE ? n : exact || n < CHUNK ? SAMPLE : BIG_SAMPLE;
		size_t c = libdeflate_deflate_compress(s->dc, p, take, s->out, s->outcap);
		size_t span = exact ? take : n;

		if (c == 0 || c > take)
			c = take;	/* a zip writer stores what does not compress */
		est += (uint64_t)((double)c * (double)span / (double)take + 0.5);
		if (!exact)
			break;
		p += take;
		n -= take;
	}
	return est;
}

uint64_t lp_analyze_deflate_estimate(const void *buf, size_t n)
{
	struct scratch s;
	uint64_t est = 0;

	if (scratch_init(&s) == 0)
		est = deflate_sample(&s, buf, n, true);
	scratch_free(&s);
	return est;
}

uint64_t ana_zip_overhead(const char *path, int kind)
{
	size_t len = strlen(path) + (kind == LP_DIR ? 1 : 0);

	/* local header 30 + central header 46, each with the name. */
	return 76 + 2 * (uint64_t)len;
}

/* ---- one file's bytes -------------------------------------------------- */

struct fscan {
	struct lp_sha256 sha;
	uint8_t head[4096];
	size_t headn;
	uint64_t total, est;
	bool estimate, exact;
	bool record;		/* keep the text (a dist-info RECORD) */
	char *keep;
	size_t keepn, keepcap;
	int spool;		/* memfd with a native binary's bytes (archives), or -1 */
	bool want_spool;
};

static bool is_record(const char *path)
{
	size_t n = strlen(path);

	return n > 17 && strcmp(path + n - 17, ".dist-info/RECORD") == 0;
}

static void fscan_init(struct fscan *f, bool estimate, bool exact, bool record, bool want_spool)
{
	memset(f, 0, sizeof(*f));
	lp_sha256_init(&f->sha);
	f->estimate = estimate;
	f->exact = exact;
	f->record = record;
	f->spool = -1;
	f->want_spool = want_spool;
}

static void fscan_free(struct fscan *f)
{
	free(f->keep);
	if (f->spool >= 0)
		close(f->spool);
	f->keep = NULL;
	f->spool = -1;
}

static int fscan_chunk(struct fscan *f, struct scratch *s, const uint8_t *p, size_t n)
{
	bool first = f->total == 0;

	lp_sha256_update(&f->sha, p, n);
	if (f->headn < sizeof(f->head)) {
		size_t take = sizeof(f->head) - f->headn < n ? sizeof(f->head) - f->headn : n;

		memcpy(f->head + f->headn, p, take);
		f->headn += take;
	}
	f->total += n;
	if (f->estimate)
		f->est += deflate_sample(s, p, n, f->exact);
	if (f->record && f->keepn + n <= MAX_RECORD) {
		if (f->keepn + n + 1 > f->keepcap) {
			size_t cap = (f->keepn + n + 1) * 2;
			char *k = realloc(f->keep, cap);

			if (!k)
				return -ENOMEM;
			f->keep = k;
			f->keepcap = cap;
		}
		memcpy(f->keep + f->keepn, p, n);
		f->keepn += n;
		f->keep[f->keepn] = '\0';
	}
	/*
	 * The binary reader wants a file descriptor; an anonymous memfd keeps
	 * archive members off the disk.
	 */
	if (f->want_spool && first && lp_bin_sniff(p, n) != LP_BIN_NONE) {
		f->spool = memfd_create("lambdapack-analyze", MFD_CLOEXEC);
		if (f->spool < 0)
			f->want_spool = false;
	}
	if (f->spool >= 0) {
		int r = lp_write_all(f->spool, p, n);

		if (r < 0) {
			close(f->spool);
			f->spool = -1;
			f->want_spool = false;
		}
	}
	return 0;
}

struct lp_binfo *ana_binfo_from_head(const uint8_t *p, size_t n)
{
	enum lp_binfmt fmt = lp_bin_sniff(p, n);
	struct lp_binfo *bi;

	if (fmt == LP_BIN_NONE)
		return NULL;
	bi = calloc(1, sizeof(*bi));
	if (!bi)
		return NULL;
	bi->fmt = fmt;
	switch (fmt) {
	case LP_BIN_ELF:
		bi->os = p[7] == 0 || p[7] == 3 ? LP_OS_LINUX : LP_OS_OTHER;
		if (n >= 20) {
			unsigned m = p[5] == 2 ? (unsigned)p[18] << 8 | p[19] : (unsigned)p[19] << 8 | p[18];

			bi->e_machine = (uint16_t)m;
			bi->arch = m == 62 ? LP_ARCH_X86_64 : m == 183 ? LP_ARCH_ARM64 : m == 3 ? LP_ARCH_X86 :
				   m == 40 ? LP_ARCH_ARM : LP_ARCH_OTHER;
		}
		bi->elf_class = p[4];
		bi->elf_data = p[5];
		break;
	case LP_BIN_MACHO:
	case LP_BIN_MACHO_FAT:
		bi->os = LP_OS_MACOS;
		break;
	case LP_BIN_PE:
		bi->os = LP_OS_WINDOWS;
		break;
	default:
		bi->os = LP_OS_UNKNOWN;
		break;
	}
	if (bi->arch != LP_ARCH_UNKNOWN)
		bi->arch_mask = 1u << bi->arch;
	return bi;
}

/*
 * While the bytes are at hand, plan pack's strip on them, so the "what -O
 * would save" dry run (lp_optimize) needs no path to reopen: zip and image
 * members have none.
 */
static void plan_strip(int fd, struct lp_entry *e)
{
	struct lp_strip_result res;

	if (!e->bin || e->bin->fmt != LP_BIN_ELF)
		return;
	if (lp_strip_plan_fd(fd, e->path, NULL, &res) < 0) {
		lp_errmsg_clear();
		return;
	}
	e->bin->strip_planned = true;
	e->bin->strip_after = res.outcome == LP_STRIP_OK ? res.size_after : 0;
}

/* Digest, binary facts and RECORD text once a file's bytes have all gone by. */
static int fscan_finish(struct fscan *f, struct lp_analysis *a, struct lp_entry *e, int fd)
{
	lp_sha256_final(&f->sha, e->digest);
	e->flags |= LP_F_HAS_DIGEST | LP_F_SNIFFED;
	e->binfmt = (uint8_t)lp_bin_sniff(f->head, f->headn);
	if (e->binfmt != LP_BIN_NONE && !e->bin) {
		int bfd = fd >= 0 ? fd : f->spool;

		if (bfd >= 0 && lseek(bfd, 0, SEEK_SET) == 0) {
			(void)lp_binfo_read_fd(bfd, &e->bin);
			plan_strip(bfd, e);
		}
		if (!e->bin)
			e->bin = ana_binfo_from_head(f->head, f->headn);
	}
	if (f->estimate)
		e->stored_size = f->est < f->total ? f->est : f->total;
	else if (!e->stored_size)
		e->stored_size = NO_ESTIMATE;
	if (f->record && f->keep)
		return ana_add_record(a, e->path, f->keep, f->keepn);
	return 0;
}

/* ---- directories ------------------------------------------------------- */

struct dscan {
	struct lp_analysis *a;
	bool exact;
	unsigned thin;		/* many small files: deflate one in this many (0: all; see small_unsampled) */
	pthread_mutex_t lock;
	struct scratch *slots;
	bool *busy;
	unsigned nslots;
};

static struct scratch *slot_take(struct dscan *d)
{
	struct scratch *s = NULL;

	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < d->nslots && !s; i++)
		if (!d->busy[i]) {
			d->busy[i] = true;
			s = &d->slots[i];
		}
	pthread_mutex_unlock(&d->lock);
	return s;
}

static void slot_give(struct dscan *d, struct scratch *s)
{
	pthread_mutex_lock(&d->lock);
	d->busy[s - d->slots] = false;
	pthread_mutex_unlock(&d->lock);
}


static uint64_t path_hash(const char *p)
{
	uint64_t h = 1469598103934665603ULL;

	while (*p)
		h = (h ^ (unsigned char)*p++) * 1099511628211ULL;
	return h;
}

/*
 * Deflate only one small file in `every` (chosen by path, so runs agree);
 * the rest get the ratio measured for their extension.
 */
static bool small_unsampled(const struct lp_entry *e, unsigned every)
{
	return every > 1 && e->size < SAMPLE && (path_hash(e->path) >> 7) % every != 0;
}

static int sample_file(struct fscan *f, struct scratch *s, int fd, const struct lp_entry *e, unsigned thin)
{
	uint64_t size = e->size;

	if (small_unsampled(e, thin)) {
		ssize_t got;

		do
			got = pread(fd, f->head, size < sizeof(f->head) ? (size_t)size : sizeof(f->head), 0);
		while (got < 0 && errno == EINTR);
		if (got < 0)
			return lp_fail(-errno, e->src, "cannot read file: %s", strerror(errno));
		f->headn = (size_t)got;
		f->est = NO_ESTIMATE;
		return 0;
	}

	for (uint64_t off = 0; off < size || off == 0; off += CHUNK) {
		uint64_t span = size - off < CHUNK ? size - off : CHUNK;
		size_t want = span <= SAMPLE ? (size_t)span : span < CHUNK ? SAMPLE : BIG_SAMPLE;
		ssize_t got;

		if (off == 0)
			want = size < sizeof(f->head) ? (size_t)size : (want > sizeof(f->head) ? want : sizeof(f->head));
		if (!want)
			break;
		got = pread(fd, s->buf, want, (off_t)off);
		if (got < 0 && errno == EINTR) {
			off -= CHUNK;
			continue;
		}
		if (got < 0)
			return lp_fail(-errno, e->src, "cannot read file: %s", strerror(errno));
		if (got == 0)
			break;
		if (off == 0) {
			f->headn = (size_t)got < sizeof(f->head) ? (size_t)got : sizeof(f->head);
			memcpy(f->head, s->buf, f->headn);
		}
		{
			size_t take = (size_t)got;	/* what was read is the sample */
			size_t c = libdeflate_deflate_compress(s->dc, s->buf, take, s->out, s->outcap);

			if (c == 0 || c > take)
				c = take;
			f->est += (uint64_t)((double)c * (double)span / (double)take + 0.5);
		}
	}
	return 0;
}

static int dscan_one(size_t i, void *ctx)
{
	struct dscan *d = ctx;
	struct lp_entry *e = &d->a->entries.v[i];
	struct scratch *s;
	struct fscan f;
	int fd, r = 0;

	if (e->kind != LP_FILE || !e->src)
		return 0;
	fd = open(e->src, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return lp_fail(-errno, e->src, "cannot read file: %s", strerror(errno));
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	s = slot_take(d);
	if (!s) {
		close(fd);
		return lp_fail(-EAGAIN, e->src, "internal: no scratch buffer");
	}
	fscan_init(&f, !(!d->exact && small_unsampled(e, d->thin)), d->exact, is_record(e->path), false);
	if (!d->exact && !f.record) {
		/*
		 * Read the head (type, binary facts) and a 64 KiB sample of
		 * every MiB for the zip estimate. Digests come afterwards, only
		 * for files that can have a twin (lp_entries_digest_candidates,
		 * the way fdupes avoids reading unique files).
		 */
		r = sample_file(&f, s, fd, e, d->thin);
		slot_give(d, s);
		if (r == 0) {
			e->binfmt = (uint8_t)lp_bin_sniff(f.head, f.headn);
			e->flags |= LP_F_SNIFFED;
			if (e->binfmt != LP_BIN_NONE) {
				(void)lp_binfo_read_fd(fd, &e->bin);
				plan_strip(fd, e);
				if (!e->bin)
					e->bin = ana_binfo_from_head(f.head, f.headn);
			}
			e->stored_size = f.est == NO_ESTIMATE ? NO_ESTIMATE : f.est < e->size ? f.est : e->size;
		}
		fscan_free(&f);
		close(fd);
		return r;
	}
	for (;;) {
		ssize_t got = read(fd, s->buf, CHUNK);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = lp_fail(-errno, e->src, "cannot read file: %s", strerror(errno));
			break;
		}
		if (got == 0)
			break;
		if ((r = fscan_chunk(&f, s, s->buf, (size_t)got)) < 0)
			break;
	}
	slot_give(d, s);
	if (r == 0) {
		/* What was read is the truth if the file changed since the walk. */
		e->size = e->orig_size = f.total;
		if (f.record) {
			pthread_mutex_lock(&d->lock);
			r = fscan_finish(&f, d->a, e, fd);
			pthread_mutex_unlock(&d->lock);
		} else {
			r = fscan_finish(&f, d->a, e, fd);
		}
	}
	fscan_free(&f);
	close(fd);
	return r;
}

static const char *extension(const char *path)
{
	const char *b = strrchr(path, '/'), *dot;

	b = b ? b + 1 : path;
	dot = strrchr(b, '.');
	return dot && dot != b ? dot : "";
}

/* Unsampled small files: compressed/original of the sampled small files with the same extension. */
static int fill_estimates(struct lp_entries *l)
{
	struct ana_map m;
	uint64_t *orig = calloc(l->n + 1, sizeof(*orig)), *comp = calloc(l->n + 1, sizeof(*comp));
	uint64_t go = 0, gc = 0;
	size_t next = 1;	/* slot 0: unused */
	int r = ana_map_init(&m, 256);

	if (!orig || !comp || r < 0) {
		free(orig);
		free(comp);
		ana_map_free(&m);
		return -ENOMEM;
	}
	for (size_t i = 0; i < l->n && r == 0; i++) {
		const struct lp_entry *e = &l->v[i];
		const char *x = extension(e->path);
		size_t *k;

		if (e->kind != LP_FILE || e->size >= SAMPLE || e->stored_size == NO_ESTIMATE || !e->size)
			continue;
		if (!(k = ana_map_get(&m, x))) {
			if ((r = ana_map_put(&m, x, next++)) < 0)
				break;
			k = ana_map_get(&m, x);
		}
		orig[*k] += e->size;
		comp[*k] += e->stored_size;
		go += e->size;
		gc += e->stored_size;
	}
	for (size_t i = 0; i < l->n && r == 0; i++) {
		struct lp_entry *e = &l->v[i];
		size_t *k;

		if (e->kind != LP_FILE || e->stored_size != NO_ESTIMATE)
			continue;
		k = ana_map_get(&m, extension(e->path));
		if (k && orig[*k])
			e->stored_size = (uint64_t)((double)e->size * (double)comp[*k] / (double)orig[*k] + 0.5);
		else if (go)
			e->stored_size = (uint64_t)((double)e->size * (double)gc / (double)go + 0.5);
		else
			e->stored_size = e->size;
	}
	ana_map_free(&m);
	free(orig);
	free(comp);
	return r;
}

static int read_dir(const char *path, const struct lp_ana_opts *o, struct lp_analysis *a)
{
	struct lp_source src = { .path = (char *)path, .prefix = (char *)"", .index = 0 };
	struct lp_input_opts in;
	struct dscan d = { .a = a, .exact = o->exact_zip };
	unsigned nt = o->threads ? o->threads : lp_ncpus();
	int r;

	memset(&in, 0, sizeof(in));
	in.excludes = o->excludes;	/* borrowed */
	in.no_default_excludes = o->no_default_excludes;
	in.links = LP_LINKS_MATERIALIZE;
	in.max_expand = o->max_expand;
	/* What pack would refuse becomes an error finding here, and the analysis goes on. */
	in.problems = &a->report;
	r = lp_input_load_all(&src, 1, &in, false, &a->entries);
	if (r < 0)
		return r;
	if (nt > 64)
		nt = 64;
	d.nslots = nt;
	{
		uint64_t small = 0;

		for (size_t i = 0; i < a->entries.n; i++)
			if (a->entries.v[i].kind == LP_FILE && a->entries.v[i].size < SAMPLE)
				small += a->entries.v[i].size;
		/*
		 * Below 16 MiB of small files, compressing them all costs little;
		 * above, about 4 MiB of them (one in 16, 32, 64, ...) measure the
		 * ratio per extension well: the estimate stays within 1% of zip
		 * on bench-analyze's tree while deflate stops dominating the run.
		 */
		d.thin = 0;
		if (small > (16u << 20))
			for (d.thin = 16; d.thin < 1024 && small / d.thin > (4u << 20); d.thin *= 2)
				;
	}
	d.slots = calloc(nt, sizeof(*d.slots));
	d.busy = calloc(nt, sizeof(*d.busy));
	if (!d.slots || !d.busy) {
		r = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < nt; i++)
		if ((r = scratch_init(&d.slots[i])) < 0)
			goto out;
	pthread_mutex_init(&d.lock, NULL);
	r = lp_parallel_for(a->entries.n, nt, dscan_one, &d);
	pthread_mutex_destroy(&d.lock);
	if (r == 0)
		r = fill_estimates(&a->entries);
	if (r == 0 && !d.exact)
		r = lp_entries_digest_candidates(&a->entries, nt);
out:
	for (unsigned i = 0; d.slots && i < nt; i++)
		scratch_free(&d.slots[i]);
	free(d.slots);
	free(d.busy);
	return r;
}

/* ---- archives ---------------------------------------------------------- */

struct rd {
	const struct lp_ana_opts *o;
	struct lp_analysis *a;
	const char *target;
	uint64_t expanded, max, raw_size;
	size_t members;
	struct scratch s;
	/*
	 * Zip targets: a member the reader marks as having no twin (no other
	 * member shares its size and CRC-32) is read only as far as its type
	 * needs (the zip size is known).
	 */
	bool zip_heads;
	struct lp_rootfs *rootfs;	/* images: every layer member, for the runnability check */
};

static int rd_fail(struct rd *r, int err, const char *what, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int rd_fail(struct rd *r, int err, const char *what, const char *name, const char *fmt, ...)
{
	char where[PATH_MAX + 256], msg[1024];
	va_list ap;

	if (name)
		snprintf(where, sizeof(where), "%s: entry '%.1024s'", what, name);
	else
		snprintf(where, sizeof(where), "%s", what);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return lp_fail(err, where, "%s", msg);
}

static void support_filters(struct archive *ar)
{
	/* Built-in decoders only: filter_all may run external programs. */
	archive_read_support_filter_gzip(ar);
	archive_read_support_filter_zstd(ar);
	archive_read_support_filter_bzip2(ar);
	archive_read_support_filter_xz(ar);
	archive_read_support_filter_lzma(ar);
	archive_read_support_filter_lz4(ar);
}

static void support_formats(struct archive *ar, bool only_tar)
{
	archive_read_support_format_tar(ar);
	archive_read_support_format_gnutar(ar);
	if (only_tar)
		return;
	archive_read_support_format_zip(ar);
	archive_read_support_format_7zip(ar);
	archive_read_support_format_cpio(ar);
}

static const char *entry_name(struct archive_entry *ae)
{
	const char *n = archive_entry_pathname_utf8(ae);

	return n ? n : archive_entry_pathname(ae);
}

static int rd_data(struct rd *r, struct lp_stream *st, const char *what, const struct lp_member *m,
		   struct lp_entry *e, bool estimate, bool *partial, bool *dropped)
{
	const char *name = m->raw;
	struct fscan f;
	int rc = 0;
	bool head_only = r->zip_heads && !m->maybe_dup && !is_record(e->path);

	*partial = false;
	*dropped = false;
	fscan_init(&f, estimate, r->o->exact_zip, is_record(e->path), true);
	for (;;) {
		ssize_t got;

		/* Past the head of a member that is neither binary nor a candidate: skip the rest. */
		if (head_only && f.total >= sizeof(f.head) && f.spool < 0) {
			*partial = true;
			break;
		}
		got = lp_stream_read(st, r->s.buf, head_only && !f.total ? sizeof(f.head) : CHUNK);
		if (got < 0) {
			rc = (int)got;
			break;
		}
		if (got == 0)
			break;
		r->expanded += (uint64_t)got;
		if (r->expanded > r->max) {
			rc = rd_fail(r, -LP_E_BADARCHIVE, what, name,
				     "archive expands beyond the expansion cap (zip bomb?)");
			break;
		}
		if (!r->o->max_expand && r->expanded > BOMB_FLOOR && r->raw_size &&
		    r->expanded / r->raw_size > BOMB_RATIO) {
			rc = rd_fail(r, -LP_E_BADARCHIVE, what, name,
				     "archive expands more than 200 times its size (zip bomb?)");
			break;
		}
		if ((rc = fscan_chunk(&f, &r->s, r->s.buf, (size_t)got)) < 0)
			break;
	}
	if (rc == 0 && *partial) {
		e->binfmt = (uint8_t)lp_bin_sniff(f.head, f.headn);
		e->flags |= LP_F_SNIFFED;
	} else if (rc == 0 && lp_stream_dropped(st)) {
		*dropped = true;	/* a lying size, recorded as a finding */
	} else if (rc == 0) {
		e->size = e->orig_size = f.total;
		rc = fscan_finish(&f, r->a, e, -1);
	}
	fscan_free(&f);
	return rc;
}

/*
 * Stream one archive's members into out through the input reader (the
 * checks pack makes; problems become error findings). layer: an image
 * layer (whiteouts, raw tar order, header sizes for Dive); else a zip/tar
 * target.
 */
static int rd_stream(struct rd *r, struct lp_stream *st, const char *what, struct lp_entries *out,
		     bool layer, struct lp_ana_layer *L)
{
	const struct lp_member *m;
	size_t first = out->n;
	int rc;

	while ((rc = lp_stream_next(st, &m)) > 0) {
		struct lp_entry *e = NULL;

		if (++r->members > MAX_MEMBERS) {
			rc = rd_fail(r, -LP_E_BADARCHIVE, what, NULL, "more than 4,000,000 entries");
			break;
		}
		if (layer && L && r->rootfs && (rc = lp_rootfs_add(r->rootfs, (size_t)(L - r->a->layers), m)) < 0)
			break;
		switch (m->kind) {
		case LP_MEMBER_WHITEOUT:
		case LP_MEMBER_OPAQUE:
			e = lp_entries_push(out, m->path, m->kind == LP_MEMBER_OPAQUE ? LP_DIR : LP_FILE);
			if (!e) {
				rc = -ENOMEM;
				break;
			}
			e->flags |= m->kind == LP_MEMBER_OPAQUE ? LP_ANA_F_OPAQUE : LP_ANA_F_WHITEOUT;
			e->stored_size = m->stored;
			e->layer = L ? (uint16_t)(L - r->a->layers) : 0;
			if (L) {
				L->whiteouts++;
				L->size += e->stored_size;
			}
			continue;
		case LP_MEMBER_HARDLINK: {
			/* Same bytes as an earlier member of this archive. */
			struct lp_entry *orig = NULL;
			size_t oi;

			for (size_t i = out->n; i > first; i--)
				if (out->v[i - 1].kind == LP_FILE && !strcmp(out->v[i - 1].path, m->link)) {
					orig = &out->v[i - 1];
					break;
				}
			if (!orig) {
				/* Only layers get here (the reader refuses it elsewhere). */
				rc = lp_report_problem(&r->a->report, 0, -LP_E_BADARCHIVE, "hardlink-missing", m->path,
						       "%s: member '%s': hard link to a member not in this layer -> %s",
						       what, m->path, m->link);
				if (rc < 0)
					break;
				continue;
			}
			oi = (size_t)(orig - out->v);
			e = lp_entries_push(out, m->path, LP_FILE);
			if (!e) {
				rc = -ENOMEM;
				break;
			}
			orig = &out->v[oi];
			e->size = e->orig_size = orig->size;
			memcpy(e->digest, orig->digest, sizeof(e->digest));
			e->flags = orig->flags & (LP_F_HAS_DIGEST | LP_F_SNIFFED | LP_F_EXEC);
			e->binfmt = orig->binfmt;
			e->stored_size = layer ? m->stored : orig->stored_size;
			e->mode = orig->mode;
			if (L) {
				e->layer = (uint16_t)(L - r->a->layers);
				L->files++;
				L->size += e->stored_size;
			}
			continue;
		}
		case LP_MEMBER_DIR:
			e = lp_entries_push(out, m->path, LP_DIR);
			if (!e) {
				rc = -ENOMEM;
				break;
			}
			e->mode = 0755;
			e->flags |= LP_ANA_F_HDRDIR;
			e->stored_size = layer ? m->stored : 0;
			break;
		case LP_MEMBER_FILE: {
			bool partial, dropped;

			e = lp_entries_push(out, m->path, LP_FILE);
			if (!e) {
				rc = -ENOMEM;
				break;
			}
			e->src_mode = m->mode;
			e->mode = (e->src_mode & 0111) ? 0755 : 0644;
			rc = rd_data(r, st, what, m, e, !layer && r->a->kind != LP_ANA_ZIP, &partial, &dropped);
			if (rc < 0)
				break;
			if (dropped) {
				lp_entry_release(e);
				out->n--;
				continue;
			}
			if (partial)
				e->size = e->orig_size = m->declared > 0 ? (uint64_t)m->declared : 0;
			e->stored_size = layer ? m->stored : e->stored_size;
			if (L)
				L->files++;
			break;
		}
		case LP_MEMBER_SYMLINK:
			e = lp_entries_push(out, m->path, LP_SYMLINK);
			if (!e || !(e->target = strdup(m->target))) {
				rc = -ENOMEM;
				break;
			}
			e->size = strlen(e->target);
			e->mode = 0777;
			e->stored_size = layer ? m->stored : 0;
			break;
		default:
			/* Devices and FIFOs in an image's /dev carry no bytes; skip them. */
			e = NULL;
			break;
		}
		if (rc < 0)
			break;
		if (e && L) {
			e->layer = (uint16_t)(L - r->a->layers);
			L->size += e->stored_size;
		}
	}
	return rc < 0 ? rc : 0;
}

/* ---- images: through the one image reader (input/image.c) ------------- */

static const char *jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Config: arch/os and the history lines that go with layers. */
static int apply_config(const cJSON *cfg, struct lp_analysis *a)
{
	const cJSON *hist;
	size_t li = 0;
	int rc = 0;

	if (jstr(cfg, "architecture") && !(a->img_arch = strdup(jstr(cfg, "architecture"))))
		rc = -ENOMEM;
	if (jstr(cfg, "os") && !(a->img_os = strdup(jstr(cfg, "os"))))
		rc = -ENOMEM;
	/* Where the function lives: LAMBDA_TASK_ROOT, as the runtime itself reads it. */
	{
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(cfg, "config");
		const cJSON *env = c ? cJSON_GetObjectItemCaseSensitive(c, "Env") : NULL, *v;

		for (v = cJSON_IsArray(env) ? env->child : NULL; v && rc == 0; v = v->next) {
			char clean[PATH_MAX];
			const char *val;

			if (!cJSON_IsString(v) || strncmp(v->valuestring, "LAMBDA_TASK_ROOT=", 17) != 0)
				continue;
			free(a->img_task_root);
			a->img_task_root = NULL;
			/* "/var/task/" -> "var/task"; "/" or nonsense: keep the default. */
			for (val = v->valuestring + 17; *val == '/'; val++)
				;
			if (strlen(val) < sizeof(clean) && lp_path_clean(val, clean) == 0 && *clean &&
			    !(a->img_task_root = strdup(clean)))
				rc = -ENOMEM;
			lp_errmsg_clear();	/* an unusable value is not an error here */
		}
	}
	hist = cJSON_GetObjectItemCaseSensitive(cfg, "history");
	if (rc == 0 && cJSON_IsArray(hist)) {
		const cJSON *h;

		cJSON_ArrayForEach(h, hist) {
			if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(h, "empty_layer")))
				continue;
			if (li >= a->n_layers)
				break;
			if (jstr(h, "created_by") && !(a->layers[li].created_by = strdup(jstr(h, "created_by")))) {
				rc = -ENOMEM;
				break;
			}
			li++;
		}
	}
	return rc;
}

static int layers_alloc(struct lp_analysis *a, size_t n)
{
	a->layers = calloc(n ? n : 1, sizeof(*a->layers));
	if (!a->layers)
		return -ENOMEM;
	a->n_layers = n;
	for (size_t i = 0; i < n; i++)
		lp_entries_init(&a->layers[i].entries);
	return 0;
}

/* One layer's blob: its members into the layer's entry list, then the rest of it (digest checked). */
static int read_layer(void *ud, struct lp_image *img, size_t i, struct lp_image_blob *b)
{
	struct rd *r = ud;
	struct lp_ana_layer *L = &r->a->layers[i];
	struct lp_stream_opts so = {
		.max_expand = r->max,
		.problems = &r->a->report,
	};
	struct lp_stream *st;
	int rc = lp_image_blob_stream(b, &so, &st);

	if (rc < 0)
		return rc;
	rc = rd_stream(r, st, img->layers[i].what, &L->entries, true, L);
	lp_stream_close(st);
	rc = lp_image_blob_error(b, rc);
	if (rc == 0)
		rc = lp_image_blob_drain(b);
	L->compressed = lp_image_blob_bytes(b);
	return rc;
}

static int read_image(struct rd *r, const char *path, struct lp_analysis *a)
{
	struct lp_image_opts io = {
		.ref = r->o->image,
		.arch = r->o->arch != LP_ARCH_UNKNOWN ? lp_arch_name(r->o->arch) : NULL,
	};
	enum lp_image_format fmt = a->kind == LP_ANA_OCI_LAYOUT ? LP_IMAGE_LAYOUT :
				   a->kind == LP_ANA_OCI_ARCHIVE ? LP_IMAGE_OCI_ARCHIVE : LP_IMAGE_DOCKER_ARCHIVE;
	struct lp_image *img;
	int rc = lp_image_open(path, fmt, &io, &img);

	if (rc < 0)
		return rc;
	/* `docker save a b` holds several images: say which one was read. */
	if (fmt == LP_IMAGE_DOCKER_ARCHIVE && !r->o->image && img->n_images > 1 &&
	    (rc = lp_report_finding(&a->report, LP_SEV_INFO, "several-images", NULL,
				    "the archive holds %zu images (%s); analyzed the first; pick one with --image NAME or @N",
				    img->n_images, img->names)) < 0)
		goto out;
	if ((rc = layers_alloc(a, img->n_layers)) < 0 || (rc = lp_rootfs_new(img->n_layers, &r->rootfs)) < 0)
		goto out;
	rc = lp_image_layers(img, read_layer, r);
	for (size_t i = 0; rc == 0 && i < img->n_layers; i++) {
		const struct lp_image_layer *IL = &img->layers[i];
		struct lp_ana_layer *L = &a->layers[i];

		if (IL->dup_of != SIZE_MAX) {
			rc = lp_fail(-LP_E_BADIMAGE, IL->what, "the same layer blob is used twice");
			break;
		}
		if (!(L->digest = strdup(IL->digest)) ||
		    (IL->raw_media_type && !(L->media_type = strdup(IL->raw_media_type))))
			rc = -ENOMEM;
	}
	if (rc == 0)
		rc = apply_config(img->config, a);
	/* The check container runs on its output: would this image start? */
	if (rc == 0 && (rc = lp_image_runnable(img, r->rootfs, SIZE_MAX, NULL, 0, r->o->runtime, LP_SEV_ERROR,
					       &a->report)) == 1)
		rc = 0;
	snprintf(a->img_manifest_digest, sizeof(a->img_manifest_digest), "%s", img->manifest_digest);
	snprintf(a->img_config_digest, sizeof(a->img_config_digest), "%s", img->config_digest);
out:
	lp_rootfs_free(r->rootfs);
	r->rootfs = NULL;
	lp_image_close(img);
	return rc;
}

static int open_archive(struct rd *r, const char *path, bool only_tar, struct archive **ret)
{
	struct archive *ar = archive_read_new();

	*ret = NULL;
	if (!ar)
		return -ENOMEM;
	support_filters(ar);
	support_formats(ar, only_tar);
	archive_read_support_format_empty(ar);
	if (archive_read_open_filename(ar, path, 1 << 16) != ARCHIVE_OK) {
		int e = archive_errno(ar);
		int rc = lp_fail(e == ENOENT || e == EACCES ? -e : -LP_E_BADARCHIVE, path,
				 "not a readable zip, tar or image: %s", lp_archive_error(ar));

		archive_read_free(ar);
		return rc;
	}
	*ret = ar;
	return 0;
}


/* ---- the final file system of an image --------------------------------- */

static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (n == 0)
		return true;
	return !strncmp(path, dir, n) && path[n] == '/';
}

/*
 * Apply layers in order with OCI whiteout semantics: an opaque marker
 * hides everything below its directory from lower layers, ".wh.x" deletes
 * x and its subtree, anything else adds or replaces.
 */
static int merge_layers(struct lp_analysis *a)
{
	struct lp_entries *fin = &a->entries;
	struct ana_map m;
	int rc = ana_map_init(&m, 1024);

	if (rc < 0)
		return rc;
	for (size_t li = 0; li < a->n_layers && rc == 0; li++) {
		struct lp_entries *le = &a->layers[li].entries;
		size_t base = fin->n;	/* entries before this layer */

		for (size_t k = 0; k < le->n; k++) {
			struct lp_entry *e = &le->v[k];

			if (!(e->flags & (LP_ANA_F_OPAQUE | LP_ANA_F_WHITEOUT)))
				continue;
			for (size_t j = 0; j < base; j++) {
				struct lp_entry *f = &fin->v[j];

				if (f->flags & LP_F_REMOVED)
					continue;
				if (under(f->path, e->path) || ((e->flags & LP_ANA_F_WHITEOUT) && !strcmp(f->path, e->path)))
					f->flags |= LP_F_REMOVED;
			}
		}
		for (size_t k = 0; k < le->n; k++) {
			struct lp_entry *e = &le->v[k], *f;
			size_t *slotp;

			if (e->flags & LP_ANA_F_WHITEOUT)
				continue;
			if ((e->flags & LP_ANA_F_OPAQUE) && !*e->path)
				continue;
			slotp = ana_map_get(&m, e->path);
			if (slotp) {
				f = &fin->v[*slotp];
				if (f->kind == LP_DIR && e->kind == LP_DIR && !(f->flags & LP_F_REMOVED))
					continue;
				free(f->target);
				lp_binfo_free(f->bin);
				free(f->src);
				char *p = f->path;

				*f = *e;
				f->path = p;
			} else {
				size_t at = fin->n;

				f = lp_entries_push(fin, e->path, e->kind);
				if (!f) {
					rc = -ENOMEM;
					break;
				}
				char *p = f->path;

				*f = *e;
				f->path = p;
				/* Keys borrow the entries' path strings, which stay put when the array grows. */
				if ((rc = ana_map_put(&m, f->path, at)) < 0)
					break;
			}
			f->flags &= ~(LP_F_REMOVED | LP_ANA_F_OPAQUE | LP_ANA_F_WHITEOUT);
			f->layer = (uint16_t)li;
			/* The final list owns these now. */
			e->target = NULL;
			e->bin = NULL;
			e->src = NULL;
		}
	}
	ana_map_free(&m);
	if (rc < 0)
		return rc;
	lp_entries_compact(fin);
	lp_entries_sort(fin);
	rc = lp_entries_unique(fin, true);
	if (rc == 0)
		rc = lp_entries_add_parents(fin);
	return rc;
}

/* ---- entry point -------------------------------------------------------- */

int lp_analyze_detect(const char *path, enum lp_ana_kind *ret)
{
	struct stat st;
	struct archive *ar;
	struct archive_entry *ae;
	struct rd r = { .target = path };
	bool have_index = false, have_layout = false;
	int ar_r, rc;
	size_t n = 0;

	if (stat(path, &st) < 0)
		return lp_fail(-errno, path, "cannot read target: %s", strerror(errno));
	if (S_ISDIR(st.st_mode)) {
		char p[PATH_MAX];

		snprintf(p, sizeof(p), "%s/oci-layout", path);
		*ret = LP_ANA_DIR;
		if (access(p, F_OK) == 0) {
			snprintf(p, sizeof(p), "%s/index.json", path);
			if (access(p, F_OK) == 0)
				*ret = LP_ANA_OCI_LAYOUT;
		}
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return lp_fail(-LP_E_BADTYPE, path, "target is neither a directory nor an archive file");
	if (st.st_size == 0)
		return lp_fail(-LP_E_BADARCHIVE, path, "empty file: not a zip, tar or image");
	rc = open_archive(&r, path, false, &ar);
	if (rc < 0)
		return rc;
	*ret = LP_ANA_ARCHIVE;
	while ((ar_r = archive_read_next_header(ar, &ae)) == ARCHIVE_OK || ar_r == ARCHIVE_WARN) {
		const char *name = entry_name(ae);

		if ((archive_format(ar) & ARCHIVE_FORMAT_BASE_MASK) == ARCHIVE_FORMAT_ZIP) {
			*ret = LP_ANA_ZIP;
			break;
		}
		if ((archive_format(ar) & ARCHIVE_FORMAT_BASE_MASK) != ARCHIVE_FORMAT_TAR || !name || ++n > 100000)
			break;
		if (!strncmp(name, "./", 2))
			name += 2;
		if (!strcmp(name, "manifest.json")) {
			*ret = LP_ANA_DOCKER_ARCHIVE;
			break;
		}
		have_index |= !strcmp(name, "index.json");
		have_layout |= !strcmp(name, "oci-layout");
		if (have_index && have_layout)
			*ret = LP_ANA_OCI_ARCHIVE;	/* keep looking for manifest.json */
	}
	if (ar_r != ARCHIVE_OK && ar_r != ARCHIVE_WARN && ar_r != ARCHIVE_EOF) {
		rc = lp_fail(-LP_E_BADARCHIVE, path, "not a readable zip, tar or image: %s",
			     lp_archive_error(ar));
	} else if (n == 0 && *ret == LP_ANA_ARCHIVE && ar_r == ARCHIVE_EOF &&
		   archive_format(ar) == ARCHIVE_FORMAT_EMPTY) {
		rc = lp_fail(-LP_E_BADARCHIVE, path, "not a zip, tar or image (no entries)");
	}
	archive_read_free(ar);
	return rc;
}

int ana_read(const char *path, const struct lp_ana_opts *o, struct lp_analysis *a)
{
	struct rd r = { .o = o, .a = a, .target = path };
	struct stat st;
	int rc = lp_analyze_detect(path, &a->kind);

	if (rc < 0)
		return rc;
	if (a->kind == LP_ANA_DIR)
		return read_dir(path, o, a);
	r.max = o->max_expand ? o->max_expand : (16ULL << 30);
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
		r.raw_size = (uint64_t)st.st_size;
	if ((rc = scratch_init(&r.s)) < 0)
		goto out;
	switch (a->kind) {
	case LP_ANA_ZIP:
	case LP_ANA_ARCHIVE: {
		r.zip_heads = a->kind == LP_ANA_ZIP && !o->exact_zip && !o->digests;
		{
			struct lp_stream_opts so = {
				.name = path,
				.max_expand = o->max_expand,
				.ratio = !o->max_expand,
				.problems = &a->report,
			};
			struct lp_stream *zs;

			rc = lp_stream_open_file(path, &so, &zs);
			if (rc == 0) {
				rc = rd_stream(&r, zs, path, &a->entries, false, NULL);
				lp_stream_close(zs);
			}
		}
		if (rc == 0) {
			lp_entries_sort(&a->entries);
			rc = lp_entries_unique(&a->entries, true);
		}
		if (rc == 0)
			rc = lp_entries_add_parents(&a->entries);
		break;
	}
	case LP_ANA_OCI_LAYOUT:
	case LP_ANA_OCI_ARCHIVE:
	case LP_ANA_DOCKER_ARCHIVE:
		a->is_image = true;
		rc = read_image(&r, path, a);
		break;
	default:
		rc = -EINVAL;
	}
	if (rc == 0 && a->is_image)
		rc = merge_layers(a);
out:
	scratch_free(&r.s);
	return rc;
}
