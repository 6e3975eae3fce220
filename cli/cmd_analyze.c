/* SPDX-License-Identifier: MIT */
/* `lambdapack analyze`: the size audit's front end (issue #5). */
#include "analyze/analyze.h"
#include "cli/cli.h"
#include "core/err.h"
#include "core/envelope.h"
#include "core/fsutil.h"
#include "core/json.h"
#include "input/input.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
"usage: lambdapack analyze TARGET [options]\n"
"       lambdapack analyze --diff OLD NEW [options]\n"
"\n"
"TARGET is a directory (same excludes as pack), a zip, an OCI image layout,\n"
"an oci-archive tar or a docker-archive tar (docker save).\n"
"\n"
"  --runtime R          check glibc against this Lambda runtime (python3.12, ...)\n"
"  --arch A             target architecture: x86_64 or arm64 (default: detect)\n"
"  --with-layer ZIP     a layer the function uses (counts against 250 MB); repeatable\n"
"  --top N              rows per table (default 10; 0 = all)\n"
"  --json FILE|-        write the full report as JSON (docs/analyze-json.md)\n"
"  --html FILE          write a self-contained HTML report with a treemap\n"
"                       (with --diff: the new tree, what changed highlighted)\n"
"  --exclude GLOB       leave matching paths out; repeatable\n"
"  --image NAME|@N      archives or layouts holding several images: which one\n"
"                       (a docker save tag or an OCI ref name; @N counts from 0)\n"
"  --diff OLD NEW       what grew or shrank between two builds\n"
"CI gates (exit 5 when one fails, one line each on stderr):\n"
"  --max-unzipped SIZE  fail if the unzipped (image: uncompressed) size is above SIZE\n"
"  --max-zipped SIZE    fail if the zip (or its estimate) is above SIZE\n"
"  --min-efficiency R   images: fail if Dive's efficiency score is below R (0..1)\n"
"  --fail-on LEVEL      fail on findings of this severity or worse: error | warning\n"
"  -q, --quiet          no human report\n"
"  -h, --help           this text\n";

enum {
	OPT_RUNTIME = 256, OPT_ARCH, OPT_WITH_LAYER, OPT_TOP, OPT_JSON, OPT_HTML, OPT_MAX_UNZIPPED,
	OPT_MAX_ZIPPED, OPT_MIN_EFF, OPT_FAIL_ON, OPT_EXCLUDE, OPT_IMAGE,
};

static const struct option longopts[] = {
	{ "runtime", required_argument, NULL, OPT_RUNTIME },
	{ "arch", required_argument, NULL, OPT_ARCH },
	{ "with-layer", required_argument, NULL, OPT_WITH_LAYER },
	{ "top", required_argument, NULL, OPT_TOP },
	{ "json", required_argument, NULL, OPT_JSON },
	{ "html", required_argument, NULL, OPT_HTML },
	{ "max-unzipped", required_argument, NULL, OPT_MAX_UNZIPPED },
	{ "max-zipped", required_argument, NULL, OPT_MAX_ZIPPED },
	{ "min-efficiency", required_argument, NULL, OPT_MIN_EFF },
	{ "fail-on", required_argument, NULL, OPT_FAIL_ON },
	{ "exclude", required_argument, NULL, OPT_EXCLUDE },
	{ "image", required_argument, NULL, OPT_IMAGE },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

struct aopts {
	struct lp_ana_opts ana;
	struct lp_ana_out out;
	const char *json, *html, *diff_old, *diff_new, *target;
	int fail_on;		/* -1: off, else the lowest failing severity */
};

struct style {
	FILE *f;
	bool color;
};

static const char *c_on(const struct style *s, const char *code)
{
	return s->color ? code : "";
}

static const char *c_off(const struct style *s)
{
	return s->color ? "\033[0m" : "";
}

static char *hs(uint64_t n, char *buf)
{
	return lp_human_size(n, buf, 24);
}

/* Long names keep their end, which is what tells them apart. */
/* An untrusted name, escaped, and cut from the left to w bytes ("...tail"). */
static const char *fit(const char *s, size_t w, char *buf, size_t len)
{
	const char *e = lp_cli_esc(s);
	size_t n = strlen(e);
	const char *t;

	if (n <= w)
		return e;
	t = e + n - (w - 3);
	while ((*t & 0xc0) == 0x80)	/* never start inside a UTF-8 sequence */
		t++;
	snprintf(buf, len, "...%s", t);
	return buf;
}

static void bar(const struct style *s, double frac, int width)
{
	int n = (int)(frac * width + 0.5);

	if (n > width)
		n = width;
	if (n < 0)
		n = 0;
	fputs(c_on(s, "\033[36m"), s->f);
	for (int i = 0; i < n; i++)
		fputs("#", s->f);
	fputs(c_off(s), s->f);
	for (int i = n; i < width; i++)
		fputs(".", s->f);
}

static void print_budget(const struct style *s, const char *name, const struct lp_budget *b, bool est)
{
	char h1[24], h2[24], h3[24];

	fprintf(s->f, "  %-10s %10s / %-10s %6.1f%%  [", name, hs(b->used, h1), hs(b->limit, h2), b->pct);
	bar(s, b->pct / 100.0, 20);
	fputs("]  ", s->f);
	if (b->over)
		fprintf(s->f, "%sOVER by %s%s", c_on(s, "\033[1;31m"), hs(b->over_by, h3), c_off(s));
	else
		fprintf(s->f, "%sok%s, %s left", c_on(s, "\033[32m"), c_off(s), hs(b->headroom, h3));
	fprintf(s->f, "%s\n", est ? " (estimated)" : "");
}

static void print_contribs(const struct style *s, const char *title, const struct lp_ana_contrib *c, size_t n,
			   size_t top, uint64_t total, bool show_kind)
{
	size_t k = top && n > top ? top : n;
	char h[24], nb[64];

	if (!n)
		return;
	fprintf(s->f, "\n%s%s%s (%zu of %zu)\n", c_on(s, "\033[1m"), title, c_off(s), k, n);
	fprintf(s->f, "  %-50s %-7s %10s %6s %7s\n", "NAME", show_kind ? "KIND" : "", "SIZE", "SHARE", "FILES");
	for (size_t i = 0; i < k; i++) {
		double share = total ? (double)c[i].bytes / (double)total : 0;

		fprintf(s->f, "  %-50s %-7s %10s %5.1f%% %7zu ", fit(c[i].name, 50, nb, sizeof(nb)),
			show_kind ? c[i].kind : "", hs(c[i].bytes, h), share * 100, c[i].count);
		bar(s, share, 20);
		fputc('\n', s->f);
	}
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

static void print_report(const struct style *s, const struct lp_analysis *a, size_t top)
{
	const struct lp_ana_savings *sv = &a->savings;
	char h1[24], h2[24], h3[24], nb[80];
	size_t k;

	fprintf(s->f, "%slambdapack analyze%s: %s (%s)\n", c_on(s, "\033[1m"), c_off(s), lp_cli_esc(a->target),
		lp_ana_kind_name(a->kind));
	fprintf(s->f, "  %zu %s, %zu %s, %zu %s; %s unzipped", a->n_files, lp_plural(a->n_files, "file", "files"),
		a->n_dirs, lp_plural(a->n_dirs, "directory", "directories"), a->n_links,
		lp_plural(a->n_links, "symlink", "symlinks"), hs(a->unzipped, h1));
	if (a->zip_relevant)
		fprintf(s->f, ", %s%s zipped", a->zipped_estimated ? "about " : "", hs(a->zipped, h2));
	fprintf(s->f, "; arch %s%s%s\n", a->arch == LP_ARCH_UNKNOWN ? "unknown" : lp_arch_name(a->arch),
		a->runtime ? ", runtime " : "", a->runtime ? a->runtime->name : "");

	fprintf(s->f, "\n%sBudgets%s\n", c_on(s, "\033[1m"), c_off(s));
	if (a->is_image) {
		print_budget(s, "image", &a->b_image, false);
	} else {
		print_budget(s, "unzipped", &a->b_unzipped, false);
		if (a->layers_unzipped)
			fprintf(s->f, "  (limit is 262,144,000 B minus %s of --with-layer layers)\n",
				hs(a->layers_unzipped, h1));
		print_budget(s, "zipped", &a->b_zipped, a->zipped_estimated);
	}
	if (a->is_image) {
		fprintf(s->f, "\n%sImage%s: %s/%s, %zu %s, %s uncompressed, %s compressed\n", c_on(s, "\033[1m"),
			c_off(s), lp_cli_esc(a->img_os ? a->img_os : "?"), lp_cli_esc(a->img_arch ? a->img_arch : "?"), a->n_layers,
			lp_plural(a->n_layers, "layer", "layers"),
			hs(a->img_size, h1), hs(a->img_compressed, h2));
		fprintf(s->f, "  efficiency %.4f%%, wasted %s, user wasted %.4f%% (as Dive computes them)\n",
			a->efficiency * 100, hs(a->wasted, h3), a->user_wasted_pct * 100);
		fprintf(s->f, "  %-3s %10s %10s %7s %-20s %s\n", "#", "SIZE", "COMPRESSED", "FILES", "", "CREATED BY");
		for (size_t i = 0; i < a->n_layers; i++) {
			const struct lp_ana_layer *L = &a->layers[i];

			fprintf(s->f, "  %-3zu %10s %10s %7zu ", i, hs(L->size, h1), hs(L->compressed, h2), L->files);
			bar(s, a->img_size ? (double)L->size / (double)a->img_size : 0, 20);
			fprintf(s->f, " %s\n", L->created_by ? fit(L->created_by, 60, nb, sizeof(nb)) : "");
		}
		k = top && a->n_multi > top ? top : a->n_multi;
		if (k) {
			fprintf(s->f, "  files in several layers (%zu of %zu):\n", k, a->n_multi);
			for (size_t i = 0; i < k; i++)
				fprintf(s->f, "    %10s  x%zu  %s\n", hs(a->multi[i].cumulative, h1), a->multi[i].count,
					fit(a->multi[i].path, 70, nb, sizeof(nb)));
		}
	}
	print_contribs(s, "Largest packages", a->packages, a->n_packages, top, a->unzipped, true);
	print_contribs(s, "Largest directories", a->dirs, a->n_dirs_c, top, a->unzipped, false);
	print_contribs(s, "Largest files", a->files, a->n_files_c, top, a->unzipped, false);

	fprintf(s->f, "\n%sSavings with pack --optimize%s: %s (%.1f%%)\n", c_on(s, "\033[1m"), c_off(s),
		hs(sv->total, h1), a->unzipped ? (double)sv->total * 100 / (double)a->unzipped : 0.0);
	fprintf(s->f, "  strip %s (%zu ELF), dedupe %s (%zu), prune foreign %s (%zu), prune junk %s (%zu)\n",
		hs(sv->strip, h1), sv->n_strip, hs(sv->dedupe, h2), sv->n_dedupe, hs(sv->foreign, h3), sv->n_foreign,
		hs(sv->junk, nb), sv->n_junk);
	if (a->report.n_changes) {
		size_t *idx = malloc(a->report.n_changes * sizeof(*idx));

		if (idx) {
			for (size_t i = 0; i < a->report.n_changes; i++)
				idx[i] = i;
			sort_rep = &a->report;
			qsort(idx, a->report.n_changes, sizeof(*idx), cmp_change);
			k = top && a->report.n_changes > top ? top : a->report.n_changes;
			for (size_t i = 0; i < k; i++) {
				const struct lp_change *c = &a->report.changes[idx[i]];

				fprintf(s->f, "  %-13s %10s  %s%s%s%s\n", c->action, hs(c->saved, h1),
					fit(c->path, 60, nb, sizeof(nb)), c->detail ? " (" : "", c->detail ? lp_cli_msg(c->detail) : "",
					c->detail ? ")" : "");
			}
			free(idx);
		}
	}
	if (a->n_dups) {
		k = top && a->n_dups > top ? top : a->n_dups;
		fprintf(s->f, "\n%sDuplicates%s: %zu %s, %s wasted\n", c_on(s, "\033[1m"), c_off(s), a->n_dups,
			lp_plural(a->n_dups, "group", "groups"),
			hs(a->dup_wasted, h1));
		for (size_t i = 0; i < k; i++)
			fprintf(s->f, "  %10s  x%zu  %s%s\n", hs(a->dups[i].wasted, h1), a->dups[i].count,
				fit(a->dups[i].paths[0], 60, nb, sizeof(nb)), a->dups[i].count > 1 ? ", ..." : "");
	}
	{
		size_t ne = lp_report_count(&a->report, LP_SEV_ERROR), nw = lp_report_count(&a->report, LP_SEV_WARNING);

		fprintf(s->f, "\n%sFindings%s: %zu %s, %zu %s\n", c_on(s, "\033[1m"), c_off(s), ne,
			lp_plural(ne, "error", "errors"), nw, lp_plural(nw, "warning", "warnings"));
	}
	for (int sev = LP_SEV_ERROR; sev >= LP_SEV_INFO; sev--)
		for (size_t i = 0; i < a->report.n_findings; i++) {
			const struct lp_finding *f = &a->report.findings[i];

			if ((int)f->sev != sev)
				continue;
			fprintf(s->f, "  %s%-7s%s %-20s %s%s%s\n",
				c_on(s, sev == LP_SEV_ERROR ? "\033[1;31m" : sev == LP_SEV_WARNING ? "\033[33m" : ""),
				lp_severity_name(f->sev), c_off(s), lp_cli_esc(f->code), f->path ? lp_cli_esc(f->path) : "",
				f->path ? ": " : "", lp_cli_msg(f->message));
		}
}

static void print_deltas(const struct style *s, const char *title, const struct lp_ana_delta *d, size_t n, size_t top)
{
	size_t k = top && n > top ? top : n;
	char h1[24], h2[24], h3[24], nb[80];

	fprintf(s->f, "\n%s%s%s (%zu of %zu changed)\n", c_on(s, "\033[1m"), title, c_off(s), k, n);
	for (size_t i = 0; i < k; i++) {
		uint64_t ad = d[i].delta < 0 ? (uint64_t)(-d[i].delta) : (uint64_t)d[i].delta;

		fprintf(s->f, "  %s%c%10s%s %10s -> %-10s %-8s %s",
			c_on(s, d[i].delta > 0 ? "\033[31m" : "\033[32m"), d[i].delta > 0 ? '+' : d[i].delta < 0 ? '-' : ' ',
			hs(ad, h1), c_off(s), hs(d[i].old_bytes, h2), hs(d[i].new_bytes, h3), d[i].status,
			fit(d[i].name, 60, nb, sizeof(nb)));
		if (d[i].old_name)
			fprintf(s->f, " (was %s)", fit(d[i].old_name, 60, nb, sizeof(nb)));
		if (d[i].old_mode != d[i].new_mode && d[i].old_mode && d[i].new_mode)
			fprintf(s->f, " (mode %04o -> %04o)", (unsigned)d[i].old_mode & 07777, (unsigned)d[i].new_mode & 07777);
		fputc('\n', s->f);
	}
}

/* The diff's second line: zipped delta, what was compared, counts by status. */
static void print_diff_summary(const struct style *s, const struct lp_ana_diff *d)
{
	char h1[24], h2[24], h3[24];
	uint64_t az = d->zipped_delta < 0 ? (uint64_t)(-d->zipped_delta) : (uint64_t)d->zipped_delta;

	if (d->zipped_known)
		fprintf(s->f, "  zipped: %c%s (%s%s -> %s)\n", d->zipped_delta < 0 ? '-' : '+', hs(az, h1),
			d->zipped_estimated ? "estimated, " : "", hs(d->old_zipped, h2), hs(d->new_zipped, h3));
	if (d->old_skipped || d->new_skipped)
		fprintf(s->f, "  compared: the task root (%s%s vs %s%s); not compared: %zu %s of the image outside it\n",
			*d->old_root ? "/" : "", *d->old_root ? d->old_root : "the root",
			*d->new_root ? "/" : "", *d->new_root ? d->new_root : "the root",
			d->old_skipped + d->new_skipped, d->old_skipped + d->new_skipped == 1 ? "file" : "files");
	fprintf(s->f, "  files: %zu added, %zu removed, %zu changed, %zu renamed, %zu with a new mode\n",
		d->n_added, d->n_removed, d->n_changed, d->n_renamed, d->n_mode);
}

/*
 * The --json report (docs/report.md), on every exit past argument parsing:
 * the envelope, then doc (analyze's or the diff's members; consumed), else
 * (nothing could be read) the target alone. a: the (new) target, loaded
 * when have is set.
 */
static int write_report(struct lp_cli *cli, const struct aopts *ao, const struct lp_analysis *a, bool have,
			cJSON *doc, int ret, double t0)
{
	cJSON *env = lp_envelope_new(ao->diff_old ? "diff" : "analyze"), *art;
	const char *path = ao->diff_old ? ao->diff_new : ao->target;
	enum lp_ana_kind kind;

	if (!env)
		goto fail;
	if (have) {
		/* The diff's envelope describes the new target. */
		if (lp_analyze_json_common(a, env) < 0)
			goto fail;
	} else {
		art = lp_envelope_artifact(env);
		if (!art || lp_json_str(art, "type", lp_analyze_detect(path, &kind) == 0 ? lp_ana_kind_name(kind) : NULL) < 0 ||
		    lp_json_str(art, "path", path) < 0)
			goto fail;
	}
	if (doc && lp_envelope_absorb(env, doc) < 0) {
		doc = NULL;
		goto fail;
	}
	return lp_cli_write_report(cli, env, ao->json, ret, t0);
fail:
	cJSON_Delete(doc);
	cJSON_Delete(env);
	return lp_cli_write_report(cli, NULL, ao->json, ret, t0);
}

/*
 * The findings that fail --fail-on, named: ": code path, code path" (the
 * first few, then "and N more"), so the gate line says what to fix.
 */
static const char *failing_findings(const struct lp_analysis *a, int level, char *buf, size_t len)
{
	size_t n = 0, shown = 0, k = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < a->report.n_findings; i++) {
		const struct lp_finding *f = &a->report.findings[i];
		int w;

		if ((int)f->sev < level)
			continue;
		n++;
		if (shown == 5 || k + 80 > len)
			continue;
		w = snprintf(buf + k, len - k, "%s%s%s%s", shown ? ", " : ": ", f->code, f->path ? " " : "",
			     f->path ? lp_cli_esc(f->path) : "");
		if (w < 0 || (size_t)w >= len - k) {
			buf[k] = '\0';
			continue;
		}
		k += (size_t)w;
		shown++;
	}
	if (n > shown && k + 32 < len)
		snprintf(buf + k, len - k, " and %zu more", n - shown);
	return buf;
}

/* CI gates: one line per failure on stderr and in the JSON "gates" list. */
static int gates(struct lp_cli *cli, const struct aopts *ao, const struct lp_analysis *a, cJSON *doc)
{
	cJSON *arr = doc ? cJSON_AddArrayToObject(doc, "gates") : NULL;
	char h1[24], h2[24], names[256] = "";
	int failed = 0;

#define GATE(name, bad, ...)                                                        \
	do {                                                                        \
		char reason[512];                                                   \
		cJSON *g;                                                           \
		snprintf(reason, sizeof(reason), __VA_ARGS__);                      \
		if (bad) {                                                          \
			failed++;                                                   \
			snprintf(names + strlen(names), sizeof(names) - strlen(names), \
				 "%s%s", *names ? ", " : "", name);                 \
			fprintf(stderr, "%s: gate failed: %s\n", cli->prog, lp_cli_msg(reason)); \
		}                                                                   \
		if (arr && (g = cJSON_CreateObject())) {                            \
			cJSON_AddItemToArray(arr, g);                               \
			cJSON_AddStringToObject(g, "gate", name);                   \
			cJSON_AddBoolToObject(g, "passed", !(bad));                 \
			cJSON_AddStringToObject(g, "reason", reason);               \
		}                                                                   \
	} while (0)

	if (ao->out.max_unzipped) {
		uint64_t used = a->is_image ? a->img_size : a->unzipped;

		GATE("max-unzipped", used > ao->out.max_unzipped, "%s size %" PRIu64 " B (%s) %s --max-unzipped %" PRIu64 " B (%s)",
		     a->is_image ? "uncompressed image" : "unzipped", used, hs(used, h1),
		     used > ao->out.max_unzipped ? "exceeds" : "within", ao->out.max_unzipped, hs(ao->out.max_unzipped, h2));
	}
	if (ao->out.max_zipped && a->zip_relevant)
		GATE("max-zipped", a->zipped > ao->out.max_zipped, "%szipped size %" PRIu64 " B (%s) %s --max-zipped %" PRIu64 " B (%s)",
		     a->zipped_estimated ? "estimated " : "", a->zipped, hs(a->zipped, h1),
		     a->zipped > ao->out.max_zipped ? "exceeds" : "within", ao->out.max_zipped, hs(ao->out.max_zipped, h2));
	if (ao->out.min_efficiency >= 0 && a->is_image)
		GATE("min-efficiency", a->efficiency < ao->out.min_efficiency,
		     "image efficiency %.4f %s --min-efficiency %.4f", a->efficiency,
		     a->efficiency < ao->out.min_efficiency ? "is below" : "meets", ao->out.min_efficiency);
	if (ao->fail_on >= 0) {
		char which[320];
		size_t n = 0;

		for (int sev = ao->fail_on; sev <= LP_SEV_ERROR; sev++)
			n += lp_report_count(&a->report, (enum lp_severity)sev);
		GATE("fail-on", n > 0, "%zu finding%s of severity %s or worse%s", n, n == 1 ? "" : "s",
		     lp_severity_name((enum lp_severity)ao->fail_on), failing_findings(a, ao->fail_on, which, sizeof(which)));
	}
#undef GATE
	if (failed)
		lp_cli_reason("%d gate%s failed: %s", failed, failed == 1 ? "" : "s", names);
	return failed;
}

static int parse_opts(struct lp_cli *cli, int argc, char **argv, struct aopts *ao);

static int parse(struct lp_cli *cli, int argc, char **argv, struct aopts *ao)
{
	int c, k = 0;
	char **av = calloc((size_t)argc + 1, sizeof(*av));

	if (!av)
		return -ENOMEM;
	/* --diff takes two arguments, which getopt cannot express: lift them out first. */
	for (int i = 0; i < argc; i++) {
		if (i > 0 && !strcmp(argv[i], "--diff")) {
			if (i + 2 >= argc) {
				free(av);
				lp_cli_error(cli, 0, "--diff needs two targets: --diff OLD NEW");
				return -LP_E_USAGE;
			}
			ao->diff_old = argv[i + 1];
			ao->diff_new = argv[i + 2];
			i += 2;
			continue;
		}
		av[k++] = argv[i];
	}
	c = parse_opts(cli, k, av, ao);
	free(av);
	return c;
}

static int parse_opts(struct lp_cli *cli, int argc, char **argv, struct aopts *ao)
{
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_RUNTIME:
			ao->ana.runtime = lp_runtime_find(optarg);
			if (!ao->ana.runtime) {
				lp_cli_error(cli, 0, "unknown runtime '%s' (python3.12, nodejs20.x, provided.al2023, ...)", optarg);
				return -LP_E_USAGE;
			}
			break;
		case OPT_ARCH:
			ao->ana.arch = lp_arch_parse(optarg);
			if (ao->ana.arch == LP_ARCH_UNKNOWN) {
				lp_cli_error(cli, 0, "--arch must be x86_64 or arm64, not '%s'", optarg);
				return -LP_E_USAGE;
			}
			break;
		case OPT_WITH_LAYER:
			if (lp_strv_push(&ao->ana.with_layers, optarg) < 0)
				return -ENOMEM;
			break;
		case OPT_IMAGE:
			ao->ana.image = optarg;
			break;
		case OPT_EXCLUDE:
			if (lp_strv_push(&ao->ana.excludes, optarg) < 0)
				return -ENOMEM;
			break;
		case OPT_TOP: {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*end || v < 0 || end == optarg) {
				lp_cli_error(cli, 0, "--top needs a number >= 0, not '%s'", optarg);
				return -LP_E_USAGE;
			}
			ao->out.top = (size_t)v;
			break;
		}
		case OPT_JSON:
			ao->json = optarg;
			break;
		case OPT_HTML:
			ao->html = optarg;
			break;
		case OPT_MAX_UNZIPPED:
		case OPT_MAX_ZIPPED: {
			uint64_t v;

			if (lp_parse_size(optarg, &v) < 0 || v == 0) {
				lp_cli_error(cli, 0, "%s needs a size like 200M or 52428800, not '%s'",
					     c == OPT_MAX_UNZIPPED ? "--max-unzipped" : "--max-zipped", optarg);
				return -LP_E_USAGE;
			}
			if (c == OPT_MAX_UNZIPPED)
				ao->out.max_unzipped = v;
			else
				ao->out.max_zipped = v;
			break;
		}
		case OPT_MIN_EFF: {
			char *end;
			double v = strtod(optarg, &end);

			if (*end || end == optarg || v < 0 || v > 1) {
				lp_cli_error(cli, 0, "--min-efficiency needs a ratio between 0 and 1, not '%s'", optarg);
				return -LP_E_USAGE;
			}
			ao->out.min_efficiency = v;
			break;
		}
		case OPT_FAIL_ON:
			if (!strcmp(optarg, "error")) {
				ao->fail_on = LP_SEV_ERROR;
			} else if (!strcmp(optarg, "warning")) {
				ao->fail_on = LP_SEV_WARNING;
			} else {
				lp_cli_error(cli, 0, "--fail-on must be error or warning, not '%s'", optarg);
				return -LP_E_USAGE;
			}
			break;
		case 'q':
			cli->quiet = true;
			break;
		case 'h':
			fputs(usage, stdout);
			return 1;
		default:
			lp_cli_error(cli, 0, "unknown or incomplete option '%s' (see --help)", argv[optind - 1]);
			return -LP_E_USAGE;
		}
	}
	if (ao->diff_old) {
		if (optind != argc) {
			lp_cli_error(cli, 0, "--diff takes no other TARGET");
			return -LP_E_USAGE;
		}
		return 0;
	}
	if (optind != argc - 1) {
		lp_cli_error(cli, 0, optind == argc ? "no TARGET given (see --help)" : "more than one TARGET given");
		return -LP_E_USAGE;
	}
	ao->target = argv[optind];
	return 0;
}

static int load(struct lp_cli *cli, const struct aopts *ao, const char *path, struct lp_analysis *a)
{
	int r;

	lp_errmsg_clear();
	lp_progress_start(cli, "analyzing");
	r = lp_analyze_target(path, &ao->ana, a);
	lp_progress_stop();
	if (r < 0)
		lp_cli_error(cli, r, "cannot analyze %s", path);
	return r;
}

int cmd_analyze(int argc, char **argv, struct lp_cli *cli)
{
	struct aopts ao;
	struct lp_analysis a, old;
	struct lp_ana_diff d;
	struct style st = { .f = stdout };
	cJSON *doc = NULL;
	bool have = false;
	double t0 = lp_now();
	int r, ret = LP_EXIT_OK, failed;

	lp_errmsg_clear();
	memset(&ao, 0, sizeof(ao));
	lp_ana_opts_init(&ao.ana);
	ao.out.top = 10;
	ao.out.min_efficiency = -1;
	ao.fail_on = -1;
	lp_analysis_init(&a);
	lp_analysis_init(&old);
	memset(&d, 0, sizeof(d));
	r = parse(cli, argc, argv, &ao);
	if (r != 0) {
		lp_ana_opts_free(&ao.ana);
		return r == 1 ? LP_EXIT_OK : r == -LP_E_USAGE ? LP_EXIT_USAGE : LP_EXIT_ERROR;
	}
	/* With the JSON on stdout, the people's report moves to stderr. */
	if (ao.json && !strcmp(ao.json, "-"))
		st.f = stderr;
	st.color = lp_cli_color_for(cli, st.f);

	if (ao.diff_old) {
		ao.ana.digests = true;
		if ((r = load(cli, &ao, ao.diff_old, &old)) < 0 || (r = load(cli, &ao, ao.diff_new, &a)) < 0)
			goto err;
		have = true;
		if ((r = lp_analyze_diff(&old, &a, &d)) < 0) {
			lp_cli_error(cli, r, "cannot compute the diff");
			goto err;
		}
		if (!cli->quiet) {
			char h1[24], h2[24], h3[24];
			uint64_t ad = d.total_delta < 0 ? (uint64_t)(-d.total_delta) : (uint64_t)d.total_delta;

			fprintf(st.f, "%slambdapack analyze --diff%s: %s -> %s: %c%s (%s -> %s unzipped)\n",
				c_on(&st, "\033[1m"), c_off(&st), lp_cli_esc(old.target), lp_cli_esc(a.target), d.total_delta < 0 ? '-' : '+',
				hs(ad, h1), hs(old.unzipped, h2), hs(a.unzipped, h3));
			print_diff_summary(&st, &d);
			print_deltas(&st, "Packages", d.packages, d.n_packages, ao.out.top);
			print_deltas(&st, "Files", d.files, d.n_files, ao.out.top);
		}
		if (ao.json && !(doc = lp_analyze_diff_json(&old, &a, &d, &ao.out))) {
			lp_cli_error(cli, -ENOMEM, "cannot build the JSON report");
			r = -ENOMEM;
			goto err;
		}
		if (ao.html && (r = lp_analyze_diff_html(&old, &a, &d, &ao.out, ao.html)) < 0) {
			lp_cli_error(cli, r, "cannot write the HTML report");
			goto err;
		}
	} else {
		if ((r = load(cli, &ao, ao.target, &a)) < 0)
			goto err;
		have = true;
		if (!cli->quiet)
			print_report(&st, &a, ao.out.top);
		if (ao.json && !(doc = lp_analyze_json(&a, &ao.out))) {
			lp_cli_error(cli, -ENOMEM, "cannot build the JSON report");
			r = -ENOMEM;
			goto err;
		}
		if (ao.html && (r = lp_analyze_html(&a, &ao.out, ao.html)) < 0) {
			lp_cli_error(cli, r, "cannot write the HTML report");
			goto err;
		}
	}
	fflush(st.f);
	failed = gates(cli, &ao, &a, doc);
	if (failed)
		ret = LP_EXIT_BUDGET;
	/* What pack would refuse: one line each (already escaped), and exit 1. */
	{
		size_t np = 0;

		for (size_t i = 0; i < a.report.n_findings; i++)
			if (a.report.findings[i].sev == LP_SEV_ERROR && lp_input_problem(a.report.findings[i].code)) {
				fprintf(stderr, "%s: error: %s [%s]\n", cli->prog, lp_cli_msg(a.report.findings[i].message),
					lp_cli_esc(a.report.findings[i].code));
				ret = LP_EXIT_ERROR;
				np++;
			}
		if (np)
			lp_cli_reason("%zu %s in the input (what pack would refuse)", np, lp_plural(np, "problem", "problems"));
	}
	goto out;
err:
	ret = lp_cli_exit_for(r);
out:
	if (ao.json) {
		ret = write_report(cli, &ao, &a, have, doc, ret, t0);
		doc = NULL;
	}
	cJSON_Delete(doc);
	lp_ana_diff_free(&d);
	lp_analysis_free(&a);
	lp_analysis_free(&old);
	lp_ana_opts_free(&ao.ana);
	return ret;
}
