/* SPDX-License-Identifier: MIT */
/*
 * Test-only helpers: a minimal directory loader (the real one is
 * lp_pack_prepare) and small builders for entry lists.
 */
#pragma once

#include <stdbool.h>

#include "core/entry.h"

/* Walk dir into l: sorted, modes normalized, symlinks kept; dedupe marks identical files. */
int fx_load_dir(const char *dir, bool dedupe, struct lp_entries *l);

/* Push a file entry with bytes in a file under tmpdir (created). */
int fx_add_file(struct lp_entries *l, const char *tmpdir, const char *path, const char *data, unsigned mode);
