/* SPDX-License-Identifier: MIT */
/*
 * SAM/CloudFormation and serverless.yml readers: the YAML tree (yaml.c)
 * becomes function and layer specs. Only what a template states plainly is
 * taken; an intrinsic function, a parameter or a ${variable} where a path,
 * handler or runtime should be is reported with the file, line and key.
 */
#include "template/internal.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "core/limits.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct ctx {
	struct lp_template *t;
	size_t n0, f0;		/* specs and findings before the resource being read */
	size_t rules;		/* include/exclude rules in all specs (LP_TPL_MAX_RULES) */
	struct lp_report *rep;
	const struct ynode *root;
	const struct ynode *resources;	/* SAM */
	const struct ynode *globals;	/* SAM Globals.Function */
	const struct ynode *sls_layers;	/* serverless top-level layers */
};

/* A problem with the template: "<file>:<line>: <key>: <message>", one line. */
static int problem(struct ctx *c, enum lp_severity sev, const char *code, const struct ynode *at, const char *key,
		   const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int problem(struct ctx *c, enum lp_severity sev, const char *code, const struct ynode *at, const char *key,
		   const char *fmt, ...)
{
	char msg[768], where[64] = "";
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (at)
		snprintf(where, sizeof(where), ":%zu", at->line);
	if (sev == LP_SEV_ERROR)
		return lp_report_problem(c->rep, 0, -LP_E_INPUT, code, NULL, "%s%s: %s%s%s", c->t->name, where,
					 key ? key : "", key ? ": " : "", msg);
	if (!c->rep)
		return 0;
	return lp_report_finding(c->rep, sev, code, NULL, "%s%s: %s%s%s", c->t->name, where, key ? key : "",
				 key ? ": " : "", msg);
}

/* ---- values ------------------------------------------------------------ */

static bool is_local_tag(const char *tag)
{
	return tag && tag[0] == '!' && tag[1];
}

/* "!Ref X", "Fn::Sub", "Ref X": an intrinsic function, or NULL if n is not one. */
static const char *intrinsic(const struct ynode *n, char *buf, size_t len)
{
	if (!n)
		return NULL;
	if (is_local_tag(n->tag)) {
		if (n->type == Y_SCALAR)
			snprintf(buf, len, "%s %.80s", n->tag, n->val);
		else
			snprintf(buf, len, "%s", n->tag);
		return buf;
	}
	if (n->type == Y_MAP && n->n == 2 && n->kids[0]->type == Y_SCALAR) {
		const char *k = n->kids[0]->val;

		if (!strcmp(k, "Ref") || !strcmp(k, "Condition") || !strncmp(k, "Fn::", 4)) {
			if (!strcmp(k, "Ref") && n->kids[1]->type == Y_SCALAR)
				snprintf(buf, len, "Ref %.80s", n->kids[1]->val);
			else
				snprintf(buf, len, "%.80s", k);
			return buf;
		}
	}
	return NULL;
}

/* The logical ID a !Ref / {Ref: X} names, else NULL. */
static const char *ref_target(const struct ynode *n)
{
	if (!n)
		return NULL;
	if (n->type == Y_SCALAR && n->tag && !strcmp(n->tag, "!Ref"))
		return strlen(n->val) == n->len ? n->val : NULL;
	if (n->type == Y_MAP && n->n == 2 && n->kids[0]->type == Y_SCALAR && !strcmp(n->kids[0]->val, "Ref"))
		return yscalar(n->kids[1]);
	return NULL;
}

static bool truthy(const struct ynode *n)
{
	const char *s = yscalar(n);

	return s && (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on"));
}

/*
 * A plain string value, or NULL with a problem recorded: an intrinsic, a
 * serverless ${variable}, a list or a map where text belongs.
 */
static const char *text(struct ctx *c, const struct ynode *n, const char *key, const char *what)
{
	char buf[128];
	const char *s, *in = intrinsic(n, buf, sizeof(buf));

	if (in) {
		problem(c, LP_SEV_ERROR, "template-unresolved", n, key,
			"%s cannot be resolved without deploying (a parameter, a condition or another resource's "
			"attribute); write the %s there", in, what);
		return NULL;
	}
	s = yscalar(n);
	if (!s) {
		problem(c, LP_SEV_ERROR, "template-value", n, key, "expected a %s (a string)%s", what,
			n->type == Y_SCALAR ? ", found a NUL byte or an unknown tag" : "");
		return NULL;
	}
	if (c->t->format == LP_TPL_SERVERLESS && strstr(s, "${")) {
		problem(c, LP_SEV_ERROR, "template-unresolved", n, key,
			"'%.120s' uses a Serverless variable, which only the framework resolves; write the %s there",
			s, what);
		return NULL;
	}
	if (!*s) {
		problem(c, LP_SEV_ERROR, "template-value", n, key, "the %s is empty", what);
		return NULL;
	}
	return s;
}

/*
 * An ID names a file in the output directory: letters, digits, '-', '_'
 * and '.', not starting with '.', at most 128 bytes (CloudFormation's own
 * logical IDs are alphanumeric; Serverless adds '-' and '_').
 */
static bool valid_id(const char *id)
{
	size_t n = strlen(id);

	if (!n || n > 128 || id[0] == '.')
		return false;
	for (const char *p = id; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
			return false;
	return true;
}

static int bad_id(struct ctx *c, const struct ynode *at, const char *where, const char *id)
{
	return problem(c, LP_SEV_ERROR, "template-value", at, where,
		       "'%.64s' is not a name lambdapack can give a zip (letters, digits, '-', '_', '.'; "
		       "at most 128); it is not packed", id);
}

static int spec_new(struct ctx *c, const char *id, enum lp_tpl_kind kind, struct lp_tpl_spec **ret)
{
	struct lp_template *t = c->t;
	struct lp_tpl_spec *v;

	if (t->n >= LP_TPL_MAX_SPECS) {
		int r = problem(c, LP_SEV_ERROR, "template-invalid", NULL, NULL, "more than %d functions and layers",
				LP_TPL_MAX_SPECS);

		return r < 0 ? r : -LP_E_INPUT;
	}
	v = realloc(t->specs, (t->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	t->specs = v;
	memset(&v[t->n], 0, sizeof(v[t->n]));
	v[t->n].kind = kind;
	v[t->n].ok = true;
	if (!(v[t->n].id = strdup(id)))
		return -ENOMEM;
	*ret = &v[t->n++];
	return 0;
}

static int set(char **dst, const char *s)
{
	free(*dst);
	*dst = s ? strdup(s) : NULL;
	return s && !*dst ? -ENOMEM : 0;
}

static int setf(char **dst, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int setf(char **dst, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return set(dst, buf);
}

/* An architecture value ("x86_64", "arm64"); records a problem and returns NULL otherwise. */
static const char *arch_value(struct ctx *c, const struct ynode *n, const char *key)
{
	const char *s;

	if (n && n->type == Y_SEQ && !n->tag) {
		if (n->n != 1) {
			problem(c, LP_SEV_ERROR, "template-value", n, key, "Lambda takes exactly one architecture, not %zu",
				n->n);
			return NULL;
		}
		n = n->kids[0];
	}
	s = text(c, n, key, "architecture");
	if (s && strcmp(s, "x86_64") && strcmp(s, "arm64")) {
		problem(c, LP_SEV_ERROR, "template-value", n, key, "'%.64s' is not a Lambda architecture (x86_64, arm64)", s);
		return NULL;
	}
	return s;
}

static const char *runtime_value(struct ctx *c, const struct ynode *n, const char *key)
{
	const char *s = text(c, n, key, "runtime");

	if (s && !lp_runtime_find(s)) {
		problem(c, LP_SEV_ERROR, "template-value", n, key,
			"'%.64s' is not a Lambda runtime lambdapack knows (e.g. python3.12, nodejs20.x, provided.al2023)", s);
		return NULL;
	}
	return s;
}

/* ---- SAM / CloudFormation ------------------------------------------------ */

/* An S3 location: "s3://bucket/key", {Bucket, Key} (SAM) or {S3Bucket, S3Key} (CloudFormation). */
static bool is_s3(const struct ynode *v)
{
	const char *str = yscalar(v);

	if (str)
		return !strncmp(str, "s3://", 5);
	return v && v->type == Y_MAP && !is_local_tag(v->tag) && (ymap_get(v, "Bucket") || ymap_get(v, "S3Bucket"));
}

static bool is_layer_type(const char *type)
{
	return type && (!strcmp(type, "AWS::Serverless::LayerVersion") || !strcmp(type, "AWS::Lambda::LayerVersion"));
}

/* The Properties value for key, else the Globals.Function one; *from names where it was found. */
static const struct ynode *prop(struct ctx *c, const struct ynode *props, const struct ynode *globals, const char *id,
				const char *key, char *from, size_t len)
{
	const struct ynode *v = ymap_get(props, key);

	if (v) {
		snprintf(from, len, "Resources.%s.Properties.%s", id, key);
		return v;
	}
	v = ymap_get(globals, key);
	if (v)
		snprintf(from, len, "Globals.Function.%s", key);
	else
		snprintf(from, len, "Resources.%s.Properties.%s", id, key);
	return v;
}

static int sam_layers(struct ctx *c, struct lp_tpl_spec *s, const struct ynode *list, const char *key)
{
	char buf[128];
	int r;

	if (!list)
		return 0;
	if (list->type != Y_SEQ || is_local_tag(list->tag)) {
		const char *in = intrinsic(list, buf, sizeof(buf));

		return problem(c, LP_SEV_WARNING, "template-unresolved", list, key,
			       "%s cannot be resolved without deploying; the layers' size is not counted",
			       in ? in : "not a list");
	}
	if (list->n > LP_MAX_LAYERS) {
		s->ok = false;
		return problem(c, LP_SEV_ERROR, "template-value", list, key, "%zu layers: a function takes at most %d",
			       list->n, LP_MAX_LAYERS);
	}
	for (size_t i = 0; i < list->n; i++) {
		const struct ynode *it = list->kids[i];
		const char *ref = ref_target(it), *type;
		const struct ynode *res;

		if (yscalar(it)) {
			r = problem(c, LP_SEV_INFO, "layer-external", it, key,
				    "%.160s is not a layer of this template; its size is not counted", it->val);
		} else if (ref && (res = ymap_get(c->resources, ref)) && is_layer_type(type = yscalar(ymap_get(res, "Type")))) {
			r = lp_strv_push(&s->layers, ref);
		} else {
			const char *in = intrinsic(it, buf, sizeof(buf));

			r = problem(c, LP_SEV_WARNING, "template-unresolved", it, key,
				    "%s is not a local layer and cannot be resolved without deploying; its size is not counted",
				    in ? in : "this item");
		}
		if (r < 0)
			return r;
	}
	return 0;
}

static int sam_function(struct ctx *c, const char *id, const struct ynode *res, bool sam)
{
	const struct ynode *props = ymap_get(res, "Properties"), *g = sam ? c->globals : NULL, *v;
	struct lp_tpl_spec *s;
	char key[512], key2[512];
	const char *str;
	int r;

	if (props && props->type != Y_MAP)
		return problem(c, LP_SEV_ERROR, "template-value", props, NULL, "Resources.%s.Properties is not a map", id);
	v = prop(c, props, g, id, "PackageType", key, sizeof(key));
	if (v && (str = yscalar(v)) && !strcmp(str, "Image")) {
		const struct ynode *md = ymap_get(res, "Metadata");
		const char *ctxdir = yscalar(ymap_get(md, "DockerContext")), *df = yscalar(ymap_get(md, "Dockerfile"));

		if ((r = spec_new(c, id, LP_TPL_IMAGE, &s)) < 0)
			return r;
		if (ctxdir && (r = set(&s->source, ctxdir)) < 0)
			return r;
		if ((r = setf(&s->key, "Resources.%s.Metadata.DockerContext", id)) < 0)
			return r;
		return problem(c, LP_SEV_INFO, "image-function", v, key,
			       "%s is a container image function (DockerContext %.200s, Dockerfile %.200s): build it with "
			       "`lambdapack container`; it is not packed as a zip", id, ctxdir ? ctxdir : "not given",
			       df ? df : "Dockerfile");
	}
	/* sam build compiles these (esbuild, makefile ...): the directory is not what Lambda runs. */
	if ((str = yscalar(ymap_get(ymap_get(res, "Metadata"), "BuildMethod"))) &&
	    (r = problem(c, LP_SEV_WARNING, "build-method", ymap_get(ymap_get(res, "Metadata"), "BuildMethod"),
			 NULL, "Resources.%s.Metadata.BuildMethod: %.64s: `sam build` transforms this source; "
			 "lambdapack packs the CodeUri as it is", id, str)) < 0)
		return r;
	v = prop(c, props, g, id, sam ? "InlineCode" : "Code", key, sizeof(key));
	if (v && (sam || ymap_get(v, "ZipFile")))
		return problem(c, LP_SEV_INFO, "inline-code", v, key, "%s has inline code: nothing to pack", id);

	if ((r = spec_new(c, id, LP_TPL_FUNCTION, &s)) < 0)
		return r;
	v = prop(c, props, g, id, sam ? "CodeUri" : "Code", key, sizeof(key));
	if ((r = set(&s->key, key)) < 0)
		return r;
	if (!v) {
		s->ok = false;
		r = problem(c, LP_SEV_ERROR, "template-missing", res, key, "function %s has no %s: nothing says what to pack",
			    id, sam ? "CodeUri" : "Code");
	} else if (is_s3(v)) {
		/* Already built and uploaded: there is nothing local to pack, and nothing wrong. */
		s->kind = LP_TPL_PREBUILT;
		return problem(c, LP_SEV_INFO, "prebuilt-artifact", v, key,
			       "%s is already in S3: there is nothing local to pack", id);
	} else if (v->type == Y_MAP && !intrinsic(v, key2, sizeof(key2))) {
		s->ok = false;
		r = problem(c, LP_SEV_ERROR, "template-value", v, key, "expected a local path (or an S3 location)");
	} else if (!(str = text(c, v, key, "path"))) {
		s->ok = false;
		r = 0;
	} else {
		r = set(&s->source, str);
	}
	if (r < 0)
		return r;

	v = prop(c, props, g, id, "Handler", key, sizeof(key));
	if ((r = set(&s->handler_key, key)) < 0)
		return r;
	if (!v) {
		s->ok = false;
		r = problem(c, LP_SEV_ERROR, "template-missing", res, key, "function %s has no Handler", id);
	} else if (!(str = text(c, v, key, "handler"))) {
		s->ok = false;
	} else if ((r = set(&s->handler, str)) < 0) {
		return r;
	}
	if (r < 0)
		return r;

	v = prop(c, props, g, id, "Runtime", key, sizeof(key));
	if (!v) {
		s->ok = false;
		r = problem(c, LP_SEV_ERROR, "template-missing", res, key, "function %s has no Runtime", id);
	} else if (!(str = runtime_value(c, v, key))) {
		s->ok = false;
	} else if ((r = set(&s->runtime, str)) < 0) {
		return r;
	}
	if (r < 0)
		return r;

	v = prop(c, props, g, id, "Architectures", key, sizeof(key));
	if (!v) {
		/* CloudFormation's default, stated, so a tree of arm64 binaries is not packed as arm64. */
		if ((r = set(&s->arch, "x86_64")) < 0 || (r = set(&s->arch_from, "the template's default")) < 0)
			return r;
	} else if (!(str = arch_value(c, v, key))) {
		s->ok = false;
	} else if ((r = set(&s->arch, str)) < 0 || (r = set(&s->arch_from, key)) < 0) {
		return r;
	}

	/* SAM appends a function's list to the Globals one. */
	if (g && ymap_get(g, "Layers") && (r = sam_layers(c, s, ymap_get(g, "Layers"), "Globals.Function.Layers")) < 0)
		return r;
	snprintf(key, sizeof(key), "Resources.%s.Properties.Layers", id);
	return sam_layers(c, s, ymap_get(props, "Layers"), key);
}

static int sam_layer(struct ctx *c, const char *id, const struct ynode *res, bool sam)
{
	const struct ynode *props = ymap_get(res, "Properties"), *v;
	struct lp_tpl_spec *s;
	char key[512];
	const char *str;
	int r;

	snprintf(key, sizeof(key), "Resources.%s.Properties.%s", id, sam ? "ContentUri" : "Content");
	v = ymap_get(props, sam ? "ContentUri" : "Content");
	if ((r = spec_new(c, id, LP_TPL_LAYER, &s)) < 0 || (r = set(&s->key, key)) < 0)
		return r;
	if (!v) {
		s->ok = false;
		return problem(c, LP_SEV_ERROR, "template-missing", res, key, "layer %s has no %s", id,
			       sam ? "ContentUri" : "Content");
	}
	if (is_s3(v)) {
		s->kind = LP_TPL_PREBUILT;
		return problem(c, LP_SEV_INFO, "prebuilt-artifact", v, key,
			       "layer %s is already in S3: there is nothing local to pack", id);
	}
	if (v->type == Y_MAP && !intrinsic(v, (char[128]){ 0 }, 128)) {
		s->ok = false;
		return problem(c, LP_SEV_ERROR, "template-value", v, key, "expected a local path (or an S3 location)");
	}
	if (!(str = text(c, v, key, "path"))) {
		s->ok = false;
		return 0;
	}
	if ((r = set(&s->source, str)) < 0)
		return r;
	/* The first compatible runtime and architecture are what the layer is checked against. */
	v = ymap_get(props, "CompatibleRuntimes");
	if (v && v->type == Y_SEQ && v->n && yscalar(v->kids[0]) && lp_runtime_find(yscalar(v->kids[0])) &&
	    (r = set(&s->runtime, yscalar(v->kids[0]))) < 0)
		return r;
	v = ymap_get(props, "CompatibleArchitectures");
	if (v && v->type == Y_SEQ && v->n && (str = yscalar(v->kids[0])) && (!strcmp(str, "x86_64") || !strcmp(str, "arm64"))) {
		snprintf(key, sizeof(key), "Resources.%s.Properties.CompatibleArchitectures", id);
		if ((r = set(&s->arch, str)) < 0 || (r = set(&s->arch_from, key)) < 0)
			return r;
	}
	return 0;
}

/* Tie the findings recorded while reading one resource to the specs it made. */
static void mark(struct ctx *c)
{
	size_t f1 = c->rep ? c->rep->n_findings : 0;

	for (size_t i = c->n0; i < c->t->n; i++) {
		c->t->specs[i].finding0 = c->f0;
		c->t->specs[i].finding1 = f1;
	}
}

static void begin(struct ctx *c)
{
	c->n0 = c->t->n;
	c->f0 = c->rep ? c->rep->n_findings : 0;
}

static int read_sam(struct ctx *c)
{
	const struct ynode *res = c->resources;
	int r = 0;

	if (res->type != Y_MAP)
		return problem(c, LP_SEV_ERROR, "template-invalid", res, "Resources", "is not a map");
	c->globals = ymap_get(ymap_get(c->root, "Globals"), "Function");
	if (c->globals && c->globals->type != Y_MAP)
		return problem(c, LP_SEV_ERROR, "template-invalid", c->globals, "Globals.Function", "is not a map");
	for (size_t i = 0; r >= 0 && i + 1 < res->n; i += 2) {
		const char *id = yscalar(res->kids[i]);
		const struct ynode *v = res->kids[i + 1];
		const char *type = yscalar(ymap_get(v, "Type"));

		if (!id || !type)
			continue;
		if (!valid_id(id) && (!strcmp(type, "AWS::Serverless::Function") || !strcmp(type, "AWS::Lambda::Function") ||
				      is_layer_type(type))) {
			r = bad_id(c, res->kids[i], "Resources", id);
			continue;
		}
		begin(c);
		if (!strcmp(type, "AWS::Serverless::Function") || !strcmp(type, "AWS::Lambda::Function"))
			r = sam_function(c, id, v, type[5] == 'S');
		else if (is_layer_type(type))
			r = sam_layer(c, id, v, type[5] == 'S');
		mark(c);
	}
	return r;
}

/* ---- serverless.yml ------------------------------------------------------ */

/*
 * Serverless patterns ("!node_modules/ **", "src/ **", without the spaces) run in order over the
 * service directory, "!" excluding; the source walk's rules are gitignore's
 * (last match wins, "!" re-includes), so each flips its sign and is
 * anchored at the root. A re-included path also re-includes its parent
 * directories, which an earlier "!**" would otherwise hide from the walk.
 */
/* Service-wide patterns are copied into every function: the total is what is bounded. */
static int push_rule(struct ctx *c, struct lp_tpl_spec *s, const char *rule)
{
	if (++c->rules > LP_TPL_MAX_RULES) {
		int r = problem(c, LP_SEV_ERROR, "template-invalid", NULL, NULL,
				"more than %d include/exclude rules over all functions", LP_TPL_MAX_RULES);

		return r < 0 ? r : -LP_E_INPUT;
	}
	return lp_strv_push(&s->excludes, rule);
}

static int add_pattern(struct ctx *c, struct lp_tpl_spec *s, const char *pat, bool include)
{
	char buf[1200];
	size_t n;
	int r;

	while (pat[0] == '.' && pat[1] == '/')
		pat += 2;
	if (!*pat)
		return 0;
	if (include) {
		const char *p = pat;

		while ((p = strchr(p, '/'))) {
			n = (size_t)(p - pat);

			if (memchr(pat, '*', n) || memchr(pat, '?', n) || memchr(pat, '[', n))
				break;
			snprintf(buf, sizeof(buf), "!/%.*s/", (int)n, pat);
			if ((r = push_rule(c, s, buf)) < 0)
				return r;
			p++;
		}
	}
	/* "dir/" + "**" leaves out the directory itself too, not an empty dir/ in the zip. */
	n = strlen(pat);
	if (!include && n > 3 && n < 1000 && !strcmp(pat + n - 3, "/**")) {
		snprintf(buf, sizeof(buf), "/%.*s/", (int)(n - 3), pat);
		if ((r = push_rule(c, s, buf)) < 0)
			return r;
	}
	snprintf(buf, sizeof(buf), "%s/%s", include ? "!" : "", pat);
	return push_rule(c, s, buf);
}

static int sls_package(struct ctx *c, struct lp_tpl_spec *s, const struct ynode *pkg, const char *key)
{
	static const char *const lists[] = { "exclude", "include", "patterns" };
	char k[512];
	int r;

	if (!pkg)
		return 0;
	/* The older include/exclude: include wins over exclude, so it comes after. */
	for (size_t l = 0; l < 3; l++) {
		const struct ynode *v = ymap_get(pkg, lists[l]);

		if (!v)
			continue;
		snprintf(k, sizeof(k), "%s.package.%s", key, lists[l]);
		if (v->type != Y_SEQ) {
			s->ok = false;
			problem(c, LP_SEV_ERROR, "template-value", v, k, "expected a list of patterns");
			continue;
		}
		for (size_t i = 0; i < v->n; i++) {
			const char *p = text(c, v->kids[i], k, "pattern");

			if (!p) {
				s->ok = false;
				continue;
			}
			if (strlen(p) > LP_TPL_MAX_PATTERN_LEN) {
				s->ok = false;
				problem(c, LP_SEV_ERROR, "template-value", v->kids[i], k, "a pattern longer than %d bytes",
					LP_TPL_MAX_PATTERN_LEN);
				continue;
			}
			if (l == 2) {
				bool neg = p[0] == '!';

				r = add_pattern(c, s, p + neg, !neg);
			} else {
				r = add_pattern(c, s, p, l == 1);
			}
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* The CloudFormation name Serverless gives layer NAME: "NameLambdaLayer" ('-' -> Dash, '_' -> Underscore). */
static void sls_layer_logical(const char *name, char *buf, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; name[i] && o + 16 < len; i++) {
		if (name[i] == '-')
			o += (size_t)snprintf(buf + o, len - o, "Dash");
		else if (name[i] == '_')
			o += (size_t)snprintf(buf + o, len - o, "Underscore");
		else
			buf[o++] = i == 0 ? (char)toupper((unsigned char)name[i]) : name[i];
	}
	snprintf(buf + o, len - o, "LambdaLayer");
}

static int sls_fn_layers(struct ctx *c, struct lp_tpl_spec *s, const struct ynode *list, const char *key)
{
	char buf[128], logical[512];
	int r = 0;

	if (!list)
		return 0;
	if (list->type != Y_SEQ)
		return problem(c, LP_SEV_WARNING, "template-unresolved", list, key,
			       "not a list; the layers' size is not counted");
	if (list->n > LP_MAX_LAYERS) {
		s->ok = false;
		return problem(c, LP_SEV_ERROR, "template-value", list, key, "%zu layers: a function takes at most %d",
			       list->n, LP_MAX_LAYERS);
	}
	for (size_t i = 0; i < list->n && r >= 0; i++) {
		const struct ynode *it = list->kids[i];
		const char *ref = ref_target(it), *hit = NULL;

		if (yscalar(it) && !strstr(it->val, "${")) {
			r = problem(c, LP_SEV_INFO, "layer-external", it, key,
				    "%.160s is not a layer of this service; its size is not counted", it->val);
			continue;
		}
		for (size_t j = 0; ref && c->sls_layers && c->sls_layers->type == Y_MAP && j + 1 < c->sls_layers->n; j += 2) {
			const char *name = yscalar(c->sls_layers->kids[j]);

			if (!name)
				continue;
			sls_layer_logical(name, logical, sizeof(logical));
			if (!strcmp(logical, ref))
				hit = name;
		}
		if (hit) {
			r = lp_strv_push(&s->layers, hit);
		} else {
			const char *in = intrinsic(it, buf, sizeof(buf));

			r = problem(c, LP_SEV_WARNING, "template-unresolved", it, key,
				    "%.160s is not a layer of this service and cannot be resolved locally; its size is not counted",
				    in ? in : yscalar(it) ? it->val : "this item");
		}
	}
	return r;
}

static int sls_function(struct ctx *c, const char *id, const struct ynode *fn, const struct ynode *provider,
			const struct ynode *pkg)
{
	const struct ynode *v, *fpkg = ymap_get(fn, "package");
	struct lp_tpl_spec *s;
	char key[512];
	const char *str;
	int r;

	if (fn->type != Y_MAP)
		return problem(c, LP_SEV_ERROR, "template-value", fn, NULL, "functions.%s is not a map", id);
	if ((v = ymap_get(fn, "image"))) {
		if ((r = spec_new(c, id, LP_TPL_IMAGE, &s)) < 0)
			return r;
		snprintf(key, sizeof(key), "functions.%s.image", id);
		return problem(c, LP_SEV_INFO, "image-function", v, key,
			       "%s is a container image function: build it with `lambdapack container`; it is not packed as a zip",
			       id);
	}
	if ((v = ymap_get(fpkg, "artifact"))) {
		if ((r = spec_new(c, id, LP_TPL_PREBUILT, &s)) < 0)
			return r;
		return problem(c, LP_SEV_INFO, "prebuilt-artifact", v, NULL,
			       "functions.%s.package.artifact: %s ships a prebuilt artifact: there is nothing to pack", id, id);
	}
	if ((r = spec_new(c, id, LP_TPL_FUNCTION, &s)) < 0)
		return r;
	/* The service directory is the source; the artifact is the patterns' selection of it. */
	snprintf(key, sizeof(key), "functions.%s", id);
	if ((r = set(&s->source, ".")) < 0 || (r = set(&s->key, key)) < 0)
		return r;
	snprintf(key, sizeof(key), "functions.%s.handler", id);
	if ((r = set(&s->handler_key, key)) < 0)
		return r;
	if (!(v = ymap_get(fn, "handler"))) {
		s->ok = false;
		if ((r = problem(c, LP_SEV_ERROR, "template-missing", fn, key, "function %s has no handler", id)) < 0)
			return r;
	} else if (!(str = text(c, v, key, "handler"))) {
		s->ok = false;
	} else if ((r = set(&s->handler, str)) < 0) {
		return r;
	}
	snprintf(key, sizeof(key), "functions.%s.runtime", id);
	v = ymap_get(fn, "runtime");
	if (!v && (v = ymap_get(provider, "runtime")))
		snprintf(key, sizeof(key), "provider.runtime");
	if (!v) {
		s->ok = false;
		if ((r = problem(c, LP_SEV_ERROR, "template-missing", fn, key, "function %s has no runtime (nor provider.runtime)",
				 id)) < 0)
			return r;
	} else if (!(str = runtime_value(c, v, key))) {
		s->ok = false;
	} else if ((r = set(&s->runtime, str)) < 0) {
		return r;
	}
	snprintf(key, sizeof(key), "functions.%s.architecture", id);
	v = ymap_get(fn, "architecture");
	if (!v && (v = ymap_get(provider, "architecture")))
		snprintf(key, sizeof(key), "provider.architecture");
	if (!v) {
		if ((r = set(&s->arch, "x86_64")) < 0 || (r = set(&s->arch_from, "the framework's default")) < 0)
			return r;
	} else if (!(str = arch_value(c, v, key))) {
		s->ok = false;
	} else if ((r = set(&s->arch, str)) < 0 || (r = set(&s->arch_from, key)) < 0) {
		return r;
	}
	/*
	 * What the framework leaves out of every function: its own
	 * directories, the configuration file and the layers' directories.
	 */
	if ((r = push_rule(c, s, "/.serverless/")) < 0 ||
	    (r = push_rule(c, s, "/.serverless_plugins/")) < 0)
		return r;
	{
		const char *base = strrchr(c->t->name, '/');

		snprintf(key, sizeof(key), "/%s", base ? base + 1 : c->t->name);
		if ((r = push_rule(c, s, key)) < 0)
			return r;
	}
	for (size_t i = 0; c->sls_layers && c->sls_layers->type == Y_MAP && i + 1 < c->sls_layers->n; i += 2) {
		const char *lp = yscalar(ymap_get(c->sls_layers->kids[i + 1], "path"));
		size_t n;

		if (!lp)
			continue;
		while (lp[0] == '.' && lp[1] == '/')
			lp += 2;
		n = strlen(lp);
		while (n && lp[n - 1] == '/')
			n--;
		if (!n || (n == 1 && lp[0] == '.') || n > 400 || strpbrk(lp, "*?[!"))
			continue;
		snprintf(key, sizeof(key), "/%.*s/", (int)n, lp);
		if ((r = push_rule(c, s, key)) < 0)
			return r;
	}
	if ((r = sls_package(c, s, pkg, "")) < 0)
		return r;
	/* A function's own patterns count only when it is packaged by itself. */
	if (truthy(ymap_get(pkg, "individually")) || truthy(ymap_get(fpkg, "individually"))) {
		snprintf(key, sizeof(key), "functions.%s", id);
		if ((r = sls_package(c, s, fpkg, key)) < 0)
			return r;
	}
	snprintf(key, sizeof(key), "functions.%s.layers", id);
	v = ymap_get(fn, "layers");
	if (!v && (v = ymap_get(provider, "layers")))
		snprintf(key, sizeof(key), "provider.layers");
	return sls_fn_layers(c, s, v, key);
}

static int sls_layer(struct ctx *c, const char *id, const struct ynode *l)
{
	const struct ynode *v;
	struct lp_tpl_spec *s;
	char key[512];
	const char *str;
	int r;

	if ((r = spec_new(c, id, LP_TPL_LAYER, &s)) < 0)
		return r;
	snprintf(key, sizeof(key), "layers.%s.path", id);
	if ((r = set(&s->key, key)) < 0)
		return r;
	if (!(v = ymap_get(l, "path"))) {
		s->ok = false;
		return problem(c, LP_SEV_ERROR, "template-missing", l, key, "layer %s has no path", id);
	}
	if (!(str = text(c, v, key, "path"))) {
		s->ok = false;
		return 0;
	}
	if ((r = set(&s->source, str)) < 0)
		return r;
	v = ymap_get(l, "compatibleRuntimes");
	if (v && v->type == Y_SEQ && v->n && yscalar(v->kids[0]) && lp_runtime_find(yscalar(v->kids[0])) &&
	    (r = set(&s->runtime, yscalar(v->kids[0]))) < 0)
		return r;
	v = ymap_get(l, "compatibleArchitectures");
	if (v && v->type == Y_SEQ && v->n && (str = yscalar(v->kids[0])) && (!strcmp(str, "x86_64") || !strcmp(str, "arm64"))) {
		snprintf(key, sizeof(key), "layers.%s.compatibleArchitectures", id);
		if ((r = set(&s->arch, str)) < 0 || (r = set(&s->arch_from, key)) < 0)
			return r;
	}
	snprintf(key, sizeof(key), "layers.%s", id);
	return sls_package(c, s, ymap_get(l, "package"), key);
}

static int read_serverless(struct ctx *c)
{
	const struct ynode *provider = ymap_get(c->root, "provider"), *pkg = ymap_get(c->root, "package");
	const struct ynode *fns = ymap_get(c->root, "functions");
	int r = 0;

	c->sls_layers = ymap_get(c->root, "layers");
	if (provider && provider->type != Y_MAP)
		return problem(c, LP_SEV_ERROR, "template-invalid", provider, "provider", "is not a map");
	if (pkg && pkg->type != Y_MAP)
		return problem(c, LP_SEV_ERROR, "template-invalid", pkg, "package", "is not a map");
	if (pkg && ymap_get(pkg, "artifact"))
		return problem(c, LP_SEV_INFO, "prebuilt-artifact", ymap_get(pkg, "artifact"), "package.artifact",
			       "the service ships a prebuilt artifact: there is nothing to pack");
	if (c->sls_layers && c->sls_layers->type == Y_MAP)
		for (size_t i = 0; r >= 0 && i + 1 < c->sls_layers->n; i += 2) {
			const char *id = yscalar(c->sls_layers->kids[i]);

			if (id && !valid_id(id))
				r = bad_id(c, c->sls_layers->kids[i], "layers", id);
			else if (id && c->sls_layers->kids[i + 1]->type == Y_MAP) {
				begin(c);
				r = sls_layer(c, id, c->sls_layers->kids[i + 1]);
				mark(c);
			}
		}
	if (r >= 0 && fns && fns->type != Y_MAP)
		return problem(c, LP_SEV_ERROR, "template-invalid", fns, "functions", "is not a map");
	for (size_t i = 0; r >= 0 && fns && i + 1 < fns->n; i += 2) {
		const char *id = yscalar(fns->kids[i]);

		if (id && !valid_id(id))
			r = bad_id(c, fns->kids[i], "functions", id);
		else if (id) {
			begin(c);
			r = sls_function(c, id, fns->kids[i + 1], provider, pkg);
			mark(c);
		}
	}
	return r;
}

/* ---- entry points -------------------------------------------------------- */

int lp_template_parse(const char *name, const char *buf, size_t len, struct lp_report *rep,
		      struct lp_template **ret)
{
	struct lp_template *t = calloc(1, sizeof(*t));
	struct ctx c = { .t = t, .rep = rep };
	struct ydoc d;
	int r;

	*ret = NULL;
	if (!t || !(t->name = strdup(name))) {
		free(t);
		return -ENOMEM;
	}
	r = ydoc_parse(&d, buf, len);
	if (r == -LP_E_INPUT) {
		struct ynode at = { .line = d.err_line };

		r = problem(&c, LP_SEV_ERROR, "template-invalid", d.err_line ? &at : NULL, NULL, "%s", d.err);
		if (r == 0)
			r = -LP_E_INPUT;
		goto out;
	}
	if (r < 0)
		goto out;
	c.root = d.root;
	if (d.root->type == Y_MAP && (c.resources = ymap_get(d.root, "Resources"))) {
		t->format = LP_TPL_SAM;
		r = read_sam(&c);
	} else if (d.root->type == Y_MAP && (ymap_get(d.root, "provider") || ymap_get(d.root, "functions"))) {
		t->format = LP_TPL_SERVERLESS;
		r = read_serverless(&c);
	} else {
		r = problem(&c, LP_SEV_ERROR, "template-invalid", d.root, NULL,
			    "neither a SAM/CloudFormation template (no Resources) nor a serverless.yml (no provider or functions)");
		if (r == 0)
			r = -LP_E_INPUT;
	}
out:
	ydoc_free(&d);
	if (r < 0) {
		lp_template_free(t);
		return r;
	}
	*ret = t;
	return 0;
}

int lp_template_load(const char *path, struct lp_report *rep, struct lp_template **ret)
{
	char *buf = NULL;
	size_t len = 0;
	int r;

	*ret = NULL;
	r = lp_read_file(path, LP_TPL_MAX_BYTES, &buf, &len);
	if (r == -EFBIG || r == -E2BIG)
		return lp_fail(r, path, "larger than 4 MiB: not a template this tool reads");
	if (r < 0)
		return r;
	r = lp_template_parse(path, buf, len, rep, ret);
	free(buf);
	return r;
}

void lp_template_free(struct lp_template *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		struct lp_tpl_spec *s = &t->specs[i];

		free(s->id);
		free(s->source);
		free(s->key);
		free(s->handler);
		free(s->handler_key);
		free(s->runtime);
		free(s->arch);
		free(s->arch_from);
		lp_strv_free(&s->layers);
		lp_strv_free(&s->excludes);
	}
	free(t->specs);
	free(t->name);
	free(t);
}

struct lp_tpl_spec *lp_template_find(const struct lp_template *t, const char *id)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->specs[i].id, id))
			return &t->specs[i];
	return NULL;
}
