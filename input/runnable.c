/* SPDX-License-Identifier: MIT */
/*
 * Would an image start? The program its Entrypoint (else Cmd) names must be
 * in the merged root file system (layers applied in order, whiteouts and
 * opaque directories honoured), resolved through PATH and symbolic links
 * as the kernel and runc would, be a regular executable file, and, as an
 * ELF, be for the image's machine and find its loader (PT_INTERP) and its
 * DT_NEEDED libraries, and theirs, in the image; a script's #!
 * interpreter must be there too (and its own, when it is a script). One place for
 * `container` (its own output, before it is put in place) and `analyze`.
 *
 * The rootfs is never unpacked: one pass records every layer's members
 * (path, kind, mode, link target), a path is looked up from the top layer
 * down, and only the few files whose bytes matter (the entry program, a
 * script's interpreters, the libraries) are read, by one more pass over
 * their layers (the libraries: one per round of the closure).
 */
#include "input/input.h"
#include "core/elf.h"
#include "core/err.h"
#include "core/limits.h"
#include "core/util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINKS	40		/* symbolic links followed in one lookup, as Linux */
#define MAX_READ	(256u << 20)	/* bytes of an entry program read for its ELF facts */
#define MEMO_MAX	(64u << 20)	/* bigger files are read from their layer every time */
#define MAX_SCRIPTS	5		/* #! levels: the kernel's exec_binprm gives up past depth 5 (-ELOOP) */

struct rec {
	char *path;
	enum lp_member_kind kind;
	uint32_t mode;
	char *target;		/* symlink target, or hard link: the earlier member's path */
	size_t seq;		/* order in the layer: of one path given twice, the later counts */
	const char *src;	/* the top layer given as files (lp_rootfs_add): where the bytes are */
};

struct recs {
	struct rec *v;
	size_t n, cap;
};

struct layer {
	struct recs files;	/* everything but whiteouts, sorted by path */
	struct recs wh;		/* whiteouts: path deleted */
	struct recs opq;	/* opaque directories ("" = the root) */
};

struct lp_rootfs {
	struct lp_image *img;
	struct layer *L;
	size_t n;		/* layers, the given top one included */
	size_t n_img;		/* of them read from the image */
	bool finished;		/* fs_finish done: sorted, no more members */
	const struct lp_rootfs_memo *memo;
};

/* A resolved file: its record and the layer that holds it. */
struct hit {
	const struct rec *r;
	size_t layer;
	char path[4096];	/* resolved, relative to the root, no leading '/' */
};

static int recs_push(struct recs *rs, const struct lp_member *m, const char *target)
{
	struct rec *r;

	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 64;
		struct rec *v = realloc(rs->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		rs->v = v;
		rs->cap = cap;
	}
	r = &rs->v[rs->n];
	r->path = strdup(m->path);
	r->target = target ? strdup(target) : NULL;
	if (!r->path || (target && !r->target)) {
		free(r->path);
		free(r->target);
		return -ENOMEM;
	}
	r->kind = m->kind;
	r->mode = m->mode;
	r->src = NULL;
	r->seq = rs->n;
	rs->n++;
	return 0;
}

static void recs_free(struct recs *rs)
{
	for (size_t i = 0; i < rs->n; i++) {
		free(rs->v[i].path);
		free(rs->v[i].target);
	}
	free(rs->v);
	memset(rs, 0, sizeof(*rs));
}

static int cmp_rec(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;
	int c = strcmp(x->path, y->path);

	return c ? c : x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sort; of one path given twice in a layer the last one counts (as tar extraction would have it). */
static void recs_sort(struct recs *rs)
{
	size_t w = 0;

	if (!rs->n)
		return;
	qsort(rs->v, rs->n, sizeof(*rs->v), cmp_rec);
	for (size_t i = 0; i < rs->n; i++) {
		if (w && strcmp(rs->v[w - 1].path, rs->v[i].path) == 0) {
			free(rs->v[w - 1].path);
			free(rs->v[w - 1].target);
			rs->v[w - 1] = rs->v[i];
			continue;
		}
		rs->v[w++] = rs->v[i];
	}
	rs->n = w;
}

static const struct rec *recs_find(const struct recs *rs, const char *path)
{
	size_t lo = 0, hi = rs->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(rs->v[mid].path, path);

		if (c == 0)
			return &rs->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ---- the layers' members ---- */

int lp_rootfs_new(size_t n_layers, struct lp_rootfs **ret)
{
	struct lp_rootfs *fs = calloc(1, sizeof(*fs));

	*ret = NULL;
	if (!fs)
		return -ENOMEM;
	/* One more: the layer lp_image_runnable may be given as files. */
	fs->L = calloc(n_layers + 1, sizeof(*fs->L));
	if (!fs->L) {
		free(fs);
		return -ENOMEM;
	}
	fs->n_img = fs->n = n_layers;
	*ret = fs;
	return 0;
}

int lp_rootfs_add(struct lp_rootfs *fs, size_t layer, const struct lp_member *m)
{
	struct layer *L;

	if (layer >= fs->n_img || fs->finished)
		return -EINVAL;
	L = &fs->L[layer];
	switch (m->kind) {
	case LP_MEMBER_WHITEOUT:
		return recs_push(&L->wh, m, NULL);
	case LP_MEMBER_OPAQUE:
		return recs_push(&L->opq, m, NULL);
	case LP_MEMBER_SYMLINK:
		return recs_push(&L->files, m, m->target);
	case LP_MEMBER_HARDLINK:
		return recs_push(&L->files, m, m->link);
	default:
		return recs_push(&L->files, m, NULL);
	}
}

void lp_rootfs_free(struct lp_rootfs *fs)
{
	if (!fs)
		return;
	for (size_t i = 0; i <= fs->n_img; i++) {
		recs_free(&fs->L[i].files);
		recs_free(&fs->L[i].wh);
		recs_free(&fs->L[i].opq);
	}
	free(fs->L);
	free(fs);
}

void lp_rootfs_set_memo(struct lp_rootfs *fs, const struct lp_rootfs_memo *m)
{
	fs->memo = m;
}

/* ---- a layer's listing as bytes ---- */

#define LISTING_MAGIC	"LPRFS\x01\0\0"

struct wbuf {
	void *p;
	size_t n, cap;
	bool oom;
};

static void wb_put(struct wbuf *w, const void *p, size_t n)
{
	if (w->oom || (w->oom = lp_grow(&w->p, &w->cap, w->n + n, 4096) < 0))
		return;
	memcpy((unsigned char *)w->p + w->n, p, n);
	w->n += n;
}

static void wb_u32(struct wbuf *w, uint32_t v)
{
	unsigned char b[4] = { (unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
			       (unsigned char)(v >> 24) };

	wb_put(w, b, 4);
}

int lp_rootfs_layer_save(const struct lp_rootfs *fs, size_t layer, unsigned char **ret, size_t *ret_n)
{
	struct wbuf w = { 0 };

	if (layer >= fs->n_img || fs->finished)
		return -EINVAL;
	wb_put(&w, LISTING_MAGIC, 8);
	for (int g = 0; g < 3; g++) {
		const struct recs *rs = g == 0 ? &fs->L[layer].files : g == 1 ? &fs->L[layer].wh : &fs->L[layer].opq;

		wb_u32(&w, (uint32_t)rs->n);
		for (size_t i = 0; i < rs->n; i++) {
			const struct rec *r = &rs->v[i];
			size_t pl = strlen(r->path), tl = r->target ? strlen(r->target) : 0;

			wb_u32(&w, (uint32_t)r->kind);
			wb_u32(&w, r->mode);
			wb_u32(&w, (uint32_t)pl);
			wb_put(&w, r->path, pl);
			wb_u32(&w, r->target ? (uint32_t)tl + 1 : 0);
			wb_put(&w, r->target ? r->target : "", tl);
		}
	}
	if (w.oom) {
		free(w.p);
		return -ENOMEM;
	}
	*ret = w.p;
	*ret_n = w.n;
	return 0;
}

static bool rd_u32(const unsigned char **p, const unsigned char *end, uint32_t *v)
{
	if (end - *p < 4)
		return false;
	*v = lp_le32(*p);
	*p += 4;
	return true;
}

/* A string of len bytes at *p with no NUL in it, copied; NULL when it does not fit. */
static char *rd_str(const unsigned char **p, const unsigned char *end, uint32_t len)
{
	char *s;

	if ((size_t)(end - *p) < len || memchr(*p, '\0', len))
		return NULL;
	s = malloc((size_t)len + 1);
	if (!s)
		return NULL;
	memcpy(s, *p, len);
	s[len] = '\0';
	*p += len;
	return s;
}

int lp_rootfs_layer_load(struct lp_rootfs *fs, size_t layer, const unsigned char *buf, size_t n)
{
	const unsigned char *p = buf, *end = buf + n;
	struct layer *L;
	int r = -EINVAL;

	if (layer >= fs->n_img || fs->finished)
		return -EINVAL;
	L = &fs->L[layer];
	if (L->files.n || L->wh.n || L->opq.n)
		return -EINVAL;
	if (n < 8 || memcmp(buf, LISTING_MAGIC, 8) != 0)
		return -EINVAL;
	p += 8;
	for (int g = 0; g < 3; g++) {
		struct recs *rs = g == 0 ? &L->files : g == 1 ? &L->wh : &L->opq;
		uint32_t count;

		if (!rd_u32(&p, end, &count) || count > (size_t)(end - p) / 16)
			goto bad;
		for (uint32_t i = 0; i < count; i++) {
			struct lp_member m = { 0 };
			uint32_t kind, mode, pl, tl;
			char *path = NULL, *target = NULL;

			if (!rd_u32(&p, end, &kind) || !rd_u32(&p, end, &mode) || !rd_u32(&p, end, &pl) ||
			    kind > LP_MEMBER_OTHER || !(path = rd_str(&p, end, pl)))
				goto bad;
			if (!rd_u32(&p, end, &tl) || (tl && !(target = rd_str(&p, end, tl - 1)))) {
				free(path);
				goto bad;
			}
			/* Each group holds only its own kinds, as lp_rootfs_add sorts them. */
			if ((g == 1) != (kind == LP_MEMBER_WHITEOUT) || (g == 2) != (kind == LP_MEMBER_OPAQUE)) {
				free(path);
				free(target);
				goto bad;
			}
			m.path = path;
			m.kind = (enum lp_member_kind)kind;
			m.mode = mode;
			r = recs_push(rs, &m, target);
			free(path);
			free(target);
			if (r < 0)
				goto fail;
			r = -EINVAL;
		}
	}
	if (p == end)
		return 0;
bad:
	r = -EINVAL;
fail:
	recs_free(&L->files);
	recs_free(&L->wh);
	recs_free(&L->opq);
	return r;
}

/*
 * A blob's members. Those the reader refuses are analyze's and container's
 * to report; here they are skipped (collected in scratch and dropped).
 */
struct members {
	struct lp_report scratch;
	struct lp_stream *st;
};

static int members_open(struct members *ms, struct lp_image_blob *b)
{
	struct lp_stream_opts so = { .problems = &ms->scratch };
	int r;

	lp_report_init(&ms->scratch);
	r = lp_image_blob_stream(b, &so, &ms->st);
	if (r < 0)
		lp_report_free(&ms->scratch);
	return r;
}

/* Close the walk that ended with r: the blob's own error if it had one, else r. */
static int members_close(struct members *ms, struct lp_image_blob *b, int r)
{
	lp_stream_close(ms->st);
	lp_report_free(&ms->scratch);
	return lp_image_blob_error(b, r);
}

static int record_layer(void *ud, struct lp_image *img, size_t i, struct lp_image_blob *b)
{
	struct lp_rootfs *fs = ud;
	const struct lp_member *m;
	struct members ms;
	int r;

	(void)img;
	r = members_open(&ms, b);
	if (r < 0)
		return r;
	while ((r = lp_stream_next(ms.st, &m)) > 0)
		if ((r = lp_rootfs_add(fs, i, m)) < 0)
			break;
	return members_close(&ms, b, r);
}

/* Read the first fs->n_img layers of img into fs. */
static int fs_read_layers(struct lp_rootfs *fs, struct lp_image *img)
{
	size_t saved = img->n_layers;
	int r;

	/* Only those: the ones above them are given as files, not read again. */
	img->n_layers = fs->n_img;
	r = lp_image_layers(img, record_layer, fs);
	img->n_layers = saved;
	return r;
}

/* Twins of shared blobs filled in, the layer given as files on top, everything sorted for lookups. */
static int fs_finish(struct lp_rootfs *fs, struct lp_image *img, const struct lp_rootfs_add *top, size_t n_top)
{
	int r;

	fs->img = img;
	for (size_t i = 0; i < fs->n_img; i++) {
		size_t k = img->layers[i].dup_of;

		/* A layer that shares another's blob (tars) was not visited: it holds the same members. */
		if (k == SIZE_MAX || k >= fs->n_img || fs->L[i].files.n || fs->L[i].wh.n || fs->L[i].opq.n)
			continue;
		for (size_t g = 0; g < 3; g++) {
			const struct recs *from = g == 0 ? &fs->L[k].files : g == 1 ? &fs->L[k].wh : &fs->L[k].opq;
			struct recs *to = g == 0 ? &fs->L[i].files : g == 1 ? &fs->L[i].wh : &fs->L[i].opq;

			for (size_t j = 0; j < from->n; j++) {
				struct lp_member m = { .path = from->v[j].path, .kind = from->v[j].kind,
						       .mode = from->v[j].mode };

				if ((r = recs_push(to, &m, from->v[j].target)) < 0)
					return r;
			}
		}
	}
	for (size_t j = 0; j < n_top; j++) {
		struct lp_member m = { .path = top[j].path, .kind = top[j].kind, .mode = top[j].mode };
		struct recs *to = &fs->L[fs->n_img].files;

		if ((r = recs_push(to, &m, top[j].kind == LP_MEMBER_SYMLINK ? top[j].target : NULL)) < 0)
			return r;
		to->v[to->n - 1].src = top[j].src;
	}
	fs->n = fs->n_img + (n_top ? 1 : 0);
	for (size_t i = 0; i < fs->n; i++) {
		recs_sort(&fs->L[i].files);
		recs_sort(&fs->L[i].wh);
		recs_sort(&fs->L[i].opq);
	}
	fs->finished = true;
	return 0;
}

/*
 * The entry for path (relative, clean, no symlinks in its directories) in
 * the merged root file system, from the top layer down: a layer's own
 * member wins; a whiteout of it or of a directory above it, an opaque
 * directory above it or a non-directory above it hides everything below.
 * NULL when absent.
 */
static const struct rec *fs_lookup(const struct lp_rootfs *fs, const char *path, size_t *ret_layer)
{
	char anc[4096];

	for (size_t i = fs->n; i-- > 0;) {
		const struct layer *L = &fs->L[i];
		const struct rec *r = recs_find(&L->files, path);
		size_t len = strlen(path);

		if (r) {
			*ret_layer = i;
			return r;
		}
		if (recs_find(&L->wh, path))
			return NULL;
		if (len >= sizeof(anc))
			return NULL;
		if (recs_find(&L->opq, ""))
			return NULL;
		/* Each directory above path, shortest first. */
		for (size_t k = 0; k < len; k++) {
			const struct rec *a;

			if (path[k] != '/')
				continue;
			memcpy(anc, path, k);
			anc[k] = '\0';
			if (recs_find(&L->wh, anc) || recs_find(&L->opq, anc))
				return NULL;
			a = recs_find(&L->files, anc);
			if (a && a->kind != LP_MEMBER_DIR)
				return NULL;
		}
	}
	return NULL;
}

/*
 * Resolve an absolute path in the image as the kernel would: ".." and ".",
 * symbolic links in every component (absolute targets from the image's
 * root; ".." never above it), the last one too. Hard links lead to the
 * member whose bytes they share. Returns 0 with *h filled, -ENOENT (h->path
 * is how far it got), -ELOOP, or -ENAMETOOLONG.
 */
static int fs_resolve(const struct lp_rootfs *fs, const char *abs, struct hit *h)
{
	char todo[8192], cur[4096];
	unsigned links = 0;
	size_t curlen = 0;
	char *p;

	memset(h, 0, sizeof(*h));
	if (snprintf(todo, sizeof(todo), "%s", abs) >= (int)sizeof(todo))
		return -ENAMETOOLONG;
	cur[0] = '\0';
	p = todo;
	for (;;) {
		char comp[256], cand[4096];
		const struct rec *r;
		size_t n, layer = 0;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		n = strcspn(p, "/");
		if (n >= sizeof(comp))
			return -ENAMETOOLONG;
		memcpy(comp, p, n);
		comp[n] = '\0';
		p += n;
		if (strcmp(comp, ".") == 0)
			continue;
		if (strcmp(comp, "..") == 0) {
			char *s = strrchr(cur, '/');

			curlen = s ? (size_t)(s - cur) : 0;
			cur[curlen] = '\0';
			continue;
		}
		if (snprintf(cand, sizeof(cand), "%s%s%s", cur, curlen ? "/" : "", comp) >= (int)sizeof(cand))
			return -ENAMETOOLONG;
		r = fs_lookup(fs, cand, &layer);
		if (r && r->kind == LP_MEMBER_SYMLINK) {
			char rest[8192];

			if (++links > MAX_LINKS)
				return -ELOOP;
			/* The target, then what was left of the path. */
			if (snprintf(rest, sizeof(rest), "%s/%s", r->target, p) >= (int)sizeof(rest))
				return -ENAMETOOLONG;
			memcpy(todo, rest, strlen(rest) + 1);
			p = todo;
			if (r->target[0] == '/') {
				curlen = 0;
				cur[0] = '\0';
			}
			continue;
		}
		if (!r) {
			/* A directory that only exists as the parent of members is still a directory. */
			const char *next = p + strspn(p, "/");

			snprintf(h->path, sizeof(h->path), "%s", cand);
			if (!*next)
				return -ENOENT;
		} else if (r->kind != LP_MEMBER_DIR && *(p + strspn(p, "/"))) {
			snprintf(h->path, sizeof(h->path), "%s", cand);
			return -ENOTDIR;
		}
		memcpy(cur, cand, strlen(cand) + 1);
		curlen = strlen(cur);
		if (!*(p + strspn(p, "/"))) {
			h->r = r;
			h->layer = layer;
			break;
		}
	}
	snprintf(h->path, sizeof(h->path), "%s", cur);
	if (!h->r) {
		/* The root itself, or a path ending in "/..". */
		return curlen ? -ENOENT : -EISDIR;
	}
	return 0;
}

/* ---- pass 2: the bytes of one file ---- */

struct want {
	size_t layer;
	const char *path;	/* the member holding the bytes */
	unsigned char *buf;
	size_t n, cap;
	bool found;
};

static int read_one(void *ud, struct lp_image *img, size_t i, struct lp_image_blob *b)
{
	struct want *w = ud;
	const struct lp_member *m;
	struct members ms;
	size_t want_layer = img->layers[w->layer].dup_of != SIZE_MAX ? img->layers[w->layer].dup_of : w->layer;
	int r;

	/* The walk that recorded the members checked every blob: the others need no second read. */
	if (i != want_layer || w->found)
		return LP_IMAGE_SKIP;
	r = members_open(&ms, b);
	if (r < 0)
		return r;
	while ((r = lp_stream_next(ms.st, &m)) > 0) {
		ssize_t k;

		if (m->kind != LP_MEMBER_FILE || strcmp(m->path, w->path) != 0)
			continue;
		w->found = true;
		r = 0;
		/* Grown as bytes arrive: a size field alone never allocates. */
		for (;;) {
			if (w->n == w->cap) {
				size_t cap = w->cap ? w->cap * 2 : 1 << 16;
				unsigned char *nb;

				if (w->cap >= MAX_READ)
					break;
				nb = realloc(w->buf, cap);
				if (!nb) {
					r = -ENOMEM;
					break;
				}
				w->buf = nb;
				w->cap = cap;
			}
			k = lp_stream_read(ms.st, w->buf + w->n, w->cap - w->n);
			if (k <= 0) {
				r = k < 0 ? (int)k : 0;
				break;
			}
			w->n += (size_t)k;
		}
		break;
	}
	return members_close(&ms, b, r);
}

/* The first bytes (up to MAX_READ) of a file on disk: the top layer given as files. */
static int read_src(const char *src, unsigned char **ret, size_t *ret_n)
{
	unsigned char *buf = malloc(1 << 16);
	size_t n = 0, cap = 1 << 16;
	FILE *f;

	if (!buf)
		return -ENOMEM;
	f = fopen(src, "rb");
	if (!f) {
		int e = errno;

		free(buf);
		return lp_fail(-e, src, "cannot open: %s", strerror(e));
	}
	for (;;) {
		size_t k;

		if (n == cap) {
			unsigned char *nb;

			if (cap >= MAX_READ)
				break;
			nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				fclose(f);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		k = fread(buf + n, 1, cap - n, f);
		if (k == 0)
			break;
		n += k;
	}
	if (ferror(f)) {
		free(buf);
		fclose(f);
		return lp_fail(-EIO, src, "cannot read");
	}
	fclose(f);
	*ret = buf;
	*ret_n = n;
	return 0;
}

/* The bytes of a resolved file (a hard link: of the member it names), up to MAX_READ. */
static int fs_read(const struct lp_rootfs *fs, const struct hit *h, unsigned char **ret, size_t *ret_n)
{
	struct want w = { .layer = h->layer, .path = h->r->kind == LP_MEMBER_HARDLINK ? h->r->target : h->r->path };
	size_t saved = fs->img->n_layers;
	int r;

	const char *dg;

	if (h->layer >= fs->n_img) {
		if (!h->r->src)
			return lp_fail(-ENOENT, h->r->path, "no bytes to read");
		return read_src(h->r->src, ret, ret_n);
	}
	dg = fs->img->layers[fs->img->layers[h->layer].dup_of != SIZE_MAX ? fs->img->layers[h->layer].dup_of :
			     h->layer].digest;
	if (fs->memo && fs->memo->get(fs->memo->ud, dg, w.path, ret, ret_n) == 1)
		return 0;
	/* Up to the layer that holds it: nothing above it is read. */
	fs->img->n_layers = h->layer + 1;
	r = lp_image_layers(fs->img, read_one, &w);
	fs->img->n_layers = saved;
	if (r < 0 || !w.found) {
		free(w.buf);
		return r < 0 ? r : -ENOENT;
	}
	if (fs->memo && w.n <= MEMO_MAX)
		fs->memo->put(fs->memo->ud, dg, w.path, w.buf, w.n);
	*ret = w.buf;
	*ret_n = w.n;
	return 0;
}

/*
 * The libraries of one round of the closure, read together: one pass over
 * each layer that holds any of them, each file parsed as it streams by and
 * its bytes dropped, so memory holds one library at a time.
 */
struct libreq {
	size_t layer;		/* the layer whose blob holds the bytes (dup_of applied) */
	const char *path;	/* the member holding them */
	const char *src;	/* or the file on disk (the top layer given as files) */
	struct lp_binfo *bi;	/* parsed; NULL when unreadable or not ELF */
	bool done;
};

struct libreqs {
	struct libreq *v;
	size_t n;
	const struct lp_rootfs_memo *memo;
};

static int slurp(struct lp_stream *st, unsigned char **ret, size_t *ret_n)
{
	unsigned char *buf = NULL;
	size_t n = 0, cap = 0;

	for (;;) {
		ssize_t k;

		if (n == cap) {
			size_t nc = cap ? cap * 2 : 1 << 16;
			unsigned char *nb;

			if (cap >= MAX_READ)
				break;
			nb = realloc(buf, nc);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap = nc;
		}
		k = lp_stream_read(st, buf + n, cap - n);
		if (k < 0) {
			free(buf);
			return (int)k;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	*ret = buf;
	*ret_n = n;
	return 0;
}

/* The first request for the same member as request j: its bytes are kept once. */
static size_t first_of(const struct libreqs *q, size_t j)
{
	for (size_t k = 0; k < j; k++)
		if (q->v[k].layer == q->v[j].layer && strcmp(q->v[k].path, q->v[j].path) == 0)
			return k;
	return j;
}

static int read_many(void *ud, struct lp_image *img, size_t i, struct lp_image_blob *b)
{
	struct libreqs *q = ud;
	const struct lp_member *m;
	struct members ms;
	size_t left = 0;
	int r;

	for (size_t j = 0; j < q->n; j++)
		left += q->v[j].layer == i && !q->v[j].done;
	if (!left)
		return LP_IMAGE_SKIP;
	r = members_open(&ms, b);
	if (r < 0)
		return r;
	while (left && (r = lp_stream_next(ms.st, &m)) > 0) {
		unsigned char *buf = NULL;
		size_t n = 0;

		if (m->kind != LP_MEMBER_FILE)
			continue;
		for (size_t j = 0; j < q->n; j++) {
			struct libreq *w = &q->v[j];

			if (w->layer != i || w->done || strcmp(m->path, w->path) != 0)
				continue;
			if (!buf && (r = slurp(ms.st, &buf, &n)) < 0)
				goto out;
			w->done = true;
			left--;
			if (lp_binfo_read_mem(buf, n, &w->bi) < 0)
				w->bi = NULL;
			if (q->memo && n <= MEMO_MAX && j == first_of(q, j))
				q->memo->put(q->memo->ud, img->layers[i].digest, w->path, buf, n);
		}
		free(buf);
	}
	r = r < 0 ? r : 0;
out:
	return members_close(&ms, b, r);
}

static int fs_read_many(const struct lp_rootfs *fs, struct libreqs *q)
{
	size_t top = 0, saved = fs->img->n_layers;
	int r = 0;

	q->memo = fs->memo;	/* read_many keeps what it reads */

	for (size_t j = 0; j < q->n; j++) {
		struct libreq *w = &q->v[j];

		if (w->layer >= fs->n_img) {
			unsigned char *buf;
			size_t n;

			w->done = true;
			if (!w->src || read_src(w->src, &buf, &n) < 0)
				continue;
			if (lp_binfo_read_mem(buf, n, &w->bi) < 0)
				w->bi = NULL;
			free(buf);
			continue;
		}
		if (fs->img->layers[w->layer].dup_of != SIZE_MAX)
			w->layer = fs->img->layers[w->layer].dup_of;
		if (fs->memo) {
			unsigned char *buf;
			size_t n;

			if (fs->memo->get(fs->memo->ud, fs->img->layers[w->layer].digest, w->path, &buf, &n) == 1) {
				w->done = true;
				if (lp_binfo_read_mem(buf, n, &w->bi) < 0)
					w->bi = NULL;
				free(buf);
				continue;
			}
		}
		if (w->layer + 1 > top)
			top = w->layer + 1;
	}
	if (top) {
		fs->img->n_layers = top;
		r = lp_image_layers(fs->img, read_many, q);
		fs->img->n_layers = saved;
	}
	return r < 0 ? r : 0;
}

/* ---- the check ---- */

struct ctx {
	struct lp_rootfs *fs;
	struct lp_report *rep;
	enum lp_severity sev;
	const cJSON *env;
	enum lp_arch arch;	/* the image's, when amd64 or arm64 */
	const char *arch_name;
	bool failed;
};

__attribute__((format(printf, 3, 4)))
static int bad(struct ctx *c, const char *path, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->failed = true;
	return lp_report_finding(c->rep, c->sev, "image-not-runnable", path, "%s", msg);
}

static const char *env_get(const cJSON *env, const char *key)
{
	const cJSON *e;
	size_t k = strlen(key);

	cJSON_ArrayForEach(e, env)
		if (cJSON_IsString(e) && strncmp(e->valuestring, key, k) == 0 && e->valuestring[k] == '=')
			return e->valuestring + k + 1;
	return NULL;
}

static const char *why(int r)
{
	return r == -ELOOP ? "behind too many levels of symbolic links" :
	       r == -ENOTDIR ? "below a path component that is not a directory" :
	       r == -EISDIR ? "a directory" :
	       r == -ENAMETOOLONG ? "too long a path" : "not in the image";
}

/* Is the resolved file a regular file with an execute bit? Records why not. */
static int want_exec(struct ctx *c, const char *what, const char *name, const struct hit *h, int rr)
{
	if (rr < 0)
		return bad(c, name, "%s is %s", what, why(rr)) < 0 ? -ENOMEM : 1;
	if (h->r->kind == LP_MEMBER_DIR)
		return bad(c, name, "%s is a directory", what) < 0 ? -ENOMEM : 1;
	if (h->r->kind != LP_MEMBER_FILE && h->r->kind != LP_MEMBER_HARDLINK)
		return bad(c, name, "%s is not a regular file", what) < 0 ? -ENOMEM : 1;
	if (!(h->r->mode & 0111))
		return bad(c, name, "%s (/%s) is not executable (mode %04o)", what, h->path,
			   (unsigned)(h->r->mode & 07777)) < 0 ? -ENOMEM : 1;
	return 0;
}

/*
 * Where ld.so looks: the needing object's RUNPATH, else its RPATH and the
 * program's ($ORIGIN: the directory of the object that names it),
 * LD_LIBRARY_PATH, the task root's lib/, the system directories. 1 with *out
 * filled when found.
 */
static int find_lib(struct ctx *c, const char *lib, const char *l1, const char *o1, const char *l2,
		    const char *o2, struct hit *out)
{
	static const char *const sys[] = {
		"/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib",
		"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu",
		"/usr/lib/aarch64-linux-gnu", "/usr/local/lib64", NULL,
	};
	const char *lists[3] = { l1, l2, env_get(c->env, "LD_LIBRARY_PATH") };
	const char *origins[3] = { o1, o2, "" };
	const char *task = env_get(c->env, "LAMBDA_TASK_ROOT");
	char dir[4096], path[8192];

	if (strchr(lib, '/')) {
		/* A DT_NEEDED with a slash is a path, no search. */
		snprintf(path, sizeof(path), "%s%s", lib[0] == '/' ? "" : "/", lib);
		return fs_resolve(c->fs, path, out) == 0 && out->r->kind != LP_MEMBER_DIR;
	}
	for (size_t li = 0; li < 3; li++) {
		const char *s = lists[li];

		while (s && *s) {
			size_t n = strcspn(s, ":");

			if (n && n < sizeof(dir)) {
				memcpy(dir, s, n);
				dir[n] = '\0';
				if (strncmp(dir, "$ORIGIN", 7) == 0 || strncmp(dir, "${ORIGIN}", 9) == 0)
					snprintf(path, sizeof(path), "/%s%s/%s", origins[li] ? origins[li] : "",
						 dir + (dir[1] == '{' ? 9 : 7), lib);
				else
					snprintf(path, sizeof(path), "%s/%s", dir, lib);
				if (path[0] == '/' && fs_resolve(c->fs, path, out) == 0 && out->r->kind != LP_MEMBER_DIR)
					return 1;
			}
			s += n + (s[n] == ':');
		}
	}
	snprintf(path, sizeof(path), "%s/lib/%s", task && task[0] == '/' ? task : "/var/task", lib);
	if (fs_resolve(c->fs, path, out) == 0 && out->r->kind != LP_MEMBER_DIR)
		return 1;
	for (size_t i = 0; sys[i]; i++) {
		snprintf(path, sizeof(path), "%s/%s", sys[i], lib);
		if (fs_resolve(c->fs, path, out) == 0 && out->r->kind != LP_MEMBER_DIR)
			return 1;
	}
	return 0;
}

#define SEARCHED "the image's library paths (RUNPATH/RPATH, LD_LIBRARY_PATH, the task root's lib/, " \
	"/lib, /lib64, /usr/lib, /usr/lib64, their arch directories)"
#define MAX_LIBS 256	/* libraries of one program's closure looked at */

/* The directory of a resolved path, for $ORIGIN. */
static void dir_of(char *dst, size_t cap, const char *path)
{
	snprintf(dst, cap, "%s", path);
	if (strrchr(dst, '/'))
		*strrchr(dst, '/') = '\0';
	else
		dst[0] = '\0';
}

/* One library of the closure. */
struct lib {
	char *path;		/* "/path", resolved */
	struct lp_binfo *bi;
};

/* "a (needed by b)" appended to a list while it fits. */
static void append(char *buf, size_t cap, size_t *len, const char *a, const char *b)
{
	char one[1200];

	snprintf(one, sizeof(one), "%s (needed by %s)", a, b);
	if (*len + strlen(one) + 8 < cap)
		*len += (size_t)snprintf(buf + *len, cap - *len, "%s%s", *len ? ", " : "", one);
}

/*
 * The libraries' own DT_NEEDED, transitively: each library once (by its
 * resolved path), at most MAX_LIBS, each round's libraries read in one pass
 * over their layers. A library missing is named with the one that needs it.
 */
static int check_closure(struct ctx *c, const char *name, const struct lp_binfo *pbi, const char *porigin,
			 struct lib *libs, size_t nlibs)
{
	const char *loader = pbi->interp && strrchr(pbi->interp, '/') ? strrchr(pbi->interp, '/') + 1 : pbi->interp;
	const char *prpath = pbi->runpath ? NULL : pbi->rpath;
	char missing[1536], seen_names[1536];
	size_t done = 0, mlen = 0, nmiss = 0, slen = 0;
	int r = 0;

	missing[0] = seen_names[0] = '\0';
	while (done < nlibs) {
		struct libreqs q = { .n = nlibs - done };
		size_t from = done;

		q.v = calloc(q.n, sizeof(*q.v));
		if (!q.v)
			return -ENOMEM;
		for (size_t j = 0; j < q.n; j++) {
			struct hit h;

			/* Resolved before: the path is a file's, no links left to follow. */
			if (fs_resolve(c->fs, libs[from + j].path, &h) < 0) {
				q.v[j].done = true;
				continue;
			}
			q.v[j].layer = h.layer;
			q.v[j].path = h.r->kind == LP_MEMBER_HARDLINK ? h.r->target : h.r->path;
			q.v[j].src = h.r->src;
		}
		r = fs_read_many(c->fs, &q);
		for (size_t j = 0; j < q.n; j++)
			libs[from + j].bi = q.v[j].bi;
		free(q.v);
		if (r < 0)
			return r;
		done = nlibs;
		for (size_t k = from; k < done; k++) {
			const struct lp_binfo *bi = libs[k].bi;
			char origin[4096];

			if (!bi || bi->fmt != LP_BIN_ELF)
				continue;
			dir_of(origin, sizeof(origin), libs[k].path + 1);
			for (size_t i = 0; i < bi->n_needed; i++) {
				const char *need = bi->needed[i];
				struct hit h;
				char rp[4097];
				bool dup = false;

				/* The loader is loaded already; ld.so matches it by name. */
				if (loader && strcmp(need, loader) == 0)
					continue;
				/* ld.so: an object with a RUNPATH ignores every RPATH, its own and its loaders'. */
				if (!find_lib(c, need, bi->runpath ? bi->runpath : bi->rpath, origin,
					      bi->runpath ? NULL : prpath, porigin, &h)) {
					char key[300];

					snprintf(key, sizeof(key), "|%s|", need);
					if (strstr(seen_names, key))
						continue;
					if (slen + strlen(key) < sizeof(seen_names))
						slen += (size_t)snprintf(seen_names + slen, sizeof(seen_names) - slen, "%s", key);
					nmiss++;
					append(missing, sizeof(missing), &mlen, need, libs[k].path);
					continue;
				}
				snprintf(rp, sizeof(rp), "/%s", h.path);
				for (size_t j = 0; j < nlibs && !dup; j++)
					dup = strcmp(libs[j].path, rp) == 0;
				if (dup)
					continue;
				if (nlibs >= MAX_LIBS)
					continue;
				if (!(libs[nlibs].path = strdup(rp)))
					return -ENOMEM;
				nlibs++;
			}
		}
	}
	r = 0;
	if (nmiss)
		r = bad(c, name, "a library it loads needs %s, not found in " SEARCHED, missing);
	/* The caller frees libs[0..nlibs). */
	for (size_t k = 0; k < nlibs; k++) {
		lp_binfo_free(libs[k].bi);
		libs[k].bi = NULL;
	}
	return r < 0 ? r : (int)nlibs;
}

/* An ELF program: its machine the image's, its loader and its libraries (all of them) in the image. */
static int check_elf(struct ctx *c, const char *name, const struct hit *h, const unsigned char *buf, size_t n)
{
	struct lp_binfo *bi = NULL;
	char missing[1024], origin[4096];
	size_t nmiss = 0, len = 0, nlibs = 0;
	struct lib *libs = NULL;
	int r = lp_binfo_read_mem(buf, n, &bi);

	missing[0] = '\0';
	if (r < 0 || bi->fmt != LP_BIN_ELF) {
		lp_binfo_free(bi);
		return bad(c, name, "the program (/%s) is neither an ELF executable nor a #! script", h->path) < 0 ? -ENOMEM : 0;
	}
	if (bi->unloadable[0]) {
		r = bad(c, name, "the program (/%s) cannot be loaded: %s", h->path, bi->unloadable);
		goto out;
	}
	if (c->arch != LP_ARCH_UNKNOWN && (bi->arch == LP_ARCH_X86_64 || bi->arch == LP_ARCH_ARM64) &&
	    bi->arch != c->arch) {
		/* The kernel refuses it before any loader or library matters. */
		r = bad(c, name, "the program (/%s) is %s machine code in an %s image: it would fail with "
			"\"exec format error\"", h->path, lp_arch_name(bi->arch), c->arch_name);
		goto out;
	}
	if (bi->interp) {
		struct hit ih;
		int rr = fs_resolve(c->fs, bi->interp, &ih);

		if (rr < 0 || ih.r->kind == LP_MEMBER_DIR) {
			r = bad(c, name, "dynamically linked, but its loader %s is %s", bi->interp, rr < 0 ? "not in the image" : "a directory");
			if (r < 0)
				goto out;
		}
	}
	dir_of(origin, sizeof(origin), h->path);
	libs = calloc(MAX_LIBS, sizeof(*libs));
	if (!libs) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < bi->n_needed; i++) {
		struct hit lh;
		char rp[4097];
		bool dup = false;

		if (find_lib(c, bi->needed[i], bi->runpath ? bi->runpath : bi->rpath, origin, NULL, NULL, &lh)) {
			snprintf(rp, sizeof(rp), "/%s", lh.path);
			for (size_t j = 0; j < nlibs && !dup; j++)
				dup = strcmp(libs[j].path, rp) == 0;
			if (dup || nlibs >= MAX_LIBS)
				continue;
			if (!(libs[nlibs].path = strdup(rp))) {
				r = -ENOMEM;
				goto out;
			}
			nlibs++;
			continue;
		}
		nmiss++;
		if (len + strlen(bi->needed[i]) + 8 < sizeof(missing))
			len += (size_t)snprintf(missing + len, sizeof(missing) - len, "%s%s", len ? ", " : "",
						 bi->needed[i]);
	}
	r = 0;
	if (nmiss)
		r = bad(c, name, "needs %s, not found in the image's library paths "
			"(/lib, /lib64, /usr/lib, /usr/lib64, their arch directories, LD_LIBRARY_PATH, the task root's lib/)",
			missing);
	if (r >= 0 && nlibs)
		r = check_closure(c, name, bi, origin, libs, nlibs);
out:
	if (libs)
		for (size_t k = 0; k < MAX_LIBS && libs[k].path; k++) {
			free(libs[k].path);
			lp_binfo_free(libs[k].bi);
		}
	free(libs);
	lp_binfo_free(bi);
	return r < 0 ? r : 0;
}

/* The program a container starts: there, executable, and whatever it needs to start. */
static int check_program(struct ctx *c, const char *argv0, const char *workdir)
{
	char path[8192];
	struct hit h;
	unsigned char *buf = NULL;
	char who[4096];
	size_t n = 0;
	int rr, r;

	if (argv0[0] == '/') {
		rr = fs_resolve(c->fs, argv0, &h);
	} else if (strchr(argv0, '/')) {
		snprintf(path, sizeof(path), "%s/%s", workdir && *workdir ? workdir : "", argv0);
		rr = fs_resolve(c->fs, path, &h);
	} else {
		/* As runc does: the config's PATH, else the usual one. */
		const char *s = env_get(c->env, "PATH");

		if (!s)
			s = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
		rr = -ENOENT;
		while (*s && rr < 0) {
			size_t k = strcspn(s, ":");

			snprintf(path, sizeof(path), "%.*s/%s", (int)k, s, argv0);
			if (path[0] == '/') {
				rr = fs_resolve(c->fs, path, &h);
				if (rr == 0 && (h.r->kind == LP_MEMBER_DIR || !(h.r->mode & 0111)))
					rr = -ENOENT;
			}
			s += k + (s[k] == ':');
		}
		if (rr < 0)
			return bad(c, argv0, "the entry program is not found on the image's PATH (%s)", env_get(c->env, "PATH") ? env_get(c->env, "PATH") : "default PATH") < 0 ?
				-ENOMEM : 0;
	}
	r = want_exec(c, "the entry program", argv0, &h, rr);
	if (r)
		return r < 0 ? r : 0;
	for (unsigned depth = 0;; depth++) {
		/* A script: the kernel runs its interpreter, which must be there too, and may be a script itself. */
		char interp[4096];
		size_t i = 2, k = 0;
		struct hit ih;

		r = fs_read(c->fs, &h, &buf, &n);
		if (r < 0)
			return r;
		if (n < 2 || buf[0] != '#' || buf[1] != '!') {
			/* An interpreter that is neither ELF nor a script: binfmt_misc's, not ours to judge. */
			if (depth && (n < 4 || memcmp(buf, "\177ELF", 4) != 0))
				r = 0;
			else
				r = check_elf(c, depth ? who : argv0, &h, buf, n);
			free(buf);
			return r;
		}
		if (depth == MAX_SCRIPTS) {
			free(buf);
			r = bad(c, argv0, "its #! interpreters nest more than %d deep (the kernel gives up: "
				"\"too many levels of symbolic links\")", MAX_SCRIPTS);
			return r < 0 ? r : 0;
		}
		while (i < n && (buf[i] == ' ' || buf[i] == '\t'))
			i++;
		while (i < n && k + 1 < sizeof(interp) && buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\n')
			interp[k++] = (char)buf[i++];
		interp[k] = '\0';
		free(buf);
		buf = NULL;
		if (interp[0] != '/') {
			r = depth ? bad(c, argv0, "the #! interpreter %s names no absolute interpreter after #!", who) :
				    bad(c, argv0, "the entry script names no absolute interpreter after #!");
			return r < 0 ? r : 0;
		}
		rr = fs_resolve(c->fs, interp, &ih);
		snprintf(path, sizeof(path), "the #! interpreter of %s", depth ? who : argv0);
		r = want_exec(c, path, interp, &ih, rr);
		if (r)
			return r < 0 ? r : 0;
		h = ih;
		snprintf(who, sizeof(who), "%s", interp);
	}
}

int lp_image_runnable(struct lp_image *img, struct lp_rootfs *given, size_t n_layers,
		      const struct lp_rootfs_add *top, size_t n_top, const struct lp_runtime *rt,
		      enum lp_severity sev, struct lp_report *rep)
{
	struct ctx c = { .rep = rep, .sev = sev };
	const cJSON *run = cJSON_GetObjectItemCaseSensitive(img->config, "config");
	const cJSON *ep = cJSON_GetObjectItemCaseSensitive(run, "Entrypoint");
	const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(run, "Cmd");
	const cJSON *wd = cJSON_GetObjectItemCaseSensitive(run, "WorkingDir");
	const cJSON *argv0 = NULL, *a;
	int r;

	c.env = cJSON_GetObjectItemCaseSensitive(run, "Env");
	a = cJSON_GetObjectItemCaseSensitive(img->config, "architecture");
	if (cJSON_IsString(a)) {
		c.arch = lp_arch_parse(a->valuestring);
		c.arch_name = a->valuestring;
	}
	if (cJSON_IsArray(ep) && cJSON_GetArraySize(ep) > 0)
		argv0 = cJSON_GetArrayItem(ep, 0);
	else if (cJSON_IsArray(cmd) && cJSON_GetArraySize(cmd) > 0)
		argv0 = cJSON_GetArrayItem(cmd, 0);
	if (argv0 && (!cJSON_IsString(argv0) || !argv0->valuestring[0])) {
		r = bad(&c, NULL, "the image's Entrypoint/Cmd starts with an empty or non-string program");
		return r < 0 ? r : 1;
	}
	if (given) {
		if (given->finished || given->n_img > img->n_layers)
			return -EINVAL;
		c.fs = given;
	} else {
		r = lp_rootfs_new(n_layers < img->n_layers ? n_layers : img->n_layers, &c.fs);
		if (r < 0)
			return r;
		r = fs_read_layers(c.fs, img);
		if (r < 0)
			goto out;
	}
	r = fs_finish(c.fs, img, top, n_top);
	if (r < 0)
		goto out;
	if (!argv0) {
		r = bad(&c, NULL, "the image has no Entrypoint and no Cmd: nothing to start "
			"(give --entrypoint, or a base image that has one)");
		if (r < 0)
			goto out;
	} else {
		r = check_program(&c, argv0->valuestring, cJSON_IsString(wd) ? wd->valuestring : NULL);
		if (r < 0)
			goto out;
	}
	if (rt && strcmp(rt->family, "provided") == 0) {
		static const char *const where[] = { "/var/task/bootstrap", "/var/runtime/bootstrap" };
		bool ok = false;

		for (size_t i = 0; i < 2 && !ok; i++) {
			struct hit h;

			ok = fs_resolve(c.fs, where[i], &h) == 0 && h.r->kind != LP_MEMBER_DIR && (h.r->mode & 0111);
		}
		if (!ok && (r = bad(&c, NULL, "%s: no executable bootstrap in /var/task or /var/runtime", rt->name)) < 0)
			goto out;
	}
	r = c.failed ? 1 : 0;
out:
	if (!given)
		lp_rootfs_free(c.fs);
	return r;
}
