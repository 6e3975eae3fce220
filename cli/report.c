/* SPDX-License-Identifier: MIT */
/*
 * The end of every command's --json: the envelope (core/envelope.h) gets
 * the exit code, why the run failed, and the total time, and is written
 * atomically, whatever the exit (past argument parsing; an interrupt
 * leaves nothing behind, the report included).
 */
#include "cli/cli.h"
#include "core/envelope.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "core/json.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

static char reason[LP_CLI_LINE * 4 + 1];
static char last_error[LP_CLI_LINE * 4 + 1];

void lp_cli_note_error(const char *msg)
{
	snprintf(last_error, sizeof(last_error), "%s", msg);
}

void lp_cli_reason(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
}

int lp_cli_write_report(struct lp_cli *cli, cJSON *env, const char *path, int exit_code, double t0)
{
	const char *why = NULL;
	int r;

	if (lp_cancelled()) {
		cJSON_Delete(env);
		return exit_code;
	}
	/* The reason the command gave, else the last error it printed. */
	if (exit_code != LP_EXIT_OK && exit_code != LP_EXIT_IMAGE)
		why = *reason ? reason : *last_error ? last_error : "failed";
	r = env ? lp_envelope_finish(env, exit_code, why, t0) : -ENOMEM;
	lp_errmsg_clear();
	if (r == 0)
		r = lp_json_write(env, path, stdout);
	if (r == 0 && !strcmp(path, "-") && fflush(stdout))
		r = -EIO;
	cJSON_Delete(env);
	if (r < 0) {
		lp_cli_error(cli, r, "cannot write the JSON report %s", strcmp(path, "-") ? path : "to standard output");
		return LP_EXIT_ERROR;
	}
	return exit_code;
}
