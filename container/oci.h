/* SPDX-License-Identifier: MIT */
/*
 * `lambdapack container`: write an entry list as a daemonless, reproducible
 * OCI image (an image layout directory, or an oci-archive tar that also
 * carries a Docker-style manifest.json) that Lambda, docker, podman, skopeo
 * and umoci accept.
 *
 * Where entries go (the path mapping):
 *   - "opt/..." entries become /opt/... (extensions and runtimes, as Lambda
 *     layers would provide them), unless opt_in_task_root is set;
 *   - every other entry goes under the task root (default /var/task).
 *
 * Layering (deterministic, documented in the README and in oci.c):
 *   [base layers...] [opt layers] [dependency layers] [code layer]
 *   - dependencies: paths with a node_modules/ or site-packages/ component,
 *     top-level vendor/, lib/, lib64/, python/, packages/, *.dist-info/,
 *     *.egg-info/, and the top-level Python packages those dist-info RECORD
 *     or top_level.txt files name (pip install -t .);
 *   - code: everything else under the task root (one layer, last, so a
 *     code-only change reuses every layer below it);
 *   - opt and dependency groups are cut into "units" (a node package, a
 *     site-packages entry, a top-level package or a second-level directory),
 *     units are taken in sorted order and packed greedily into layers of at
 *     most layer_max bytes; at most LP_OCI_MAX_OWN_LAYERS layers of our own
 *     (the target size grows when that cap would be exceeded).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/elf.h"
#include "core/entry.h"
#include "core/limits.h"
#include "core/report.h"

struct lp_cache;

#define LP_OCI_MAX_OWN_LAYERS	8
#define LP_OCI_LAYER_MAX	(512ULL << 20)	/* default split size of a dependency layer */
#define LP_OCI_DIGEST_LEN	72		/* "sha256:" + 64 hex + NUL */

#define LP_OCI_MT_INDEX		"application/vnd.oci.image.index.v1+json"
#define LP_OCI_MT_MANIFEST	"application/vnd.oci.image.manifest.v1+json"
#define LP_OCI_MT_CONFIG	"application/vnd.oci.image.config.v1+json"
#define LP_OCI_MT_TAR		"application/vnd.oci.image.layer.v1.tar"
#define LP_OCI_MT_TAR_GZIP	"application/vnd.oci.image.layer.v1.tar+gzip"
#define LP_OCI_MT_TAR_ZSTD	"application/vnd.oci.image.layer.v1.tar+zstd"

enum lp_oci_compression {
	LP_OCI_GZIP = 0,	/* single member, no name, mtime 0, OS 255 (core/pdeflate.h) */
	LP_OCI_ZSTD,
	LP_OCI_NONE,
};

struct lp_oci_opts {
	const char *output;		/* DIR, or FILE.tar for an oci-archive */
	const char *task_root;		/* NULL = "/var/task" */
	bool opt_in_task_root;		/* do not map "opt/" to /opt */
	const char *base;		/* "oci:DIR[:TAG]", "docker-archive:FILE" or NULL (scratch) */
	const char *handler;		/* -> Cmd ["handler"] */
	const char *entrypoint;		/* -> Entrypoint [path]; relative = under the task root */
	const char *const *env;		/* "K=V" strings, override the base's */
	size_t n_env;
	const char *workdir;		/* NULL = the base's, else the task root */
	const char *tag;		/* org.opencontainers.image.ref.name; NULL = "latest" */
	const char *repo_name;		/* RepoTags name in manifest.json; NULL = "lambda-function" */
	enum lp_arch arch;		/* LP_ARCH_UNKNOWN = from the binaries, the base, else amd64 */
	enum lp_oci_compression compression;
	int level;			/* gzip 1..9 / zstd 1..19; 0 = default (6 / 3) */
	unsigned threads;		/* 0 = online CPUs; never changes the output bytes */
	int64_t epoch;			/* config "created", history and every mtime */
	uint64_t layer_max;		/* 0 = LP_OCI_LAYER_MAX */
	struct lp_report *report;	/* findings (too big, arch, not runnable); may be NULL */
	/*
	 * Check the finished image with lp_image_runnable() before it is put in
	 * place: not runnable fails with -LP_E_CHECK and nothing written, or,
	 * with check_warn, is a warning and the image is written.
	 */
	bool check_runnable;
	bool check_warn;
	const struct lp_runtime *runtime;	/* --runtime (provided.*: a bootstrap is wanted); may be NULL */
	/*
	 * Build cache (cache/cache.h) or NULL: a layer whose exact tar plan
	 * (paths, modes, links, content digests, compression settings) was
	 * built before is copied from the cache after its digest is verified,
	 * without reading the files; a built layer is stored.
	 */
	struct lp_cache *cache;
};

/* Defaults; epoch from SOURCE_DATE_EPOCH, else 1980-01-01 (as pack does). */
void lp_oci_opts_init(struct lp_oci_opts *o);

enum lp_oci_group {
	LP_OCI_G_OPT = 0,
	LP_OCI_G_DEPS,
	LP_OCI_G_CODE,
};

/* One of our layers: which entries it holds (indices into the list, ascending). */
struct lp_oci_layer_plan {
	enum lp_oci_group group;
	unsigned part, nparts;		/* 1-based part within its group */
	size_t *idx;
	size_t n;
	uint64_t bytes;			/* file + symlink bytes */
	char *first_unit, *last_unit;	/* for history: the units it spans */
};

struct lp_oci_plan {
	struct lp_oci_layer_plan *v;
	size_t n;
};

/*
 * Assign entries to layers (see the top of this file). Entries flagged
 * LP_F_REMOVED are skipped. Reads dist-info RECORD / top_level.txt files
 * from their src to find pip-installed top-level packages.
 */
int lp_oci_plan_layers(const struct lp_entries *l, const struct lp_oci_opts *o, struct lp_oci_plan *ret);
void lp_oci_plan_free(struct lp_oci_plan *p);

/* The path inside the image of an entry path ("app.py" -> "var/task/app.py"). Caller frees. */
char *lp_oci_image_path(const struct lp_oci_opts *o, const char *path);

/* A layer (ours or the base's) as it lands in the manifest. */
struct lp_oci_blob {
	char digest[LP_OCI_DIGEST_LEN];		/* of the blob as stored */
	char diff_id[LP_OCI_DIGEST_LEN];	/* of the uncompressed tar */
	uint64_t size;				/* blob bytes */
	uint64_t usize;				/* uncompressed tar bytes */
	const char *media_type;			/* static string */
	bool from_base;
	char *created_by;			/* history text (owned) */
};

/*
 * Write one planned layer to path (the blob bytes; path is created, and a
 * cached blob may arrive there as a hard link, so it must not exist yet)
 * and fill ret. Exposed for the tests; lp_oci_write() is what commands call.
 */
int lp_oci_write_layer(const struct lp_entries *l, const struct lp_oci_layer_plan *lp,
		       const struct lp_oci_opts *o, unsigned threads, const char *path, struct lp_oci_blob *ret);

struct lp_oci_result {
	char manifest_digest[LP_OCI_DIGEST_LEN];
	uint64_t manifest_size;
	char config_digest[LP_OCI_DIGEST_LEN];
	struct lp_oci_blob *layers;	/* base layers first */
	size_t n_layers;
	size_t n_base_layers;
	uint64_t usize;			/* uncompressed size of all layers incl. the base */
	uint64_t csize;			/* blob bytes of all layers */
	char arch[16];			/* "amd64" / "arm64" */
	bool archive;			/* output was an oci-archive tar */
	bool added;			/* the image was added to an existing layout */
	bool base_failed;		/* the error was obtaining or reading the base image */
	struct lp_budget budget;	/* usize against LP_LIMIT_IMAGE */
};

void lp_oci_result_free(struct lp_oci_result *r);

/*
 * Build the image from the entry list. Output goes to a temporary sibling
 * and is renamed into place when complete; nothing is left at o->output on
 * failure. Returns 0, -errno, -LP_E_TOOBIG (over 10 GiB, largest
 * contributors named in lp_errmsg() and the report), -LP_E_BADIMAGE (base
 * unreadable), -LP_E_CHECK (architecture conflicts with the base) or
 * -LP_E_USAGE (bad option).
 *
 * For pack's >250 MB fallback: pass the prepared state's entries, set
 * output, arch (the state's), threads and epoch from lp_pack_opts, leave the
 * rest at lp_oci_opts_init() defaults (scratch image, entrypoint from a
 * bootstrap at the task root if there is one), and report the result's
 * manifest_digest / archive to the user.
 */
int lp_oci_write(const struct lp_entries *l, const struct lp_oci_opts *o, struct lp_oci_result *res);

/* "gzip", "zstd", "none" -> enum; -1 if unknown. */
int lp_oci_compression_parse(const char *s);

/*
 * May the image be written at path? FILE.tar (an oci-archive) as any file
 * output (lp_output_check_file: absent, or a regular file to replace). A
 * directory must be absent, empty, or an OCI image layout (oci-layout,
 * index.json with a manifests array, blobs/): the image is then added to
 * it (new blobs first, then index.json swapped atomically; a manifest with
 * the same tag is replaced, other images and files are kept). Anything else
 * is refused with -EEXIST and a message naming the path and the fix.
 * *ret_layout (may be NULL) says whether an existing layout is added to.
 * lp_oci_write() checks this itself; front ends call it early as well.
 */
int lp_oci_output_check(const char *path, bool *ret_layout);

/* ---- Internal to container/ (shared between its files and its tests). ---- */

struct cJSON;

/* A base image whose layers were copied (or hard-linked) into blobdir. */
struct lp_oci_base {
	struct cJSON *config;		/* the base's image config (owned) */
	char arch[16];
	struct lp_oci_blob *layers;
	size_t n;
	struct lp_rootfs *fs;		/* the layers' members, for the runnability check (owned) */
};

/*
 * Read "oci:DIR[:TAG]" or "docker-archive:FILE", choose the manifest for
 * want_arch (amd64 when unknown) if the base is an index, verify every
 * layer (digest, diff_id) while measuring its uncompressed size, and place
 * the layer blobs in blobdir ("<out>/blobs/sha256") under their digests.
 */
int lp_oci_base_import(const char *spec, const char *want_arch, const char *blobdir, struct lp_cache *cache,
		       struct lp_oci_base *ret);
void lp_oci_base_free(struct lp_oci_base *b);
