/* SPDX-License-Identifier: MIT */
/*
 * In-process, byte-preserving ELF strip.
 *
 * Removes debug sections (.debug_*, .zdebug_*, .gnu_debuglink,
 * .gnu_debugdata, ...) and the static symbol table (.symtab, .strtab,
 * .symtab_shndx, and relocation sections that only serve them) from ET_EXEC
 * and ET_DYN files. Everything the loader maps is copied verbatim, so the
 * result is proven, not trusted: after writing, every PT_LOAD range and the
 * program header table must be byte-identical to the input, the ELF header
 * may differ only in e_shoff/e_shnum/e_shstrndx, and libelf must parse the
 * output. Anything doubtful is a skip with a reason, never a guess.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum lp_strip_outcome {
	LP_STRIP_OK = 0,		/* out_path holds a smaller, proven copy */
	LP_STRIP_NOTHING,		/* nothing removable (already stripped) */
	LP_STRIP_NOT_ELF,		/* not an ELF file at all */
	LP_STRIP_UNPARSEABLE,		/* libelf rejects it, or headers point outside the file */
	LP_STRIP_ARCHIVE,		/* ar archive (static library): left alone */
	LP_STRIP_RELOCATABLE,		/* ET_REL object: symbols are its contents */
	LP_STRIP_UNSUPPORTED,		/* ET_CORE, no program headers, ... */
	LP_STRIP_NO_SHDRS,		/* section headers already gone (sstrip'd) */
	LP_STRIP_TRAILING_DATA,		/* bytes after the last section/segment: appended payload */
	LP_STRIP_NOT_SMALLER,		/* result would not be smaller */
	LP_STRIP_PROOF_FAILED,		/* written copy failed verification */
	LP_STRIP_UNLOADABLE,		/* the loader would refuse it (lp_binfo.unloadable): left alone */
};

struct lp_strip_opts {
	bool debug_only;	/* like strip -g: keep .symtab/.strtab */
};

struct lp_strip_result {
	enum lp_strip_outcome outcome;
	char reason[256];	/* one line, for people; set for every outcome */
	uint64_t size_before;
	uint64_t size_after;	/* == size_before unless outcome is LP_STRIP_OK */
	unsigned removed;	/* sections removed */
	uint64_t debug_removed;	/* bytes of debug sections removed */
	uint64_t symtab_removed; /* bytes of symbol tables removed */
	unsigned kept_unknown;	/* unknown non-allocated sections kept */
	char kept_note[160];	/* their names ("pydata, .foo"), "" if none */
	bool cached;		/* result came from the strip cache */
	bool has_digest;
	uint8_t digest[32];	/* SHA-256 of out_path's bytes when has_digest */
};

/*
 * Strip in_path into out_path (created or truncated, mode copied from the
 * input). The input is never modified. Returns 0 whenever the file could be
 * examined; res->outcome says what happened, and out_path exists only when
 * it is LP_STRIP_OK. Returns -errno (with lp_fail detail) for I/O errors.
 *
 * out_path may be NULL to only plan: res gets the outcome and the size the
 * stripped file would have, nothing is written or proven.
 */
int lp_strip_file(const char *in_path, const char *out_path, const struct lp_strip_opts *opts,
		  struct lp_strip_result *res);

/*
 * The plan half of lp_strip_file(in_path, NULL, ...) on an open descriptor
 * (a file or a spooled archive member; read with pread, position untouched);
 * name is for messages. Lets analyze tell what pack's strip would save
 * without a path to reopen.
 */
int lp_strip_plan_fd(int fd, const char *name, const struct lp_strip_opts *opts,
		     struct lp_strip_result *res);

/*
 * Check that out_path is a faithful strip of in_path: ELF header equal except
 * e_shoff/e_shnum/e_shstrndx, program header table and every segment's file
 * bytes identical, output parses with libelf. 0 if so; -LP_E_NOTELF with a
 * reason in why (may be NULL) otherwise, or -errno on I/O errors.
 */
int lp_strip_verify(const char *in_path, const char *out_path, char *why, size_t why_len);

/*
 * lp_strip_file through a cache keyed by the input's SHA-256 (in_digest if
 * the caller has it, else computed). A hit copies the cached bytes to
 * out_path (re-proven against the input) or replays the cached skip. Misses
 * strip and store. cache_dir is created if needed.
 */
int lp_strip_cached(const char *in_path, const uint8_t *in_digest, const char *cache_dir,
		    const char *out_path, const struct lp_strip_opts *opts,
		    struct lp_strip_result *res);

/* "ok", "nothing-to-strip", "not-elf", ... (stable, for reports). */
const char *lp_strip_outcome_name(enum lp_strip_outcome o);
