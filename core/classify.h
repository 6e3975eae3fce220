/* SPDX-License-Identifier: MIT */
/*
 * Classification of entries by their bytes: SHA-256, native-code sniffing,
 * ELF facts and the 0644/0755 decision, run in parallel over a list.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/entry.h"

/*
 * Mode and binary facts from a file's first bytes: sets binfmt, LP_F_SCRIPT
 * and LP_F_EXEC for a #! script or an ELF program (ET_EXEC, or ET_DYN with
 * PT_INTERP), so a binary that lost its x bit still gets 0755.
 */
int lp_entry_sniff(struct lp_entry *e, const uint8_t *p, size_t n);
/* After sniffing: mode 0755 or 0644 from LP_F_EXEC (and ELF facts), mark LP_F_SNIFFED. */
void lp_entry_finish_mode(struct lp_entry *e);

/*
 * What sniffing found about an entry's bytes, as 32 bits to keep beside
 * its digest (the build cache's stat index): 0 if not sniffed yet.
 */
uint32_t lp_entry_sniff_facts(const struct lp_entry *e);
/*
 * Apply facts kept for these very bytes: a file that is not native code
 * needs nothing else from its head, so it is marked sniffed (mode from
 * its x bit or #!) and classification will not open it. Native code still
 * has to be read for its ELF facts. true: sniffed.
 */
bool lp_entry_apply_sniff_facts(struct lp_entry *e, uint32_t facts);

/*
 * Classify every file entry that has a src and is not yet LP_F_SNIFFED:
 * read it once, compute its SHA-256 (if want_digest), detect native code by
 * magic bytes, parse ELF facts (if want_binfo), and set the mode (0755 for
 * an x bit in the source, an ELF executable or a #! script, else 0644).
 * Runs on nthreads threads (0 = online CPUs).
 */
int lp_entries_classify(struct lp_entries *l, bool want_digest, bool want_binfo, unsigned nthreads);

/*
 * Give a SHA-256 to every regular file that could have a duplicate, reading
 * as little as fdupes does: a file whose size no other file has is never
 * read; files that share a size have their first 4 KiB hashed, and only
 * those that still share (size, head) are hashed in full. Files without a
 * src take part with the digest they have (a size group holding one is
 * hashed in full, as its head cannot be read). Removed and duplicate
 * entries are ignored. Runs on nthreads threads (0 = online CPUs).
 */
int lp_entries_digest_candidates(struct lp_entries *l, unsigned nthreads);

/* Run fn(i, ctx) for i in [0, n) on up to nthreads threads; first error wins. */
int lp_parallel_for(size_t n, unsigned nthreads, int (*fn)(size_t i, void *ctx), void *ctx);

/* Online CPUs, at least 1. */
unsigned lp_ncpus(void);
