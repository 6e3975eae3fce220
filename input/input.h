/* SPDX-License-Identifier: MIT */
/*
 * Inputs, the reader module below every command: directory trees and archives (zip, wheel, jar, tar, tar.gz, tgz,
 * tar.zst ... anything libarchive reads) become entries. Names are checked
 * (no "..", no absolute paths, no escaping symlinks), excludes applied,
 * modes normalized. Archive members are extracted into a staging directory
 * when the caller wants their bytes later (pack), or only hashed and
 * inspected in one pass (analyze).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "core/classify.h"
#include "core/entry.h"
#include "core/report.h"
#include "core/util.h"

/* One SOURCE argument: "path" or "path=prefix/" (prefix inside the artifact). */
struct lp_source {
	char *path;
	char *prefix;		/* normalized, "" for the root */
	bool prefix_dir;	/* written as a directory ("lib/", "./", "="): a single file keeps its name */
	uint16_t index;
};

/*
 * Parse "dir", "deps/=python/", "build.zip=lib/", and for a single file
 * "bootstrap" (at the root by its name), "build/main=bootstrap" (renamed),
 * "build/main=bin/" (under bin/ by its name).
 */
int lp_source_parse(const char *arg, uint16_t index, struct lp_source *ret);
void lp_source_free(struct lp_source *s);

/*
 * A symlink whose target leaves the source tree. A source tree is untrusted
 * input: one link to ~/.aws or /etc must not ship the host's files.
 */
enum lp_link_policy {
	LP_LINKS_MATERIALIZE = 0,	/* stored as its target's bytes only if the target (realpath)
					 * stays inside the enclosing repository; else a problem */
	LP_LINKS_REFUSE,		/* any link leaving the source is a problem */
	LP_LINKS_MATERIALIZE_ALL,	/* stored as its target's bytes wherever it points */
};

/*
 * Files and directories that mark a repository or workspace root, searched
 * at and above a directory source (never at $HOME or /). Roots
 * (lp_repo_roots: version control, workspace files) win over the nearest
 * project file (lp_repo_projects), so a pnpm or npm workspace is one
 * repository even when each package has its own package.json.
 * NULL-terminated; documented in the README.
 */
extern const char *const lp_repo_roots[];
extern const char *const lp_repo_projects[];

/*
 * The repository that encloses dir (a real path): the nearest directory at
 * or above it holding a root marker, else the nearest holding a project
 * marker, else dir itself. Never $HOME or /. Returns a malloc'd real path
 * in *ret, or -errno.
 */
int lp_repo_root(const char *dir, char **ret);

/*
 * A path this run writes (the output, the fallback image directory, the
 * staging directory): left out of every directory source by identity, with
 * the temporaries beside it (".NAME.XXXXXX"), whatever path reaches it.
 */
struct lp_input_skip {
	char *path;		/* as given, for messages */
	char *name;		/* its last component */
	const char *what;	/* "the output", "the fallback image directory", ... */
	bool exists;		/* dev/ino are the output's own */
	dev_t dev;
	ino_t ino;
	bool has_parent;	/* pdev/pino: the directory that holds (or will hold) it */
	dev_t pdev;
	ino_t pino;
	size_t hits;		/* paths the walks left out for it */
	struct lp_strv seen;	/* the first LP_INPUT_SKIP_SEEN of them (source paths), for -v */
};

#define LP_INPUT_SKIP_SEEN 16

/*
 * What an earlier run learned about a file that has not changed since: a
 * memo the caller wires to its store (pack: the build cache's stat index).
 * lookup returns 1 when path with exactly this stat (size, mtime, ctime,
 * inode, device) was read before by this user and gives the SHA-256 of its
 * bytes and their sniff facts (lp_entry_sniff_facts), else 0. Called from
 * the walk, one thread.
 */
struct lp_input_memo {
	int (*lookup)(void *ctx, const char *path, const struct stat *st, uint8_t digest[32], uint32_t *facts);
	void *ctx;
};

struct lp_input_opts {
	struct lp_strv excludes;	/* --exclude GLOB (gitignore-like) */
	bool no_default_excludes;	/* keep .git, .DS_Store, ... */
	bool no_ignore_file;		/* do not read .lambdapackignore */
	enum lp_link_policy links;
	const char *stage_dir;		/* extract archive members here; NULL = don't stage */
	bool digest;			/* SHA-256 every file while reading */
	bool binfo;			/* parse native-binary facts of every file */
	uint64_t max_expand;		/* refuse archives that expand beyond this; 0 = 16 GiB */
	/*
	 * Where input problems go (escaping link, device, unreadable file,
	 * unsafe name, colliding path): with a report each is an error finding
	 * and the load goes on, so one run names them all (lp_report_problem);
	 * without one the first stops the load. Warnings (dangling link) and
	 * infos (materialized link) are recorded here too when it is set.
	 */
	struct lp_report *problems;
	struct lp_input_skip *skip;	/* this run's own outputs (lp_input_skip_add) */
	size_t n_skip;
	/*
	 * Directory walks ask it for every regular file: a hit gives the
	 * entry its digest (LP_F_HAS_DIGEST) and, for a file that is not
	 * native code, its mode (LP_F_SNIFFED: never opened to classify),
	 * and skips the read-access check (a change of owner or mode moves
	 * ctime, so a file unreadable now cannot hit); a miss marks the
	 * entry LP_F_MEMO_MISS. lookup NULL = no memo.
	 */
	struct lp_input_memo memo;
};

/*
 * Leave path (an output of this run; what says which, for messages) out of
 * every source. A source that is itself one of these paths is refused.
 */
int lp_input_skip_add(struct lp_input_opts *o, const char *path, const char *what);
void lp_input_skip_free(struct lp_input_opts *o);

/*
 * Is the entry name (stat st, source path fs) inside the directory dev/ino
 * one of the skipped paths or a temporary beside one? Counts the hit.
 */
bool lp_input_skipped(const struct lp_input_opts *o, dev_t dev, ino_t ino, const char *name,
		      const struct stat *st, const char *fs);

/* The default exclude patterns, NULL-terminated (documented in the README). */
extern const char *const lp_default_excludes[];

/* Name of the ignore file read from a directory source's root. */
#define LP_IGNORE_FILE ".lambdapackignore"

/* Is path a directory, or a file libarchive should read? */
bool lp_source_is_dir(const struct lp_source *s);

/*
 * Is this regular file an archive to unpack (zip, wheel, jar, the tar
 * family, by magic bytes or by name) rather than one file to place as it
 * is (a Go/Rust bootstrap, a bundled index.mjs)? A file named like an
 * archive counts as one even when corrupt, so a broken build.zip is an
 * error, not a file called build.zip in the artifact.
 */
bool lp_source_is_archive(const char *path);

/*
 * Load one source, appending its entries (origin = src->index) to out.
 * Entries are not sorted or de-duplicated here; lp_input_load_all does that.
 */
int lp_input_load(const struct lp_source *src, const struct lp_input_opts *o, struct lp_entries *out);

/* Load every source, sort, resolve duplicates (overwrite policy), add parents. */
int lp_input_load_all(const struct lp_source *srcs, size_t n, const struct lp_input_opts *o,
		      bool overwrite, struct lp_entries *out);

/* ---- archive members, streamed --------------------------------------- */

/*
 * The one reader of zip and tar-family archives (and image layers) that
 * pack, container and analyze consume, so every command sees the same
 * members. It yields one member at a time and then its bytes; every check
 * lives here: zip central directory against local headers, names (NUL or
 * control bytes, "..", absolute, a file named "x/"), collisions inside the
 * archive, hard links, device members, and expansion counted before any
 * byte is handed out. Problems go to opts->problems (the member is skipped)
 * or, without a report, fail the read naming the input and the member.
 */
enum lp_member_kind {
	LP_MEMBER_FILE = 0,
	LP_MEMBER_DIR,
	LP_MEMBER_SYMLINK,
	LP_MEMBER_HARDLINK,	/* same bytes as the earlier member named by link */
	LP_MEMBER_WHITEOUT,	/* layer mode: ".wh.x" deletes path */
	LP_MEMBER_OPAQUE,	/* layer mode: hides lower layers below path ("" = root) */
	LP_MEMBER_OTHER,	/* layer mode only: device, FIFO, socket (no bytes) */
};

struct lp_member {
	const char *path;	/* cleaned: relative, no "." or "..", no trailing '/' */
	const char *raw;	/* the name as stored */
	enum lp_member_kind kind;
	uint32_t mode;		/* st_mode as stored */
	int64_t declared;	/* the header's size field, -1 if none */
	uint64_t size;		/* logical size (a sparse file counts its holes) */
	const char *target;	/* symlink: target as stored */
	const char *link;	/* hard link: cleaned path of the earlier member */
	uint64_t stored;	/* zip: compressed size; tar: the size field */
	bool sparse;
	/*
	 * False only for a zip member whose (size, CRC-32) in the central
	 * directory no other member shares: it cannot be a duplicate.
	 */
	bool maybe_dup;
};

struct lp_stream_opts {
	const char *name;		/* the input, for messages */
	bool layer;			/* image layer: leading '/' harmless, whiteouts, no collisions */
	bool only_tar;			/* refuse anything but the tar family */
	uint64_t max_expand;		/* 0 = 16 GiB */
	bool ratio;			/* also refuse > 200x the input's size past 256 MiB */
	uint64_t raw_size;		/* compressed size for the ratio (files: taken from stat) */
	uint64_t max_members;		/* 0 = 4,000,000 */
	struct lp_report *problems;	/* see lp_input_opts.problems */
};

/* Read callback for a byte source: >0 bytes at *buf, 0 at the end, <0 error. */
typedef ssize_t (*lp_stream_read_fn)(void *ud, const void **buf);

struct lp_stream;

int lp_stream_open_file(const char *path, const struct lp_stream_opts *o, struct lp_stream **ret);
int lp_stream_open_cb(lp_stream_read_fn fn, void *ud, const struct lp_stream_opts *o, struct lp_stream **ret);

/* The next member: 1 with *ret set (valid until the next call), 0 at the end, or an error. */
int lp_stream_next(struct lp_stream *s, const struct lp_member **ret);

/*
 * Up to n of the current member's bytes into buf: >0, 0 at its end, or an
 * error. Unread bytes are skipped by the next lp_stream_next.
 */
ssize_t lp_stream_read(struct lp_stream *s, void *buf, size_t n);

/* After lp_stream_read returned 0: was the member recorded as a problem (drop it)? */
bool lp_stream_dropped(const struct lp_stream *s);

/* Which archive format was read ("zip", "tar", ...), after the first member. */
bool lp_stream_is_zip(const struct lp_stream *s);

void lp_stream_close(struct lp_stream *s);

/*
 * Is this finding code one of the input problems the readers record
 * (unsafe-name, bad-name, zip-inconsistent, duplicate-member, bad-type,
 * link-outside, hardlink-outside, hardlink-missing)? pack refuses an input
 * with any of them; analyze lists them and exits 1.
 */
bool lp_input_problem(const char *code);

struct archive;

/* libarchive's error text for ar, never NULL (its own may be: no "(null)" in messages). */
const char *lp_archive_error(struct archive *ar);

/* ---- container images, read ------------------------------------------- */

/*
 * The one reader of container images (an OCI layout directory, an
 * oci-archive tar, a docker-archive tar) that container's --base and
 * analyze consume. It resolves the index (or manifest list, or docker's
 * manifest.json) to one image, gives its config (digest-verified) and its
 * layers, and hands each layer out as a byte source of the compressed blob
 * whose digest and size are checked when it is drained. Every digest is
 * checked (sha256:<64 hex>) before it becomes a path; every JSON read is
 * capped at 16 MiB.
 */
enum lp_image_format {
	LP_IMAGE_LAYOUT = 0,
	LP_IMAGE_OCI_ARCHIVE,
	LP_IMAGE_DOCKER_ARCHIVE,
};

struct lp_image_opts {
	/*
	 * Which image of several: a tag or ref name ("name" also means
	 * "name:latest"; containerd names and docker RepoTags count) or "@N",
	 * the Nth. NULL: the only one, else the one for arch, else the one
	 * tagged "latest", else the first (lp_image.defaulted says so).
	 */
	const char *ref;
	const char *arch;	/* wanted architecture ("amd64", "arm64", ...), NULL = any */
	bool need_arch;		/* in an index, no linux/arch image is an error (else: the first) */
};

struct lp_image_layer {
	char digest[72];	/* "sha256:<hex>"; docker-archive: known once the blob is drained */
	char diff_id[72];	/* from the config's rootfs.diff_ids, "" if it has none for this layer */
	const char *media_type;	/* normalised OCI layer type, NULL if unknown (see raw_media_type) */
	char *raw_media_type;	/* as the manifest says, NULL if it says none */
	char *path;		/* the blob: a file of the layout, or a member of the tar */
	char *what;		/* "INPUT: layer DIGEST|PATH", for messages */
	uint64_t size;		/* the descriptor's size, UINT64_MAX if unknown; the real one once drained */
	size_t dup_of;		/* tars: the earlier layer with the same blob (SIZE_MAX: none) */
};

struct lp_image {
	enum lp_image_format format;
	char *input;		/* as given */
	struct cJSON *config;	/* owned; a consumer may take it (set NULL) */
	char config_digest[72];	/* "" for docker-archive */
	char manifest_digest[72];	/* the chosen manifest's "sha256:<hex>"; "" for docker-archive */
	struct lp_image_layer *layers;
	size_t n_layers;
	bool diff_ids_match;	/* the config lists exactly one diff_id per layer */
	size_t n_images;	/* images at the top of the index / manifest.json */
	char names[512];	/* their names, "a:1, b:2", for messages */
	bool defaulted;		/* several images and none asked for: took the first */
	void *priv;
};

/* OCI layer media type for mt (Docker's names map to their OCI twins); NULL if not a layer type. */
const char *lp_image_layer_media_type(const char *mt);

/* Open an image of the given format and resolve it to one image (see lp_image_opts). */
int lp_image_open(const char *path, enum lp_image_format format, const struct lp_image_opts *o,
		  struct lp_image **ret);
void lp_image_close(struct lp_image *img);

struct lp_image_blob;

/*
 * Visit each layer's blob: layouts in manifest order, tars in member order
 * (each member once; a layer sharing another's blob has dup_of set and is
 * not visited). fn may read the blob (lp_image_blob_read, or its members
 * through lp_image_blob_stream); after fn returns the rest is drained and
 * the digest and size are checked: a blob that does not match fails the
 * walk. fn returning < 0 stops it; returning LP_IMAGE_SKIP leaves the
 * blob unread and unchecked (a later walk that only wants another layer,
 * over blobs an earlier walk of the same image has checked).
 */
#define LP_IMAGE_SKIP 1
typedef int (*lp_image_layer_fn)(void *ud, struct lp_image *img, size_t i, struct lp_image_blob *b);
int lp_image_layers(struct lp_image *img, lp_image_layer_fn fn, void *ud);

/* The compressed blob's next bytes (an lp_stream_read_fn): >0, 0 at the end, <0 error. */
ssize_t lp_image_blob_read(void *b, const void **buf);

/*
 * Walk the blob's members through lp_stream in layer mode (o->layer,
 * o->only_tar forced). Its failure is already lp_image_blob_error's.
 */
int lp_image_blob_stream(struct lp_image_blob *b, const struct lp_stream_opts *o, struct lp_stream **ret);

/* Read the rest and check digest and size; idempotent. The layer's digest and size are then final. */
int lp_image_blob_drain(struct lp_image_blob *b);

/*
 * Also hand every chunk read from the blob, in order, to fn (to copy or
 * measure it while it is walked); fn returning < 0 fails the read.
 */
typedef int (*lp_image_tap_fn)(void *ud, const void *buf, size_t n);
void lp_image_blob_tap(struct lp_image_blob *b, lp_image_tap_fn fn, void *ud);

/* After a walk of the blob failed with r: the blob's own error (a read or tap failure, its message restored), else r. */
int lp_image_blob_error(struct lp_image_blob *b, int r);

/* Bytes read from the blob so far. */
uint64_t lp_image_blob_bytes(const struct lp_image_blob *b);

/* A layout blob's open file (to fstat what is about to be read), else -1 (a member of a tar). */
int lp_image_blob_fd(const struct lp_image_blob *b);

/* ---- would the image start? ------------------------------------------- */

struct lp_runtime;

/*
 * The members of an image's layers, for lp_image_runnable: a caller that
 * walks the layers anyway adds each member (lp_rootfs_add, layer in
 * 0..n_layers-1, any order of layers) instead of the check walking them
 * again. Freed by the caller, after lp_image_runnable.
 */
struct lp_rootfs;
int lp_rootfs_new(size_t n_layers, struct lp_rootfs **ret);
int lp_rootfs_add(struct lp_rootfs *fs, size_t layer, const struct lp_member *m);
void lp_rootfs_free(struct lp_rootfs *fs);

/*
 * One layer's members as bytes (save: malloc'd) and back (load: appended
 * to that layer, which must be empty; -EINVAL on malformed bytes, the
 * layer left empty): a caller with a cache keeps the listing of a layer
 * whose blob it verified, so a warm build need not walk the blob again.
 * Both before lp_image_runnable.
 */
int lp_rootfs_layer_save(const struct lp_rootfs *fs, size_t layer, unsigned char **ret, size_t *ret_n);
int lp_rootfs_layer_load(struct lp_rootfs *fs, size_t layer, const unsigned char *buf, size_t n);

/*
 * Bytes of image files the check read before, by the digest of the layer
 * blob that held them (a blob is content-addressed: the same digest, the
 * same bytes). get: 1 and a malloc'd copy, 0 none; put keeps them. Only
 * for images whose blob digests this run verified (container's own
 * output), never for a hostile image read as it is (analyze).
 */
struct lp_rootfs_memo {
	void *ud;
	int (*get)(void *ud, const char *layer_digest, const char *path, unsigned char **buf, size_t *n);
	void (*put)(void *ud, const char *layer_digest, const char *path, const unsigned char *buf, size_t n);
};
/* m must outlive fs. */
void lp_rootfs_set_memo(struct lp_rootfs *fs, const struct lp_rootfs_memo *m);

/* A file of the image given directly (container's own layers, from its entries) rather than read. */
struct lp_rootfs_add {
	const char *path;		/* in the image, relative: "var/task/bootstrap" */
	enum lp_member_kind kind;	/* LP_MEMBER_FILE, _DIR or _SYMLINK */
	uint32_t mode;
	const char *target;		/* symlink target */
	const char *src;		/* file: where its bytes are */
};

/*
 * The runnability check of container (its staged output, before it is put
 * in place) and analyze (any image): the program Entrypoint[0] (else
 * Cmd[0]) of img's config names, resolved against the config's PATH when
 * it has no '/' (relative to WorkingDir when it has one) and through
 * symbolic links inside the image, must exist in the merged root file
 * system (layers in order, whiteouts and opaque directories honoured) as
 * an executable regular file; a #! script's interpreter likewise (and
 * its own, up to the kernel's 5 levels); an ELF (the program, or the
 * script's interpreter) must be for the image's architecture and find its
 * PT_INTERP loader and its DT_NEEDED libraries in the image (RUNPATH/RPATH
 * with $ORIGIN, LD_LIBRARY_PATH from Env, the task root's lib/, /lib,
 * /lib64, /usr/lib, /usr/lib64, /usr/local/lib and the
 * x86_64/aarch64-linux-gnu directories), and so must those libraries'
 * own DT_NEEDED, transitively (at most 256 libraries); for a provided.* runtime (rt, may be NULL) an executable
 * bootstrap must be in /var/task or /var/runtime. Each reason is an
 * "image-not-runnable" finding of severity sev in rep.
 *
 * The layers' members come from given (a caller that walked the layers
 * anyway fed them to it: analyze), else from one walk of img's first
 * n_layers layers (SIZE_MAX: all). top (n_top files, may be 0) is one more
 * layer above those, given as files: container need not read back the
 * layers it wrote. The blob holding a file whose bytes matter (the
 * program, the interpreters, the libraries: each round of the closure
 * together) is read once more; the others are skipped.
 * Returns 0 (runnable), 1 (not; findings recorded) or an error reading
 * the image.
 */
int lp_image_runnable(struct lp_image *img, struct lp_rootfs *given, size_t n_layers,
		      const struct lp_rootfs_add *top, size_t n_top, const struct lp_runtime *rt,
		      enum lp_severity sev, struct lp_report *rep);
