/* SPDX-License-Identifier: MIT */
/*
 * Deterministic zip writer for Lambda deployment packages.
 *
 * The bytes written depend only on the entry list (paths, kinds, modes,
 * contents), the level, the whole-file threshold, the block size and the
 * epoch: never on thread count, timing, file mtimes, owners or umask.
 * Every entry gets Unix "made by", mode<<16 external attributes, one fixed
 * DOS timestamp and no extra fields; zip64 structures appear only when the
 * archive actually needs them.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/entry.h"

struct lp_cache;

#define LP_ZIP_LEVEL_DEFAULT	6
#define LP_ZIP_WHOLE_MAX	(32u * 1024 * 1024)	/* default whole-file threshold */
#define LP_ZIP_WINDOW		(128u * 1024 * 1024)	/* default read-ahead budget */
#define LP_ZIP_EPOCH_MIN	315532800LL		/* 1980-01-01T00:00:00Z, the DOS epoch */

enum lp_zip_method {
	LP_ZIP_STORED = 0,
	LP_ZIP_DEFLATED = 8,
};

/* What was written for one entry (handed to lp_zip_opts.on_entry). */
struct lp_zip_entry_info {
	uint64_t usize;		/* uncompressed bytes (symlink text for links) */
	uint64_t csize;		/* bytes of entry data in the zip */
	uint64_t offset;	/* local header offset */
	uint32_t crc;
	uint16_t method;	/* enum lp_zip_method */
	bool zip64;		/* this entry carries zip64 extra fields */
};

/* Called from the calling thread, in entry order, after each entry is written. */
typedef void (*lp_zip_entry_fn)(void *ctx, size_t index, const struct lp_entry *e,
				const struct lp_zip_entry_info *info);

struct lp_zip_opts {
	int level;		/* 1..12, libdeflate's scale; 0 = 6. Streamed files use zlib at min(level, 9). */
	unsigned threads;	/* 0 = online CPUs */
	int64_t epoch;		/* timestamp of every entry (UTC seconds); clamped to 1980..2107 */
	uint64_t whole_max;	/* files up to this size are deflated in one piece; 0 = LP_ZIP_WHOLE_MAX */
	size_t block;		/* pdeflate block for larger files; 0 = 128 KiB */
	size_t window;		/* memory for entries compressed ahead; 0 = LP_ZIP_WINDOW */
	const char *name;	/* output name used in error details; may be NULL */
	lp_zip_entry_fn on_entry;
	void *on_entry_ctx;
	/*
	 * Build cache (cache/cache.h) or NULL: entry data is looked up by the
	 * file's content digest (from the entry, else the cache's stat index)
	 * and the settings that shape it, spliced in when found and verified,
	 * stored when computed. The zip is byte-identical either way.
	 */
	struct lp_cache *cache;
	/*
	 * For tests: pretend the zip64 thresholds are lower. A size or
	 * offset >= zip64_size, or >= zip64_count entries, switches to zip64
	 * (0 = the format's 0xFFFFFFFF and 0xFFFF).
	 */
	uint64_t zip64_size;
	uint32_t zip64_count;
};

struct lp_zip_result {
	size_t entries;		/* entries written */
	uint64_t unzipped;	/* sum of uncompressed sizes (files and symlink texts) */
	uint64_t zipped;	/* bytes written */
	bool zip64;		/* any zip64 structure was written */
	/*
	 * SHA-256 of the bytes written (from the fd's offset at the call), taken
	 * as they went out; have_sha256 false when the writer had to go back
	 * over written bytes (a streamed entry patched or rewritten).
	 */
	bool have_sha256;
	uint8_t sha256[32];
};

/* Defaults: level 6, all CPUs, epoch 1980-01-01. */
void lp_zip_opts_init(struct lp_zip_opts *o);

/*
 * Write the (sorted) entry list as a zip to fd (o may be NULL for the
 * defaults). fd must be a seekable file positioned where the archive
 * starts (headers are patched with pwrite). Entries flagged LP_F_REMOVED
 * are skipped. On failure returns -errno or -LP_E_* with a detail in
 * lp_errmsg() naming the file; what was written to fd is then garbage (the
 * caller discards its temp file). On success the file is truncated at the
 * end of the archive and the file offset left there.
 */
int lp_zip_write(const struct lp_entries *l, int fd, const struct lp_zip_opts *o,
		 struct lp_zip_result *res);

/* CRC-32 as zip uses it (start with 0). */
uint32_t lp_zip_crc32(uint32_t crc, const void *buf, size_t n);

/* DOS date (high 16 bits) and time (low 16 bits) of a UTC epoch, clamped. */
uint32_t lp_zip_dostime(int64_t epoch);

/* One central directory record, as read back (zip64 values resolved). */
struct lp_zip_centry {
	char *name;
	uint16_t made_by, needed, flags, method;
	uint16_t dos_time, dos_date;
	uint32_t crc, ext_attr;
	uint64_t csize, usize, offset;
	uint16_t extra_len;		/* central extra field length */
	uint16_t local_extra_len;	/* local header extra field length */
	bool zip64;			/* a zip64 extra field was present */
};

struct lp_zip_central {
	struct lp_zip_centry *v;
	size_t n;
	bool zip64;		/* zip64 end-of-central-directory record present */
	uint64_t cd_offset, cd_size;
};

/*
 * Read a zip's central directory and check each local header against it
 * (signature, name, flags, method, CRC and sizes). For tests and reports;
 * fails with -LP_E_BADARCHIVE on anything inconsistent.
 */
int lp_zip_read_central(int fd, struct lp_zip_central *ret);
void lp_zip_central_free(struct lp_zip_central *c);
