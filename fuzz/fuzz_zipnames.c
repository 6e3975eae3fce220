/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the zip writer's name handling. The input becomes up to
 * 32 entries with arbitrary names, kinds, link targets and small contents;
 * lp_zip_write either refuses the list (with a message) or writes a zip that
 * is read back here, in process, with the writer's strict central-directory
 * reader and with libarchive. Invariants (any violation aborts):
 *  - every entry is in the zip under its own name (directories with one
 *    trailing '/'), in order, and nothing else is;
 *  - no name is empty, absolute, has a "." or ".." component, an empty
 *    component or a trailing '/' on a non-directory, and none is written
 *    twice; no entry lies beneath a file or a symlink (extracting it would
 *    write through the link or fail);
 *  - the UTF-8 flag (bit 11) is set only on valid, non-ASCII UTF-8;
 *  - sizes and CRCs agree with the contents (and with libarchive).
 *
 * Input format, repeated: kind byte (low 2 bits: 0 file, 1 dir, 2 symlink,
 * 3 file with the exec bit), name length, name bytes, then for a file one
 * length byte and its bytes, for a symlink a target length and target bytes.
 */
#include "core/entry.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "core/util.h"
#include "pack/zip.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ENTRIES 32

static char *dir;

struct cur {
	const uint8_t *p;
	size_t n;
};

static bool take(struct cur *c, size_t len, const uint8_t **out)
{
	if (c->n < len)
		return false;
	*out = c->p;
	c->p += len;
	c->n -= len;
	return true;
}

/* A length byte then that many bytes, as a C string (stops at a NUL). */
static char *take_str(struct cur *c)
{
	const uint8_t *lp, *s;
	char *r;

	if (!take(c, 1, &lp) || !take(c, *lp % 64, &s))
		return NULL;
	r = malloc((size_t)(*lp % 64) + 1);
	if (!r)
		abort();
	memcpy(r, s, *lp % 64);
	r[*lp % 64] = '\0';
	return r;
}

static bool ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

/* The name as extractors read it: libarchive and Windows tools take '\\' for '/'. */
static char *norm(const char *s)
{
	char *r = strdup(s);

	if (!r)
		abort();
	for (char *c = r; *c; c++)
		if (*c == '\\')
			*c = '/';
	return r;
}

/* The name rules a written zip must satisfy (see the header comment), on norm(name). */
static bool name_ok(const char *n, bool is_dir)
{
	size_t len = strlen(n);

	if (len == 0 || n[0] == '/' || (!is_dir && n[len - 1] == '/'))
		return false;
	if (is_dir && (len < 2 || n[len - 1] != '/' || n[len - 2] == '/'))
		return false;
	for (const char *s = n; *s;) {
		const char *e = strchr(s, '/');
		size_t k = e ? (size_t)(e - s) : strlen(s);

		if (k == 0 || (k == 1 && s[0] == '.') || (k == 2 && s[0] == '.' && s[1] == '.'))
			return false;
		s += k;
		if (*s == '/')
			s++;
	}
	return true;
}

static void check_zip(int fd, const struct lp_entries *l, char **content, size_t *clen)
{
	struct lp_zip_central cd;
	size_t k = 0;
	off_t end = lseek(fd, 0, SEEK_END);
	void *map;

	if (lp_zip_read_central(fd, &cd) != 0)
		abort();	/* the writer's output fails its own strict reader */
	for (size_t i = 0; i < l->n; i++) {
		const struct lp_entry *e = &l->v[i];
		const struct lp_zip_centry *c;
		bool is_dir = e->kind == LP_DIR;
		size_t plen = strlen(e->path);

		if (e->flags & LP_F_REMOVED)
			continue;
		if (k >= cd.n)
			abort();	/* an entry is missing */
		c = &cd.v[k++];
		if (strncmp(c->name, e->path, plen) != 0 || strcmp(c->name + plen, is_dir ? "/" : "") != 0)
			abort();	/* the name did not round-trip */
		{
			char *nn = norm(c->name);

			if (!name_ok(nn, is_dir))
				abort();	/* an unsafe name was written */
			free(nn);
		}
		if ((c->flags & 0x0800) && (ascii(c->name) || !lp_utf8_valid(c->name)))
			abort();	/* UTF-8 flag on a name that is not UTF-8 */
		if (!(c->flags & 0x0800) && !ascii(c->name) && lp_utf8_valid(c->name))
			abort();	/* valid UTF-8 written without the flag */
		if (e->kind == LP_FILE) {
			size_t idx = (size_t)e->orig_size;	/* harness: index into content[] */

			if (c->usize != clen[idx] || c->crc != lp_zip_crc32(0, content[idx], clen[idx]))
				abort();
		} else if (e->kind == LP_SYMLINK) {
			if (c->usize != strlen(e->target) ||
			    c->crc != lp_zip_crc32(0, e->target, strlen(e->target)))
				abort();
		} else if (c->usize != 0) {
			abort();
		}
	}
	if (k != cd.n)
		abort();	/* extra entries */
	/* No duplicates, nothing beneath a file or a symlink. */
	for (size_t i = 0; i < cd.n; i++) {
		char *a = norm(cd.v[i].name);
		size_t al = strlen(a);
		bool a_dir = al && a[al - 1] == '/';

		for (size_t j = 0; j < cd.n; j++) {
			char *b = norm(cd.v[j].name);

			if (i != j && !strcmp(a, b))
				abort();
			if (i != j && !a_dir && !strncmp(b, a, al) && b[al] == '/')
				abort();
			if (i != j && a_dir && !strncmp(b, a, al - 1) && b[al - 1] == '\0')
				abort();	/* "x/" and "x" */
			free(b);
		}
		free(a);
	}

	/* libarchive agrees on the count, the sizes and the bytes (it does not open an empty zip). */
	if (cd.n == 0) {
		lp_zip_central_free(&cd);
		return;
	}
	map = mmap(NULL, (size_t)end, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		abort();
	{
		struct archive *ar = archive_read_new();
		struct archive_entry *ae;
		size_t n = 0;
		char buf[512];
		int r;

		archive_read_support_format_zip_seekable(ar);
		if (archive_read_open_memory(ar, map, (size_t)end) != ARCHIVE_OK)
			abort();
		/* ARCHIVE_WARN: a name the C locale cannot convert; still an entry. */
		while ((r = archive_read_next_header(ar, &ae)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
			const struct lp_zip_centry *c;
			la_int64_t total = 0;
			la_ssize_t got;

			if (n >= cd.n)
				abort();
			c = &cd.v[n++];
			char *nn = norm(c->name);

			/* libarchive turns '\\' into '/' in names without a '/'. */
			if (ascii(c->name) && strcmp(archive_entry_pathname(ae), c->name) != 0 &&
			    strcmp(archive_entry_pathname(ae), nn) != 0) {
				fprintf(stderr, "libarchive reads '%s' as '%s'\n", c->name, archive_entry_pathname(ae));
				abort();
			}
			free(nn);
			while ((got = archive_read_data(ar, buf, sizeof(buf))) > 0)
				total += got;
			if (got < 0)
				abort();
			/* A link's bytes are its target: libarchive hands them over as such. */
			if (archive_entry_filetype(ae) == AE_IFLNK)
				total = archive_entry_symlink(ae) ? (la_int64_t)strlen(archive_entry_symlink(ae)) : -1;
			if ((uint64_t)total != c->usize)
				abort();
		}
		if (n != cd.n)
			abort();
		archive_read_free(ar);
	}
	munmap(map, (size_t)end);
	lp_zip_central_free(&cd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cur c = { data, size };
	struct lp_entries l;
	struct lp_zip_opts o;
	char *content[MAX_ENTRIES] = { 0 };
	size_t clen[MAX_ENTRIES] = { 0 }, nfiles = 0;
	const uint8_t *kb;
	int fd, r;

	if (!dir && lp_tmpdir_create("fuzz-zipnames", &dir) < 0)
		abort();
	lp_entries_init(&l);
	while (l.n < MAX_ENTRIES && take(&c, 1, &kb)) {
		char *name = take_str(&c), *extra;
		struct lp_entry *e;
		int kind = *kb & 3;

		if (!name)
			break;
		extra = kind == 1 ? NULL : take_str(&c);
		if (kind != 1 && !extra) {
			free(name);
			break;
		}
		e = lp_entries_push(&l, name, kind == 1 ? LP_DIR : kind == 2 ? LP_SYMLINK : LP_FILE);
		if (!e)
			abort();
		e->mode = kind == 3 ? 0755 : kind == 1 ? 0755 : 0644;
		if (kind == 2) {
			e->target = extra;
			e->size = strlen(extra);
		} else if (kind != 1) {
			char path[4096];
			size_t n = strlen(extra);

			snprintf(path, sizeof(path), "%s/f%zu", dir, nfiles);
			fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
			if (fd < 0 || lp_write_all(fd, extra, n) < 0)
				abort();
			close(fd);
			e->src = strdup(path);
			if (!e->src)
				abort();
			e->size = n;
			content[nfiles] = extra;
			clen[nfiles] = n;
			e->orig_size = nfiles++;	/* read back by check_zip */
		}
		free(name);
	}
	lp_entries_sort(&l);

	lp_zip_opts_init(&o);
	o.threads = 1;
	fd = memfd_create("fuzz-zip", 0);
	if (fd < 0)
		abort();
	lp_errmsg_clear();
	r = lp_zip_write(&l, fd, &o, NULL);
	if (r < 0) {
		if (getenv("FUZZ_VERBOSE"))
			fprintf(stderr, "refused: %s\n", lp_errmsg());
		if (!*lp_errmsg())
			abort();	/* refusals name the entry */
	} else {
		const char *dump = getenv("FUZZ_ZIP_OUT");	/* keep the zip, for other readers */

		if (dump) {
			off_t zend = lseek(fd, 0, SEEK_END);
			char *zb = malloc((size_t)zend + 1);
			FILE *zf = fopen(dump, "wb");

			if (!zb || !zf || lp_pread_all(fd, zb, (size_t)zend, 0) < 0 ||
			    fwrite(zb, 1, (size_t)zend, zf) != (size_t)zend)
				abort();
			fclose(zf);
			free(zb);
		}
		check_zip(fd, &l, content, clen);
	}
	close(fd);
	for (size_t i = 0; i < nfiles; i++)
		free(content[i]);
	lp_entries_free(&l);
	return 0;
}
