/* SPDX-License-Identifier: MIT */
/*
 * analyze --diff: two final file systems compared file by file on content
 * digests (an edit that keeps the size is a change), with renames (same
 * bytes, new path) and permission changes, then rolled up by package. Both
 * sides are first put on the same root: an image compared with a zip or a
 * directory is cut to its task root, so a function and its own image
 * compare equal.
 */
#include "analyze/internal.h"
#include "core/err.h"
#include "core/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One side, cut to the compared root. */
struct side {
	const struct lp_analysis *a;
	const char *root;	/* "" or "var/task" */
	size_t rootlen;		/* with its '/' */
	size_t *idx;		/* compared non-directory entries, in compared-path order */
	size_t *off;		/* where each one's compared path starts (past the task root) */
	size_t n;
	char **group;		/* package key per entry (ana_entry_groups) */
	const char **gkind;
	uint8_t (*dg)[32];	/* digest per compared file, computed on demand */
	uint8_t *have;
	uint64_t bytes;
	size_t skipped;
	uint64_t skipped_bytes;
};

static const char *rel(const struct side *s, size_t i)
{
	return s->a->entries.v[s->idx[i]].path + s->off[i];
}

static const struct lp_entry *ent(const struct side *s, size_t i)
{
	return &s->a->entries.v[s->idx[i]];
}

/* The digest of a compared file: from the scan, or read now (a directory scan hashes only possible twins). */
static int digest(struct side *s, size_t i, const uint8_t **ret)
{
	const struct lp_entry *e = ent(s, i);
	int r;

	if (e->flags & LP_F_HAS_DIGEST) {
		*ret = e->digest;
		return 0;
	}
	if (!s->have[i]) {
		if (!e->src)
			return lp_fail(-EIO, e->path, "no digest and no file to read it from");
		if ((r = lp_sha256_file(e->src, s->dg[i])) < 0)
			return lp_fail(r, e->src, "cannot read: %s", strerror(-r));
		s->have[i] = 1;
	}
	*ret = s->dg[i];
	return 0;
}

/*
 * The mode the file gets in a zip or image: a directory's file is 0755 with
 * an x bit, as an ELF program or as a #! script (what pack and container
 * write), so a directory and its own artifact agree. Archive members keep
 * the mode they were stored with.
 */
static uint32_t packed_mode(const struct lp_entry *e)
{
	char head[2];
	int fd;
	bool script = false;

	if (e->kind != LP_FILE || !e->src || (e->mode & 0111))
		return e->mode;
	if (e->bin && e->bin->is_pie_or_exec)
		return 0755;
	fd = open(e->src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		script = read(fd, head, 2) == 2 && head[0] == '#' && head[1] == '!';
		close(fd);
	}
	return script ? 0755 : e->mode;
}

static int same_bytes(struct side *o, size_t i, struct side *n, size_t j, bool *ret)
{
	const struct lp_entry *a = ent(o, i), *b = ent(n, j);
	const uint8_t *da, *db;
	int r;

	*ret = false;
	if (a->kind != b->kind || a->size != b->size)
		return 0;
	if (a->kind == LP_SYMLINK) {
		*ret = a->target && b->target && !strcmp(a->target, b->target);
		return 0;
	}
	if ((r = digest(o, i, &da)) < 0 || (r = digest(n, j, &db)) < 0)
		return r;
	*ret = !memcmp(da, db, 32);
	return 0;
}

struct pos {
	const char *rel;
	size_t idx, off;
};

static int cmp_pos(const void *x, const void *y)
{
	return strcmp(((const struct pos *)x)->rel, ((const struct pos *)y)->rel);
}

/* /opt and the task root's content, cut, interleave: sort by the compared path. */
static int sort_side(struct side *s)
{
	struct pos *p = calloc(s->n + 1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	for (size_t i = 0; i < s->n; i++)
		p[i] = (struct pos){ s->a->entries.v[s->idx[i]].path + s->off[i], s->idx[i], s->off[i] };
	qsort(p, s->n, sizeof(*p), cmp_pos);
	for (size_t i = 0; i < s->n; i++) {
		s->idx[i] = p[i].idx;
		s->off[i] = p[i].off;
	}
	free(p);
	return 0;
}

static void side_free(struct side *s)
{
	for (size_t i = 0; s->group && i < s->a->entries.n; i++)
		free(s->group[i]);
	free(s->group);
	free(s->gkind);
	free(s->idx);
	free(s->off);
	free(s->dg);
	free(s->have);
}

static int side_init(struct side *s, const struct lp_analysis *a, bool cut)
{
	const struct lp_entries *l = &a->entries;

	memset(s, 0, sizeof(*s));
	s->a = a;
	s->root = cut ? (a->img_task_root ? a->img_task_root : "var/task") : "";
	s->rootlen = *s->root ? strlen(s->root) + 1 : 0;
	s->idx = calloc(l->n + 1, sizeof(*s->idx));
	s->off = calloc(l->n + 1, sizeof(*s->off));
	s->group = calloc(l->n + 1, sizeof(*s->group));
	s->gkind = calloc(l->n + 1, sizeof(*s->gkind));
	s->dg = calloc(l->n + 1, sizeof(*s->dg));
	s->have = calloc(l->n + 1, 1);
	if (!s->idx || !s->off || !s->group || !s->gkind || !s->dg || !s->have)
		return -ENOMEM;
	for (size_t i = 0; i < l->n; i++) {
		const struct lp_entry *e = &l->v[i];

		if (e->kind == LP_DIR || (e->flags & LP_F_REMOVED))
			continue;
		if (!s->rootlen || (!strncmp(e->path, s->root, s->rootlen - 1) && e->path[s->rootlen - 1] == '/')) {
			s->off[s->n] = s->rootlen;
		} else if (!strncmp(e->path, "opt/", 4)) {
			/* container puts a function's opt/ at /opt: part of the function, as in analyze's savings. */
			s->off[s->n] = 0;
		} else {
			s->skipped++;
			s->skipped_bytes += e->size;
			continue;
		}
		s->idx[s->n++] = i;
		s->bytes += e->size;
	}
	if (s->rootlen && sort_side(s) < 0)
		return -ENOMEM;
	return ana_entry_groups(a, s->group, s->gkind);
}

/* ---- the deltas ---------------------------------------------------------- */

struct dlist {
	struct lp_ana_delta *v;
	size_t n, cap;
};

static struct lp_ana_delta *dpush(struct dlist *l, const char *name, const char *status)
{
	struct lp_ana_delta *d;

	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 64;
		struct lp_ana_delta *nv = realloc(l->v, nc * sizeof(*nv));

		if (!nv)
			return NULL;
		l->v = nv;
		l->cap = nc;
	}
	d = &l->v[l->n];
	memset(d, 0, sizeof(*d));
	if (!(d->name = strdup(name)))
		return NULL;
	d->status = status;
	l->n++;
	return d;
}

static void dlist_free(struct dlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].old_name);
	}
	free(l->v);
}

static int cmp_delta(const void *x, const void *y)
{
	const struct lp_ana_delta *a = x, *b = y;
	uint64_t da = a->delta < 0 ? (uint64_t)(-a->delta) : (uint64_t)a->delta;
	uint64_t db = b->delta < 0 ? (uint64_t)(-b->delta) : (uint64_t)b->delta;

	if (da != db)
		return da < db ? 1 : -1;
	return strcmp(a->name, b->name);
}

/* Rename candidates: removed and added regular files, by size. */
struct cand {
	size_t i;		/* index in its side */
	uint64_t size;		/* UINT64_MAX: not a regular file */
	size_t mate;		/* added, renamed: index of the removed file in its side */
	bool used;
};

static int cmp_cand(const void *x, const void *y)
{
	const struct cand *a = x, *b = y;

	if (a->size != b->size)
		return a->size < b->size ? -1 : 1;
	return a->i < b->i ? -1 : a->i > b->i;
}

/* ---- packages ------------------------------------------------------------ */

struct pkg {
	char *name;		/* borrowed key (normalized) */
	const char *kind;
	uint64_t old_bytes, new_bytes;
	bool in_old, in_new, touched;
};

struct pkgs {
	struct pkg *v;
	size_t n, cap;
	struct ana_map map;
	struct lp_strv names;	/* owns the normalized keys */
};

/* The package of compared file i, with the task root cut from its key. */
static struct pkg *pkg_of(struct pkgs *p, const struct side *s, size_t i)
{
	const char *key = s->group[s->idx[i]], *r = rel(s, i), *slash;
	char top[PATH_MAX];
	size_t *pi;

	if (!strcmp(s->gkind[s->idx[i]], "top")) {
		/* The function's own folders: the first component under the compared root. */
		slash = strchr(r, '/');
		snprintf(top, sizeof(top), "%.*s", (int)(slash ? (size_t)(slash - r) : strlen(r)), r);
		key = top;
	} else if (s->rootlen && !strncmp(key, s->root, s->rootlen - 1) && key[s->rootlen - 1] == '/') {
		key += s->rootlen;
	}
	pi = ana_map_get(&p->map, key);
	if (pi)
		return &p->v[*pi];
	if (p->n == p->cap) {
		size_t nc = p->cap ? p->cap * 2 : 64;
		struct pkg *nv = realloc(p->v, nc * sizeof(*nv));

		if (!nv)
			return NULL;
		p->v = nv;
		p->cap = nc;
	}
	if (lp_strv_push(&p->names, key) < 0)
		return NULL;
	memset(&p->v[p->n], 0, sizeof(p->v[0]));
	p->v[p->n].name = p->names.v[p->names.n - 1];
	p->v[p->n].kind = s->gkind[s->idx[i]];
	if (ana_map_put(&p->map, p->v[p->n].name, p->n) < 0)
		return NULL;
	return &p->v[p->n++];
}

static int pkg_deltas(struct pkgs *p, struct dlist *out)
{
	for (size_t i = 0; i < p->n; i++) {
		const struct pkg *k = &p->v[i];
		struct lp_ana_delta *d;
		const char *st;

		if (!k->in_old)
			st = "added";
		else if (!k->in_new)
			st = "removed";
		else if (k->new_bytes > k->old_bytes)
			st = "grew";
		else if (k->new_bytes < k->old_bytes)
			st = "shrank";
		else if (k->touched)
			st = "changed";
		else
			continue;
		if (!(d = dpush(out, k->name, st)))
			return -ENOMEM;
		d->kind = k->kind;
		d->old_bytes = k->old_bytes;
		d->new_bytes = k->new_bytes;
		d->delta = (int64_t)k->new_bytes - (int64_t)k->old_bytes;
	}
	return 0;
}

static const char *file_kind(const struct lp_entry *e)
{
	return e->kind == LP_SYMLINK ? "symlink" : "file";
}

int lp_analyze_diff(const struct lp_analysis *old, const struct lp_analysis *new_, struct lp_ana_diff *ret)
{
	/* An image against a zip or a directory: compare the function, not the base image. */
	bool cut = old->is_image != new_->is_image;
	struct side o, n;
	struct dlist files = { 0 }, packs = { 0 };
	struct pkgs p = { 0 };
	struct cand *rm = NULL, *ad = NULL;
	size_t nrm = 0, nad = 0, i = 0, j = 0;
	int r;

	memset(ret, 0, sizeof(*ret));
	r = side_init(&o, old, cut && old->is_image);
	if (r == 0)
		r = side_init(&n, new_, cut && new_->is_image);
	else
		memset(&n, 0, sizeof(n));
	if (r == 0)
		r = ana_map_init(&p.map, 256);
	if (r < 0)
		goto out;
	rm = calloc(o.n + 1, sizeof(*rm));
	ad = calloc(n.n + 1, sizeof(*ad));
	if (!rm || !ad) {
		r = -ENOMEM;
		goto out;
	}
	/* Both lists are in path order (a common prefix cut keeps it): one merge walk. */
	while (r == 0 && (i < o.n || j < n.n)) {
		int c = i == o.n ? 1 : j == n.n ? -1 : strcmp(rel(&o, i), rel(&n, j));
		struct pkg *pk;

		if (c < 0) {
			const struct lp_entry *e = ent(&o, i);

			if (!(pk = pkg_of(&p, &o, i))) {
				r = -ENOMEM;
				break;
			}
			pk->in_old = true;
			pk->old_bytes += e->size;
			rm[nrm++] = (struct cand){ .i = i, .size = e->kind == LP_FILE ? e->size : UINT64_MAX };
			i++;
		} else if (c > 0) {
			const struct lp_entry *e = ent(&n, j);

			if (!(pk = pkg_of(&p, &n, j))) {
				r = -ENOMEM;
				break;
			}
			pk->in_new = true;
			pk->new_bytes += e->size;
			ad[nad++] = (struct cand){ .i = j, .size = e->kind == LP_FILE ? e->size : UINT64_MAX };
			j++;
		} else {
			const struct lp_entry *a = ent(&o, i), *b = ent(&n, j);
			struct pkg *po = pkg_of(&p, &o, i), *pn = po ? pkg_of(&p, &n, j) : NULL;
			bool same;
			const char *st;
			struct lp_ana_delta *d;

			if (!pn || (r = same_bytes(&o, i, &n, j, &same)) < 0) {
				r = r < 0 ? r : -ENOMEM;
				break;
			}
			po->in_old = pn->in_new = true;
			po->old_bytes += a->size;
			pn->new_bytes += b->size;
			uint32_t am = a->mode, bm = b->mode;

			if (am != bm) {
				am = packed_mode(a);
				bm = packed_mode(b);
			}
			if (same && am == bm) {
				i++, j++;
				continue;
			}
			st = !same ? (b->size > a->size ? "grew" : b->size < a->size ? "shrank" : "changed") : "mode";
			if (!(d = dpush(&files, rel(&n, j), st))) {
				r = -ENOMEM;
				break;
			}
			d->kind = file_kind(b);
			d->old_bytes = a->size;
			d->new_bytes = b->size;
			d->delta = (int64_t)b->size - (int64_t)a->size;
			d->old_mode = am;
			d->new_mode = bm;
			po->touched = pn->touched = true;
			if (same)
				ret->n_mode++;
			else
				ret->n_changed++;
			i++, j++;
		}
	}
	if (r < 0)
		goto out;
	/* Renames: a removed and an added file with the same bytes (pairs made once). */
	if (nrm > 1)
		qsort(rm, nrm, sizeof(*rm), cmp_cand);
	for (size_t k = 0; k < nad && r == 0; k++) {
		size_t lo = 0, hi = nrm;

		/* Empty files are all alike: a new empty file is not a rename. */
		if (ad[k].size == UINT64_MAX || !ad[k].size)
			continue;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;

			if (rm[mid].size < ad[k].size)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (size_t q = lo; q < nrm && rm[q].size == ad[k].size && r == 0; q++) {
			bool same;

			if (rm[q].used || (r = same_bytes(&o, rm[q].i, &n, ad[k].i, &same)) < 0 || !same)
				continue;
			rm[q].used = ad[k].used = true;
			ad[k].mate = rm[q].i;
			break;
		}
	}
	for (size_t k = 0; k < nad && r == 0; k++) {
		const struct lp_entry *b = ent(&n, ad[k].i);
		struct lp_ana_delta *d;

		if (ad[k].used)
			continue;
		if (!(d = dpush(&files, rel(&n, ad[k].i), "added"))) {
			r = -ENOMEM;
			break;
		}
		d->kind = file_kind(b);
		d->new_bytes = b->size;
		d->delta = (int64_t)b->size;
		ret->n_added++;
	}
	for (size_t k = 0; k < nrm && r == 0; k++) {
		const struct lp_entry *a = ent(&o, rm[k].i);
		struct lp_ana_delta *d;

		if (rm[k].used)
			continue;
		if (!(d = dpush(&files, rel(&o, rm[k].i), "removed"))) {
			r = -ENOMEM;
			break;
		}
		d->kind = file_kind(a);
		d->old_bytes = a->size;
		d->delta = -(int64_t)a->size;
		ret->n_removed++;
	}
	/* The pairs: same bytes under a new path; both packages count as touched. */
	for (size_t k = 0; k < nad && r == 0; k++) {
		const struct lp_entry *a, *b = ent(&n, ad[k].i);
		struct lp_ana_delta *d;
		struct pkg *po, *pn;

		if (!ad[k].used)
			continue;
		a = ent(&o, ad[k].mate);
		if (!(d = dpush(&files, rel(&n, ad[k].i), "renamed")) || !(d->old_name = strdup(rel(&o, ad[k].mate))) ||
		    !(po = pkg_of(&p, &o, ad[k].mate)) || !(pn = pkg_of(&p, &n, ad[k].i))) {
			r = -ENOMEM;
			break;
		}
		d->kind = file_kind(b);
		d->old_bytes = a->size;
		d->new_bytes = b->size;
		d->old_mode = a->mode;
		d->new_mode = b->mode;
		po->touched = pn->touched = true;
		ret->n_renamed++;
	}
	if (r == 0)
		r = pkg_deltas(&p, &packs);
	if (r < 0)
		goto out;
	/* Nothing changed leaves the lists NULL, which qsort may not be given. */
	if (files.n > 1)
		qsort(files.v, files.n, sizeof(*files.v), cmp_delta);
	if (packs.n > 1)
		qsort(packs.v, packs.n, sizeof(*packs.v), cmp_delta);
	ret->files = files.v;
	ret->n_files = files.n;
	ret->packages = packs.v;
	ret->n_packages = packs.n;
	files = (struct dlist){ 0 };
	packs = (struct dlist){ 0 };
	ret->old_unzipped = o.bytes;
	ret->new_unzipped = n.bytes;
	ret->total_delta = (int64_t)n.bytes - (int64_t)o.bytes;
	ret->old_root = o.root;
	ret->new_root = n.root;
	ret->old_skipped = o.skipped;
	ret->new_skipped = n.skipped;
	ret->old_skipped_bytes = o.skipped_bytes;
	ret->new_skipped_bytes = n.skipped_bytes;
	/* Zipped: two zips (or directory estimates), or two images' compressed layers. */
	if (!old->is_image && !new_->is_image) {
		ret->zipped_known = true;
		ret->old_zipped = old->zipped;
		ret->new_zipped = new_->zipped;
		ret->zipped_estimated = old->zipped_estimated || new_->zipped_estimated;
	} else if (old->is_image && new_->is_image) {
		ret->zipped_known = true;
		ret->old_zipped = old->img_compressed;
		ret->new_zipped = new_->img_compressed;
	}
	ret->zipped_delta = (int64_t)ret->new_zipped - (int64_t)ret->old_zipped;
out:
	dlist_free(&files);
	dlist_free(&packs);
	free(rm);
	free(ad);
	free(p.v);
	ana_map_free(&p.map);
	lp_strv_free(&p.names);
	side_free(&o);
	side_free(&n);
	if (r < 0)
		lp_ana_diff_free(ret);
	return r;
}

void lp_ana_diff_free(struct lp_ana_diff *d)
{
	for (size_t i = 0; i < d->n_packages; i++) {
		free(d->packages[i].name);
		free(d->packages[i].old_name);
	}
	for (size_t i = 0; i < d->n_files; i++) {
		free(d->files[i].name);
		free(d->files[i].old_name);
	}
	free(d->packages);
	free(d->files);
	memset(d, 0, sizeof(*d));
}
