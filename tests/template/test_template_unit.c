/* SPDX-License-Identifier: MIT */
/* Unit tests for the template readers: specs, caps, patterns, the handler check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/err.h"
#include "template/template.h"

static struct lp_template *parse(const char *text, struct lp_report *rep, int want)
{
	struct lp_template *t = NULL;

	lp_report_init(rep);
	assert_int_equal(lp_template_parse("t.yaml", text, strlen(text), rep, &t), want);
	if (want == 0)
		assert_non_null(t);
	else
		assert_null(t);
	return t;
}

static const struct lp_finding *finding(const struct lp_report *rep, const char *code)
{
	for (size_t i = 0; i < rep->n_findings; i++)
		if (!strcmp(rep->findings[i].code, code))
			return &rep->findings[i];
	return NULL;
}

/* The message of the finding with this code (which must be there). */
static const char *msg(const struct lp_report *rep, const char *code)
{
	const struct lp_finding *f = finding(rep, code);

	if (!f)
		fail_msg("no %s finding", code);
	return f ? f->message : "";
}

static const struct lp_tpl_spec *spec(const struct lp_template *t, const char *id)
{
	const struct lp_tpl_spec *s = lp_template_find(t, id);

	if (!s)
		fail_msg("no spec %s", id);
	return s ? s : &t->specs[0];
}

static void test_sam_globals(void **state)
{
	struct lp_report rep;
	struct lp_template *t = parse(
		"Globals:\n"
		"  Function:\n"
		"    Runtime: python3.12\n"
		"    CodeUri: src/\n"
		"    Layers: [!Ref Deps]\n"
		"Resources:\n"
		"  A:\n"
		"    Type: AWS::Serverless::Function\n"
		"    Properties: {Handler: app.a, Architectures: [arm64], Layers: [{Ref: Deps}, arn:aws:x]}\n"
		"  B:\n"
		"    Type: AWS::Serverless::Function\n"
		"    Properties: {Handler: app.b, CodeUri: other, Runtime: nodejs20.x}\n"
		"  Deps:\n"
		"    Type: AWS::Serverless::LayerVersion\n"
		"    Properties: {ContentUri: deps/, CompatibleRuntimes: [python3.12]}\n",
		&rep, 0);
	struct lp_tpl_spec *a = lp_template_find(t, "A"), *b = lp_template_find(t, "B"), *l = lp_template_find(t, "Deps");

	(void)state;
	assert_int_equal(t->format, LP_TPL_SAM);
	assert_int_equal(t->n, 3);
	assert_true(a && b && l);
	assert_true(a->ok && b->ok && l->ok);
	assert_string_equal(a->source, "src/");
	assert_string_equal(a->key, "Globals.Function.CodeUri");
	assert_string_equal(a->runtime, "python3.12");
	assert_string_equal(a->arch, "arm64");
	assert_string_equal(a->arch_from, "Resources.A.Properties.Architectures");
	/* Globals' list first, then the function's own. */
	assert_int_equal(a->layers.n, 2);
	assert_string_equal(a->layers.v[0], "Deps");
	assert_string_equal(a->layers.v[1], "Deps");
	assert_string_equal(b->source, "other");
	assert_string_equal(b->runtime, "nodejs20.x");
	assert_string_equal(b->arch, "x86_64");
	assert_int_equal(l->kind, LP_TPL_LAYER);
	assert_string_equal(l->runtime, "python3.12");
	assert_non_null(finding(&rep, "layer-external"));
	assert_int_equal(lp_report_count(&rep, LP_SEV_ERROR), 0);
	lp_template_free(t);
	lp_report_free(&rep);
}

static void test_sam_unresolved(void **state)
{
	struct lp_report rep;
	struct lp_template *t = parse(
		"Resources:\n"
		"  A:\n"
		"    Type: AWS::Serverless::Function\n"
		"    Properties:\n"
		"      CodeUri: !Sub '${Dir}/a'\n"
		"      Handler: !Join ['.', [app, h]]\n"
		"      Runtime: python3.12\n"
		"  Ok:\n"
		"    Type: AWS::Serverless::Function\n"
		"    Properties: {CodeUri: ok, Handler: m.h, Runtime: python3.12}\n"
		"  S3:\n"
		"    Type: AWS::Serverless::Function\n"
		"    Properties: {CodeUri: 's3://bucket/fn.zip', Handler: m.h, Runtime: python3.12}\n",
		&rep, 0);
	const struct lp_finding *f = finding(&rep, "template-unresolved");

	(void)state;
	assert_false(spec(t, "A")->ok);
	assert_true(spec(t, "Ok")->ok);
	assert_int_equal(lp_report_count(&rep, LP_SEV_ERROR), 2);
	/* Already in S3: nothing to pack, nothing wrong. */
	assert_int_equal(spec(t, "S3")->kind, LP_TPL_PREBUILT);
	assert_non_null(strstr(msg(&rep, "prebuilt-artifact"),
			       "t.yaml:13: Resources.S3.Properties.CodeUri: S3 is already in S3"));
	assert_non_null(f);
	assert_non_null(strstr(f->message, "t.yaml:5: Resources.A.Properties.CodeUri: !Sub ${Dir}/a"));
	/* A's findings are A's. */
	assert_int_equal(spec(t, "A")->finding1 - spec(t, "A")->finding0, 2);
	assert_int_equal(spec(t, "Ok")->finding1 - spec(t, "Ok")->finding0, 0);
	lp_template_free(t);
	lp_report_free(&rep);
}

static void test_serverless_patterns(void **state)
{
	struct lp_report rep;
	struct lp_template *t = parse(
		"service: s\n"
		"x: &rt {runtime: nodejs20.x}\n"
		"provider: {name: aws, <<: *rt}\n"
		"package:\n"
		"  individually: true\n"
		"  patterns: ['!**', 'src/lib/*.js', '!test/**']\n"
		"functions:\n"
		"  f: {handler: src/f.h, package: {patterns: ['./extra.txt']}}\n"
		"layers:\n"
		"  deps: {path: deps/}\n",
		&rep, 0);
	struct lp_tpl_spec *f = lp_template_find(t, "f");
	static const char *const want[] = {
		"/.serverless/", "/.serverless_plugins/", "/t.yaml", "/deps/",
		"/**", "!/src/", "!/src/lib/", "!/src/lib/*.js", "/test/", "/test/**", "!/extra.txt",
	};

	(void)state;
	assert_int_equal(t->format, LP_TPL_SERVERLESS);
	assert_non_null(f);
	assert_true(f->ok);
	assert_string_equal(f->runtime, "nodejs20.x");
	assert_string_equal(f->source, ".");
	assert_int_equal(f->excludes.n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < f->excludes.n; i++)
		assert_string_equal(f->excludes.v[i], want[i]);
	lp_template_free(t);
	lp_report_free(&rep);
}

static void test_caps(void **state)
{
	struct lp_report rep;
	size_t n = 2 * 200001 + 32;
	char *big = malloc(n), *p = big;

	(void)state;
	/* An alias bomb: 4^10 nodes once expanded, refused at the cap. */
	parse("a: &a [x,x,x,x]\nb: &b [*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c]\n"
	      "e: &e [*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g]\n"
	      "i: &i [*h,*h,*h,*h]\nj: &j [*i,*i,*i,*i]\nk: &k [*j,*j,*j,*j]\nResources: *k\n", &rep, -LP_E_INPUT);
	assert_non_null(strstr(msg(&rep, "template-invalid"), "aliases are expanded"));
	lp_report_free(&rep);
	/* An anchor cannot reach itself: no cycle. */
	parse("Resources: &r {A: *r}\n", &rep, -LP_E_INPUT);
	assert_non_null(strstr(msg(&rep, "template-invalid"), "t.yaml:1: alias *r names no finished anchor"));
	lp_report_free(&rep);
	/* Node count. */
	p += sprintf(p, "Resources: [");
	for (size_t i = 0; i < 200001; i++)
		*p++ = '1', *p++ = ',';
	strcpy(p, "1]\n");
	parse(big, &rep, -LP_E_INPUT);
	assert_non_null(strstr(msg(&rep, "template-invalid"), "more than 200,000 nodes"));
	lp_report_free(&rep);
	free(big);
	/* Syntax errors name the line. */
	parse("Resources:\n  A: [1, 2\n  B: 3\n", &rep, -LP_E_INPUT);
	assert_non_null(strstr(msg(&rep, "template-invalid"), "YAML syntax error"));
	lp_report_free(&rep);
	parse("just: text\n", &rep, -LP_E_INPUT);
	assert_non_null(strstr(msg(&rep, "template-invalid"), "neither a SAM"));
	lp_report_free(&rep);
}

static void test_amplification_caps(void **state)
{
	struct lp_report rep;
	struct lp_template *t;
	size_t cap = 64 * 1024 + 40 * 1001;
	char *buf = malloc(cap), *p = buf;

	(void)state;
	/* More functions than a stack could hold. */
	p += sprintf(p, "service: s\nprovider: {runtime: python3.12}\nfunctions:\n");
	for (int i = 0; i < 1001; i++)
		p += sprintf(p, "  f%d: {handler: a.b}\n", i);
	parse(buf, &rep, -LP_E_INPUT);
	assert_non_null(strstr(msg(&rep, "template-invalid"), "more than 1000 functions and layers"));
	lp_report_free(&rep);
	/* Service-wide patterns are copied into every function: the total is capped. */
	p = buf;
	p += sprintf(p, "service: s\nprovider: {runtime: python3.12}\npackage:\n  patterns:\n");
	for (int i = 0; i < 200; i++)
		p += sprintf(p, "    - 'd%d/**'\n", i);
	p += sprintf(p, "functions:\n");
	for (int i = 0; i < 300; i++)
		p += sprintf(p, "  f%d: {handler: a.b}\n", i);
	parse(buf, &rep, -LP_E_INPUT);
	assert_non_null(strstr(msg(&rep, "template-invalid"), "more than 100000 include/exclude rules"));
	lp_report_free(&rep);
	free(buf);
	/* Six layers is one more than Lambda takes. */
	t = parse("Resources:\n  F:\n    Type: AWS::Serverless::Function\n"
		  "    Properties: {CodeUri: a, Handler: a.b, Runtime: python3.12, Layers: [a, b, c, d, e, f]}\n", &rep, 0);
	assert_false(spec(t, "F")->ok);
	assert_non_null(strstr(msg(&rep, "template-value"), "6 layers: a function takes at most 5"));
	lp_template_free(t);
	lp_report_free(&rep);
}

static void test_bad_ids(void **state)
{
	struct lp_report rep;
	struct lp_template *t = parse(
		"service: s\nprovider: {runtime: python3.12}\n"
		"functions:\n  '../../x': {handler: a.b}\n  .hidden: {handler: a.b}\n  good-one_1: {handler: a.b}\n",
		&rep, 0);

	(void)state;
	assert_int_equal(t->n, 1);
	assert_string_equal(t->specs[0].id, "good-one_1");
	assert_int_equal(lp_report_count(&rep, LP_SEV_ERROR), 2);
	lp_template_free(t);
	lp_report_free(&rep);
}

static void check(const char *runtime, const char *handler, const char *path, const char *text, bool want_ok)
{
	char tmp[] = "/tmp/lp-handler-XXXXXX";
	int fd = mkstemp(tmp);
	struct lp_template t = { .name = (char *)"t.yaml" };
	struct lp_tpl_spec s = { .id = (char *)"F", .kind = LP_TPL_FUNCTION, .handler = (char *)handler,
				 .runtime = (char *)runtime, .handler_key = (char *)"Handler" };
	struct lp_entries l;
	struct lp_entry *e;
	struct lp_report rep;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	lp_entries_init(&l);
	lp_report_init(&rep);
	e = lp_entries_push(&l, path, LP_FILE);
	e->src = strdup(tmp);
	assert_int_equal(lp_template_check_handler(&t, &s, &l, &rep), 0);
	if (want_ok != (lp_report_count(&rep, LP_SEV_ERROR) == 0))
		fail_msg("%s %s in %s: expected %s", runtime, handler, path, want_ok ? "found" : "handler-missing");
	lp_report_free(&rep);
	lp_entries_free(&l);
	unlink(tmp);
}

static void test_handler(void **state)
{
	(void)state;
	check("python3.12", "app.handler", "app.py", "import os\n\ndef handler(event, ctx):\n    pass\n", true);
	check("python3.12", "app.handler", "app.py", "async def handler(e, c): pass\n", true);
	check("python3.12", "app.handler", "app.py", "from mangum import Mangum\nhandler = Mangum(app)\n", true);
	check("python3.12", "app.handler", "app.py", "from .impl import handler\n", true);
	check("python3.12", "app.handler", "app.py", "class X:\n    def handler(self): pass\n", false);
	check("python3.12", "app.handler", "app.py", "def handler_two(e, c): pass\nif handler == 1: pass\n", false);
	check("python3.12", "pkg.sub.run", "pkg/sub.py", "def run(e, c): pass\n", true);
	check("python3.12", "pkg.run", "pkg/__init__.py", "def run(e, c): pass\n", true);
	check("python3.12", "pkg.sub.run", "pkg/other.py", "def run(e, c): pass\n", false);
	check("python3.12", "nodots", "nodots.py", "def nodots(): pass\n", false);
	check("nodejs20.x", "src/index.handler", "src/index.mjs", "export const handler = 1\n", true);
	check("nodejs20.x", "index.a.b", "index.cjs", "", true);
	check("nodejs20.x", "index.handler", "main.js", "", false);
	check("ruby3.3", "function.Mod::Cls.run", "function.rb", "", true);
	check("java21", "com.x.App::handle", "whatever", "", true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sam_globals),
		cmocka_unit_test(test_sam_unresolved),
		cmocka_unit_test(test_serverless_patterns),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_amplification_caps),
		cmocka_unit_test(test_bad_ids),
		cmocka_unit_test(test_handler),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
