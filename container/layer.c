/* SPDX-License-Identifier: MIT */
/*
 * One layer: a sorted, normalized PAX tar written by libarchive into a
 * callback that hashes it (diff_id) and feeds the compressor, whose output
 * is hashed again (the blob digest) and written out. Nothing is held in
 * memory beyond a few buffers, whatever the layer size.
 */
#include "container/oci.h"
#include "core/progress.h"
#include "cache/cache.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "core/hash.h"
#include "core/pdeflate.h"
#include "core/util.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <libdeflate.h>
#include <zstd.h>

#define OUTBUF	(1u << 20)
#define READBUF	(1u << 20)

/* ---- a small string -> string map (open addressing, FNV-1a) ---- */

struct strmap {
	char **k;
	const char **v;
	size_t cap, n;
};

static size_t map_slot(const struct strmap *m, const char *k)
{
	size_t i = (size_t)lp_fnv1a(k) & (m->cap - 1);

	while (m->k[i] && strcmp(m->k[i], k) != 0)
		i = (i + 1) & (m->cap - 1);
	return i;
}

static int map_grow(struct strmap *m)
{
	struct strmap g = { .cap = m->cap ? m->cap * 2 : 256 };

	g.k = calloc(g.cap, sizeof(*g.k));
	g.v = calloc(g.cap, sizeof(*g.v));
	if (!g.k || !g.v) {
		free(g.k);
		free(g.v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++) {
		if (m->k[i]) {
			size_t s = map_slot(&g, m->k[i]);

			g.k[s] = m->k[i];
			g.v[s] = m->v[i];
		}
	}
	g.n = m->n;
	free(m->k);
	free(m->v);
	*m = g;
	return 0;
}

static const char *map_get(const struct strmap *m, const char *k, bool *found)
{
	size_t s;

	*found = false;
	if (!m->cap)
		return NULL;
	s = map_slot(m, k);
	*found = m->k[s] != NULL;
	return m->v[s];
}

/* Insert (a copy of) k if absent. */
static int map_put(struct strmap *m, const char *k, const char *v)
{
	size_t s;

	if ((m->n + 1) * 2 > m->cap && map_grow(m) < 0)
		return -ENOMEM;
	s = map_slot(m, k);
	if (m->k[s])
		return 0;
	m->k[s] = strdup(k);
	if (!m->k[s])
		return -ENOMEM;
	m->v[s] = v;
	m->n++;
	return 0;
}

static void map_free(struct strmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->k[i]);
	free(m->k);
	free(m->v);
	memset(m, 0, sizeof(*m));
}

/* ---- the output side: diff_id hash -> compressor -> blob hash -> fd ---- */

struct sink {
	enum lp_oci_compression comp;
	struct lp_sha256 diff, blob;
	uint64_t usize, csize;
	int fd;
	struct lp_pdeflate *z;
	ZSTD_CCtx *zc;
	uint8_t *out;
	size_t fill;
	int err;
	char errmsg[512];
};

static int blob_out(void *ctx, const void *buf, size_t n)
{
	struct sink *s = ctx;
	const uint8_t *p = buf;

	lp_sha256_update(&s->blob, buf, n);
	s->csize += n;
	while (n) {
		size_t take = OUTBUF - s->fill;

		if (take > n)
			take = n;
		memcpy(s->out + s->fill, p, take);
		s->fill += take;
		p += take;
		n -= take;
		if (s->fill == OUTBUF) {
			int r = lp_write_all(s->fd, s->out, s->fill);

			if (r < 0)
				return r;
			s->fill = 0;
		}
	}
	return 0;
}

static int zstd_pump(struct sink *s, const void *buf, size_t n, ZSTD_EndDirective mode)
{
	ZSTD_inBuffer in = { buf, n, 0 };
	uint8_t tmp[1 << 16];

	for (;;) {
		ZSTD_outBuffer out = { tmp, sizeof(tmp), 0 };
		size_t rem = ZSTD_compressStream2(s->zc, &out, &in, mode);
		int r;

		if (ZSTD_isError(rem))
			return -EIO;
		if (out.pos && (r = blob_out(s, tmp, out.pos)) < 0)
			return r;
		if (mode == ZSTD_e_end ? rem == 0 : in.pos == in.size)
			return 0;
	}
}

static int tar_feed(struct sink *s, const void *buf, size_t n)
{
	lp_sha256_update(&s->diff, buf, n);
	s->usize += n;
	switch (s->comp) {
	case LP_OCI_GZIP:
		return lp_pdeflate_write(s->z, buf, n);
	case LP_OCI_ZSTD:
		return zstd_pump(s, buf, n, ZSTD_e_continue);
	default:
		return blob_out(s, buf, n);
	}
}

static la_ssize_t tar_write_cb(struct archive *a, void *ctx, const void *buf, size_t n)
{
	struct sink *s = ctx;
	int r = tar_feed(s, buf, n);

	if (r < 0) {
		s->err = r;
		archive_set_error(a, -r, "%s", strerror(-r));
		return -1;
	}
	return (la_ssize_t)n;
}

static int sink_open(struct sink *s, const struct lp_oci_opts *o, unsigned threads, int fd)
{
	memset(s, 0, sizeof(*s));
	s->comp = o->compression;
	s->fd = fd;
	lp_sha256_init(&s->diff);
	lp_sha256_init(&s->blob);
	s->out = malloc(OUTBUF);
	if (!s->out)
		return -ENOMEM;
	if (s->comp == LP_OCI_GZIP) {
		struct lp_pdeflate_opts zo = {
			.level = o->level ? o->level : 6,
			.engine = LP_PDEFLATE_LIBDEFLATE,
			.threads = threads ? threads : 1,
			.sink = blob_out,
			.sink_ctx = s,
		};
		uint8_t h[10];
		int r = lp_pdeflate_new(&zo, &s->z);

		if (r < 0)
			return r;
		lp_gzip_header(h, zo.level);
		return blob_out(s, h, sizeof(h));
	}
	if (s->comp == LP_OCI_ZSTD) {
		s->zc = ZSTD_createCCtx();
		if (!s->zc)
			return -ENOMEM;
		ZSTD_CCtx_setParameter(s->zc, ZSTD_c_compressionLevel, o->level ? o->level : 3);
		/*
		 * Always the multi-threaded code path (nbWorkers >= 1): its output
		 * depends on the job size, not on how many workers run the jobs,
		 * while nbWorkers = 0 would give different bytes. If the library was
		 * built without threads this fails and we stay single-threaded,
		 * which is just as stable.
		 */
		ZSTD_CCtx_setParameter(s->zc, ZSTD_c_nbWorkers, (int)(threads ? threads : 1));
		ZSTD_CCtx_setParameter(s->zc, ZSTD_c_checksumFlag, 1);
	}
	return 0;
}

static int sink_finish(struct sink *s)
{
	int r = 0;

	if (s->comp == LP_OCI_GZIP) {
		uint32_t crc;
		uint64_t in, out;
		uint8_t t[8];

		r = lp_pdeflate_finish(s->z, &crc, &in, &out);
		if (r < 0)
			return r;
		lp_gzip_trailer(t, crc, in);
		r = blob_out(s, t, sizeof(t));
	} else if (s->comp == LP_OCI_ZSTD) {
		r = zstd_pump(s, NULL, 0, ZSTD_e_end);
	}
	if (r == 0 && s->fill)
		r = lp_write_all(s->fd, s->out, s->fill);
	s->fill = 0;
	return r;
}

static void sink_free(struct sink *s)
{
	lp_pdeflate_free(s->z);
	ZSTD_freeCCtx(s->zc);
	free(s->out);
	s->z = NULL;
	s->zc = NULL;
	s->out = NULL;
}

/* ---- the tar ---- */

struct item {
	char *ipath;			/* path in the image */
	const struct lp_entry *e;	/* NULL: a synthesized parent directory */
};

static int cmp_item(const void *a, const void *b)
{
	return strcmp(((const struct item *)a)->ipath, ((const struct item *)b)->ipath);
}

static int items_push(struct item **v, size_t *n, size_t *cap, char *ipath, const struct lp_entry *e)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 256;
		struct item *nv = realloc(*v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = nc;
	}
	(*v)[*n].ipath = ipath;
	(*v)[(*n)++].e = e;
	return 0;
}

/* Add every missing ancestor of ipath as a synthesized directory. */
/*
 * Synthesize the missing parent directories of ipath, deepest first: once
 * a parent is known, all of its ancestors are too, so each member costs one
 * backward scan of its path plus the parents it really adds (a member
 * 10,000 directories deep used to cost 10,000 full-path lookups per entry).
 */
static int add_parents(struct item **v, size_t *n, size_t *cap, struct strmap *dirs, const char *ipath)
{
	char *buf = strdup(ipath);
	size_t len;
	int r = 0;

	if (!buf)
		return -ENOMEM;
	len = strlen(buf);
	for (;;) {
		bool found;
		char *d;

		while (len > 0 && buf[len - 1] != '/')
			len--;
		if (len <= 1)
			break;
		buf[--len] = '\0';
		map_get(dirs, buf, &found);
		if (found)
			break;
		r = map_put(dirs, buf, NULL);
		if (r == 0) {
			d = strdup(buf);
			r = d ? items_push(v, n, cap, d, NULL) : -ENOMEM;
			if (r < 0)
				free(d);
		}
		if (r < 0)
			break;
	}
	free(buf);
	return r;
}

/*
 * The content digest of a file's bytes without reading them: the entry's
 * own, else the cache's stat index. Stripped copies are never indexed.
 */
static bool item_digest(const struct lp_oci_opts *o, const struct lp_entry *e, const char *src, uint8_t d[32])
{
	struct stat st;

	if ((e->flags & LP_F_HAS_DIGEST) && src == e->src) {
		memcpy(d, e->digest, 32);
		return true;
	}
	if (!src && e->size == 0) {
		lp_sha256("", 0, d);	/* a synthesized empty file */
		return true;
	}
	if (!src || (e->flags & LP_F_STRIPPED) || stat(src, &st) < 0)
		return false;
	return lp_cache_index_lookup(o->cache, src, &st, d) == 1;
}

/* SHA-256 of a file that must hold e->size bytes, recorded in the stat index. */
static int hash_src(struct lp_cache *cache, const struct lp_entry *e, const char *src, uint8_t d[32], uint8_t *buf)
{
	struct lp_sha256 sha;
	struct stat st;
	uint64_t got = 0;
	ssize_t k;
	int fd = open(src, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -errno;
	}
	lp_sha256_init(&sha);
	while ((k = read(fd, buf, READBUF)) != 0) {
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 || lp_cancelled())
			break;
		lp_sha256_update(&sha, buf, (size_t)k);
		got += (uint64_t)k;
	}
	close(fd);
	if (k != 0 || got != e->size)
		return -EIO;	/* the tar pass reports what is wrong */
	lp_sha256_final(&sha, d);
	if (!(e->flags & LP_F_STRIPPED))
		lp_cache_index_record(cache, src, &st, d);
	return 0;
}

/* Copy the file into the tar; with hash, also its SHA-256 (recorded in the stat index). */
static int write_file_data(struct archive *a, struct sink *s, const struct lp_entry *e,
			   const char *src, uint8_t *buf, struct lp_cache *cache, uint8_t *hash)
{
	uint64_t left = e->size;
	struct lp_sha256 sha;
	struct stat st;
	int fd, r = 0;

	if (!src) {
		if (e->size == 0)
			return 0;
		return lp_fail(-EINVAL, e->path, "no source to read its %llu bytes from",
			       (unsigned long long)e->size);
	}
	fd = open(src, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return lp_fail(-errno, src, "cannot open: %s", strerror(errno));
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if (hash) {
		lp_sha256_init(&sha);
		if (fstat(fd, &st) < 0)
			st.st_mode = 0;
	}
	while (left) {
		size_t want = left > READBUF ? READBUF : (size_t)left;
		ssize_t got;

		if ((r = lp_check_cancel(e->path)) < 0)
			goto out;
		got = read(fd, buf, want);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = lp_fail(-errno, src, "read failed: %s", strerror(errno));
			goto out;
		}
		if (got == 0) {
			r = lp_fail(-EIO, src, "file shrank while being read (expected %llu bytes)",
				    (unsigned long long)e->size);
			goto out;
		}
		if (archive_write_data(a, buf, (size_t)got) != got) {
			r = s->err ? s->err : -EIO;
			r = lp_fail(r, e->path, "cannot write layer: %s", archive_error_string(a));
			goto out;
		}
		if (hash)
			lp_sha256_update(&sha, buf, (size_t)got);
		left -= (uint64_t)got;
	}
	/* The header promised e->size bytes; a file that grew would be cut silently. */
	if (read(fd, buf, 1) > 0)
		r = lp_fail(-EIO, src, "file grew while being read (expected %llu bytes)",
			    (unsigned long long)e->size);
	if (r == 0 && hash) {
		lp_sha256_final(&sha, hash);
		if (!(e->flags & LP_F_STRIPPED))
			lp_cache_index_record(cache, src, &st, hash);
	}
out:
	close(fd);
	return r;
}

static const char *canonical_of(const struct lp_entry *e)
{
	return (e->flags & LP_F_DUPLICATE) && e->target ? e->target : e->path;
}

/*
 * Write the items into the tar a, or with a == NULL only work out the
 * layer's cache key. k (may be NULL) receives, item by item, everything
 * that decides the tar's bytes: path, type, mode, size, link target and
 * content digest. A dry run returns 1 when some file's digest is not known
 * without reading it (then the layer is built and keyed as it goes).
 */
struct known {
	bool tried, known;
	uint8_t d[32];
};

static int write_items(struct archive *a, struct sink *s, const struct lp_entries *l,
		       struct item *it, size_t n, const struct lp_oci_opts *o, struct lp_cache_keyer *k,
		       struct known *kd)
{
	struct archive_entry *ae = archive_entry_new();
	struct strmap targets = { 0 };	/* canonical path -> image path written in this layer */
	uint8_t *buf = malloc(READBUF);
	int r = -ENOMEM;

	if (!ae || !buf)
		goto out;
	/* Only canonical paths that have duplicates in this layer need tracking. */
	for (size_t i = 0; i < n; i++) {
		if (it[i].e && it[i].e->kind == LP_FILE && (it[i].e->flags & LP_F_DUPLICATE) && it[i].e->target &&
		    map_put(&targets, it[i].e->target, NULL) < 0)
			goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const struct lp_entry *e = it[i].e;
		const char *src = NULL;
		bool hardlink = false;

		if (a && (r = lp_check_cancel(it[i].ipath)) < 0)
			goto out;
		archive_entry_clear(ae);
		archive_entry_set_pathname_utf8(ae, it[i].ipath);
		archive_entry_set_mtime(ae, (time_t)o->epoch, 0);
		archive_entry_set_uid(ae, 0);
		archive_entry_set_gid(ae, 0);
		if (!e || e->kind == LP_DIR) {
			archive_entry_set_filetype(ae, AE_IFDIR);
			archive_entry_set_perm(ae, 0755);
		} else if (e->kind == LP_SYMLINK) {
			archive_entry_set_filetype(ae, AE_IFLNK);
			archive_entry_set_perm(ae, 0777);
			archive_entry_set_symlink_utf8(ae, e->target ? e->target : "");
		} else {
			const char *canon = canonical_of(e);
			bool found;
			const char *first = map_get(&targets, canon, &found);
			uint32_t mode = e->mode ? e->mode : 0644;

			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_perm(ae, mode);
			/*
			 * The first copy in this layer carries the bytes; later ones
			 * link to it. A link shares the inode's mode, so copies whose
			 * mode differs are stored as files.
			 */
			if (found && first && (strcmp(first, it[i].ipath) != 0)) {
				const struct item *f = bsearch(&(struct item){ .ipath = (char *)first }, it, i,
							       sizeof(*it), cmp_item);

				if (f && f->e && (f->e->mode ? f->e->mode : 0644) == mode) {
					hardlink = true;
					archive_entry_set_hardlink_utf8(ae, first);
					archive_entry_set_size(ae, 0);
				}
			}
			if (!hardlink) {
				archive_entry_set_size(ae, (la_int64_t)e->size);
				src = e->src;
				if (!src && (e->flags & LP_F_DUPLICATE) && e->target) {
					const struct lp_entry *c = lp_entries_find(l, e->target);

					src = c ? c->src : NULL;
				}
				if (found && !first) {
					size_t slot = map_slot(&targets, canon);

					targets.v[slot] = it[i].ipath;
				}
			}
		}
		if (k) {
			const char *lt = archive_entry_hardlink_utf8(ae);

			lp_cache_key_add_str(k, it[i].ipath);
			lp_cache_key_add_u64(k, (uint64_t)archive_entry_filetype(ae));
			lp_cache_key_add_u64(k, (uint64_t)archive_entry_perm(ae));
			lp_cache_key_add_u64(k, (uint64_t)archive_entry_size(ae));
			lp_cache_key_add_str(k, lt ? lt : "");
			lp_cache_key_add_str(k, e && e->kind == LP_SYMLINK && e->target ? e->target : "");
		}
		if (a && archive_write_header(a, ae) != ARCHIVE_OK) {
			r = lp_fail(s->err ? s->err : -EIO, it[i].ipath, "cannot write layer: %s",
				    archive_error_string(a));
			goto out;
		}
		if (e && e->kind == LP_FILE && !hardlink) {
			uint8_t d[32] = { 0 };
			bool known;

			/* Each file is looked up once: the dry run's answers carry over. */
			if (kd && kd[i].known) {
				known = true;
				memcpy(d, kd[i].d, 32);
			} else if (kd && kd[i].tried) {
				known = false;
			} else {
				known = k && item_digest(o, e, src, d);
				if (kd) {
					kd[i].tried = true;
					kd[i].known = known;
					memcpy(kd[i].d, d, 32);
				}
			}
			/*
			 * Not in the stat index (a fresh checkout): hash it now, so the
			 * layer can still come from the cache; if it does not, the tar
			 * pass reads the bytes again from the page cache.
			 */
			if (!a && !known) {
				if (!src || hash_src(o->cache, e, src, d, buf) < 0) {
					r = 1;
					goto out;
				}
				known = true;
				kd[i].known = true;
				memcpy(kd[i].d, d, 32);
			}
			if (a) {
				r = write_file_data(a, s, e, src, buf, o->cache, k && !known ? d : NULL);
				if (r < 0)
					goto out;
			}
			if (k)
				lp_cache_key_add(k, d, 32);
		}
		if (e && e->kind != LP_DIR)
			lp_progress_add(e->size);
	}
	r = 0;
out:
	map_free(&targets);
	archive_entry_free(ae);
	free(buf);
	return r;
}

static int build_items(const struct lp_entries *l, const struct lp_oci_layer_plan *lp,
		       const struct lp_oci_opts *o, struct item **ret, size_t *ret_n)
{
	struct strmap dirs = { 0 };
	struct item *v = NULL;
	size_t n = 0, cap = 0, w = 0;
	int r = 0;

	/* Dependency and code layers always carry the task root and its ancestors. */
	if (lp->group != LP_OCI_G_OPT) {
		char *root = lp_oci_image_path(o, "x");

		if (!root)
			return -ENOMEM;
		r = add_parents(&v, &n, &cap, &dirs, root);
		free(root);
	}
	for (size_t k = 0; r == 0 && k < lp->n; k++) {
		const struct lp_entry *e = &l->v[lp->idx[k]];
		char *ip = lp_oci_image_path(o, e->path);

		if (!ip) {
			r = -ENOMEM;
			break;
		}
		r = add_parents(&v, &n, &cap, &dirs, ip);
		if (r == 0)
			r = items_push(&v, &n, &cap, ip, e);
		if (r < 0)
			free(ip);
	}
	map_free(&dirs);
	if (r < 0)
		goto err;
	qsort(v, n, sizeof(*v), cmp_item);
	/* An explicit directory and a synthesized parent of the same path: keep one. */
	for (size_t i = 0; i < n; i++) {
		if (w && strcmp(v[w - 1].ipath, v[i].ipath) == 0) {
			bool prev_dir = !v[w - 1].e || v[w - 1].e->kind == LP_DIR;
			bool cur_dir = !v[i].e || v[i].e->kind == LP_DIR;

			if (!prev_dir || !cur_dir) {
				r = lp_fail(-LP_E_DUPLICATE, v[i].ipath,
					    "two different entries map to this image path");
				/* v[w..i) were moved down or freed already. */
				for (size_t k = w; k < i; k++)
					v[k].ipath = NULL;
				goto err;
			}
			if (!v[w - 1].e)
				v[w - 1].e = v[i].e;
			free(v[i].ipath);
			v[i].ipath = NULL;
			continue;
		}
		v[w++] = v[i];
	}
	*ret = v;
	*ret_n = w;
	return 0;
err:
	for (size_t i = 0; i < n; i++)
		free(v[i].ipath);
	free(v);
	return r;
}

static void digest_str(const uint8_t d[32], char out[LP_OCI_DIGEST_LEN])
{
	memcpy(out, "sha256:", 7);
	lp_hex(d, 32, out + 7);
}

static void fill_blob(struct lp_oci_blob *ret, const struct lp_cache_meta *m, uint64_t size,
		      const struct lp_oci_opts *o)
{
	digest_str(m->diff_id, ret->diff_id);
	digest_str(m->digest, ret->digest);
	ret->usize = m->usize;
	ret->size = size;
	ret->media_type = o->compression == LP_OCI_GZIP ? LP_OCI_MT_TAR_GZIP :
			  o->compression == LP_OCI_ZSTD ? LP_OCI_MT_TAR_ZSTD : LP_OCI_MT_TAR;
}

/*
 * Start the layer's cache key: what turns the tar plan into blob bytes
 * (the tar writer's and compressors' versions, compression, level, the
 * epoch every mtime carries).
 */
static void key_begin(struct lp_cache_keyer *k, const struct lp_oci_opts *o)
{
	lp_cache_key_begin(k, "oci-layer/1");
	lp_cache_key_add_str(k, archive_version_string());
	lp_cache_key_add_u64(k, (uint64_t)o->compression);
	lp_cache_key_add_u64(k, (uint64_t)o->level);
	lp_cache_key_add_u64(k, (uint64_t)o->epoch);
	if (o->compression == LP_OCI_GZIP)
		lp_cache_key_add_str(k, LIBDEFLATE_VERSION_STRING);
	if (o->compression == LP_OCI_ZSTD)
		lp_cache_key_add_str(k, ZSTD_versionString());
}

int lp_oci_write_layer(const struct lp_entries *l, const struct lp_oci_layer_plan *lp,
		       const struct lp_oci_opts *o, unsigned threads, const char *path, struct lp_oci_blob *ret)
{
	int fd = -1;
	struct item *it = NULL;
	size_t n = 0;
	struct archive *a = NULL;
	locale_t utf8, old_loc = (locale_t)0;
	struct sink s;
	struct lp_cache_keyer kr;
	struct known *kd = NULL;
	int r;

	memset(ret, 0, sizeof(*ret));
	/*
	 * libarchive converts names through the calling thread's locale and
	 * crashes on a non-ASCII name in the C locale; names are UTF-8, so
	 * write under C.UTF-8 for this thread only, whatever the process uses.
	 */
	utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	if (utf8)
		old_loc = uselocale(utf8);
	memset(&s, 0, sizeof(s));
	r = build_items(l, lp, o, &it, &n);
	if (r < 0)
		goto out;
	if (o->cache) {
		struct lp_cache_keyer dry;
		struct lp_cache_key key;
		char name[128];

		key_begin(&dry, o);
		key_begin(&kr, o);
		/* Every digest known without reading a byte: the layer may be cached. */
		kd = calloc(n ? n : 1, sizeof(*kd));
		if (kd && write_items(NULL, &s, l, it, n, o, &dry, kd) == 0) {
			lp_cache_key_end(&dry, &key);
			snprintf(name, sizeof(name), "layer %s %u/%u",
				 lp->group == LP_OCI_G_OPT ? "opt" : lp->group == LP_OCI_G_DEPS ? "dependencies" : "code",
				 lp->part, lp->nparts);
			/* A hit is a hard link to the cache's blob: no layer byte written. */
			struct lp_cache_meta m;
			uint64_t size;

			r = lp_cache_blob_get(o->cache, &key, name, path, &m, &size);
			if (r < 0) {
				r = lp_fail(r, path, "cannot write layer blob: %s", strerror(-r));
				goto out;
			}
			if (r == 1) {
				fill_blob(ret, &m, size, o);
				r = 0;
				goto out;
			}
		} else {
			lp_cache_note_miss(o->cache);
		}
	}
	if (!utf8) {
		for (size_t i = 0; i < n; i++) {
			for (const unsigned char *p = (const unsigned char *)it[i].ipath; *p; p++) {
				if (*p >= 0x80) {
					r = lp_fail(-LP_E_UNSAFEPATH, it[i].ipath,
						    "non-ASCII name, and no C.UTF-8 locale to write it with");
					goto out;
				}
			}
		}
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = lp_fail(-errno, path, "cannot create: %s", strerror(errno));
		goto out;
	}
	r = sink_open(&s, o, threads, fd);
	if (r < 0)
		goto out;
	a = archive_write_new();
	if (!a) {
		r = -ENOMEM;
		goto out;
	}
	/*
	 * Restricted PAX: plain ustar headers unless a name, link or size does
	 * not fit, and then only the records needed (never atime/ctime). No
	 * padding after the end-of-archive blocks, so the block size we hand
	 * libarchive does not show in the bytes.
	 */
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(a, 64 * 1024) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    archive_write_open2(a, &s, NULL, tar_write_cb, NULL, NULL) != ARCHIVE_OK) {
		r = lp_fail(-EIO, NULL, "cannot start layer tar: %s", archive_error_string(a));
		goto out;
	}
	r = write_items(a, &s, l, it, n, o, o->cache ? &kr : NULL, kd);
	if (r < 0)
		goto out;
	if (archive_write_close(a) != ARCHIVE_OK) {
		r = lp_fail(s.err ? s.err : -EIO, NULL, "cannot finish layer tar: %s", archive_error_string(a));
		goto out;
	}
	r = sink_finish(&s);
	if (r == 0 && close(fd) < 0)
		r = -errno;
	fd = -1;
	if (r < 0) {
		r = lp_fail(r, path, "cannot write layer blob: %s", strerror(-r));
		goto out;
	}
	{
		struct lp_cache_meta m = { .usize = s.usize };

		lp_sha256_final(&s.diff, m.diff_id);
		lp_sha256_final(&s.blob, m.digest);
		fill_blob(ret, &m, s.csize, o);
		if (o->cache) {
			struct lp_cache_key key;

			/* Into the cache by a hard link to the finished file: not written twice. */
			lp_cache_key_end(&kr, &key);
			lp_cache_blob_put(o->cache, &key, &m, path, s.csize);
		}
	}
out:
	if (a)
		archive_write_free(a);
	for (size_t i = 0; i < n; i++)
		free(it[i].ipath);
	free(it);
	free(kd);
	sink_free(&s);
	if (fd >= 0)
		close(fd);
	if (utf8) {
		uselocale(old_loc);
		freelocale(utf8);
	}
	return r;
}
