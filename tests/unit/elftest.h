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
