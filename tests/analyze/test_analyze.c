/* SPDX-License-Identifier: MIT */
/* Unit tests of lp_analyze_*: grouping, Dive metrics, diff, budgets, findings, hostile images. */
/* cmocka asserts do not tell the compiler a pointer is non-NULL past them. */
#pragma GCC diagnostic ignored "-Wnull-dereference"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "analyze/analyze.h"
#include "analyze/internal.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "core/hash.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ----------------------------------------------------------- */

static struct lp_entry *add(struct lp_analysis *a, const char *path, enum lp_kind kind, uint64_t size, uint8_t tag)
{
	struct lp_entry *e = lp_entries_push(&a->entries, path, kind);

	assert_non_null(e);
	e->size = e->orig_size = size;
	if (kind == LP_FILE) {
		memset(e->digest, tag, sizeof(e->digest));
		e->flags |= LP_F_HAS_DIGEST;
	}
	return e;
}

static struct lp_binfo *binfo(enum lp_binfmt fmt, enum lp_arch arch)
{
	struct lp_binfo *b = calloc(1, sizeof(*b));

	assert_non_null(b);
	b->fmt = fmt;
	b->arch = arch;
	b->os = fmt == LP_BIN_ELF ? LP_OS_LINUX : fmt == LP_BIN_PE ? LP_OS_WINDOWS : LP_OS_MACOS;
	/* A 64-bit shared object: the shared checks look only at what the loader maps. */
	b->e_type = fmt == LP_BIN_ELF ? 3 : 0;
	b->elf_class = 2;
	b->arch_mask = 1u << arch;
	return b;
}

static void finish(struct lp_analysis *a, const struct lp_ana_opts *o)
{
	lp_entries_sort(&a->entries);
	assert_int_equal(lp_entries_add_parents(&a->entries), 0);
	assert_int_equal(lp_analyze_compute(a, o), 0);
}

static const struct lp_finding *finding(const struct lp_analysis *a, const char *code, const char *path)
{
	for (size_t i = 0; i < a->report.n_findings; i++)
		if (!strcmp(a->report.findings[i].code, code) &&
		    (!path || (a->report.findings[i].path && !strcmp(a->report.findings[i].path, path))))
			return &a->report.findings[i];
	return NULL;
}

static const struct lp_change *change(const struct lp_analysis *a, const char *action, const char *path)
{
	for (size_t i = 0; i < a->report.n_changes; i++)
		if (!strcmp(a->report.changes[i].action, action) && !strcmp(a->report.changes[i].path, path))
			return &a->report.changes[i];
	return NULL;
}

static const struct lp_ana_contrib *contrib(const struct lp_ana_contrib *c, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(c[i].name, name))
			return &c[i];
	return NULL;
}

static char *tmpdir(void)
{
	char *d = NULL;

	assert_int_equal(lp_tmpdir_create("anatest", &d), 0);
	return d;
}

/* ---- package grouping -------------------------------------------------- */

static void test_grouping_paths(void **state)
{
	char buf[256];
	const char *kind;

	(void)state;
	assert_string_equal(lp_analyze_package("node_modules/lodash/fp/map.js", buf, sizeof(buf), &kind),
			    "node_modules/lodash");
	assert_string_equal(kind, "node");
	assert_string_equal(lp_analyze_package("node_modules/@aws-sdk/client-s3/dist/index.js", buf, sizeof(buf), &kind),
			    "node_modules/@aws-sdk/client-s3");
	assert_string_equal(lp_analyze_package("node_modules/a/node_modules/b/x.js", buf, sizeof(buf), &kind),
			    "node_modules/a/node_modules/b");
	assert_string_equal(lp_analyze_package("nodejs/node_modules/@s/p/x", buf, sizeof(buf), &kind),
			    "nodejs/node_modules/@s/p");
	assert_string_equal(lp_analyze_package("python/lib/python3.12/site-packages/numpy/core/x.so", buf, sizeof(buf), &kind),
			    "python/lib/python3.12/site-packages/numpy");
	assert_string_equal(kind, "python");
	assert_string_equal(lp_analyze_package("python/requests/api.py", buf, sizeof(buf), &kind), "python/requests");
	assert_string_equal(kind, "python");
	assert_string_equal(lp_analyze_package("vendor/guzzle/src/Client.php", buf, sizeof(buf), &kind), "vendor/guzzle");
	assert_string_equal(kind, "vendor");
	assert_string_equal(lp_analyze_package("vendor/bundle/ruby/3.2.0/gems/nokogiri-1.15/lib/x.rb", buf, sizeof(buf), &kind),
			    "vendor/bundle/ruby/3.2.0/gems/nokogiri-1.15");
	assert_string_equal(lp_analyze_package("src/handler.js", buf, sizeof(buf), &kind), "src");
	assert_string_equal(kind, "top");
	assert_string_equal(lp_analyze_package("index.js", buf, sizeof(buf), &kind), "index.js");
}

static void test_grouping_record(void **state)
{
	struct lp_analysis a;
	struct lp_ana_opts o;
	const char rec[] = "yaml/__init__.py,sha256=abc,100\n"
			   "_yaml/x.so,sha256=abc,1000\n"
			   "\"odd,name.py\",sha256=abc,5\n"
			   "PyYAML-6.0.dist-info/RECORD,,\n"
			   "../../../bin/evil,,\n";
	const struct lp_ana_contrib *c;

	(void)state;
	lp_analysis_init(&a);
	lp_ana_opts_init(&o);
	add(&a, "yaml/__init__.py", LP_FILE, 100, 1);
	add(&a, "_yaml/x.so", LP_FILE, 1000, 2);
	add(&a, "odd,name.py", LP_FILE, 5, 3);
	add(&a, "PyYAML-6.0.dist-info/RECORD", LP_FILE, sizeof(rec) - 1, 4);
	add(&a, "pkg/__init__.py", LP_FILE, 7, 5);
	add(&a, "pkg/mod.py", LP_FILE, 8, 6);
	assert_int_equal(ana_add_record(&a, "PyYAML-6.0.dist-info/RECORD", rec, sizeof(rec) - 1), 0);
	finish(&a, &o);
	c = contrib(a.packages, a.n_packages, "PyYAML");
	assert_non_null(c);
	assert_string_equal(c->kind, "python");
	assert_int_equal(c->bytes, 100 + 1000 + 5 + sizeof(rec) - 1);
	assert_int_equal(c->count, 4);
	c = contrib(a.packages, a.n_packages, "pkg");
	assert_non_null(c);
	assert_string_equal(c->kind, "python");	/* has __init__.py */
	assert_int_equal(c->bytes, 15);
	assert_string_equal(a.packages[0].name, "PyYAML");	/* largest first */
	/* Directory level: cumulative over the subtree. */
	c = contrib(a.dirs, a.n_dirs_c, "pkg");
	assert_int_equal(c->bytes, 15);
	assert_int_equal(c->count, 2);
	lp_analysis_free(&a);
}

/* ---- budgets ------------------------------------------------------------ */

static void test_budget_arithmetic(void **state)
{
	struct lp_budget b;
	struct lp_analysis a;
	struct lp_ana_opts o;

	(void)state;
	lp_budget_unzipped(262143999ULL, 0, &b);
	assert_false(b.over);
	assert_int_equal(b.headroom, 0);
	lp_budget_unzipped(262144000ULL, 0, &b);
	assert_true(b.over);
	assert_int_equal(b.over_by, 1);
	/* Layers shrink the limit: 262144000 - 6969053 = 255174947 (the AWS message). */
	lp_budget_unzipped(255174946ULL, 6969053ULL, &b);
	assert_int_equal(b.limit, 255174947ULL);
	assert_false(b.over);
	lp_budget_unzipped(255174947ULL, 6969053ULL, &b);
	assert_true(b.over);

	lp_ana_opts_init(&o);
	lp_analysis_init(&a);
	add(&a, "big.bin", LP_FILE, 262143999ULL, 1);
	finish(&a, &o);
	assert_false(a.b_unzipped.over);
	assert_null(finding(&a, "over-unzipped-limit", NULL));
	assert_true(a.b_unzipped.pct < 100.0);
	lp_analysis_free(&a);

	lp_analysis_init(&a);
	add(&a, "big.bin", LP_FILE, 262144000ULL, 1);
	finish(&a, &o);
	assert_true(a.b_unzipped.over);
	assert_int_equal(a.b_unzipped.over_by, 1);
	assert_non_null(finding(&a, "over-unzipped-limit", NULL));
	assert_int_equal(finding(&a, "over-unzipped-limit", NULL)->sev, LP_SEV_ERROR);
	lp_analysis_free(&a);

	/* The zipped budget (estimate: stored_size + headers). */
	lp_analysis_init(&a);
	add(&a, "z", LP_FILE, 60000000ULL, 1)->stored_size = 52428800ULL;
	finish(&a, &o);
	assert_true(a.zipped_estimated);
	assert_int_equal(a.zipped, 52428800ULL + 76 + 2 + 22);
	assert_true(a.b_zipped.over);
	assert_non_null(finding(&a, "over-zipped-limit", NULL));
	lp_analysis_free(&a);
}

/* ---- each finding and saving kind -------------------------------------- */

static void test_findings(void **state)
{
	struct lp_analysis a;
	struct lp_ana_opts o;
	struct lp_entry *e;
	const struct lp_change *c;

	(void)state;
	lp_ana_opts_init(&o);
	o.runtime = lp_runtime_find("python3.12");
	o.arch = LP_ARCH_X86_64;
	lp_analysis_init(&a);

	e = add(&a, "bootstrap", LP_FILE, 100000, 1);
	e->binfmt = LP_BIN_ELF;
	e->bin = binfo(LP_BIN_ELF, LP_ARCH_X86_64);
	e->bin->glibc_major = 2;
	e->bin->glibc_minor = 38;
	e->bin->debug_bytes = 30000;
	e->bin->symtab_bytes = 5000;
	/* What a reader's lp_strip_plan_fd found: the dry run uses it, not the section sums. */
	e->bin->strip_planned = true;
	e->bin->strip_after = 65000;
	e->bin->needed = calloc(3, sizeof(char *));
	e->bin->needed[0] = strdup("libc.so.6");
	e->bin->needed[1] = strdup("libfoo.so.1");
	e->bin->needed[2] = strdup("libbar.so.2");
	e->bin->n_needed = 3;
	add(&a, "lib/libbar.so.2", LP_FILE, 10, 2);

	e = add(&a, "lib/arm.so", LP_FILE, 4000, 3);
	e->binfmt = LP_BIN_ELF;
	e->bin = binfo(LP_BIN_ELF, LP_ARCH_ARM64);

	e = add(&a, "node_modules/sharp/build/Release/sharp.node", LP_FILE, 5000, 4);
	e->binfmt = LP_BIN_MACHO;
	e->bin = binfo(LP_BIN_MACHO, LP_ARCH_ARM64);

	e = add(&a, "tools/x.exe", LP_FILE, 600, 5);
	e->binfmt = LP_BIN_PE;

	add(&a, "node_modules/sharp/README.md", LP_FILE, 700, 6);
	add(&a, "node_modules/sharp/test/t.js", LP_FILE, 800, 7);
	add(&a, "python/pkg/__pycache__/m.cpython-312.pyc", LP_FILE, 900, 8);
	/* The function's own files are never junk, as in pack -O. */
	add(&a, "app/__pycache__/m.cpython-312.pyc", LP_FILE, 300, 11);
	/* Two copies of a large data file, and two of a small text file (not deduped by -O). */
	add(&a, "data/a.bin", LP_FILE, 200000, 9);
	add(&a, "data/b.bin", LP_FILE, 200000, 9);
	add(&a, "t1.txt", LP_FILE, 50, 10);
	add(&a, "t2.txt", LP_FILE, 50, 10);
	finish(&a, &o);

	assert_int_equal(finding(&a, "glibc-too-new", "bootstrap")->sev, LP_SEV_ERROR);
	assert_non_null(strstr(finding(&a, "glibc-too-new", "bootstrap")->message, "GLIBC_2.38"));
	assert_int_equal(finding(&a, "wrong-arch", "lib/arm.so")->sev, LP_SEV_ERROR);
	assert_int_equal(finding(&a, "foreign-binary", "node_modules/sharp/build/Release/sharp.node")->sev, LP_SEV_ERROR);
	/* A Mach-O/PE file among the function's own files is an error (pack and analyze share the check). */
	assert_int_equal(finding(&a, "foreign-binary", "tools/x.exe")->sev, LP_SEV_ERROR);
	assert_non_null(finding(&a, "missing-library", "bootstrap"));
	assert_non_null(strstr(finding(&a, "missing-library", "bootstrap")->message, "libfoo.so.1"));
	/* libc is in the runtime and libbar ships with the function: one missing only. */
	{
		size_t n = 0;

		for (size_t i = 0; i < a.report.n_findings; i++)
			n += !strcmp(a.report.findings[i].code, "missing-library");
		assert_int_equal(n, 1);
	}

	c = change(&a, "strip", "bootstrap");
	assert_non_null(c);
	assert_int_equal(c->saved, 35000);
	/* The function's own binaries are reported, never pruned: only dependencies are. */
	assert_null(change(&a, "prune-foreign", "lib/arm.so"));
	assert_null(change(&a, "prune-foreign", "tools/x.exe"));
	assert_non_null(change(&a, "prune-foreign", "node_modules/sharp/build/Release/sharp.node"));
	/* pack's prune-junk reports per package and rule. */
	c = change(&a, "prune-junk", "node_modules/sharp");
	assert_non_null(c);
	assert_int_equal(c->saved, 700);	/* README*, then test/ is a second change */
	assert_non_null(change(&a, "prune-junk", "python/pkg"));
	assert_null(change(&a, "prune-junk", "app"));
	c = change(&a, "dedupe", "data/b.bin");
	assert_non_null(c);
	assert_int_equal(c->saved, 200000 - strlen("a.bin"));
	assert_null(change(&a, "dedupe", "t2.txt"));
	/* Duplicate groups list every copy; wasted counts all but one. */
	assert_int_equal(a.n_dups, 2);
	assert_int_equal(a.dups[0].wasted, 200000);
	assert_string_equal(a.dups[0].paths[0], "data/a.bin");

	assert_int_equal(a.savings.strip, 35000);
	assert_int_equal(a.savings.foreign, 5000);
	assert_int_equal(a.savings.junk, 700 + 800 + 900);
	assert_int_equal(a.savings.dedupe, 200000 - 5);
	assert_int_equal(a.savings.total, a.savings.strip + a.savings.foreign + a.savings.junk + a.savings.dedupe);
	lp_analysis_free(&a);
}

/* ---- diff on digests: same-size edits, renames, modes --------------------- */

static void test_diff_digests(void **state)
{
	struct lp_analysis o1, n1;
	struct lp_ana_opts o;
	struct lp_ana_diff d;

	(void)state;
	lp_ana_opts_init(&o);
	lp_analysis_init(&o1);
	lp_analysis_init(&n1);
	add(&o1, "app/edit.js", LP_FILE, 100, 1);
	add(&o1, "app/old-name.bin", LP_FILE, 4000, 2);
	add(&o1, "app/run.sh", LP_FILE, 30, 3)->mode = 0644;
	add(&o1, "app/empty-a", LP_FILE, 0, 0);
	add(&n1, "app/edit.js", LP_FILE, 100, 9);	/* same size, other bytes */
	add(&n1, "app/new-name.bin", LP_FILE, 4000, 2);	/* same bytes, new path */
	add(&n1, "app/run.sh", LP_FILE, 30, 3)->mode = 0755;
	add(&n1, "app/empty-b", LP_FILE, 0, 0);	/* not a rename: empty files are all alike */
	finish(&o1, &o);
	finish(&n1, &o);
	assert_int_equal(lp_analyze_diff(&o1, &n1, &d), 0);
	assert_int_equal(d.n_files, 5);
	assert_int_equal(d.n_changed, 1);
	assert_int_equal(d.n_renamed, 1);
	assert_int_equal(d.n_mode, 1);
	assert_int_equal(d.n_added, 1);
	assert_int_equal(d.n_removed, 1);
	for (size_t i = 0; i < d.n_files; i++) {
		const struct lp_ana_delta *x = &d.files[i];

		if (!strcmp(x->name, "app/edit.js"))
			assert_string_equal(x->status, "changed");
		else if (!strcmp(x->name, "app/new-name.bin"))
			assert_true(!strcmp(x->status, "renamed") && x->old_name && !strcmp(x->old_name, "app/old-name.bin"));
		else if (!strcmp(x->name, "app/run.sh"))
			assert_true(!strcmp(x->status, "mode") && x->old_mode == 0644 && x->new_mode == 0755);
		else if (!strcmp(x->name, "app/empty-b"))
			assert_string_equal(x->status, "added");
		else
			assert_true(!strcmp(x->name, "app/empty-a") && !strcmp(x->status, "removed"));
	}
	/* Same bytes in the package overall, but its content changed. */
	assert_int_equal(d.n_packages, 1);
	assert_string_equal(d.packages[0].name, "app");
	assert_string_equal(d.packages[0].status, "changed");
	assert_int_equal(d.total_delta, 0);
	lp_ana_diff_free(&d);
	lp_analysis_free(&o1);
	lp_analysis_free(&n1);
}

/* ---- diff ordering ------------------------------------------------------ */

static void test_diff_ordering(void **state)
{
	struct lp_analysis o1, n1;
	struct lp_ana_opts o;
	struct lp_ana_diff d;

	(void)state;
	lp_ana_opts_init(&o);
	lp_analysis_init(&o1);
	lp_analysis_init(&n1);
	add(&o1, "node_modules/a/x.js", LP_FILE, 1000, 1);
	add(&o1, "node_modules/b/x.js", LP_FILE, 5000, 2);
	add(&o1, "node_modules/gone/x.js", LP_FILE, 300, 3);
	add(&o1, "same.js", LP_FILE, 10, 4);
	add(&n1, "node_modules/a/x.js", LP_FILE, 1500, 1);	/* +500 */
	add(&n1, "node_modules/b/x.js", LP_FILE, 2000, 2);	/* -3000 */
	add(&n1, "node_modules/new/x.js", LP_FILE, 700, 5);	/* +700 */
	add(&n1, "same.js", LP_FILE, 10, 4);
	finish(&o1, &o);
	finish(&n1, &o);
	assert_int_equal(lp_analyze_diff(&o1, &n1, &d), 0);
	assert_int_equal(d.n_packages, 4);
	assert_string_equal(d.packages[0].name, "node_modules/b");
	assert_int_equal(d.packages[0].delta, -3000);
	assert_string_equal(d.packages[0].status, "shrank");
	assert_string_equal(d.packages[1].name, "node_modules/new");
	assert_string_equal(d.packages[1].status, "added");
	assert_string_equal(d.packages[2].name, "node_modules/a");
	assert_int_equal(d.packages[2].delta, 500);
	assert_string_equal(d.packages[3].name, "node_modules/gone");
	assert_int_equal(d.packages[3].delta, -300);
	assert_string_equal(d.packages[3].status, "removed");
	assert_int_equal(d.n_files, 4);
	assert_string_equal(d.files[0].name, "node_modules/b/x.js");
	assert_int_equal(d.total_delta, (int64_t)(1500 + 2000 + 700 + 10) - (1000 + 5000 + 300 + 10));
	lp_ana_diff_free(&d);
	lp_analysis_free(&o1);
	lp_analysis_free(&n1);
}

/* ---- images built with libarchive -------------------------------------- */

struct tentry {
	const char *name;
	int type;		/* 'd', 'f' */
	size_t size;
	char fill;
};

/* Write a layer tar with the given compression (0 none, 'g' gzip, 'z' zstd) into a memory buffer. */
static uint8_t *make_tar(const struct tentry *t, size_t n, int comp, size_t *ret_len)
{
	struct archive *aw = archive_write_new();
	size_t cap = 1 << 20, used = 0;
	uint8_t *buf = malloc(cap);

	assert_non_null(aw);
	assert_non_null(buf);
	archive_write_set_format_pax_restricted(aw);
	if (comp == 'g')
		archive_write_add_filter_gzip(aw);
	else if (comp == 'z')
		assert_int_equal(archive_write_add_filter_zstd(aw), ARCHIVE_OK);
	archive_write_set_bytes_in_last_block(aw, 1);
	assert_int_equal(archive_write_open_memory(aw, buf, cap, &used), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *ae = archive_entry_new();
		char *data = malloc(t[i].size + 1);

		memset(data, t[i].fill, t[i].size);
		archive_entry_set_pathname(ae, t[i].name);
		archive_entry_set_filetype(ae, t[i].type == 'd' ? AE_IFDIR : AE_IFREG);
		archive_entry_set_perm(ae, t[i].type == 'd' ? 0755 : 0644);
		archive_entry_set_size(ae, t[i].type == 'd' ? 0 : (la_int64_t)t[i].size);
		assert_int_equal(archive_write_header(aw, ae), ARCHIVE_OK);
		if (t[i].size)
			assert_int_equal(archive_write_data(aw, data, t[i].size), (la_ssize_t)t[i].size);
		archive_entry_free(ae);
		free(data);
	}
	assert_int_equal(archive_write_close(aw), ARCHIVE_OK);
	archive_write_free(aw);
	*ret_len = used;
	return buf;
}

static void sha_hex(const void *p, size_t n, char out[72])
{
	uint8_t d[32];

	lp_sha256(p, n, d);
	memcpy(out, "sha256:", 7);
	lp_hex(d, 32, out + 7);
}

static void write_file(const char *dir, const char *name, const void *p, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

/*
 * Layers (sizes in bytes):
 *   L0 (gzip): a/ a/f1=100 a/f2=200 b/ b/x=50 keep=10
 *   L1 (zstd): [a/ if explicit_a] a/f1=150 b/.wh..wh..opq b/y=30 .wh.keep
 *   L2 (none): .wh.a c=5
 */
static void build_image(const char *dir, bool explicit_a, bool docker_tar, const char *tarpath)
{
	struct tentry l0[] = {
		{ "a/", 'd', 0, 0 }, { "a/f1", 'f', 100, 'x' }, { "a/f2", 'f', 200, 'y' },
		{ "b/", 'd', 0, 0 }, { "b/x", 'f', 50, 'z' }, { "keep", 'f', 10, 'k' },
	};
	struct tentry l1[] = {
		{ "a/", 'd', 0, 0 }, { "a/f1", 'f', 150, 'w' }, { "b/.wh..wh..opq", 'f', 0, 0 },
		{ "b/y", 'f', 30, 'q' }, { ".wh.keep", 'f', 0, 0 },
	};
	struct tentry l2[] = { { ".wh.a", 'f', 0, 0 }, { "c", 'f', 5, 'c' } };
	const char *mts[] = { "application/vnd.oci.image.layer.v1.tar+gzip",
			      "application/vnd.oci.image.layer.v1.tar+zstd",
			      "application/vnd.oci.image.layer.v1.tar" };
	uint8_t *blob[3];
	size_t blen[3];
	char dg[3][72], cdg[72], mdg[72], path[4096], json[8192];
	const char *cfg = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]},"
			  "\"history\":[{\"created_by\":\"base\"},{\"created_by\":\"ENV\",\"empty_layer\":true},"
			  "{\"created_by\":\"RUN overwrite\"},{\"created_by\":\"RUN rm\"}]}";

	blob[0] = make_tar(l0, 6, 'g', &blen[0]);
	blob[1] = make_tar(explicit_a ? l1 : l1 + 1, explicit_a ? 5 : 4, 'z', &blen[1]);
	blob[2] = make_tar(l2, 2, 0, &blen[2]);
	snprintf(path, sizeof(path), "%s/blobs/sha256", dir);
	assert_int_equal(lp_mkdir_p(path, 0755), 0);
	for (int i = 0; i < 3; i++) {
		sha_hex(blob[i], blen[i], dg[i]);
		snprintf(path, sizeof(path), "blobs/sha256/%s", dg[i] + 7);
		write_file(dir, path, blob[i], blen[i]);
	}
	sha_hex(cfg, strlen(cfg), cdg);
	snprintf(path, sizeof(path), "blobs/sha256/%s", cdg + 7);
	write_file(dir, path, cfg, strlen(cfg));
	snprintf(json, sizeof(json),
		 "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		 "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":%zu},"
		 "\"layers\":[{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu},{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu},"
		 "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu}]}",
		 cdg, strlen(cfg), mts[0], dg[0], blen[0], mts[1], dg[1], blen[1], mts[2], dg[2], blen[2]);
	sha_hex(json, strlen(json), mdg);
	snprintf(path, sizeof(path), "blobs/sha256/%s", mdg + 7);
	write_file(dir, path, json, strlen(json));
	snprintf(json, sizeof(json), "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
		 "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\",\"size\":%zu}]}", mdg, strlen(json));
	write_file(dir, "index.json", json, strlen(json));
	write_file(dir, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 30);
	if (docker_tar) {
		/* docker save: the same blobs as member files, manifest.json last. */
		struct archive *aw = archive_write_new();
		char man[2048];

		snprintf(man, sizeof(man), "[{\"Config\":\"blobs/sha256/%s\",\"RepoTags\":[\"fn:1\"],\"Layers\":["
			 "\"blobs/sha256/%s\",\"blobs/sha256/%s\",\"blobs/sha256/%s\"]}]",
			 cdg + 7, dg[0] + 7, dg[1] + 7, dg[2] + 7);
		archive_write_set_format_pax_restricted(aw);
		assert_int_equal(archive_write_open_filename(aw, tarpath), ARCHIVE_OK);
		for (int i = 0; i < 5; i++) {
			struct archive_entry *ae = archive_entry_new();
			const void *p = i < 3 ? (const void *)blob[i] : i == 3 ? (const void *)cfg : (const void *)man;
			size_t n = i < 3 ? blen[i] : strlen(p);
			char name[256];

			if (i < 3)
				snprintf(name, sizeof(name), "blobs/sha256/%s", dg[i] + 7);
			else if (i == 3)
				snprintf(name, sizeof(name), "blobs/sha256/%s", cdg + 7);
			else
				snprintf(name, sizeof(name), "manifest.json");
			archive_entry_set_pathname(ae, name);
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_perm(ae, 0644);
			archive_entry_set_size(ae, (la_int64_t)n);
			assert_int_equal(archive_write_header(aw, ae), ARCHIVE_OK);
			assert_int_equal(archive_write_data(aw, p, n), (la_ssize_t)n);
			archive_entry_free(ae);
		}
		assert_int_equal(archive_write_close(aw), ARCHIVE_OK);
		archive_write_free(aw);
	}
	for (int i = 0; i < 3; i++)
		free(blob[i]);
}

static void check_dive(const struct lp_analysis *a, bool explicit_a)
{
	/*
	 * By hand, following Dive's Efficiency(): leaves per layer
	 *   L0: /a/f1 100, /a/f2 200, /b/x 50, /keep 10
	 *   L1: /a/f1 150, /b/y 30, /keep whiteout of a file = 0
	 *   L2: /a whiteout = stacked subtree if /a is a directory there, /c 5
	 * Without an explicit a/ in L1, stacking L1's intermediate /a node
	 * clears its IsDir, so the whiteout counts 0; with it, 0+150+200 = 350.
	 */
	uint64_t extra = explicit_a ? 350 : 0;
	double want = (double)(100 + 200 + 50 + 0 + 30 + extra + 5) / (double)(250 + 200 + 50 + 10 + 30 + extra + 5);

	assert_true(a->is_image);
	assert_int_equal(a->n_layers, 3);
	assert_int_equal(a->layers[0].size, 360);
	assert_int_equal(a->layers[1].size, 180);
	assert_int_equal(a->layers[2].size, 5);
	assert_int_equal(a->img_size, 545);
	assert_int_equal(a->user_size, 185);
	assert_int_equal(a->wasted, 260);
	assert_true(fabs(a->efficiency - want) < 1e-12);
	assert_true(fabs(a->user_wasted_pct - 260.0 / 185.0) < 1e-12);
	assert_int_equal(a->n_multi, 2);
	assert_string_equal(a->multi[0].path, "/a/f1");
	assert_int_equal(a->multi[0].cumulative, 250);
	assert_int_equal(a->multi[0].count, 2);
	assert_string_equal(a->multi[1].path, "/keep");
	/* The final file system: opaque b/ hides b/x, a/ and keep are gone. */
	assert_int_equal(a->n_files, 2);
	assert_non_null(lp_entries_find(&a->entries, "b/y"));
	assert_non_null(lp_entries_find(&a->entries, "c"));
	assert_null(lp_entries_find(&a->entries, "b/x"));
	assert_null(lp_entries_find(&a->entries, "a/f1"));
	assert_int_equal(a->unzipped, 35);
	assert_string_equal(a->layers[1].created_by, "RUN overwrite");
	assert_int_equal(a->arch, LP_ARCH_X86_64);
}

static void test_dive_layout(void **state)
{
	struct lp_analysis a;
	struct lp_ana_opts o;

	(void)state;
	lp_ana_opts_init(&o);
	for (int explicit_a = 0; explicit_a < 2; explicit_a++) {
		char *d = tmpdir();

		build_image(d, explicit_a, false, NULL);
		assert_int_equal(lp_analyze_target(d, &o, &a), 0);
		assert_int_equal(a.kind, LP_ANA_OCI_LAYOUT);
		check_dive(&a, explicit_a);
		lp_analysis_free(&a);
		lp_rm_rf(d);
		free(d);
	}
}

static void test_dive_docker_archive(void **state)
{
	struct lp_analysis a;
	struct lp_ana_opts o;
	char *d = tmpdir(), tar[4096];

	(void)state;
	lp_ana_opts_init(&o);
	snprintf(tar, sizeof(tar), "%s/img.tar", d);
	build_image(d, true, true, tar);
	assert_int_equal(lp_analyze_target(tar, &o, &a), 0);
	assert_int_equal(a.kind, LP_ANA_DOCKER_ARCHIVE);
	check_dive(&a, true);
	lp_analysis_free(&a);
	lp_rm_rf(d);
	free(d);
}

static void test_image_missing_blob(void **state)
{
	struct lp_analysis a;
	struct lp_ana_opts o;
	char *d = tmpdir(), cmd[4096];
	int r;

	(void)state;
	lp_ana_opts_init(&o);
	build_image(d, false, false, NULL);
	/* Corrupt one layer blob: the digest no longer matches. */
	snprintf(cmd, sizeof(cmd), "%s/index.json", d);
	{
		struct lp_analysis ok;

		assert_int_equal(lp_analyze_target(d, &o, &ok), 0);
		snprintf(cmd, sizeof(cmd), "%s/blobs/sha256/%s", d, ok.layers[2].digest + 7);
		lp_analysis_free(&ok);
	}
	assert_int_equal(unlink(cmd), 0);
	lp_errmsg_clear();
	r = lp_analyze_target(d, &o, &a);
	assert_int_equal(r, -LP_E_BADIMAGE);
	assert_non_null(strstr(lp_errmsg(), "missing layer blob"));
	assert_non_null(strstr(lp_errmsg(), cmd));
	lp_analysis_free(&a);
	lp_rm_rf(d);
	free(d);
}

static const cJSON *kid(const cJSON *n, const char *name)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, cJSON_GetObjectItem(n, "c"))
		if (!strcmp(cJSON_GetObjectItem(c, "n")->valuestring, name))
			return c;
	return NULL;
}

static void test_tree_json(void **state)
{
	struct lp_analysis a;
	struct lp_ana_opts o;
	cJSON *t;
	const cJSON *c, *g;
	char path[64];

	(void)state;
	lp_ana_opts_init(&o);
	lp_analysis_init(&a);
	add(&a, "node_modules/big/x.bin", LP_FILE, 900000, 1);
	add(&a, "node_modules/big/lib/chrome", LP_FILE, 5000000, 7)->binfmt = LP_BIN_ELF;
	add(&a, "node_modules/big/README.md", LP_FILE, 50000, 8);
	add(&a, "node_modules/small/y.js", LP_FILE, 1000, 2);
	add(&a, "index.js", LP_FILE, 10, 3);
	add(&a, "src/a.js", LP_FILE, 20, 4);
	for (int i = 0; i < 300; i++) {
		snprintf(path, sizeof(path), "node_modules/many/f%03d.js", i);
		add(&a, path, LP_FILE, 100, (uint8_t)(10 + i % 200));
	}
	finish(&a, &o);
	t = ana_treemap_json(&a, -1);
	assert_non_null(t);
	assert_int_equal((int)cJSON_GetObjectItem(t, "s")->valuedouble, 900000 + 5000000 + 50000 + 1000 + 30 + 300 * 100);
	/* First level: packages and the function's code, not one node_modules box. */
	assert_null(kid(t, "node_modules"));
	g = kid(t, "big");
	assert_non_null(g);
	assert_string_equal(cJSON_GetObjectItem(g, "k")->valuestring, "n");
	assert_string_equal(cJSON_GetObjectItem(g, "b")->valuestring, "node_modules/big");
	/* Inside: the kind that dominates each box (a native binary, data). */
	c = kid(g, "lib");
	assert_non_null(c);
	assert_string_equal(cJSON_GetObjectItem(c, "k")->valuestring, "x");
	assert_string_equal(cJSON_GetObjectItem(kid(g, "x.bin"), "k")->valuestring, "d");
	/* What -O would prune is junk, file by file (the changes name only the package). */
	assert_string_equal(cJSON_GetObjectItem(kid(g, "README.md"), "k")->valuestring, "j");
	/* The function's code: one group holding index.js and src, drawn at 4% at least. */
	g = kid(t, "function code");
	assert_non_null(g);
	assert_string_equal(cJSON_GetObjectItem(g, "k")->valuestring, "c");
	assert_non_null(kid(g, "index.js"));
	assert_non_null(kid(g, "src"));
	assert_true(cJSON_GetObjectItem(g, "w")->valuedouble >= cJSON_GetObjectItem(t, "s")->valuedouble / 25 - 1);
	/* 300 files in one directory: 40 boxes and the rest folded. */
	g = kid(t, "many");
	assert_non_null(g);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(g, "c")), 41);
	assert_non_null(kid(g, "(260 more)"));
	cJSON_Delete(t);
	lp_analysis_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grouping_paths),
		cmocka_unit_test(test_grouping_record),
		cmocka_unit_test(test_budget_arithmetic),
		cmocka_unit_test(test_findings),
		cmocka_unit_test(test_diff_ordering),
		cmocka_unit_test(test_diff_digests),
		cmocka_unit_test(test_dive_layout),
		cmocka_unit_test(test_dive_docker_archive),
		cmocka_unit_test(test_image_missing_blob),
		cmocka_unit_test(test_tree_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
