/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/limits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_unzipped_edges(void **state)
{
	struct lp_budget b;

	lp_budget_unzipped(262143999ULL, 0, &b);
	assert_false(b.over);
	assert_int_equal(b.headroom, 0);
	assert_int_equal(b.limit, 262144000ULL);
	/* "must be smaller than 262144000 bytes": equal is over, by one byte. */
	lp_budget_unzipped(262144000ULL, 0, &b);
	assert_true(b.over);
	assert_int_equal(b.over_by, 1);
	lp_budget_unzipped(100, 0, &b);
	assert_int_equal(b.headroom, 262144000ULL - 1 - 100);
}

static void test_unzipped_with_layers(void **state)
{
	struct lp_budget b;

	/* Lambda's error then names 262144000 minus the layers' size. */
	lp_budget_unzipped(255174946ULL, 262144000ULL - 255174947ULL, &b);
	assert_int_equal(b.limit, 255174947ULL);
	assert_false(b.over);
	lp_budget_unzipped(255174947ULL, 262144000ULL - 255174947ULL, &b);
	assert_true(b.over);
	lp_budget_unzipped(1, 262144000ULL, &b);
	assert_true(b.over);
}

static void test_zipped_and_image(void **state)
{
	struct lp_budget b;

	lp_budget_zipped(52428799ULL, &b);
	assert_false(b.over);
	lp_budget_zipped(52428800ULL, &b);
	assert_true(b.over);
	lp_budget_image(10737418240ULL, &b);
	assert_false(b.over);
	lp_budget_image(10737418241ULL, &b);
	assert_true(b.over);
	assert_int_equal(b.over_by, 1);
}

static void test_runtimes(void **state)
{
	const struct lp_runtime *r = lp_runtime_find("python3.11");

	assert_non_null(r);
	assert_int_equal(r->glibc_minor, 26);
	r = lp_runtime_find("python3.12");
	assert_non_null(r);
	assert_int_equal(r->glibc_minor, 34);
	assert_string_equal(lp_runtime_find("provided.al2023")->os, "al2023");
	assert_null(lp_runtime_find("cobol1.0"));
	assert_true(lp_runtime_has_lib(r, "libc.so.6"));
	assert_false(lp_runtime_has_lib(r, "libssl.so.3"));
}

/*
 * docs/runtimes.md and the table say the same: every runtime has its row
 * with its OS, glibc and base image, and the document has no other rows.
 */
static void test_runtimes_doc(void **state)
{
	const char *path = getenv("LP_RUNTIMES_DOC");
	char line[512], want[512];
	size_t rows = 0, n = 0;
	FILE *f;

	if (!path)
		skip();
	f = fopen(path, "r");
	assert_non_null(f);
	for (const struct lp_runtime *r = lp_runtime_table(); r->name; r++, n++) {
		bool found = false;

		if (r->base_image)
			snprintf(want, sizeof(want), "| `%s` | %s | %u.%u | `%s` |\n", r->name, r->os,
				 r->glibc_major, r->glibc_minor, r->base_image);
		else
			snprintf(want, sizeof(want), "| `%s` | %s | %u.%u | none: give `--base` |\n", r->name,
				 r->os, r->glibc_major, r->glibc_minor);
		rewind(f);
		while (fgets(line, sizeof(line), f))
			found = found || strcmp(line, want) == 0;
		if (!found)
			fail_msg("docs/runtimes.md lacks the row %s", want);
		if (r->base_image)
			assert_true(strncmp(r->base_image, "public.ecr.aws/lambda/", 22) == 0);
	}
	rewind(f);
	while (fgets(line, sizeof(line), f))
		rows += strncmp(line, "| `", 3) == 0;
	fclose(f);
	assert_int_equal(rows, n);
	assert_string_equal(lp_runtime_find("python3.12")->base_image, "public.ecr.aws/lambda/python:3.12");
	assert_string_equal(lp_runtime_find("nodejs20.x")->base_image, "public.ecr.aws/lambda/nodejs:20");
	assert_string_equal(lp_runtime_find("provided.al2023")->base_image, "public.ecr.aws/lambda/provided:al2023");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unzipped_edges),
		cmocka_unit_test(test_unzipped_with_layers),
		cmocka_unit_test(test_zipped_and_image),
		cmocka_unit_test(test_runtimes),
		cmocka_unit_test(test_runtimes_doc),
	};

	return cmocka_run_group_tests_name("limits", tests, NULL, NULL);
}
