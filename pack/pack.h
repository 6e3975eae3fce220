/* SPDX-License-Identifier: MIT */
/*
 * The pack pipeline, shared by `pack` and `container`:
 *   sources -> entries (load) -> classify -> optimize -> check -> emit.
 * lp_pack_prepare() does everything up to the emitter; the caller then
 * writes the entry list as a zip (lp_pack_write_zip) or as an OCI image.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "core/elf.h"
#include "core/entry.h"
#include "input/input.h"
#include "core/limits.h"
#include "core/report.h"
#include "core/util.h"
#include "pack/check.h"
#include "pack/optimize.h"

struct lp_cache;

enum lp_fallback {
	LP_FALLBACK_CONTAINER = 0,	/* over 250 MB: write an OCI image instead */
	LP_FALLBACK_NONE,		/* over 250 MB: fail */
};

enum {
	LP_OPT_STRIP = 1u << 0,
	LP_OPT_DEDUPE = 1u << 1,
	LP_OPT_PRUNE_FOREIGN = 1u << 2,
	LP_OPT_PRUNE_JUNK = 1u << 3,
};

struct lp_pack_opts {
	/* Inputs. */
	struct lp_source *sources;
	size_t n_sources;
	struct lp_input_opts input;	/* excludes, ignore file, link policy */
	bool overwrite;			/* later source wins on duplicate paths */

	/* Optimizers (issue #3). -O turns on every one not explicitly set. */
	bool optimize;
	unsigned explicit_opts;		/* LP_OPT_* bits the user set one way or the other */
	bool strip;
	enum lp_dedupe_mode dedupe;
	bool prune_foreign;
	bool prune_junk;
	struct lp_strv junk_patterns;	/* extra --prune-pattern globs */
	bool include_dev;		/* --include-dev: keep what npm's lockfile marks dev / other-platform optional */
	const char *cache_dir;		/* cache root (--cache-dir); the strip cache lives under it; NULL = none */
	bool no_cache;			/* --no-cache */
	uint64_t cache_max;		/* --cache-max; 0 = default */
	struct lp_cache *cache;		/* the open build cache, or NULL */
	bool cache_warned;		/* its warning was printed */
	/*
	 * The walk asks the cache's stat index about every file (digest and
	 * sniff facts; see lp_input_memo), instead of the emitter asking later.
	 * Only for an emitter that knows LP_F_MEMO_MISS (the zip writer), so
	 * a miss is counted once.
	 */
	bool index_in_walk;

	/* Target. */
	const char *runtime_name;	/* --runtime, may be NULL */
	const struct lp_runtime *runtime;
	enum lp_arch arch;		/* LP_ARCH_UNKNOWN = detect */
	bool no_check;			/* downgrade check errors to warnings */
	bool image;			/* the artifact is a container image (no zip-root bootstrap needed) */
	const char *handler;		/* "app.handler" when known (templates), may be NULL */

	/* Output. */
	const char *output;		/* -o */
	const char *json_path;		/* --json */
	struct lp_strv layers;		/* --with-layer zips */
	enum lp_fallback fallback;
	int level;			/* deflate level 1..9 (libdeflate scale up to 12) */
	unsigned threads;		/* 0 = online CPUs */
	int64_t epoch;			/* fixed timestamp (SOURCE_DATE_EPOCH or default) */

	/* The over-the-limit image (as on `container`). */
	const char *image_base;		/* lp_oci_opts.base: resolved spec, NULL = scratch */
	const char *image_handler;	/* --handler: Cmd */
	const char *image_entrypoint;	/* --entrypoint */
};

/* Defaults: level 6, dedupe off, fallback container, epoch from SOURCE_DATE_EPOCH or 1980-01-01. */
void lp_pack_opts_init(struct lp_pack_opts *o);
void lp_pack_opts_free(struct lp_pack_opts *o);

/* Everything the pipeline learned, for the summary and the JSON report. */
struct lp_pack_state {
	struct lp_entries entries;
	struct lp_report report;
	size_t n_problems;		/* input problems: the first n error findings of report */
	char *stage_dir;		/* temp dir for extracted/stripped copies (removed by free) */
	enum lp_arch arch;		/* target arch (given or detected) */
	const char *arch_source;	/* "given", "detected from binaries" or "default" */
	uint64_t input_bytes;		/* unzipped size before optimization */
	uint64_t layers_unzipped;	/* sum over --with-layer zips */
	double t_load, t_optimize;	/* seconds */
	struct lp_opt_saved saved;	/* what each optimizer took off */
};

void lp_pack_state_init(struct lp_pack_state *st);
void lp_pack_state_free(struct lp_pack_state *st);

/* Apply -O to the optimizers the user did not set explicitly. */
void lp_pack_opts_resolve(struct lp_pack_opts *o);

/*
 * Load, classify, optimize and check. Returns 0, or -errno / -LP_E_*.
 * Input problems (escaping links, special files, colliding paths ...) are
 * all collected as error findings first; then st->n_problems is set and
 * -LP_E_INPUT returned (or the error that stopped the load, past the cap).
 * Check failures are findings in st->report (errors unless no_check), not
 * an error return: the caller decides what they mean for the exit code.
 */
int lp_pack_prepare(struct lp_pack_opts *o, struct lp_pack_state *st);

/* Sum of the uncompressed sizes in a zip (e.g. a --with-layer), from its directory. */
int lp_zip_unzipped_size(const char *path, uint64_t *ret);

/* Top contributors for reports: the n largest files and groups (packages / top dirs). */
struct lp_contrib {
	char *name;		/* owned */
	uint64_t bytes;
	size_t count;
};
int lp_pack_top_files(const struct lp_entries *l, size_t n, struct lp_contrib **ret, size_t *ret_n);
int lp_pack_top_groups(const struct lp_entries *l, size_t n, struct lp_contrib **ret, size_t *ret_n);
void lp_contrib_free(struct lp_contrib *c, size_t n);

/*
 * The group a path belongs to, for size reports: node_modules/<pkg> (and
 * node_modules/@scope/<pkg>), a Python package under site-packages or
 * python/, vendor/<pkg>, else the first path component. Writes into buf.
 */
const char *lp_group_key(const char *path, char *buf, size_t len);

/* What the emitter produced, for the summary and the JSON report. */
struct lp_pack_result {
	const char *artifact;		/* "zip" or "oci-layout" (the fallback image); NULL: nothing written */
	const char *path;
	uint64_t entries;
	uint64_t unzipped;		/* sum of uncompressed entry sizes (what Lambda counts) */
	uint64_t zipped;		/* bytes of the zip (or image blobs) */
	char code_sha256[80];		/* zip: base64 of the raw SHA-256 (what Lambda shows) */
	char sha256_hex[72];		/* zip: the same digest as bare hex */
	char manifest_digest[72];	/* image: "sha256:<hex>" */
	struct lp_budget unzipped_budget;
	struct lp_budget zipped_budget;
	const char *fallback_reason;	/* why an image was written instead of a zip, or NULL */
	bool base_failed;		/* the fallback image's base could not be obtained */
	double t_write;
};

/* The pack JSON report (docs/report.md). */
struct cJSON;
/*
 * "materialized_links": {count, bytes (as packed), links: [{path, message}]}
 * under parent: the symlinks stored as their targets' bytes.
 */
int lp_pack_json_links(struct cJSON *parent, const struct lp_pack_state *st);

/*
 * pack's members of the report envelope (core/envelope.h) env: artifact,
 * limits, findings, timing, and with prepared (lp_pack_prepare succeeded)
 * sizes, counts, target, largest_files, largest_groups, materialized_links
 * and changes. res->artifact NULL: nothing was written (a failed run).
 */
int lp_pack_json(const struct lp_pack_opts *o, const struct lp_pack_state *st, bool prepared,
		 const struct lp_pack_result *res, struct cJSON *env);

/*
 * pack's way out when the function outgrows 250 MB: write the same entries
 * as an OCI image layout (path: image_output, or OUTPUT minus ".zip" plus
 * ".oci"). Fills res (artifact "oci").
 */
/* Where the fallback image goes: image_output, else OUTPUT minus ".zip" plus ".oci". */
const char *lp_pack_fallback_path(const struct lp_pack_opts *o, const char *image_output, char *buf, size_t len);
int lp_pack_fallback_image(const struct lp_pack_opts *o, struct lp_pack_state *st,
			   const char *image_output, struct lp_pack_result *res);
