/* SPDX-License-Identifier: MIT */
/*
 * The HTML report: one self-contained page (inline CSS and JS, no network)
 * with a zoomable treemap and the tables. Data goes in as JSON inside a
 * <script type="application/json"> block and is only ever put into the
 * page with textContent, so hostile file names cannot inject markup.
 */
#include "analyze/internal.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "analyze/report_assets.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * The page: the header, the treemap card with its legend and breadcrumb,
 * the side panel (savings, findings), the layers (images) and the tables.
 * report.js fills every part from the data block.
 */
static const char page_head[] =
"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n"
"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n"
"<title>lambdapack analyze</title>\n<style>\n";

static const char page_body[] =
"</style></head><body>\n"
"<header><h1 id=\"title\">lambdapack analyze</h1><div class=\"sub\" id=\"sub\"></div><div class=\"stats\" id=\"stats\"></div></header>\n"
"<main><section>\n"
"<div class=\"card\"><div id=\"bar\"><div id=\"crumbs\"></div><div id=\"legend\"></div></div>"
"<div id=\"tm\"></div><div id=\"note\"></div></div>\n"
"<div class=\"card\" id=\"layers\" style=\"display:none\"></div>\n"
"<div class=\"card\" id=\"tables\"></div>\n"
"</section><aside><div class=\"card\" id=\"savings\"></div><div class=\"card\" id=\"findings\"></div></aside></main>\n"
"<div id=\"tip\"></div><div id=\"lp-rendered\" style=\"display:none\"></div>\n"
"<script id=\"lp-data\" type=\"application/json\">";

static const char page_script[] = "</script>\n<script>\n";
static const char page_tail[] = "</script>\n</body></html>\n";

/* JSON inside <script>: "</" would end the element early; "<\/" is the same JSON string. */
static int write_escaped(int fd, const char *s)
{
	size_t n = strlen(s), cap = n + n / 8 + 16, k = 0;
	char *b = malloc(cap);
	int r;

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (k + 3 >= cap) {
			char *nb = realloc(b, cap *= 2);

			if (!nb) {
				free(b);
				return -ENOMEM;
			}
			b = nb;
		}
		if (s[i] == '<' && (s[i + 1] == '/' || s[i + 1] == '!')) {
			memcpy(b + k, "\\u003c", 6);
			k += 6;
			continue;
		}
		b[k++] = s[i];
	}
	r = lp_write_all(fd, b, k);
	free(b);
	return r;
}

/* The page around a data document (consumed). */
static int write_page(cJSON *doc, const char *path)
{
	struct lp_outfile of;
	char *text = cJSON_PrintUnformatted(doc);
	int r;

	cJSON_Delete(doc);
	if (!text)
		return -ENOMEM;
	r = lp_outfile_open(&of, path);
	if (r < 0) {
		free(text);
		return lp_fail(r, path, "cannot create: %s", strerror(-r));
	}
	r = lp_write_all(of.fd, page_head, sizeof(page_head) - 1);
	if (r == 0)
		r = lp_write_all(of.fd, report_css, sizeof(report_css) - 1);
	if (r == 0)
		r = lp_write_all(of.fd, page_body, sizeof(page_body) - 1);
	if (r == 0)
		r = write_escaped(of.fd, text);
	if (r == 0)
		r = lp_write_all(of.fd, page_script, sizeof(page_script) - 1);
	if (r == 0)
		r = lp_write_all(of.fd, report_js, sizeof(report_js) - 1);
	if (r == 0)
		r = lp_write_all(of.fd, page_tail, sizeof(page_tail) - 1);
	free(text);
	if (r == 0)
		r = lp_outfile_commit(&of);
	else
		lp_outfile_abort(&of);
	if (r < 0)
		return lp_fail(r, path, "cannot write: %s", strerror(-r));
	return 0;
}

/* Per-layer trees up to this many layers (each is bounded on its own). */
#define HTML_MAX_LAYER_TREES 40
/* Rows per table in the page, whatever --top says: the page stays small. */
#define HTML_MAX_TOP 200

int lp_analyze_html(const struct lp_analysis *a, const struct lp_ana_out *o, const char *path)
{
	struct lp_ana_out po = o ? *o : (struct lp_ana_out){ .min_efficiency = -1 };
	cJSON *doc = cJSON_CreateObject(), *layers;

	if (!po.top || po.top > HTML_MAX_TOP)
		po.top = HTML_MAX_TOP;
	if (!doc || !cJSON_AddItemToObject(doc, "analysis", lp_analyze_json(a, &po)) ||
	    !cJSON_AddItemToObject(doc, "tree", ana_treemap_json(a, -1)))
		goto nomem;
	if (a->is_image && a->n_layers <= HTML_MAX_LAYER_TREES) {
		if (!(layers = cJSON_AddArrayToObject(doc, "layers")))
			goto nomem;
		for (size_t i = 0; i < a->n_layers; i++)
			if (!cJSON_AddItemToArray(layers, ana_treemap_json(a, (int)i)))
				goto nomem;
	}
	return write_page(doc, path);
nomem:
	cJSON_Delete(doc);
	return -ENOMEM;
}

/* Changes listed (and marked on the treemap) in a diff page. */
#define HTML_MAX_DIFF_ROWS 2000

int lp_analyze_diff_html(const struct lp_analysis *old, const struct lp_analysis *new_, const struct lp_ana_diff *d,
			 const struct lp_ana_out *o, const char *path)
{
	struct lp_ana_out po = o ? *o : (struct lp_ana_out){ .min_efficiency = -1 };
	cJSON *doc = cJSON_CreateObject();

	po.top = HTML_MAX_DIFF_ROWS;
	if (!doc || !cJSON_AddItemToObject(doc, "diff", lp_analyze_diff_json(old, new_, d, &po)) ||
	    !cJSON_AddItemToObject(doc, "tree", ana_treemap_json(new_, -1))) {
		cJSON_Delete(doc);
		return -ENOMEM;
	}
	return write_page(doc, path);
}
