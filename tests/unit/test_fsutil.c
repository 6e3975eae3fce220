/* SPDX-License-Identifier: MIT */
/* core/fsutil: what an output may replace, temp names, cancellation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/fsutil.h"

static void test_temp_names(void **state)
{
	assert_true(lp_output_is_temp_name(".f.zip.Ab12Cd", "f.zip"));
	assert_true(lp_output_is_temp_name(".out.XXXXXX", "out"));
	assert_false(lp_output_is_temp_name(".f.zip.Ab12C", "f.zip"));		/* five */
	assert_false(lp_output_is_temp_name(".f.zip.Ab12Cde", "f.zip"));	/* seven */
	assert_false(lp_output_is_temp_name(".f.zip.Ab-2Cd", "f.zip"));
	assert_false(lp_output_is_temp_name("f.zip", "f.zip"));
	assert_false(lp_output_is_temp_name(".f.zipx.Ab12Cd", "f.zip"));
	assert_false(lp_output_is_temp_name(".g.zip.Ab12Cd", "f.zip"));
}

static void test_file_outputs(void **state)
{
	char dir[] = "/tmp/lp-fsutil-XXXXXX", p[256], q[256];
	struct lp_outfile of;
	char *text = NULL;

	assert_non_null(mkdtemp(dir));
	/* Absent, then a regular file: both fine, the file is replaced. */
	snprintf(p, sizeof(p), "%s/a.zip", dir);
	assert_int_equal(lp_output_check_file(p), 0);
	assert_int_equal(lp_outfile_open(&of, p), 0);
	assert_int_equal(lp_write_all(of.fd, "new", 3), 0);
	assert_int_equal(lp_outfile_commit(&of), 0);
	assert_int_equal(lp_read_file(p, 100, &text, NULL), 0);
	assert_string_equal(text, "new");
	free(text);
	/* A directory, a symlink (even to a regular file), a FIFO: refused, untouched. */
	snprintf(q, sizeof(q), "%s/d.zip", dir);
	assert_int_equal(mkdir(q, 0755), 0);
	assert_int_equal(lp_outfile_open(&of, q), -EEXIST);
	assert_non_null(strstr(lp_errmsg(), "d.zip"));
	assert_non_null(strstr(lp_errmsg(), "directory"));
	assert_int_equal(rmdir(q), 0);
	assert_int_equal(symlink("a.zip", q), 0);
	assert_int_equal(lp_output_check_file(q), -EEXIST);
	assert_non_null(strstr(lp_errmsg(), "symbolic link"));
	assert_int_equal(unlink(q), 0);
	assert_int_equal(mkfifo(q, 0644), 0);
	assert_int_equal(lp_output_check_file(q), -EEXIST);
	assert_int_equal(unlink(q), 0);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(rmdir(dir), 0);
}

static void test_outdir_commit_never_replaces_content(void **state)
{
	char dir[] = "/tmp/lp-fsutil-XXXXXX", p[256], keep[300];
	struct lp_outdir od;
	struct stat st;

	assert_non_null(mkdtemp(dir));
	snprintf(p, sizeof(p), "%s/img", dir);
	/* Empty: replaced by the finished directory. */
	assert_int_equal(mkdir(p, 0755), 0);
	assert_int_equal(lp_outdir_open(&od, p), 0);
	assert_int_equal(lp_outdir_commit(&od), 0);
	/* Not empty (a file appeared): kept, the temporary goes. */
	snprintf(keep, sizeof(keep), "%s/precious.txt", p);
	fclose(fopen(keep, "w"));
	assert_int_equal(lp_outdir_open(&od, p), 0);
	assert_int_equal(lp_outdir_commit(&od), -EEXIST);
	assert_int_equal(stat(keep, &st), 0);
	assert_int_equal(unlink(keep), 0);
	assert_int_equal(rmdir(p), 0);
	assert_int_equal(rmdir(dir), 0);	/* no temporary left beside it */
}

/* Registering while holding the cleanup lock (create-then-register) must not deadlock. */
static void test_cleanup_register_under_lock(void **state)
{
	char *dir = NULL;

	(void)state;
	assert_int_equal(lp_tmpdir_create("cleanup-test", &dir), 0);
	lp_cleanup_lock();
	lp_cleanup_register(dir, true);
	lp_cleanup_unregister(dir);
	lp_cleanup_unlock();
	assert_int_equal(lp_rm_rf(dir), 0);
	lp_cleanup_unregister(dir);
	free(dir);
}

static void test_cancel(void **state)
{
	assert_false(lp_cancelled());
	assert_int_equal(lp_check_cancel("x"), 0);
	lp_cancel(15);
	assert_true(lp_cancelled());
	assert_int_equal(lp_cancel_signal(), 15);
	assert_int_equal(lp_check_cancel("x"), -EINTR);
	assert_string_equal(lp_errmsg(), "x: interrupted");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_temp_names),
		cmocka_unit_test(test_file_outputs),
		cmocka_unit_test(test_outdir_commit_never_replaces_content),
		cmocka_unit_test(test_cleanup_register_under_lock),
		cmocka_unit_test(test_cancel),	/* last: the flag stays raised */
	};

	return cmocka_run_group_tests_name("fsutil", tests, NULL, NULL);
}
