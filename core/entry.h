/* SPDX-License-Identifier: MIT */
/*
 * The entry model: one data model that flows through every command.
 *
 * Inputs (directories, archives, images) become a list of entries sorted by
 * path with no duplicates. Optimizers transform the list (strip swaps an
 * entry's source for a staged stripped copy, dedupe marks copies, prune
 * removes entries), emitters write it as a zip or as OCI layers, and reports
 * read it. Nothing here touches the user's files.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lp_binfo;	/* core/elf.h: native-binary facts */
struct lp_report;	/* core/report.h */

enum lp_kind {
	LP_FILE = 0,
	LP_DIR,
	LP_SYMLINK,
};

enum lp_entry_flag {
	LP_F_EXEC = 1u << 0,		/* wants 0755: x bit, ELF executable or #! script */
	LP_F_HAS_DIGEST = 1u << 1,	/* digest[] is valid */
	LP_F_DUPLICATE = 1u << 2,	/* same bytes as the entry named by target */
	LP_F_STRIPPED = 1u << 3,	/* src is a staged stripped copy */
	LP_F_IMPLICIT = 1u << 4,	/* directory synthesized as a parent */
	LP_F_MATERIALIZED = 1u << 5,	/* symlink leaving the root, stored as its target's bytes */
	LP_F_REMOVED = 1u << 6,		/* pruned; dropped by lp_entries_compact() */
	LP_F_SNIFFED = 1u << 7,		/* binfmt/exec classification done */
	LP_F_SCRIPT = 1u << 8,		/* starts with #! */
	LP_F_MEMO_MISS = 1u << 9,	/* the walk's memo (lp_input_memo) was asked and knew nothing */
	LP_F_STAT_ID = 1u << 10,	/* stat_id holds the walk's stat of src */
};

/* The stat a directory walk took of a file, before anything read it (for a stat index). */
struct lp_stat_id {
	uint64_t dev, ino, size;
	int64_t mtime_ns, ctime_ns;
};

struct lp_entry {
	char *path;		/* artifact path: relative, '/'-separated, no trailing '/' */
	enum lp_kind kind;
	uint32_t mode;		/* normalized permission bits: 0644 or 0755 */
	uint32_t flags;		/* enum lp_entry_flag */
	uint64_t size;		/* file: bytes; symlink: strlen(target); dir: 0 */
	uint64_t orig_size;	/* file size before any strip (== size if unstripped) */
	uint8_t digest[32];	/* SHA-256 of the (current) bytes if LP_F_HAS_DIGEST */
	char *target;		/* symlink target as stored, or canonical path of a duplicate */
	char *src;		/* file system path to read the bytes from, or NULL */
	uint32_t src_mode;	/* st_mode as found in the input (informational) */
	uint16_t origin;	/* index of the SOURCE argument this came from */
	uint16_t layer;		/* image layer index (analyze), else 0 */
	uint8_t binfmt;		/* enum lp_binfmt from core/elf.h, 0 = not native code */
	struct lp_binfo *bin;	/* parsed native-binary facts or NULL (owned) */
	uint64_t stored_size;	/* compressed size when read from an archive, else 0 */
	struct lp_stat_id stat_id;	/* if LP_F_STAT_ID */
};

struct lp_entries {
	struct lp_entry *v;
	size_t n;
	size_t cap;
};

void lp_entries_init(struct lp_entries *l);
void lp_entries_free(struct lp_entries *l);

/*
 * Append a zeroed entry with a copy of path. The returned pointer is valid
 * until the next push. Returns NULL on allocation failure.
 */
struct lp_entry *lp_entries_push(struct lp_entries *l, const char *path, enum lp_kind kind);

/* Release what one entry owns (not the entry itself). */
void lp_entry_release(struct lp_entry *e);

/* Sort by path, bytewise (strcmp): the one order every emitter uses. */
void lp_entries_sort(struct lp_entries *l);

/* Binary search in a sorted list; NULL if absent. */
struct lp_entry *lp_entries_find(const struct lp_entries *l, const char *path);

/*
 * After sorting: resolve entries that share a path. Two directories merge.
 * Otherwise, with overwrite the entry from the later source (higher origin)
 * wins; without it this fails with LP_E_DUPLICATE naming the path.
 */
int lp_entries_unique(struct lp_entries *l, bool overwrite);

/*
 * lp_entries_unique naming the inputs: names[origin] is how the user gave
 * each source ("deps/", "build.zip"), so a collision reads "given by more
 * than one source (deps/ and build.zip)", or "given twice inside
 * build.zip" for two members of one archive (with names, refused even
 * with overwrite: neither is the later one; without names, overwrite keeps
 * the later entry, as image layers need). With problems, every collision is recorded
 * (lp_report_problem), the first entry kept and the load goes on.
 */
int lp_entries_unique_named(struct lp_entries *l, bool overwrite, const char *const *names, size_t n_names,
			    struct lp_report *problems);

/* Add the missing parent directories of every entry (LP_F_IMPLICIT). Sorted on return. */
int lp_entries_add_parents(struct lp_entries *l);

/* Drop entries flagged LP_F_REMOVED, keeping order. */
void lp_entries_compact(struct lp_entries *l);

/* Move all entries of src to the end of dst (src is left empty). */
int lp_entries_splice(struct lp_entries *dst, struct lp_entries *src);

/*
 * Deep copy of src into dst (initialized by this call): a scratch list for
 * dry runs of the optimizers. -ENOMEM (dst left empty) on failure.
 */
int lp_entries_clone(struct lp_entries *dst, const struct lp_entries *src);

/*
 * Sum of the sizes Lambda counts as unzipped: regular files plus symlink
 * targets (a deduplicated copy counts as its link). LP_F_REMOVED entries
 * count nothing: they are never emitted.
 */
uint64_t lp_entries_unzipped_size(const struct lp_entries *l);

/* Counts by kind, for reports. */
void lp_entries_count(const struct lp_entries *l, size_t *files, size_t *dirs, size_t *links);

/* "a/b/c" -> length of "a/b" (0 if no parent). */
size_t lp_path_parent_len(const char *path);

/*
 * Relative symlink text that, placed at from_path, reaches to_path
 * ("a/b/x", "a/c/y" -> "../c/y"). Caller frees. NULL on ENOMEM.
 */
char *lp_path_relative(const char *from_path, const char *to_path);
