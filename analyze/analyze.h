/* SPDX-License-Identifier: MIT */
/*
 * analyze: the size audit (issue #5). A TARGET (directory, zip or other
 * archive, OCI image layout, oci-archive or docker-archive tar) becomes the
 * final file system as an entry list, read once; from it come totals against
 * Lambda's limits, the largest files/directories/packages, what
 * `pack --optimize` would save, compatibility findings and, for images,
 * per-layer sizes and Dive's efficiency metrics. Library code: it fills
 * structs and builds JSON/HTML, the front end prints.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "core/elf.h"
#include "core/entry.h"
#include "input/input.h"
#include "core/limits.h"
#include "core/report.h"
#include "core/util.h"

struct ana_extra;

enum lp_ana_kind {
	LP_ANA_DIR = 0,
	LP_ANA_ZIP,
	LP_ANA_ARCHIVE,		/* a tar (any compression) that is not an image */
	LP_ANA_OCI_LAYOUT,	/* directory with oci-layout + index.json */
	LP_ANA_OCI_ARCHIVE,	/* tar of an OCI layout */
	LP_ANA_DOCKER_ARCHIVE,	/* `docker save` tar (manifest.json) */
};

struct lp_ana_opts {
	struct lp_strv excludes;	/* --exclude GLOB (all targets) */
	bool no_default_excludes;	/* directory targets: keep .git etc. */
	const struct lp_runtime *runtime;	/* --runtime, may be NULL */
	enum lp_arch arch;		/* --arch; LP_ARCH_UNKNOWN = detect */
	struct lp_strv with_layers;	/* --with-layer ZIP */
	uint64_t max_expand;		/* archive expansion cap; 0 = 16 GiB */
	unsigned threads;		/* directory scan; 0 = online CPUs */
	bool exact_zip;			/* directory: deflate every byte, not a sample */
	/*
	 * --image: which image of an archive or layout holding several: a
	 * name as in `docker save` RepoTags or an OCI ref.name annotation
	 * ("name" means "name:latest"), or "@N" for the N-th (from 0). NULL:
	 * the one matching --arch, else the one tagged latest, else the first
	 * (a docker-archive: with an info finding naming the others).
	 */
	const char *image;
	/*
	 * Every regular file of a zip gets its SHA-256 (--diff compares
	 * contents); otherwise a member with no possible twin is read only as
	 * far as its type needs.
	 */
	bool digests;
};

/* A contributor: a file, a directory or a package (or an image layer). */
struct lp_ana_contrib {
	char *name;
	const char *kind;	/* static: "file", "dir", "node", "python", "vendor", "top", "layer" */
	uint64_t bytes;
	size_t count;		/* files */
};

/* Files with the same bytes. */
struct lp_ana_dup {
	uint8_t digest[32];
	uint64_t size;		/* of one copy */
	size_t count;
	char **paths;		/* sorted; paths[0] is the copy that would be kept */
	uint64_t wasted;	/* (count - 1) * size */
};

struct lp_ana_layer {
	char *digest;		/* manifest layer digest ("sha256:...") */
	char *media_type;
	char *created_by;	/* from config history, or NULL */
	uint64_t compressed;	/* blob size */
	uint64_t size;		/* sum of tar header sizes, as Dive counts it */
	size_t files;		/* regular files */
	size_t whiteouts;
	/*
	 * This layer's tar members in tar order (not unique, not sorted);
	 * whiteouts carry LP_ANA_F_* flags and stored_size holds the tar
	 * header's size field, which is what Dive adds up.
	 */
	struct lp_entries entries;
};

/* A path present in several layers (Dive's "inefficiencies"). */
struct lp_ana_multi {
	char *path;		/* "/usr/lib/x" as Dive prints it */
	size_t count;		/* layers it appears in (whiteouts included) */
	uint64_t cumulative;	/* Dive's CumulativeSize */
	uint64_t min_size;
};

/* What -O would do, by category (no byte counted twice). */
struct lp_ana_savings {
	uint64_t strip, dedupe, foreign, junk, total;
	size_t n_strip, n_dedupe, n_foreign, n_junk;
};

struct lp_analysis {
	enum lp_ana_kind kind;
	char *target;
	struct lp_entries entries;	/* the final file system, sorted */

	size_t n_files, n_dirs, n_links;
	uint64_t unzipped;		/* files + symlink targets */
	uint64_t zipped;		/* real zip size, or an estimate (directory) */
	bool zipped_estimated;
	bool zip_relevant;		/* false for images */
	uint64_t layers_unzipped;	/* --with-layer zips */
	struct lp_budget b_unzipped, b_zipped, b_image;
	enum lp_arch arch;		/* target arch: given, image config, or detected */
	const struct lp_runtime *runtime;

	/* All of them, largest first; outputs cut to --top. */
	struct lp_ana_contrib *files, *dirs, *packages;
	size_t n_files_c, n_dirs_c, n_packages;

	struct lp_ana_dup *dups;
	size_t n_dups;
	uint64_t dup_wasted;

	/* changes: would-be strip/dedupe/prune-foreign/prune-junk; findings: compat. */
	struct lp_report report;
	struct lp_ana_savings savings;

	/* Images only. */
	bool is_image;
	char *img_os, *img_arch;
	char img_manifest_digest[72];	/* "sha256:<hex>"; "" for docker-archive */
	char img_config_digest[72];
	char *img_task_root;		/* from LAMBDA_TASK_ROOT, cleaned ("var/task"); NULL: var/task */
	struct lp_ana_layer *layers;
	size_t n_layers;
	uint64_t img_size;		/* sum of layer sizes (uncompressed) */
	uint64_t img_compressed;
	struct lp_ana_multi *multi;	/* sorted by cumulative, largest first */
	size_t n_multi;
	double efficiency;		/* Dive: sum(min size) / sum(cumulative size) */
	uint64_t wasted;		/* Dive: sum(cumulative) over paths in >= 2 layers */
	uint64_t user_size;		/* Dive: layer sizes except layer 0 */
	double user_wasted_pct;		/* Dive: wasted / user_size (0 when user_size is 0) */

	double t_read, t_total;		/* seconds */
	struct ana_extra *priv;		/* reader scratch (RECORD files), internal */
};

void lp_ana_opts_init(struct lp_ana_opts *o);
void lp_ana_opts_free(struct lp_ana_opts *o);
void lp_analysis_init(struct lp_analysis *a);
void lp_analysis_free(struct lp_analysis *a);

/* What kind of target is path? Reads at most a few headers. */
int lp_analyze_detect(const char *path, enum lp_ana_kind *ret);
const char *lp_ana_kind_name(enum lp_ana_kind k);

/*
 * Read the target and compute everything. Returns 0 or -errno/-LP_E_*
 * with an lp_fail() detail naming the file. Findings are not errors.
 */
int lp_analyze_target(const char *path, const struct lp_ana_opts *o, struct lp_analysis *ret);

/*
 * The metrics alone, over an entry list (for images: over layers already in
 * a->layers): used by lp_analyze_target and by tests with hand-built lists.
 */
int lp_analyze_compute(struct lp_analysis *a, const struct lp_ana_opts *o);

/*
 * Dive's efficiency over a->layers (each layer's entries with ANA whiteout
 * flags): fills efficiency, wasted, user_size, user_wasted_pct, multi.
 */
int lp_analyze_dive(struct lp_analysis *a);

/* The package a path belongs to; kind is one of the static contributor kinds. */
const char *lp_analyze_package(const char *path, char *buf, size_t len, const char **kind);

/* Entry flags used in image layer lists (above the core lp_entry_flag bits). */
#define LP_ANA_F_WHITEOUT	(1u << 28)	/* ".wh.<name>": path is what it deletes */
#define LP_ANA_F_OPAQUE		(1u << 29)	/* ".wh..wh..opq": path is the directory */
#define LP_ANA_F_HDRDIR		(1u << 30)	/* directory with its own tar header */
/* In a->entries: a file `pack -O` would prune (junk or foreign binary), for the treemap's colours. */
#define LP_ANA_F_PRUNABLE	(1u << 27)

/*
 * --diff OLD NEW: file by file on content digests, after putting both sides
 * on the same root: an image compared with a zip or a directory is cut to
 * its task root (var/task/ or LAMBDA_TASK_ROOT), so a function and its own
 * image compare equal. Two images compare whole.
 */
struct lp_ana_delta {
	char *name;
	const char *kind;
	uint64_t old_bytes, new_bytes;
	int64_t delta;
	/*
	 * "added", "removed", "grew", "shrank", "changed" (same size, other
	 * bytes), "renamed" (same bytes under a new path, old_name set),
	 * "mode" (only the permission bits differ).
	 */
	const char *status;
	char *old_name;		/* renamed: where it was; else NULL */
	uint32_t old_mode, new_mode;	/* files in both: 0644/0755; 0 otherwise */
};

struct lp_ana_diff {
	struct lp_ana_delta *packages, *files;
	size_t n_packages, n_files;
	int64_t total_delta;		/* unzipped, over the compared files */
	uint64_t old_unzipped, new_unzipped;	/* the compared files */
	/* Zipped size (zip, or the estimate for a directory); images: compressed layers. */
	uint64_t old_zipped, new_zipped;
	bool zipped_known;		/* both sides have one of the same nature */
	bool zipped_estimated;		/* one side is an estimate */
	int64_t zipped_delta;
	const char *old_root, *new_root;	/* task root cut from each side ("" = none) */
	size_t old_skipped, new_skipped;	/* files outside the task root, not compared */
	uint64_t old_skipped_bytes, new_skipped_bytes;
	size_t n_added, n_removed, n_changed, n_renamed, n_mode;	/* files */
};

/* Sorted by |delta| descending, then name. Reads files a directory scan left unhashed. */
int lp_analyze_diff(const struct lp_analysis *old, const struct lp_analysis *new_, struct lp_ana_diff *ret);
void lp_ana_diff_free(struct lp_ana_diff *d);

/* Output. top = 0 means everything. */
struct lp_ana_out {
	size_t top;
	double min_efficiency;		/* < 0: unset */
	uint64_t max_unzipped, max_zipped;	/* 0: unset */
};

/*
 * analyze's members of the report envelope (docs/report.md): artifact,
 * limits, findings and target, then totals, contributors, savings,
 * duplicates and image; the front end absorbs it into the envelope.
 * NULL on ENOMEM.
 */
cJSON *lp_analyze_json(const struct lp_analysis *a, const struct lp_ana_out *o);
/* The envelope members alone (artifact, limits, findings, target) of a into doc. */
int lp_analyze_json_common(const struct lp_analysis *a, cJSON *doc);
cJSON *lp_analyze_diff_json(const struct lp_analysis *old, const struct lp_analysis *new_,
			    const struct lp_ana_diff *d, const struct lp_ana_out *o);

/* Write the self-contained HTML report to path (atomically). */
int lp_analyze_html(const struct lp_analysis *a, const struct lp_ana_out *o, const char *path);
/* The same page for --diff: the new tree with what changed highlighted, the changes beside it. */
int lp_analyze_diff_html(const struct lp_analysis *old, const struct lp_analysis *new_, const struct lp_ana_diff *d,
			 const struct lp_ana_out *o, const char *path);

/* Estimated compressed size of a buffer (libdeflate level 6) for the zip estimate. */
uint64_t lp_analyze_deflate_estimate(const void *buf, size_t n);
