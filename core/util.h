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

/* A growable list of strings (patterns, layer names). */
struct lp_strv {
	char **v;
	size_t n;
	size_t cap;
};
int lp_strv_push(struct lp_strv *sv, const char *s);
void lp_strv_free(struct lp_strv *sv);

/* Monotonic seconds, for progress and reports. */
double lp_now(void);
