/* SPDX-License-Identifier: MIT */
#include "core/entry.h"
#include "core/elf.h"
#include "core/err.h"
#include "core/report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lp_entries_init(struct lp_entries *l)
{
	memset(l, 0, sizeof(*l));
}

void lp_entry_release(struct lp_entry *e)
{
	free(e->path);
	free(e->target);
	free(e->src);
	lp_binfo_free(e->bin);
	memset(e, 0, sizeof(*e));
}

void lp_entries_free(struct lp_entries *l)
{
	for (size_t i = 0; i < l->n; i++)
		lp_entry_release(&l->v[i]);
	free(l->v);
	lp_entries_init(l);
}

static int reserve(struct lp_entries *l, size_t need)
{
	size_t cap;
	struct lp_entry *v;

	if (need <= l->cap)
		return 0;
	cap = l->cap ? l->cap : 64;
	while (cap < need)
		cap *= 2;
	v = realloc(l->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	l->v = v;
	l->cap = cap;
	return 0;
}

struct lp_entry *lp_entries_push(struct lp_entries *l, const char *path, enum lp_kind kind)
{
	struct lp_entry *e;

	if (reserve(l, l->n + 1) < 0)
		return NULL;
	e = &l->v[l->n];
	memset(e, 0, sizeof(*e));
	e->path = strdup(path);
	if (!e->path)
		return NULL;
	e->kind = kind;
	e->mode = kind == LP_FILE ? 0644 : 0755;
	l->n++;
	return e;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct lp_entry *x = a, *y = b;
	int c = strcmp(x->path, y->path);

	/* Stable tie-break so duplicate resolution does not depend on qsort. */
	if (c == 0)
		c = (int)x->origin - (int)y->origin;
	return c;
}

void lp_entries_sort(struct lp_entries *l)
{
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(*l->v), cmp_entry);
}

struct lp_entry *lp_entries_find(const struct lp_entries *l, const char *path)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(l->v[mid].path, path);

		if (c == 0)
			return &l->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* "deps/ and build.zip", "inside build.zip", "inputs #1 and #2". */
static void collision_where(const struct lp_entry *a, const struct lp_entry *b, const char *const *names,
			    size_t n_names, char *buf, size_t len)
{
	const char *na = names && a->origin < n_names ? names[a->origin] : NULL;
	const char *nb = names && b->origin < n_names ? names[b->origin] : NULL;

	if (a->origin == b->origin && na)
		snprintf(buf, len, "twice inside %s", na);
	else if (a->origin == b->origin)
		snprintf(buf, len, "twice by input #%u", (unsigned)a->origin + 1);
	else if (na && nb)
		snprintf(buf, len, "by more than one source (%s and %s)", na, nb);
	else
		snprintf(buf, len, "by more than one source (inputs #%u and #%u)",
			 (unsigned)a->origin + 1, (unsigned)b->origin + 1);
}

int lp_entries_unique_named(struct lp_entries *l, bool overwrite, const char *const *names, size_t n_names,
			    struct lp_report *problems)
{
	size_t w = 0, i;
	int r = 0;

	for (i = 0; i < l->n; i++) {
		struct lp_entry *e = &l->v[i];

		if (w > 0 && strcmp(l->v[w - 1].path, e->path) == 0) {
			struct lp_entry *prev = &l->v[w - 1];
			char where[1024];

			if (prev->kind == LP_DIR && e->kind == LP_DIR) {
				/* Explicit beats implicit; otherwise keep the first. */
				if ((prev->flags & LP_F_IMPLICIT) && !(e->flags & LP_F_IMPLICIT)) {
					lp_entry_release(prev);
					*prev = *e;
				} else {
					lp_entry_release(e);
				}
				continue;
			}
			if (!overwrite || (names && prev->origin == e->origin)) {
				/* Within one input neither copy is "the later one": never pick silently. */
				collision_where(prev, e, names, n_names, where, sizeof(where));
				r = lp_report_problem(problems, 0, -LP_E_DUPLICATE, "duplicate-path", e->path,
						      "%s: given %s%s", e->path, where,
						      prev->origin == e->origin ? "" :
						      "; use --overwrite to let the later one win");
				if (r < 0)
					break;
				/* Reported: keep the first, drop this one. */
				lp_entry_release(e);
				continue;
			}
			/* Sorted by origin within a path, so e is the later source. */
			lp_entry_release(prev);
			*prev = *e;
			continue;
		}
		if (w != i)
			l->v[w] = *e;
		w++;
	}
	/*
	 * On a stop, slots w..i-1 are moved-from copies or released: close the
	 * gap so every owned pointer is held exactly once.
	 */
	if (i < l->n)
		memmove(&l->v[w], &l->v[i], (l->n - i) * sizeof(*l->v));
	l->n = w + (l->n - i);
	return r;
}

int lp_entries_unique(struct lp_entries *l, bool overwrite)
{
	return lp_entries_unique_named(l, overwrite, NULL, 0, NULL);
}

size_t lp_path_parent_len(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? (size_t)(s - path) : 0;
}

int lp_entries_add_parents(struct lp_entries *l)
{
	size_t n0 = l->n, plen = 0;
	const char *prev = NULL;	/* the last parent whose ancestors are all pushed */
	char *buf = NULL;
	int r = 0;

	/*
	 * Push every ancestor as an implicit directory, then let sort + unique
	 * merge them with the real ones (explicit directories win). Sorted
	 * input keeps everything under one directory together, so the
	 * ancestors an entry shares with the previous entry's parent are
	 * already pushed: push only the deeper ones, found by one backward scan.
	 * That keeps the work linear in the path length (a member 10,000
	 * directories deep no longer costs 10,000 scans of its whole path).
	 */
	lp_entries_sort(l);
	for (size_t i = 0; i < n0; i++) {
		const char *path = l->v[i].path;
		size_t len = lp_path_parent_len(path), c = 0, k;

		if (len == 0)
			continue;
		/* The deepest directory that is an ancestor-or-self of both parents. */
		if (prev) {
			while (c < len && c < plen && path[c] == prev[c])
				c++;
			if (!((c == len || path[c] == '/') && (c == plen || prev[c] == '/'))) {
				/* Back to the last '/' before c: shared by both, being before c. */
				while (c > 0 && path[--c] != '/')
					;
			}
		}
		if (c == len)
			continue;
		free(buf);
		buf = strndup(path, len);
		if (!buf)
			return -ENOMEM;
		for (k = len; k > c;) {
			struct lp_entry *d;

			buf[k] = '\0';
			d = lp_entries_push(l, buf, LP_DIR);
			if (!d) {
				r = -ENOMEM;
				goto out;
			}
			d->flags |= LP_F_IMPLICIT;
			while (k > 0 && buf[k - 1] != '/')
				k--;
			if (k > 0)
				k--;
		}
		/* The path strings stay put when lp_entries_push grows l->v. */
		prev = path;
		plen = len;
	}
out:
	free(buf);
	if (r < 0)
		return r;
	lp_entries_sort(l);
	return lp_entries_unique(l, false);
}

void lp_entries_compact(struct lp_entries *l)
{
	size_t w = 0;

	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i].flags & LP_F_REMOVED) {
			lp_entry_release(&l->v[i]);
			continue;
		}
		if (w != i)
			l->v[w] = l->v[i];
		w++;
	}
	l->n = w;
}

int lp_entries_splice(struct lp_entries *dst, struct lp_entries *src)
{
	if (reserve(dst, dst->n + src->n) < 0)
		return -ENOMEM;
	if (src->n)
		memcpy(dst->v + dst->n, src->v, src->n * sizeof(*src->v));
	dst->n += src->n;
	free(src->v);
	lp_entries_init(src);
	return 0;
}

char *lp_path_relative(const char *from_path, const char *to_path)
{
	size_t common = 0, ups = 0, len;
	const char *rest;
	char *out, *p;

	/* Longest common directory prefix of from's parent and to. */
	for (size_t i = 0; from_path[i] && to_path[i] && from_path[i] == to_path[i]; i++)
		if (from_path[i] == '/')
			common = i + 1;
	for (const char *s = from_path + common; *s; s++)
		if (*s == '/')
			ups++;
	rest = to_path + common;
	len = ups * 3 + strlen(rest) + 1;
	out = malloc(len);
	if (!out)
		return NULL;
	p = out;
	for (size_t i = 0; i < ups; i++) {
		memcpy(p, "../", 3);
		p += 3;
	}
	strcpy(p, rest);
	return out;
}

int lp_entries_clone(struct lp_entries *dst, const struct lp_entries *src)
{
	lp_entries_init(dst);
	if (src->n == 0)
		return 0;
	dst->v = calloc(src->n, sizeof(*dst->v));
	if (!dst->v)
		return -ENOMEM;
	dst->cap = src->n;
	for (size_t i = 0; i < src->n; i++, dst->n++) {
		const struct lp_entry *s = &src->v[i];
		struct lp_entry *d = &dst->v[i];

		*d = *s;
		d->path = strdup(s->path);
		d->target = s->target ? strdup(s->target) : NULL;
		d->src = s->src ? strdup(s->src) : NULL;
		d->bin = s->bin ? lp_binfo_dup(s->bin) : NULL;
		if (!d->path || (s->target && !d->target) || (s->src && !d->src) || (s->bin && !d->bin)) {
			dst->n++;
			lp_entries_free(dst);
			return -ENOMEM;
		}
	}
	return 0;
}

uint64_t lp_entries_unzipped_size(const struct lp_entries *l)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < l->n; i++) {
		const struct lp_entry *e = &l->v[i];

		if (e->flags & LP_F_REMOVED) {
			continue;	/* pruned: never emitted */
		} else if (e->kind == LP_SYMLINK) {
			sum += e->size;
		} else if (e->kind == LP_FILE && (e->flags & LP_F_DUPLICATE)) {
			/* Emitted as a relative symlink to the canonical copy. */
			char *rel = lp_path_relative(e->path, e->target);

			sum += rel ? strlen(rel) : e->size;
			free(rel);
		} else if (e->kind == LP_FILE) {
			sum += e->size;
		}
	}
	return sum;
}

void lp_entries_count(const struct lp_entries *l, size_t *files, size_t *dirs, size_t *links)
{
	size_t f = 0, d = 0, s = 0;

	for (size_t i = 0; i < l->n; i++) {
		switch (l->v[i].kind) {
		case LP_FILE:
			f++;
			break;
		case LP_DIR:
			d++;
			break;
		case LP_SYMLINK:
			s++;
			break;
		}
	}
	if (files)
		*files = f;
	if (dirs)
		*dirs = d;
	if (links)
		*links = s;
}
