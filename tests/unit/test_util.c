/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/report.h"
#include "core/util.h"

#include <errno.h>

static void test_glob_basename_and_anchored(void **state)
{
	assert_true(lp_glob_match("*.pyc", "a/b/c.pyc"));
	assert_true(lp_glob_match("*.pyc", "c.pyc"));
	assert_false(lp_glob_match("*.pyc", "a/b/c.py"));
	assert_true(lp_glob_match("__pycache__", "pkg/__pycache__"));
	/* With a slash the pattern is anchored at the root. */
	assert_true(lp_glob_match("docs/*.md", "docs/a.md"));
	assert_false(lp_glob_match("docs/*.md", "x/docs/a.md"));
	assert_false(lp_glob_match("docs/*.md", "docs/sub/a.md"));
	assert_true(lp_glob_match("/build", "build"));
	assert_false(lp_glob_match("/build", "x/build"));
}

static void test_glob_double_star(void **state)
{
	assert_true(lp_glob_match("**/test/**", "node_modules/x/test/a.js"));
	assert_true(lp_glob_match("**/test/**", "test/a.js"));
	assert_true(lp_glob_match("node_modules/**/*.map", "node_modules/a/b/c.js.map"));
	assert_true(lp_glob_match("node_modules/**/*.map", "node_modules/c.map"));
	assert_false(lp_glob_match("node_modules/**/*.map", "src/c.map"));
	assert_true(lp_glob_match("a/**", "a/b/c"));
}

static void test_glob_classes(void **state)
{
	assert_true(lp_glob_match("file[0-9].txt", "file7.txt"));
	assert_false(lp_glob_match("file[0-9].txt", "filex.txt"));
	assert_true(lp_glob_match("file[!0-9].txt", "filex.txt"));
	assert_true(lp_glob_match("?.c", "a.c"));
	assert_false(lp_glob_match("?.c", "ab.c"));
	assert_true(lp_glob_match("*~", "notes.txt~"));
}

static void test_path_clean(void **state)
{
	char out[256];

	assert_int_equal(lp_path_clean("./a//b/./c/", out), 0);
	assert_string_equal(out, "a/b/c");
	assert_int_equal(lp_path_clean("x", out), 0);
	assert_string_equal(out, "x");
	assert_int_equal(lp_path_clean("/etc/passwd", out), -LP_E_UNSAFEPATH);
	assert_int_equal(lp_path_clean("a/../../b", out), -LP_E_UNSAFEPATH);
	assert_int_equal(lp_path_clean("a/..", out), -LP_E_UNSAFEPATH);
	assert_int_equal(lp_path_clean("./", out), -LP_E_UNSAFEPATH);
	assert_int_equal(lp_path_clean("", out), -LP_E_UNSAFEPATH);
	/* ".." inside a name is not a parent reference. */
	assert_int_equal(lp_path_clean("a/..b/c..", out), 0);
	assert_string_equal(out, "a/..b/c..");
}

static void test_human_and_parse_size(void **state)
{
	char buf[32];
	uint64_t v;

	assert_string_equal(lp_human_size(0, buf, sizeof(buf)), "0 B");
	assert_string_equal(lp_human_size(1023, buf, sizeof(buf)), "1023 B");
	assert_string_equal(lp_human_size(1536, buf, sizeof(buf)), "1.50 KiB");
	assert_string_equal(lp_human_size(262144000, buf, sizeof(buf)), "250 MiB");
	assert_int_equal(lp_parse_size("250M", &v), 0);
	assert_true(v == 262144000ULL);
	assert_int_equal(lp_parse_size("52428800", &v), 0);
	assert_true(v == 52428800ULL);
	assert_int_equal(lp_parse_size("10GiB", &v), 0);
	assert_true(v == 10737418240ULL);
	assert_int_equal(lp_parse_size("1.5k", &v), 0);
	assert_true(v == 1536);
	assert_int_equal(lp_parse_size("12Q", &v), -22);
	assert_int_equal(lp_parse_size("", &v), -22);
}

static void test_path_join(void **state)
{
	char *p = lp_path_join("python", "a/b.py");

	assert_string_equal(p, "python/a/b.py");
	free(p);
	p = lp_path_join("", "x");
	assert_string_equal(p, "x");
	free(p);
	p = lp_path_join("lib/", "x");
	assert_string_equal(p, "lib/x");
	free(p);
}

static void test_escape(void **state)
{
	char b[64];

	/* Escape sequences, backslash, C1 controls and invalid UTF-8 never pass raw. */
	assert_string_equal(lp_escape("a\x1b]0;t\x07" "b", b, sizeof(b)), "a\\x1b]0;t\\x07b");
	assert_string_equal(lp_escape("x\\y", b, sizeof(b)), "x\\\\y");
	assert_string_equal(lp_escape("\xc2\x85", b, sizeof(b)), "\\xc2\\x85");
	assert_string_equal(lp_escape("\xff\xc0\xaf", b, sizeof(b)), "\\xff\\xc0\\xaf");
	assert_string_equal(lp_escape("caf\xc3\xa9", b, sizeof(b)), "caf\xc3\xa9");
	/* Truncation never splits an escape. */
	assert_string_equal(lp_escape("ab\x01", b, 5), "ab");
	assert_true(lp_utf8_valid("caf\xc3\xa9"));
	assert_false(lp_utf8_valid("\xed\xa0\x80"));	/* surrogate */
	assert_false(lp_utf8_valid("\xe0\x80\xaf"));	/* overlong */
}

static void test_report_problem(void **state)
{
	struct lp_report r;

	lp_report_init(&r);
	assert_int_equal(lp_report_problem(&r, 2, -LP_E_BADTYPE, "bad-type", "a", "in.zip: member 'a': FIFO"), 0);
	assert_int_equal(lp_report_problem(&r, 2, -LP_E_BADTYPE, "bad-type", "b", "in.zip: member 'b': FIFO"), 0);
	/* Past the cap the caller is told to stop, with the message kept. */
	assert_int_equal(lp_report_problem(&r, 2, -LP_E_BADTYPE, "bad-type", "c", "in.zip: member 'c': FIFO"),
			 -LP_E_BADTYPE);
	assert_string_equal(lp_errmsg(), "in.zip: member 'c': FIFO");
	assert_int_equal(r.n_findings, 2);
	assert_string_equal(r.findings[1].path, "b");
	assert_int_equal(lp_report_problem(NULL, 0, -EIO, "x", NULL, "stop"), -EIO);
	lp_report_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_glob_basename_and_anchored),
		cmocka_unit_test(test_glob_double_star),
		cmocka_unit_test(test_glob_classes),
		cmocka_unit_test(test_path_clean),
		cmocka_unit_test(test_human_and_parse_size),
		cmocka_unit_test(test_path_join),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_report_problem),
	};

	return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
