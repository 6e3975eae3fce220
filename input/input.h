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
