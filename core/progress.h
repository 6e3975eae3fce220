/* SPDX-License-Identifier: MIT */
/*
 * Work counters for a progress line. Library code that knows how much a
 * phase will process (the bytes of the files a zip or a layer holds) calls
 * lp_progress_begin() with that total and lp_progress_add() as it goes;
 * the front end reads them from another thread and draws the line. Never
 * printed here; cheap atomics, fine per entry.
 */
#pragma once

#include <stdint.h>

void lp_progress_begin(uint64_t total);
void lp_progress_add(uint64_t n);
/* done and total (0: the current phase is not measured) and the phase's start (lp_now()). */
void lp_progress_get(uint64_t *done, uint64_t *total, double *since);
