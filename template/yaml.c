/* SPDX-License-Identifier: MIT */
/*
 * A bounded YAML tree built from libyaml's events. Aliases share the
 * anchored node instead of copying it, and only a finished node can be
 * anchored, so the tree is acyclic; what an expansion would cost is
 * counted (weight) and capped, so "billion laughs" stops early.
 */
#include "template/internal.h"
#include "core/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct anchor {
	char *name;
	struct ynode *node;
};

struct builder {
	struct ydoc *doc;
	struct ynode *stack[LP_TPL_MAX_DEPTH + 1];
	size_t depth;
	struct anchor *anchors;	/* open addressing, ANCHOR_SLOTS */
	size_t n_anchors;
	uint64_t expanded;
};

#define ANCHOR_SLOTS (LP_TPL_MAX_ANCHORS * 2)

static struct ynode *node_new(struct ydoc *d, enum ytype type, const char *tag, size_t line)
{
	struct ynode *n;

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 256;
		struct ynode **v = realloc(d->all, cap * sizeof(*v));

		if (!v)
			return NULL;
		d->all = v;
		d->cap = cap;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->type = type;
	n->line = line;
	n->weight = 1;
	if (tag && *tag && !(n->tag = strdup(tag))) {
		free(n);
		return NULL;
	}
	d->all[d->n++] = n;
	return n;
}

static int kid_add(struct ynode *p, struct ynode *k)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 4;
		struct ynode **v = realloc(p->kids, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		p->kids = v;
		p->cap = cap;
	}
	p->kids[p->n++] = k;
	return 0;
}

static struct anchor *anchor_slot(struct builder *b, const char *name)
{
	size_t i = lp_fnv1a(name) % ANCHOR_SLOTS;

	for (;;) {
		struct anchor *a = &b->anchors[i];

		if (!a->name || strcmp(a->name, name) == 0)
			return a;
		i = (i + 1) % ANCHOR_SLOTS;
	}
}

static int fail(struct ydoc *d, size_t line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct ydoc *d, size_t line, const char *fmt, ...)
{
	va_list ap;

	d->err_line = line;
	va_start(ap, fmt);
	vsnprintf(d->err, sizeof(d->err), fmt, ap);
	va_end(ap);
	return -LP_E_INPUT;
}

static int anchor_set(struct builder *b, const char *name, struct ynode *n)
{
	struct anchor *a;

	if (!name)
		return 0;
	a = anchor_slot(b, name);
	if (!a->name) {
		if (b->n_anchors >= LP_TPL_MAX_ANCHORS)
			return fail(b->doc, n->line, "more than %s anchors", "4096");
		if (!(a->name = strdup(name)))
			return -ENOMEM;
		b->n_anchors++;
	}
	a->node = n;
	return 0;
}

/* Hang a finished node (or an alias to one) under the open collection. */
static int attach(struct builder *b, struct ynode *n, size_t line, bool alias)
{
	struct ynode *p;

	/* A new node's children were counted as they came; an alias brings its whole subtree again. */
	b->expanded += alias ? n->weight : 1;
	if (b->expanded > LP_TPL_MAX_EXPANDED)
		return fail(b->doc, line, "more than %s nodes once aliases are expanded (an alias bomb?)", "1,000,000");
	if (!b->depth) {
		if (b->doc->root)
			return fail(b->doc, line, "%smore than one root node", "");
		b->doc->root = n;
		return 0;
	}
	p = b->stack[b->depth - 1];
	p->weight += n->weight;
	if (p->weight > LP_TPL_MAX_EXPANDED)
		p->weight = LP_TPL_MAX_EXPANDED + 1;
	return kid_add(p, n);
}

static int on_event(struct builder *b, yaml_event_t *ev, bool *done)
{
	struct ydoc *d = b->doc;
	size_t line = ev->start_mark.line + 1;
	struct ynode *n;
	int r;

	switch (ev->type) {
	case YAML_DOCUMENT_END_EVENT:
	case YAML_STREAM_END_EVENT:
		/* A template is one document; anything after the first is not read. */
		*done = true;
		return 0;
	case YAML_SCALAR_EVENT:
		if (d->n >= LP_TPL_MAX_NODES)
			return fail(d, line, "more than %s nodes", "200,000");
		n = node_new(d, Y_SCALAR, (const char *)ev->data.scalar.tag, line);
		if (!n)
			return -ENOMEM;
		n->len = ev->data.scalar.length;
		n->val = malloc(n->len + 1);
		if (!n->val)
			return -ENOMEM;
		memcpy(n->val, ev->data.scalar.value, n->len);
		n->val[n->len] = '\0';
		n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		if ((r = anchor_set(b, (const char *)ev->data.scalar.anchor, n)) < 0)
			return r;
		return attach(b, n, line, false);
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		if (d->n >= LP_TPL_MAX_NODES)
			return fail(d, line, "more than %s nodes", "200,000");
		if (b->depth >= LP_TPL_MAX_DEPTH)
			return fail(d, line, "nested deeper than %s levels", "64");
		n = node_new(d, ev->type == YAML_SEQUENCE_START_EVENT ? Y_SEQ : Y_MAP,
			     (const char *)(ev->type == YAML_SEQUENCE_START_EVENT ? ev->data.sequence_start.tag
										 : ev->data.mapping_start.tag), line);
		if (!n)
			return -ENOMEM;
		/* Kept aside until its end: an alias inside it must not reach it (no cycles). */
		n->anchor = NULL;
		{
			const yaml_char_t *an = ev->type == YAML_SEQUENCE_START_EVENT ? ev->data.sequence_start.anchor
										: ev->data.mapping_start.anchor;
			if (an && !(n->anchor = strdup((const char *)an)))
				return -ENOMEM;
		}
		b->stack[b->depth++] = n;
		return 0;
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		if (!b->depth)
			return fail(d, line, "%sunbalanced collection", "");
		n = b->stack[--b->depth];
		if ((r = anchor_set(b, n->anchor, n)) < 0)
			return r;
		return attach(b, n, n->line, false);
	case YAML_ALIAS_EVENT: {
		struct anchor *a = anchor_slot(b, (const char *)ev->data.alias.anchor);

		if (!a->name)
			return fail(d, line, "alias *%s names no finished anchor",
				    (const char *)ev->data.alias.anchor);
		return attach(b, a->node, line, true);
	}
	default:
		return 0;
	}
}

int ydoc_parse(struct ydoc *d, const char *buf, size_t len)
{
	struct builder b = { .doc = d };
	yaml_parser_t p;
	bool done = false;
	int r = 0;

	memset(d, 0, sizeof(*d));
	if (len > LP_TPL_MAX_BYTES)
		return fail(d, 0, "larger than %s", "4 MiB");
	b.anchors = calloc(ANCHOR_SLOTS, sizeof(*b.anchors));
	if (!b.anchors)
		return -ENOMEM;
	if (!yaml_parser_initialize(&p)) {
		free(b.anchors);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	while (!done) {
		yaml_event_t ev;

		if (!yaml_parser_parse(&p, &ev)) {
			d->err_line = p.problem_mark.line + 1;
			if (p.error == YAML_MEMORY_ERROR) {
				r = -ENOMEM;
				break;
			}
			snprintf(d->err, sizeof(d->err), "YAML syntax error: %s%s%s", p.problem ? p.problem : "unknown",
				 p.context ? " " : "", p.context ? p.context : "");
			r = -LP_E_INPUT;
			break;
		}
		r = on_event(&b, &ev, &done);
		yaml_event_delete(&ev);
		if (r < 0)
			break;
	}
	yaml_parser_delete(&p);
	for (size_t i = 0; i < ANCHOR_SLOTS; i++)
		free(b.anchors[i].name);
	free(b.anchors);
	if (r == 0 && !d->root)
		r = fail(d, 1, "%sempty document", "");
	return r;
}

void ydoc_free(struct ydoc *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->all[i]->tag);
		free(d->all[i]->val);
		free(d->all[i]->anchor);
		free(d->all[i]->kids);
		free(d->all[i]);
	}
	free(d->all);
	memset(d, 0, sizeof(*d));
}

/* Merge keys ("<<: *base") are looked through, at most this deep. */
#define MERGE_DEPTH 8

static struct ynode *get_rec(const struct ynode *m, const char *key, int depth)
{
	if (!m || m->type != Y_MAP)
		return NULL;
	for (size_t i = 0; i + 1 < m->n; i += 2) {
		const struct ynode *k = m->kids[i];

		if (k->type == Y_SCALAR && strcmp(k->val, key) == 0 && strlen(k->val) == k->len)
			return m->kids[i + 1];
	}
	if (depth >= MERGE_DEPTH)
		return NULL;
	for (size_t i = 0; i + 1 < m->n; i += 2) {
		const struct ynode *k = m->kids[i], *v = m->kids[i + 1];
		struct ynode *got = NULL;

		if (k->type != Y_SCALAR || strcmp(k->val, "<<") != 0)
			continue;
		if (v->type == Y_MAP)
			got = get_rec(v, key, depth + 1);
		else if (v->type == Y_SEQ)
			for (size_t j = 0; !got && j < v->n; j++)
				got = get_rec(v->kids[j], key, depth + 1);
		if (got)
			return got;
	}
	return NULL;
}

struct ynode *ymap_get(const struct ynode *m, const char *key)
{
	return get_rec(m, key, 0);
}

const char *yscalar(const struct ynode *n)
{
	if (!n || n->type != Y_SCALAR || strlen(n->val) != n->len)
		return NULL;
	/* "!!str" and friends are plain values; a local tag ("!Ref") is an intrinsic. */
	if (n->tag && strncmp(n->tag, "tag:yaml.org,2002:", 18) != 0)
		return NULL;
	return n->val;
}
