/* SPDX-License-Identifier: MIT */
/*
 * TEMPORARY: a stand-in for cli/main.c and cli/common.c so the analyze
 * front end can be tested before the lead's versions are merged. Drop this
 * file (and its executable in meson.build) once main has them.
 */
#include <getopt.h>	/* cli.h uses struct option */

#include "cli/cli.h"
#include "core/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void lp_cli_error(struct lp_cli *cli, int err, const char *fmt, ...)
{
	va_list ap;
	const char *d = lp_errmsg();

	fprintf(stderr, "%s: ", cli->prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (d && *d)
		fprintf(stderr, ": %s", d);
	else if (err)
		fprintf(stderr, ": %s", lp_strerror(err));
	fputc('\n', stderr);
}

void lp_cli_warn(struct lp_cli *cli, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: warning: ", cli->prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int lp_cli_exit_for(int err)
{
	if (err == -LP_E_USAGE)
		return LP_EXIT_USAGE;
	return err < 0 ? LP_EXIT_ERROR : LP_EXIT_OK;
}

int main(int argc, char **argv)
{
	const char *nc = getenv("NO_COLOR");
	struct lp_cli cli = { .prog = "lambdapack" };

	cli.tty = isatty(2);
	cli.color = cli.tty && !(nc && *nc);
	if (argc < 2 || strcmp(argv[1], "analyze")) {
		fprintf(stderr, "usage: %s analyze ...\n", argv[0]);
		return LP_EXIT_USAGE;
	}
	return cmd_analyze(argc - 1, argv + 1, &cli);
}
