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

struct lp_cli {
	const char *prog;	/* argv[0] basename */
	bool quiet;		/* -q: no human summary */
	bool color;		/* stderr is a TTY and NO_COLOR is unset */
	bool tty;		/* stderr is a TTY (progress line allowed) */
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

/* Help text lines for the shared options. */
extern const char lp_cli_source_help[];

/* Write a report's findings/changes to stderr for people. */
void lp_cli_print_findings(struct lp_cli *cli, const struct lp_report *rep, bool verbose);

/* With -v: say which of this run's own paths the source walks left out. */
void lp_cli_print_skipped(struct lp_cli *cli, const struct lp_input_opts *o);

/* Turn the remaining arguments into sources (prints and returns -LP_E_USAGE on error). */
int lp_cli_add_sources(struct lp_cli *cli, int argc, char **argv, struct lp_pack_opts *o);

/* A "still working" line on stderr for runs longer than a second (TTY only). */
/* The build cache of pack and container (--cache-dir, --cache-max, --no-cache). */
int lp_cli_cache_open(struct lp_cli *cli, const char *cmd, struct lp_pack_opts *o);
void lp_cli_cache_close(struct lp_cli *cli, struct lp_pack_opts *o, struct lp_report *rep, bool verbose);

void lp_progress_start(struct lp_cli *cli, const char *phase);
void lp_progress_phase(const char *phase);
void lp_progress_stop(void);
