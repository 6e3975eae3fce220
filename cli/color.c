/* SPDX-License-Identifier: MIT */
/*
 * --color=auto|always|never, NO_COLOR and FORCE_COLOR. The option wins;
 * under auto, FORCE_COLOR (set, not empty, not "0") turns colour on
 * anywhere, NO_COLOR (set, not empty) turns it off, and otherwise a
 * stream is coloured when it is a terminal other than TERM=dumb.
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int lp_cli_color_parse(const char *when)
{
	if (!strcmp(when, "auto"))
		return LP_COLOR_AUTO;
	if (!strcmp(when, "always"))
		return LP_COLOR_ALWAYS;
	if (!strcmp(when, "never"))
		return LP_COLOR_NEVER;
	return -1;
}

bool lp_cli_color_for(const struct lp_cli *cli, FILE *f)
{
	const char *force = getenv("FORCE_COLOR"), *no = getenv("NO_COLOR"), *term = getenv("TERM");

	if (cli->color_mode != LP_COLOR_AUTO)
		return cli->color_mode == LP_COLOR_ALWAYS;
	if (force && *force && strcmp(force, "0"))
		return true;
	if (no && *no)
		return false;
	return isatty(fileno(f)) && !(term && !strcmp(term, "dumb"));
}
