/* SPDX-License-Identifier: MIT */
/* Small shared helpers: human sizes, glob matching, path normalization. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "1.5 MiB" style, 1024-based; buf of at least 16 bytes. Returns buf. */
char *lp_human_size(uint64_t n, char *buf, size_t len);

/* Parse "250M", "52428800", "1.5G", "10GB", "512k" (1024-based units). */
int lp_parse_size(const char *s, uint64_t *ret);

/*
 * gitignore-flavoured glob match over a whole relative path:
 * '*' matches within one component, '**' across components, '?' one char,
 * [abc] classes. A pattern without '/' matches the last component (basename)
 * anywhere; a pattern with '/' is anchored at the root. A trailing '/' means
 * "directories only" and is handled by the caller (see lp_ignore).
 */
bool lp_glob_match(const char *pattern, const char *path);

/*
 * Normalize an archive entry name or a user prefix into artifact form:
 * strips leading "./", collapses "//" and "/./", drops a trailing '/'.
 * Fails with LP_E_UNSAFEPATH for absolute names, ".." components, empty
 * names or backslashes-as-separators. out must be at least strlen(in)+1.
 */
int lp_path_clean(const char *in, char *out);

/* Join prefix ("" allowed) and rel into a malloc'd artifact path. */
char *lp_path_join(const char *prefix, const char *rel);

/*
 * Make a name from an archive or a file system safe to print: control
 * bytes (C0, DEL, C1), invalid UTF-8 and backslash become \xNN / \\, so a
 * member name can never move the cursor, clear a screen or set a title.
 * Valid UTF-8 text is kept. Truncates to fit; returns out.
 */
char *lp_escape(const char *in, char *out, size_t outlen);

/*
 * The same for a whole message whose names may already be escaped: control
 * bytes and invalid UTF-8 become \xNN, a backslash stays one (escaping is
 * not idempotent, so a name escaped by the library is not doubled).
 */
char *lp_sanitize(const char *in, char *out, size_t outlen);

/* True if s is valid UTF-8 (no overlongs, no surrogates). */
bool lp_utf8_valid(const char *s);

/* Little-endian fields of zip and ELF headers (no alignment assumed). */
static inline uint16_t lp_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t lp_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t lp_le64(const uint8_t *p)
{
	return (uint64_t)lp_le32(p) | (uint64_t)lp_le32(p + 4) << 32;
}

/* FNV-1a of a string: the hash of the small path sets and maps. */
static inline uint64_t lp_fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

/* A growable list of strings (patterns, layer names). */
struct lp_strv {
	char **v;
	size_t n;
	size_t cap;
};
int lp_strv_push(struct lp_strv *sv, const char *s);
void lp_strv_free(struct lp_strv *sv);

/*
 * Make *buf (of *cap bytes) hold at least need bytes, doubling from first:
 * 0, or -ENOMEM with *buf and *cap unchanged.
 */
int lp_grow(void **buf, size_t *cap, size_t need, size_t first);

/* Monotonic seconds, for progress and reports. */
double lp_now(void);

/* one or many, by n: "%zu %s", n, lp_plural(n, "file", "files") reads "1 file", "2 files". */
static inline const char *lp_plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}
