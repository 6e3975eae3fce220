/* SPDX-License-Identifier: MIT */
/*
 * The front end: a git-style table of subcommands. Only code under cli/
 * prints to the user or decides exit codes.
 */
#pragma once

#include <stdbool.h>
#include <getopt.h>
#include <stdio.h>

#include "pack/pack.h"
#include "registry/registry.h"

struct cJSON;

/* Documented exit codes (README "Exit codes"). */
enum lp_exit {
	LP_EXIT_OK = 0,		/* artifact written, checks passed */
	LP_EXIT_ERROR = 1,	/* bad input, I/O error, anything unexpected */
	LP_EXIT_USAGE = 2,	/* bad command line */
	LP_EXIT_TOOBIG = 3,	/* over a Lambda size limit; no artifact written */
	LP_EXIT_CHECK = 4,	/* compatibility check failed (glibc, arch, foreign binary) */
	LP_EXIT_BUDGET = 5,	/* analyze: a --max-* / --min-efficiency / --fail-on gate failed */
	LP_EXIT_IMAGE = 6,	/* pack: too big for a zip, an OCI image was written instead */
	LP_EXIT_INTERRUPTED = 130,
};

enum lp_color_mode {
	LP_COLOR_AUTO = 0,	/* --color=auto (the default): terminals, NO_COLOR, FORCE_COLOR */
	LP_COLOR_ALWAYS,
	LP_COLOR_NEVER,
};

struct lp_cli {
	const char *prog;	/* argv[0] basename */
	bool quiet;		/* -q: no human summary */
	bool color;		/* colour on stderr (lp_cli_color_for(stderr)) */
	bool tty;		/* stderr is a TTY (progress line allowed) */
	enum lp_color_mode color_mode;	/* --color */
	bool json_stdout;	/* --json -: no progress line either */
};

struct lp_cmd {
	const char *name;
	int (*fn)(int argc, char **argv, struct lp_cli *cli);
	const char *summary;
};

int cmd_pack(int argc, char **argv, struct lp_cli *cli);
int cmd_analyze(int argc, char **argv, struct lp_cli *cli);
int cmd_container(int argc, char **argv, struct lp_cli *cli);

/* Longest message line before escaping. */
#define LP_CLI_LINE 2048

/*
 * Print "lambdapack: error: <msg>" (+ the library's detail, said once if it
 * starts with msg) to stderr, escaped (lp_escape): no raw control bytes.
 */
void lp_cli_error(struct lp_cli *cli, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void lp_cli_warn(struct lp_cli *cli, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * An untrusted name made safe to print (lp_escape) in one of a few rotating
 * static buffers: valid until 8 more calls. Every name printed by cli/
 * goes through this or through lp_cli_error/lp_cli_warn.
 */
const char *lp_cli_esc(const char *s);
/* A message (which may hold names the library already escaped) made safe to print: lp_sanitize. */
const char *lp_cli_msg(const char *s);

/*
 * Input problems: every error finding (and warning) of rep, one escaped
 * line each, then "N problems in the input; <outcome>". err is what the
 * load returned (-LP_E_INPUT, or the error that stopped it past the cap).
 */
void lp_cli_problems(struct lp_cli *cli, const struct lp_report *rep, int err, const char *outcome);

/*
 * Summary line for links stored as their targets' bytes: count and bytes
 * (as packed), each link with verbose.
 */
void lp_cli_materialized(struct lp_cli *cli, const struct lp_entries *l, const struct lp_report *rep, bool verbose);

/* Map a library error code to an exit code. */
int lp_cli_exit_for(int err);

/*
 * Shared option handling for commands that take SOURCE... (pack, container):
 * parse one option if it is a source/optimizer option. Returns 1 if it was
 * consumed, 0 if not ours, or -LP_E_USAGE with a message printed.
 */
int lp_cli_source_opt(struct lp_cli *cli, int opt, const char *arg, struct lp_pack_opts *o);

/*
 * Build a command's getopt_long table: its own options, then the shared
 * source options, zero-terminated within cap entries. Returns the count.
 */
size_t lp_cli_merge_longopts(const struct option *own, size_t n_own, struct option *out, size_t cap);

/*
 * The option cases every SOURCE-taking command shares: -q, -v, -h, a missing
 * value (':'), an unknown option ('?') and the source/optimizer options.
 * argword is argv[optind - 1] for messages. Returns 1 if handled (go on),
 * 0 after printing help (exit 0), or -LP_E_USAGE with the message printed.
 */
int lp_cli_shared_opt(struct lp_cli *cli, const char *cmd, const char *usage, int opt, const char *arg,
		      const char *argword, struct lp_pack_opts *o, bool *verbose);

/* The getopt_long entries lp_cli_source_opt() understands; NULL-terminated. */
extern const struct option lp_cli_source_longopts[];

/*
 * The base image of `container` and of pack's over-the-limit image, in one
 * place: given is --base (NULL when not given). "scratch" -> *ret NULL (no
 * base, on purpose); "auto" -> "docker://" + the --runtime's AWS base image
 * (core/limits.c); no --base -> auto when a runtime is given, else scratch;
 * oci:, oci-archive:, docker-archive: and docker:// specs pass through.
 * Returns 0, or an exit code with the message printed. *ret may point at a
 * static buffer.
 */
int lp_cli_base(struct lp_cli *cli, const char *given, const struct lp_pack_opts *o, const char **ret);

/*
 * The one-line error for a base that could not be obtained (spec as
 * lp_cli_base gave it; err and the library's detail say why), naming the
 * reference and the other ways to give it (--base oci:DIR,
 * docker-archive:FILE, scratch).
 */
void lp_cli_base_failed(struct lp_cli *cli, int err, const char *spec);

/* Help text lines for the shared options. */
extern const char lp_cli_source_help[];

/* Write a report's findings/changes to stderr for people. */
void lp_cli_print_findings(struct lp_cli *cli, const struct lp_report *rep, bool verbose);

/* With -v: say which of this run's own paths the source walks left out. */
void lp_cli_print_skipped(struct lp_cli *cli, const struct lp_input_opts *o);

/* Turn the remaining arguments into sources (prints and returns -LP_E_USAGE on error). */
int lp_cli_add_sources(struct lp_cli *cli, int argc, char **argv, struct lp_pack_opts *o);

/* Write st's entries as the zip o->output (temp + rename); fills res with its sizes and CodeSha256. */
int lp_cli_pack_write_zip(const struct lp_pack_opts *o, struct lp_pack_state *st, struct lp_pack_result *res);

/* pack --template: what the command line said (cli/cmd_template.c). */
struct lp_cli_template {
	const char *path;		/* --template */
	struct lp_strv functions;	/* --function IDs */
	const char *out_dir;		/* --out-dir */
};

/*
 * Pack every selected function and local layer of a template, with o's
 * shared options (excludes, -O, --no-check ...). n_args: SOURCE arguments
 * left over (refused: the template names the sources). Returns the exit code.
 */
int lp_cli_pack_template(struct lp_cli *cli, struct lp_pack_opts *o, struct lp_cli_template *tpl, int n_args,
			 const char *image_output, bool verbose);

/* A "still working" line on stderr for runs longer than a second (TTY only). */
/* The build cache of pack and container (--cache-dir, --cache-max, --no-cache). */
int lp_cli_cache_open(struct lp_cli *cli, const char *cmd, struct lp_pack_opts *o);
void lp_cli_cache_close(struct lp_cli *cli, struct lp_pack_opts *o, struct lp_report *rep, bool verbose);

void lp_progress_start(struct lp_cli *cli, const char *phase);
void lp_progress_phase(const char *phase);
void lp_progress_stop(void);

/*
 * The report envelope's end (cli/report.c): exit_code, error (the reason
 * given with lp_cli_reason, else the last error line printed) and
 * timing.total_s since t0, written atomically to path ("-": stdout).
 * Takes env (NULL: out of memory). Returns exit_code, or LP_EXIT_ERROR
 * when the report cannot be written. After an interrupt nothing is written.
 */
struct cJSON;
int lp_cli_write_report(struct lp_cli *cli, struct cJSON *env, const char *path, int exit_code, double t0);
/* Why this run fails, for the report's "error" (one line, like an error message). */
void lp_cli_reason(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Every error line printed is remembered (lp_cli_error and friends call this). */
void lp_cli_note_error(const char *msg);

/* --color's WHEN: an lp_color_mode, or -1. */
int lp_cli_color_parse(const char *when);
/* Colour on f? --color, then FORCE_COLOR, then NO_COLOR, then whether f is a terminal (cli/color.c). */
bool lp_cli_color_for(const struct lp_cli *cli, FILE *f);

/*
 * Registry options shared by container and pack (their option ids sit
 * above every command's own): --push REF, --tls-verify[=BOOL]. The cache
 * root is the shared --cache-dir.
 */
enum {
	LP_CLI_OPT_PUSH = 3900,
	LP_CLI_OPT_TLS_VERIFY,
};
#define LP_CLI_REGISTRY_LONGOPTS \
	{ "push", required_argument, NULL, LP_CLI_OPT_PUSH }, \
	{ "tls-verify", optional_argument, NULL, LP_CLI_OPT_TLS_VERIFY }

extern const char lp_cli_registry_help[];

struct lp_cli_reg {
	bool tls_verify;		/* default true */
	const char *push;		/* docker://... or NULL */
	const char *base_ref;		/* the docker:// base, for a cross-repository mount */
	struct lp_reg_pulled pulled;	/* what the docker:// base resolved to */
	bool have_pulled;
	struct lp_reg_pushed pushed;
	bool have_pushed;
	char *scratch_root;		/* --no-cache: a pulled base lives here, removed at the end */
};
void lp_cli_reg_init(struct lp_cli_reg *r);
void lp_cli_reg_free(struct lp_cli_reg *r);

/* Parse one registry option: 1 = consumed, 0 = not ours, -LP_E_USAGE (printed). */
int lp_cli_reg_opt(struct lp_cli *cli, int opt, const char *arg, struct lp_cli_reg *r);

/*
 * Turn a base spec into one lp_oci_base_import() reads: docker://... is
 * pulled into the cache (a warning when the registry was unreachable and a
 * cached tag stands in) and becomes oci:CACHE:m-<hex>; any other spec is
 * returned as it is. *ret is malloc'd. Errors are printed; returns the
 * error (exit with lp_cli_exit_for()).
 */
int lp_cli_base_resolve(struct lp_cli *cli, const char *spec, const struct lp_pack_opts *o,
			struct lp_cli_reg *r, char **ret);

/*
 * Push the image (manifest_digest in the layout dir) to r->push; prints the
 * pushed HOST/REPO@sha256:... on stdout (unless the JSON report goes there)
 * and a summary on stderr. Errors are printed.
 */
int lp_cli_push(struct lp_cli *cli, const char *layout, const char *manifest_digest,
		const struct lp_pack_opts *o, struct lp_cli_reg *r);

/* Add "base_image" / "push" objects to a JSON report for what r did. */
int lp_cli_reg_json(struct cJSON *root, const struct lp_cli_reg *r);
