/* SPDX-License-Identifier: MIT */
/* pack/check: glibc, architecture, foreign formats and library resolution. */
#include "elftest.h"

#include "core/limits.h"
#include "core/report.h"
#include "pack/check.h"

static const struct lp_finding *finding(const struct lp_report *r, const char *code, const char *path)
{
	for (size_t i = 0; i < r->n_findings; i++)
		if (!strcmp(r->findings[i].code, code) && r->findings[i].path &&
		    !strcmp(r->findings[i].path, path))
			return &r->findings[i];
	return NULL;
}

static void check(struct lp_entries *l, const char *runtime, enum lp_arch arch, bool warn_only,
		  struct lp_report *rep)
{
	struct lp_check_opts o = { .runtime = runtime ? lp_runtime_find(runtime) : NULL, .arch = arch,
				   .warn_only = warn_only };

	if (runtime)
		assert_non_null(o.runtime);
	lp_report_init(rep);
	lp_entries_sort(l);
	assert_int_equal(lp_check_entries(l, &o, rep), 0);
}

static void glibc_list(struct lp_entries *l)
{
	lp_entries_init(l);
	add_file(l, "lib/libnew227.so", fx("libnew227.so"), 0);
	add_file(l, "lib/libnew236.so", fx("libnew236.so"), 0);
	add_file(l, "lib/libfoo.so.1", fx("libfoo.so"), 0);
}

static void test_glibc_al2_vs_al2023(void **state)
{
	struct lp_entries l;
	struct lp_report rep;
	const struct lp_finding *f;

	glibc_list(&l);
	check(&l, "python3.11", LP_ARCH_X86_64, false, &rep);
	f = finding(&rep, "glibc-too-new", "lib/libnew227.so");
	assert_non_null(f);
	assert_int_equal(f->sev, LP_SEV_ERROR);
	assert_non_null(strstr(f->message, "version `GLIBC_2.27' not found"));
	assert_non_null(strstr(f->message, "2.26"));
	assert_non_null(finding(&rep, "glibc-too-new", "lib/libnew236.so"));
	assert_null(finding(&rep, "glibc-too-new", "lib/libfoo.so.1"));	/* GLIBC_2.2.5 only */
	assert_int_equal(lp_report_count(&rep, LP_SEV_ERROR), 2);
	lp_report_free(&rep);

	check(&l, "python3.12", LP_ARCH_X86_64, false, &rep);
	assert_null(finding(&rep, "glibc-too-new", "lib/libnew227.so"));
	f = finding(&rep, "glibc-too-new", "lib/libnew236.so");
	assert_non_null(f);
	assert_non_null(strstr(f->message, "GLIBC_2.36"));
	assert_non_null(strstr(f->message, "2.34"));
	assert_int_equal(lp_report_count(&rep, LP_SEV_ERROR), 1);
	lp_report_free(&rep);

	/* No runtime: no glibc verdicts. */
	check(&l, NULL, LP_ARCH_X86_64, false, &rep);
	assert_int_equal(lp_report_count(&rep, LP_SEV_ERROR), 0);
	lp_report_free(&rep);

	/* --no-check: the same findings, as warnings. */
	check(&l, "python3.11", LP_ARCH_X86_64, true, &rep);
	assert_int_equal(lp_report_count(&rep, LP_SEV_ERROR), 0);
	assert_int_equal(finding(&rep, "glibc-too-new", "lib/libnew227.so")->sev, LP_SEV_WARNING);
	lp_report_free(&rep);
	lp_entries_free(&l);
}

/* The same verdicts when the entry already carries parsed facts. */
static void test_uses_entry_bin(void **state)
{
	struct lp_entries l;
	struct lp_report rep;
	struct lp_entry *e;

	lp_entries_init(&l);
	e = add_file(&l, "lib/x.so", NULL, 10);
	e->binfmt = LP_BIN_ELF;
	assert_int_equal(lp_binfo_read_path(fx("libnew227.so"), &e->bin), 0);
	check(&l, "nodejs18.x", LP_ARCH_X86_64, false, &rep);
	assert_non_null(finding(&rep, "glibc-too-new", "lib/x.so"));
	lp_report_free(&rep);
	lp_entries_free(&l);
}

static void test_foreign_and_arch(void **state)
{
	struct lp_entries l;
	struct lp_report rep;
	const struct lp_finding *f;

	lp_entries_init(&l);
	add_file(&l, "node_modules/sharp/build/Release/sharp.node", fx("macho-fat"), 0);
	add_file(&l, "x.dll", fx("pe-x86_64.dll"), 0);
	add_file(&l, "bootstrap", fx("hello"), 0);
	add_file(&l, "lib/libhello.a", fx("libhello.a"), 0);
	add_file(&l, "obj/hello.o", fx("hello.o"), 0);
	if (have("libfoo-aarch64.so"))
		add_file(&l, "lib/libfoo.so.1", fx("libfoo-aarch64.so"), 0);
	check(&l, "provided.al2023", LP_ARCH_X86_64, false, &rep);
	f = finding(&rep, "foreign-binary", "node_modules/sharp/build/Release/sharp.node");
	assert_non_null(f);
	assert_int_equal(f->sev, LP_SEV_ERROR);
	assert_non_null(strstr(f->message, "invalid ELF header"));
	assert_non_null(finding(&rep, "foreign-binary", "x.dll"));
	assert_null(finding(&rep, "wrong-arch", "bootstrap"));
	assert_null(finding(&rep, "wrong-arch", "obj/hello.o"));
	if (have("libfoo-aarch64.so"))
		assert_non_null(finding(&rep, "wrong-arch", "lib/libfoo.so.1"));
	lp_report_free(&rep);

	check(&l, "provided.al2023", LP_ARCH_ARM64, false, &rep);
	f = finding(&rep, "wrong-arch", "bootstrap");
	assert_non_null(f);
	assert_non_null(strstr(f->message, "exec format error"));
	assert_null(finding(&rep, "wrong-arch", "lib/libfoo.so.1"));
	lp_report_free(&rep);
	lp_entries_free(&l);
}

static void test_libraries(void **state)
{
	struct lp_entries l;
	struct lp_report rep;
	const struct lp_finding *f;

	/* RUNPATH $ORIGIN/lib resolves inside the package: nothing to say. */
	lp_entries_init(&l);
	add_file(&l, "bin/usefoo", fx("usefoo"), 0);
	add_file(&l, "bin/lib/libfoo.so.1", fx("libfoo.so"), 0);
	add_file(&l, "bootstrap", fx("hello"), 0)->mode = 0755;	/* provided.* needs one (bootstrap-missing) */
	lp_entries_sort(&l);
	check(&l, "provided.al2023", LP_ARCH_X86_64, false, &rep);
	assert_int_equal(rep.n_findings, 0);
	lp_report_free(&rep);

	/* The same library reachable only through some other directory: info, not a warning. */
	add_file(&l, "tools/usefoo-badpath", fx("usefoo-badpath"), 0);
	lp_entries_sort(&l);
	check(&l, "provided.al2023", LP_ARCH_X86_64, false, &rep);
	f = finding(&rep, "library-off-path", "tools/usefoo-badpath");
	assert_non_null(f);
	assert_int_equal(f->sev, LP_SEV_INFO);
	assert_non_null(strstr(f->message, "bin/lib/libfoo.so.1"));
	assert_null(finding(&rep, "missing-library", "tools/usefoo-badpath"));
	lp_report_free(&rep);
	lp_entries_free(&l);

	/* lib/ at the artifact root is on LD_LIBRARY_PATH (/var/task/lib, /opt/lib). */
	lp_entries_init(&l);
	add_file(&l, "tools/usefoo-badpath", fx("usefoo-badpath"), 0);
	add_file(&l, "lib/libfoo.so.1", fx("libfoo.so"), 0);
	check(&l, "python3.12", LP_ARCH_X86_64, false, &rep);
	assert_int_equal(rep.n_findings, 0);
	lp_report_free(&rep);
	lp_entries_free(&l);

	/* Nowhere at all: a warning naming the soname; libc/libm come from the runtime. */
	lp_entries_init(&l);
	add_file(&l, "bootstrap", fx("usefoo"), 0);
	check(&l, "python3.12", LP_ARCH_X86_64, false, &rep);
	f = finding(&rep, "missing-library", "bootstrap");
	assert_non_null(f);
	assert_int_equal(f->sev, LP_SEV_WARNING);
	assert_non_null(strstr(f->message, "libfoo.so.1"));
	assert_int_equal(rep.n_findings, 1);
	lp_report_free(&rep);

	/* Removed entries neither count as present nor get checked. */
	add_file(&l, "lib/libfoo.so.1", fx("libfoo.so"), 0)->flags |= LP_F_REMOVED;
	check(&l, "python3.12", LP_ARCH_X86_64, false, &rep);
	assert_non_null(finding(&rep, "missing-library", "bootstrap"));
	lp_report_free(&rep);
	lp_entries_free(&l);
}


/* Files the loader refuses: an error naming the path and the reason; --no-check: a warning. */
static void test_unloadable(void **state)
{
	char *dir = mktmp();
	struct lp_entries l;
	struct lp_report rep;
	char paths[CR_COUNT][32];
	const char *wants[CR_COUNT];

	lp_entries_init(&l);
	add_file(&l, "lib/libfoo.so.1", fx("libfoo.so"), 0);
	for (int k = 0; k < CR_COUNT; k++) {
		size_t len;
		unsigned char *b = craft((enum craft_kind)k, &len, &wants[k]);
		char name[16], *src;

		snprintf(name, sizeof(name), "v%d.so", k);
		snprintf(paths[k], sizeof(paths[k]), "lib/v%d.so", k);
		src = put_file(dir, name, b, len);
		add_file(&l, paths[k], src, 0);
		free(src);
		free(b);
	}
	check(&l, "python3.12", LP_ARCH_X86_64, false, &rep);
	for (int k = 0; k < CR_COUNT; k++) {
		const struct lp_finding *f = finding(&rep, "elf-unloadable", paths[k]);

		if (!f)
			fail_msg("no elf-unloadable finding for %s", paths[k]);
		assert_int_equal(f->sev, LP_SEV_ERROR);
		assert_non_null(strstr(f->message, "cannot be loaded: "));
		assert_non_null(strstr(f->message, wants[k]));
	}
	assert_null(finding(&rep, "elf-unloadable", "lib/libfoo.so.1"));
	assert_int_equal(lp_report_count(&rep, LP_SEV_ERROR), CR_COUNT);
	lp_report_free(&rep);

	check(&l, "python3.12", LP_ARCH_X86_64, true, &rep);
	assert_int_equal(lp_report_count(&rep, LP_SEV_ERROR), 0);
	assert_int_equal(finding(&rep, "elf-unloadable", paths[0])->sev, LP_SEV_WARNING);
	lp_report_free(&rep);
	lp_entries_free(&l);
	lp_rm_rf(dir);
	free(dir);
}

/* Where a foreign file lies decides how bad it is, and the message names the fix. */
static void test_foreign_by_place(void **state)
{
	struct lp_entries l;
	struct lp_report rep;
	const struct lp_finding *f;

	(void)state;
	lp_entries_init(&l);
	add_file(&l, "bootstrap", fx("hello"), 0)->mode = 0755;
	add_file(&l, "pip/_vendor/distlib/t64.exe", fx("pe-x86_64.dll"), 0);
	add_file(&l, "pip-23.0.dist-info/METADATA", fx("hello.c"), 0);
	add_file(&l, "node_modules/x/win/x.dll", fx("pe-x86_64.dll"), 0);
	add_file(&l, "tools/own.exe", fx("pe-x86_64.dll"), 0);
	check(&l, "provided.al2023", LP_ARCH_X86_64, false, &rep);
	/* pip at the root is a dependency through its dist-info (no src read: by name). */
	f = finding(&rep, "foreign-binary", "pip/_vendor/distlib/t64.exe");
	assert_non_null(f);
	assert_int_equal(f->sev, LP_SEV_WARNING);
	assert_non_null(strstr(f->message, "-O or --prune-foreign"));
	f = finding(&rep, "foreign-binary", "node_modules/x/win/x.dll");
	assert_int_equal(f->sev, LP_SEV_ERROR);	/* a module a runtime would load */
	assert_non_null(strstr(f->message, "--prune-foreign removes it"));
	f = finding(&rep, "foreign-binary", "tools/own.exe");
	assert_int_equal(f->sev, LP_SEV_ERROR);
	assert_non_null(strstr(f->message, "own file"));
	assert_null(finding(&rep, "bootstrap-missing", "bootstrap"));
	lp_report_free(&rep);
	lp_entries_free(&l);

	/* provided.*: no bootstrap at all, or one without an x bit. */
	lp_entries_init(&l);
	add_file(&l, "main", fx("hello"), 0);
	check(&l, "provided.al2", LP_ARCH_X86_64, false, &rep);
	assert_int_equal(finding(&rep, "bootstrap-missing", "bootstrap")->sev, LP_SEV_ERROR);
	lp_report_free(&rep);
	add_file(&l, "bootstrap", fx("hello.c"), 0)->mode = 0644;
	check(&l, "provided.al2", LP_ARCH_X86_64, true, &rep);
	f = finding(&rep, "bootstrap-missing", "bootstrap");
	assert_int_equal(f->sev, LP_SEV_WARNING);	/* --no-check */
	assert_non_null(strstr(f->message, "not executable"));
	lp_report_free(&rep);
	check(&l, "python3.12", LP_ARCH_X86_64, false, &rep);
	assert_null(finding(&rep, "bootstrap-missing", "bootstrap"));
	lp_report_free(&rep);
	lp_entries_free(&l);
}

static void test_python_abi_by_name(void **state)
{
	struct lp_entries l;
	struct lp_report rep;
	const struct lp_finding *f;

	(void)state;
	lp_entries_init(&l);
	add_file(&l, "numpy/core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so", NULL, 10);
	add_file(&l, "old/_x.cpython-37m-x86_64-linux-gnu.so", NULL, 10);
	add_file(&l, "crypto/_rust.abi3.so", NULL, 10);
	add_file(&l, "numpy/__pycache__/a.cpython-311.pyc", NULL, 10);
	add_file(&l, "numpy/__pycache__/b.cpython-311.pyc", NULL, 10);
	add_file(&l, "numpy/__pycache__/c.cpython-312.pyc", NULL, 10);
	check(&l, "python3.12", LP_ARCH_X86_64, false, &rep);
	f = finding(&rep, "python-abi", "numpy/core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so");
	assert_non_null(f);
	assert_int_equal(f->sev, LP_SEV_ERROR);
	assert_non_null(strstr(f->message, "Python 3.11"));
	assert_non_null(strstr(f->message, "--runtime python3.11"));
	f = finding(&rep, "python-abi", "old/_x.cpython-37m-x86_64-linux-gnu.so");
	assert_non_null(strstr(f->message, "Python 3.7"));
	assert_null(strstr(f->message, "--runtime"));	/* Lambda has no python3.7 any more */
	assert_null(finding(&rep, "python-abi", "crypto/_rust.abi3.so"));
	f = finding(&rep, "python-abi", "numpy/__pycache__/a.cpython-311.pyc");
	assert_int_equal(f->sev, LP_SEV_WARNING);
	assert_non_null(strstr(f->message, "2 cached .pyc files"));
	assert_int_equal(lp_report_count(&rep, LP_SEV_ERROR), 2);
	lp_report_free(&rep);
	check(&l, "python3.11", LP_ARCH_X86_64, false, &rep);
	assert_int_equal(lp_report_count(&rep, LP_SEV_ERROR), 1);	/* only the 3.7 one */
	lp_report_free(&rep);
	check(&l, "nodejs20.x", LP_ARCH_X86_64, false, &rep);
	assert_null(finding(&rep, "python-abi", "old/_x.cpython-37m-x86_64-linux-gnu.so"));
	lp_report_free(&rep);
	lp_entries_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_glibc_al2_vs_al2023),
		cmocka_unit_test(test_uses_entry_bin),
		cmocka_unit_test(test_foreign_and_arch),
		cmocka_unit_test(test_libraries),
		cmocka_unit_test(test_unloadable),
		cmocka_unit_test(test_foreign_by_place),
		cmocka_unit_test(test_python_abi_by_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
