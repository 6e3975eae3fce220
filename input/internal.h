/* SPDX-License-Identifier: MIT */
/* Shared inside input/: ignore rules and the per-format loaders. */
#pragma once

#include "input/input.h"

struct rule {
	const char *pat;	/* points into owned storage */
	bool neg;
	bool dironly;
	bool user;		/* --exclude: also matched against the artifact path */
};

struct rules {
	struct rule *v;
	size_t n, cap;
	struct lp_strv store;
};

/* Build the rules for a source: defaults, --exclude, and dir's ignore file (dir may be NULL). */
int rules_build(struct rules *rs, const struct lp_input_opts *o, const char *dir);
void rules_free(struct rules *rs);
bool rules_excluded(const struct rules *rs, const char *rel, const char *art, bool is_dir);

/*
 * Where does a link at rel (relative to the source root) point, lexically?
 * Returns 0 and the cleaned in-root path, or -LP_E_UNSAFEPATH if it leaves.
 */
int link_resolve(const char *rel, const char *target, char *out, size_t outlen);

int lp_input_load_dir(const struct lp_source *src, const struct lp_input_opts *o, struct lp_entries *out);
int lp_input_load_archive(const struct lp_source *src, const struct lp_input_opts *o, struct lp_entries *out);
