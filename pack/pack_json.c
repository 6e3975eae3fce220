/* SPDX-License-Identifier: MIT */
/* The pack report as JSON (schema documented in README "JSON report"). */
#include "pack/pack.h"
#include "core/json.h"

#include <errno.h>
#include <string.h>

static int add_budget(cJSON *parent, const char *key, const struct lp_budget *b)
{
	cJSON *o = lp_json_obj(parent, key);

	if (!o)
		return -ENOMEM;
	if (lp_json_u64(o, "limit", b->limit) || lp_json_u64(o, "used", b->used) ||
	    lp_json_bool(o, "fits", !b->over) || lp_json_u64(o, "over_by", b->over_by) ||
	    lp_json_u64(o, "headroom", b->headroom) || lp_json_num(o, "percent", (double)((long long)(b->pct * 100)) / 100))
		return -ENOMEM;
	return 0;
}

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

int lp_pack_json(const struct lp_pack_opts *o, const struct lp_pack_state *st,
		 const struct lp_pack_result *res, struct cJSON **ret)
{
	cJSON *root = cJSON_CreateObject(), *a, *sz, *cnt, *arr;
	struct lp_contrib *top = NULL, *groups = NULL;
	size_t ntop = 0, ngroups = 0, files, dirs, links;
	int r = -ENOMEM;

	if (!root)
		return -ENOMEM;
	if (lp_json_u64(root, "schema", 1) || lp_json_str(root, "tool", "lambdapack") ||
	    lp_json_str(root, "version", LP_VERSION) || lp_json_str(root, "command", "pack"))
		goto out;
	a = lp_json_obj(root, "artifact");
	if (!a || lp_json_str(a, "type", res->artifact) || lp_json_str(a, "path", res->path) ||
	    lp_json_u64(a, "bytes", res->zipped) || lp_json_str(a, "code_sha256", res->code_sha256) ||
	    lp_json_str(a, "sha256", res->sha256_hex) || lp_json_str(a, "fallback_reason", res->fallback_reason))
		goto out;
	sz = lp_json_obj(root, "sizes");
	if (!sz || lp_json_u64(sz, "input_unzipped", st->input_bytes) ||
	    lp_json_u64(sz, "unzipped", res->unzipped) || lp_json_u64(sz, "zipped", res->zipped) ||
	    lp_json_u64(sz, "layers_unzipped", st->layers_unzipped) ||
	    lp_json_u64(sz, "saved", st->input_bytes > res->unzipped ? st->input_bytes - res->unzipped : 0))
		goto out;
	/* Per optimizer, in pipeline order; analyze's "savings" uses the same names and figures. */
	a = lp_json_obj(sz, "saved_by");
	if (!a || lp_json_u64(a, "prune_foreign", st->saved.foreign) ||
	    lp_json_u64(a, "prune_junk", st->saved.junk) ||
	    lp_json_u64(a, "prune_dev", st->saved.dev) || lp_json_u64(a, "strip", st->saved.strip) ||
	    lp_json_u64(a, "dedupe", st->saved.dedupe))
		goto out;
	a = lp_json_obj(root, "limits");
	if (!a || add_budget(a, "unzipped", &res->unzipped_budget) || add_budget(a, "zipped", &res->zipped_budget))
		goto out;
	lp_entries_count(&st->entries, &files, &dirs, &links);
	cnt = lp_json_obj(root, "counts");
	if (!cnt || lp_json_u64(cnt, "entries", res->entries) || lp_json_u64(cnt, "files", files) ||
	    lp_json_u64(cnt, "directories", dirs) || lp_json_u64(cnt, "symlinks", links))
		goto out;
	a = lp_json_obj(root, "target");
	if (!a || lp_json_str(a, "arch", lp_arch_name(st->arch)) ||
	    lp_json_str(a, "runtime", o->runtime ? o->runtime->name : NULL) ||
	    lp_json_str(a, "os", o->runtime ? o->runtime->os : NULL) ||
	    lp_json_str(a, "arch_source", st->arch_source))
		goto out;
	if (o->runtime) {
		char g[16];

		snprintf(g, sizeof(g), "%u.%u", o->runtime->glibc_major, o->runtime->glibc_minor);
		if (lp_json_str(a, "glibc", g))
			goto out;
	}
	if (lp_pack_top_files(&st->entries, 10, &top, &ntop) || lp_pack_top_groups(&st->entries, 10, &groups, &ngroups))
		goto out;
	if (add_contribs(root, "largest_files", top, ntop) || add_contribs(root, "largest_groups", groups, ngroups))
		goto out;
	if (lp_pack_json_links(root, st))
		goto out;
	arr = lp_json_arr(root, "changes");
	if (!arr)
		goto out;
	for (size_t i = 0; i < st->report.n_changes; i++) {
		const struct lp_change *c = &st->report.changes[i];
		cJSON *co = lp_json_push_obj(arr);

		if (!co || lp_json_str(co, "action", c->action) || lp_json_str(co, "path", c->path) ||
		    lp_json_u64(co, "saved", c->saved) || lp_json_str(co, "detail", c->detail))
			goto out;
	}
	arr = lp_json_arr(root, "findings");
	if (!arr)
		goto out;
	for (size_t i = 0; i < st->report.n_findings; i++) {
		const struct lp_finding *f = &st->report.findings[i];
		cJSON *fo = lp_json_push_obj(arr);

		if (!fo || lp_json_str(fo, "severity", lp_severity_name(f->sev)) || lp_json_str(fo, "code", f->code) ||
		    lp_json_str(fo, "path", f->path) || lp_json_str(fo, "message", f->message))
			goto out;
	}
	a = lp_json_obj(root, "timing");
	if (!a || lp_json_num(a, "load_s", st->t_load) || lp_json_num(a, "optimize_s", st->t_optimize) ||
	    lp_json_num(a, "write_s", res->t_write))
		goto out;
	r = 0;
out:
	lp_contrib_free(top, ntop);
	lp_contrib_free(groups, ngroups);
	if (r < 0)
		cJSON_Delete(root);
	else
		*ret = root;
	return r;
}
