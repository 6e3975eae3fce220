/* SPDX-License-Identifier: MIT */
/*
 * Runtime compatibility checks over an entry list: will Lambda's loader
 * accept each native binary? Used by pack (errors stop the build unless
 * --no-check) and analyze. Findings carry stable codes:
 *
 *   glibc-too-new     error   needs a newer GLIBC_x.y than the runtime's glibc
 *   wrong-arch        error   ELF for another architecture than the function's
 *   foreign-binary    error   Mach-O or PE (or a non-Linux ELF) in a Linux package
 *   elf-unloadable    error   executable or shared object the kernel or ld.so refuses
 *                             (truncated, headers or names outside the file or
 *                             every PT_LOAD): lp_binfo.unloadable says why
 *   missing-library   warning DT_NEEDED neither in the package nor in the runtime
 *   library-off-path  info    DT_NEEDED in the package, but not on this file's
 *                             search path (works only if loaded earlier)
 *   unreadable-elf    warning ELF file whose headers cannot be parsed
 */
#pragma once

#include "core/elf.h"

#include <stdbool.h>

struct lp_entries;
struct lp_report;
struct lp_runtime;

struct lp_check_opts {
	const struct lp_runtime *runtime;	/* NULL: skip glibc checks; base libs: common set */
	enum lp_arch arch;			/* function architecture; UNKNOWN: lp_detect_arch() */
	bool warn_only;				/* --no-check: report errors as warnings */
};

/*
 * Check every regular file that is a native binary (entry->binfmt, with
 * entry->bin or, if NULL, facts read from src). Removed entries are ignored;
 * duplicates are searched as library locations but not re-checked. Returns 0
 * or -errno; the verdict is in rep (lp_report_count(rep, LP_SEV_ERROR)).
 */
int lp_check_entries(const struct lp_entries *l, const struct lp_check_opts *o, struct lp_report *rep);
