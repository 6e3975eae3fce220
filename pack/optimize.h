/* SPDX-License-Identifier: MIT */
/*
 * Entry-list optimizers: strip native binaries, deduplicate identical files,
 * drop binaries for other platforms, prune junk inside dependency trees.
 * Each one transforms the list in place and appends what it did (or, for
 * skips, why not) to a report; none of them touches the user's files.
 */
#pragma once

#include "core/elf.h"
#include "core/util.h"

#include <stdbool.h>
#include <stdint.h>

struct lp_entries;
struct lp_report;

/*
 * Strip every LP_FILE entry with binfmt LP_BIN_ELF (not removed, not a
 * duplicate) into a staged copy under stage_dir, then point src at it, set
 * LP_F_STRIPPED, update size (orig_size keeps the old one) and digest.
 * cache_dir (or NULL) holds results keyed by input SHA-256. Runs nthreads
 * workers (0 = 1). Changes: "strip" with bytes saved, "strip-skipped" with
 * the reason. Returns 0, or the first I/O error (-errno, lp_fail detail).
 */
int lp_opt_strip(struct lp_entries *l, const char *stage_dir, const char *cache_dir,
		 unsigned nthreads, struct lp_report *rep);

enum lp_dedupe_mode {
	LP_DEDUPE_OFF = 0,	/* only measure: report what dedupe would save */
	LP_DEDUPE_BINARIES,	/* native binaries and files >= 64 KiB, never JS/JSON/.node */
	LP_DEDUPE_ALL,		/* every regular file */
};

#define LP_DEDUPE_MIN_DATA	(64u * 1024)	/* non-binary files smaller than this stay in binaries mode */

/* "off", "binaries", "all". -LP_E_USAGE otherwise. */
int lp_dedupe_mode_parse(const char *s, enum lp_dedupe_mode *ret);

/*
 * Find identical regular files (size, then SHA-256, then a byte compare).
 * The lexically first path stays; each other eligible copy gets
 * LP_F_DUPLICATE and target = that path (emitters store a relative symlink
 * in zips, a hard link in tars). Computes missing digests. Changes:
 * "dedupe" per copy; one info finding "duplicates" with bytes found/saved.
 */
int lp_opt_dedupe(struct lp_entries *l, enum lp_dedupe_mode mode, struct lp_report *rep);

/*
 * Dependency trees of an artifact: node_modules/, site-packages/,
 * dist-packages/, vendor/, a top-level python/, and (SAM-style Python,
 * dependencies installed at the zip root) every root-level name a
 * *.dist-info or *.egg-info directory declares: its top_level.txt, the
 * first components of its RECORD, else its distribution name.
 */
struct lp_deps {
	struct lp_strv roots;	/* root-level names owned by installed distributions, sorted */
	struct lp_strv norm;	/* distribution names, lowercase with '-' and '.' as '_', sorted */
};

/* Read the root-level distribution metadata of l (files with src; others by name). */
int lp_deps_build(const struct lp_entries *l, struct lp_deps *d);
void lp_deps_free(struct lp_deps *d);

/*
 * Is path inside a dependency tree (d may be NULL: markers only)? pkg (may
 * be NULL) gets the package root: "node_modules/foo", "numpy".
 */
bool lp_deps_find(const struct lp_deps *d, const char *path, char *pkg, size_t len);

/*
 * Is this path a native module a runtime loads by name (.so, .so.N, .node,
 * .dylib, .dll, .pyd)? A foreign binary that is not one is never loaded on
 * Lambda (an installer's .exe, a prebuild for another platform's runner).
 */
bool lp_native_module_name(const char *path);

/*
 * Mark LP_F_REMOVED: Mach-O and PE files, and ELF files for another
 * architecture or OS than target, inside dependency trees only (the
 * function's own binaries are for the checks to report). Reads entry->bin
 * from src if missing. Changes: "prune-foreign" with the bytes.
 */
int lp_opt_prune_foreign(struct lp_entries *l, enum lp_arch target, struct lp_report *rep);

/* The architecture most ELF bytes in the list are built for (x86_64 if none). */
enum lp_arch lp_detect_arch(const struct lp_entries *l);

/* lp_detect_arch, and whether Linux ELF programs or libraries decided it (false: the x86_64 default). */
enum lp_arch lp_detect_arch_ex(const struct lp_entries *l, bool *from_binaries);

/*
 * Remove junk inside dependency trees only (under node_modules/,
 * site-packages/, dist-packages/, vendor/, or a top-level python/ layer
 * folder), never the function's own files. The default rules are
 * lp_junk_rules() (see docs/optimize.md); extra_patterns (may be NULL) are
 * lp_glob_match() patterns tested against the path inside the dependency
 * tree (e.g. "foo/lib/x.txt" for node_modules/foo/lib/x.txt). Changes:
 * "prune-junk", one per package and rule.
 */
int lp_opt_prune_junk(struct lp_entries *l, const struct lp_strv *extra_patterns,
		      struct lp_report *rep);

/* The default junk rules, NULL-terminated, for --help and docs. */
const char *const *lp_junk_rules(void);

/* Which optimizers run, and where their output goes. */
struct lp_opt_set {
	bool prune_dev;				/* npm devDependencies / other platforms' optional packages */
	bool prune_foreign;
	bool prune_junk;
	bool strip;
	enum lp_dedupe_mode dedupe;		/* LP_DEDUPE_OFF: not run */
	const struct lp_strv *junk_patterns;	/* extra prune patterns, may be NULL */
	enum lp_arch arch;			/* prune-foreign target; UNKNOWN: lp_detect_arch() */
	/*
	 * Where stripped copies are staged. NULL is a dry run: strip is only
	 * planned (lp_strip_plan_fd / binfo->strip_after), a planned copy keeps
	 * its input's digest (strip is deterministic, so equal inputs stay
	 * equal), and dedupe trusts SHA-256 without a byte compare.
	 */
	const char *stage_dir;
	const char *cache_dir;			/* strip cache, may be NULL */
	unsigned threads;			/* 0 = 1 */
};

/* Unzipped bytes (lp_entries_unzipped_size) each step took off, and files it touched. */
struct lp_opt_saved {
	uint64_t foreign, junk, strip, dedupe, total;
	size_t n_foreign, n_junk, n_strip, n_dedupe;
	uint64_t dev;			/* npm packages left out (prune_dev) */
	size_t n_dev, n_dev_pkgs;	/* their files, and the packages */
};

/*
 * npm: mark LP_F_REMOVED every package node_modules/.package-lock.json (or,
 * without it, package-lock.json v2/v3 beside node_modules) marks dev, and
 * every optional package whose os/cpu excludes linux or arch (x64/arm64),
 * with the node_modules/.bin links into them. Changes: "prune-dev" per
 * package; sv gets the bytes, files and packages.
 */
int lp_opt_prune_dev(struct lp_entries *l, enum lp_arch arch, struct lp_report *rep, struct lp_opt_saved *sv);

/*
 * The one optimization pipeline, shared by pack, container and analyze's
 * "what -O would save": prune foreign, prune junk, drop the removed
 * entries, strip, dedupe. Order matters: pruning first leaves less to
 * strip, and strip before dedupe makes libraries that differ only in debug
 * data identical. saved (may be NULL) gets the bytes per step, measured the
 * way the limit is, so a dry run and the real run agree by construction.
 */
int lp_optimize(struct lp_entries *l, const struct lp_opt_set *set, struct lp_report *rep,
		struct lp_opt_saved *saved);
