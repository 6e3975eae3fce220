/* SPDX-License-Identifier: MIT */
/* Work counters for the front end's progress line (core/progress.h). */
#include "core/progress.h"
#include "core/util.h"

#include <stdatomic.h>

static _Atomic uint64_t p_done, p_total;
static _Atomic double p_since;

void lp_progress_begin(uint64_t total)
{
	atomic_store(&p_total, 0);
	atomic_store(&p_done, 0);
	atomic_store(&p_since, lp_now());
	atomic_store(&p_total, total);
}

void lp_progress_add(uint64_t n)
{
	atomic_fetch_add_explicit(&p_done, n, memory_order_relaxed);
}

void lp_progress_get(uint64_t *done, uint64_t *total, double *since)
{
	*total = atomic_load(&p_total);
	*done = atomic_load(&p_done);
	*since = atomic_load(&p_since);
}
