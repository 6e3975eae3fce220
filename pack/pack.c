/* SPDX-License-Identifier: MIT */
#include "pack/pack.h"
#include "cache/cache.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "container/oci.h"
#include "input/input.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* 1980-01-01T00:00:00Z: the earliest time a zip's DOS fields can hold. */
#define LP_DEFAULT_EPOCH 315532800LL

void lp_pack_opts_init(struct lp_pack_opts *o)
{
	const char *sde = getenv("SOURCE_DATE_EPOCH");

	memset(o, 0, sizeof(*o));
	o->level = 6;
	o->dedupe = LP_DEDUPE_OFF;
	o->fallback = LP_FALLBACK_CONTAINER;
	o->epoch = LP_DEFAULT_EPOCH;
	if (sde && *sde) {
		char *end;
		long long v = strtoll(sde, &end, 10);

		if (*end == '\0' && v >= 0)
			o->epoch = v;
	}
}

void lp_pack_opts_free(struct lp_pack_opts *o)
{
	for (size_t i = 0; i < o->n_sources; i++)
		lp_source_free(&o->sources[i]);
	free(o->sources);
	lp_strv_free(&o->input.excludes);
	lp_input_skip_free(&o->input);
	lp_strv_free(&o->junk_patterns);
	lp_strv_free(&o->layers);
	memset(o, 0, sizeof(*o));
}

void lp_pack_opts_resolve(struct lp_pack_opts *o)
{
	if (!o->optimize)
		return;
	if (!(o->explicit_opts & LP_OPT_STRIP))
		o->strip = true;
	if (!(o->explicit_opts & LP_OPT_DEDUPE))
		o->dedupe = LP_DEDUPE_BINARIES;
	if (!(o->explicit_opts & LP_OPT_PRUNE_FOREIGN))
		o->prune_foreign = true;
	if (!(o->explicit_opts & LP_OPT_PRUNE_JUNK))
		o->prune_junk = true;
}

void lp_pack_state_init(struct lp_pack_state *st)
{
	memset(st, 0, sizeof(*st));
	lp_entries_init(&st->entries);
	lp_report_init(&st->report);
}

void lp_pack_state_free(struct lp_pack_state *st)
{
	lp_entries_free(&st->entries);
	lp_report_free(&st->report);
	if (st->stage_dir) {
		lp_rm_rf(st->stage_dir);
		lp_cleanup_unregister(st->stage_dir);
		free(st->stage_dir);
	}
	memset(st, 0, sizeof(*st));
}

int lp_zip_unzipped_size(const char *path, uint64_t *ret)
{
	struct archive *ar = archive_read_new();
	struct archive_entry *ae;
	uint64_t sum = 0;
	int r = 0, ar_r;

	if (!ar)
		return -ENOMEM;
	archive_read_support_format_zip(ar);
	if (archive_read_open_filename(ar, path, 1 << 16) != ARCHIVE_OK) {
		r = lp_fail(archive_errno(ar) == ENOENT ? -ENOENT : -LP_E_BADARCHIVE, path,
			    "cannot read layer zip: %s", lp_archive_error(ar));
		goto out;
	}
	while ((ar_r = archive_read_next_header(ar, &ae)) == ARCHIVE_OK || ar_r == ARCHIVE_WARN) {
		if (archive_entry_size_is_set(ae))
			sum += (uint64_t)archive_entry_size(ae);
		archive_read_data_skip(ar);
	}
	if (ar_r != ARCHIVE_EOF)
		r = lp_fail(-LP_E_BADARCHIVE, path, "corrupt layer zip: %s", lp_archive_error(ar));
	else
		*ret = sum;
out:
	archive_read_free(ar);
	return r;
}

/* ---- pipeline --------------------------------------------------------- */

static int lp_pack_optimize(struct lp_pack_opts *o, struct lp_pack_state *st)
{
	struct lp_opt_set set = {
		.prune_dev = !o->include_dev,
		.prune_foreign = o->prune_foreign,
		.prune_junk = o->prune_junk,
		.strip = o->strip,
		.dedupe = o->dedupe,
		.junk_patterns = &o->junk_patterns,
		.stage_dir = st->stage_dir,	/* lp_opt_strip stages under strip/ */
		.cache_dir = o->cache_dir,
		.threads = o->threads ? o->threads : lp_ncpus(),
	};

	if (st->arch == LP_ARCH_UNKNOWN) {
		bool found = false;

		st->arch = lp_detect_arch_ex(&st->entries, &found);
		st->arch_source = found ? "detected from binaries" : "default";
	} else {
		st->arch_source = "given";
	}
	set.arch = st->arch;
	return lp_optimize(&st->entries, &set, &st->report, &st->saved);
}

static int lp_pack_check(struct lp_pack_opts *o, struct lp_pack_state *st)
{
	struct lp_check_opts co = { .runtime = o->runtime, .arch = st->arch, .warn_only = o->no_check,
				    .image = o->image, .handler = o->handler };

	return lp_check_entries(&st->entries, &co, &st->report);
}

static int index_memo(void *ctx, const char *path, const struct stat *st, uint8_t digest[32], uint32_t *facts)
{
	return lp_cache_index_lookup_facts(ctx, path, st, digest, facts);
}

int lp_pack_prepare(struct lp_pack_opts *o, struct lp_pack_state *st)
{
	struct lp_input_opts in = o->input;
	char stage_in[4096];
	double t0 = lp_now();
	int r;

	lp_pack_opts_resolve(o);
	if (o->n_sources == 0)
		return lp_fail(-LP_E_USAGE, NULL, "no SOURCE given");
	for (size_t i = 0; i < o->layers.n; i++) {
		uint64_t sz = 0;

		r = lp_zip_unzipped_size(o->layers.v[i], &sz);
		if (r < 0)
			return r;
		st->layers_unzipped += sz;
	}
	r = lp_tmpdir_create("stage", &st->stage_dir);
	if (r < 0)
		return r;
	/* A TMPDIR inside a source must not feed the staged copies back in. */
	r = lp_input_skip_add(&o->input, st->stage_dir, "the staging directory");
	if (r < 0)
		return r;
	in.skip = o->input.skip;	/* moved by the add */
	in.n_skip = o->input.n_skip;
	snprintf(stage_in, sizeof(stage_in), "%s/in", st->stage_dir);
	if (mkdir(stage_in, 0700) < 0)
		return lp_fail(-errno, stage_in, "cannot create staging directory: %s", strerror(errno));
	in.stage_dir = stage_in;
	in.digest = true;
	in.binfo = true;
	in.problems = &st->report;
	if (o->cache && o->index_in_walk && lp_cache_enabled(o->cache)) {
		in.memo.lookup = index_memo;
		in.memo.ctx = o->cache;
	}
	r = lp_input_load_all(o->sources, o->n_sources, &in, o->overwrite, &st->entries);
	st->n_problems = lp_report_count(&st->report, LP_SEV_ERROR);
	if (r < 0)
		return r;
	if (st->n_problems) {
		const struct lp_finding *f = st->report.findings;

		while (f->sev != LP_SEV_ERROR)
			f++;
		/* Callers that print only the error still see the first problem. */
		if (st->n_problems == 1)
			return lp_fail(-LP_E_INPUT, NULL, "%s [%s]", f->message, f->code);
		return lp_fail(-LP_E_INPUT, NULL, "%zu %s in the input; the first: %s [%s]", st->n_problems,
				      lp_plural(st->n_problems, "problem", "problems"),
			       f->message, f->code);
	}
	/*
	 * No digests here: the emitters need none, and dedupe hashes only files
	 * that share a size (as fdupes does), so most bytes are read once, by
	 * the emitter.
	 */
	r = lp_entries_classify(&st->entries, false, true, o->threads);
	if (r < 0)
		return r;
	st->input_bytes = lp_entries_unzipped_size(&st->entries);
	st->arch = o->arch;
	st->t_load = lp_now() - t0;

	t0 = lp_now();
	r = lp_pack_optimize(o, st);
	if (r < 0)
		return r;
	st->t_optimize = lp_now() - t0;
	return lp_pack_check(o, st);
}

/* ---- contributors ----------------------------------------------------- */

const char *lp_group_key(const char *path, char *buf, size_t len)
{
	const char *p = path, *nm = NULL, *sp;
	size_t n;

	/* The innermost node_modules wins: a nested dependency is its own package. */
	for (const char *s = strstr(p, "node_modules/"); s; s = strstr(s + 1, "node_modules/"))
		if (s == path || s[-1] == '/')
			nm = s;
	if (nm) {
		const char *pkg = nm + strlen("node_modules/");
		const char *end = strchr(pkg, '/');

		if (end && *pkg == '@')
			end = strchr(end + 1, '/');
		n = end ? (size_t)(end - path) : strlen(path);
		snprintf(buf, len, "%.*s", (int)n, path);
		return buf;
	}
	sp = strstr(p, "site-packages/");
	if (sp) {
		const char *pkg = sp + strlen("site-packages/");
		const char *end = strchr(pkg, '/');

		n = end ? (size_t)(end - path) : strlen(path);
		snprintf(buf, len, "%.*s", (int)n, path);
		return buf;
	}
	if (!strncmp(p, "python/", 7) || !strncmp(p, "vendor/", 7)) {
		const char *pkg = p + 7;
		const char *end = strchr(pkg, '/');

		n = end ? (size_t)(end - path) : strlen(path);
		snprintf(buf, len, "%.*s", (int)n, path);
		return buf;
	}
	n = strcspn(path, "/");
	snprintf(buf, len, "%.*s", (int)n, path);
	return buf;
}

static int cmp_contrib(const void *a, const void *b)
{
	const struct lp_contrib *x = a, *y = b;

	if (x->bytes != y->bytes)
		return x->bytes < y->bytes ? 1 : -1;
	return strcmp(x->name, y->name);
}

static uint64_t entry_bytes(const struct lp_entry *e)
{
	if (e->kind == LP_FILE && !(e->flags & LP_F_DUPLICATE))
		return e->size;
	if (e->kind == LP_SYMLINK)
		return e->size;
	return 0;
}

int lp_pack_top_files(const struct lp_entries *l, size_t n, struct lp_contrib **ret, size_t *ret_n)
{
	struct lp_contrib *v = calloc(l->n ? l->n : 1, sizeof(*v));
	size_t k = 0;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i].kind != LP_FILE)
			continue;
		v[k].name = l->v[i].path;	/* borrowed until the copy below */
		v[k].bytes = entry_bytes(&l->v[i]);
		v[k].count = 1;
		k++;
	}
	qsort(v, k, sizeof(*v), cmp_contrib);
	if (k > n)
		k = n;
	for (size_t i = 0; i < k; i++)
		v[i].name = strdup(v[i].name);
	*ret = v;
	*ret_n = k;
	return 0;
}

int lp_pack_top_groups(const struct lp_entries *l, size_t n, struct lp_contrib **ret, size_t *ret_n)
{
	struct lp_contrib *v = calloc(l->n ? l->n : 1, sizeof(*v));
	size_t k = 0;
	char key[4096];

	if (!v)
		return -ENOMEM;
	/* Sorted input keeps a group's members together except across nested packages. */
	for (size_t i = 0; i < l->n; i++) {
		const struct lp_entry *e = &l->v[i];
		size_t j;

		if (e->kind == LP_DIR)
			continue;
		lp_group_key(e->path, key, sizeof(key));
		for (j = k; j > 0; j--)
			if (strcmp(v[j - 1].name, key) == 0)
				break;
		if (j == 0) {
			v[k].name = strdup(key);
			if (!v[k].name) {
				lp_contrib_free(v, k);
				return -ENOMEM;
			}
			j = ++k;
		}
		v[j - 1].bytes += entry_bytes(e);
		v[j - 1].count++;
	}
	qsort(v, k, sizeof(*v), cmp_contrib);
	for (size_t i = n; i < k; i++)
		free(v[i].name);
	*ret = v;
	*ret_n = k < n ? k : n;
	return 0;
}

void lp_contrib_free(struct lp_contrib *c, size_t n)
{
	if (!c)
		return;
	for (size_t i = 0; i < n; i++)
		free(c[i].name);
	free(c);
}

const char *lp_pack_fallback_path(const struct lp_pack_opts *o, const char *image_output, char *buf, size_t len)
{
	size_t n;

	if (image_output) {
		snprintf(buf, len, "%s", image_output);
		return buf;
	}
	/* function.zip -> function.oci (an OCI layout directory) */
	n = strlen(o->output);
	if (n > 4 && strcmp(o->output + n - 4, ".zip") == 0)
		n -= 4;
	snprintf(buf, len, "%.*s.oci", (int)n, o->output);
	return buf;
}

int lp_pack_fallback_image(const struct lp_pack_opts *o, struct lp_pack_state *st,
			   const char *image_output, struct lp_pack_result *res)
{
	static _Thread_local char path[4096], reason[160];
	struct lp_oci_opts oo;
	struct lp_oci_result orr;
	struct lp_budget b;
	double t0 = lp_now();
	int r;

	lp_pack_fallback_path(o, image_output, path, sizeof(path));
	lp_budget_unzipped(lp_entries_unzipped_size(&st->entries), st->layers_unzipped, &b);
	snprintf(reason, sizeof(reason), "unzipped size %llu bytes is not smaller than %llu",
		 (unsigned long long)b.used, (unsigned long long)b.limit);
	lp_oci_opts_init(&oo);
	oo.output = path;
	oo.arch = st->arch;
	oo.threads = o->threads;
	oo.epoch = o->epoch;
	oo.report = &st->report;
	oo.base = o->image_base;
	oo.handler = o->image_handler;
	oo.entrypoint = o->image_entrypoint;
	/* Like every compatibility check of pack: an error unless --no-check. */
	oo.check_runnable = true;
	oo.check_warn = o->no_check;
	oo.runtime = o->runtime;
	oo.cache = o->cache;
	memset(&orr, 0, sizeof(orr));
	r = lp_oci_write(&st->entries, &oo, &orr);
	res->base_failed = orr.base_failed;
	if (r < 0)
		return r;
	res->artifact = "oci-layout";
	res->path = path;
	res->entries = st->entries.n;
	res->unzipped = orr.usize;
	res->zipped = orr.csize;
	/* An image has no CodeSha256: it is named by its manifest digest ("sha256:<hex>"). */
	snprintf(res->manifest_digest, sizeof(res->manifest_digest), "%s", orr.manifest_digest);
	res->unzipped_budget = orr.budget;
	lp_budget_zipped(0, &res->zipped_budget);
	res->fallback_reason = reason;
	res->t_write = lp_now() - t0;
	lp_oci_result_free(&orr);
	return 0;
}
