/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the input layer every command reads through. The first
 * byte picks the mode and options:
 *   bit 0 clear: the rest is an archive file (zip, tar, ...), loaded with
 *                lp_input_load_all staging its members into a temp dir;
 *   bit 0 set:   the rest describes a small directory tree (names, files,
 *                symlinks, nesting) built on disk, then lp_input_load_all;
 *   bit 1: refuse escaping links instead of materializing them;
 *   bit 2: overwrite duplicates instead of refusing them;
 *   bit 3: add an --exclude pattern ("*.pyc").
 * Problems are collected in a report, as analyze does.
 *
 * Tree format, repeated: op byte (low 2 bits: 0 file, 1 directory (entered),
 * 2 symlink, 3 leave the directory), a name (length byte + bytes; '/' and
 * NUL become '_'), then for a file a length byte and content, for a symlink
 * a target. Absolute targets are moved under the fuzz root's outside/ and a
 * target climbs at most to the fuzz root, so links reach no host file.
 */
#include "core/err.h"
#include "core/fsutil.h"
#include "core/report.h"
#include "input/input.h"
#include "input/internal.h"
#include "fuzz/fuzz_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_OPS		64
#define MAX_DEPTH	12

static char *root;		/* <tmp>: src/, stage/, outside/, archive */

struct cur {
	const uint8_t *p;
	size_t n;
};

/* Length byte + bytes; '/' and NUL replaced so it is one path component. */
static bool take_name(struct cur *c, char *out, size_t cap, bool component)
{
	size_t len;

	if (c->n < 1)
		return false;
	len = c->p[0] % 48;
	c->p++;
	c->n--;
	if (c->n < len || len + 1 > cap)
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = (char)c->p[i];

		out[i] = ch == '\0' || (component && ch == '/') ? '_' : ch;
	}
	out[len] = '\0';
	c->p += len;
	c->n -= len;
	return true;
}

/*
 * A symlink target that cannot reach outside the fuzz root: an absolute one
 * goes under <root>/outside, and ".." components beyond depth+1 (the source
 * root is one below the fuzz root) become "x".
 */
static void safe_target(const char *t, unsigned depth, char *out, size_t cap)
{
	unsigned ups = 0;
	size_t o = 0;

	if (t[0] == '/')
		o = (size_t)snprintf(out, cap, "%s/outside", root);
	for (const char *s = t; *s && o + 4 < cap;) {
		const char *e = strchr(s, '/');
		size_t k = e ? (size_t)(e - s) : strlen(s);

		if (k == 2 && s[0] == '.' && s[1] == '.' && ++ups > depth + 1) {
			out[o++] = 'x';
		} else {
			if (k > cap - o - 2)
				k = cap - o - 2;
			memcpy(out + o, s, k);
			o += k;
		}
		s += e ? (size_t)(e - s) : strlen(s);
		if (*s == '/') {
			out[o++] = '/';
			s++;
		}
	}
	out[o] = '\0';
}

static void build_tree(struct cur *c, const char *src)
{
	char cwd[8192], name[64], text[64], target[8192], path[8192];
	size_t cwdlen[MAX_DEPTH + 1];
	unsigned depth = 0;

	snprintf(cwd, sizeof(cwd), "%s", src);
	cwdlen[0] = strlen(cwd);
	for (int op = 0; op < MAX_OPS && c->n > 0; op++) {
		int kind = c->p[0] & 3;

		c->p++;
		c->n--;
		if (kind == 3) {
			if (depth > 0)
				cwd[cwdlen[--depth]] = '\0';
			continue;
		}
		if (!take_name(c, name, sizeof(name), true))
			return;
		if (!name[0] || !strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", cwd, name);
		if (kind == 0) {
			if (!take_name(c, text, sizeof(text), false))
				return;
			/* Not fuzz_put: the name may already be a directory or a link. */
			int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644);

			if (fd >= 0) {
				if (write(fd, text, strlen(text)) < 0)
					abort();
				close(fd);
			}
		} else if (kind == 1) {
			if (mkdir(path, 0755) == 0 && depth < MAX_DEPTH) {
				depth++;
				snprintf(cwd + cwdlen[depth - 1], sizeof(cwd) - cwdlen[depth - 1], "/%s", name);
				cwdlen[depth] = strlen(cwd);
			}
		} else {
			if (!take_name(c, text, sizeof(text), false))
				return;
			safe_target(text, depth, target, sizeof(target));
			(void)symlink(target, path);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lp_input_opts o;
	struct lp_source src;
	struct lp_entries l;
	struct cur c;
	char path[4096], stage[4096];
	const char *excl[] = { "*.pyc" };
	struct lp_report rep;

	if (!root) {
		if (lp_tmpdir_create("fuzz-input", &root) < 0)
			abort();
		/* What absolute link targets reach: a file and a directory. */
		snprintf(path, sizeof(path), "%s/outside/etc", root);
		lp_mkdir_p(path, 0755);
		fuzz_put(path, "passwd", "root:x:0:0\n", 11);
	}
	if (size < 1)
		return 0;
	c = (struct cur){ data + 1, size - 1 };
	memset(&o, 0, sizeof(o));
	o.links = (data[0] & 2) ? LP_LINKS_REFUSE : LP_LINKS_MATERIALIZE;
	o.digest = true;
	o.binfo = true;
	o.max_expand = 64u << 20;	/* keep iterations fast; bombs still hit the cap */
	if (data[0] & 8) {
		o.excludes.v = (char **)excl;
		o.excludes.n = 1;
	}
	lp_report_init(&rep);
	o.problems = &rep;
	snprintf(path, sizeof(path), "%s/src", root);
	snprintf(stage, sizeof(stage), "%s/stage", root);
	lp_rm_rf(path);
	lp_rm_rf(stage);
	if (data[0] & 1) {
		if (mkdir(path, 0755) < 0)
			abort();
		build_tree(&c, path);
	} else {
		if (mkdir(stage, 0700) < 0)
			abort();
		fuzz_put(root, "src", c.p, c.n);
		o.stage_dir = stage;
	}
	memset(&src, 0, sizeof(src));
	src.path = path;
	src.prefix = (char *)"";
	lp_entries_init(&l);
	lp_errmsg_clear();
	if (lp_input_load_all(&src, 1, &o, (data[0] & 4) != 0, &l) < 0 && !*lp_errmsg())
		abort();	/* every failure says why */
	lp_entries_free(&l);
	lp_report_free(&rep);
	return 0;
}
