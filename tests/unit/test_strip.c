/* SPDX-License-Identifier: MIT */
/*
 * pack/strip: results checked against the reference strippers, the loader
 * (run and dlopen the stripped files), eu-elflint, and an independent raw
 * parser of the program headers written here (not the code under test).
 */
#include "elftest.h"

#include <dlfcn.h>
#include <fcntl.h>

#include "core/elf.h"
#include "core/err.h"
#include "pack/strip.h"

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

static uint64_t rd(const unsigned char *p, size_t w, bool be)
{
	uint64_t v = 0;

	for (size_t i = 0; i < w; i++)
		v |= (uint64_t)p[be ? w - 1 - i : i] << (8 * i);
	return v;
}

/*
 * Independent proof: raw-parse the input's program headers and require
 * every PT_LOAD range and the table itself to be byte-identical in the
 * output, with only e_shoff/e_shnum/e_shstrndx allowed to differ.
 */
static void assert_loads_identical(const char *in, const char *out)
{
	size_t na, nb;
	unsigned char *a = slurp(in, &na), *b = slurp(out, &nb);
	bool is64 = a[4] == 2, be = a[5] == 2;
	uint64_t phoff = rd(a + (is64 ? 0x20 : 0x1c), is64 ? 8 : 4, be);
	unsigned phentsize = (unsigned)rd(a + (is64 ? 0x36 : 0x2a), 2, be);
	unsigned phnum = (unsigned)rd(a + (is64 ? 0x38 : 0x2c), 2, be);
	size_t ehsize = is64 ? 64 : 52;
	unsigned loads = 0;

	assert_true(nb >= ehsize);
	for (size_t i = 0; i < ehsize; i++) {
		bool shfield = is64 ? ((i >= 0x28 && i < 0x30) || (i >= 0x3c && i < 0x40))
				    : ((i >= 0x20 && i < 0x24) || (i >= 0x30 && i < 0x34));

		if (!shfield && a[i] != b[i])
			fail_msg("%s: ELF header byte %zu changed", out, i);
	}
	assert_true(phoff + (uint64_t)phnum * phentsize <= nb);
	assert_memory_equal(a + phoff, b + phoff, (size_t)phnum * phentsize);
	for (unsigned k = 0; k < phnum; k++) {
		const unsigned char *ph = a + phoff + (uint64_t)k * phentsize;
		uint32_t type = (uint32_t)rd(ph, 4, be);
		uint64_t off = rd(ph + (is64 ? 8 : 4), is64 ? 8 : 4, be);
		uint64_t filesz = rd(ph + (is64 ? 32 : 16), is64 ? 8 : 4, be);

		if (type != 1 /* PT_LOAD */)
			continue;
		loads++;
		assert_true(off + filesz <= nb);
		for (uint64_t i = off; i < off + filesz; i++) {
			bool shfield = i < ehsize && (is64 ? ((i >= 0x28 && i < 0x30) || (i >= 0x3c && i < 0x40))
							   : ((i >= 0x20 && i < 0x24) || (i >= 0x30 && i < 0x34)));

			if (!shfield && a[i] != b[i])
				fail_msg("%s: PT_LOAD %u byte %llu changed", out, k, (unsigned long long)i);
		}
	}
	assert_true(loads > 0);
	free(a);
	free(b);
}

/* Strip one fixture and hold it to every promise; returns the output path (caller frees). */
static char *strip_ok(const char *name)
{
	char *out = join(tmp, name), ref[4096];
	uint8_t before[32], after[32];
	struct lp_strip_result res, plan;
	struct lp_binfo *a = NULL, *b = NULL;
	uint64_t ours;

	sha_of(fx(name), before);
	assert_int_equal(lp_strip_file(fx(name), NULL, NULL, &plan), 0);
	assert_int_equal(lp_strip_file(fx(name), out, NULL, &res), 0);
	if (res.outcome != LP_STRIP_OK)
		fail_msg("%s: %s: %s", name, lp_strip_outcome_name(res.outcome), res.reason);
	sha_of(fx(name), after);
	assert_memory_equal(before, after, 32);		/* input untouched */
	ours = fsize(out);
	assert_int_equal(res.size_after, ours);
	assert_int_equal(plan.size_after, ours);	/* the plan predicts the real size */
	assert_int_equal(res.size_before, fsize(fx(name)));
	assert_true(ours < res.size_before);
	assert_true(res.has_digest);
	sha_of(out, after);
	assert_memory_equal(res.digest, after, 32);
	assert_int_equal(lp_strip_verify(fx(name), out, NULL, 0), 0);
	assert_loads_identical(fx(name), out);

	/*
	 * At least as small as eu-strip and GNU strip --strip-unneeded, where
	 * they work. eu-strip deletes unknown sections we deliberately keep.
	 */
	snprintf(ref, sizeof(ref), "%s/%s.eu", tmp, name);
	if (!res.kept_unknown && tool("eu-strip") && run(NULL, 0, "eu-strip -o '%s' '%s' 2>/dev/null", ref, fx(name)) == 0 && fsize(ref))
		if (ours > fsize(ref))
			fail_msg("%s: ours %llu > eu-strip %llu", name, (unsigned long long)ours,
				 (unsigned long long)fsize(ref));
	snprintf(ref, sizeof(ref), "%s/%s.gnu", tmp, name);
	if (tool("strip") && run(NULL, 0, "strip --strip-unneeded -o '%s' '%s' 2>/dev/null", ref, fx(name)) == 0 &&
	    fsize(ref))
		if (ours > fsize(ref))
			fail_msg("%s: ours %llu > GNU strip %llu", name, (unsigned long long)ours,
				 (unsigned long long)fsize(ref));
	/* eu-elflint must accept ours whenever it accepts the original. */
	if (tool("eu-elflint") && run(NULL, 0, "eu-elflint --gnu-ld -q '%s' >/dev/null 2>&1", fx(name)) == 0) {
		char msg[4096];

		if (run(msg, sizeof(msg), "eu-elflint --gnu-ld -q '%s' 2>&1", out) != 0)
			fail_msg("%s: eu-elflint rejects the stripped file: %s", name, msg);
	}
	/* Loader-visible facts unchanged; debug and symbols gone. */
	assert_int_equal(lp_binfo_read_path(fx(name), &a), 0);
	assert_int_equal(lp_binfo_read_path(out, &b), 0);
	assert_int_equal(b->debug_bytes, 0);
	assert_int_equal(b->symtab_bytes, 0);
	/* The stripper also knows a few debugger-only names the reader does not count (.pdr). */
	assert_true(res.debug_removed >= a->debug_bytes);
	assert_int_equal(res.symtab_removed, a->symtab_bytes);
	assert_int_equal(a->glibc_major, b->glibc_major);
	assert_int_equal(a->glibc_minor, b->glibc_minor);
	assert_int_equal(a->n_needed, b->n_needed);
	assert_int_equal(a->arch, b->arch);
	lp_binfo_free(a);
	lp_binfo_free(b);
	return out;
}

static void test_strip_x86_64(void **state)
{
	static const char *const names[] = { "hello", "hello-nopie", "libfoo.so", "usefoo", "libnew227.so",
					     "libfoo-emitrelocs.so", NULL };

	for (const char *const *n = names; *n; n++)
		free(strip_ok(*n));
}

static void test_strip_cross(void **state)
{
	static const char *const names[] = { "libfoo-aarch64.so", "hello-aarch64", "libtiny-i386.so",
					     "libtiny-ppc64.so", "libtiny-mips.so", NULL };
	int done = 0;

	for (const char *const *n = names; *n; n++) {
		if (!have(*n))
			continue;
		free(strip_ok(*n));
		done++;
	}
	if (!done)
		skip();
}

/* The stripped executable runs and prints exactly what the original does. */
static void test_stripped_exe_runs(void **state)
{
	char *out = strip_ok("hello");
	char a[256], b[256];
	int sa = run(a, sizeof(a), "'%s' 7", fx("hello")), sb = run(b, sizeof(b), "'%s' 7", out);

	assert_int_equal(sa, 7);
	assert_int_equal(sb, 7);
	assert_string_equal(a, b);
	assert_non_null(strstr(b, "hello from lambdapack fixture"));
	free(out);
}

/* Stripped shared objects load: through dlopen, and as a DT_NEEDED of a stripped program. */
static void test_stripped_so_loads(void **state)
{
	char *lib = strip_ok("libfoo.so"), *exe = strip_ok("usefoo");
	char *libdir = join(tmp, "lib"), *dst = join(libdir, "libfoo.so.1"), outbuf[256];
	void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	int (*answer)(void);

	if (!h)
		fail_msg("dlopen: %s", dlerror());
	*(void **)&answer = dlsym(h, "foo_answer");
	assert_non_null(answer);
	assert_int_equal(answer(), 42);
	dlclose(h);

	/* usefoo's RUNPATH is $ORIGIN/lib. */
	assert_int_equal(lp_mkdir_p(libdir, 0755), 0);
	assert_int_equal(rename(lib, dst), 0);
	assert_int_equal(run(outbuf, sizeof(outbuf), "'%s'", exe), 0);
	assert_string_equal(outbuf, "hi lambda 42\n");
	free(lib);
	free(exe);
	free(libdir);
	free(dst);
}

static void expect_skip(const char *name, enum lp_strip_outcome want, const char *reason_part)
{
	char *out = join(tmp, "skip.out");
	struct lp_strip_result res;
	uint8_t before[32], after[32];

	sha_of(fx(name), before);
	assert_int_equal(lp_strip_file(fx(name), out, NULL, &res), 0);
	if (res.outcome != want)
		fail_msg("%s: got %s (%s), want %s", name, lp_strip_outcome_name(res.outcome), res.reason,
			 lp_strip_outcome_name(want));
	if (reason_part && !strstr(res.reason, reason_part))
		fail_msg("%s: reason '%s' lacks '%s'", name, res.reason, reason_part);
	assert_true(res.reason[0] != '\0');
	assert_false(exists(out));
	assert_int_equal(res.size_after, res.size_before);
	sha_of(fx(name), after);
	assert_memory_equal(before, after, 32);
	free(out);
}

static void test_guards(void **state)
{
	expect_skip("libpayload.so", LP_STRIP_TRAILING_DATA, "4096 bytes after");
	expect_skip("libsigned.so", LP_STRIP_TRAILING_DATA, "Module signature");
	expect_skip("libnoshdr.so", LP_STRIP_NO_SHDRS, NULL);
	expect_skip("hello.o", LP_STRIP_RELOCATABLE, NULL);
	expect_skip("libhello.a", LP_STRIP_ARCHIVE, NULL);
	expect_skip("hello-stripped", LP_STRIP_NOTHING, NULL);
	expect_skip("hello.c", LP_STRIP_NOT_ELF, NULL);
	expect_skip("macho-fat", LP_STRIP_NOT_ELF, NULL);
}

static void test_truncated(void **state)
{
	size_t len;
	void *buf = slurp(fx("libfoo.so"), &len);
	char *in = join(tmp, "trunc.so"), *out = join(tmp, "trunc.out");
	struct lp_strip_result res;

	for (size_t cut = 0; cut < len; cut += len / 23 + 1) {
		int fd = open(in, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		assert_true(fd >= 0);
		assert_int_equal(lp_write_all(fd, buf, cut), 0);
		close(fd);
		assert_int_equal(lp_strip_file(in, out, NULL, &res), 0);
		/* A cut file either lost its section table or points outside itself. */
		assert_int_not_equal(res.outcome, LP_STRIP_OK);
		assert_false(exists(out));
	}
	free(buf);
	free(in);
	free(out);
}


/*
 * Files the loader refuses are never rewritten: every crafted variant ships
 * as it is (nothing written, input unchanged), with the loader's reason.
 * The wild-pointer variants are otherwise perfectly strippable, so this is
 * the guard at work, not a parse failure.
 */
static void test_unloadable_left_alone(void **state)
{
	char *out = join(tmp, "unl.out");

	for (int k = 0; k < CR_COUNT; k++) {
		const char *want;
		size_t len;
		unsigned char *b = craft((enum craft_kind)k, &len, &want);
		char *in = put_file(tmp, "unl.so", b, len);
		struct lp_strip_result res;
		uint8_t before[32], after[32];

		sha_of(in, before);
		assert_int_equal(lp_strip_file(in, out, NULL, &res), 0);
		if (res.outcome != LP_STRIP_UNLOADABLE || !strstr(res.reason, want))
			fail_msg("variant %d: got %s (%s)", k, lp_strip_outcome_name(res.outcome), res.reason);
		assert_false(exists(out));
		assert_int_equal(res.size_after, res.size_before);
		sha_of(in, after);
		assert_memory_equal(before, after, 32);
		/* The plan analyze runs agrees. */
		assert_int_equal(lp_strip_file(in, NULL, NULL, &res), 0);
		assert_int_equal(res.outcome, LP_STRIP_UNLOADABLE);
		free(in);
		free(b);
	}
	free(out);
}

/* Unknown non-alloc sections (PyInstaller's pydata) survive, byte for byte. */
static void test_keeps_unknown(void **state)
{
	char *out = strip_ok("libpydata.so"), dump[4096];
	struct lp_strip_result res;
	size_t la, lb;
	void *a, *b;

	assert_int_equal(lp_strip_file(fx("libpydata.so"), out, NULL, &res), 0);
	assert_int_equal(res.kept_unknown, 1);
	assert_string_equal(res.kept_note, "pydata");
	snprintf(dump, sizeof(dump), "%s/pydata.a", tmp);
	assert_int_equal(run(NULL, 0, "objcopy --dump-section pydata='%s' '%s' /dev/null", dump, fx("libpydata.so")), 0);
	a = slurp(dump, &la);
	assert_int_equal(run(NULL, 0, "objcopy --dump-section pydata='%s' '%s' /dev/null", dump, out), 0);
	b = slurp(dump, &lb);
	assert_int_equal(la, 8192);
	assert_int_equal(la, lb);
	assert_memory_equal(a, b, la);
	free(a);
	free(b);
	free(out);
}

static void flip(const char *path, uint64_t at)
{
	int fd = open(path, O_RDWR);
	unsigned char c;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, (off_t)at), 1);
	c ^= 0x5a;
	assert_int_equal(pwrite(fd, &c, 1, (off_t)at), 1);
	close(fd);
}

/* The proof notices damage to loaded bytes and to the program headers, and allows e_shoff. */
static void test_verify_detects_tampering(void **state)
{
	char *out = strip_ok("libfoo.so"), why[200] = "";
	char *copy = join(tmp, "tampered.so");

	unsigned char eh[64];
	size_t len;
	void *all = slurp(out, &len);

	memcpy(eh, all, sizeof(eh));
	free(all);
	assert_int_equal(lp_copy_file(out, copy), 0);
	/* Just past the program header table: inside the first PT_LOAD (notes, .gnu.hash). */
	flip(copy, 64 + (uint64_t)(eh[0x38] | eh[0x39] << 8) * 56 + 16);
	assert_int_equal(lp_strip_verify(fx("libfoo.so"), copy, why, sizeof(why)), -LP_E_NOTELF);
	assert_non_null(strstr(why, "segment"));

	assert_int_equal(lp_copy_file(out, copy), 0);
	flip(copy, 64 + 3);	/* program header table (e_phoff is 64) */
	assert_int_equal(lp_strip_verify(fx("libfoo.so"), copy, why, sizeof(why)), -LP_E_NOTELF);

	assert_int_equal(lp_copy_file(out, copy), 0);
	flip(copy, 0x12);	/* e_machine */
	assert_int_equal(lp_strip_verify(fx("libfoo.so"), copy, why, sizeof(why)), -LP_E_NOTELF);

	assert_int_equal(lp_strip_verify(fx("libfoo.so"), out, why, sizeof(why)), 0);
	free(copy);
	free(out);
}

static void test_debug_only(void **state)
{
	char *out = join(tmp, "g.so");
	struct lp_strip_opts o = { .debug_only = true };
	struct lp_strip_result res;
	struct lp_binfo *bi;

	assert_int_equal(lp_strip_file(fx("libfoo.so"), out, &o, &res), 0);
	assert_int_equal(res.outcome, LP_STRIP_OK);
	assert_int_equal(lp_binfo_read_path(out, &bi), 0);
	assert_int_equal(bi->debug_bytes, 0);
	assert_true(bi->symtab_bytes > 0);
	lp_binfo_free(bi);
	free(out);
}

static void test_cache(void **state)
{
	char *cache = join(tmp, "cache"), *o1 = join(tmp, "c1"), *o2 = join(tmp, "c2"), *o3 = join(tmp, "c3");
	struct lp_strip_result r1, r2, r3;
	uint8_t d1[32], d2[32];
	char cmd[4096];

	assert_int_equal(lp_strip_cached(fx("libfoo.so"), NULL, cache, o1, NULL, &r1), 0);
	assert_int_equal(r1.outcome, LP_STRIP_OK);
	assert_false(r1.cached);
	assert_int_equal(lp_strip_cached(fx("libfoo.so"), NULL, cache, o2, NULL, &r2), 0);
	assert_int_equal(r2.outcome, LP_STRIP_OK);
	assert_true(r2.cached);
	assert_int_equal(r2.size_after, r1.size_after);
	sha_of(o1, d1);
	sha_of(o2, d2);
	assert_memory_equal(d1, d2, 32);
	assert_memory_equal(r2.digest, d1, 32);

	/* Skips are cached too. */
	assert_int_equal(lp_strip_cached(fx("libpayload.so"), NULL, cache, o3, NULL, &r3), 0);
	assert_int_equal(r3.outcome, LP_STRIP_TRAILING_DATA);
	assert_false(r3.cached);
	assert_int_equal(lp_strip_cached(fx("libpayload.so"), NULL, cache, o3, NULL, &r3), 0);
	assert_int_equal(r3.outcome, LP_STRIP_TRAILING_DATA);
	assert_true(r3.cached);
	assert_false(exists(o3));

	/* A damaged cache entry is caught by the proof and replaced. */
	snprintf(cmd, sizeof(cmd), "for f in '%s'/strip-v2/*.elf; do printf 'XXXX' | dd of=\"$f\" bs=1 seek=4400 conv=notrunc 2>/dev/null; done", cache);
	assert_int_equal(run(NULL, 0, "%s", cmd), 0);
	assert_int_equal(lp_strip_cached(fx("libfoo.so"), NULL, cache, o2, NULL, &r2), 0);
	assert_int_equal(r2.outcome, LP_STRIP_OK);
	assert_false(r2.cached);
	sha_of(o2, d2);
	assert_memory_equal(d1, d2, 32);
	free(cache);
	free(o1);
	free(o2);
	free(o3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strip_x86_64),
		cmocka_unit_test(test_strip_cross),
		cmocka_unit_test(test_stripped_exe_runs),
		cmocka_unit_test(test_stripped_so_loads),
		cmocka_unit_test(test_guards),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_unloadable_left_alone),
		cmocka_unit_test(test_keeps_unknown),
		cmocka_unit_test(test_verify_detects_tampering),
		cmocka_unit_test(test_debug_only),
		cmocka_unit_test(test_cache),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
