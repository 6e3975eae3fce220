/* SPDX-License-Identifier: MIT */
/* Helpers shared by the native-binary tests (fixtures from tests/elf/make-fixtures.sh). */
#pragma once

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/fsutil.h"
#include "core/hash.h"

#define UNUSED __attribute__((unused))

/* Path of a fixture (static buffer, one of several rotating). */
static UNUSED const char *fx(const char *name)
{
	static char buf[8][4096];
	static int k;
	const char *dir = getenv("LP_FIXTURES");

	k = (k + 1) % 8;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir ? dir : "fixtures", name);
	return buf[k];
}

static UNUSED bool have(const char *name)
{
	return access(fx(name), R_OK) == 0;
}

static UNUSED uint64_t fsize(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static UNUSED bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* Run a shell command; capture up to len-1 bytes of stdout; return exit status (or -1). */
static UNUSED int run(char *out, size_t len, const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	FILE *f;
	size_t n = 0;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	if (out && len) {
		n = fread(out, 1, len - 1, f);
		out[n] = '\0';
	} else {
		char sink[4096];

		while (fread(sink, 1, sizeof(sink), f) > 0)
			;
	}
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static UNUSED bool tool(const char *name)
{
	return run(NULL, 0, "command -v %s >/dev/null 2>&1", name) == 0;
}

static UNUSED void sha_of(const char *path, uint8_t out[32])
{
	assert_int_equal(lp_sha256_file(path, out), 0);
}

/* A fresh temporary directory (removed by the caller with lp_rm_rf). */
static UNUSED char *mktmp(void)
{
	char *t = NULL;

	assert_int_equal(lp_tmpdir_create("test", &t), 0);
	return t;
}

static UNUSED char *join(const char *a, const char *b)
{
	char *s = NULL;

	assert_true(asprintf(&s, "%s/%s", a, b) > 0);
	return s;
}

static UNUSED void *slurp(const char *path, size_t *len)
{
	char *buf = NULL;

	assert_int_equal(lp_read_file(path, 1u << 30, &buf, len), 0);
	return buf;
}

#include "core/elf.h"
#include "core/entry.h"

/* Append a regular-file entry read from src (NULL: no bytes, size given). */
static UNUSED struct lp_entry *add_file(struct lp_entries *l, const char *path, const char *src, uint64_t size)
{
	struct lp_entry *e = lp_entries_push(l, path, LP_FILE);
	unsigned char head[4096];

	assert_non_null(e);
	if (src) {
		FILE *f = fopen(src, "rb");
		size_t n;

		assert_non_null(f);
		n = fread(head, 1, sizeof(head), f);
		fclose(f);
		e->src = strdup(src);
		e->size = fsize(src);
		e->binfmt = (uint8_t)lp_bin_sniff(head, n);
	} else {
		e->size = size;
	}
	e->orig_size = e->size;
	e->flags |= LP_F_SNIFFED;
	return e;
}

static UNUSED void add_dir(struct lp_entries *l, const char *path)
{
	assert_non_null(lp_entries_push(l, path, LP_DIR));
}

/* Write len bytes of a repeating pattern seeded by seed. */
static UNUSED void write_pattern(const char *path, size_t len, unsigned seed)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	for (size_t i = 0; i < len; i++)
		fputc((int)((i * 131 + seed * 7919 + (i >> 9)) & 0xff), f);
	fclose(f);
}

/*
 * Crafted variants of the x86_64 fixtures that the kernel or ld.so refuse
 * (ELF64 little-endian editing). craft() returns the mutated bytes (free
 * them) and the substring lp_binfo.unloadable must contain.
 */
enum craft_kind {
	CR_TRUNCATED,		/* libfoo.so cut inside its last PT_LOAD */
	CR_PHDR_PAST_EOF,	/* e_phoff near the end of the file */
	CR_PHENTSIZE,		/* e_phentsize 64 instead of 56 */
	CR_NO_LOAD,		/* every PT_LOAD turned into PT_NULL */
	CR_MISALIGNED,		/* first PT_LOAD's address moved by 16 bytes */
	CR_INTERP_UNTERMINATED,	/* hello's PT_INTERP without its NUL */
	CR_INTERP_PAST_EOF,	/* hello's PT_INTERP offset past the end */
	CR_STRTAB_WILD,		/* DT_STRTAB far outside every PT_LOAD */
	CR_NEEDED_WILD,		/* DT_NEEDED offset far past the string table */
	CR_SONAME_WILD,		/* DT_SONAME likewise */
	CR_DYNAMIC_WILD,	/* PT_DYNAMIC's address outside every PT_LOAD */
	CR_SYMTAB_WILD,		/* DT_SYMTAB outside every PT_LOAD */
	CR_PAD,			/* a shared object with nonzero e_ident padding */
	CR_VERSION,		/* a shared object with e_version 2 */
	CR_COUNT
};

static UNUSED uint64_t get_le(const unsigned char *p, int w)
{
	uint64_t v = 0;

	for (int i = w - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static UNUSED void put_le(unsigned char *p, int w, uint64_t v)
{
	for (int i = 0; i < w; i++, v >>= 8)
		p[i] = (unsigned char)v;
}

/* File offset of the nth program header of this type, or 0. */
static UNUSED size_t phdr_at(const unsigned char *b, uint32_t type, unsigned nth)
{
	uint64_t phoff = get_le(b + 0x20, 8);
	unsigned n = (unsigned)get_le(b + 0x38, 2);

	for (unsigned i = 0; i < n; i++)
		if (get_le(b + phoff + i * 56, 4) == type && nth-- == 0)
			return (size_t)(phoff + i * 56);
	return 0;
}

/* File offset of the value of the first dynamic entry with this tag, or 0. */
static UNUSED size_t dyn_val_at(const unsigned char *b, uint64_t tag)
{
	size_t ph = phdr_at(b, 2 /* PT_DYNAMIC */, 0);
	uint64_t off = get_le(b + ph + 8, 8), sz = get_le(b + ph + 32, 8);

	assert_true(ph != 0);
	for (uint64_t o = off; o + 16 <= off + sz; o += 16)
		if (get_le(b + o, 8) == tag)
			return (size_t)(o + 8);
	return 0;
}

static UNUSED unsigned char *craft(enum craft_kind k, size_t *len, const char **want)
{
	bool exe = k == CR_INTERP_UNTERMINATED || k == CR_INTERP_PAST_EOF;
	unsigned char *b = slurp(fx(exe ? "hello" : "libfoo.so"), len);
	size_t ph, v;

	assert_true(b[4] == 2 && b[5] == 1);	/* ELF64 little-endian */
	switch (k) {
	case CR_TRUNCATED: {
		size_t last = 0;

		for (unsigned i = 0; (ph = phdr_at(b, 1, i)) != 0; i++)
			last = ph;
		*len = (size_t)(get_le(b + last + 8, 8) + get_le(b + last + 32, 8) / 2);
		*want = "runs past the end of the file (";
		break;
	}
	case CR_PHDR_PAST_EOF:
		put_le(b + 0x20, 8, *len - 100);
		*want = "program header table";
		break;
	case CR_PHENTSIZE:
		put_le(b + 0x36, 2, 64);
		*want = "e_phentsize is 64, not 56";
		break;
	case CR_NO_LOAD:
		while ((ph = phdr_at(b, 1, 0)) != 0)
			put_le(b + ph, 4, 0);
		*want = "no PT_LOAD segment";
		break;
	case CR_MISALIGNED:
		ph = phdr_at(b, 1, 0);
		put_le(b + ph + 16, 8, get_le(b + ph + 16, 8) + 16);
		*want = "not page-aligned";
		break;
	case CR_INTERP_UNTERMINATED:
		ph = phdr_at(b, 3, 0);
		b[get_le(b + ph + 8, 8) + get_le(b + ph + 32, 8) - 1] = 'x';
		*want = "PT_INTERP is not NUL-terminated";
		break;
	case CR_INTERP_PAST_EOF:
		ph = phdr_at(b, 3, 0);
		put_le(b + ph + 8, 8, *len + 4096);
		*want = "PT_INTERP (file bytes";
		break;
	case CR_STRTAB_WILD:
		put_le(b + dyn_val_at(b, 5 /* DT_STRTAB */), 8, 0x7fff0000);
		*want = "DT_NEEDED string (DT_STRTAB 0x7fff0000";
		break;
	case CR_NEEDED_WILD:
		put_le(b + dyn_val_at(b, 1 /* DT_NEEDED */), 8, 0x40000000);
		*want = "DT_NEEDED string";
		break;
	case CR_SONAME_WILD:
		put_le(b + dyn_val_at(b, 14 /* DT_SONAME */), 8, 0x40000000);
		*want = "DT_SONAME string";
		break;
	case CR_DYNAMIC_WILD:
		ph = phdr_at(b, 2, 0);
		put_le(b + ph + 16, 8, 0x7fff0000);
		*want = "PT_DYNAMIC (address 0x7fff0000) lies outside every PT_LOAD";
		break;
	case CR_SYMTAB_WILD:
		v = dyn_val_at(b, 6 /* DT_SYMTAB */);
		put_le(b + v, 8, 0x7fff0000);
		*want = "DT_SYMTAB (address 0x7fff0000) lies outside every PT_LOAD";
		break;
	case CR_PAD:
		b[12] = 1;
		*want = "nonzero padding in e_ident";
		break;
	case CR_VERSION:
		put_le(b + 0x14, 4, 2);
		*want = "e_version is 2, not 1";
		break;
	default:
		fail();
	}
	return b;
}

/* Write bytes to dir/name; returns the path (free it). */
static UNUSED char *put_file(const char *dir, const char *name, const void *p, size_t n)
{
	char *path = join(dir, name);
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
	return path;
}
