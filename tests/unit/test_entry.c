/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "core/entry.h"
#include "core/err.h"
#include "core/report.h"
#include "pack/pack.h"

static struct lp_entry *add(struct lp_entries *l, const char *p, enum lp_kind k, uint64_t size, uint16_t origin)
{
	struct lp_entry *e = lp_entries_push(l, p, k);

	assert_non_null(e);
	e->size = size;
	e->origin = origin;
	return e;
}

static void test_sort_is_bytewise(void **state)
{
	struct lp_entries l;

	lp_entries_init(&l);
	add(&l, "b", LP_FILE, 1, 0);
	add(&l, "a/b", LP_FILE, 1, 0);
	add(&l, "a-b", LP_FILE, 1, 0);
	add(&l, "A", LP_FILE, 1, 0);
	lp_entries_sort(&l);
	assert_string_equal(l.v[0].path, "A");
	assert_string_equal(l.v[1].path, "a-b");
	assert_string_equal(l.v[2].path, "a/b");
	assert_string_equal(l.v[3].path, "b");
	assert_non_null(lp_entries_find(&l, "a/b"));
	assert_null(lp_entries_find(&l, "a"));
	lp_entries_free(&l);
}

static void test_unique_duplicate_is_error_unless_overwrite(void **state)
{
	struct lp_entries l;

	lp_entries_init(&l);
	add(&l, "x.py", LP_FILE, 1, 0);
	add(&l, "x.py", LP_FILE, 2, 1);
	lp_entries_sort(&l);
	assert_int_equal(lp_entries_unique(&l, false), -LP_E_DUPLICATE);
	assert_non_null(strstr(lp_errmsg(), "x.py"));
	assert_int_equal(lp_entries_unique(&l, true), 0);
	assert_int_equal(l.n, 1);
	/* The later source wins. */
	assert_int_equal(l.v[0].size, 2);
	assert_int_equal(l.v[0].origin, 1);
	lp_entries_free(&l);
}

/* Collisions name the inputs; with a report every one is recorded and nothing is freed twice. */
static void test_unique_named_reports_every_collision(void **state)
{
	static const char *const names[] = { "deps/", "build.zip" };
	struct lp_report rep;
	struct lp_entries l;

	lp_entries_init(&l);
	lp_report_init(&rep);
	add(&l, "a.py", LP_FILE, 1, 0)->src = strdup("/x/a.py");
	add(&l, "a.py", LP_FILE, 2, 1)->src = strdup("build.zip!a.py");
	add(&l, "b.py", LP_FILE, 3, 1)->src = strdup("one");
	add(&l, "b.py", LP_FILE, 4, 1)->src = strdup("two");
	add(&l, "c.py", LP_FILE, 5, 0);
	lp_entries_sort(&l);
	assert_int_equal(lp_entries_unique_named(&l, false, names, 2, &rep), 0);
	assert_int_equal(lp_report_count(&rep, LP_SEV_ERROR), 2);
	assert_string_equal(rep.findings[0].path, "a.py");
	assert_non_null(strstr(rep.findings[0].message, "(deps/ and build.zip)"));
	assert_non_null(strstr(rep.findings[0].message, "--overwrite"));
	assert_non_null(strstr(rep.findings[1].message, "b.py: given twice inside build.zip"));
	assert_int_equal(l.n, 3);
	assert_string_equal(l.v[2].path, "c.py");
	lp_entries_free(&l);
	lp_report_free(&rep);

	/* Without a report the first collision stops it; the list stays freeable once. */
	lp_entries_init(&l);
	add(&l, "a", LP_FILE, 1, 0)->src = strdup("1");
	add(&l, "b", LP_FILE, 1, 0)->src = strdup("2");
	add(&l, "b", LP_FILE, 1, 0)->src = strdup("3");
	add(&l, "c", LP_FILE, 1, 0)->src = strdup("4");
	add(&l, "d", LP_FILE, 1, 0)->src = strdup("5");
	lp_entries_sort(&l);
	assert_int_equal(lp_entries_unique_named(&l, true, names, 2, NULL), -LP_E_DUPLICATE);
	assert_non_null(strstr(lp_errmsg(), "b: given twice inside deps/"));
	assert_int_equal(l.n, 5);	/* nothing dropped on a stop */
	lp_entries_free(&l);	/* ASan: no double free */
}

static void test_unique_merges_directories(void **state)
{
	struct lp_entries l;

	lp_entries_init(&l);
	add(&l, "lib", LP_DIR, 0, 0)->flags |= LP_F_IMPLICIT;
	add(&l, "lib", LP_DIR, 0, 1);
	lp_entries_sort(&l);
	assert_int_equal(lp_entries_unique(&l, false), 0);
	assert_int_equal(l.n, 1);
	assert_false(l.v[0].flags & LP_F_IMPLICIT);
	lp_entries_free(&l);
}

/*
 * Regression (analyze fuzzer): two directories merge, then a file and a
 * directory collide. The merge has moved entries down; the error must not
 * leave two slots owning one path (double free in lp_entries_free).
 */
static void test_unique_error_after_merge_frees_once(void **state)
{
	struct lp_entries l;

	(void)state;
	lp_entries_init(&l);
	add(&l, "a", LP_DIR, 0, 0);
	add(&l, "a", LP_DIR, 0, 0);
	add(&l, "b", LP_FILE, 1, 0);
	add(&l, "b", LP_DIR, 0, 0);
	add(&l, "c", LP_FILE, 1, 0);
	lp_entries_sort(&l);
	assert_int_equal(lp_entries_unique(&l, false), -LP_E_DUPLICATE);
	assert_int_equal(l.n, 4);
	for (size_t i = 0; i + 1 < l.n; i++)
		assert_ptr_not_equal(l.v[i].path, l.v[i + 1].path);
	lp_entries_free(&l);	/* ASan: no double free */
}

static void test_add_parents(void **state)
{
	struct lp_entries l;

	lp_entries_init(&l);
	add(&l, "a/b/c.txt", LP_FILE, 1, 0);
	add(&l, "a/b/d.txt", LP_FILE, 1, 0);
	add(&l, "a/e/f.txt", LP_FILE, 1, 0);
	add(&l, "top.txt", LP_FILE, 1, 0);
	assert_int_equal(lp_entries_add_parents(&l), 0);
	assert_int_equal(l.n, 7);
	assert_string_equal(l.v[0].path, "a");
	assert_int_equal(l.v[0].kind, LP_DIR);
	assert_string_equal(l.v[1].path, "a/b");
	assert_string_equal(l.v[4].path, "a/e");
	assert_string_equal(l.v[6].path, "top.txt");
	lp_entries_free(&l);
}

/* Shared prefixes that are not directory boundaries, explicit dirs, and one deep path. */
static void test_add_parents_prefixes_and_depth(void **state)
{
	static const char *const want[] = { "a", "a-b", "a-b/i", "a/b", "a/b/c", "a/b/c/f", "a/b/d",
					    "a/b/d/g", "a/bx", "a/bx/h", "ab", "ab/c", "ab/c/j" };
	struct lp_entries l;
	char *deep;
	size_t n = 0;

	lp_entries_init(&l);
	add(&l, "a/b/c/f", LP_FILE, 1, 0);
	add(&l, "a/b/d/g", LP_FILE, 1, 0);
	add(&l, "a/bx/h", LP_FILE, 1, 0);
	add(&l, "a-b/i", LP_FILE, 1, 0);
	add(&l, "ab/c/j", LP_FILE, 1, 0);
	add(&l, "ab", LP_DIR, 0, 0);
	assert_int_equal(lp_entries_add_parents(&l), 0);
	assert_int_equal(l.n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < l.n; i++) {
		assert_string_equal(l.v[i].path, want[i]);
		if (!strcmp(want[i], "ab"))
			assert_false(l.v[i].flags & LP_F_IMPLICIT);	/* the explicit one won */
	}
	lp_entries_free(&l);

	/* 10,000 directories deep: every ancestor exactly once. */
	deep = malloc(10000 * 2 + 8);
	assert_non_null(deep);
	for (size_t i = 0; i < 10000; i++)
		memcpy(deep + 2 * i, "d/", 2);
	strcpy(deep + 20000, "f.txt");
	lp_entries_init(&l);
	add(&l, deep, LP_FILE, 1, 0);
	assert_int_equal(lp_entries_add_parents(&l), 0);
	assert_int_equal(l.n, 10001);
	for (size_t i = 0; i < l.n; i++)
		if (l.v[i].kind == LP_DIR) {
			assert_int_equal(strlen(l.v[i].path), 2 * n + 1);
			n++;
		}
	assert_int_equal(n, 10000);
	lp_entries_free(&l);
	free(deep);
}

static void test_relative_links(void **state)
{
	char *r;

	r = lp_path_relative("a/b/x.so", "a/c/y.so");
	assert_string_equal(r, "../c/y.so");
	free(r);
	r = lp_path_relative("x.so", "lib/y.so");
	assert_string_equal(r, "lib/y.so");
	free(r);
	r = lp_path_relative("lib/x.so", "lib/y.so");
	assert_string_equal(r, "y.so");
	free(r);
	r = lp_path_relative("a/b/c/x", "y");
	assert_string_equal(r, "../../../y");
	free(r);
	/* Common prefix must stop at a component boundary. */
	r = lp_path_relative("abc/x", "abd/y");
	assert_string_equal(r, "../abd/y");
	free(r);
}

static void test_unzipped_size_counts_links_and_duplicates(void **state)
{
	struct lp_entries l;
	struct lp_entry *e;

	lp_entries_init(&l);
	add(&l, "d", LP_DIR, 0, 0);
	add(&l, "f", LP_FILE, 1000, 0);
	e = add(&l, "lnk", LP_SYMLINK, 1, 0);
	e->target = strdup("f");
	e = add(&l, "lib/dup.so", LP_FILE, 1000, 0);
	e->flags |= LP_F_DUPLICATE;
	e->target = strdup("f");
	/* 1000 + 1 (link text "f") + strlen("../f") */
	assert_int_equal(lp_entries_unzipped_size(&l), 1000 + 1 + 4);
	lp_entries_free(&l);
}

static void test_compact(void **state)
{
	struct lp_entries l;

	lp_entries_init(&l);
	add(&l, "a", LP_FILE, 1, 0);
	add(&l, "b", LP_FILE, 1, 0)->flags |= LP_F_REMOVED;
	add(&l, "c", LP_FILE, 1, 0);
	lp_entries_compact(&l);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[1].path, "c");
	lp_entries_free(&l);
}

static void test_group_keys(void **state)
{
	char buf[256];

	assert_string_equal(lp_group_key("node_modules/lodash/index.js", buf, sizeof(buf)), "node_modules/lodash");
	assert_string_equal(lp_group_key("node_modules/@aws-sdk/client-s3/dist/x.js", buf, sizeof(buf)),
			    "node_modules/@aws-sdk/client-s3");
	assert_string_equal(lp_group_key("node_modules/a/node_modules/b/x.js", buf, sizeof(buf)),
			    "node_modules/a/node_modules/b");
	assert_string_equal(lp_group_key("python/numpy/core/x.so", buf, sizeof(buf)), "python/numpy");
	assert_string_equal(lp_group_key("python/lib/python3.12/site-packages/pandas/x.py", buf, sizeof(buf)),
			    "python/lib/python3.12/site-packages/pandas");
	assert_string_equal(lp_group_key("app.py", buf, sizeof(buf)), "app.py");
	assert_string_equal(lp_group_key("src/handler.js", buf, sizeof(buf)), "src");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sort_is_bytewise),
		cmocka_unit_test(test_unique_duplicate_is_error_unless_overwrite),
		cmocka_unit_test(test_unique_named_reports_every_collision),
		cmocka_unit_test(test_unique_merges_directories),
		cmocka_unit_test(test_unique_error_after_merge_frees_once),
		cmocka_unit_test(test_add_parents),
		cmocka_unit_test(test_add_parents_prefixes_and_depth),
		cmocka_unit_test(test_relative_links),
		cmocka_unit_test(test_unzipped_size_counts_links_and_duplicates),
		cmocka_unit_test(test_compact),
		cmocka_unit_test(test_group_keys),
	};

	return cmocka_run_group_tests_name("entry", tests, NULL, NULL);
}
