/* SPDX-License-Identifier: MIT */
#include "core/entry.h"
#include "core/elf.h"
#include "core/err.h"

#include <errno.h>
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

int lp_entries_unique(struct lp_entries *l, bool overwrite)
{
	size_t w = 0;

	for (size_t i = 0; i < l->n; i++) {
		struct lp_entry *e = &l->v[i];

		if (w > 0 && strcmp(l->v[w - 1].path, e->path) == 0) {
			struct lp_entry *prev = &l->v[w - 1];

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
			if (!overwrite) {
				int r = lp_fail(-LP_E_DUPLICATE, e->path,
						"given by more than one source (inputs #%u and #%u); use --overwrite to let the later one win",
						(unsigned)prev->origin + 1, (unsigned)e->origin + 1);

				/*
				 * Entries before i may have been moved down already:
				 * finish the move so every slot below n owns its
				 * strings once (else lp_entries_free frees twice).
				 */
				for (; i < l->n; i++)
					l->v[w++] = l->v[i];
				l->n = w;
				return r;
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
	l->n = w;
	return 0;
}

size_t lp_path_parent_len(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? (size_t)(s - path) : 0;
}

int lp_entries_add_parents(struct lp_entries *l)
{
	size_t n0 = l->n;
	char *buf = NULL;

	/*
	 * Push every ancestor as an implicit directory, then let sort + unique
	 * merge them with the real ones (explicit directories win). Sorted input
	 * means siblings share a parent, so skip a parent equal to the last one.
	 */
	lp_entries_sort(l);
	for (size_t i = 0; i < n0; i++) {
		size_t len = lp_path_parent_len(l->v[i].path);

		if (len == 0)
			continue;
		if (buf && strlen(buf) == len && strncmp(buf, l->v[i].path, len) == 0)
			continue;
		free(buf);
		buf = strndup(l->v[i].path, len);
		if (!buf)
			return -ENOMEM;
		for (size_t k = len; k > 0; k = lp_path_parent_len(buf)) {
			struct lp_entry *d;

			buf[k] = '\0';
			d = lp_entries_push(l, buf, LP_DIR);
			if (!d) {
				free(buf);
				return -ENOMEM;
			}
			d->flags |= LP_F_IMPLICIT;
		}
		/* buf was cut to its top component; keep the full parent for the skip test. */
		free(buf);
		buf = strndup(l->v[i].path, len);
		if (!buf)
			return -ENOMEM;
	}
	free(buf);
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
