/* SPDX-License-Identifier: MIT */
/* lambdapack container: sources in, a reproducible OCI image (layout or oci-archive) out. */
#include "cli/cli.h"
#include "container/oci.h"
#include "core/err.h"
#include "core/envelope.h"
#include "core/json.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char container_usage[] =
	"usage: lambdapack container [options] SOURCE... -o DIR|FILE.tar\n"
	"\n"
	"Build a Lambda container image without a daemon: an OCI image layout directory,\n"
	"or FILE.tar, an oci-archive that also carries a docker manifest.json (docker load,\n"
	"podman load and skopeo read it). The same bytes come out for the same input,\n"
	"whatever the file times or the thread count.\n"
	"\n"
	"Where files go: SOURCE paths under opt/ become /opt/... (extensions, runtimes);\n"
	"everything else goes under the task root (/var/task).\n"
	"Layers: [base] [/opt] [dependencies: node_modules/, site-packages/, vendor/, lib/,\n"
	"python/, pip-installed packages, split by package above 512 MiB] [function code].\n"
	"\n"
	"Image:\n"
	"  -o, --output DIR|FILE.tar an OCI layout directory (new, empty, or an existing layout the\n"
	"                            image is added to, its tag moved), or an oci-archive tar\n"
	"  --base oci:DIR[:TAG]      start from this image (layers reused as they are; its Env,\n"
	"  --base oci-archive:FILE[:TAG]  Entrypoint, Cmd, WorkingDir and User are kept and merged)\n"
	"  --base docker-archive:FILE\n"
	"  --base auto               the --runtime's AWS base image, docker://public.ecr.aws/lambda/...\n"
	"                            (docs/runtimes.md); the default when --runtime is given\n"
	"  --base scratch            no base (a custom runtime with its own bootstrap); the default\n"
	"                            without --runtime\n"
	"  --base docker://HOST/REPO[:TAG|@sha256:HEX]  from a registry (see Registries below)\n"
	"  --handler NAME            CMD, e.g. app.handler\n"
	"  --entrypoint PATH         ENTRYPOINT (relative: under the task root). Default: the base's,\n"
	"                            else /var/task/bootstrap when the sources have a bootstrap\n"
	"  --env KEY=VALUE           add or override an environment variable (repeatable);\n"
	"                            LAMBDA_TASK_ROOT is set when the base does not set it\n"
	"  --workdir DIR             WORKDIR (default: the base's, else the task root)\n"
	"  --tag TAG                 org.opencontainers.image.ref.name (default latest)\n"
	"  --compression gzip|zstd|none  layer compression (default gzip: what Lambda is known to accept)\n"
	"  -l, --level N             compression level (gzip 1-9, default 6; zstd 1-19, default 3)\n"
	"  --task-root DIR           where the function goes (default /var/task)\n"
	"  --opt-in-task-root        keep opt/ under the task root instead of mapping it to /opt\n"
	"  --layer-max SIZE          split dependency layers above SIZE (default 512M)\n"
	"  --json FILE               machine-readable report (FILE or - for stdout)\n"
	"  --no-check                build even when the image would not start (image-not-runnable)\n"
	"                            or a compatibility check fails: both become warnings\n"
	"  -q, --quiet               no summary on stderr\n"
	"  -v, --verbose             list every optimization and informational finding\n"
	"\n";

enum {
	OPT_JSON = 3000,
	OPT_BASE,
	OPT_HANDLER,
	OPT_ENTRYPOINT,
	OPT_ENV,
	OPT_WORKDIR,
	OPT_TAG,
	OPT_COMPRESSION,
	OPT_TASK_ROOT,
	OPT_OPT_IN_TASK_ROOT,
	OPT_LAYER_MAX,
};

static void summary(struct lp_cli *cli, const struct lp_oci_opts *oo, const struct lp_oci_result *res,
		    const struct lp_pack_state *st, bool verbose)
{
	char a[32], b[32];

	fprintf(stderr, "%s: wrote %s (%s, %s)\n", cli->prog, lp_cli_esc(oo->output),
		res->archive ? "oci-archive tar" : res->added ? "added to the existing OCI image layout" :
		"OCI image layout", res->arch);
	fprintf(stderr, "  manifest    %s\n", res->manifest_digest);
	fprintf(stderr, "  config      %s\n", res->config_digest);
	for (size_t i = 0; i < res->n_layers; i++) {
		const struct lp_oci_blob *l = &res->layers[i];

		fprintf(stderr, "  layer %-2zu    %.19s  %9s -> %9s  %s\n", i + 1, l->digest,
			lp_human_size(l->usize, a, sizeof(a)), lp_human_size(l->size, b, sizeof(b)),
			lp_cli_esc(l->from_base ? "(base, reused)" : l->created_by + strlen("lambdapack container: ")));
	}
	fprintf(stderr, "  image       %s uncompressed = %.1f%% of 10 GiB; %s compressed\n",
		lp_human_size(res->usize, a, sizeof(a)), res->budget.pct, lp_human_size(res->csize, b, sizeof(b)));
	if (st->input_bytes > lp_entries_unzipped_size(&st->entries))
		fprintf(stderr, "  optimized   saved %s\n",
			lp_human_size(st->input_bytes - lp_entries_unzipped_size(&st->entries), a, sizeof(a)));
	lp_cli_materialized(cli, &st->entries, &st->report, verbose);
}

/* The OCI architecture name as the rest of the report spells it (target.arch). */
static const char *oci_arch(const char *a)
{
	return !strcmp(a, "amd64") ? "x86_64" : a;
}

/* -o FILE.tar is an oci-archive (as lp_oci_write decides). */
static bool is_tar(const char *p)
{
	size_t n = strlen(p);

	return n >= 4 && !strcmp(p + n - 4, ".tar");
}

/*
 * The --json report (docs/report.md), on every exit past argument parsing:
 * the envelope, then the image (written: res is filled) and the function.
 */
static int write_report(struct lp_cli *cli, const struct lp_oci_opts *oo, const struct lp_oci_result *res,
			const struct lp_pack_opts *o, const struct lp_pack_state *st, const struct lp_cli_reg *reg,
			bool prepared, bool written,
			int ret, double t0)
{
	cJSON *env = lp_envelope_new("container"), *a, *img, *layers, *fs;
	bool archive = written ? res->archive : is_tar(oo->output);

	if (!env || !(a = lp_envelope_artifact(env)) ||
	    lp_json_str(a, "type", archive ? "oci-archive" : "oci-layout") < 0 ||
	    lp_json_str(a, "path", oo->output) < 0 || lp_json_bool(a, "written", written) < 0 ||
	    lp_json_str(a, "tag", oo->tag ? oo->tag : "latest") < 0 ||
	    lp_envelope_findings(env, &st->report) < 0 || lp_envelope_time(env, "load_s", st->t_load) < 0 ||
	    lp_envelope_time(env, "optimize_s", st->t_optimize) < 0)
		goto fail;
	if (written &&
	    (lp_json_u64(a, "bytes", res->csize) < 0 || lp_json_str(a, "manifest_digest", res->manifest_digest) < 0 ||
	     lp_json_str(a, "config_digest", res->config_digest) < 0 || lp_json_bool(a, "added", res->added) < 0 ||
	     lp_envelope_limit(env, "image", &res->budget) < 0))
		goto fail;
	/* Over 10 GiB: the estimate the image was refused on. */
	if (!written && res->budget.over && lp_envelope_limit(env, "image", &res->budget) < 0)
		goto fail;
	if (prepared && lp_envelope_target(env, written ? oci_arch(res->arch) : lp_arch_name(st->arch), o->runtime) < 0)
		goto fail;
	if (written) {
		if (!(img = lp_json_obj(env, "image")) ||
		    lp_json_u64(img, "manifest_size", res->manifest_size) < 0 ||
		    lp_json_str(img, "architecture", res->arch) < 0 ||
		    lp_json_u64(img, "uncompressed_bytes", res->usize) < 0 ||
		    lp_json_u64(img, "compressed_bytes", res->csize) < 0 ||
		    !(layers = lp_json_arr(img, "layers")))
			goto fail;
		for (size_t i = 0; i < res->n_layers; i++) {
			const struct lp_oci_blob *l = &res->layers[i];
			cJSON *lo = lp_json_push_obj(layers);

			if (!lo || lp_json_str(lo, "digest", l->digest) < 0 || lp_json_str(lo, "diff_id", l->diff_id) < 0 ||
			    lp_json_str(lo, "media_type", l->media_type) < 0 || lp_json_u64(lo, "size", l->size) < 0 ||
			    lp_json_u64(lo, "uncompressed_size", l->usize) < 0 ||
			    lp_json_bool(lo, "from_base", l->from_base) < 0 ||
			    lp_json_str(lo, "created_by", l->created_by) < 0)
				goto fail;
		}
	}
	if (prepared &&
	    (!(fs = lp_json_obj(env, "function")) || lp_json_u64(fs, "entries", st->entries.n) < 0 ||
	     lp_json_u64(fs, "bytes", lp_entries_unzipped_size(&st->entries)) < 0 ||
	     lp_json_u64(fs, "input_bytes", st->input_bytes) < 0 || lp_pack_json_links(env, st) < 0 ||
	     lp_cli_reg_json(env, reg) < 0))
		goto fail;
	return lp_cli_write_report(cli, env, o->json_path, ret, t0);
fail:
	cJSON_Delete(env);
	return lp_cli_write_report(cli, NULL, o->json_path, ret, t0);
}

static bool not_runnable(const struct lp_report *rep)
{
	for (size_t i = 0; i < rep->n_findings; i++)
		if (rep->findings[i].sev == LP_SEV_ERROR && strcmp(rep->findings[i].code, "image-not-runnable") == 0)
			return true;
	return false;
}

int cmd_container(int argc, char **argv, struct lp_cli *cli)
{
	static const struct option own[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "json", required_argument, NULL, OPT_JSON },
		{ "base", required_argument, NULL, OPT_BASE },
		{ "handler", required_argument, NULL, OPT_HANDLER },
		{ "entrypoint", required_argument, NULL, OPT_ENTRYPOINT },
		{ "env", required_argument, NULL, OPT_ENV },
		{ "workdir", required_argument, NULL, OPT_WORKDIR },
		{ "tag", required_argument, NULL, OPT_TAG },
		{ "compression", required_argument, NULL, OPT_COMPRESSION },
		{ "level", required_argument, NULL, 'l' },
		{ "task-root", required_argument, NULL, OPT_TASK_ROOT },
		{ "opt-in-task-root", no_argument, NULL, OPT_OPT_IN_TASK_ROOT },
		{ "layer-max", required_argument, NULL, OPT_LAYER_MAX },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		LP_CLI_REGISTRY_LONGOPTS,
	};
	struct option longopts[64];
	struct lp_pack_opts o;
	struct lp_pack_state st;
	struct lp_oci_opts oo;
	struct lp_oci_result res = { 0 };
	struct lp_strv env = { 0 };
	const char *base_arg = NULL;
	bool verbose = false, report = false, prepared = false, written = false;
	double t0 = lp_now();
	struct lp_cli_reg reg;
	char *base = NULL;
	int c, r, ret = LP_EXIT_ERROR;

	lp_cli_merge_longopts(own, sizeof(own) / sizeof(own[0]), longopts,
			      sizeof(longopts) / sizeof(longopts[0]));

	lp_pack_opts_init(&o);
	o.image = true;	/* the image's CMD names the program: no zip-root bootstrap rule */
	lp_pack_state_init(&st);
	lp_oci_opts_init(&oo);
	lp_cli_reg_init(&reg);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:l:qvhOj:", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			oo.output = optarg;
			break;
		case OPT_JSON:
			o.json_path = optarg;
			break;
		case OPT_BASE:
			base_arg = optarg;
			break;
		case OPT_HANDLER:
			oo.handler = optarg;
			break;
		case OPT_ENTRYPOINT:
			oo.entrypoint = optarg;
			break;
		case OPT_ENV:
			if (!strchr(optarg, '=') || optarg[0] == '=') {
				lp_cli_error(cli, 0, "--env takes KEY=VALUE, not '%s'", optarg);
				ret = LP_EXIT_USAGE;
				goto out;
			}
			if (lp_strv_push(&env, optarg) < 0)
				goto out;
			break;
		case OPT_WORKDIR:
			oo.workdir = optarg;
			break;
		case OPT_TAG:
			oo.tag = optarg;
			break;
		case OPT_COMPRESSION: {
			int v = lp_oci_compression_parse(optarg);

			if (v < 0) {
				lp_cli_error(cli, 0, "--compression takes gzip, zstd or none, not '%s'", optarg);
				ret = LP_EXIT_USAGE;
				goto out;
			}
			oo.compression = (enum lp_oci_compression)v;
			break;
		}
		case 'l': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*end || v < 1 || v > 19) {
				lp_cli_error(cli, 0, "--level takes 1 to 9 (gzip) or 1 to 19 (zstd), not '%s'", optarg);
				ret = LP_EXIT_USAGE;
				goto out;
			}
			oo.level = (int)v;
			break;
		}
		case OPT_TASK_ROOT:
			if (optarg[0] != '/') {
				lp_cli_error(cli, 0, "--task-root must be absolute, not '%s'", optarg);
				ret = LP_EXIT_USAGE;
				goto out;
			}
			oo.task_root = optarg;
			break;
		case OPT_OPT_IN_TASK_ROOT:
			oo.opt_in_task_root = true;
			break;
		case OPT_LAYER_MAX:
			if (lp_parse_size(optarg, &oo.layer_max) < 0 || oo.layer_max == 0) {
				lp_cli_error(cli, 0, "--layer-max takes a size such as 256M, not '%s'", optarg);
				ret = LP_EXIT_USAGE;
				goto out;
			}
			break;
		case LP_CLI_OPT_PUSH:
		case LP_CLI_OPT_TLS_VERIFY:
			if (lp_cli_reg_opt(cli, c, optarg, &reg) < 0) {
				ret = LP_EXIT_USAGE;
				goto out;
			}
			break;
		default:
			r = lp_cli_shared_opt(cli, "container", container_usage, c, optarg, argv[optind - 1], &o, &verbose);
			if (r <= 0) {
				ret = r == 0 ? LP_EXIT_OK : LP_EXIT_USAGE;
				goto out;
			}
		}
	}
	if (!oo.output) {
		lp_cli_error(cli, 0, "no output given (-o image.oci or -o image.tar)");
		ret = LP_EXIT_USAGE;
		goto out;
	}
	if (oo.level > 9 && oo.compression == LP_OCI_GZIP) {
		lp_cli_error(cli, 0, "gzip levels are 1 to 9");
		ret = LP_EXIT_USAGE;
		goto out;
	}
	if (lp_cli_add_sources(cli, argc - optind, argv + optind, &o) < 0) {
		ret = LP_EXIT_USAGE;
		goto out;
	}
	/* Past argument parsing, every exit writes the report. */
	report = o.json_path != NULL;
	r = lp_cli_base(cli, base_arg, &o, &oo.base);
	if (r) {
		ret = r;
		goto out;
	}
	/* Refuse an output we would not write before the work, not after it. */
	lp_errmsg_clear();
	r = lp_oci_output_check(oo.output, NULL);
	if (r == 0)
		r = lp_input_skip_add(&o.input, oo.output, "the output");
	if (r == 0 && o.json_path && strcmp(o.json_path, "-"))
		r = lp_input_skip_add(&o.input, o.json_path, "the JSON report");
	if (r < 0) {
		lp_cli_error(cli, r, NULL);
		ret = LP_EXIT_ERROR;
		goto out;
	}
	if (reg.push && is_tar(oo.output)) {
		lp_cli_error(cli, 0, "--push sends an OCI layout directory; give -o DIR, not a .tar");
		ret = LP_EXIT_USAGE;
		goto out;
	}
	/* A registry base is fetched (or found in the cache) before the sources are read: fail fast. */
	if (oo.base) {
		r = lp_cli_base_resolve(cli, oo.base, &o, &reg, &base);
		if (r < 0) {
			ret = lp_cli_exit_for(r);
			goto out;
		}
		oo.base = base;
	}
	/* The image is written from the entries' files; no zip-only limits apply here. */
	o.output = oo.output;
	if (lp_cli_cache_open(cli, "container", &o) < 0 ||
	    (o.cache_dir && lp_input_skip_add(&o.input, o.cache_dir, "the cache directory") < 0)) {
		ret = LP_EXIT_ERROR;
		goto out;
	}

	lp_progress_start(cli, "reading sources");
	lp_errmsg_clear();
	r = lp_pack_prepare(&o, &st);
	if (verbose && !cli->quiet) {
		lp_progress_stop();
		lp_cli_print_skipped(cli, &o.input);
	}
	if (r < 0 && st.n_problems) {
		lp_progress_stop();
		lp_cli_problems(cli, &st.report, r, "no image written");
		ret = LP_EXIT_ERROR;
		goto out;
	}
	if (r < 0) {
		lp_progress_stop();
		lp_cli_error(cli, r, NULL);
		ret = lp_cli_exit_for(r);
		goto out;
	}
	prepared = true;
	if (lp_report_count(&st.report, LP_SEV_ERROR) > 0) {
		size_t n = lp_report_count(&st.report, LP_SEV_ERROR);

		lp_progress_stop();
		lp_cli_reason("compatibility check failed (%zu error%s); no image written", n, n == 1 ? "" : "s");
		fprintf(stderr, "%s: compatibility check failed; no image written:\n", cli->prog);
		lp_cli_print_findings(cli, &st.report, verbose);
		fprintf(stderr, "hint: --no-check reports these as warnings and builds anyway\n");
		ret = LP_EXIT_CHECK;
		goto out;
	}

	oo.env = (const char *const *)env.v;
	oo.n_env = env.n;
	oo.arch = o.arch;	/* given; lp_oci_write detects from the binaries, then the base */
	oo.threads = o.threads;
	oo.epoch = o.epoch;
	oo.report = &st.report;
	oo.check_runnable = true;
	oo.check_warn = o.no_check;
	oo.runtime = o.runtime;
	oo.cache = o.cache;
	lp_progress_phase("writing image");
	r = lp_oci_write(&st.entries, &oo, &res);
	lp_progress_stop();
	if (r == -LP_E_CHECK && not_runnable(&st.report)) {
		lp_cli_reason("the image would not start (image-not-runnable); no image written");
		fprintf(stderr, "%s: the image would not start; no image written:\n", cli->prog);
		lp_cli_print_findings(cli, &st.report, verbose);
		fprintf(stderr, "hint: --base, --entrypoint and --handler set what it runs; --no-check writes it anyway\n");
		ret = LP_EXIT_CHECK;
		goto out;
	}
	if (r < 0) {
		lp_cli_error(cli, r, "cannot build the image");
		if (r == -LP_E_TOOBIG || r == -LP_E_CHECK)
			lp_cli_print_findings(cli, &st.report, verbose);
		ret = lp_cli_exit_for(r);
		goto out;
	}
	ret = LP_EXIT_OK;
	written = true;
	lp_cli_cache_close(cli, &o, &st.report, verbose);
	if (!cli->quiet) {
		summary(cli, &oo, &res, &st, verbose);
		lp_cli_print_findings(cli, &st.report, verbose);
	}
	if (reg.push) {
		r = lp_cli_push(cli, oo.output, res.manifest_digest, &o, &reg);
		if (r < 0)
			ret = LP_EXIT_ERROR;
	}
out:
	lp_progress_stop();
	if (report)
		ret = write_report(cli, &oo, &res, &o, &st, &reg, prepared, written, ret, t0);
	lp_cli_cache_close(cli, &o, NULL, false);
	lp_oci_result_free(&res);
	lp_strv_free(&env);
	lp_cli_reg_free(&reg);
	free(base);
	lp_pack_state_free(&st);
	lp_pack_opts_free(&o);
	return ret;
}
