/* SPDX-License-Identifier: MIT */
/* lambdapack: the front end. A git-style table of subcommands. */
#include "cli/cli.h"
#include "core/fsutil.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int cmd_version(int argc, char **argv, struct lp_cli *cli);
static int cmd_help(int argc, char **argv, struct lp_cli *cli);

static const struct lp_cmd commands[] = {
	{ "pack", cmd_pack, "build a deterministic Lambda .zip from directories and archives" },
	{ "analyze", cmd_analyze, "size audit of a directory, zip or OCI image: what to cut, what will break" },
	{ "container", cmd_container, "build a reproducible OCI image layout (Lambda container image)" },
	{ "version", cmd_version, "print the version" },
	{ "help", cmd_help, "show help for a command" },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: lambdapack [--version] [--help] [--color=auto|always|never] <command> [<args>]\n\ncommands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "   %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nRun 'lambdapack <command> --help' for a command's options. --color (any position) colours the\n"
		   "output: auto (default: terminals, unless NO_COLOR is set; FORCE_COLOR forces it), always, never.\n"
		   "Exit codes: 0 ok, 1 error, 2 usage, 3 over a Lambda size limit, 4 compatibility check failed,\n"
		   "            5 analyze budget gate failed, 6 pack wrote an OCI image instead of a zip, 130 interrupted.\n");
}

static int cmd_version(int argc, char **argv, struct lp_cli *cli)
{
	printf("lambdapack %s\n", LP_VERSION);
	return fflush(stdout) == 0 ? LP_EXIT_OK : LP_EXIT_ERROR;
}

static const struct lp_cmd *find_cmd(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static int cmd_help(int argc, char **argv, struct lp_cli *cli)
{
	const struct lp_cmd *c;
	char *args[] = { NULL, (char *)"--help", NULL };

	if (argc < 2) {
		usage(stdout);
		return LP_EXIT_OK;
	}
	c = find_cmd(argv[1]);
	if (!c || c->fn == cmd_help) {
		fprintf(stderr, "lambdapack: '%s' is not a lambdapack command. See 'lambdapack --help'.\n",
			lp_cli_esc(argv[1]));
		return LP_EXIT_USAGE;
	}
	args[0] = argv[1];
	return c->fn(2, args, cli);
}

/*
 * Interrupts are taken by one thread with sigwait(), not by a handler. The
 * first one raises the cancellation flag: every long loop checks it, so the
 * command unwinds through its own cleanup (staging directories, temporaries
 * beside the output) and exits 130. Removing files while the command still
 * creates them would race, so the thread only steps in itself on a second
 * signal or when the command has not finished after a grace period: then
 * it removes what is registered, under the lock library code holds while it
 * creates and registers a temporary, and exits.
 */
#define LP_CANCEL_GRACE_S 4

static sigset_t stop_signals;

static void *signal_thread(void *arg)
{
	struct timespec grace = { LP_CANCEL_GRACE_S, 0 };
	int sig = SIGINT;

	sigwait(&stop_signals, &sig);
	lp_cancel(sig);
	(void)sigtimedwait(&stop_signals, NULL, &grace);
	lp_cleanup_run();
	_exit(LP_EXIT_INTERRUPTED);
	return NULL;
}

/*
 * Options every command takes, wherever they stand (before the command or
 * among its own options, up to "--"): --color[=WHEN] is taken out of argv;
 * "--json -" is noted (the progress line stays off). Returns 0, or -1 on a
 * bad WHEN (message printed).
 */
static int global_opts(int *argc, char **argv, struct lp_cli *cli)
{
	int k = 1;

	for (int i = 1; i < *argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--")) {
			while (i < *argc)
				argv[k++] = argv[i++];
			break;
		}
		if ((!strcmp(a, "--json") && i + 1 < *argc && !strcmp(argv[i + 1], "-")) || !strcmp(a, "--json=-"))
			cli->json_stdout = true;
		if (!strcmp(a, "--color") || !strncmp(a, "--color=", 8)) {
			int m = a[7] ? lp_cli_color_parse(a + 8) : LP_COLOR_ALWAYS;

			if (m < 0) {
				fprintf(stderr, "lambdapack: error: --color takes auto, always or never, not '%s'\n",
					lp_cli_esc(a + 8));
				return -1;
			}
			cli->color_mode = (enum lp_color_mode)m;
			continue;
		}
		argv[k++] = argv[i];
	}
	argv[k] = NULL;
	*argc = k;
	return 0;
}

int main(int argc, char **argv)
{
	struct lp_cli cli = { .prog = "lambdapack" };
	const struct lp_cmd *c;
	int r;

	pthread_t sigthr;

	/*
	 * libarchive turns every zip/tar member's time into time_t with
	 * mktime(); with TZ unset glibc stats /etc/localtime on each call
	 * (17,500 stats for a 5,500-file zip). Naming the same zone once
	 * keeps the local time and stops the re-checks. Before any thread.
	 */
	if (!getenv("TZ"))
		setenv("TZ", ":/etc/localtime", 0);

	/* Blocked before any thread starts, so every worker inherits the mask. */
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
	if (pthread_create(&sigthr, NULL, signal_thread, NULL) == 0)
		pthread_detach(sigthr);
	/* Past RLIMIT_FSIZE we want EFBIG from write(), not a silent kill. */
	signal(SIGXFSZ, SIG_IGN);

	if (global_opts(&argc, argv, &cli) < 0)
		return LP_EXIT_USAGE;
	cli.tty = isatty(STDERR_FILENO);
	cli.color = lp_cli_color_for(&cli, stderr);

	if (argc < 2) {
		usage(stderr);
		return LP_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))
		return cmd_version(argc - 1, argv + 1, &cli);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return LP_EXIT_OK;
	}
	c = find_cmd(argv[1]);
	if (!c) {
		fprintf(stderr, "lambdapack: '%s' is not a lambdapack command. See 'lambdapack --help'.\n",
			lp_cli_esc(argv[1]));
		return LP_EXIT_USAGE;
	}
	r = c->fn(argc - 1, argv + 1, &cli);
	if (lp_cancelled()) {
		/* Whatever the command made of it, an interrupt ends as one; leave nothing behind. */
		lp_cleanup_run();
		return LP_EXIT_INTERRUPTED;
	}
	/* Like git: a failed write to stdout is an error, not silence. */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "lambdapack: write error on standard output\n");
		return LP_EXIT_ERROR;
	}
	return r;
}
