/* SPDX-License-Identifier: MIT */
/* Inside the template module: the bounded YAML tree the readers walk. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "template/template.h"

enum ytype {
	Y_SCALAR = 0,
	Y_SEQ,
	Y_MAP,
};

struct ynode {
	enum ytype type;
	char *tag;		/* "!Ref", "!Sub", ... or NULL (the default tag) */
	char *val;		/* scalar text (may hold NUL: see len) */
	size_t len;
	bool plain;		/* unquoted scalar */
	size_t line;		/* 1-based */
	struct ynode **kids;	/* sequence items; map: key, value, key, value ... */
	size_t n, cap;
	uint64_t weight;	/* nodes once every alias below is expanded (capped) */
	char *anchor;		/* its anchor, until the node is finished */
};

struct ydoc {
	struct ynode *root;
	struct ynode **all;	/* every node, for freeing (aliases share nodes) */
	size_t n, cap;
	char err[256];		/* why the parse failed */
	size_t err_line;
};

/* Parse one document; on -LP_E_INPUT d->err and d->err_line say why. Free with ydoc_free either way. */
int ydoc_parse(struct ydoc *d, const char *buf, size_t len);
void ydoc_free(struct ydoc *d);

/* The value under key in a map (following "<<" merge keys), or NULL. */
struct ynode *ymap_get(const struct ynode *m, const char *key);

/* The text of an untagged scalar without NUL bytes, else NULL. */
const char *yscalar(const struct ynode *n);
