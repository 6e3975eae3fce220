/* SPDX-License-Identifier: MIT */
/*
 * Private to analyze/: a string-keyed hash map and the pieces the reader,
 * the metrics and the outputs share. Not part of the module's API.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "analyze/analyze.h"

/* Open addressing, keys borrowed (the caller keeps them alive), values size_t. */
struct ana_map {
	const char **keys;
	size_t *vals;
	size_t cap, n;
};

int ana_map_init(struct ana_map *m, size_t hint);
void ana_map_free(struct ana_map *m);
/* Insert or overwrite. */
int ana_map_put(struct ana_map *m, const char *key, size_t val);
/* Pointer to the value, or NULL. */
size_t *ana_map_get(const struct ana_map *m, const char *key);
/* Same, with an explicit key length (key need not be NUL-terminated there). */
size_t *ana_map_getn(const struct ana_map *m, const char *key, size_t len);

/* Read the target into a->entries (and a->layers for images). */
int ana_read(const char *path, const struct lp_ana_opts *o, struct lp_analysis *a);

/* Python distribution RECORD files captured while reading: path -> text. */
struct ana_record {
	char *path;		/* ".../<name>-<ver>.dist-info/RECORD" */
	char *text;
};

/* Hung off lp_analysis while computing (opaque to users). */
struct ana_extra {
	struct ana_record *records;
	size_t n_records, cap_records;
};

int ana_add_record(struct lp_analysis *a, const char *path, const char *text, size_t len);

/* Fill a minimal binfo from the first bytes when the full reader has nothing. */
struct lp_binfo *ana_binfo_from_head(const uint8_t *p, size_t n);


/* Size of one zip entry's headers (local + central) for the estimate. */
uint64_t ana_zip_overhead(const char *path, int kind);

/*
 * The package group of every entry, as the contributors count them:
 * keys[i] (malloc'd; NULL for directories) and kinds[i] ("node", "python",
 * "vendor", "top"). Both arrays hold a->entries.n slots. For the treemap.
 */
int ana_entry_groups(const struct lp_analysis *a, char **keys, const char **kinds);

/* The treemap data: one group per package, then the directories in it (bounded size). layer < 0: all. */
cJSON *ana_treemap_json(const struct lp_analysis *a, int layer);
