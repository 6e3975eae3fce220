/* SPDX-License-Identifier: MIT */
/* pack's members of the report envelope (docs/report.md). */
#include "pack/pack.h"
#include "core/envelope.h"
#include "core/json.h"

#include <errno.h>
#include <string.h>

static int add_contribs(cJSON *parent, const char *key, const struct lp_contrib *c, size_t n)
{
	cJSON *arr = lp_json_arr(parent, key);

	if (!arr)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		cJSON *o = lp_json_push_obj(arr);

		if (!o || lp_json_str(o, "path", c[i].name) || lp_json_u64(o, "bytes", c[i].bytes) ||
		    lp_json_u64(o, "files", c[i].count))
			return -ENOMEM;
	}
	return 0;
}

int lp_pack_json_links(struct cJSON *parent, const struct lp_pack_state *st)
{
	cJSON *o = lp_json_obj(parent, "materialized_links"), *arr;
	uint64_t bytes = 0, n = 0;

	if (!o || !(arr = lp_json_arr(o, "links")))
		return -ENOMEM;
	for (size_t i = 0; i < st->report.n_findings; i++) {
		const struct lp_finding *f = &st->report.findings[i];
		cJSON *l;

		if (strcmp(f->code, "materialized-link") != 0)
			continue;
		n++;
		if (!(l = lp_json_push_obj(arr)) || lp_json_str(l, "path", f->path) || lp_json_str(l, "message", f->message))
			return -ENOMEM;
	}
	for (size_t i = 0; i < st->entries.n; i++) {
		const struct lp_entry *e = &st->entries.v[i];

		if (e->kind == LP_FILE && (e->flags & LP_F_MATERIALIZED) && !(e->flags & LP_F_REMOVED))
			bytes += e->size;
	}
	if (lp_json_u64(o, "count", n) || lp_json_u64(o, "bytes", bytes))
		return -ENOMEM;
	return 0;
}

int lp_pack_json(const struct lp_pack_opts *o, const struct lp_pack_state *st, bool prepared,
		 const struct lp_pack_result *res, struct cJSON *env)
{
	cJSON *a = lp_envelope_artifact(env), *sz, *cnt, *arr;
	struct lp_contrib *top = NULL, *groups = NULL;
	size_t ntop = 0, ngroups = 0, files, dirs, links;
	bool written = res && res->artifact;
	bool image = written && !strcmp(res->artifact, "oci-layout");
	uint64_t unzipped = written ? res->unzipped : lp_entries_unzipped_size(&st->entries);
	int r = -ENOMEM;

	/* What would have been written, when nothing was. */
	if (!a || lp_json_str(a, "type", written ? res->artifact : "zip") ||
	    lp_json_str(a, "path", written ? res->path : o->output) || lp_json_bool(a, "written", written))
		goto out;
	if (written && !image &&
	    (lp_json_u64(a, "bytes", res->zipped) || lp_json_str(a, "sha256", res->sha256_hex) ||
	     lp_json_str(a, "code_sha256", res->code_sha256)))
		goto out;
	if (image && (lp_json_u64(a, "bytes", res->zipped) || lp_json_str(a, "manifest_digest", res->manifest_digest) ||
		      lp_json_str(a, "fallback_reason", res->fallback_reason)))
		goto out;
	/* Only the limits of the artifact: an image has no zip limits. */
	if (image) {
		if (lp_envelope_limit(env, "image", &res->unzipped_budget))
			goto out;
	} else if (written) {
		if (lp_envelope_limit(env, "unzipped", &res->unzipped_budget) ||
		    lp_envelope_limit(env, "zipped", &res->zipped_budget))
			goto out;
	} else if (prepared) {
		struct lp_budget b;

		lp_budget_unzipped(unzipped, st->layers_unzipped, &b);
		if (lp_envelope_limit(env, "unzipped", &b))
			goto out;
	}
	if (lp_envelope_findings(env, &st->report) || lp_envelope_time(env, "load_s", st->t_load) ||
	    lp_envelope_time(env, "optimize_s", st->t_optimize) ||
	    lp_envelope_time(env, "write_s", written ? res->t_write : 0))
		goto out;
	if (!prepared) {
		r = 0;
		goto out;
	}
	if (lp_envelope_target(env, lp_arch_name(st->arch), o->runtime) ||
	    lp_json_str(cJSON_GetObjectItemCaseSensitive(env, "target"), "arch_source", st->arch_source))
		goto out;
	sz = lp_json_obj(env, "sizes");
	if (!sz || lp_json_u64(sz, "input_unzipped", st->input_bytes) ||
	    lp_json_u64(sz, "unzipped", unzipped) || lp_json_u64(sz, "zipped", written ? res->zipped : 0) ||
	    lp_json_u64(sz, "layers_unzipped", st->layers_unzipped) ||
	    lp_json_u64(sz, "saved", st->input_bytes > unzipped ? st->input_bytes - unzipped : 0))
		goto out;
	/* Per optimizer, in pipeline order; analyze's "savings" uses the same names and figures. */
	a = lp_json_obj(sz, "saved_by");
	if (!a || lp_json_u64(a, "prune_foreign", st->saved.foreign) ||
	    lp_json_u64(a, "prune_junk", st->saved.junk) ||
	    lp_json_u64(a, "prune_dev", st->saved.dev) || lp_json_u64(a, "strip", st->saved.strip) ||
	    lp_json_u64(a, "dedupe", st->saved.dedupe))
		goto out;
	lp_entries_count(&st->entries, &files, &dirs, &links);
	cnt = lp_json_obj(env, "counts");
	if (!cnt || lp_json_u64(cnt, "entries", written ? res->entries : files + dirs + links) ||
	    lp_json_u64(cnt, "files", files) || lp_json_u64(cnt, "directories", dirs) ||
	    lp_json_u64(cnt, "symlinks", links))
		goto out;
	if (lp_pack_top_files(&st->entries, 10, &top, &ntop) || lp_pack_top_groups(&st->entries, 10, &groups, &ngroups))
		goto out;
	if (add_contribs(env, "largest_files", top, ntop) || add_contribs(env, "largest_groups", groups, ngroups))
		goto out;
	if (lp_pack_json_links(env, st))
		goto out;
	arr = lp_json_arr(env, "changes");
	if (!arr)
		goto out;
	for (size_t i = 0; i < st->report.n_changes; i++) {
		const struct lp_change *c = &st->report.changes[i];
		cJSON *co = lp_json_push_obj(arr);

		if (!co || lp_json_str(co, "action", c->action) || lp_json_str(co, "path", c->path) ||
		    lp_json_u64(co, "saved", c->saved) || lp_json_str(co, "detail", c->detail))
			goto out;
	}
	r = 0;
out:
	lp_contrib_free(top, ntop);
	lp_contrib_free(groups, ngroups);
	return r;
}
