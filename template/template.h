/* SPDX-License-Identifier: MIT */
/*
 * Deployment templates: a SAM/CloudFormation template (template.yaml,
 * template.json) or a Serverless Framework serverless.yml, read with
 * libyaml into the list of functions and local layers it deploys, each with
 * what pack needs (source directory, handler, runtime, architecture, layers,
 * include/exclude rules). Nothing is guessed: a value the tool cannot
 * resolve locally (a parameter, another resource's attribute, an S3
 * location) is an error finding naming the file and the key.
 *
 * A template is untrusted input: the document size, nesting depth, node
 * count and alias expansion are all capped (LP_TPL_MAX_*), so a
 * "billion laughs" file is refused after a bounded amount of work.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "core/entry.h"
#include "core/report.h"
#include "core/util.h"

#define LP_TPL_MAX_BYTES	(4u << 20)	/* document size */
#define LP_TPL_MAX_DEPTH	64		/* nested collections */
#define LP_TPL_MAX_NODES	200000		/* nodes as parsed */
#define LP_TPL_MAX_EXPANDED	1000000		/* nodes with every alias expanded */
#define LP_TPL_MAX_ANCHORS	4096
/*
 * What one template may ask for: a value shared by every function (Globals,
 * service-wide patterns) is copied into each spec, so these bound the
 * copies too (CloudFormation itself allows 500 resources a stack).
 */
#define LP_TPL_MAX_SPECS	1000		/* functions and layers */
#define LP_TPL_MAX_RULES	100000		/* include/exclude rules over all specs */
#define LP_TPL_MAX_PATTERN_LEN	255		/* bytes of one pattern */

enum lp_tpl_format {
	LP_TPL_SAM = 0,		/* SAM or plain CloudFormation (Resources) */
	LP_TPL_SERVERLESS,	/* serverless.yml (service / provider / functions) */
};

enum lp_tpl_kind {
	LP_TPL_FUNCTION = 0,	/* a zip function */
	LP_TPL_LAYER,		/* a local layer */
	LP_TPL_IMAGE,		/* PackageType Image: built by `container`, not packed */
	LP_TPL_PREBUILT,	/* code already in S3 (or a serverless package.artifact): not packed */
};

struct lp_tpl_spec {
	char *id;		/* logical ID (SAM) or function/layer name (serverless) */
	enum lp_tpl_kind kind;
	char *source;		/* source path as written, relative to the template's directory */
	char *key;		/* where source came from, "Resources.Fn.Properties.CodeUri", for messages */
	char *handler;		/* NULL for layers */
	char *handler_key;	/* where the handler came from, for messages */
	char *runtime;		/* NULL if none (layers without CompatibleRuntimes) */
	char *arch;		/* "x86_64" or "arm64"; NULL: not stated (layers) */
	char *arch_from;	/* the key the architecture came from, or "default" */
	struct lp_strv layers;	/* ids of local layer specs this function uses */
	struct lp_strv excludes;	/* gitignore-like rules, in order (serverless patterns) */
	bool ok;		/* false: an error finding was recorded for it; not packable */
	size_t finding0, finding1;	/* its findings in the parse's report: [finding0, finding1) */
};

struct lp_template {
	enum lp_tpl_format format;
	char *name;		/* the template as given, for messages */
	struct lp_tpl_spec *specs;
	size_t n;
};

/*
 * Parse a template held in memory (name is used in messages only). Problems
 * with one function (an unresolvable CodeUri, a missing Handler) are error
 * findings in rep (code template-unresolved, template-missing,
 * template-value) and that spec's ok is false; the rest are still read.
 * A document that is not YAML, too big or too deep, or neither a SAM nor a
 * serverless template fails with -LP_E_INPUT and one error finding
 * (template-invalid) naming the file and the line. rep must be set.
 */
int lp_template_parse(const char *name, const char *buf, size_t len, struct lp_report *rep,
		      struct lp_template **ret);

/* Read path (at most LP_TPL_MAX_BYTES) and parse it. */
int lp_template_load(const char *path, struct lp_report *rep, struct lp_template **ret);

void lp_template_free(struct lp_template *t);

/* The spec with this id, or NULL. */
struct lp_tpl_spec *lp_template_find(const struct lp_template *t, const char *id);

/*
 * Does the artifact hold the handler? Python "a.b.func": a/b.py (or
 * a/b/__init__.py) that defines func (def, assignment or import, a textual
 * check); Node "dir/file.func": dir/file.js, .mjs or .cjs; Ruby
 * "file.method": file.rb. Java, .NET and provided.* runtimes are not
 * checked (info finding handler-not-checked). A missing file or
 * definition is an error finding handler-missing naming the template,
 * the function and the file looked for. Returns 0 or -ENOMEM.
 */
int lp_template_check_handler(const struct lp_template *t, const struct lp_tpl_spec *s,
			      const struct lp_entries *l, struct lp_report *rep);
