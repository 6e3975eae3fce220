/* SPDX-License-Identifier: MIT */
/*
 * Layer planning: which entry goes into which of our layers. The rules are
 * in container/oci.h; everything here depends only on paths, sizes and the
 * bytes of dist-info metadata, so the plan is the same on every run.
 */
#include "container/oci.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "core/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Top-level directories that hold third-party code in Lambda bundles. */
static const char *const dep_roots[] = {
	"node_modules", "vendor", "lib", "lib64", "python", "packages", "site-packages", NULL,
};

void lp_oci_opts_init(struct lp_oci_opts *o)
{
	const char *s = getenv("SOURCE_DATE_EPOCH");
	char *end;

	memset(o, 0, sizeof(*o));
	o->epoch = 315532800;	/* 1980-01-01T00:00:00Z, the zip epoch pack uses too */
	if (s && *s) {
		long long v = strtoll(s, &end, 10);

		if (*end == '\0' && v >= 0)
			o->epoch = v;
	}
}

int lp_oci_compression_parse(const char *s)
{
	if (strcmp(s, "gzip") == 0)
		return LP_OCI_GZIP;
	if (strcmp(s, "zstd") == 0)
		return LP_OCI_ZSTD;
	if (strcmp(s, "none") == 0)
		return LP_OCI_NONE;
	return -1;
}

/* "/var/task/" -> "var/task"; "/" -> "". Caller frees. */
static char *task_prefix(const struct lp_oci_opts *o)
{
	const char *t = o->task_root ? o->task_root : "/var/task";
	size_t len;

	while (*t == '/')
		t++;
	len = strlen(t);
	while (len && t[len - 1] == '/')
		len--;
	return strndup(t, len);
}

static bool is_opt_path(const struct lp_oci_opts *o, const char *p)
{
	return !o->opt_in_task_root && strncmp(p, "opt", 3) == 0 && (p[3] == '\0' || p[3] == '/');
}

char *lp_oci_image_path(const struct lp_oci_opts *o, const char *path)
{
	char *pre, *r;

	if (is_opt_path(o, path))
		return strdup(path);
	pre = task_prefix(o);
	if (!pre)
		return NULL;
	r = lp_path_join(pre, path);
	free(pre);
	return r;
}

/* Length of the first n components of p (the whole of p if it has fewer). */
static size_t comp_prefix(const char *p, unsigned n)
{
	const char *s = p;

	for (unsigned i = 0; i < n; i++) {
		s = strchr(s, '/');
		if (!s)
			return strlen(p);
		if (i + 1 < n)
			s++;
	}
	return (size_t)(s - p);
}

/* Offset of component name in p ("a/node_modules/b" -> 2), or -1. */
static long find_comp(const char *p, const char *name)
{
	size_t nl = strlen(name);
	const char *s = p;

	for (;;) {
		if (strncmp(s, name, nl) == 0 && (s[nl] == '/' || s[nl] == '\0'))
			return (long)(s - p);
		s = strchr(s, '/');
		if (!s)
			return -1;
		s++;
	}
}

static size_t first_len(const char *p)
{
	const char *s = strchr(p, '/');

	return s ? (size_t)(s - p) : strlen(p);
}

static bool has_suffix(const char *s, size_t len, const char *suf)
{
	size_t sl = strlen(suf);

	return len >= sl && memcmp(s + len - sl, suf, sl) == 0;
}

static bool in_strv(const struct lp_strv *sv, const char *s, size_t len)
{
	for (size_t i = 0; i < sv->n; i++)
		if (strlen(sv->v[i]) == len && memcmp(sv->v[i], s, len) == 0)
			return true;
	return false;
}

static int add_name(struct lp_strv *sv, const char *s, size_t len)
{
	char *t;
	int r;

	if (len == 0 || s[0] == '.' || in_strv(sv, s, len) || memchr(s, '\\', len))
		return 0;
	if (len == 11 && memcmp(s, "__pycache__", 11) == 0)
		return 0;
	t = strndup(s, len);
	if (!t)
		return -ENOMEM;
	r = lp_strv_push(sv, t);
	free(t);
	return r;
}

/*
 * pip install -t . puts packages at the root beside NAME.dist-info; its
 * RECORD lists every file pip wrote ("pkg/mod.py,sha256=...,123"), and
 * top_level.txt (setuptools) names the import packages.
 */
static int scan_dist_info(const struct lp_entry *e, struct lp_strv *names)
{
	const char *slash = strchr(e->path, '/');
	bool record, toplevel;
	char *buf;
	size_t len;
	int r;

	if (!slash || strchr(slash + 1, '/') || !e->src || e->kind != LP_FILE)
		return 0;
	if (!has_suffix(e->path, (size_t)(slash - e->path), ".dist-info") &&
	    !has_suffix(e->path, (size_t)(slash - e->path), ".egg-info"))
		return 0;
	record = strcmp(slash + 1, "RECORD") == 0;
	toplevel = strcmp(slash + 1, "top_level.txt") == 0;
	if (!record && !toplevel)
		return 0;
	r = lp_read_file(e->src, 64u << 20, &buf, &len);
	if (r < 0)
		return r;
	for (char *line = buf; line && *line;) {
		char *nl = strchr(line, '\n');
		const char *s = line;
		size_t n;

		if (nl)
			*nl = '\0';
		if (*s == '"')
			s++;
		n = strcspn(s, record ? "/,\"\r" : "/\r");
		r = add_name(names, s, n);
		if (r < 0)
			break;
		line = nl ? nl + 1 : NULL;
	}
	free(buf);
	return r;
}

static bool is_dep(const char *p, const struct lp_strv *pynames)
{
	size_t fl = first_len(p);

	for (const char *const *d = dep_roots; *d; d++)
		if (strlen(*d) == fl && memcmp(p, *d, fl) == 0)
			return true;
	if (has_suffix(p, fl, ".dist-info") || has_suffix(p, fl, ".egg-info"))
		return true;
	if (find_comp(p, "node_modules") >= 0 || find_comp(p, "site-packages") >= 0)
		return true;
	return in_strv(pynames, p, fl);
}

/*
 * The unit a dependency belongs to: units are never split across layers.
 * depth is the fallback number of leading components.
 */
static size_t unit_len(const char *p, const struct lp_strv *pynames, unsigned depth)
{
	long k = find_comp(p, "node_modules");

	if (k >= 0) {
		const char *pkg = p + k + strlen("node_modules");

		if (*pkg == '\0')
			return strlen(p);
		pkg++;
		return (size_t)(pkg - p) + comp_prefix(pkg, pkg[0] == '@' ? 2 : 1);
	}
	k = find_comp(p, "site-packages");
	if (k >= 0) {
		const char *pkg = p + k + strlen("site-packages");

		if (*pkg == '\0')
			return strlen(p);
		pkg++;
		return (size_t)(pkg - p) + comp_prefix(pkg, 1);
	}
	if (in_strv(pynames, p, first_len(p)) || has_suffix(p, first_len(p), ".dist-info"))
		return first_len(p);
	return comp_prefix(p, depth);
}

struct member {
	char *unit;
	size_t idx;
	uint64_t bytes;
};

static int cmp_member(const void *a, const void *b)
{
	const struct member *x = a, *y = b;
	int c = strcmp(x->unit, y->unit);

	if (c)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t entry_bytes(const struct lp_entry *e)
{
	return e->kind == LP_DIR ? 0 : e->size;
}

static struct lp_oci_layer_plan *plan_push(struct lp_oci_plan *p, enum lp_oci_group g)
{
	struct lp_oci_layer_plan *v = realloc(p->v, (p->n + 1) * sizeof(*v));

	if (!v)
		return NULL;
	p->v = v;
	v = &p->v[p->n++];
	memset(v, 0, sizeof(*v));
	v->group = g;
	return v;
}

static int layer_add(struct lp_oci_layer_plan *lp, size_t idx, uint64_t bytes, size_t *cap)
{
	if (lp->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		size_t *v = realloc(lp->idx, nc * sizeof(*v));

		if (!v)
			return -ENOMEM;
		lp->idx = v;
		*cap = nc;
	}
	lp->idx[lp->n++] = idx;
	lp->bytes += bytes;
	return 0;
}

/* Pack the units of one group into at most max_layers layers, in unit order. */
static int plan_group(struct lp_oci_plan *p, enum lp_oci_group g, struct member *m, size_t n,
		      unsigned max_layers, uint64_t layer_max)
{
	uint64_t total = 0, target;
	size_t first = p->n, cap = 0;
	struct lp_oci_layer_plan *cur = NULL;
	unsigned made = 0;

	if (n == 0)
		return 0;
	qsort(m, n, sizeof(*m), cmp_member);
	for (size_t i = 0; i < n; i++)
		total += m[i].bytes;
	target = (total + max_layers - 1) / max_layers;
	if (target < layer_max)
		target = layer_max;
	for (size_t i = 0; i < n;) {
		uint64_t ubytes = 0;
		size_t j = i;

		while (j < n && strcmp(m[j].unit, m[i].unit) == 0)
			ubytes += m[j++].bytes;
		if (!cur || (cur->n && cur->bytes + ubytes > target && made < max_layers)) {
			if (cur && !(cur->last_unit = strdup(m[i - 1].unit)))
				return -ENOMEM;
			cur = plan_push(p, g);
			if (!cur)
				return -ENOMEM;
			cap = 0;
			made++;
			cur->first_unit = strdup(m[i].unit);
			if (!cur->first_unit)
				return -ENOMEM;
		}
		for (; i < j; i++)
			if (layer_add(cur, m[i].idx, m[i].bytes, &cap) < 0)
				return -ENOMEM;
	}
	if (!(cur->last_unit = strdup(m[n - 1].unit)))
		return -ENOMEM;
	for (size_t k = first; k < p->n; k++) {
		p->v[k].part = (unsigned)(k - first + 1);
		p->v[k].nparts = made;
		qsort(p->v[k].idx, p->v[k].n, sizeof(size_t), cmp_size);
	}
	return 0;
}

void lp_oci_plan_free(struct lp_oci_plan *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i].idx);
		free(p->v[i].first_unit);
		free(p->v[i].last_unit);
	}
	free(p->v);
	p->v = NULL;
	p->n = 0;
}

static void free_members(struct member *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(m[i].unit);
	free(m);
}

int lp_oci_plan_layers(const struct lp_entries *l, const struct lp_oci_opts *o, struct lp_oci_plan *ret)
{
	struct lp_strv pynames = { 0 };
	struct member *opt = NULL, *dep = NULL;
	size_t nopt = 0, ndep = 0, code_cap = 0;
	struct lp_oci_plan p = { 0 };
	struct lp_oci_layer_plan code = { .group = LP_OCI_G_CODE, .part = 1, .nparts = 1 };
	uint64_t layer_max = o->layer_max ? o->layer_max : LP_OCI_LAYER_MAX;
	unsigned opt_max;
	int r = -ENOMEM;

	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i].flags & LP_F_REMOVED)
			continue;
		r = scan_dist_info(&l->v[i], &pynames);
		if (r < 0)
			goto out;
	}
	r = -ENOMEM;
	opt = calloc(l->n ? l->n : 1, sizeof(*opt));
	dep = calloc(l->n ? l->n : 1, sizeof(*dep));
	if (!opt || !dep)
		goto out;
	for (size_t i = 0; i < l->n; i++) {
		const struct lp_entry *e = &l->v[i];
		struct member *m;
		unsigned depth = 2;

		if (e->flags & LP_F_REMOVED)
			continue;
		if (is_opt_path(o, e->path)) {
			m = &opt[nopt++];
			depth = 3;	/* "opt/extensions/x", "opt/python/lib" */
		} else if (is_dep(e->path, &pynames)) {
			m = &dep[ndep++];
		} else {
			if (layer_add(&code, i, entry_bytes(e), &code_cap) < 0)
				goto out;
			continue;
		}
		m->idx = i;
		m->bytes = entry_bytes(e);
		m->unit = strndup(e->path, unit_len(e->path, &pynames, depth));
		if (!m->unit)
			goto out;
	}
	/* /opt rarely needs more than two layers; dependencies get the rest but one (code). */
	opt_max = 2;
	r = plan_group(&p, LP_OCI_G_OPT, opt, nopt, opt_max, layer_max);
	if (r < 0)
		goto out;
	r = plan_group(&p, LP_OCI_G_DEPS, dep, ndep, LP_OCI_MAX_OWN_LAYERS - 1 - (unsigned)p.n, layer_max);
	if (r < 0)
		goto out;
	/* Manifests need at least one layer: a scratch image of nothing still gets /var/task. */
	if (code.n || p.n == 0) {
		struct lp_oci_layer_plan *c = plan_push(&p, LP_OCI_G_CODE);

		r = -ENOMEM;
		if (!c)
			goto out;
		*c = code;
		code.idx = NULL;
	}
	*ret = p;
	p.v = NULL;
	p.n = 0;
	r = 0;
out:
	free(code.idx);
	lp_oci_plan_free(&p);
	free_members(opt, nopt);
	free_members(dep, ndep);
	lp_strv_free(&pynames);
	return r;
}
