/* SPDX-License-Identifier: MIT */
/*
 * The member reader: zip and tar-family archives (and image layers) read
 * one member at a time through libarchive, with every check in one place so
 * pack, container and analyze see the same members and refuse the same ones.
 *
 * libarchive reads a zip's local headers and data; Lambda and unzip trust
 * its central directory. Before the first member is handed out the two are
 * compared, so a zip that shows one content to one reader and another to
 * the next (overlapping entries, several central entries on one local
 * header, sizes that lie) is refused by every command alike.
 */
#include "input/internal.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "core/util.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_MEMBERS	4000000u
#define DEFAULT_MAX	(16ULL << 30)
#define BOMB_RATIO	200u		/* expansion ratio that, past BOMB_FLOOR, is a bomb */
#define BOMB_FLOOR	(256ULL << 20)

/* ---- a set of paths ------------------------------------------------------ */

enum { K_FILE = 1, K_DIR, K_LINK, K_OTHER };

struct nset {
	char **k;
	uint8_t *v;
	size_t n, cap;
};

static size_t nset_slot(const struct nset *s, const char *key)
{
	size_t i = (size_t)lp_fnv1a(key) & (s->cap - 1);

	while (s->k[i] && strcmp(s->k[i], key))
		i = (i + 1) & (s->cap - 1);
	return i;
}

static uint8_t nset_get(const struct nset *s, const char *key)
{
	if (!s->cap)
		return 0;
	return s->k[nset_slot(s, key)] ? s->v[nset_slot(s, key)] : 0;
}

static int nset_put(struct nset *s, const char *key, uint8_t v)
{
	size_t i;

	if ((s->n + 1) * 2 > s->cap) {
		struct nset t = { .cap = s->cap ? s->cap * 2 : 1024 };

		t.k = calloc(t.cap, sizeof(*t.k));
		t.v = calloc(t.cap, 1);
		if (!t.k || !t.v) {
			free(t.k);
			free(t.v);
			return -ENOMEM;
		}
		for (size_t j = 0; j < s->cap; j++)
			if (s->k[j]) {
				size_t d = nset_slot(&t, s->k[j]);

				t.k[d] = s->k[j];
				t.v[d] = s->v[j];
			}
		t.n = s->n;
		free(s->k);
		free(s->v);
		*s = t;
	}
	i = nset_slot(s, key);
	if (!s->k[i]) {
		if (!(s->k[i] = strdup(key)))
			return -ENOMEM;
		s->n++;
	}
	s->v[i] = v;
	return 0;
}

static void nset_free(struct nset *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->k[i]);
	free(s->k);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

bool lp_input_problem(const char *code)
{
	static const char *const codes[] = {
		/* archive members (this file) */
		"unsafe-name", "bad-name", "zip-inconsistent", "duplicate-member", "bad-type",
		"link-outside", "hardlink-outside", "hardlink-missing",
		/* directory sources (dir.c), sources and collisions (source.c, core/entry.c) */
		"link-outside-repository", "link-loop", "special-file", "unreadable", "too-deep",
		"path-too-long", "bad-source", "duplicate-path",
	};

	for (size_t i = 0; code && i < sizeof(codes) / sizeof(codes[0]); i++)
		if (!strcmp(code, codes[i]))
			return true;
	return false;
}

/* ---- the stream ------------------------------------------------------------ */

struct lp_stream {
	struct archive *ar;
	struct lp_stream_opts o;
	char *name;		/* the input, for messages */
	char *path;		/* the file, or NULL for a callback source */
	lp_stream_read_fn fn;
	void *ud;
	struct lp_member m;
	char *clean, *link, *raw;
	struct nset seen;	/* member paths (and, outside layers, their parents) */
	struct nset zbad;	/* zip names: ZIP_BAD refused by the central directory check, ZIP_TWIN */
	bool zip_checked, is_zip, in_data;
	uint64_t declared, expanded, members;
	uint64_t cur_read;
	bool dropped;
	locale_t utf8;		/* (locale_t)0 if the C library has no C.UTF-8 */
};

const char *lp_archive_error(struct archive *ar)
{
	const char *e = archive_error_string(ar);

	/*
	 * "Failed to open 'PATH'" says the path our message already starts
	 * with; the reason is in errno.
	 */
	if (e && !strncmp(e, "Failed to open '", 16) && archive_errno(ar) > 0)
		return strerror(archive_errno(ar));
	/* libarchive may have no words for it: never print "(null)". */
	return e && *e ? e : "unreadable or truncated data";
}

/*
 * A member name for a message: escaped, and when long only its head and tail
 * (cut on UTF-8 boundaries), so the reason after it still fits the line.
 */
static void name_for_msg(const char *raw, char *out, size_t outlen)
{
	size_t n = strlen(raw), h = 120, t = n > 120 ? n - 120 : 0;
	char cut[256];

	if (n <= 256) {
		lp_escape(raw, out, outlen);
		return;
	}
	while (h > 0 && ((unsigned char)raw[h] & 0xc0) == 0x80)
		h--;
	while (t < n && ((unsigned char)raw[t] & 0xc0) == 0x80)
		t++;
	snprintf(cut, sizeof(cut), "%.*s...%s", (int)h, raw, raw + t);
	lp_escape(cut, out, outlen);
}

static int problem(struct lp_stream *s, int err, const char *code, const char *path, const char *raw,
		   const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/*
 * One input problem, naming the input and the member (escaped: names from
 * archives never reach a terminal raw). 0: recorded, skip the member.
 */
static int problem(struct lp_stream *s, int err, const char *code, const char *path, const char *raw,
		   const char *fmt, ...)
{
	char in[PATH_MAX], mem[1024], why[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	lp_escape(s->name, in, sizeof(in));
	if (!raw)
		return lp_report_problem(s->o.problems, 0, err, code, path, "%s: %s", in, why);
	name_for_msg(raw, mem, sizeof(mem));
	return lp_report_problem(s->o.problems, 0, err, code, path, "%s: member '%s': %s", in, mem, why);
}

static int fatal(struct lp_stream *s, int err, const char *raw, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fatal(struct lp_stream *s, int err, const char *raw, const char *fmt, ...)
{
	char in[PATH_MAX], mem[1024], why[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	lp_escape(s->name, in, sizeof(in));
	if (!raw)
		return lp_fail(err, NULL, "%s: %s", in, why);
	name_for_msg(raw, mem, sizeof(mem));
	return lp_fail(err, NULL, "%s: member '%s': %s", in, mem, why);
}

static la_ssize_t cb_read(struct archive *a, void *ud, const void **out)
{
	struct lp_stream *s = ud;
	ssize_t got = s->fn(s->ud, out);

	if (got < 0)
		archive_set_error(a, EIO, "cannot read the layer's bytes");
	return (la_ssize_t)got;
}

static int stream_new(const struct lp_stream_opts *o, const char *path, struct lp_stream **ret)
{
	struct lp_stream *s = calloc(1, sizeof(*s));

	*ret = NULL;
	if (!s)
		return -ENOMEM;
	s->o = *o;
	if (!s->o.max_expand)
		s->o.max_expand = DEFAULT_MAX;
	if (!s->o.max_members)
		s->o.max_members = MAX_MEMBERS;
	s->name = strdup(o->name ? o->name : path ? path : "archive");
	s->path = path ? strdup(path) : NULL;
	s->clean = malloc(PATH_MAX);
	s->link = malloc(PATH_MAX);
	s->ar = archive_read_new();
	/*
	 * libarchive converts names through the thread's locale; in the C
	 * locale a UTF-8 zip name has no form at all. C.UTF-8 for this
	 * thread only, around our libarchive calls.
	 */
	s->utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	if (!s->name || (path && !s->path) || !s->clean || !s->link || !s->ar) {
		lp_stream_close(s);
		return -ENOMEM;
	}
	/* Built-in decoders only: filter_all may run external programs. */
	archive_read_support_filter_gzip(s->ar);
	archive_read_support_filter_zstd(s->ar);
	archive_read_support_filter_bzip2(s->ar);
	archive_read_support_filter_xz(s->ar);
	archive_read_support_filter_lzma(s->ar);
	archive_read_support_filter_lz4(s->ar);
	archive_read_support_format_tar(s->ar);
	archive_read_support_format_gnutar(s->ar);
	if (!o->only_tar) {
		archive_read_support_format_zip(s->ar);
		archive_read_support_format_7zip(s->ar);
		archive_read_support_format_cpio(s->ar);
	}
	archive_read_support_format_empty(s->ar);
	*ret = s;
	return 0;
}

int lp_stream_open_file(const char *path, const struct lp_stream_opts *o, struct lp_stream **ret)
{
	struct lp_stream *s;
	struct stat st;
	int r = stream_new(o, path, &s);

	if (r < 0)
		return r;
	if (!s->o.raw_size && stat(path, &st) == 0)
		s->o.raw_size = (uint64_t)st.st_size;
	if (archive_read_open_filename(s->ar, path, 1 << 16) != ARCHIVE_OK) {
		int e = archive_errno(s->ar);

		r = fatal(s, e == ENOENT || e == EACCES ? -e : -LP_E_BADARCHIVE, NULL,
			  "cannot read archive: %s", lp_archive_error(s->ar));
		lp_stream_close(s);
		return r;
	}
	*ret = s;
	return 0;
}

int lp_stream_open_cb(lp_stream_read_fn fn, void *ud, const struct lp_stream_opts *o, struct lp_stream **ret)
{
	struct lp_stream *s;
	int r = stream_new(o, NULL, &s);

	if (r < 0)
		return r;
	s->fn = fn;
	s->ud = ud;
	if (archive_read_open(s->ar, s, NULL, cb_read, NULL) != ARCHIVE_OK) {
		r = fatal(s, -LP_E_BADARCHIVE, NULL, "not a readable tar: %s", lp_archive_error(s->ar));
		lp_stream_close(s);
		return r;
	}
	*ret = s;
	return 0;
}

void lp_stream_close(struct lp_stream *s)
{
	if (!s)
		return;
	if (s->ar)
		archive_read_free(s->ar);
	if (s->utf8)
		freelocale(s->utf8);
	nset_free(&s->seen);
	nset_free(&s->zbad);
	free(s->name);
	free(s->path);
	free(s->clean);
	free(s->link);
	free(s->raw);
	free(s);
}

bool lp_stream_is_zip(const struct lp_stream *s)
{
	return s->is_zip;
}

bool lp_stream_dropped(const struct lp_stream *s)
{
	return s->dropped;
}

/* ---- zip: the central directory against the local headers ------------------ */

struct zcent {
	const uint8_t *name;	/* into the central directory copy */
	size_t nl;
	uint64_t off, csize, usize, end;
	uint32_t crc;
	uint16_t method, flags;
	bool bad;
};

static int cmp_off(const void *x, const void *y)
{
	const struct zcent *a = *(struct zcent *const *)x, *b = *(struct zcent *const *)y;

	if (a->off != b->off)
		return a->off < b->off ? -1 : 1;
	return a < b ? -1 : a > b;
}

/* zip64 extra field: the escaped values in order (usize, csize, offset). */
static void zip64_extra(const uint8_t *x, size_t xl, uint64_t *usize, uint64_t *csize, uint64_t *off)
{
	for (size_t i = 0; i + 4 <= xl;) {
		size_t len = lp_le16(x + i + 2);

		if (i + 4 + len > xl)
			return;
		if (lp_le16(x + i) == 1) {
			const uint8_t *p = x + i + 4, *e = p + len;

			if (usize && *usize == 0xffffffffu && p + 8 <= e) {
				*usize = lp_le64(p);
				p += 8;
			}
			if (csize && *csize == 0xffffffffu && p + 8 <= e) {
				*csize = lp_le64(p);
				p += 8;
			}
			if (off && *off == 0xffffffffu && p + 8 <= e)
				*off = lp_le64(p);
			return;
		}
		i += 4 + len;
	}
}

/*
 * A streamed entry (flag bit 3) keeps its CRC-32 and sizes in a data
 * descriptor after its data (signature optional): they must agree too.
 */
static bool dd_agrees(int fd, struct zcent *z, uint64_t cdoff)
{
	uint8_t dd[24];
	const uint8_t *p = dd;
	size_t n = cdoff - z->end < sizeof(dd) ? (size_t)(cdoff - z->end) : sizeof(dd);
	size_t left;

	if (n < 12 || lp_pread_all(fd, dd, n, (off_t)z->end) < 0)
		return false;
	if (lp_le32(dd) == 0x08074b50 && n >= 16 && lp_le32(dd + 4) == z->crc)
		p += 4;	/* the optional signature (a CRC of 0x08074b50 is the ambiguous case) */
	left = n - (size_t)(p - dd);
	if (lp_le32(p) != z->crc)
		return false;
	/* 4-byte sizes, or 8-byte ones (zip64 writers). */
	if (lp_le32(p + 4) == z->csize && lp_le32(p + 8) == z->usize)
		return true;
	return left >= 20 && lp_le64(p + 4) == z->csize && lp_le64(p + 12) == z->usize;
}

/* Remember a refused zip member by the name libarchive will give it. */
enum { ZIP_BAD = 1, ZIP_TWIN = 2 };

static int zmark(struct lp_stream *s, const uint8_t *name, size_t nl, uint8_t bit)
{
	char *n = strndup((const char *)name, nl);	/* stops at a NUL, as libarchive's name does */
	int r;

	if (!n)
		return -ENOMEM;
	r = nset_put(&s->zbad, n, (uint8_t)((s->zbad.n ? nset_get(&s->zbad, n) : 0) | bit));
	free(n);
	return r;
}

static int zbad_mark(struct lp_stream *s, const uint8_t *name, size_t nl)
{
	return zmark(s, name, nl, ZIP_BAD);
}

static int cmp_size_crc(const void *x, const void *y)
{
	const struct zcent *a = *(struct zcent *const *)x, *b = *(struct zcent *const *)y;

	if (a->usize != b->usize)
		return a->usize < b->usize ? -1 : 1;
	if (a->crc != b->crc)
		return a->crc < b->crc ? -1 : 1;
	return a < b ? -1 : a > b;
}

/*
 * Members whose (size, CRC-32) another member shares are the only possible
 * duplicates: readers that look for twins (analyze, as fdupes does) read the
 * others only as far as their type needs. ord is scratch of n pointers.
 */
static int zip_twins(struct lp_stream *s, struct zcent *v, size_t n, struct zcent **ord)
{
	size_t k = 0;
	int r;

	for (size_t i = 0; i < n; i++)
		if (!v[i].bad && v[i].usize && v[i].nl && v[i].name[v[i].nl - 1] != '/')
			ord[k++] = &v[i];
	qsort(ord, k, sizeof(*ord), cmp_size_crc);
	for (size_t i = 0; i < k; i++) {
		bool prev = i > 0 && ord[i - 1]->usize == ord[i]->usize && ord[i - 1]->crc == ord[i]->crc;
		bool next = i + 1 < k && ord[i + 1]->usize == ord[i]->usize && ord[i + 1]->crc == ord[i]->crc;

		if ((prev || next) && (r = zmark(s, ord[i]->name, ord[i]->nl, ZIP_TWIN)) < 0)
			return r;
	}
	return 0;
}

static int zname_problem(struct lp_stream *s, int err, const char *code, const uint8_t *name, size_t nl,
			 const char *fmt, const char *extra)
{
	char raw[PATH_MAX], esc[PATH_MAX];
	size_t k = 0;

	/* Show an embedded NUL as \x00, the rest escaped by problem(). */
	for (size_t i = 0; i < nl && k + 5 < sizeof(raw); i++) {
		if (name[i] == 0) {
			memcpy(raw + k, "\x01", 1);
			k++;
		} else {
			raw[k++] = (char)name[i];
		}
	}
	raw[k] = '\0';
	name_for_msg(raw, esc, sizeof(esc));
	for (char *p; (p = strstr(esc, "\\x01"));)
		memcpy(p, "\\x00", 4);
	{
		char in[PATH_MAX];

		lp_escape(s->name, in, sizeof(in));
		return lp_report_problem(s->o.problems, 0, err, code, NULL, "%s: member '%s': %s%s", in, esc, fmt,
					 extra ? extra : "");
	}
}

static int zip_check(struct lp_stream *s)
{
	uint8_t tail[65557], *cd = NULL, *lname = NULL;
	struct zcent *v = NULL, **ord = NULL;
	size_t n = 0, cap = 0, tn, eocd = SIZE_MAX;
	uint64_t cdoff, cdsize, fsize, declared = 0, shift = 0;
	struct stat st;
	int fd = open(s->path, O_RDONLY | O_CLOEXEC), r = 0;

	if (fd < 0 || fstat(fd, &st) < 0) {
		r = fatal(s, -errno, NULL, "cannot read: %s", strerror(errno));
		goto out;
	}
	fsize = (uint64_t)st.st_size;
	tn = fsize < sizeof(tail) ? (size_t)fsize : sizeof(tail);
	if (tn < 22 || lp_pread_all(fd, tail, tn, (off_t)(fsize - tn)) < 0)
		goto bad;
	for (size_t i = tn - 22 + 1; i-- > 0;)
		if (lp_le32(tail + i) == 0x06054b50) {
			eocd = i;
			break;
		}
	if (eocd == SIZE_MAX)
		goto bad;
	cdsize = lp_le32(tail + eocd + 12);
	cdoff = lp_le32(tail + eocd + 16);
	/*
	 * A zip64 locator means the zip64 record holds the truth, also when the
	 * classic fields still fit: writers (Python's zipfile) add it for more
	 * than 65,535 entries alone.
	 */
	if (eocd >= 20 && lp_le32(tail + eocd - 20) == 0x07064b50) {
		uint8_t z64[56];
		uint64_t zoff = lp_le64(tail + eocd - 20 + 8);

		if (fsize < 56 || zoff > fsize - 56 || lp_pread_all(fd, z64, 56, (off_t)zoff) < 0 ||
		    lp_le32(z64) != 0x06064b50)
			goto bad;
		cdsize = lp_le64(z64 + 40);
		cdoff = lp_le64(z64 + 48);
	}
	else {
		/* Bytes before the zip (a self-extracting stub): offsets count from its start. */
		uint64_t at = fsize - tn + eocd;

		if (at >= cdsize && at - cdsize > cdoff)
			shift = at - cdsize - cdoff;
		cdoff += shift;
	}
	if (cdsize > (1024u << 20) || cdoff > fsize || cdsize > fsize - cdoff)
		goto bad;
	if (!(cd = malloc(cdsize ? cdsize : 1))) {
		r = -ENOMEM;
		goto out;
	}
	if (cdsize && lp_pread_all(fd, cd, cdsize, (off_t)cdoff) < 0)
		goto bad;
	for (uint64_t off = 0; off + 46 <= cdsize;) {
		const uint8_t *h = cd + off;
		size_t nl = lp_le16(h + 28), xl = lp_le16(h + 30), cl = lp_le16(h + 32);
		struct zcent *z;

		if (lp_le32(h) != 0x02014b50 || off + 46 + nl + xl + cl > cdsize)
			goto bad;
		if (n >= s->o.max_members) {
			r = fatal(s, -LP_E_BADARCHIVE, NULL, "more than %llu members", (unsigned long long)s->o.max_members);
			goto out;
		}
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 256;
			struct zcent *nv = realloc(v, nc * sizeof(*nv));

			if (!nv) {
				r = -ENOMEM;
				goto out;
			}
			v = nv;
			cap = nc;
		}
		z = &v[n++];
		memset(z, 0, sizeof(*z));
		z->name = h + 46;
		z->nl = nl;
		z->flags = lp_le16(h + 8);
		z->method = lp_le16(h + 10);
		z->crc = lp_le32(h + 16);
		z->csize = lp_le32(h + 20);
		z->usize = lp_le32(h + 24);
		z->off = lp_le32(h + 42);
		zip64_extra(h + 46 + nl, xl, &z->usize, &z->csize, &z->off);
		z->off += shift;
		if (nl && memchr(z->name, 0, nl)) {
			z->bad = true;
			r = zname_problem(s, -LP_E_UNSAFEPATH, "bad-name", z->name, nl, "name contains a NUL byte", NULL);
			if (r < 0)
				goto out;
		} else if (nl && z->name[nl - 1] == '/') {
			uint32_t ext = lp_le32(h + 38);
			bool unix_file = (lp_le16(h + 4) >> 8) == 3 && S_ISREG(ext >> 16);

			if (z->usize || unix_file) {
				z->bad = true;
				r = zname_problem(s, -LP_E_UNSAFEPATH, "bad-name", z->name, nl,
						  "a file member whose name ends in '/'", NULL);
				if (r < 0)
					goto out;
			}
		}
		off += 46 + nl + xl + cl;
	}
	/* No two central entries on one local header: one problem per group. */
	ord = malloc((n ? n : 1) * sizeof(*ord));
	if (!ord) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		ord[i] = &v[i];
	qsort(ord, n, sizeof(*ord), cmp_off);
	for (size_t i = 0; i + 1 < n; i++) {
		size_t j = i + 1;
		char extra[128];

		if (ord[j]->off != ord[i]->off)
			continue;
		while (j < n && ord[j]->off == ord[i]->off)
			ord[j++]->bad = true;
		ord[i]->bad = true;
		snprintf(extra, sizeof(extra), "%zu central directory entries share its local header (overlapping entries)",
			 j - i);
		r = zname_problem(s, -LP_E_BADARCHIVE, "zip-inconsistent", ord[i]->name, ord[i]->nl, extra, NULL);
		if (r < 0)
			goto out;
		i = j - 1;
	}
	/* Local headers: same name, method, CRC and sizes; data before the central directory. */
	/* A zip name may be 65,535 bytes (one 10,000-deep member is 20,005): not PATH_MAX. */
	lname = malloc(65536);
	if (!lname) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct zcent *z = &v[i];
		uint8_t lh[30];
		uint64_t lcs, lus;
		size_t lnl = 0, lxl;
		const char *why = NULL;

		z->end = z->off;
		if (z->bad)
			continue;
		if (z->off > fsize || fsize - z->off < 30 || lp_pread_all(fd, lh, 30, (off_t)z->off) < 0 ||
		    lp_le32(lh) != 0x04034b50) {
			why = "its local header is missing";
		} else {
			lnl = lp_le16(lh + 26);
			lxl = lp_le16(lh + 28);
			lcs = lp_le32(lh + 18);
			lus = lp_le32(lh + 22);
			z->end = z->off + 30 + lnl + lxl + z->csize;
			if (lnl != z->nl ||
			    lp_pread_all(fd, lname, lnl, (off_t)(z->off + 30)) < 0 || memcmp(lname, z->name, lnl))
				why = "the central directory and the local header give different names";
			else if (lp_le16(lh + 8) != z->method)
				why = "the central directory and the local header give different compression methods";
			else if (!(lp_le16(lh + 6) & 8) && lp_le32(lh + 14) != z->crc)
				why = "the central directory and the local header give different CRC-32s";
			else if (!(lp_le16(lh + 6) & 8) && ((lcs != 0xffffffffu && lcs != z->csize) ||
							 (lus != 0xffffffffu && lus != z->usize)))
				why = "the central directory and the local header give different sizes (lying size)";
			else if (z->end > cdoff)
				why = "its data runs into the central directory";
			else if ((lp_le16(lh + 6) & 8) && !dd_agrees(fd, z, cdoff))
				why = "the central directory and the data descriptor give different CRC-32s or sizes";
		}
		if (why) {
			z->bad = true;
			r = zname_problem(s, -LP_E_BADARCHIVE, "zip-inconsistent", z->name, z->nl, why, NULL);
			if (r < 0)
				goto out;
			if (lnl && (r = zbad_mark(s, lname, lnl)) < 0)
				goto out;
		}
	}
	/* Entries whose bytes overlap the next one's: two names for one data. */
	for (size_t i = 0; i + 1 < n; i++) {
		char other[1100], extra[PATH_MAX];

		if (ord[i]->bad || ord[i + 1]->bad || ord[i]->end <= ord[i + 1]->off)
			continue;
		ord[i]->bad = ord[i + 1]->bad = true;
		snprintf(other, sizeof(other), "%.*s", (int)(ord[i]->nl < 1024 ? ord[i]->nl : 1024),
			 (const char *)ord[i]->name);
		lp_escape(other, extra, sizeof(extra));
		r = zname_problem(s, -LP_E_BADARCHIVE, "zip-inconsistent", ord[i + 1]->name, ord[i + 1]->nl,
				  "its bytes overlap those of member ", extra);
		if (r < 0)
			goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (v[i].bad && (r = zbad_mark(s, v[i].name, v[i].nl)) < 0)
			goto out;
	if ((r = zip_twins(s, v, n, ord)) < 0)
		goto out;
	/* Members are counted before a byte is expanded: judge a bomb by what it declares. */
	for (size_t i = 0; i < n; i++)
		if (!v[i].bad)
			declared += v[i].usize;
	if (declared > s->o.max_expand) {
		r = fatal(s, -LP_E_BADARCHIVE, NULL,
			  "declares %llu bytes uncompressed, beyond the expansion cap (zip bomb?); raise it with --max-expand",
			  (unsigned long long)declared);
		goto out;
	}
	if (s->o.ratio && declared > BOMB_FLOOR && declared / (fsize ? fsize : 1) > BOMB_RATIO) {
		r = fatal(s, -LP_E_BADARCHIVE, NULL,
			  "declares %llu bytes uncompressed, more than 200 times its size (zip bomb?); allow it with --max-expand",
			  (unsigned long long)declared);
		goto out;
	}
	goto out;
bad:
	r = fatal(s, -LP_E_BADARCHIVE, NULL, "corrupt zip central directory");
out:
	free(lname);
	free(ord);
	free(v);
	free(cd);
	if (fd >= 0)
		close(fd);
	return r;
}

/* ---- members ---------------------------------------------------------------- */

static bool has_control(const char *p)
{
	for (; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return true;
	return false;
}

/*
 * Outside layers: a path may appear once, and never below a file. Parents
 * go into the set as directories, each once, so this is linear in the
 * total length of the names.
 */
static int collide(struct lp_stream *s, const char *path, uint8_t kind, const char *raw)
{
	uint8_t had = nset_get(&s->seen, path);
	char *p;
	int r;

	/* 0: new; 1: skip it (a repeated directory, or a problem recorded); <0: stop. */
	if (had) {
		if (had == K_DIR && kind == K_DIR)
			return 1;	/* "d/" twice, or after "d/x": harmless */
		r = problem(s, -LP_E_DUPLICATE, "duplicate-member", path, raw,
			    had == K_DIR || kind == K_DIR ? "a file and a directory of the same name in this archive" :
			    "appears more than once in this archive");
		return r < 0 ? r : 1;
	}
	if (!(p = strdup(path)))
		return -ENOMEM;
	for (size_t len = lp_path_parent_len(p); len; len = lp_path_parent_len(p)) {
		p[len] = '\0';
		had = nset_get(&s->seen, p);
		if (had == K_DIR)
			break;
		if (had) {
			char esc[1024];

			lp_escape(p, esc, sizeof(esc));
			r = problem(s, -LP_E_DUPLICATE, "duplicate-member", path, raw,
				    "lies below '%s', which is not a directory in this archive", esc);
			free(p);
			return r < 0 ? r : 1;
		}
		if ((r = nset_put(&s->seen, p, K_DIR)) < 0) {
			free(p);
			return r;
		}
	}
	free(p);
	return nset_put(&s->seen, path, kind);
}

/*
 * Judge one header. 1: m is ready; 0: skip the member (recorded as a
 * problem, or harmless like "./"); <0: stop.
 */
static int take(struct lp_stream *s, struct archive_entry *ae)
{
	const char *name = archive_entry_pathname_utf8(ae);
	const char *hl = archive_entry_hardlink(ae);
	mode_t type = archive_entry_filetype(ae);
	struct lp_member *m = &s->m;
	const char *base, *nm;
	size_t nlen;
	uint8_t kind;
	int r;

	if (!name)
		name = archive_entry_pathname(ae);
	if (!name)
		return fatal(s, -LP_E_BADARCHIVE, NULL, "member without a name");
	free(s->raw);
	if (!(s->raw = strdup(name)))
		return -ENOMEM;
	memset(m, 0, sizeof(*m));
	m->raw = s->raw;
	m->mode = archive_entry_mode(ae);
	m->declared = archive_entry_size_is_set(ae) ? archive_entry_size(ae) : -1;
	m->stored = m->declared > 0 ? (uint64_t)m->declared : 0;
	m->sparse = archive_entry_sparse_count(ae) > 0;
	/* Outside a checked zip every file may have a twin. */
	m->maybe_dup = !s->zip_checked || !s->is_zip || !s->path ||
		       (s->zbad.n && (nset_get(&s->zbad, name) & ZIP_TWIN));
	if (s->zbad.n && (nset_get(&s->zbad, name) & ZIP_BAD))
		return 0;	/* reported by the central directory check */
	if (has_control(name))
		return problem(s, -LP_E_UNSAFEPATH, "bad-name", NULL, name,
			       "name contains control characters");
	nm = name;
	if (s->o.layer)
		while (*nm == '/')
			nm++;	/* layer paths are relative to the root file system */
	nlen = strlen(nm);
	if (!*nm || !strcmp(nm, ".") || !strcmp(nm, "./"))
		return 0;	/* the root itself */
	if (nlen >= PATH_MAX)
		return problem(s, -ENAMETOOLONG, "bad-name", NULL, name,
			       "name of %zu bytes, longer than Linux can open (PATH_MAX %d)", nlen, PATH_MAX);
	if (lp_path_clean(nm, s->clean) < 0)
		return problem(s, -LP_E_UNSAFEPATH, "unsafe-name", NULL, name,
			       "unsafe path (absolute or containing '..')");
	m->path = s->clean;
	if (nm[nlen - 1] == '/' && !hl && (type != AE_IFDIR || m->declared > 0))
		return problem(s, -LP_E_UNSAFEPATH, "bad-name", m->path, name,
			       "a file member whose name ends in '/'");
	base = strrchr(s->clean, '/');
	base = base ? base + 1 : s->clean;
	if (s->o.layer && !strncmp(base, ".wh.", 4)) {
		size_t plen = base == s->clean ? 0 : (size_t)(base - s->clean - 1);

		if (!strcmp(base, ".wh..wh..opq")) {
			s->clean[plen] = '\0';
			m->kind = LP_MEMBER_OPAQUE;
		} else {
			memmove(s->clean + plen + (plen ? 1 : 0), base + 4, strlen(base + 4) + 1);
			m->kind = LP_MEMBER_WHITEOUT;
		}
		return 1;
	}
	if (hl) {
		/*
		 * A hard link: same bytes as an earlier member. libarchive may
		 * report its file type as 0, so the link name decides.
		 */
		const char *t = hl;

		if (s->o.layer && *t == '/')
			return problem(s, -LP_E_UNSAFEPATH, "hardlink-outside", m->path, name,
				       "hard link to an absolute path -> %s", t);
		if (strlen(t) >= PATH_MAX || lp_path_clean(t, s->link) < 0)
			return problem(s, -LP_E_UNSAFEPATH, "hardlink-outside", m->path, name,
				       "hard link leaves the %s -> %s",
				       s->o.layer ? "image's root file system" : "archive", t);
		if (nset_get(&s->seen, s->link) != K_FILE && !s->o.layer)
			return problem(s, -LP_E_BADARCHIVE, "hardlink-missing", m->path, name,
				       "hard link to a member that is not an earlier file of this archive -> %s", t);
		m->kind = LP_MEMBER_HARDLINK;
		m->link = s->link;
		m->size = 0;
		kind = K_FILE;
	} else {
		switch (type) {
		case AE_IFREG:
			m->kind = LP_MEMBER_FILE;
			m->size = m->declared > 0 ? (uint64_t)m->declared : 0;
			kind = K_FILE;
			break;
		case AE_IFDIR:
			m->kind = LP_MEMBER_DIR;
			kind = K_DIR;
			break;
		case AE_IFLNK: {
			const char *t = archive_entry_symlink(ae);

			m->target = t ? t : "";
			m->size = strlen(m->target);
			kind = K_LINK;
			/* Outside the root: absolute (not in layers) or climbing above it. */
			if ((!s->o.layer || (*m->target && *m->target != '/')) &&
			    (!*m->target || link_resolve(m->path, m->target, s->link, PATH_MAX) < 0 ||
			     (!s->o.layer && !s->link[0])))
				return problem(s, -LP_E_SYMLINK, "link-outside", m->path, name,
					       "symbolic link points outside the %s -> %s",
					       s->o.layer ? "image's root file system" : "archive", m->target);
			m->kind = LP_MEMBER_SYMLINK;
			break;
		}
		default:
			if (!s->o.layer)
				return problem(s, -LP_E_BADTYPE, "bad-type", m->path, name,
					       "unsupported member type (device, FIFO or socket)");
			m->kind = LP_MEMBER_OTHER;	/* an image's /dev: no bytes */
			kind = K_OTHER;
			break;
		}
	}
	if (s->o.layer) {
		/* Layers replace earlier members by design; only hard-link targets need remembering. */
		if (kind == K_FILE && (r = nset_put(&s->seen, m->path, K_FILE)) < 0)
			return r;
	} else if ((r = collide(s, m->path, kind, name)) != 0) {
		return r < 0 ? r : 0;
	}
	if (m->kind == LP_MEMBER_FILE) {
		/* Counted before a byte reaches the consumer (sparse holes included). */
		s->declared += m->size;
		if (s->declared > s->o.max_expand)
			return fatal(s, -LP_E_BADARCHIVE, name,
				     "archive expands beyond %llu bytes (zip bomb?); raise the cap with --max-expand",
				     (unsigned long long)s->o.max_expand);
		if (s->o.ratio && s->o.raw_size && s->declared > BOMB_FLOOR && s->declared / s->o.raw_size > BOMB_RATIO)
			return fatal(s, -LP_E_BADARCHIVE, name,
				     "archive expands more than 200 times its size (zip bomb?); allow it with --max-expand");
	}
	return 1;
}

static int stream_next(struct lp_stream *s, const struct lp_member **ret)
{
	struct archive_entry *ae;
	int ar_r, r;

	*ret = NULL;
	for (;;) {
		ar_r = archive_read_next_header(s->ar, &ae);
		if (ar_r == ARCHIVE_EOF)
			return 0;
		if (ar_r != ARCHIVE_OK && ar_r != ARCHIVE_WARN)
			return fatal(s, -LP_E_BADARCHIVE, NULL, "corrupt archive: %s", lp_archive_error(s->ar));
		if (!s->zip_checked) {
			s->zip_checked = true;
			s->is_zip = (archive_format(s->ar) & ARCHIVE_FORMAT_BASE_MASK) == ARCHIVE_FORMAT_ZIP;
			if (s->o.only_tar && (archive_format(s->ar) & ARCHIVE_FORMAT_BASE_MASK) != ARCHIVE_FORMAT_TAR)
				return fatal(s, -LP_E_BADARCHIVE, NULL, "not a tar");
			if (s->is_zip && s->path && (r = zip_check(s)) < 0)
				return r;
		}
		if (++s->members > s->o.max_members)
			return fatal(s, -LP_E_BADARCHIVE, NULL, "more than %llu members",
				     (unsigned long long)s->o.max_members);
		r = take(s, ae);
		if (r < 0)
			return r;
		if (r == 0)
			continue;
		s->cur_read = 0;
		s->dropped = false;
		s->in_data = s->m.kind == LP_MEMBER_FILE;
		*ret = &s->m;
		return 1;
	}
}

int lp_stream_next(struct lp_stream *s, const struct lp_member **ret)
{
	locale_t old = s->utf8 ? uselocale(s->utf8) : (locale_t)0;
	int r = stream_next(s, ret);

	if (s->utf8)
		uselocale(old);
	return r;
}

ssize_t lp_stream_read(struct lp_stream *s, void *buf, size_t n)
{
	locale_t old;
	la_ssize_t got;

	if (!s->in_data)
		return 0;
	old = s->utf8 ? uselocale(s->utf8) : (locale_t)0;
	got = archive_read_data(s->ar, buf, n);
	if (s->utf8)
		uselocale(old);
	if (got < 0)
		return fatal(s, -LP_E_BADARCHIVE, s->m.raw, "cannot read data: %s", lp_archive_error(s->ar));
	if (got == 0) {
		s->in_data = false;
		/* A size field that disagrees with the data: a corrupt or lying archive. */
		if (s->m.declared >= 0 && (uint64_t)s->m.declared != s->cur_read) {
			int r = problem(s, -LP_E_BADARCHIVE, "zip-inconsistent", s->m.path, s->m.raw,
					"size field says %lld bytes, the data has %llu (lying size)",
					(long long)s->m.declared, (unsigned long long)s->cur_read);

			if (r < 0)
				return r;
			s->dropped = true;
		}
		return 0;
	}
	s->cur_read += (uint64_t)got;
	s->expanded += (uint64_t)got;
	if (s->expanded > s->o.max_expand || (s->m.declared >= 0 && s->cur_read > s->m.size))
		return fatal(s, -LP_E_BADARCHIVE, s->m.raw,
			     "archive expands beyond %s (zip bomb?)",
			     s->expanded > s->o.max_expand ? "the expansion cap; raise it with --max-expand" :
			     "its declared size");
	return (ssize_t)got;
}
