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
 *   foreign-binary    warning (instead of error) a Mach-O, PE or non-Linux ELF
 *                             inside a dependency tree that no runtime loads by
 *                             name (not .so/.node/.dylib/.dll/.pyd, not the
 *                             handler): an installer's .exe, an Android prebuild
 *   bootstrap-missing error   provided.*: no executable file "bootstrap" at the root
 *   interpreter-missing error executable whose PT_INTERP is not glibc's loader
 *                             (musl, Nix, Android): "no such file or directory"
 *   python-abi        error   python*: an extension module tagged cpython-3XY or a
 *                             sourceless .pyc for another Python than the runtime's;
 *                             warning for __pycache__ bytecode of another version
 *                             (never loaded), one per run
 *
 * Each message ends with the way out: the option that fixes it (-O or
 * --prune-foreign, --runtime, --arch) or what to rebuild.
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
	const char *handler;			/* "app.handler", may be NULL: its file is never a harmless foreign one */
	bool image;				/* a container image: no zip-root bootstrap to require */
};

/*
 * Check every regular file that is a native binary (entry->binfmt, with
 * entry->bin or, if NULL, facts read from src). Removed entries are ignored;
 * duplicates are searched as library locations but not re-checked. Returns 0
 * or -errno; the verdict is in rep (lp_report_count(rep, LP_SEV_ERROR)).
 */
int lp_check_entries(const struct lp_entries *l, const struct lp_check_opts *o, struct lp_report *rep);
