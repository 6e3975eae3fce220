/* SPDX-License-Identifier: MIT */
/* lambdapack pack: sources in, one deterministic Lambda zip out. */
#include "cli/cli.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "core/hash.h"
#include "core/envelope.h"
#include "core/json.h"
#include "container/oci.h"
#include "pack/zip.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char pack_usage[] =
	"usage: lambdapack pack [options] SOURCE... -o function.zip\n"
	"       lambdapack pack [options] --template FILE [--function ID]... [--out-dir DIR]\n"
	"\n"
	"Build a deterministic Lambda deployment zip: entries sorted, fixed timestamps,\n"
	"modes 0644/0755 (Unix), symlinks kept, measured against Lambda's limits.\n"
	"\n"
	"Output:\n"
	"  -o, --output FILE         the zip to write (written to a temp file, then renamed over\n"
	"                            an existing file; never over a directory or symlink)\n"
	"  --json FILE               machine-readable report (FILE or - for stdout)\n"
	"  --with-layer ZIP          a layer the function uses; its unzipped size counts\n"
	"                            against the 262,144,000-byte limit (repeatable, at most 5)\n"
	"  --fallback=container|none over the limit: write an OCI image instead (default), or fail\n"
	"  --image-output DIR        where the fallback image goes (default: OUTPUT without .zip + .oci);\n"
	"                            new, empty, or an OCI layout the image is added to\n"
	"  --base SPEC               the over-the-limit image's base, as on `container`: oci:DIR[:TAG],\n"
	"                            oci-archive:FILE[:TAG], docker-archive:FILE, docker://REF, auto\n"
	"                            (the --runtime's AWS base image; the default with --runtime) or\n"
	"                            scratch (the default without)\n"
	"  --handler NAME            the image's CMD, e.g. app.handler\n"
	"  --entrypoint PATH         the image's ENTRYPOINT (relative: under /var/task)\n"
	"  -l, --level N             deflate level 1-12 (default 6; libdeflate scale)\n"
	"  -q, --quiet               no summary on stderr (warnings and errors still print)\n"
	"  -v, --verbose             list every optimization and informational finding\n"
	"Templates (README \"Templates\"):\n"
	"  --template FILE           pack every function and local layer of a SAM/CloudFormation\n"
	"                            template or a serverless.yml, one zip each, named by logical ID\n"
	"  --function ID             only this function (and its layers); repeatable\n"
	"  --out-dir DIR             where the zips go (default: .lambdapack/ beside the template)\n"
	"\n";

enum {
	OPT_JSON = 2000,
	OPT_WITH_LAYER,
	OPT_FALLBACK,
	OPT_IMAGE_OUTPUT,
	OPT_BASE,
	OPT_HANDLER,
	OPT_ENTRYPOINT,
	OPT_TEMPLATE,
	OPT_FUNCTION,
	OPT_OUT_DIR,
};

/* Which runtime, glibc and architecture the checks used, and where the architecture came from. */
static void target_line(const struct lp_pack_opts *o, const struct lp_pack_state *st)
{
	if (o->runtime)
		fprintf(stderr, "  target      %s (%s, glibc %u.%u), %s (%s)\n", o->runtime->name,
			!strcmp(o->runtime->os, "al2") ? "Amazon Linux 2" : "Amazon Linux 2023",
			o->runtime->glibc_major, o->runtime->glibc_minor, lp_arch_name(st->arch),
			st->arch_source ? st->arch_source : "default");
	else
		fprintf(stderr, "  target      no --runtime (glibc and runtime libraries not checked), %s (%s)\n",
			lp_arch_name(st->arch), st->arch_source ? st->arch_source : "default");
}

static void summary(struct lp_cli *cli, const struct lp_pack_opts *o, const struct lp_pack_state *st,
		    const struct lp_pack_result *res, bool verbose)
{
	char a[32], b[32], c[32];
	size_t files, dirs, links;

	lp_entries_count(&st->entries, &files, &dirs, &links);
	fprintf(stderr, "%s: wrote %s (%s)\n", cli->prog, lp_cli_esc(res->path), res->artifact);
	fprintf(stderr, "  entries     %" PRIu64 " (%zu %s, %zu %s, %zu %s)\n", res->entries, files,
		lp_plural(files, "file", "files"), dirs, lp_plural(dirs, "directory", "directories"), links,
		lp_plural(links, "symlink", "symlinks"));
	fprintf(stderr, "  unzipped    %s (%" PRIu64 " bytes) = %.1f%% of %s%s\n",
		lp_human_size(res->unzipped, a, sizeof(a)), res->unzipped, res->unzipped_budget.pct,
		lp_human_size(res->unzipped_budget.limit, b, sizeof(b)),
		st->layers_unzipped ? " (262,144,000 minus layers)" : "");
	fprintf(stderr, "  zipped      %s (%" PRIu64 " bytes) = %.1f%% of the %s direct-upload limit\n",
		lp_human_size(res->zipped, a, sizeof(a)), res->zipped, res->zipped_budget.pct,
		lp_human_size(LP_LIMIT_ZIPPED, c, sizeof(c)));
	if (st->saved.n_dev_pkgs)
		fprintf(stderr, "  left out    %zu npm package%s (%zu files, %s) marked dev or for another platform "
			"in the lockfile; --include-dev keeps them\n", st->saved.n_dev_pkgs,
			st->saved.n_dev_pkgs == 1 ? "" : "s", st->saved.n_dev, lp_human_size(st->saved.dev, a, sizeof(a)));
	if (st->input_bytes > res->unzipped)
		fprintf(stderr, "  optimized   saved %s of %s\n",
			lp_human_size(st->input_bytes - res->unzipped, a, sizeof(a)),
			lp_human_size(st->input_bytes, b, sizeof(b)));
	lp_cli_materialized(cli, &st->entries, &st->report, verbose);
	target_line(o, st);
	fprintf(stderr, "  CodeSha256  %s\n", res->code_sha256);
	if (verbose)
		for (size_t i = 0; i < st->report.n_changes; i++) {
			const struct lp_change *ch = &st->report.changes[i];

			fprintf(stderr, "  %-14s %s %s%s%s\n", ch->action, lp_cli_esc(ch->path),
				ch->saved ? lp_human_size(ch->saved, a, sizeof(a)) : "",
				ch->detail ? " " : "", ch->detail ? lp_cli_msg(ch->detail) : "");
		}
}

/* A warning -q does not silence: the zip needs S3 to reach Lambda. */
static void warn_zipped(struct lp_cli *cli, const struct lp_pack_result *res)
{
	char a[32];

	if (res->zipped_budget.over)
		lp_cli_warn(cli, "%s is %s over the 52,428,800-byte direct-upload limit: upload it through S3 "
			    "(Lambda accepts up to 262,144,000 bytes unzipped from S3)",
			    res->path, lp_human_size(res->zipped_budget.over_by, a, sizeof(a)));
}

/*
 * A pack without -O that fails (compatibility, size): what -O would do,
 * from pack's own optimizer run dry on a copy of the entries and checked
 * again, so the hint says whether -O fixes both or not.
 */
static void hint_optimize(struct lp_cli *cli, const struct lp_pack_opts *o, const struct lp_pack_state *st)
{
	struct lp_entries scratch;
	struct lp_report rep;
	struct lp_opt_saved sv;
	struct lp_opt_set set = {
		.prune_foreign = true, .prune_junk = true, .strip = true, .dedupe = LP_DEDUPE_BINARIES,
		.junk_patterns = &o->junk_patterns, .arch = st->arch, .threads = o->threads,
	};
	struct lp_check_opts co = { .runtime = o->runtime, .arch = st->arch };
	struct lp_budget b;
	size_t errs;
	char a[32], c[32], d[32], u[32];

	if (o->optimize || lp_entries_clone(&scratch, &st->entries) < 0)
		return;
	lp_report_init(&rep);
	lp_errmsg_clear();
	if (lp_optimize(&scratch, &set, &rep, &sv) == 0) {
		lp_report_free(&rep);
		lp_report_init(&rep);
		if (lp_check_entries(&scratch, &co, &rep) == 0) {
			errs = lp_report_count(&rep, LP_SEV_ERROR);
			lp_budget_unzipped(lp_entries_unzipped_size(&scratch), st->layers_unzipped, &b);
			fprintf(stderr, "hint: -O would remove %zu foreign binar%s and %s of junk, strip %s and dedupe %s: "
				"unzipped %s (%s the limit), %zu compatibility error%s left%s\n",
				sv.n_foreign, sv.n_foreign == 1 ? "y" : "ies", lp_human_size(sv.junk, a, sizeof(a)),
				lp_human_size(sv.strip, c, sizeof(c)), lp_human_size(sv.dedupe, d, sizeof(d)),
				lp_human_size(b.used, u, sizeof(u)), b.over ? "still over" : "under", errs, errs == 1 ? "" : "s",
				!errs && !b.over ? ": -O fixes this" : "");
		}
	}
	lp_errmsg_clear();
	lp_report_free(&rep);
	lp_entries_free(&scratch);
	(void)cli;
}

/* The over-limit message: the limit, the size, how far over, the 10 largest contributors. */
static void too_big(struct lp_cli *cli, struct lp_pack_state *st, const struct lp_budget *b, bool would_image)
{
	struct lp_contrib *top = NULL, *groups = NULL;
	size_t ntop = 0, ngroups = 0;
	char x[32], y[32], z[32];

	fprintf(stderr, "%s: %s: unzipped size %" PRIu64 " bytes (%s) is over Lambda's limit: must be smaller than %" PRIu64
		" bytes%s; %s over%s\n", cli->prog, would_image ? "also" : "error", b->used,
		lp_human_size(b->used, x, sizeof(x)), b->limit,
		st->layers_unzipped ? " (262,144,000 minus the layers' unzipped size)" : "",
		lp_human_size(b->over_by, y, sizeof(y)),
		would_image ? " (with the checks passing, --fallback=container, the default, writes an OCI image instead)" : "");
	if (lp_pack_top_groups(&st->entries, 10, &groups, &ngroups) == 0) {
		fprintf(stderr, "largest directories/packages:\n");
		for (size_t i = 0; i < ngroups; i++)
			fprintf(stderr, "  %10s  %5.1f%%  %s\n", lp_human_size(groups[i].bytes, z, sizeof(z)),
				b->used ? 100.0 * (double)groups[i].bytes / (double)b->used : 0.0, lp_cli_esc(groups[i].name));
	}
	if (lp_pack_top_files(&st->entries, 10, &top, &ntop) == 0) {
		fprintf(stderr, "largest files:\n");
		for (size_t i = 0; i < ntop; i++)
			fprintf(stderr, "  %10s  %5.1f%%  %s\n", lp_human_size(top[i].bytes, z, sizeof(z)),
				b->used ? 100.0 * (double)top[i].bytes / (double)b->used : 0.0, lp_cli_esc(top[i].name));
	}
	fprintf(stderr, "hint: try -O (strip, dedupe, prune), or --fallback=container for a container image (up to 10 GiB)\n");
	/* The same fact for the JSON report, under the code analyze uses. */
	lp_cli_reason("unzipped size %" PRIu64 " bytes is over Lambda's limit of %" PRIu64 " bytes; no artifact written",
		      b->used, b->limit);
	lp_report_finding(&st->report, LP_SEV_ERROR, "over-unzipped-limit", NULL,
			  "unzipped size %" PRIu64 " bytes must be smaller than %" PRIu64 " bytes%s; %" PRIu64 " bytes over",
			  b->used, b->limit, st->layers_unzipped ? " (262,144,000 minus the layers)" : "", b->over_by);
	lp_contrib_free(top, ntop);
	lp_contrib_free(groups, ngroups);
}

static int write_zip(const struct lp_pack_opts *o, struct lp_pack_state *st, struct lp_pack_result *res)
{
	struct lp_outfile of;
	struct lp_zip_opts zo;
	struct lp_zip_result zr = { 0 };
	uint8_t d[32];
	double t0 = lp_now();
	int r;

	r = lp_outfile_open(&of, o->output);
	if (r < 0)
		return r;
	lp_zip_opts_init(&zo);
	zo.level = o->level;
	zo.threads = o->threads;
	zo.epoch = o->epoch;
	zo.name = o->output;
	zo.cache = o->cache;
	r = lp_zip_write(&st->entries, of.fd, &zo, &zr);
	if (r < 0) {
		lp_outfile_abort(&of);
		return r;
	}
	/*
	 * CodeSha256 is over the exact bytes Lambda receives: the writer hashed
	 * them on their way into the fresh file, else hash the file we wrote.
	 */
	if (zr.have_sha256)
		memcpy(d, zr.sha256, 32);
	else
		r = lp_sha256_file(of.tmp, d);
	if (r < 0) {
		lp_outfile_abort(&of);
		return r;
	}
	r = lp_outfile_commit(&of);
	if (r < 0)
		return r;
	res->artifact = "zip";
	res->path = o->output;
	res->entries = zr.entries;
	res->unzipped = zr.unzipped;
	res->zipped = zr.zipped;
	lp_base64(d, 32, res->code_sha256);
	lp_hex(d, 32, res->sha256_hex);
	lp_budget_unzipped(res->unzipped, st->layers_unzipped, &res->unzipped_budget);
	lp_budget_zipped(res->zipped, &res->zipped_budget);
	res->t_write = lp_now() - t0;
	return 0;
}

/* The same writer for pack --template (cli/cmd_template.c). */
int lp_cli_pack_write_zip(const struct lp_pack_opts *o, struct lp_pack_state *st, struct lp_pack_result *res)
{
	return write_zip(o, st, res);
}

/* The --json report, on every exit past argument parsing (docs/report.md). */
static int write_report(struct lp_cli *cli, const struct lp_pack_opts *o, const struct lp_pack_state *st,
			const struct lp_cli_reg *reg, bool prepared, const struct lp_pack_result *res, int ret, double t0)
{
	cJSON *env = lp_envelope_new("pack");

	if (env && (lp_pack_json(o, st, prepared, res, env) < 0 || lp_cli_reg_json(env, reg) < 0)) {
		cJSON_Delete(env);
		env = NULL;
	}
	return lp_cli_write_report(cli, env, o->json_path, ret, t0);
}

int cmd_pack(int argc, char **argv, struct lp_cli *cli)
{
	static const struct option own[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "json", required_argument, NULL, OPT_JSON },
		{ "with-layer", required_argument, NULL, OPT_WITH_LAYER },
		{ "fallback", required_argument, NULL, OPT_FALLBACK },
		{ "image-output", required_argument, NULL, OPT_IMAGE_OUTPUT },
		{ "base", required_argument, NULL, OPT_BASE },
		{ "handler", required_argument, NULL, OPT_HANDLER },
		{ "entrypoint", required_argument, NULL, OPT_ENTRYPOINT },
		{ "template", required_argument, NULL, OPT_TEMPLATE },
		{ "function", required_argument, NULL, OPT_FUNCTION },
		{ "out-dir", required_argument, NULL, OPT_OUT_DIR },
		{ "level", required_argument, NULL, 'l' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		LP_CLI_REGISTRY_LONGOPTS,
	};
	struct option longopts[64];
	struct lp_pack_opts o;
	struct lp_pack_state st;
	struct lp_pack_result res = { 0 };
	struct lp_budget b;
	const char *image_output = NULL;
	const char *base_arg = NULL;
	struct lp_cli_template tpl = { 0 };
	bool verbose = false, report = false, prepared = false;
	double t0 = lp_now();
	struct lp_cli_reg reg;
	char *base = NULL;
	int c, r, ret = LP_EXIT_ERROR;

	lp_cli_merge_longopts(own, sizeof(own) / sizeof(own[0]), longopts,
			      sizeof(longopts) / sizeof(longopts[0]));

	lp_pack_opts_init(&o);
	lp_pack_state_init(&st);
	lp_cli_reg_init(&reg);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:l:qvhOj:", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			o.output = optarg;
			break;
		case OPT_JSON:
			o.json_path = optarg;
			break;
		case OPT_WITH_LAYER:
			if (o.layers.n >= LP_MAX_LAYERS) {
				lp_cli_error(cli, 0, "at most %d layers (--with-layer) can be attached to a function", LP_MAX_LAYERS);
				ret = LP_EXIT_USAGE;
				goto out;
			}
			if (lp_strv_push(&o.layers, optarg) < 0)
				goto out;
			break;
		case OPT_FALLBACK:
			if (!strcmp(optarg, "container")) {
				o.fallback = LP_FALLBACK_CONTAINER;
			} else if (!strcmp(optarg, "none")) {
				o.fallback = LP_FALLBACK_NONE;
			} else {
				lp_cli_error(cli, 0, "--fallback takes 'container' or 'none', not '%s'", optarg);
				ret = LP_EXIT_USAGE;
				goto out;
			}
			break;
		case OPT_IMAGE_OUTPUT:
			image_output = optarg;
			break;
		case OPT_TEMPLATE:
			tpl.path = optarg;
			break;
		case OPT_FUNCTION:
			if (lp_strv_push(&tpl.functions, optarg) < 0)
				goto out;
			break;
		case OPT_OUT_DIR:
			tpl.out_dir = optarg;
			break;
		case 'l': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*end || v < 1 || v > 12) {
				lp_cli_error(cli, 0, "--level takes 1 to 12, not '%s'", optarg);
				ret = LP_EXIT_USAGE;
				goto out;
			}
			o.level = (int)v;
			break;
		}
		case OPT_BASE:
			base_arg = optarg;
			break;
		case OPT_HANDLER:
			o.image_handler = optarg;
			break;
		case OPT_ENTRYPOINT:
			o.image_entrypoint = optarg;
			break;
		case LP_CLI_OPT_PUSH:
		case LP_CLI_OPT_TLS_VERIFY:
			if (lp_cli_reg_opt(cli, c, optarg, &reg) < 0) {
				ret = LP_EXIT_USAGE;
				goto out;
			}
			break;
		default:
			r = lp_cli_shared_opt(cli, "pack", pack_usage, c, optarg, argv[optind - 1], &o, &verbose);
			if (r <= 0) {
				ret = r == 0 ? LP_EXIT_OK : LP_EXIT_USAGE;
				goto out;
			}
		}
	}
	if (tpl.path || tpl.functions.n || tpl.out_dir) {
		ret = lp_cli_pack_template(cli, &o, &tpl, argc - optind, image_output, verbose);
		goto out;
	}
	if (!o.output) {
		lp_cli_error(cli, 0, "no output given (-o function.zip)");
		ret = LP_EXIT_USAGE;
		goto out;
	}
	if (lp_cli_add_sources(cli, argc - optind, argv + optind, &o) < 0) {
		ret = LP_EXIT_USAGE;
		goto out;
	}
	/* Past argument parsing, every exit writes the report. */
	report = o.json_path != NULL;
	r = lp_cli_base(cli, base_arg, &o, &o.image_base);
	if (r) {
		ret = r;
		goto out;
	}
	/* Refuse an output we would not write before the work, not after it. */
	lp_errmsg_clear();
	r = lp_output_check_file(o.output);
	if (r == 0 && image_output)
		r = lp_oci_output_check(image_output, NULL);
	if (r == 0)
		r = lp_input_skip_add(&o.input, o.output, "the output");
	if (r == 0 && o.json_path && strcmp(o.json_path, "-"))
		r = lp_input_skip_add(&o.input, o.json_path, "the JSON report");
	if (r == 0 && o.fallback == LP_FALLBACK_CONTAINER) {
		char fb[4096];

		r = lp_input_skip_add(&o.input, lp_pack_fallback_path(&o, image_output, fb, sizeof(fb)),
				      "the fallback image directory");
	}
	if (r < 0) {
		lp_cli_error(cli, r, NULL);
		ret = LP_EXIT_ERROR;
		goto out;
	}

	if (lp_cli_cache_open(cli, "pack", &o) < 0 ||
	    (o.cache_dir && lp_input_skip_add(&o.input, o.cache_dir, "the cache directory") < 0)) {
		ret = LP_EXIT_ERROR;
		goto out;
	}

	o.index_in_walk = true;	/* the zip writer knows LP_F_MEMO_MISS */
	lp_progress_start(cli, "reading sources");
	lp_errmsg_clear();
	r = lp_pack_prepare(&o, &st);
	if (verbose && !cli->quiet) {
		lp_progress_stop();
		lp_cli_print_skipped(cli, &o.input);
	}
	if (r < 0 && st.n_problems) {
		lp_progress_stop();
		lp_cli_problems(cli, &st.report, r, "no artifact written");
		ret = LP_EXIT_ERROR;
		goto out;
	}
	if (r < 0) {
		lp_progress_stop();
		/* Input problems collected while reading (messages already escaped); one is the error itself. */
		for (size_t i = 0; lp_report_count(&st.report, LP_SEV_ERROR) > 1 && i < st.report.n_findings; i++)
			if (st.report.findings[i].sev == LP_SEV_ERROR)
				fprintf(stderr, "%s: error: %s [%s]\n", cli->prog, st.report.findings[i].message,
					st.report.findings[i].code);
		lp_cli_error(cli, r, NULL);
		ret = lp_cli_exit_for(r);
		goto out;
	}
	lp_budget_unzipped(lp_entries_unzipped_size(&st.entries), st.layers_unzipped, &b);
	prepared = true;
	if (lp_report_count(&st.report, LP_SEV_ERROR) > 0) {
		size_t n = lp_report_count(&st.report, LP_SEV_ERROR);

		lp_progress_stop();
		lp_cli_reason("compatibility check failed (%zu error%s); no artifact written", n, n == 1 ? "" : "s");
		fprintf(stderr, "%s: compatibility check failed; no artifact written:\n", cli->prog);
		lp_cli_print_findings(cli, &st.report, verbose);
		/* One run names every problem: the size too, not only after the binaries are fixed. */
		if (b.over)
			too_big(cli, &st, &b, o.fallback == LP_FALLBACK_CONTAINER && !o.layers.n);
		if (!cli->quiet) {
			target_line(&o, &st);
			hint_optimize(cli, &o, &st);
		}
		fprintf(stderr, "hint: --no-check reports these as warnings and packs anyway\n");
		ret = LP_EXIT_CHECK;
		goto out;
	}

	if (b.over) {
		lp_progress_stop();
		if (o.fallback == LP_FALLBACK_NONE || o.layers.n) {
			too_big(cli, &st, &b, false);
			hint_optimize(cli, &o, &st);
			ret = LP_EXIT_TOOBIG;
			goto out;
		}
		/* A registry base is fetched only now that an image is needed (a zip needs none). */
		if (o.image_base) {
			r = lp_cli_base_resolve(cli, o.image_base, &o, &reg, &base);
			if (r < 0) {
				ret = lp_cli_exit_for(r);
				goto out;
			}
			o.image_base = base;
		}
		lp_progress_start(cli, "writing container image");
		r = lp_pack_fallback_image(&o, &st, image_output, &res);
		lp_progress_stop();
		if (r == -LP_E_CHECK) {
			lp_cli_reason("the over-the-limit image would not start (image-not-runnable); no artifact written");
			fprintf(stderr, "%s: the over-the-limit image would not start; no artifact written:\n", cli->prog);
			lp_cli_print_findings(cli, &st.report, verbose);
			fprintf(stderr, "hint: --base, --entrypoint and --handler set what it runs; --no-check writes it anyway\n");
			ret = LP_EXIT_CHECK;
			goto out;
		}
		if (r < 0) {
			lp_cli_error(cli, r, "fallback container image");
			ret = lp_cli_exit_for(r);
			goto out;
		}
		ret = LP_EXIT_IMAGE;
		/* The fallback image goes to the registry as it would from container --push. */
		if (reg.push && lp_cli_push(cli, res.path, res.manifest_digest, &o, &reg) < 0)
			ret = LP_EXIT_ERROR;
	} else {
		if (reg.push)
			lp_cli_warn(cli, "--push: the function fits in a zip, so there is no image to push");
		lp_progress_phase("writing zip");
		r = write_zip(&o, &st, &res);
		lp_progress_stop();
		if (r < 0) {
			lp_cli_error(cli, r, "cannot write %s", o.output);
			ret = lp_cli_exit_for(r);
			goto out;
		}
		ret = LP_EXIT_OK;
	}

	lp_cli_cache_close(cli, &o, &st.report, verbose);
	if (!cli->quiet) {
		if (ret == LP_EXIT_IMAGE)
			fprintf(stderr, "%s: the function is too big for a zip (%s); wrote an OCI image layout to %s instead "
				"(deploy it as a container image, up to 10 GiB)\n", cli->prog, lp_cli_msg(res.fallback_reason),
				lp_cli_esc(res.path));
		if (ret == LP_EXIT_IMAGE)
			target_line(&o, &st);
		else
			summary(cli, &o, &st, &res, verbose);
	}
	/* -q silences the summary, never a warning. */
	lp_cli_print_findings(cli, &st.report, verbose && !cli->quiet);
	if (ret == LP_EXIT_OK)
		warn_zipped(cli, &res);
out:
	lp_progress_stop();
	if (report)
		ret = write_report(cli, &o, &st, &reg, prepared, &res, ret, t0);
	lp_strv_free(&tpl.functions);
	lp_cli_reg_free(&reg);
	free(base);
	lp_cli_cache_close(cli, &o, NULL, false);
	lp_pack_state_free(&st);
	lp_pack_opts_free(&o);
	return ret;
}
