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
	uint16_t index;
};

/* Parse "dir", "deps/=python/", "build.zip=lib/". */
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
