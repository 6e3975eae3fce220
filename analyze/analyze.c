/* SPDX-License-Identifier: MIT */
/*
 * The metrics: totals and budgets, contributors at three levels, what -O
 * would save, compatibility findings, Dive's efficiency for images, and
 * the diff of two analyses.
 */
#include "analyze/internal.h"
#include "core/err.h"
#include "pack/pack.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* -O's default dedupe mode (LP_DEDUPE_BINARIES) also takes data files this large. */

void lp_ana_opts_init(struct lp_ana_opts *o)
{
	memset(o, 0, sizeof(*o));
}

void lp_ana_opts_free(struct lp_ana_opts *o)
{
	lp_strv_free(&o->excludes);
	lp_strv_free(&o->with_layers);
	memset(o, 0, sizeof(*o));
}

void lp_analysis_init(struct lp_analysis *a)
{
	memset(a, 0, sizeof(*a));
	lp_entries_init(&a->entries);
	lp_report_init(&a->report);
	a->efficiency = 1.0;
}

static void contribs_free(struct lp_ana_contrib *c, size_t n)
{
	for (size_t i = 0; c && i < n; i++)
		free(c[i].name);
	free(c);
}

static void extra_free(struct ana_extra *x)
{
	if (!x)
		return;
	for (size_t i = 0; i < x->n_records; i++) {
		free(x->records[i].path);
		free(x->records[i].text);
	}
	free(x->records);
	free(x);
}

void lp_analysis_free(struct lp_analysis *a)
{
	free(a->target);
	lp_entries_free(&a->entries);
	contribs_free(a->files, a->n_files_c);
	contribs_free(a->dirs, a->n_dirs_c);
	contribs_free(a->packages, a->n_packages);
	for (size_t i = 0; i < a->n_dups; i++) {
		for (size_t j = 0; j < a->dups[i].count; j++)
			free(a->dups[i].paths[j]);
		free(a->dups[i].paths);
	}
	free(a->dups);
	lp_report_free(&a->report);
	free(a->img_os);
	free(a->img_arch);
	free(a->img_task_root);
	for (size_t i = 0; i < a->n_layers; i++) {
		free(a->layers[i].digest);
		free(a->layers[i].media_type);
		free(a->layers[i].created_by);
		lp_entries_free(&a->layers[i].entries);
	}
	free(a->layers);
	for (size_t i = 0; i < a->n_multi; i++)
		free(a->multi[i].path);
	free(a->multi);
	extra_free(a->priv);
	memset(a, 0, sizeof(*a));
}

const char *lp_ana_kind_name(enum lp_ana_kind k)
{
	switch (k) {
	case LP_ANA_DIR:
		return "directory";
	case LP_ANA_ZIP:
		return "zip";
	case LP_ANA_ARCHIVE:
		return "archive";
	case LP_ANA_OCI_LAYOUT:
		return "oci-layout";
	case LP_ANA_OCI_ARCHIVE:
		return "oci-archive";
	case LP_ANA_DOCKER_ARCHIVE:
		return "docker-archive";
	}
	return "unknown";
}

int ana_add_record(struct lp_analysis *a, const char *path, const char *text, size_t len)
{
	struct ana_extra *x = a->priv;
	struct ana_record *rec;

	if (!x && !(x = a->priv = calloc(1, sizeof(*x))))
		return -ENOMEM;
	if (x->n_records == x->cap_records) {
		size_t cap = x->cap_records ? x->cap_records * 2 : 16;
		struct ana_record *v = realloc(x->records, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		x->records = v;
		x->cap_records = cap;
	}
	rec = &x->records[x->n_records];
	rec->path = strdup(path);
	rec->text = strndup(text, len);
	if (!rec->path || !rec->text) {
		free(rec->path);
		free(rec->text);
		return -ENOMEM;
	}
	x->n_records++;
	return 0;
}

/* ---- packages ---------------------------------------------------------- */

/* Files owned by Python distributions, from their RECORD files. */
struct owners {
	struct ana_map map;	/* artifact path -> index in names */
	struct lp_strv paths;	/* key storage */
	struct lp_strv names;	/* group keys: "<site>/<Distribution>" */
};

static void owners_free(struct owners *ow)
{
	ana_map_free(&ow->map);
	lp_strv_free(&ow->paths);
	lp_strv_free(&ow->names);
}

/* Lexically join base and a RECORD path; NULL if it leaves the root. */
static char *record_join(const char *base, const char *rel)
{
	char *buf, *out;
	char *parts[512];
	size_t np = 0, len;
	char *save = NULL;

	if (!*rel || *rel == '/')
		return NULL;
	len = strlen(base) + strlen(rel) + 2;
	buf = malloc(len);
	out = malloc(len);
	if (!buf || !out) {
		free(buf);
		free(out);
		return NULL;
	}
	snprintf(buf, len, "%s%s%s", base, *base ? "/" : "", rel);
	for (char *t = strtok_r(buf, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		if (!strcmp(t, "."))
			continue;
		if (!strcmp(t, "..")) {
			if (!np)
				goto bad;
			np--;
			continue;
		}
		if (np == sizeof(parts) / sizeof(parts[0]))
			goto bad;
		parts[np++] = t;
	}
	if (!np)
		goto bad;
	out[0] = '\0';
	for (size_t i = 0; i < np; i++) {
		if (i)
			strcat(out, "/");
		strcat(out, parts[i]);
	}
	free(buf);
	return out;
bad:
	free(buf);
	free(out);
	return NULL;
}

static int owners_build(struct owners *ow, const struct lp_analysis *a)
{
	const struct ana_extra *x = a->priv;
	int r = ana_map_init(&ow->map, 256);

	if (r < 0 || !x)
		return r;
	for (size_t i = 0; i < x->n_records; i++) {
		const char *rp = x->records[i].path;
		const char *di = strstr(rp, ".dist-info/RECORD");
		const char *dstart, *dash;
		char base[PATH_MAX], key[PATH_MAX * 2 + 2];
		size_t blen, gi;

		if (!di)
			continue;
		dstart = di;
		while (dstart > rp && dstart[-1] != '/')
			dstart--;
		blen = dstart > rp ? (size_t)(dstart - rp - 1) : 0;
		dash = memchr(dstart, '-', (size_t)(di - dstart));
		if (blen >= sizeof(base))
			continue;
		memcpy(base, rp, blen);
		base[blen] = '\0';
		snprintf(key, sizeof(key), "%s%s%.*s", base, blen ? "/" : "", (int)((dash ? dash : di) - dstart), dstart);
		if ((r = lp_strv_push(&ow->names, key)) < 0)
			return r;
		gi = ow->names.n - 1;
		/* CSV: path,hash,size; a path with a comma is quoted. */
		for (const char *line = x->records[i].text; line && *line;) {
			const char *eol = strchr(line, '\n');
			size_t ll = eol ? (size_t)(eol - line) : strlen(line);
			char field[PATH_MAX];
			size_t fn = 0;
			char *full;

			if (ll && *line == '"') {
				for (size_t k = 1; k < ll && fn + 1 < sizeof(field); k++) {
					if (line[k] == '"' && k + 1 < ll && line[k + 1] == '"') {
						field[fn++] = '"';
						k++;
					} else if (line[k] == '"') {
						break;
					} else {
						field[fn++] = line[k];
					}
				}
			} else {
				while (fn < ll && line[fn] != ',' && line[fn] != '\r' && fn + 1 < sizeof(field)) {
					field[fn] = line[fn];
					fn++;
				}
			}
			field[fn] = '\0';
			line = eol ? eol + 1 : NULL;
			full = record_join(base, field);
			if (!full)
				continue;
			r = lp_strv_push(&ow->paths, full);
			free(full);
			if (r < 0)
				return r;
			if ((r = ana_map_put(&ow->map, ow->paths.v[ow->paths.n - 1], gi)) < 0)
				return r;
		}
	}
	return 0;
}

static const char *span_key(const char *path, const char *end, char *buf, size_t len)
{
	size_t n = end ? (size_t)(end - path) : strlen(path);

	snprintf(buf, len, "%.*s", (int)n, path);
	return buf;
}

static const char *group_key(const struct owners *ow, const struct lp_entries *all, const char *path,
			     char *buf, size_t len, const char **kind)
{
	const char *nm = NULL, *p;
	size_t *gi;

	/* The innermost node_modules wins: a nested dependency is its own package. */
	for (const char *s = strstr(path, "node_modules/"); s; s = strstr(s + 1, "node_modules/"))
		if (s == path || s[-1] == '/')
			nm = s;
	if (nm) {
		const char *pkg = nm + strlen("node_modules/");
		const char *end = strchr(pkg, '/');

		if (end && *pkg == '@')
			end = strchr(end + 1, '/');
		*kind = "node";
		return span_key(path, end, buf, len);
	}
	if (ow && (gi = ana_map_get(&ow->map, path))) {
		*kind = "python";
		snprintf(buf, len, "%s", ow->names.v[*gi]);
		return buf;
	}
	if ((p = strstr(path, "site-packages/")) && (p == path || p[-1] == '/')) {
		*kind = "python";
		return span_key(path, strchr(p + strlen("site-packages/"), '/'), buf, len);
	}
	for (const char *s = strstr(path, "vendor/"); s; s = strstr(s + 1, "vendor/")) {
		const char *gems;

		if (s != path && s[-1] != '/')
			continue;
		*kind = "vendor";
		/* Bundler: vendor/bundle/ruby/<v>/gems/<gem>. */
		if (!strncmp(s + 7, "bundle/", 7) && (gems = strstr(s, "/gems/")))
			return span_key(path, strchr(gems + 6, '/'), buf, len);
		return span_key(path, strchr(s + 7, '/'), buf, len);
	}
	if (!strncmp(path, "python/", 7)) {
		*kind = "python";
		return span_key(path, strchr(path + 7, '/'), buf, len);
	}
	span_key(path, strchr(path, '/'), buf, len);
	*kind = "top";
	/* A root folder with __init__.py is a Python package. */
	if (all && strchr(path, '/')) {
		char init[PATH_MAX];

		snprintf(init, sizeof(init), "%s/__init__.py", buf);
		if (lp_entries_find(all, init))
			*kind = "python";
	}
	return buf;
}

const char *lp_analyze_package(const char *path, char *buf, size_t len, const char **kind)
{
	const char *k;

	return group_key(NULL, NULL, path, buf, len, kind ? kind : &k);
}

int ana_entry_groups(const struct lp_analysis *a, char **keys, const char **kinds)
{
	const struct lp_entries *l = &a->entries;
	struct owners ow = { 0 };
	char key[PATH_MAX];
	int r = owners_build(&ow, a);

	for (size_t i = 0; i < l->n && r == 0; i++) {
		keys[i] = NULL;
		kinds[i] = NULL;
		if (l->v[i].kind == LP_DIR)
			continue;
		/* No entry list: a root folder stays "top" (the function's code) even with __init__.py. */
		group_key(&ow, NULL, l->v[i].path, key, sizeof(key), &kinds[i]);
		if (!(keys[i] = strdup(key)))
			r = -ENOMEM;
	}
	owners_free(&ow);
	return r;
}

/* ---- contributors ------------------------------------------------------ */

static int cmp_contrib(const void *x, const void *y)
{
	const struct lp_ana_contrib *a = x, *b = y;

	if (a->bytes != b->bytes)
		return a->bytes < b->bytes ? 1 : -1;
	return strcmp(a->name, b->name);
}

static uint64_t entry_bytes(const struct lp_entry *e)
{
	return e->kind == LP_DIR ? 0 : e->size;
}

static int contributors(struct lp_analysis *a)
{
	const struct lp_entries *l = &a->entries;
	struct owners ow = { 0 };
	struct ana_map gm = { 0 };
	uint64_t *dbytes = NULL;
	size_t *dcount = NULL;
	char key[PATH_MAX];
	int r;

	a->files = calloc(l->n ? l->n : 1, sizeof(*a->files));
	a->packages = calloc(l->n ? l->n : 1, sizeof(*a->packages));
	a->dirs = calloc(l->n ? l->n : 1, sizeof(*a->dirs));
	dbytes = calloc(l->n ? l->n : 1, sizeof(*dbytes));
	dcount = calloc(l->n ? l->n : 1, sizeof(*dcount));
	if (!a->files || !a->packages || !a->dirs || !dbytes || !dcount) {
		r = -ENOMEM;
		goto out;
	}
	if ((r = owners_build(&ow, a)) < 0 || (r = ana_map_init(&gm, 256)) < 0)
		goto out;
	for (size_t i = 0; i < l->n; i++) {
		const struct lp_entry *e = &l->v[i];
		const char *kind;
		size_t *gi;

		if (e->kind == LP_DIR)
			continue;
		if (e->kind == LP_FILE) {
			struct lp_ana_contrib *c = &a->files[a->n_files_c++];

			if (!(c->name = strdup(e->path))) {
				r = -ENOMEM;
				goto out;
			}
			c->kind = "file";
			c->bytes = e->size;
			c->count = 1;
		}
		group_key(&ow, l, e->path, key, sizeof(key), &kind);
		gi = ana_map_get(&gm, key);
		if (!gi) {
			struct lp_ana_contrib *c = &a->packages[a->n_packages];

			if (!(c->name = strdup(key))) {
				r = -ENOMEM;
				goto out;
			}
			c->kind = kind;
			if ((r = ana_map_put(&gm, c->name, a->n_packages)) < 0)
				goto out;
			gi = ana_map_get(&gm, key);
			a->n_packages++;
		}
		a->packages[*gi].bytes += entry_bytes(e);
		a->packages[*gi].count += e->kind == LP_FILE;
		/* Every ancestor directory gets the bytes. */
		snprintf(key, sizeof(key), "%s", e->path);
		for (size_t pl = lp_path_parent_len(key); pl; pl = lp_path_parent_len(key)) {
			struct lp_entry *d;

			key[pl] = '\0';
			d = lp_entries_find(l, key);
			if (!d)
				break;
			dbytes[d - l->v] += entry_bytes(e);
			dcount[d - l->v] += e->kind == LP_FILE;
		}
	}
	for (size_t i = 0; i < l->n; i++) {
		struct lp_ana_contrib *c;

		if (l->v[i].kind != LP_DIR)
			continue;
		c = &a->dirs[a->n_dirs_c++];
		if (!(c->name = strdup(l->v[i].path))) {
			r = -ENOMEM;
			goto out;
		}
		c->kind = "dir";
		c->bytes = dbytes[i];
		c->count = dcount[i];
	}
	qsort(a->files, a->n_files_c, sizeof(*a->files), cmp_contrib);
	qsort(a->dirs, a->n_dirs_c, sizeof(*a->dirs), cmp_contrib);
	qsort(a->packages, a->n_packages, sizeof(*a->packages), cmp_contrib);
out:
	owners_free(&ow);
	ana_map_free(&gm);
	free(dbytes);
	free(dcount);
	return r;
}

/* ---- duplicates ---------------------------------------------------------- */

static const struct lp_entries *sort_list;

static int cmp_digest(const void *x, const void *y)
{
	const struct lp_entry *a = &sort_list->v[*(const size_t *)x], *b = &sort_list->v[*(const size_t *)y];
	int c = memcmp(a->digest, b->digest, 32);

	return c ? c : strcmp(a->path, b->path);
}

static int cmp_dup(const void *x, const void *y)
{
	const struct lp_ana_dup *a = x, *b = y;

	if (a->wasted != b->wasted)
		return a->wasted < b->wasted ? 1 : -1;
	return strcmp(a->paths[0], b->paths[0]);
}

static int duplicates(struct lp_analysis *a)
{
	const struct lp_entries *l = &a->entries;
	size_t *idx = malloc((l->n ? l->n : 1) * sizeof(*idx));
	size_t k = 0, ng = 0;

	if (!idx)
		return -ENOMEM;
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].kind == LP_FILE && l->v[i].size > 0 && (l->v[i].flags & LP_F_HAS_DIGEST))
			idx[k++] = i;
	sort_list = l;	/* qsort has no context argument in C11 */
	qsort(idx, k, sizeof(*idx), cmp_digest);
	for (size_t i = 0; i < k;) {
		size_t j = i + 1;

		while (j < k && !memcmp(l->v[idx[i]].digest, l->v[idx[j]].digest, 32))
			j++;
		if (j - i >= 2)
			ng++;
		i = j;
	}
	a->dups = calloc(ng ? ng : 1, sizeof(*a->dups));
	if (!a->dups) {
		free(idx);
		return -ENOMEM;
	}
	for (size_t i = 0; i < k;) {
		size_t j = i + 1;

		while (j < k && !memcmp(l->v[idx[i]].digest, l->v[idx[j]].digest, 32))
			j++;
		if (j - i >= 2) {
			struct lp_ana_dup *d = &a->dups[a->n_dups++];

			memcpy(d->digest, l->v[idx[i]].digest, 32);
			d->size = l->v[idx[i]].size;
			d->paths = calloc(j - i, sizeof(char *));
			if (!d->paths) {
				free(idx);
				return -ENOMEM;
			}
			for (size_t m = i; m < j; m++)
				if (!(d->paths[d->count++] = strdup(l->v[idx[m]].path))) {
					free(idx);
					return -ENOMEM;
				}
			d->wasted = (uint64_t)(d->count - 1) * d->size;
			a->dup_wasted += d->wasted;
		}
		i = j;
	}
	free(idx);
	qsort(a->dups, a->n_dups, sizeof(*a->dups), cmp_dup);
	return 0;
}

/* ---- savings: what pack --optimize would do --------------------------- */

/*
 * What -O would save: pack's own pipeline (lp_optimize) run dry on a copy
 * of the entry list, so the figures agree with what pack then saves by
 * construction, not by keeping two rule sets in step. Strip sizes come
 * from the plans the readers made while they had the bytes. Only the
 * changes are kept: the dry run's findings ("deduplicated ...") describe
 * work that was not done; analyze reports duplicates on its own.
 */
#define IMAGE_TASK_ROOT "var/task"	/* when the config sets no LAMBDA_TASK_ROOT */

/*
 * An image's files as `container` had them before placing them: the task
 * root's content at the top, /opt as opt/, and the base image's files left
 * out (container -O never touches them). Then the junk rules and dedupe's
 * choice of the copy to keep see the same paths they saw in pack.
 */
static void image_to_function(struct lp_entries *l, const char *root)
{
	size_t plen = strlen(root);

	for (size_t i = 0; i < l->n; i++) {
		struct lp_entry *e = &l->v[i];

		if (!strncmp(e->path, root, plen) && e->path[plen] == '/')
			memmove(e->path, e->path + plen + 1, strlen(e->path + plen + 1) + 1);
		else if (strcmp(e->path, "opt") != 0 && strncmp(e->path, "opt/", 4) != 0)
			e->flags |= LP_F_REMOVED;
	}
	lp_entries_compact(l);
	lp_entries_sort(l);
}

/*
 * The changes name a package per junk rule; the treemap wants the files.
 * A file of the function that the dry run no longer has was pruned.
 */
static void mark_prunable(struct lp_analysis *a, struct lp_entries *scratch, const char *root)
{
	size_t plen = strlen(root);

	lp_entries_sort(scratch);
	for (size_t i = 0; i < a->entries.n; i++) {
		struct lp_entry *e = &a->entries.v[i], *s;
		const char *p = e->path;

		if (e->kind == LP_DIR)
			continue;
		if (a->is_image) {
			if (!strncmp(p, root, plen) && p[plen] == '/')
				p += plen + 1;
			else if (strncmp(p, "opt/", 4) != 0)
				continue;
		}
		s = lp_entries_find(scratch, p);
		if (!s || (s->flags & LP_F_REMOVED))
			e->flags |= LP_ANA_F_PRUNABLE;
	}
}

static int ana_estimate_savings(struct lp_analysis *a)
{
	struct lp_opt_set set = {
		.prune_foreign = true,
		.prune_junk = true,
		.strip = true,
		.dedupe = LP_DEDUPE_BINARIES,	/* what -O turns on */
		.arch = a->arch,
	};
	struct lp_entries scratch;
	struct lp_report rep;
	struct lp_opt_saved sv;
	const char *root = a->img_task_root ? a->img_task_root : IMAGE_TASK_ROOT;
	int r;

	r = lp_entries_clone(&scratch, &a->entries);
	if (r < 0)
		return r;
	if (a->is_image)
		image_to_function(&scratch, root);
	lp_report_init(&rep);
	r = lp_optimize(&scratch, &set, &rep, &sv);
	if (r == 0)
		mark_prunable(a, &scratch, root);
	for (size_t i = 0; r == 0 && i < rep.n_changes; i++) {
		const struct lp_change *c = &rep.changes[i];
		char *p = NULL;

		if (!strcmp(c->action, "strip-skipped"))
			continue;
		/* Report the path as it is in the image. */
		if (a->is_image && c->path && strcmp(c->path, "opt") != 0 && strncmp(c->path, "opt/", 4) != 0 &&
		    asprintf(&p, "%s/%s", root, c->path) < 0) {
			r = -ENOMEM;
			break;
		}
		r = lp_report_change(&a->report, c->action, p ? p : c->path, c->saved, "%s",
				     c->detail ? c->detail : "");
		free(p);
	}
	if (r == 0) {
		a->savings = (struct lp_ana_savings){
			.strip = sv.strip, .dedupe = sv.dedupe, .foreign = sv.foreign, .junk = sv.junk,
			.total = sv.total, .n_strip = sv.n_strip, .n_dedupe = sv.n_dedupe,
			.n_foreign = sv.n_foreign, .n_junk = sv.n_junk,
		};
	}
	lp_report_free(&rep);
	lp_entries_free(&scratch);
	return r;
}

/* ---- compatibility ------------------------------------------------------- */

/* The same checks pack runs (glibc vs runtime, arch, Mach-O/PE, DT_NEEDED): one implementation. */
static int ana_check_compat(struct lp_analysis *a)
{
	struct lp_check_opts co = { .runtime = a->runtime, .arch = a->arch, .warn_only = false,
				    .image = a->kind >= LP_ANA_OCI_LAYOUT };

	return lp_check_entries(&a->entries, &co, &a->report);
}

/* ---- budgets ------------------------------------------------------------- */

static int budgets(struct lp_analysis *a)
{
	char h1[32], h2[32];
	int r = 0;

	if (a->is_image) {
		lp_budget_image(a->img_size, &a->b_image);
		if (a->b_image.over)
			r = lp_report_finding(&a->report, LP_SEV_ERROR, "over-image-limit", NULL,
					      "image is %s uncompressed, over Lambda's 10 GiB limit",
					      lp_human_size(a->img_size, h1, sizeof(h1)));
		return r;
	}
	lp_budget_unzipped(a->unzipped, a->layers_unzipped, &a->b_unzipped);
	lp_budget_zipped(a->zipped, &a->b_zipped);
	if (a->b_unzipped.over)
		r = lp_report_finding(&a->report, LP_SEV_ERROR, "over-unzipped-limit", NULL,
				      "Unzipped size must be smaller than %" PRIu64 " bytes: function is %" PRIu64
				      " bytes (%s over)", a->b_unzipped.limit, a->unzipped,
				      lp_human_size(a->b_unzipped.over_by, h1, sizeof(h1)));
	if (r == 0 && a->b_zipped.over)
		r = lp_report_finding(&a->report, LP_SEV_WARNING, "over-zipped-limit", NULL,
				      "zip is %s%s, over the 50 MiB direct-upload limit (%s over); upload through S3",
				      a->zipped_estimated ? "about " : "", lp_human_size(a->zipped, h1, sizeof(h1)),
				      lp_human_size(a->b_zipped.over_by, h2, sizeof(h2)));
	return r;
}

/* ---- Dive ---------------------------------------------------------------- */

struct dnode {
	uint64_t size;
	bool isdir;
	bool gone;
};

struct eff {
	uint64_t cum, min;
	size_t count;
};

static int add_ancestors(struct ana_map *parents, struct lp_strv *store, const char *path)
{
	char buf[PATH_MAX];
	int r;

	snprintf(buf, sizeof(buf), "%s", path);
	for (size_t pl = lp_path_parent_len(buf); pl; pl = lp_path_parent_len(buf)) {
		buf[pl] = '\0';
		if (ana_map_get(parents, buf))
			break;	/* its ancestors are in already */
		if ((r = lp_strv_push(store, buf)) < 0)
			return r;
		if ((r = ana_map_put(parents, store->v[store->n - 1], 1)) < 0)
			return r;
	}
	return 0;
}

static int cmp_multi(const void *x, const void *y)
{
	const struct lp_ana_multi *a = x, *b = y;

	if (a->cumulative != b->cumulative)
		return a->cumulative < b->cumulative ? 1 : -1;
	return strcmp(a->path, b->path);
}

/*
 * Dive's filetree.Efficiency, reproduced: visit every leaf of every layer
 * tree; a path's CumulativeSize adds its size in each layer, a whiteout
 * counts the stacked subtree it deletes only when that was a directory
 * (a deleted file counts 0); score = sum(min) / sum(cumulative); wasted =
 * sum(cumulative) over paths seen in >= 2 layers. Opaque markers are not
 * tree nodes in Dive. Sizes are tar header sizes.
 */
int lp_analyze_dive(struct lp_analysis *a)
{
	struct ana_map effm = { 0 }, stk = { 0 };
	struct eff *ev = NULL;
	struct dnode *sv = NULL;
	struct lp_strv ekeys = { 0 }, skeys = { 0 };
	size_t ne = 0, cape = 0, ns = 0, caps = 0;
	uint64_t sum_min = 0, sum_cum = 0;
	int r;

	if ((r = ana_map_init(&effm, 1024)) < 0 || (r = ana_map_init(&stk, 1024)) < 0)
		goto out;
	a->img_size = a->user_size = a->img_compressed = 0;
	for (size_t li = 0; li < a->n_layers; li++) {
		const struct lp_entries *le = &a->layers[li].entries;
		struct ana_map parents, nodes;
		struct lp_strv pstore = { 0 }, nlist = { 0 };

		a->img_size += a->layers[li].size;
		a->img_compressed += a->layers[li].compressed;
		if (li)
			a->user_size += a->layers[li].size;
		if ((r = ana_map_init(&parents, le->n)) < 0)
			goto out;
		if ((r = ana_map_init(&nodes, le->n)) < 0) {
			ana_map_free(&parents);
			goto out;
		}
		/*
		 * The layer's tree: one node per path (the last entry for it;
		 * an opaque marker only makes its directory exist), and every
		 * ancestor as a parent. nlist keeps first-seen order.
		 */
		for (size_t k = 0; k < le->n && r == 0; k++) {
			const struct lp_entry *e = &le->v[k];
			bool opq = e->flags & LP_ANA_F_OPAQUE;

			if (!*e->path)
				continue;
			size_t *ni = ana_map_get(&nodes, e->path);

			if (!ni) {
				if ((r = lp_strv_push(&nlist, e->path)) < 0)
					break;
				r = ana_map_put(&nodes, nlist.v[nlist.n - 1], opq ? SIZE_MAX : k);
			} else if (!opq) {
				*ni = k;	/* a real entry wins over an opaque marker */
			}
			if (r == 0)
				r = add_ancestors(&parents, &pstore, e->path);
		}
		/* Visit the leaves against the stack of layers below. */
		for (size_t q = 0; q < nlist.n && r == 0; q++) {
			const char *path = nlist.v[q];
			size_t ni = *ana_map_get(&nodes, path);
			const struct lp_entry *e = ni == SIZE_MAX ? NULL : &le->v[ni];
			uint64_t sz = 0;
			size_t *ei;

			if (ana_map_get(&parents, path))
				continue;	/* not a leaf */
			if (e && (e->flags & LP_ANA_F_WHITEOUT)) {
				size_t *si = ana_map_get(&stk, path);

				if (si && !sv[*si].gone && sv[*si].isdir) {
					size_t plen = strlen(path);

					for (size_t j = 0; j < ns; j++)
						if (!sv[j].gone && (j == *si || (!strncmp(skeys.v[j], path, plen) &&
										skeys.v[j][plen] == '/')))
							sz += sv[j].size;
				}
			} else if (e) {
				sz = e->stored_size;
			}
			ei = ana_map_get(&effm, path);
			if (!ei) {
				if (ne == cape) {
					size_t cap = cape ? cape * 2 : 1024;
					struct eff *v = realloc(ev, cap * sizeof(*v));

					if (!v) {
						r = -ENOMEM;
						break;
					}
					ev = v;
					cape = cap;
				}
				if ((r = lp_strv_push(&ekeys, path)) < 0 ||
				    (r = ana_map_put(&effm, ekeys.v[ekeys.n - 1], ne)) < 0)
					break;
				ev[ne].cum = 0;
				ev[ne].min = UINT64_MAX;
				ev[ne].count = 0;
				ei = ana_map_get(&effm, path);
				ne++;
			}
			ev[*ei].cum += sz;
			if (sz < ev[*ei].min)
				ev[*ei].min = sz;
			ev[*ei].count++;
		}
		/* Stack this layer: whiteouts remove, every other node (intermediates too) sets its payload. */
		for (size_t q = 0; q < nlist.n && r == 0; q++) {
			const char *path = nlist.v[q];
			size_t ni = *ana_map_get(&nodes, path), plen = strlen(path);

			if (ni == SIZE_MAX || !(le->v[ni].flags & LP_ANA_F_WHITEOUT))
				continue;
			for (size_t j = 0; j < ns; j++)
				if (!sv[j].gone && (!strcmp(skeys.v[j], path) ||
						    (!strncmp(skeys.v[j], path, plen) && skeys.v[j][plen] == '/')))
					sv[j].gone = true;
		}
		for (size_t q = 0; q < nlist.n + pstore.n && r == 0; q++) {
			const char *path = q < nlist.n ? nlist.v[q] : pstore.v[q - nlist.n];
			const struct lp_entry *e = NULL;
			size_t *si;

			if (q < nlist.n) {
				size_t ni = *ana_map_get(&nodes, path);

				e = ni == SIZE_MAX ? NULL : &le->v[ni];
				if (e && (e->flags & LP_ANA_F_WHITEOUT))
					continue;
			} else if (ana_map_get(&nodes, path)) {
				continue;	/* done as a node */
			}
			si = ana_map_get(&stk, path);
			if (!si) {
				if (ns == caps) {
					size_t cap = caps ? caps * 2 : 1024;
					struct dnode *v = realloc(sv, cap * sizeof(*v));

					if (!v) {
						r = -ENOMEM;
						break;
					}
					sv = v;
					caps = cap;
				}
				if ((r = lp_strv_push(&skeys, path)) < 0 ||
				    (r = ana_map_put(&stk, skeys.v[skeys.n - 1], ns)) < 0)
					break;
				si = ana_map_get(&stk, path);
				ns++;
			}
			/* Dive's AddPath sets an empty payload on intermediate nodes. */
			sv[*si].size = e ? e->stored_size : 0;
			sv[*si].isdir = e ? e->kind == LP_DIR : false;
			sv[*si].gone = false;
		}
		ana_map_free(&parents);
		ana_map_free(&nodes);
		lp_strv_free(&pstore);
		lp_strv_free(&nlist);
		if (r < 0)
			goto out;
	}
	/* Score and the paths seen in several layers. */
	a->wasted = 0;
	a->n_multi = 0;
	for (size_t i = 0; i < ne; i++) {
		sum_min += ev[i].min;
		sum_cum += ev[i].cum;
		if (ev[i].count >= 2)
			a->n_multi++;
	}
	a->multi = calloc(a->n_multi ? a->n_multi : 1, sizeof(*a->multi));
	if (!a->multi) {
		r = -ENOMEM;
		goto out;
	}
	a->n_multi = 0;
	for (size_t i = 0; i < ne; i++) {
		struct lp_ana_multi *m;

		if (ev[i].count < 2)
			continue;
		m = &a->multi[a->n_multi++];
		if (!(m->path = malloc(strlen(ekeys.v[i]) + 2))) {
			r = -ENOMEM;
			goto out;
		}
		sprintf(m->path, "/%s", ekeys.v[i]);
		m->count = ev[i].count;
		m->cumulative = ev[i].cum;
		m->min_size = ev[i].min;
		a->wasted += ev[i].cum;
	}
	qsort(a->multi, a->n_multi, sizeof(*a->multi), cmp_multi);
	a->efficiency = sum_cum ? (double)sum_min / (double)sum_cum : 1.0;
	a->user_wasted_pct = a->user_size ? (double)a->wasted / (double)a->user_size : 0.0;
out:
	ana_map_free(&effm);
	ana_map_free(&stk);
	lp_strv_free(&ekeys);
	lp_strv_free(&skeys);
	free(ev);
	free(sv);
	return r;
}

/* ---- putting it together ------------------------------------------------- */

static bool excluded(const struct lp_strv *ex, const char *path)
{
	char buf[PATH_MAX];

	if (!ex->n)
		return false;
	snprintf(buf, sizeof(buf), "%s", path);
	/* A pattern matching the path or any of its parent directories. */
	for (;;) {
		for (size_t i = 0; i < ex->n; i++) {
			char pat[PATH_MAX];
			size_t pl = strlen(ex->v[i]);

			snprintf(pat, sizeof(pat), "%s", ex->v[i]);
			if (pl > 1 && pat[pl - 1] == '/')
				pat[pl - 1] = '\0';
			if (lp_glob_match(pat, buf))
				return true;
		}
		size_t pl = lp_path_parent_len(buf);

		if (!pl)
			return false;
		buf[pl] = '\0';
	}
}

static enum lp_arch detect_arch(const struct lp_analysis *a)
{
	uint64_t bytes[LP_ARCH_OTHER + 1] = { 0 };
	enum lp_arch best = LP_ARCH_UNKNOWN;

	for (size_t i = 0; i < a->entries.n; i++) {
		const struct lp_entry *e = &a->entries.v[i];

		if (e->bin && e->binfmt == LP_BIN_ELF && e->bin->arch <= LP_ARCH_OTHER)
			bytes[e->bin->arch] += e->size + 1;
	}
	for (int x = LP_ARCH_X86_64; x <= LP_ARCH_ARM; x++)
		if (bytes[x] > (best == LP_ARCH_UNKNOWN ? 0 : bytes[best]))
			best = (enum lp_arch)x;
	return best;
}

int lp_analyze_compute(struct lp_analysis *a, const struct lp_ana_opts *o)
{
	size_t files, dirs, links;
	int r;

	if (a->kind != LP_ANA_DIR && o->excludes.n) {
		for (size_t i = 0; i < a->entries.n; i++)
			if (excluded(&o->excludes, a->entries.v[i].path))
				a->entries.v[i].flags |= LP_F_REMOVED;
		lp_entries_compact(&a->entries);
	}
	lp_entries_count(&a->entries, &files, &dirs, &links);
	a->n_files = files;
	a->n_dirs = dirs;
	a->n_links = links;
	a->unzipped = lp_entries_unzipped_size(&a->entries);
	a->runtime = o->runtime;
	a->arch = o->arch;
	if (a->arch == LP_ARCH_UNKNOWN && a->img_arch)
		a->arch = lp_arch_parse(a->img_arch);
	if (a->arch == LP_ARCH_UNKNOWN)
		a->arch = detect_arch(a);
	a->zip_relevant = !a->is_image;
	if (a->kind == LP_ANA_ZIP && a->target) {
		struct stat st;

		if (stat(a->target, &st) == 0)
			a->zipped = (uint64_t)st.st_size;
	} else if (!a->is_image) {
		uint64_t z = 22;	/* end of central directory */

		for (size_t i = 0; i < a->entries.n; i++) {
			const struct lp_entry *e = &a->entries.v[i];

			z += ana_zip_overhead(e->path, e->kind);
			z += e->kind == LP_FILE ? e->stored_size : e->size;
		}
		a->zipped = z;
		a->zipped_estimated = true;
	}
	if (a->is_image && (r = lp_analyze_dive(a)) < 0)
		return r;
	if ((r = budgets(a)) < 0 || (r = contributors(a)) < 0 || (r = duplicates(a)) < 0 ||
	    (r = ana_estimate_savings(a)) < 0 || (r = ana_check_compat(a)) < 0)
		return r;
	return 0;
}

int lp_analyze_target(const char *path, const struct lp_ana_opts *o, struct lp_analysis *a)
{
	double t0 = lp_now();
	int r;

	lp_analysis_init(a);
	if (!(a->target = strdup(path)))
		return -ENOMEM;
	for (size_t i = 0; i < o->with_layers.n; i++) {
		uint64_t sz = 0;

		if ((r = lp_zip_unzipped_size(o->with_layers.v[i], &sz)) < 0)
			return r;
		a->layers_unzipped += sz;
	}
	r = ana_read(path, o, a);
	if (r < 0)
		return r;
	a->t_read = lp_now() - t0;
	r = lp_analyze_compute(a, o);
	a->t_total = lp_now() - t0;
	return r;
}
