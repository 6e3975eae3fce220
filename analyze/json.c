/* SPDX-License-Identifier: MIT */
/*
 * analyze's members of the report envelope (core/envelope.h; docs/report.md,
 * docs/analyze-json.md).
 * Every cJSON create is checked: a NULL anywhere drops the whole document.
 */
#include "analyze/internal.h"
#include "core/hash.h"
#include "core/envelope.h"
#include "core/json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TRY(x)                  \
	do {                    \
		if (!(x))       \
			goto fail; \
	} while (0)

/* For the core/json.h builders, which return 0 or -ENOMEM. */
#define TRY0(x) TRY((x) == 0)

static size_t cut(size_t n, size_t top)
{
	return top && n > top ? top : n;
}

static cJSON *contribs_json(const struct lp_ana_contrib *c, size_t n, size_t top, uint64_t total)
{
	cJSON *arr = cJSON_CreateArray();

	if (!arr)
		return NULL;
	for (size_t i = 0; i < cut(n, top); i++) {
		cJSON *o = lp_json_push_obj(arr);

		TRY(o);
		TRY0(lp_json_str(o, "name", c[i].name));
		TRY0(lp_json_str(o, "kind", c[i].kind));
		TRY0(lp_json_u64(o, "bytes", c[i].bytes));
		TRY(cJSON_AddNumberToObject(o, "share", total ? (double)c[i].bytes / (double)total : 0.0));
		TRY0(lp_json_u64(o, "count", c[i].count));
	}
	return arr;
fail:
	cJSON_Delete(arr);
	return NULL;
}

static const struct lp_report *sort_rep;

static int cmp_change(const void *x, const void *y)
{
	const struct lp_change *a = &sort_rep->changes[*(const size_t *)x];
	const struct lp_change *b = &sort_rep->changes[*(const size_t *)y];

	if (a->saved != b->saved)
		return a->saved < b->saved ? 1 : -1;
	return strcmp(a->path, b->path);
}

static bool add_cat(cJSON *o, const char *k, uint64_t bytes, size_t count)
{
	cJSON *c = cJSON_AddObjectToObject(o, k);

	return c && !lp_json_u64(c, "bytes", bytes) && !lp_json_u64(c, "count", count);
}

static cJSON *savings_json(const struct lp_analysis *a, size_t top)
{
	cJSON *o = cJSON_CreateObject(), *items;
	size_t *idx = NULL;

	if (!o)
		return NULL;
	TRY0(lp_json_u64(o, "total", a->savings.total));
	TRY(add_cat(o, "strip", a->savings.strip, a->savings.n_strip));
	TRY(add_cat(o, "dedupe", a->savings.dedupe, a->savings.n_dedupe));
	TRY(add_cat(o, "prune_foreign", a->savings.foreign, a->savings.n_foreign));
	TRY(add_cat(o, "prune_junk", a->savings.junk, a->savings.n_junk));
	TRY(items = cJSON_AddArrayToObject(o, "items"));
	TRY(idx = malloc((a->report.n_changes + 1) * sizeof(*idx)));
	for (size_t i = 0; i < a->report.n_changes; i++)
		idx[i] = i;
	sort_rep = &a->report;
	qsort(idx, a->report.n_changes, sizeof(*idx), cmp_change);
	for (size_t i = 0; i < cut(a->report.n_changes, top); i++) {
		const struct lp_change *c = &a->report.changes[idx[i]];
		cJSON *it = lp_json_push_obj(items);

		TRY(it);
		TRY0(lp_json_str(it, "action", c->action));
		TRY0(lp_json_str(it, "path", c->path));
		TRY0(lp_json_u64(it, "bytes", c->saved));
		TRY0(lp_json_str(it, "detail", c->detail));
	}
	free(idx);
	return o;
fail:
	free(idx);
	cJSON_Delete(o);
	return NULL;
}

static cJSON *dups_json(const struct lp_analysis *a, size_t top)
{
	cJSON *o = cJSON_CreateObject(), *items;

	if (!o)
		return NULL;
	TRY0(lp_json_u64(o, "groups", a->n_dups));
	TRY0(lp_json_u64(o, "wasted_bytes", a->dup_wasted));
	TRY(items = cJSON_AddArrayToObject(o, "items"));
	for (size_t i = 0; i < cut(a->n_dups, top); i++) {
		const struct lp_ana_dup *d = &a->dups[i];
		cJSON *it = lp_json_push_obj(items), *paths;
		char hex[65];

		TRY(it);
		lp_hex(d->digest, 32, hex);
		TRY0(lp_json_str(it, "sha256", hex));
		TRY0(lp_json_u64(it, "size", d->size));
		TRY0(lp_json_u64(it, "count", d->count));
		TRY0(lp_json_u64(it, "wasted", d->wasted));
		TRY(paths = cJSON_AddArrayToObject(it, "paths"));
		for (size_t k = 0; k < d->count; k++) {
			cJSON *s = cJSON_CreateString(d->paths[k]);

			TRY(s);
			if (!cJSON_AddItemToArray(paths, s)) {
				cJSON_Delete(s);
				goto fail;
			}
		}
	}
	return o;
fail:
	cJSON_Delete(o);
	return NULL;
}

static cJSON *image_json(const struct lp_analysis *a, size_t top)
{
	cJSON *o = cJSON_CreateObject(), *layers, *multi;

	if (!o)
		return NULL;
	TRY0(lp_json_str(o, "os", a->img_os));
	TRY0(lp_json_str(o, "architecture", a->img_arch));
	TRY0(lp_json_u64(o, "size_bytes", a->img_size));
	TRY0(lp_json_u64(o, "compressed_bytes", a->img_compressed));
	TRY(cJSON_AddNumberToObject(o, "efficiency", a->efficiency));
	TRY0(lp_json_u64(o, "wasted_bytes", a->wasted));
	TRY0(lp_json_u64(o, "user_size_bytes", a->user_size));
	TRY(cJSON_AddNumberToObject(o, "user_wasted_percent", a->user_wasted_pct));
	TRY(layers = cJSON_AddArrayToObject(o, "layers"));
	for (size_t i = 0; i < a->n_layers; i++) {
		const struct lp_ana_layer *L = &a->layers[i];
		cJSON *it = lp_json_push_obj(layers);

		TRY(it);
		TRY0(lp_json_u64(it, "index", i));
		TRY0(lp_json_str(it, "digest", L->digest));
		TRY0(lp_json_str(it, "media_type", L->media_type));
		TRY0(lp_json_str(it, "created_by", L->created_by));
		TRY0(lp_json_u64(it, "size_bytes", L->size));
		TRY0(lp_json_u64(it, "compressed_bytes", L->compressed));
		TRY0(lp_json_u64(it, "files", L->files));
		TRY0(lp_json_u64(it, "whiteouts", L->whiteouts));
		TRY(cJSON_AddNumberToObject(it, "share", a->img_size ? (double)L->size / (double)a->img_size : 0.0));
	}
	TRY(multi = cJSON_AddArrayToObject(o, "multi_layer_files"));
	for (size_t i = 0; i < cut(a->n_multi, top); i++) {
		const struct lp_ana_multi *m = &a->multi[i];
		cJSON *it = lp_json_push_obj(multi);

		TRY(it);
		TRY0(lp_json_str(it, "path", m->path));
		TRY0(lp_json_u64(it, "layers", m->count));
		TRY0(lp_json_u64(it, "cumulative_bytes", m->cumulative));
		TRY0(lp_json_u64(it, "min_bytes", m->min_size));
	}
	return o;
fail:
	cJSON_Delete(o);
	return NULL;
}

static bool add_item(cJSON *o, const char *k, cJSON *v)
{
	if (!v)
		return false;
	if (!cJSON_AddItemToObject(o, k, v)) {
		cJSON_Delete(v);
		return false;
	}
	return true;
}

int lp_analyze_json_common(const struct lp_analysis *a, cJSON *doc)
{
	cJSON *art = cJSON_GetObjectItemCaseSensitive(doc, "artifact");

	if (!art && !(art = cJSON_AddObjectToObject(doc, "artifact")))
		return -ENOMEM;
	if (!cJSON_GetObjectItemCaseSensitive(doc, "limits") && !cJSON_AddObjectToObject(doc, "limits"))
		return -ENOMEM;
	if (!cJSON_GetObjectItemCaseSensitive(doc, "findings") && !cJSON_AddArrayToObject(doc, "findings"))
		return -ENOMEM;
	if (lp_json_str(art, "type", lp_ana_kind_name(a->kind)) || lp_json_str(art, "path", a->target))
		return -ENOMEM;
	if (a->kind == LP_ANA_ZIP && lp_json_u64(art, "bytes", a->zipped))
		return -ENOMEM;
	if (a->is_image &&
	    (lp_json_u64(art, "bytes", a->img_compressed) ||
	     lp_json_str(art, "manifest_digest", *a->img_manifest_digest ? a->img_manifest_digest : NULL) ||
	     lp_json_str(art, "config_digest", *a->img_config_digest ? a->img_config_digest : NULL)))
		return -ENOMEM;
	/* Only the limits of the artifact: an image has no zip limits. */
	if (a->is_image) {
		if (lp_envelope_limit(doc, "image", &a->b_image))
			return -ENOMEM;
	} else if (lp_envelope_limit(doc, "unzipped", &a->b_unzipped) || lp_envelope_limit(doc, "zipped", &a->b_zipped)) {
		return -ENOMEM;
	}
	if (lp_envelope_findings(doc, &a->report) ||
	    lp_envelope_target(doc, a->arch == LP_ARCH_UNKNOWN ? NULL : lp_arch_name(a->arch), a->runtime))
		return -ENOMEM;
	return 0;
}

cJSON *lp_analyze_json(const struct lp_analysis *a, const struct lp_ana_out *out)
{
	cJSON *doc = cJSON_CreateObject(), *tot, *c;
	size_t top = out ? out->top : 0;

	if (!doc)
		return NULL;
	TRY0(lp_analyze_json_common(a, doc));
	TRY(cJSON_AddObjectToObject(doc, "timing"));
	TRY0(lp_envelope_time(doc, "read_s", a->t_read));
	TRY(tot = cJSON_AddObjectToObject(doc, "totals"));
	TRY0(lp_json_u64(tot, "files", a->n_files));
	TRY0(lp_json_u64(tot, "directories", a->n_dirs));
	TRY0(lp_json_u64(tot, "symlinks", a->n_links));
	TRY0(lp_json_u64(tot, "unzipped_bytes", a->unzipped));
	if (a->zip_relevant) {
		TRY0(lp_json_u64(tot, "zipped_bytes", a->zipped));
	} else {
		TRY(cJSON_AddNullToObject(tot, "zipped_bytes"));
	}
	TRY(cJSON_AddBoolToObject(tot, "zipped_estimated", a->zipped_estimated));
	TRY0(lp_json_u64(tot, "layers_unzipped_bytes", a->layers_unzipped));
	TRY(c = cJSON_AddObjectToObject(doc, "contributors"));
	TRY(add_item(c, "files", contribs_json(a->files, a->n_files_c, top, a->unzipped)));
	TRY(add_item(c, "directories", contribs_json(a->dirs, a->n_dirs_c, top, a->unzipped)));
	TRY(add_item(c, "packages", contribs_json(a->packages, a->n_packages, top, a->unzipped)));
	TRY(add_item(doc, "savings", savings_json(a, top)));
	TRY(add_item(doc, "duplicates", dups_json(a, top)));
	if (a->is_image) {
		TRY(add_item(doc, "image", image_json(a, top)));
	} else {
		TRY(cJSON_AddNullToObject(doc, "image"));
	}
	return doc;
fail:
	cJSON_Delete(doc);
	return NULL;
}

/* Zipped sizes, the compared roots and the counts by status. */
static bool diff_extra_json(cJSON *doc, const struct lp_analysis *old, const struct lp_analysis *new_,
			    const struct lp_ana_diff *d)
{
	cJSON *z, *c, *r;

	if (!(z = cJSON_AddObjectToObject(doc, "zipped")))
		return false;
	/* Zips and directories: the zip size (or estimate); two images: compressed layers. */
	if (!lp_json_str(z, "measure", !d->zipped_known ? NULL : old->is_image ? "image-compressed" : "zip") &&
	    (d->zipped_known ? !lp_json_u64(z, "old_bytes", d->old_zipped) && !lp_json_u64(z, "new_bytes", d->new_zipped) &&
	     cJSON_AddNumberToObject(z, "delta_bytes", (double)d->zipped_delta)
	     : cJSON_AddNullToObject(z, "old_bytes") && cJSON_AddNullToObject(z, "new_bytes") &&
	     cJSON_AddNullToObject(z, "delta_bytes")) &&
	    cJSON_AddBoolToObject(z, "estimated", d->zipped_estimated) &&
	    (r = cJSON_AddObjectToObject(doc, "compared_root")) && !lp_json_str(r, "old", d->old_root) &&
	    !lp_json_str(r, "new", d->new_root) && !lp_json_u64(r, "old_files_outside", d->old_skipped) &&
	    !lp_json_u64(r, "new_files_outside", d->new_skipped) &&
	    !lp_json_u64(r, "old_bytes_outside", d->old_skipped_bytes) &&
	    !lp_json_u64(r, "new_bytes_outside", d->new_skipped_bytes) &&
	    (c = cJSON_AddObjectToObject(doc, "counts")) && !lp_json_u64(c, "added", d->n_added) &&
	    !lp_json_u64(c, "removed", d->n_removed) && !lp_json_u64(c, "changed", d->n_changed) &&
	    !lp_json_u64(c, "renamed", d->n_renamed) && !lp_json_u64(c, "mode", d->n_mode))
		return true;
	return false;
}

static cJSON *deltas_json(const struct lp_ana_delta *d, size_t n, size_t top)
{
	cJSON *arr = cJSON_CreateArray();

	if (!arr)
		return NULL;
	for (size_t i = 0; i < cut(n, top); i++) {
		cJSON *o = lp_json_push_obj(arr);

		TRY(o);
		TRY0(lp_json_str(o, "name", d[i].name));
		TRY0(lp_json_str(o, "kind", d[i].kind));
		TRY0(lp_json_str(o, "status", d[i].status));
		TRY0(lp_json_u64(o, "old_bytes", d[i].old_bytes));
		TRY0(lp_json_u64(o, "new_bytes", d[i].new_bytes));
		TRY(cJSON_AddNumberToObject(o, "delta", (double)d[i].delta));
		if (d[i].old_name)
			TRY0(lp_json_str(o, "old_name", d[i].old_name));
		if (d[i].old_mode != d[i].new_mode && d[i].old_mode && d[i].new_mode) {
			char m[2][8];

			snprintf(m[0], sizeof(m[0]), "%04o", (unsigned)d[i].old_mode & 07777);
			snprintf(m[1], sizeof(m[1]), "%04o", (unsigned)d[i].new_mode & 07777);
			TRY0(lp_json_str(o, "old_mode", m[0]));
			TRY0(lp_json_str(o, "new_mode", m[1]));
		}
	}
	return arr;
fail:
	cJSON_Delete(arr);
	return NULL;
}

cJSON *lp_analyze_diff_json(const struct lp_analysis *old, const struct lp_analysis *new_,
			    const struct lp_ana_diff *d, const struct lp_ana_out *out)
{
	cJSON *doc = cJSON_CreateObject();
	size_t top = out ? out->top : 0;

	if (!doc)
		return NULL;
	TRY0(lp_json_str(doc, "schema", "lambdapack-analyze-diff/1"));
	TRY0(lp_json_str(doc, "old", old->target));
	TRY0(lp_json_str(doc, "new", new_->target));
	TRY0(lp_json_u64(doc, "old_unzipped_bytes", d->old_unzipped));
	TRY0(lp_json_u64(doc, "new_unzipped_bytes", d->new_unzipped));
	TRY(cJSON_AddNumberToObject(doc, "delta_bytes", (double)d->total_delta));
	TRY(diff_extra_json(doc, old, new_, d));
	TRY(add_item(doc, "packages", deltas_json(d->packages, d->n_packages, top)));
	TRY(add_item(doc, "files", deltas_json(d->files, d->n_files, top)));
	return doc;
fail:
	cJSON_Delete(doc);
	return NULL;
}
