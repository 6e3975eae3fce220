/* SPDX-License-Identifier: MIT */
/*
 * The content-addressed build cache shared by pack and container.
 *
 * Layout under the root ($XDG_CACHE_HOME/lambdapack, ~/.cache/lambdapack,
 * or --cache-dir; ROOT/registry/ belongs to the registry client and is
 * never touched here):
 *   zip/v1/XX/KEY     a zip entry's data as the zip writer would emit it
 *   layers/v2/XX/KEY  a layer record: the blob's digest, diff_id and length
 *   layers/v2/blobs/HEX  a compressed OCI layer blob as it is (HEX = its SHA-256)
 *   index/v1/NAME     a stat index: path, size, mtime, ctime, inode,
 *                     device -> SHA-256 and the caller's facts, one per
 *                     set of sources and user
 *   strip-v2/         the strip cache (pack/strip.c)
 *
 * Layer blobs are kept bare so that an output on the same file system
 * shares them by a hard link: a warm image build writes no layer bytes, and
 * a cold one stores its layers in the cache without writing them twice.
 *
 * Every entry file (not the bare blobs) is a header (magic, kind, key,
 * what the entry says about itself, payload length and CRC-32, header
 * CRC-32) and the payload. Entries and blobs are written to a temporary
 * name and renamed; every use verifies the header, the length and the
 * payload (CRC-32 for zip data and records, length and SHA-256 for blobs)
 * and a bad entry is deleted, recomputed by the caller and reported
 * (lp_cache_report, info "cache-entry-corrupt"). Concurrent runs need no
 * lock for correctness (rename is atomic, an open entry survives its
 * unlink); eviction takes a flock so that only one run evicts at a time.
 *
 * A cache dir that cannot be used (read-only, not a directory, full)
 * switches the cache off for the rest of the run with one warning
 * (lp_cache_warning); the build itself never fails because of the cache.
 *
 * Thread-safe: the zip writer's workers and the layer writers call in
 * concurrently.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "core/hash.h"

struct lp_report;
struct lp_cache;

#define LP_CACHE_MAX_DEFAULT	(4ULL << 30)	/* 4 GiB */

struct lp_cache_opts {
	const char *root;	/* NULL = lp_cache_default_root() */
	uint64_t max_bytes;	/* 0 = LP_CACHE_MAX_DEFAULT */
	/*
	 * Names this run's stat index (e.g. the command and its absolute
	 * source paths): runs over the same sources share one index file,
	 * which holds only the paths the last such run saw. NULL = no index.
	 */
	const char *index_name;
};

/* $XDG_CACHE_HOME/lambdapack (if absolute), else $HOME/.cache/lambdapack. Caller frees. */
int lp_cache_default_root(char **ret);

/*
 * Open (creating its directories). Only -ENOMEM is an error: an unusable
 * directory gives a disabled cache and lp_cache_warning() says why.
 */
int lp_cache_open(const struct lp_cache_opts *o, struct lp_cache **ret);
/* Write the stat index and evict beyond the cap (once). NULL is fine. */
void lp_cache_close(struct lp_cache *c);
/* lp_cache_close() if not done yet, then free. NULL is fine. */
void lp_cache_free(struct lp_cache *c);

bool lp_cache_enabled(const struct lp_cache *c);
const char *lp_cache_root(const struct lp_cache *c);
/* One line saying why the cache was switched off, or NULL. */
const char *lp_cache_warning(const struct lp_cache *c);
/* Add one info finding per dropped (corrupt) entry to rep. */
int lp_cache_report(const struct lp_cache *c, struct lp_report *rep);

struct lp_cache_stats {
	uint64_t hits, misses, stored, dropped;
	uint64_t index_hits, index_misses;
	uint64_t evicted, evicted_bytes;
	uint64_t bytes;		/* on disk after eviction (0 when no scan ran) */
};
void lp_cache_get_stats(const struct lp_cache *c, struct lp_cache_stats *ret);
/* Count a miss the cache could not see (the key was not even computable without reading). */
void lp_cache_note_miss(struct lp_cache *c);

/* ---- the stat index ---- */

/*
 * The digest recorded for path if st still matches what was recorded and
 * the record is not racy: like git's index, a record whose mtime or ctime
 * is not older than the moment its stat was taken (to the second, minus
 * one for coarse file system clocks) is not trusted, because the file may
 * have changed again within the same timestamp. 1 hit, 0 miss.
 */
int lp_cache_index_lookup(struct lp_cache *c, const char *path, const struct stat *st, uint8_t digest[32]);
/* Record path's digest; st must be from before its bytes were read (fstat of the fd read). */
void lp_cache_index_record(struct lp_cache *c, const char *path, const struct stat *st, const uint8_t digest[32]);
/*
 * The same with the caller's facts about those bytes (32 opaque bits,
 * 0 = none, e.g. what sniffing the file's head found; they must describe
 * the bytes the digest is of), given back by a hit of
 * lp_cache_index_lookup_facts. The plain calls record and read 0.
 */
void lp_cache_index_record_facts(struct lp_cache *c, const char *path, const struct stat *st,
				 const uint8_t digest[32], uint32_t facts);
int lp_cache_index_lookup_facts(struct lp_cache *c, const char *path, const struct stat *st, uint8_t digest[32],
				uint32_t *facts);

/* ---- entries ---- */

enum lp_cache_kind {
	LP_CACHE_ZIP = 1,	/* zip entry data, verified by CRC-32 */
	LP_CACHE_LAYER = 2,	/* layer record (see lp_cache_blob_get) */
	LP_CACHE_BASE = 3,	/* a base layer that passed its import: its uncompressed size */
};

/* What an entry says about itself (the caller's facts, stored in the header). */
struct lp_cache_meta {
	uint32_t method;	/* zip: stored or deflated */
	uint32_t crc;		/* zip: CRC-32 of the uncompressed data */
	uint64_t usize;		/* uncompressed size */
	uint8_t digest[32];	/* layer: SHA-256 of the blob */
	uint8_t diff_id[32];	/* layer: SHA-256 of the uncompressed tar */
};

/* A key from a domain string (what produces the bytes) and the content facts. */
struct lp_cache_key {
	uint8_t k[32];
};

/*
 * A whole entry in memory, verified (length, payload CRC-32, kind, key).
 * 1 hit (*ret_data malloc'd, *ret_len bytes), 0 miss. name is what the
 * entry is for (a path), for the report if it has to be dropped.
 */
int lp_cache_get_mem(struct lp_cache *c, enum lp_cache_kind kind, const struct lp_cache_key *key,
		     const char *name, struct lp_cache_meta *meta, unsigned char **ret_data, uint64_t *ret_len);
int lp_cache_put_mem(struct lp_cache *c, enum lp_cache_kind kind, const struct lp_cache_key *key,
		     const struct lp_cache_meta *meta, const void *data, uint64_t len);

/*
 * lp_cache_get_mem for an entry whose payload is known to be at most
 * max_len bytes (a zip entry's data is never longer than the file): open,
 * one read, close. Where the file system keeps access times that read
 * marks the entry used for eviction, so it takes no fstat and no futimens
 * (on a noatime mount this is lp_cache_get_mem). A longer entry is corrupt.
 */
int lp_cache_get_small(struct lp_cache *c, enum lp_cache_kind kind, const struct lp_cache_key *key,
		       const char *name, uint64_t max_len, struct lp_cache_meta *meta, unsigned char **ret_data,
		       uint64_t *ret_len);

/*
 * Streamed use of a big entry: open checks the header and length, then
 * the caller reads the payload (lp_cache_rd_read) and verifies it as it
 * goes (zip: lp_cache_rd_crc() against the header; layer: its SHA-256 against
 * meta.digest); if that fails, lp_cache_rd_drop() deletes and reports it.
 */
struct lp_cache_rd {
	int fd;
	uint64_t len, off;
	uint32_t payload_crc;	/* from the header */
	uint32_t crc;		/* CRC-32 of what was read so far */
	struct lp_cache_meta meta;
	char *path;
	struct lp_cache *c;
	enum lp_cache_kind kind;
	bool unchecked;		/* the file's size was not checked at open: the reads find its end */
};
int lp_cache_rd_open(struct lp_cache *c, enum lp_cache_kind kind, const struct lp_cache_key *key,
		     const char *name, struct lp_cache_rd *rd);
/*
 * lp_cache_rd_open for a zip entry without the fstat where the file system
 * keeps access times (see lp_cache_get_small): open and read the header;
 * the reads find where the file ends (a truncated or longer entry fails
 * lp_cache_rd_read with -EIO). Otherwise it is lp_cache_rd_open.
 */
int lp_cache_rd_open_fast(struct lp_cache *c, enum lp_cache_kind kind, const struct lp_cache_key *key,
			  const char *name, struct lp_cache_rd *rd);
/* Read up to n bytes of payload; returns bytes read (0 at the end) or -errno. */
long lp_cache_rd_read(struct lp_cache_rd *rd, void *buf, size_t n);
/* Did the payload read so far (all of it) match the header's CRC-32? */
bool lp_cache_rd_crc_ok(const struct lp_cache_rd *rd);
void lp_cache_rd_drop(struct lp_cache_rd *rd, const char *name, const char *why);
void lp_cache_rd_close(struct lp_cache_rd *rd);

/* A new entry written as it is produced (temp file, renamed at commit). NULL when disabled. */
struct lp_cache_wr;
struct lp_cache_wr *lp_cache_wr_begin(struct lp_cache *c, enum lp_cache_kind kind);
/* Appends; a failure only abandons the entry (and may switch the cache off). */
void lp_cache_wr_write(struct lp_cache_wr *w, const void *buf, size_t n);
/* Install under key (the key may only be known at the end). Frees w. */
int lp_cache_wr_commit(struct lp_cache_wr *w, const struct lp_cache_key *key, const struct lp_cache_meta *meta);
void lp_cache_wr_abort(struct lp_cache_wr *w);

/* ---- layer blobs ---- */

/*
 * The blob cached for key, placed at path (which must not exist): a hard
 * link to the cache's copy, or a copy where a link is impossible (another
 * file system). Either way its length and SHA-256 are checked through the
 * new name before it counts; a bad blob is removed from path and from the
 * cache and reported. 1 done (meta and *size filled), 0 miss (path absent),
 * -errno when path cannot be written.
 */
int lp_cache_blob_get(struct lp_cache *c, const struct lp_cache_key *key, const char *name, const char *path,
		      struct lp_cache_meta *meta, uint64_t *size);
/*
 * Keep the finished blob at path (size bytes, SHA-256 meta->digest) under
 * key: linked into the cache, or copied across file systems. Failures only
 * leave it uncached (and may switch the cache off).
 */
void lp_cache_blob_put(struct lp_cache *c, const struct lp_cache_key *key, const struct lp_cache_meta *meta,
		       const char *path, uint64_t size);

/* ---- keys ---- */

struct lp_cache_keyer {
	struct lp_sha256 sha;
};
/* Start a key: the domain names the producer and every setting that shapes the bytes. */
void lp_cache_key_begin(struct lp_cache_keyer *k, const char *domain);
void lp_cache_key_add(struct lp_cache_keyer *k, const void *p, size_t n);
void lp_cache_key_add_str(struct lp_cache_keyer *k, const char *s);	/* with its NUL */
void lp_cache_key_add_u64(struct lp_cache_keyer *k, uint64_t v);
void lp_cache_key_end(struct lp_cache_keyer *k, struct lp_cache_key *ret);

/* Tests: the path of an entry file (to corrupt it). Caller frees. */
char *lp_cache_entry_path(const struct lp_cache *c, enum lp_cache_kind kind, const struct lp_cache_key *key);
