/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/fsutil.h"
#include "core/hash.h"
#include "core/report.h"
#include "input/input.h"

static char root[4096];

static void put(const char *rel, const char *text, mode_t mode)
{
	char p[8192], *slash;
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	slash = strrchr(p, '/');
	*slash = '\0';
	assert_int_equal(lp_mkdir_p(p, 0755), 0);
	*slash = '/';
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(p, mode);
}

static void link_(const char *target, const char *rel)
{
	char p[8192];

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	assert_int_equal(symlink(target, p), 0);
}

static int setup(void **state)
{
	char *t;

	assert_int_equal(lp_tmpdir_create("test-input", &t), 0);
	snprintf(root, sizeof(root), "%s/src", t);
	mkdir(root, 0755);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	lp_rm_rf(*state);
	lp_cleanup_unregister(*state);
	free(*state);
	return 0;
}

static int load(struct lp_input_opts *o, struct lp_entries *l, const char *spec)
{
	struct lp_source s;
	char arg[8192];
	int r;

	snprintf(arg, sizeof(arg), "%s%s", root, spec ? spec : "");
	assert_int_equal(lp_source_parse(arg, 0, &s), 0);
	lp_entries_init(l);
	r = lp_input_load_all(&s, 1, o, false, l);
	lp_source_free(&s);
	return r;
}

static void test_walk_modes_and_default_excludes(void **state)
{
	struct lp_input_opts o = { 0 };
	struct lp_entries l;
	struct lp_entry *e;

	put("app.py", "def handler(e, c): return 1\n", 0600);
	put("bin/run.sh", "#!/bin/sh\necho hi\n", 0644);
	put("bin/tool", "plain", 0700);
	put(".git/config", "x", 0644);
	put("pkg/.DS_Store", "x", 0644);
	put("pkg/__init__.py", "", 0644);
	assert_int_equal(load(&o, &l, NULL), 0);
	assert_int_equal(lp_entries_classify(&l, true, false, 2), 0);
	assert_null(lp_entries_find(&l, ".git/config"));
	assert_null(lp_entries_find(&l, ".git"));
	assert_null(lp_entries_find(&l, "pkg/.DS_Store"));
	/* 0600 in the source still becomes world-readable 0644. */
	e = lp_entries_find(&l, "app.py");
	assert_non_null(e);
	assert_int_equal(e->mode, 0644);
	assert_true(e->flags & LP_F_HAS_DIGEST);
	/* #! scripts are executable even without the x bit. */
	assert_int_equal(lp_entries_find(&l, "bin/run.sh")->mode, 0755);
	assert_int_equal(lp_entries_find(&l, "bin/tool")->mode, 0755);
	assert_int_equal(lp_entries_find(&l, "bin")->kind, LP_DIR);
	assert_int_equal(lp_entries_find(&l, "pkg/__init__.py")->size, 0);
	lp_entries_free(&l);
}

static void test_ignore_file_and_excludes(void **state)
{
	struct lp_input_opts o = { 0 };
	struct lp_entries l;

	put("a.py", "a", 0644);
	put("tests/t.py", "t", 0644);
	put("docs/x.md", "d", 0644);
	put("keep.log", "k", 0644);
	put("drop.log", "d", 0644);
	put(".lambdapackignore", "# comment\ntests/\n*.log\n!keep.log\n", 0644);
	lp_strv_push(&o.excludes, "docs");
	assert_int_equal(load(&o, &l, NULL), 0);
	assert_non_null(lp_entries_find(&l, "a.py"));
	assert_null(lp_entries_find(&l, "tests/t.py"));
	assert_null(lp_entries_find(&l, "drop.log"));
	assert_non_null(lp_entries_find(&l, "keep.log"));
	assert_null(lp_entries_find(&l, "docs/x.md"));
	assert_null(lp_entries_find(&l, LP_IGNORE_FILE));
	lp_entries_free(&l);
	lp_strv_free(&o.excludes);
}

static void test_prefix_mapping(void **state)
{
	struct lp_input_opts o = { 0 };
	struct lp_entries l;

	put("requests/__init__.py", "x", 0644);
	assert_int_equal(load(&o, &l, "=python/"), 0);
	assert_non_null(lp_entries_find(&l, "python/requests/__init__.py"));
	assert_int_equal(lp_entries_find(&l, "python")->kind, LP_DIR);
	lp_entries_free(&l);
}

static void put_outside(const char *name, const char *text)
{
	char p[8192];
	FILE *f;

	snprintf(p, sizeof(p), "%s/../%s", root, name);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/*
 * A link leaving the source: refused unless its target stays in the
 * enclosing repository (here: none above the source, until the parent gets
 * a package.json), stored anywhere with materialize-all, refused by refuse.
 */
static void test_symlinks_inside_kept_outside_only_inside_repository(void **state)
{
	struct lp_input_opts o = { 0 };
	struct lp_entries l;
	struct lp_entry *e;

	put("lib/libfoo.so.1", "ELFISH", 0644);
	link_("libfoo.so.1", "lib/libfoo.so");
	link_("lib", "libdir");
	put_outside("outside.txt", "outside bytes");
	link_("../outside.txt", "ext.txt");
	assert_int_equal(load(&o, &l, NULL), -LP_E_SYMLINK);
	assert_non_null(strstr(lp_errmsg(), "ext.txt"));
	assert_non_null(strstr(lp_errmsg(), "-> ../outside.txt"));
	assert_non_null(strstr(lp_errmsg(), "--links=materialize-all"));
	lp_entries_free(&l);

	put_outside("package.json", "{}");
	assert_int_equal(load(&o, &l, NULL), 0);
	e = lp_entries_find(&l, "lib/libfoo.so");
	assert_int_equal(e->kind, LP_SYMLINK);
	assert_string_equal(e->target, "libfoo.so.1");
	assert_int_equal(lp_entries_find(&l, "libdir")->kind, LP_SYMLINK);
	e = lp_entries_find(&l, "ext.txt");
	assert_int_equal(e->kind, LP_FILE);
	assert_true(e->flags & LP_F_MATERIALIZED);
	assert_int_equal(e->size, strlen("outside bytes"));
	lp_entries_free(&l);

	/* An absolute link to a system file stays out even inside a repository. */
	link_("/etc/hostname", "host");
	assert_int_equal(load(&o, &l, NULL), -LP_E_SYMLINK);
	assert_non_null(strstr(lp_errmsg(), "host"));
	assert_non_null(strstr(lp_errmsg(), "/etc/hostname"));
	lp_entries_free(&l);
	o.links = LP_LINKS_MATERIALIZE_ALL;
	assert_int_equal(load(&o, &l, NULL), 0);
	assert_true(lp_entries_find(&l, "host")->flags & LP_F_MATERIALIZED);
	lp_entries_free(&l);

	o.links = LP_LINKS_REFUSE;
	assert_int_equal(load(&o, &l, NULL), -LP_E_SYMLINK);
	assert_non_null(strstr(lp_errmsg(), "outside"));
	lp_entries_free(&l);
}

static void test_repo_root_markers(void **state)
{
	char *t = *state, p[8192], *got = NULL, *want;
	char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;

	/* packages/fn has its own package.json, but the workspace file above wins. */
	snprintf(p, sizeof(p), "%s/ws/packages/fn", t);
	assert_int_equal(lp_mkdir_p(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/ws/packages/fn/package.json", t);
	fclose(fopen(p, "w"));
	snprintf(p, sizeof(p), "%s/ws/packages/fn", t);
	assert_int_equal(lp_repo_root(p, &got), 0);
	assert_non_null(strstr(got, "/ws/packages/fn"));	/* only a project marker so far */
	free(got);
	snprintf(p, sizeof(p), "%s/ws/pnpm-workspace.yaml", t);
	fclose(fopen(p, "w"));
	snprintf(p, sizeof(p), "%s/ws/packages/fn", t);
	assert_int_equal(lp_repo_root(p, &got), 0);
	want = strstr(got, "/ws");
	assert_non_null(want);
	assert_string_equal(want, "/ws");
	free(got);
	/* $HOME is never the repository, even with a stray package.json in it. */
	snprintf(p, sizeof(p), "%s/home/fn", t);
	assert_int_equal(lp_mkdir_p(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/home/package.json", t);
	fclose(fopen(p, "w"));
	snprintf(p, sizeof(p), "%s/home", t);
	setenv("HOME", p, 1);
	snprintf(p, sizeof(p), "%s/home/fn", t);
	assert_int_equal(lp_repo_root(p, &got), 0);
	assert_non_null(strstr(got, "/home/fn"));
	free(got);
	if (home)
		setenv("HOME", home, 1);
	else
		unsetenv("HOME");
	free(home);
}

static void test_dangling_kept_loop_refused(void **state)
{
	struct lp_input_opts o = { 0 };
	struct lp_report rep;
	struct lp_entries l;
	struct lp_entry *e;

	lp_report_init(&rep);
	o.problems = &rep;
	link_("nowhere", "dangling");
	assert_int_equal(load(&o, &l, NULL), 0);
	e = lp_entries_find(&l, "dangling");
	assert_non_null(e);
	assert_int_equal(e->kind, LP_SYMLINK);
	assert_string_equal(e->target, "nowhere");
	assert_int_equal(rep.n_findings, 1);
	assert_int_equal(rep.findings[0].sev, LP_SEV_WARNING);
	assert_string_equal(rep.findings[0].code, "dangling-link");
	lp_entries_free(&l);
	lp_report_free(&rep);
	unlink(strcat(strcpy((char[8192]){ 0 }, root), "/dangling"));

	link_("b", "a");
	link_("a", "b");
	o.problems = NULL;
	assert_int_equal(load(&o, &l, NULL), -LP_E_SYMLINK);
	assert_non_null(strstr(lp_errmsg(), "loop"));
	lp_entries_free(&l);
}

/* One load names every problem: an escaping link, a FIFO, a control character in a name. */
static void test_problems_collected(void **state)
{
	struct lp_input_opts o = { 0 };
	struct lp_report rep;
	struct lp_entries l;
	char p[8192];
	bool link = false, fifo = false, name = false;

	lp_report_init(&rep);
	o.problems = &rep;
	put("ok.py", "x", 0644);
	link_("/etc/hostname", "host");
	snprintf(p, sizeof(p), "%s/pipe", root);
	assert_int_equal(mkfifo(p, 0644), 0);
	put("evil\033]0;title\007.txt", "x", 0644);
	assert_int_equal(load(&o, &l, NULL), 0);
	assert_non_null(lp_entries_find(&l, "ok.py"));
	assert_null(lp_entries_find(&l, "host"));
	assert_null(lp_entries_find(&l, "pipe"));
	assert_int_equal(lp_report_count(&rep, LP_SEV_ERROR), 3);
	for (size_t i = 0; i < rep.n_findings; i++) {
		link |= !strcmp(rep.findings[i].code, "link-outside-repository") &&
			strstr(rep.findings[i].message, "/etc/hostname");
		fifo |= !strcmp(rep.findings[i].code, "special-file") && strstr(rep.findings[i].message, "FIFO");
		name |= !strcmp(rep.findings[i].code, "unsafe-name");
	}
	assert_true(link && fifo && name);
	lp_entries_free(&l);
	lp_report_free(&rep);
}

/* Past the cap (100 problems) the load stops with the next one as its error. */
static void test_problems_capped(void **state)
{
	struct lp_input_opts o = { 0 };
	struct lp_report rep;
	struct lp_entries l;
	char p[8192];

	lp_report_init(&rep);
	o.problems = &rep;
	for (int i = 0; i < 120; i++) {
		snprintf(p, sizeof(p), "%s/pipe%03d", root, i);
		assert_int_equal(mkfifo(p, 0644), 0);
	}
	assert_int_equal(load(&o, &l, NULL), -LP_E_BADTYPE);
	assert_int_equal(lp_report_count(&rep, LP_SEV_ERROR), LP_PROBLEMS_CAP);
	assert_non_null(strstr(lp_errmsg(), "FIFO"));
	lp_entries_free(&l);
	lp_report_free(&rep);
}

/* A source that cannot be read at all is one more problem; the next source is still read. */
static void test_bad_source_does_not_stop_the_others(void **state)
{
	struct lp_input_opts o = { 0 };
	struct lp_report rep;
	struct lp_entries l;
	struct lp_source s[2];
	char missing[8192];

	put("ok.py", "x", 0644);
	link_("/etc/hostname", "host");
	snprintf(missing, sizeof(missing), "%s/../missing", root);
	assert_int_equal(lp_source_parse(missing, 0, &s[0]), 0);
	assert_int_equal(lp_source_parse(root, 1, &s[1]), 0);
	lp_report_init(&rep);
	o.problems = &rep;
	lp_entries_init(&l);
	assert_int_equal(lp_input_load_all(s, 2, &o, false, &l), 0);
	assert_int_equal(lp_report_count(&rep, LP_SEV_ERROR), 2);
	assert_string_equal(rep.findings[0].code, "bad-source");
	assert_non_null(strstr(rep.findings[0].message, "missing"));
	assert_string_equal(rep.findings[1].code, "link-outside-repository");
	assert_non_null(lp_entries_find(&l, "ok.py"));
	lp_entries_free(&l);
	lp_report_free(&rep);
	lp_source_free(&s[0]);
	lp_source_free(&s[1]);
}

static void test_fifo_refused(void **state)
{
	struct lp_input_opts o = { 0 };
	struct lp_entries l;
	char p[8192];

	snprintf(p, sizeof(p), "%s/pipe", root);
	assert_int_equal(mkfifo(p, 0644), 0);
	assert_int_equal(load(&o, &l, NULL), -LP_E_BADTYPE);
	assert_non_null(strstr(lp_errmsg(), "pipe"));
	assert_non_null(strstr(lp_errmsg(), "FIFO"));
	lp_entries_free(&l);
}

static void write_tar(const char *path, const char *const *names, const char *link_name, const char *link_target)
{
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();

	archive_write_set_format_pax_restricted(a);
	archive_write_add_filter_gzip(a);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (const char *const *n = names; *n; n++) {
		archive_entry_clear(e);
		archive_entry_set_pathname(e, *n);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, strstr(*n, "bin") ? 0755 : 0600);
		archive_entry_set_size(e, 5);
		archive_write_header(a, e);
		archive_write_data(a, "hello", 5);
	}
	if (link_name) {
		archive_entry_clear(e);
		archive_entry_set_pathname(e, link_name);
		archive_entry_set_filetype(e, AE_IFLNK);
		archive_entry_set_perm(e, 0777);
		archive_entry_set_symlink(e, link_target);
		archive_write_header(a, e);
	}
	archive_entry_free(e);
	archive_write_close(a);
	archive_write_free(a);
}

static void test_archive_staged_and_hashed(void **state)
{
	const char *names[] = { "./pkg/a.txt", "pkg/bin/tool", NULL };
	struct lp_input_opts o = { 0 };
	struct lp_entries l;
	struct lp_source s;
	char tar[8192], stage[8192], arg[8300];
	uint8_t d[32];
	struct lp_entry *e;

	snprintf(tar, sizeof(tar), "%s/../in.tar.gz", root);
	snprintf(stage, sizeof(stage), "%s/../stage", root);
	mkdir(stage, 0700);
	write_tar(tar, names, "pkg/link", "a.txt");
	o.stage_dir = stage;
	snprintf(arg, sizeof(arg), "%s=deps/", tar);
	assert_int_equal(lp_source_parse(arg, 0, &s), 0);
	lp_entries_init(&l);
	assert_int_equal(lp_input_load_all(&s, 1, &o, false, &l), 0);
	e = lp_entries_find(&l, "deps/pkg/a.txt");
	assert_non_null(e);
	assert_int_equal(e->size, 5);
	assert_int_equal(e->mode, 0644);
	assert_true(e->flags & LP_F_HAS_DIGEST);
	lp_sha256("hello", 5, d);
	assert_memory_equal(e->digest, d, 32);
	assert_non_null(e->src);
	assert_int_equal(lp_sha256_file(e->src, d), 0);
	assert_memory_equal(e->digest, d, 32);
	assert_int_equal(lp_entries_find(&l, "deps/pkg/bin/tool")->mode, 0755);
	assert_int_equal(lp_entries_find(&l, "deps/pkg/link")->kind, LP_SYMLINK);
	assert_int_equal(lp_entries_find(&l, "deps/pkg")->kind, LP_DIR);
	lp_entries_free(&l);
	lp_source_free(&s);
}

static void test_archive_malicious_names(void **state)
{
	const char *dotdot[] = { "ok.txt", "../../etc/evil", NULL };
	const char *absolute[] = { "/etc/passwd", NULL };
	const char *fine[] = { "a.txt", NULL };
	struct lp_input_opts o = { 0 };
	struct lp_entries l;
	struct lp_source s;
	char tar[8192];

	snprintf(tar, sizeof(tar), "%s/../bad.tar.gz", root);
	write_tar(tar, dotdot, NULL, NULL);
	assert_int_equal(lp_source_parse(tar, 0, &s), 0);
	lp_entries_init(&l);
	assert_int_equal(lp_input_load_all(&s, 1, &o, false, &l), -LP_E_UNSAFEPATH);
	assert_non_null(strstr(lp_errmsg(), "../../etc/evil"));
	assert_non_null(strstr(lp_errmsg(), "bad.tar.gz"));
	lp_entries_free(&l);

	write_tar(tar, absolute, NULL, NULL);
	lp_entries_init(&l);
	assert_int_equal(lp_input_load_all(&s, 1, &o, false, &l), -LP_E_UNSAFEPATH);
	lp_entries_free(&l);

	write_tar(tar, fine, "escape", "../../../etc/shadow");
	lp_entries_init(&l);
	assert_int_equal(lp_input_load_all(&s, 1, &o, false, &l), -LP_E_SYMLINK);
	assert_non_null(strstr(lp_errmsg(), "escape"));
	lp_entries_free(&l);
	lp_source_free(&s);
}

static void test_corrupt_archive(void **state)
{
	struct lp_input_opts o = { 0 };
	struct lp_entries l;
	struct lp_source s;
	char p[8192];
	FILE *f;

	snprintf(p, sizeof(p), "%s/../garbage.zip", root);
	f = fopen(p, "w");
	fputs("PK\003\004 this is not really a zip file at all", f);
	fclose(f);
	assert_int_equal(lp_source_parse(p, 0, &s), 0);
	lp_entries_init(&l);
	assert_int_equal(lp_input_load_all(&s, 1, &o, false, &l), -LP_E_BADARCHIVE);
	assert_non_null(strstr(lp_errmsg(), "garbage.zip"));
	lp_entries_free(&l);
	lp_source_free(&s);
}

static void test_missing_source(void **state)
{
	struct lp_input_opts o = { 0 };
	struct lp_entries l;

	assert_int_equal(load(&o, &l, "/does-not-exist"), -2);
	assert_non_null(strstr(lp_errmsg(), "does-not-exist"));
	lp_entries_free(&l);
}

static void test_source_parse(void **state)
{
	struct lp_source s;

	assert_int_equal(lp_source_parse("deps/=python/", 3, &s), 0);
	assert_string_equal(s.path, "deps/");
	assert_string_equal(s.prefix, "python");
	assert_int_equal(s.index, 3);
	lp_source_free(&s);
	assert_int_equal(lp_source_parse("build", 0, &s), 0);
	assert_string_equal(s.prefix, "");
	lp_source_free(&s);
	assert_int_equal(lp_source_parse("x=../up", 0, &s), -LP_E_UNSAFEPATH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_walk_modes_and_default_excludes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ignore_file_and_excludes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefix_mapping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlinks_inside_kept_outside_only_inside_repository, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repo_root_markers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dangling_kept_loop_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_problems_collected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_problems_capped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_source_does_not_stop_the_others, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive_staged_and_hashed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive_malicious_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_archive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_source, setup, teardown),
		cmocka_unit_test(test_source_parse),
	};

	return cmocka_run_group_tests_name("input", tests, NULL, NULL);
}
