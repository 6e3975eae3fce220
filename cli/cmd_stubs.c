/* SPDX-License-Identifier: MIT */
/* Commands whose implementation has not landed on this branch yet. */
#include "cli/cli.h"

int cmd_container(int argc, char **argv, struct lp_cli *cli)
{
	lp_cli_error(cli, 0, "container is not available in this build yet");
	return LP_EXIT_ERROR;
}
