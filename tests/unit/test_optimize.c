/* SPDX-License-Identifier: MIT */
/* pack/optimize: strip, dedupe, prune-foreign and prune-junk over entry lists. */
#include "elftest.h"

#include "core/err.h"
#include "core/fsutil.h"
#include "core/report.h"
#include "core/util.h"
#include "pack/optimize.h"

static char *tmp;

static int setup(void **state)
{
	tmp = mktmp();
	return 0;
}

static int teardown(void **state)
{
	lp_rm_rf(tmp);
	free(tmp);
	return 0;
}

static const struct lp_change *change_for(const struct lp_report *r, const char *action, const char *path)
{
	for (size_t i = 0; i < r->n_changes; i++)
		if (!strcmp(r->changes[i].action, action) && r->changes[i].path &&
		    !strcmp(r->changes[i].path, path))
			return &r->changes[i];
	return NULL;
}

static struct lp_entry *find(struct lp_entries *l, const char *path)
{
	struct lp_entry *e = lp_entries_find(l, path);

	if (!e)
		fail_msg("no entry %s", path);
	return e;
}

static void test_strip_entries(void **state)
{
	struct lp_entries l;
	struct lp_report rep;
	char *stage = join(tmp, "stage"), *cache = join(tmp, "cache");
	uint8_t before[32], d[32];
	uint64_t total = 0;

	for (int round = 0; round < 2; round++) {
		lp_entries_init(&l);
		lp_report_init(&rep);
		add_file(&l, "bootstrap", fx("hello"), 0);
		add_file(&l, "lib/libfoo.so.1", fx("libfoo.so"), 0);
		add_file(&l, "lib/libnew227.so", fx("libnew227.so"), 0);
		add_file(&l, "lib/libpayload.so", fx("libpayload.so"), 0);
		add_file(&l, "lib/libpydata.so", fx("libpydata.so"), 0);
		add_file(&l, "bin/already", fx("hello-stripped"), 0);
		add_file(&l, "handler.c", fx("hello.c"), 0);
		lp_entries_sort(&l);
		sha_of(fx("hello"), before);

		assert_int_equal(lp_opt_strip(&l, stage, cache, 3, &rep), 0);

		/* Input untouched, entry swapped to a staged, smaller, digested copy. */
		sha_of(fx("hello"), d);
		assert_memory_equal(before, d, 32);
		for (size_t i = 0; i < l.n; i++) {
			struct lp_entry *e = &l.v[i];
			const struct lp_change *c = change_for(&rep, "strip", e->path);

			if (!strcmp(e->path, "bootstrap") || !strncmp(e->path, "lib/libfoo", 10) ||
			    !strcmp(e->path, "lib/libnew227.so") || !strcmp(e->path, "lib/libpydata.so")) {
				assert_true(e->flags & LP_F_STRIPPED);
				assert_true(e->flags & LP_F_HAS_DIGEST);
				assert_non_null(strstr(e->src, stage));
				assert_int_equal(e->size, fsize(e->src));
				assert_true(e->size < e->orig_size);
				assert_int_equal(e->orig_size, fsize(fx(!strcmp(e->path, "bootstrap") ? "hello" :
							!strcmp(e->path, "lib/libfoo.so.1") ? "libfoo.so" :
							!strcmp(e->path, "lib/libnew227.so") ? "libnew227.so" : "libpydata.so")));
				sha_of(e->src, d);
				assert_memory_equal(e->digest, d, 32);
				assert_non_null(c);
				assert_int_equal(c->saved, e->orig_size - e->size);
				if (round == 1)
					assert_non_null(strstr(c->detail, "(cached)"));
				if (!strcmp(e->path, "lib/libpydata.so"))
					assert_non_null(strstr(c->detail, "pydata"));
				if (round == 0)
					total += c->saved;
			} else {
				assert_false(e->flags & LP_F_STRIPPED);
				assert_null(c);
			}
		}
		assert_non_null(strstr(change_for(&rep, "strip-skipped", "lib/libpayload.so")->detail, "trailing-data"));
		assert_non_null(strstr(change_for(&rep, "strip-skipped", "bin/already")->detail, "nothing-to-strip"));
		/* Not ELF: not even considered. */
		assert_null(change_for(&rep, "strip-skipped", "handler.c"));
		assert_int_equal(lp_report_saved(&rep, "strip"), total);
		lp_entries_free(&l);
		lp_report_free(&rep);
	}
	free(stage);
	free(cache);
}

static void make_dedupe_list(struct lp_entries *l)
{
	static const char *const files[] = { "a.so", "b.so", "big1.bin", "big2.bin", "big3.bin", "idx1.js",
					     "idx2.js", "s1.txt", "s2.txt", "samesize1.bin", "samesize2.bin",
					     "tiny1", "tiny2", NULL };
	char *p;

	for (const char *const *f = files; *f; f++) {
		p = join(tmp, *f);
		if (strstr(*f, ".so"))
			assert_int_equal(lp_copy_file(fx("libnew227.so"), p), 0);
		else if (strstr(*f, "big"))
			write_pattern(p, 70000, 1);
		else if (strstr(*f, "samesize"))
			write_pattern(p, 70000, (unsigned)(*f)[8]);	/* same size, other bytes */
		else if (strstr(*f, ".js"))
			write_pattern(p, 100000, 2);
		else if (strstr(*f, "tiny"))
			write_pattern(p, 8, 4);
		else
			write_pattern(p, 100, 3);
		free(p);
	}
	lp_entries_init(l);
#define ADD(path, f) do { char *s_ = join(tmp, f); add_file(l, path, s_, 0); free(s_); } while (0)
	ADD("node_modules/b/lib.so", "b.so");
	ADD("node_modules/a/lib.so", "a.so");
	ADD("data/z.bin", "big3.bin");
	ADD("data/x.bin", "big1.bin");
	ADD("data/y.bin", "big2.bin");
	ADD("node_modules/a/index.js", "idx1.js");
	ADD("node_modules/b/index.js", "idx2.js");
	ADD("s1.txt", "s1.txt");
	ADD("s2.txt", "s2.txt");
	ADD("other/one.bin", "samesize1.bin");
	ADD("other/two.bin", "samesize2.bin");
	/* 8 bytes; a link "../../a/b/tiny" would be longer than the file. */
	ADD("a/b/tiny", "tiny1");
	ADD("c/d/tiny", "tiny2");
#undef ADD
	lp_entries_sort(l);
}

static void test_dedupe_binaries(void **state)
{
	struct lp_entries l;
	struct lp_report rep;

	make_dedupe_list(&l);
	lp_report_init(&rep);
	assert_int_equal(lp_opt_dedupe(&l, LP_DEDUPE_BINARIES, &rep), 0);
	/* Canonical copy is the lexically first path. */
	assert_false(find(&l, "node_modules/a/lib.so")->flags & LP_F_DUPLICATE);
	assert_true(find(&l, "node_modules/b/lib.so")->flags & LP_F_DUPLICATE);
	assert_string_equal(find(&l, "node_modules/b/lib.so")->target, "node_modules/a/lib.so");
	assert_false(find(&l, "data/x.bin")->flags & LP_F_DUPLICATE);
	assert_string_equal(find(&l, "data/y.bin")->target, "data/x.bin");
	assert_string_equal(find(&l, "data/z.bin")->target, "data/x.bin");
	/* Node resolves modules by real path: JS is never linked in this mode; small data neither. */
	assert_false(find(&l, "node_modules/b/index.js")->flags & LP_F_DUPLICATE);
	assert_false(find(&l, "s2.txt")->flags & LP_F_DUPLICATE);
	assert_false(find(&l, "other/two.bin")->flags & LP_F_DUPLICATE);
	/* A copy saves its size minus the link that replaces it ("../a/lib.so", "x.bin"). */
	assert_int_equal(lp_report_saved(&rep, "dedupe"),
			 fsize(fx("libnew227.so")) - strlen("../a/lib.so") + 2 * (70000 - strlen("x.bin")));
	assert_int_equal(rep.n_findings, 1);
	assert_string_equal(rep.findings[0].code, "duplicates");
	/* Found: lib, two bins, js, txt, tiny. */
	assert_non_null(strstr(rep.findings[0].message, "6 duplicate files"));
	/*
	 * Read only what fdupes would: the same-size pair whose first 4 KiB
	 * differ is never hashed in full; every real copy is.
	 */
	assert_false(find(&l, "other/one.bin")->flags & LP_F_HAS_DIGEST);
	assert_false(find(&l, "other/two.bin")->flags & LP_F_HAS_DIGEST);
	for (size_t i = 0; i < l.n; i++)
		if (strncmp(l.v[i].path, "other/", 6) != 0)
			assert_true(l.v[i].flags & LP_F_HAS_DIGEST);
	lp_entries_free(&l);
	lp_report_free(&rep);
}

static void test_dedupe_all_and_off(void **state)
{
	struct lp_entries l;
	struct lp_report rep;

	make_dedupe_list(&l);
	lp_report_init(&rep);
	assert_int_equal(lp_opt_dedupe(&l, LP_DEDUPE_ALL, &rep), 0);
	assert_string_equal(find(&l, "node_modules/b/index.js")->target, "node_modules/a/index.js");
	assert_string_equal(find(&l, "s2.txt")->target, "s1.txt");
	assert_false(find(&l, "other/two.bin")->flags & LP_F_DUPLICATE);
	/* Even in "all" mode, a link longer than the file would grow the zip. */
	assert_false(find(&l, "c/d/tiny")->flags & LP_F_DUPLICATE);
	lp_entries_free(&l);
	lp_report_free(&rep);

	make_dedupe_list(&l);
	lp_report_init(&rep);
	assert_int_equal(lp_opt_dedupe(&l, LP_DEDUPE_OFF, &rep), 0);
	for (size_t i = 0; i < l.n; i++)
		assert_false(l.v[i].flags & LP_F_DUPLICATE);
	assert_int_equal(rep.n_changes, 0);
	assert_int_equal(rep.n_findings, 1);	/* measured, not applied */
	lp_entries_free(&l);
	lp_report_free(&rep);
}

static void test_dedupe_mode_parse(void **state)
{
	enum lp_dedupe_mode m;

	assert_int_equal(lp_dedupe_mode_parse("binaries", &m), 0);
	assert_int_equal(m, LP_DEDUPE_BINARIES);
	assert_int_equal(lp_dedupe_mode_parse("all", &m), 0);
	assert_int_equal(m, LP_DEDUPE_ALL);
	assert_int_equal(lp_dedupe_mode_parse("bogus", &m), -LP_E_USAGE);
}

static void test_prune_foreign(void **state)
{
	struct lp_entries l;
	struct lp_report rep;

	lp_entries_init(&l);
	lp_report_init(&rep);
	add_file(&l, "bootstrap", fx("hello"), 0);
	add_file(&l, "node_modules/sharp/build/Release/sharp.node", fx("macho-fat"), 0);
	add_file(&l, "vendor/win/x.dll", fx("pe-x86_64.dll"), 0);
	/* The function's own foreign binary stays: the checks report it as an error. */
	add_file(&l, "tools/own.dll", fx("pe-x86_64.dll"), 0);
	add_file(&l, "lib/libfoo.a", fx("libhello.a"), 0);
	add_file(&l, "README", fx("hello.c"), 0);
	if (have("libfoo-aarch64.so"))
		add_file(&l, "python/arm/libfoo.so", fx("libfoo-aarch64.so"), 0);
	lp_entries_sort(&l);
	assert_int_equal(lp_opt_prune_foreign(&l, LP_ARCH_X86_64, &rep), 0);
	assert_false(find(&l, "bootstrap")->flags & LP_F_REMOVED);
	assert_non_null(find(&l, "bootstrap")->bin);	/* facts kept for later passes */
	assert_false(find(&l, "lib/libfoo.a")->flags & LP_F_REMOVED);
	assert_false(find(&l, "README")->flags & LP_F_REMOVED);
	assert_true(find(&l, "node_modules/sharp/build/Release/sharp.node")->flags & LP_F_REMOVED);
	assert_true(find(&l, "vendor/win/x.dll")->flags & LP_F_REMOVED);
	assert_false(find(&l, "tools/own.dll")->flags & LP_F_REMOVED);
	assert_non_null(strstr(change_for(&rep, "prune-foreign", "node_modules/sharp/build/Release/sharp.node")->detail,
			       "x86_64, arm64"));
	if (have("libfoo-aarch64.so")) {
		assert_true(find(&l, "python/arm/libfoo.so")->flags & LP_F_REMOVED);
		assert_int_equal(change_for(&rep, "prune-foreign", "python/arm/libfoo.so")->saved,
				 fsize(fx("libfoo-aarch64.so")));
	}
	lp_entries_free(&l);
	lp_report_free(&rep);
}


static void make_mixed_list(struct lp_entries *l)
{
	char *big = join(tmp, "mixed.bin");

	write_pattern(big, 90000, 5);
	lp_entries_init(l);
	add_file(l, "bootstrap", fx("hello"), 0);
	add_file(l, "lib/libfoo.so.1", fx("libfoo.so"), 0);
	add_file(l, "vendor/x/libfoo.so.1", fx("libfoo.so"), 0);	/* a copy: dedupe after strip */
	add_file(l, "node_modules/sharp/build/Release/sharp.node", fx("macho-fat"), 0);
	add_file(l, "node_modules/sharp/README.md", fx("hello.c"), 0);
	add_file(l, "node_modules/sharp/test/a.c", fx("foo.c"), 0);
	add_file(l, "data/a.bin", big, 0);
	add_file(l, "data/b.bin", big, 0);
	add_file(l, "handler.c", fx("hello.c"), 0);
	if (have("libfoo-aarch64.so"))
		add_file(l, "vendor/arm/libfoo.so", fx("libfoo-aarch64.so"), 0);
	lp_entries_sort(l);
	free(big);
}

/* The dry run analyze uses and the real run pack uses agree, step by step. */
static void test_optimize_dry_run_matches_real(void **state)
{
	struct lp_entries real, dry;
	struct lp_report rr, rd;
	struct lp_opt_saved sr, sd;
	struct lp_opt_set set = { .prune_foreign = true, .prune_junk = true, .strip = true,
				  .dedupe = LP_DEDUPE_BINARIES, .arch = LP_ARCH_X86_64, .threads = 2 };
	char *stage = join(tmp, "opt-stage");

	(void)state;
	assert_int_equal(lp_mkdir_p(stage, 0700), 0);
	make_mixed_list(&real);
	make_mixed_list(&dry);
	lp_report_init(&rr);
	lp_report_init(&rd);
	set.stage_dir = stage;
	assert_int_equal(lp_optimize(&real, &set, &rr, &sr), 0);
	set.stage_dir = NULL;
	assert_int_equal(lp_optimize(&dry, &set, &rd, &sd), 0);

	assert_true(sr.strip > 0 && sr.dedupe > 0 && sr.foreign > 0 && sr.junk > 0);
	assert_int_equal(sd.foreign, sr.foreign);
	assert_int_equal(sd.junk, sr.junk);
	assert_int_equal(sd.strip, sr.strip);
	assert_int_equal(sd.dedupe, sr.dedupe);
	assert_int_equal(sd.total, sr.total);
	assert_int_equal(sd.n_strip, sr.n_strip);
	assert_int_equal(sd.n_dedupe, sr.n_dedupe);
	assert_int_equal(sr.total, sr.foreign + sr.junk + sr.strip + sr.dedupe);
	assert_int_equal(lp_entries_unzipped_size(&dry), lp_entries_unzipped_size(&real));
	/* The copy is deduplicated after strip, against the lexically first path. */
	assert_string_equal(find(&real, "vendor/x/libfoo.so.1")->target, "lib/libfoo.so.1");
	assert_string_equal(find(&dry, "vendor/x/libfoo.so.1")->target, "lib/libfoo.so.1");
	/* Removed entries are gone from both lists. */
	assert_null(lp_entries_find(&dry, "node_modules/sharp/README.md"));
	assert_null(lp_entries_find(&real, "node_modules/sharp/build/Release/sharp.node"));
	/* Nothing staged by the dry run: its sources are still the inputs. */
	assert_string_equal(find(&dry, "lib/libfoo.so.1")->src, fx("libfoo.so"));
	lp_entries_free(&real);
	lp_entries_free(&dry);
	lp_report_free(&rr);
	lp_report_free(&rd);
	lp_rm_rf(stage);
	free(stage);
}

static void test_detect_arch(void **state)
{
	struct lp_entries l;

	lp_entries_init(&l);
	assert_int_equal(lp_detect_arch(&l), LP_ARCH_X86_64);
	if (!have("hello-aarch64"))
		skip();
	add_file(&l, "bootstrap", fx("hello-aarch64"), 0);
	add_file(&l, "lib/libfoo.so", fx("libfoo-aarch64.so"), 0);
	add_file(&l, "tools/x", fx("libnew227.so"), 0);
	add_file(&l, "mac", fx("macho-x86_64"), 0);
	lp_entries_sort(&l);
	assert_int_equal(lp_detect_arch(&l), LP_ARCH_ARM64);
	/* More x86-64 bytes than arm64 bytes tips it back. */
	for (int i = 0; i < 8; i++) {
		char p[32];

		snprintf(p, sizeof(p), "x86/%d.so", i);
		add_file(&l, p, fx("libfoo-emitrelocs.so"), 0);
	}
	lp_entries_sort(&l);
	assert_int_equal(lp_detect_arch(&l), LP_ARCH_X86_64);
	lp_entries_free(&l);
}

static void test_prune_junk(void **state)
{
	static const struct {
		const char *path;
		bool removed;
	} cases[] = {
		{ "node_modules/foo/README.md", true },
		{ "node_modules/foo/readme", true },
		{ "node_modules/foo/CHANGELOG.md", true },
		{ "node_modules/foo/History.md", true },
		{ "node_modules/history/history.js", false },	/* code, not a changelog */
		{ "node_modules/foo/readme.js", false },
		{ "node_modules/foo/LICENSE", false },
		{ "node_modules/foo/package.json", false },
		{ "node_modules/foo/test/a.js", true },
		{ "node_modules/foo/__tests__/a.js", true },
		{ "node_modules/foo/docs/api.html", true },
		{ "node_modules/test/index.js", false },	/* a package called "test" */
		{ "node_modules/@scope/docs/index.js", false },	/* a scoped package called "docs" */
		{ "node_modules/@scope/pkg/tests/x.js", true },
		{ "node_modules/foo/dist/x.js.map", true },
		{ "node_modules/foo/index.d.ts", true },
		{ "node_modules/foo/index.js", false },
		{ "node_modules/foo/.github/workflows/ci.yml", true },
		{ "node_modules/a/node_modules/b/test/t.js", true },
		{ "python/lib/python3.12/site-packages/pkg/__pycache__/m.cpython-312.pyc", true },
		{ "python/lib/python3.12/site-packages/pkg/tests/test_x.py", true },
		{ "python/lib/python3.12/site-packages/pkg/core.py", false },
		{ "python/lib/python3.12/site-packages/pkg-1.0.dist-info/METADATA", false },
		{ "python/requests/docs/x.txt", true },
		{ "site-packages/pkg/x.pyc", true },
		{ "site-packages/pkg/data.map", false },	/* *.map is a Node rule only */
		{ "vendor/lib/README.md", true },
		/* The function's own files are never touched. */
		{ "README.md", false },
		{ "tests/test_handler.py", false },
		{ "__pycache__/handler.cpython-312.pyc", false },
		{ "app.js.map", false },
		{ "docs/index.html", false },
		{ "src/test/x.js", false },
		{ "node_modules/foo/notes.txt", true },		/* extra pattern */
		{ "notes.txt", false },
	};
	struct lp_entries l;
	struct lp_report rep;
	struct lp_strv extra = { 0 };
	uint64_t want = 0;

	lp_entries_init(&l);
	lp_report_init(&rep);
	assert_int_equal(lp_strv_push(&extra, "*.txt"), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		add_file(&l, cases[i].path, NULL, 100 + i);
		if (cases[i].removed)
			want += 100 + i;
	}
	add_dir(&l, "node_modules/foo/test");
	add_dir(&l, "node_modules/foo");
	lp_entries_sort(&l);
	assert_int_equal(lp_opt_prune_junk(&l, &extra, &rep), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool got = find(&l, cases[i].path)->flags & LP_F_REMOVED;

		if (got != cases[i].removed)
			fail_msg("%s: removed=%d, want %d", cases[i].path, got, cases[i].removed);
	}
	assert_true(find(&l, "node_modules/foo/test")->flags & LP_F_REMOVED);
	assert_false(find(&l, "node_modules/foo")->flags & LP_F_REMOVED);
	assert_int_equal(lp_report_saved(&rep, "prune-junk"), want);
	assert_non_null(change_for(&rep, "prune-junk", "node_modules/foo"));
	assert_non_null(lp_junk_rules()[0]);
	lp_strv_free(&extra);
	lp_entries_free(&l);
	lp_report_free(&rep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strip_entries),
		cmocka_unit_test(test_dedupe_binaries),
		cmocka_unit_test(test_dedupe_all_and_off),
		cmocka_unit_test(test_dedupe_mode_parse),
		cmocka_unit_test(test_prune_foreign),
		cmocka_unit_test(test_detect_arch),
		cmocka_unit_test(test_prune_junk),
		cmocka_unit_test(test_optimize_dry_run_matches_real),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
