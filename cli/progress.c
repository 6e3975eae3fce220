/* SPDX-License-Identifier: MIT */
/*
 * A single status line on stderr while a long run works, so a person at a
 * terminal sees it is alive and how long it will take: the phase, and when
 * the library measures the phase (core/progress.h) the percentage, bytes
 * done of the total, bytes per second and the time left. Only on a TTY,
 * never with -q or --json - (the report owns stdout, a pipe reads stderr),
 * only after a second (LP_PROGRESS_DELAY seconds), cleared before anything
 * else is printed.
 */
#include "cli/cli.h"
#include "core/progress.h"
#include "core/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_t thr;
static atomic_bool running;
static _Atomic(const char *) phase;
static bool started;
static atomic_bool shown;
static double t_start, delay = 1.0;
static pthread_mutex_t draw_lock = PTHREAD_MUTEX_INITIALIZER;

static void eta(double s, char *buf, size_t len)
{
	if (s < 0 || s > 360000)
		snprintf(buf, len, "?");
	else if (s < 60)
		snprintf(buf, len, "%.0f s", s);
	else if (s < 3600)
		snprintf(buf, len, "%.0f min %02.0f s", s / 60 - 0.5, (double)((long)s % 60));
	else
		snprintf(buf, len, "%.0f h %02ld min", s / 3600 - 0.5, (long)s % 3600 / 60);
}

static void draw(unsigned k)
{
	static const char spin[] = "|/-\\";
	uint64_t done, total;
	double since, now = lp_now();

	lp_progress_get(&done, &total, &since);
	pthread_mutex_lock(&draw_lock);
	if (total) {
		double el = now - since, rate = el > 0 ? (double)done / el : 0;
		char a[32], b[32], c[32], e[32];

		if (done > total)
			done = total;
		eta(rate > 0 ? (double)(total - done) / rate : -1, e, sizeof(e));
		fprintf(stderr, "\r%c %s %3.0f%%  %s of %s  %s/s  ETA %s\033[K", spin[k % 4], atomic_load(&phase),
			100.0 * (double)done / (double)total, lp_human_size(done, a, sizeof(a)),
			lp_human_size(total, b, sizeof(b)), lp_human_size((uint64_t)rate, c, sizeof(c)), e);
	} else {
		fprintf(stderr, "\r%c %s... %.1f s\033[K", spin[k % 4], atomic_load(&phase), now - t_start);
	}
	fflush(stderr);
	pthread_mutex_unlock(&draw_lock);
	atomic_store(&shown, true);
}

static void *progress_main(void *arg)
{
	unsigned k = 0;

	while (atomic_load(&running)) {
		struct timespec ts = { 0, 200 * 1000 * 1000 };

		if (lp_now() - t_start >= delay && atomic_load(&running))
			draw(k++);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

void lp_progress_start(struct lp_cli *cli, const char *ph)
{
	const char *d = getenv("LP_PROGRESS_DELAY");

	const char *term = getenv("TERM");

	/* A dumb terminal cannot take the line back: no line there either. */
	if (!cli->tty || cli->quiet || cli->json_stdout || started || (term && !strcmp(term, "dumb")))
		return;
	if (d && *d)
		delay = atof(d);
	lp_progress_begin(0);
	atomic_store(&phase, ph);
	atomic_store(&running, true);
	t_start = lp_now();
	started = pthread_create(&thr, NULL, progress_main, NULL) == 0;
}

void lp_progress_phase(const char *ph)
{
	/* The new phase is unmeasured until its library code says how much it will do. */
	lp_progress_begin(0);
	atomic_store(&phase, ph);
}

void lp_progress_stop(void)
{
	if (!started)
		return;
	atomic_store(&running, false);
	pthread_join(thr, NULL);
	started = false;
	/* A line on screen ends on the phase's final figures, then makes room for the summary. */
	if (atomic_load(&shown) || lp_now() - t_start >= delay) {
		draw(0);
		fprintf(stderr, "\r\033[K");
		fflush(stderr);
	}
	atomic_store(&shown, false);
}
