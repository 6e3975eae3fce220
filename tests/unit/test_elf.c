/* SPDX-License-Identifier: MIT */
/* core/elf: the native-binary reader, checked against readelf and hand-made headers. */
#include "elftest.h"

#include <fcntl.h>

#include "core/elf.h"
#include "core/err.h"

static struct lp_binfo *read_fx(const char *name)
{
	struct lp_binfo *bi = NULL;
	int r = lp_binfo_read_path(fx(name), &bi);

	if (r < 0)
		fail_msg("%s: %s", name, lp_errmsg());
	return bi;
}

/*
 * Oracle: the highest GLIBC_x.y in readelf -V's version-needs section,
 * ignoring ld-linux entries and GLIBC_PRIVATE, parsed independently here.
 */
static void readelf_glibc(const char *path, unsigned *maj, unsigned *min)
{
	char *out = malloc(1 << 20), *line, *save = NULL;
	bool skip = false, in_need = false;

	*maj = *min = 0;
	assert_int_equal(run(out, 1 << 20, "readelf -V -W '%s'", path), 0);
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *p;
		unsigned a, b;

		if (strstr(line, "Version needs section"))
			in_need = true;
		else if (strstr(line, "Version definition section") || strstr(line, "Version symbols section"))
			in_need = false;
		if (!in_need)
			continue;
		if ((p = strstr(line, "File: ")) != NULL)
			skip = !strncmp(p + 6, "ld-linux", 8) || !strncmp(p + 6, "ld64.so", 7);
		if (skip || !(p = strstr(line, "Name: GLIBC_")))
			continue;
		if (sscanf(p + 12, "%u.%u", &a, &b) == 2 && (a > *maj || (a == *maj && b > *min))) {
			*maj = a;
			*min = b;
		}
	}
	free(out);
}

static void test_sniff(void **state)
{
	unsigned char javaclass[8] = { 0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 52 };
	unsigned char fat[8] = { 0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2 };

	assert_int_equal(lp_bin_sniff("\x7f" "ELF\2\1\1", 7), LP_BIN_ELF);
	assert_int_equal(lp_bin_sniff("\x7f" "EL", 3), LP_BIN_NONE);
	assert_int_equal(lp_bin_sniff(javaclass, 8), LP_BIN_NONE);
	assert_int_equal(lp_bin_sniff(fat, 8), LP_BIN_MACHO_FAT);
	assert_int_equal(lp_bin_sniff("!<arch>\nfoo", 11), LP_BIN_AR);
	assert_int_equal(lp_bin_sniff("#!/bin/sh\n", 10), LP_BIN_NONE);
}

static void test_x86_64_exe(void **state)
{
	struct lp_binfo *bi = read_fx("hello");
	unsigned maj, min;

	assert_int_equal(bi->fmt, LP_BIN_ELF);
	assert_int_equal(bi->os, LP_OS_LINUX);
	assert_int_equal(bi->arch, LP_ARCH_X86_64);
	assert_int_equal(bi->arch_mask, 1u << LP_ARCH_X86_64);
	assert_int_equal(bi->elf_class, 2);
	assert_int_equal(bi->elf_data, 1);
	assert_int_equal(bi->e_machine, 62);
	assert_int_equal(bi->e_type, 3);	/* PIE */
	assert_true(bi->has_shdrs);
	assert_true(bi->is_pie_or_exec);
	assert_string_equal(bi->interp, "/lib64/ld-linux-x86-64.so.2");
	assert_int_equal(bi->n_needed, 1);
	assert_string_equal(bi->needed[0], "libc.so.6");
	assert_null(bi->soname);
	assert_true(bi->debug_bytes > 0);
	assert_true(bi->symtab_bytes > 0);
	assert_false(bi->malformed);
	readelf_glibc(fx("hello"), &maj, &min);
	assert_int_equal(bi->glibc_major, maj);
	assert_int_equal(bi->glibc_minor, min);
	lp_binfo_free(bi);

	bi = read_fx("hello-nopie");
	assert_int_equal(bi->e_type, 2);
	assert_true(bi->is_pie_or_exec);
	lp_binfo_free(bi);
}

static void test_shared_object(void **state)
{
	struct lp_binfo *bi = read_fx("libfoo.so");
	unsigned maj, min;

	assert_false(bi->is_pie_or_exec);
	assert_null(bi->interp);
	assert_string_equal(bi->soname, "libfoo.so.1");
	assert_int_equal(bi->n_needed, 2);
	assert_string_equal(bi->needed[0], "libm.so.6");
	assert_string_equal(bi->needed[1], "libc.so.6");
	readelf_glibc(fx("libfoo.so"), &maj, &min);
	assert_int_equal(bi->glibc_major, maj);
	assert_int_equal(bi->glibc_minor, min);
	lp_binfo_free(bi);

	bi = read_fx("usefoo");
	assert_string_equal(bi->runpath, "$ORIGIN/lib");
	assert_null(bi->rpath);
	assert_string_equal(bi->needed[0], "libfoo.so.1");
	lp_binfo_free(bi);
}

static void test_glibc_versions(void **state)
{
	struct lp_binfo *bi = read_fx("libnew227.so");

	/* copy_file_range@GLIBC_2.27 is the newest symbol it uses. */
	assert_int_equal(bi->glibc_major, 2);
	assert_int_equal(bi->glibc_minor, 27);
	lp_binfo_free(bi);
	bi = read_fx("libnew236.so");
	assert_int_equal(bi->glibc_major, 2);
	assert_int_equal(bi->glibc_minor, 36);
	lp_binfo_free(bi);
}

/* Without section headers everything dynamic comes through PT_DYNAMIC. */
static void test_no_section_headers(void **state)
{
	struct lp_binfo *a = read_fx("libfoo.so"), *b = read_fx("libnoshdr.so");

	assert_false(b->has_shdrs);
	assert_string_equal(b->soname, a->soname);
	assert_int_equal(b->n_needed, a->n_needed);
	for (size_t i = 0; i < a->n_needed; i++)
		assert_string_equal(b->needed[i], a->needed[i]);
	assert_int_equal(b->glibc_major, a->glibc_major);
	assert_int_equal(b->glibc_minor, a->glibc_minor);
	assert_int_equal(b->debug_bytes, 0);
	assert_int_equal(b->symtab_bytes, 0);
	lp_binfo_free(a);
	lp_binfo_free(b);
}

static void test_other_arches(void **state)
{
	struct lp_binfo *bi;

	if (!have("libfoo-aarch64.so") || !have("libtiny-i386.so") || !have("libtiny-ppc64.so") ||
	    !have("libtiny-mips.so"))
		skip();
	bi = read_fx("libfoo-aarch64.so");
	assert_int_equal(bi->arch, LP_ARCH_ARM64);
	assert_int_equal(bi->e_machine, 183);
	assert_string_equal(bi->soname, "libfoo.so.1");
	assert_true(bi->glibc_major == 2 && bi->glibc_minor >= 17);
	lp_binfo_free(bi);
	bi = read_fx("hello-aarch64");
	assert_string_equal(bi->interp, "/lib/ld-linux-aarch64.so.1");
	lp_binfo_free(bi);
	bi = read_fx("libtiny-i386.so");
	assert_int_equal(bi->arch, LP_ARCH_X86);
	assert_int_equal(bi->elf_class, 1);
	assert_int_equal(bi->elf_data, 1);
	lp_binfo_free(bi);
	bi = read_fx("libtiny-ppc64.so");
	assert_int_equal(bi->arch, LP_ARCH_OTHER);
	assert_int_equal(bi->elf_class, 2);
	assert_int_equal(bi->elf_data, 2);
	assert_string_equal(bi->soname, "libtiny.so");	/* big-endian dynamic section */
	lp_binfo_free(bi);
	bi = read_fx("libtiny-mips.so");
	assert_int_equal(bi->elf_class, 1);
	assert_int_equal(bi->elf_data, 2);
	lp_binfo_free(bi);
}

static void test_foreign_formats(void **state)
{
	struct lp_binfo *bi = read_fx("macho-x86_64");

	assert_int_equal(bi->fmt, LP_BIN_MACHO);
	assert_int_equal(bi->os, LP_OS_MACOS);
	assert_int_equal(bi->arch, LP_ARCH_X86_64);
	lp_binfo_free(bi);
	bi = read_fx("macho-fat");
	assert_int_equal(bi->fmt, LP_BIN_MACHO_FAT);
	assert_int_equal(bi->arch, LP_ARCH_ARM64);
	assert_int_equal(bi->arch_mask, (1u << LP_ARCH_ARM64) | (1u << LP_ARCH_X86_64));
	assert_int_equal(bi->macho_nslices, 2);
	lp_binfo_free(bi);
	bi = read_fx("pe-x86_64.dll");
	assert_int_equal(bi->fmt, LP_BIN_PE);
	assert_int_equal(bi->os, LP_OS_WINDOWS);
	assert_int_equal(bi->arch, LP_ARCH_X86_64);
	lp_binfo_free(bi);
	/* PE header beyond the first 4 KiB. */
	bi = read_fx("pe-arm64.exe");
	assert_int_equal(bi->fmt, LP_BIN_PE);
	assert_int_equal(bi->arch, LP_ARCH_ARM64);
	lp_binfo_free(bi);
	bi = read_fx("libhello.a");
	assert_int_equal(bi->fmt, LP_BIN_AR);
	lp_binfo_free(bi);
	bi = read_fx("hello.o");
	assert_int_equal(bi->e_type, 1);
	assert_int_equal(bi->n_needed, 0);
	lp_binfo_free(bi);
	bi = NULL;
	assert_int_equal(lp_binfo_read_path(fx("hello.c"), &bi), -LP_E_NOTELF);
	assert_null(bi);
	assert_non_null(strstr(lp_errmsg(), "hello.c"));
}

static void same_facts(const struct lp_binfo *a, const struct lp_binfo *b)
{
	assert_int_equal(a->fmt, b->fmt);
	assert_int_equal(a->arch_mask, b->arch_mask);
	assert_int_equal(a->e_type, b->e_type);
	assert_int_equal(a->glibc_major, b->glibc_major);
	assert_int_equal(a->glibc_minor, b->glibc_minor);
	assert_int_equal(a->n_needed, b->n_needed);
	assert_int_equal(a->debug_bytes, b->debug_bytes);
	assert_int_equal(a->symtab_bytes, b->symtab_bytes);
	assert_int_equal(!!a->soname, !!b->soname);
	assert_int_equal(!!a->interp, !!b->interp);
}

/* The in-memory and the fd reader agree on every fixture; the buffer is not modified. */
static void test_mem_equals_fd(void **state)
{
	static const char *const names[] = {
		"hello", "libfoo.so", "usefoo", "libnoshdr.so", "libnew227.so", "hello.o", "libhello.a",
		"macho-fat", "macho-x86_64", "pe-x86_64.dll", "pe-arm64.exe", "libtiny-ppc64.so",
		"libtiny-mips.so", "libfoo-aarch64.so", NULL,
	};

	for (const char *const *n = names; *n; n++) {
		struct lp_binfo *a, *b;
		size_t len;
		void *buf, *copy;

		if (!have(*n))
			continue;
		buf = slurp(fx(*n), &len);
		copy = malloc(len);
		memcpy(copy, buf, len);
		a = read_fx(*n);
		assert_int_equal(lp_binfo_read_mem(buf, len, &b), 0);
		same_facts(a, b);
		assert_memory_equal(buf, copy, len);
		lp_binfo_free(a);
		lp_binfo_free(b);
		free(buf);
		free(copy);
	}
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/*
 * Hostile input: every truncation and thousands of random corruptions of
 * real files must come back as 0 or an error, never a crash (run it under
 * ASan/UBSan to make that mean something).
 */
static void test_hostile(void **state)
{
	static const char *const names[] = { "libfoo.so", "usefoo", "libnoshdr.so", "libtiny-ppc64.so", NULL };

	for (const char *const *n = names; *n; n++) {
		size_t len;
		unsigned char *buf, *m;

		if (!have(*n))
			continue;
		buf = slurp(fx(*n), &len);
		m = malloc(len);
		for (size_t cut = 0; cut < len; cut += 61) {
			struct lp_binfo *bi = NULL;

			if (lp_binfo_read_mem(buf, cut, &bi) == 0)
				lp_binfo_free(bi);
		}
		for (int it = 0; it < 3000; it++) {
			struct lp_binfo *bi = NULL;
			int flips = 1 + (int)(next_rand() % 8);

			memcpy(m, buf, len);
			for (int f = 0; f < flips; f++) {
				/* Bias toward headers, where the pointers are. */
				size_t at = next_rand() % 4 ? next_rand() % (len < 1024 ? len : 1024) : next_rand() % len;

				m[at] = (unsigned char)next_rand();
			}
			if (lp_binfo_read_mem(m, len, &bi) == 0)
				lp_binfo_free(bi);
		}
		free(m);
		free(buf);
	}
}

static void test_fd_does_not_need_whole_file(void **state)
{
	/* A sparse 3 GiB file with an ELF header at the front must be cheap to examine. */
	char *dir = mktmp(), *p = join(dir, "huge");
	size_t len;
	void *hdr = slurp(fx("libfoo.so"), &len);
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	struct lp_binfo *bi = NULL;

	assert_true(fd >= 0);
	assert_int_equal(lp_write_all(fd, hdr, len), 0);
	assert_int_equal(ftruncate(fd, 3ll << 30), 0);
	assert_int_equal(lp_binfo_read_fd(fd, &bi), 0);
	assert_string_equal(bi->soname, "libfoo.so.1");
	lp_binfo_free(bi);
	close(fd);
	lp_rm_rf(dir);
	free(p);
	free(dir);
	free(hdr);
}


/* Every fixture the toolchain built loads; so must the reader say. */
static void test_fixtures_loadable(void **state)
{
	static const char *const names[] = {
		"hello", "hello-nopie", "hello-stripped", "libfoo.so", "libfoo-emitrelocs.so", "usefoo",
		"usefoo-badpath", "libnew227.so", "libnew236.so", "libnoshdr.so", "libpayload.so",
		"libsigned.so", "libpydata.so", "hello-aarch64", "libfoo-aarch64.so", "libtiny-i386.so",
		"libtiny-ppc64.so", "libtiny-mips.so", "hello.o", NULL,
	};

	for (const char *const *n = names; *n; n++) {
		struct lp_binfo *bi;

		if (!have(*n))
			continue;
		bi = read_fx(*n);
		if (bi->unloadable[0])
			fail_msg("%s: %s", *n, bi->unloadable);
		lp_binfo_free(bi);
	}
}

/*
 * Each crafted variant is refused with its own reason, from memory and from
 * a file alike; the intact original is not.
 */
static void test_unloadable(void **state)
{
	char *dir = mktmp();

	for (int k = 0; k < CR_COUNT; k++) {
		const char *want = NULL;
		size_t len;
		unsigned char *b = craft((enum craft_kind)k, &len, &want);
		struct lp_binfo *m = NULL, *f = NULL;
		char *path = put_file(dir, "x", b, len);

		assert_int_equal(lp_binfo_read_mem(b, len, &m), 0);
		if (!strstr(m->unloadable, want))
			fail_msg("variant %d: want \"%s\", got \"%s\"", k, want, m->unloadable);
		assert_int_equal(lp_binfo_read_path(path, &f), 0);
		assert_string_equal(f->unloadable, m->unloadable);
		/* lp_binfo_dup keeps the reason. */
		lp_binfo_free(f);
		f = lp_binfo_dup(m);
		assert_string_equal(f->unloadable, m->unloadable);
		lp_binfo_free(f);
		lp_binfo_free(m);
		free(path);
		free(b);
	}
	lp_rm_rf(dir);
	free(dir);
}

static void test_names(void **state)
{
	assert_string_equal(lp_arch_name(LP_ARCH_ARM64), "arm64");
	assert_int_equal(lp_arch_parse("aarch64"), LP_ARCH_ARM64);
	assert_int_equal(lp_arch_from_elf_machine(62), LP_ARCH_X86_64);
	assert_int_equal(lp_arch_from_elf_machine(40), LP_ARCH_ARM);
	assert_int_equal(lp_arch_from_elf_machine(21), LP_ARCH_OTHER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sniff),
		cmocka_unit_test(test_x86_64_exe),
		cmocka_unit_test(test_shared_object),
		cmocka_unit_test(test_glibc_versions),
		cmocka_unit_test(test_no_section_headers),
		cmocka_unit_test(test_other_arches),
		cmocka_unit_test(test_foreign_formats),
		cmocka_unit_test(test_mem_equals_fd),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_fd_does_not_need_whole_file),
		cmocka_unit_test(test_fixtures_loadable),
		cmocka_unit_test(test_unloadable),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
