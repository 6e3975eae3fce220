/* SPDX-License-Identifier: MIT */
/*
 * A single status line on stderr while a long run works, so a person at a
 * terminal sees it is alive. Only on a TTY, only after a second, and
 * cleared before the summary is printed.
 */
#include "cli/cli.h"
#include "core/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

static pthread_t thr;
static atomic_bool running;
static _Atomic(const char *) phase;
static bool started, shown;
static double t_start;

static void *progress_main(void *arg)
{
	static const char spin[] = "|/-\\";
	unsigned k = 0;

	while (atomic_load(&running)) {
		struct timespec ts = { 0, 200 * 1000 * 1000 };
		double el = lp_now() - t_start;

		nanosleep(&ts, NULL);
		if (el < 1.0 || !atomic_load(&running))
			continue;
		fprintf(stderr, "\r%c %s... %.1f s\033[K", spin[k++ % 4], atomic_load(&phase), el);
		fflush(stderr);
		shown = true;
	}
	return NULL;
}

void lp_progress_start(struct lp_cli *cli, const char *ph)
{
	if (!cli->tty || cli->quiet || started)
		return;
	atomic_store(&phase, ph);
	atomic_store(&running, true);
	t_start = lp_now();
	started = pthread_create(&thr, NULL, progress_main, NULL) == 0;
}

void lp_progress_phase(const char *ph)
{
	atomic_store(&phase, ph);
}

void lp_progress_stop(void)
{
	if (!started)
		return;
	atomic_store(&running, false);
	pthread_join(thr, NULL);
	started = false;
	if (shown)
		fprintf(stderr, "\r\033[K");
	shown = false;
}
