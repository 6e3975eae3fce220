/* SPDX-License-Identifier: MIT */
/*
 * Zip writer: header fields, method choice, zip64 thresholds, identity
 * across thread counts and windows, and clean errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/entry.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "pack/zip.h"

static char tmpdir[] = "/tmp/lp-test-zip.XXXXXX";

/* Deterministic bytes: kind 0 text-like, 1 random, 2 zeros. */
static unsigned char *gen(size_t n, int kind, uint32_t seed)
{
	unsigned char *d = malloc(n ? n : 1);
	uint32_t x = seed | 1;

	assert_non_null(d);
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		if (kind == 0)
			d[i] = (unsigned char)("def handler(event):\n    return 42\n"[(i + (x % 7 == 0)) % 34]);
		else if (kind == 1)
			d[i] = (unsigned char)(x >> 7);
		else
			d[i] = 0;
	}
	return d;
}

static char *mkfile(const char *name, const void *data, size_t n)
{
	char *p;
	int fd;

	assert_true(asprintf(&p, "%s/%s", tmpdir, name) > 0);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(lp_write_all(fd, data, n), 0);
	close(fd);
	return p;
}

static struct lp_entry *add(struct lp_entries *l, const char *path, enum lp_kind kind,
			    const char *src, uint64_t size, uint32_t mode)
{
	struct lp_entry *e = lp_entries_push(l, path, kind);

	assert_non_null(e);
	e->mode = mode;
	e->size = e->orig_size = size;
	if (src)
		e->src = strdup(src);
	return e;
}

/* Write l to a fresh temp file; returns its fd (positioned at the end). */
static int write_zip(const struct lp_entries *l, const struct lp_zip_opts *o,
		     struct lp_zip_result *res, int expect)
{
	char path[64];
	int fd, r;

	snprintf(path, sizeof(path), "%s/out.XXXXXX", tmpdir);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	r = lp_zip_write(l, fd, o, res);
	if (r != expect)
		fprintf(stderr, "lp_zip_write: %d %s\n", r, lp_errmsg());
	assert_int_equal(r, expect);
	return fd;
}

static unsigned char *slurp(int fd, size_t *n)
{
	struct stat st;
	unsigned char *p;

	assert_int_equal(fstat(fd, &st), 0);
	p = malloc((size_t)st.st_size + 1);
	assert_non_null(p);
	assert_int_equal(lp_pread_all(fd, p, (size_t)st.st_size, 0), 0);
	*n = (size_t)st.st_size;
	return p;
}

/* The entry data of ce, decompressed. */
static unsigned char *entry_data(int fd, const struct lp_zip_centry *ce)
{
	size_t nlen = strlen(ce->name);
	off_t at = (off_t)(ce->offset + 30 + nlen + ce->local_extra_len);
	unsigned char *c = malloc(ce->csize + 1), *u = malloc(ce->usize + 1);

	assert_non_null(c);
	assert_non_null(u);
	if (ce->csize)
		assert_int_equal(lp_pread_all(fd, c, (size_t)ce->csize, at), 0);
	if (ce->method == 0) {
		assert_int_equal(ce->csize, ce->usize);
		memcpy(u, c, ce->csize);
	} else {
		z_stream zs = { 0 };

		assert_int_equal(ce->method, 8);
		assert_int_equal(inflateInit2(&zs, -15), Z_OK);
		zs.next_in = c;
		zs.avail_in = (uInt)ce->csize;
		zs.next_out = u;
		zs.avail_out = (uInt)ce->usize + 1;
		assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
		assert_int_equal(zs.total_out, ce->usize);
		assert_int_equal(zs.avail_in, 0);
		inflateEnd(&zs);
	}
	assert_int_equal(crc32(0, u, (uInt)ce->usize), ce->crc);
	free(c);
	return u;
}

static int setup(void **state)
{
	signal(SIGXFSZ, SIG_IGN);
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	return lp_rm_rf(tmpdir);
}

static void test_dostime(void **state)
{
	/* Before 1980 clamps to the DOS epoch. */
	assert_int_equal(lp_zip_dostime(0), (uint32_t)(0 << 9 | 1 << 5 | 1) << 16);
	assert_int_equal(lp_zip_dostime(LP_ZIP_EPOCH_MIN), lp_zip_dostime(-5));
	/* 2023-11-14T22:13:20Z and one second later (2 s resolution). */
	assert_int_equal(lp_zip_dostime(1700000000), (uint32_t)(43 << 9 | 11 << 5 | 14) << 16 |
			 (22 << 11 | 13 << 5 | 10));
	assert_int_equal(lp_zip_dostime(1700000001), lp_zip_dostime(1700000000));
	/* After 2107 clamps to the last representable time. */
	assert_int_equal(lp_zip_dostime(9000000000LL), (uint32_t)(127 << 9 | 12 << 5 | 31) << 16 |
			 (23 << 11 | 59 << 5 | 29));
}

struct seen {
	const struct lp_entries *l;
	size_t n, last;
	uint64_t csum;
};

/* Called in list order; index is the position in the entry list. */
static void count_entry(void *ctx, size_t i, const struct lp_entry *e, const struct lp_zip_entry_info *info)
{
	struct seen *s = ctx;

	assert_ptr_equal(e, &s->l->v[i]);
	assert_true(s->n == 0 || i > s->last);
	s->last = i;
	s->n++;
	s->csum += info->csize;
}

static void test_headers(void **state)
{
	unsigned char *text = gen(200000, 0, 1), *rnd = gen(50000, 1, 2);
	char *ptext = mkfile("h-text", text, 200000), *prnd = mkfile("h-rnd", rnd, 50000);
	char *pempty = mkfile("h-empty", "", 0);
	struct lp_entries l;
	struct lp_zip_opts o;
	struct lp_zip_result res = { 0 };
	struct lp_zip_central c;
	struct seen seen = { 0 };
	unsigned char *zip;
	size_t zlen;
	uint32_t dt = lp_zip_dostime(1700000000);
	int fd;

	lp_entries_init(&l);
	add(&l, "bin", LP_DIR, NULL, 0, 0755);
	add(&l, "bin/tool", LP_FILE, ptext, 200000, 0755);
	add(&l, "copy.py", LP_FILE, ptext, 200000, 0644)->flags |= LP_F_DUPLICATE;
	l.v[2].target = strdup("lib/text.py");
	add(&l, "empty", LP_FILE, pempty, 0, 0644);
	add(&l, "gone", LP_FILE, ptext, 200000, 0644)->flags |= LP_F_REMOVED;
	add(&l, "lib", LP_DIR, NULL, 0, 0755);
	add(&l, "lib/link", LP_SYMLINK, NULL, 7, 0777)->target = strdup("text.py");
	add(&l, "lib/rnd.bin", LP_FILE, prnd, 50000, 0640);
	add(&l, "lib/text.py", LP_FILE, ptext, 200000, 0600);
	add(&l, "lib/\xc3\xa9t\xc3\xa9.txt", LP_FILE, ptext, 200000, 0644);

	lp_zip_opts_init(&o);
	o.epoch = 1700000000;
	o.threads = 2;
	o.on_entry = count_entry;
	o.on_entry_ctx = &seen;
	seen.l = &l;
	fd = write_zip(&l, &o, &res, 0);
	zip = slurp(fd, &zlen);
	assert_int_equal(lp_zip_read_central(fd, &c), 0);

	assert_int_equal(res.entries, 9);
	assert_int_equal(c.n, 9);
	assert_int_equal(seen.n, 9);
	assert_int_equal(res.zipped, zlen);
	assert_false(res.zip64);
	assert_false(c.zip64);
	/* Files + symlink texts: 3 x 200000 + 50000 + "text.py" + "lib/text.py". */
	assert_int_equal(res.unzipped, 3 * 200000 + 50000 + 7 + 11);
	/* EOCD right at the end, no comment. */
	assert_int_equal(zip[zlen - 22], 0x50);
	assert_int_equal(zip[zlen - 21], 0x4b);
	assert_int_equal(zip[zlen - 20], 5);
	assert_int_equal(zip[zlen - 19], 6);

	static const struct {
		const char *name;
		uint32_t mode;
		uint16_t method;
		uint16_t flags;
	} want[] = {
		{ "bin/", 040755, 0, 0 },
		{ "bin/tool", 0100755, 8, 0 },
		{ "copy.py", 0120777, 0, 0 },
		{ "empty", 0100644, 0, 0 },
		{ "lib/", 040755, 0, 0 },
		{ "lib/link", 0120777, 0, 0 },
		{ "lib/rnd.bin", 0100644, 0, 0 },
		{ "lib/text.py", 0100644, 8, 0 },
		{ "lib/\xc3\xa9t\xc3\xa9.txt", 0100644, 8, 0x800 },
	};
	for (size_t i = 0; i < c.n; i++) {
		struct lp_zip_centry *ce = &c.v[i];
		unsigned char *d;

		assert_string_equal(ce->name, want[i].name);
		assert_int_equal(ce->made_by, 3 << 8 | 20);
		assert_int_equal(ce->needed, 20);
		assert_int_equal(ce->flags, want[i].flags);
		assert_int_equal(ce->method, want[i].method);
		assert_int_equal(ce->ext_attr >> 16, want[i].mode);
		/* Directories also carry the MS-DOS directory bit; nothing else does. */
		assert_int_equal(ce->ext_attr & 0xFFFF, (want[i].mode >> 12) == 04 ? 0x10 : 0);
		assert_int_equal(ce->dos_date, dt >> 16);
		assert_int_equal(ce->dos_time, dt & 0xFFFF);
		assert_int_equal(ce->extra_len, 0);
		assert_int_equal(ce->local_extra_len, 0);
		assert_false(ce->zip64);
		d = entry_data(fd, ce);
		if (!strcmp(ce->name, "copy.py")) {
			/* A duplicate is a relative link to its canonical copy. */
			assert_int_equal(ce->usize, 11);
			assert_memory_equal(d, "lib/text.py", 11);
		} else if (!strcmp(ce->name, "lib/link")) {
			assert_memory_equal(d, "text.py", 7);
		} else if (want[i].mode >> 12 == 010) {
			bool is_rnd = strstr(ce->name, "rnd") != NULL;
			size_t n = !strcmp(ce->name, "empty") ? 0 : is_rnd ? 50000 : 200000;

			assert_int_equal(ce->usize, n);
			assert_memory_equal(d, is_rnd ? rnd : text, n);
		} else {
			assert_int_equal(ce->usize, 0);
			assert_int_equal(ce->crc, 0);
		}
		free(d);
	}
	{
		uint64_t sum = 0;

		for (size_t i = 0; i < c.n; i++)
			sum += c.v[i].csize;
		assert_int_equal(seen.csum, sum);
	}
	lp_zip_central_free(&c);
	close(fd);
	free(zip);
	lp_entries_free(&l);
	free(text);
	free(rnd);
	free(ptext);
	free(prnd);
	free(pempty);
}

/* A mixed tree that exercises every path: whole, streamed, stored fallback. */
static void mixed(struct lp_entries *l, char ***paths, size_t *np)
{
	static const struct {
		size_t n;
		int kind;
	} f[] = {
		{ 1000, 0 }, { 70000, 0 }, { 70000, 1 }, { 300000, 0 }, { 300000, 1 },
		{ 64 * 1024, 0 }, { 64 * 1024 + 1, 1 }, { 1 << 20, 2 }, { 0, 0 }, { 5, 1 },
	};
	size_t n = sizeof(f) / sizeof(f[0]);

	*paths = calloc(n, sizeof(char *));
	*np = n;
	lp_entries_init(l);
	add(l, "d", LP_DIR, NULL, 0, 0755);
	for (size_t i = 0; i < n; i++) {
		char name[32];
		unsigned char *d = gen(f[i].n, f[i].kind, (uint32_t)i + 7);

		snprintf(name, sizeof(name), "m-%02zu", i);
		(*paths)[i] = mkfile(name, d, f[i].n);
		snprintf(name, sizeof(name), "d/f%02zu", i);
		add(l, name, LP_FILE, (*paths)[i], f[i].n, i % 3 ? 0644 : 0755);
		free(d);
	}
}

static void free_paths(char **p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(p[i]);
	free(p);
}

static void test_identity(void **state)
{
	struct lp_entries l;
	char **paths;
	size_t np, reflen = 0;
	unsigned char *ref = NULL;
	static const unsigned threads[] = { 1, 2, 3, 4 };
	static const size_t windows[] = { 0, 1, 200000 };

	mixed(&l, &paths, &np);
	for (size_t t = 0; t < 4; t++) {
		for (size_t wi = 0; wi < 3; wi++) {
			struct lp_zip_opts o;
			struct lp_zip_result res;
			struct lp_zip_central c;
			unsigned char *z;
			size_t zl;
			int fd;

			lp_zip_opts_init(&o);
			o.threads = threads[t];
			o.window = windows[wi];
			o.whole_max = 64 * 1024;	/* larger files stream through pdeflate */
			o.block = 32 * 1024;
			fd = write_zip(&l, &o, &res, 0);
			z = slurp(fd, &zl);
			if (!ref) {
				ref = z;
				reflen = zl;
				assert_int_equal(lp_zip_read_central(fd, &c), 0);
				for (size_t i = 0; i < c.n; i++) {
					free(entry_data(fd, &c.v[i]));
					/* Incompressible entries fall back to stored, streamed or not. */
					if (strstr(c.v[i].name, "f02") || strstr(c.v[i].name, "f04") ||
					    strstr(c.v[i].name, "f06"))
						assert_int_equal(c.v[i].method, 0);
					if (strstr(c.v[i].name, "f03") || strstr(c.v[i].name, "f07"))
						assert_int_equal(c.v[i].method, 8);
				}
				lp_zip_central_free(&c);
			} else {
				assert_int_equal(zl, reflen);
				assert_memory_equal(z, ref, reflen);
				free(z);
			}
			close(fd);
		}
	}
	free(ref);
	free_paths(paths, np);
	lp_entries_free(&l);
}

static void test_zip64_forced(void **state)
{
	struct lp_entries l;
	struct lp_zip_opts o;
	struct lp_zip_result res;
	struct lp_zip_central c;
	char **paths;
	size_t np;
	int fd;

	mixed(&l, &paths, &np);
	lp_zip_opts_init(&o);
	o.whole_max = 64 * 1024;
	o.zip64_size = 60000;
	fd = write_zip(&l, &o, &res, 0);
	assert_true(res.zip64);
	assert_int_equal(lp_zip_read_central(fd, &c), 0);
	assert_true(c.zip64);	/* the central directory starts past the threshold */
	for (size_t i = 0; i < c.n; i++) {
		struct lp_zip_centry *ce = &c.v[i];
		bool big = ce->usize >= 60000 || ce->csize >= 60000 || ce->offset >= 60000;

		assert_int_equal(ce->zip64, big);
		assert_int_equal(ce->made_by, 3 << 8 | (big ? 45 : 20));
		assert_int_equal(ce->needed, big ? 45 : 20);
		/* The local header carries the sizes only when the sizes need it. */
		assert_int_equal(ce->local_extra_len, ce->usize >= 60000 || ce->csize >= 60000 ? 20 : 0);
		free(entry_data(fd, ce));
	}
	lp_zip_central_free(&c);
	close(fd);

	/* Count threshold only: EOCD64 but no per-entry zip64. */
	lp_zip_opts_init(&o);
	o.whole_max = 64 * 1024;
	o.zip64_count = 5;
	fd = write_zip(&l, &o, &res, 0);
	assert_true(res.zip64);
	assert_int_equal(lp_zip_read_central(fd, &c), 0);
	assert_true(c.zip64);
	assert_int_equal(c.n, l.n);
	for (size_t i = 0; i < c.n; i++) {
		assert_false(c.v[i].zip64);
		assert_int_equal(c.v[i].made_by, 3 << 8 | 20);
	}
	lp_zip_central_free(&c);
	close(fd);

	/* Below the real thresholds nothing is zip64. */
	lp_zip_opts_init(&o);
	fd = write_zip(&l, &o, &res, 0);
	assert_false(res.zip64);
	assert_int_equal(lp_zip_read_central(fd, &c), 0);
	assert_false(c.zip64);
	lp_zip_central_free(&c);
	close(fd);
	free_paths(paths, np);
	lp_entries_free(&l);
}

/* A real >4 GiB entry (sparse, so cheap on disk): zip64 sizes for real. */
static void test_zip64_sparse(void **state)
{
	struct lp_entries l;
	struct lp_zip_opts o;
	struct lp_zip_result res;
	struct lp_zip_central c;
	uint64_t size = (4ull << 30) + 12345;
	char *p = mkfile("sparse", "", 0);
	int fd;

	assert_int_equal(truncate(p, (off_t)size), 0);
	lp_entries_init(&l);
	add(&l, "a.txt", LP_FILE, NULL, 0, 0644);
	add(&l, "huge", LP_FILE, p, size, 0644);
	add(&l, "z.txt", LP_FILE, NULL, 0, 0644);
	lp_zip_opts_init(&o);
	o.level = 1;
	fd = write_zip(&l, &o, &res, 0);
	assert_true(res.zip64);
	assert_int_equal(res.unzipped, size);
	assert_int_equal(lp_zip_read_central(fd, &c), 0);
	assert_int_equal(c.n, 3);
	assert_false(c.zip64);	/* the directory itself is small and early */
	assert_false(c.v[0].zip64);
	assert_true(c.v[1].zip64);
	assert_int_equal(c.v[1].usize, size);
	assert_int_equal(c.v[1].method, 8);
	assert_int_equal(c.v[1].made_by, 3 << 8 | 45);
	assert_int_equal(c.v[1].local_extra_len, 20);
	assert_int_equal(c.v[1].extra_len, 4 + 8);	/* only the size that overflowed */
	{
		/* CRC of n zeros by doubling, without reading 4 GiB. */
		unsigned char *z = calloc(1, 1 << 20);
		uLong crc = crc32(0, z, 1 << 20), tail = crc32(0, z, 12345);

		for (uint64_t n = 1 << 20; n < (4ull << 30); n *= 2)
			crc = crc32_combine(crc, crc, (z_off_t)n);
		assert_int_equal(c.v[1].crc, crc32_combine(crc, tail, 12345));
		free(z);
	}
	assert_false(c.v[2].zip64);
	lp_zip_central_free(&c);
	close(fd);
	lp_entries_free(&l);
	free(p);
}

static void test_errors(void **state)
{
	struct lp_entries l;
	struct lp_zip_opts o;
	struct lp_zip_result res;
	unsigned char *d = gen(3 << 20, 0, 9);
	char *p = mkfile("err-src", d, 3 << 20);
	char *missing;
	struct rlimit old, lim;
	int fd, pfd[2];

	assert_true(asprintf(&missing, "%s/no-such-file", tmpdir) > 0);
	lp_entries_init(&l);
	add(&l, "a", LP_FILE, p, 3 << 20, 0644);
	add(&l, "b", LP_FILE, missing, 10, 0644);
	lp_zip_opts_init(&o);

	/* Unreadable source: the detail names the file, for any thread count. */
	for (unsigned t = 1; t <= 2; t++) {
		o.threads = t;
		fd = write_zip(&l, &o, &res, -ENOENT);
		assert_non_null(strstr(lp_errmsg(), "no-such-file"));
		close(fd);
	}

	/* The file is not the size the entry list says. */
	l.v[1].src = (free(l.v[1].src), strdup(p));
	l.v[1].size = 100;
	fd = write_zip(&l, &o, &res, -EIO);
	assert_non_null(strstr(lp_errmsg(), "err-src"));
	close(fd);
	o.whole_max = 1024;	/* the streamed path checks too */
	l.v[1].size = 1 << 21;
	fd = write_zip(&l, &o, &res, -EIO);
	assert_non_null(strstr(lp_errmsg(), "changed"));
	close(fd);
	l.v[1].size = 3 << 20;
	o.whole_max = 0;

	/* Write errors: a full disk, a file size limit, a pipe. */
	fd = open("/dev/full", O_WRONLY);
	if (fd >= 0) {
		assert_int_equal(lp_zip_write(&l, fd, &o, &res), -ENOSPC);
		assert_non_null(strstr(lp_errmsg(), "cannot write"));
		close(fd);
	}
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 100000;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	fd = write_zip(&l, &o, &res, -EFBIG);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	close(fd);
	assert_int_equal(pipe(pfd), 0);
	assert_int_equal(lp_zip_write(&l, pfd[1], &o, &res), -ESPIPE);
	close(pfd[0]);
	close(pfd[1]);

	o.level = 13;
	fd = write_zip(&l, &o, &res, -LP_E_USAGE);
	close(fd);

	lp_entries_free(&l);
	free(missing);
	free(p);
	free(d);
}

static void test_empty_list(void **state)
{
	struct lp_entries l;
	struct lp_zip_opts o;
	struct lp_zip_result res;
	struct lp_zip_central c;
	int fd;

	lp_entries_init(&l);
	lp_zip_opts_init(&o);
	fd = write_zip(&l, &o, &res, 0);
	assert_int_equal(res.zipped, 22);
	assert_int_equal(res.entries, 0);
	assert_int_equal(lp_zip_read_central(fd, &c), 0);
	assert_int_equal(c.n, 0);
	lp_zip_central_free(&c);
	close(fd);
}

/* Levels change bytes (libdeflate scale 1..12), never correctness. */
static void test_levels(void **state)
{
	unsigned char *text = gen(500000, 0, 3);
	char *p = mkfile("lvl", text, 500000);
	struct lp_entries l;
	uint64_t prev = UINT64_MAX;

	lp_entries_init(&l);
	add(&l, "t", LP_FILE, p, 500000, 0644);
	for (int level = 1; level <= 12; level += 11) {
		struct lp_zip_opts o;
		struct lp_zip_result res;
		struct lp_zip_central c;
		int fd;

		lp_zip_opts_init(&o);
		o.level = level;
		fd = write_zip(&l, &o, &res, 0);
		assert_int_equal(lp_zip_read_central(fd, &c), 0);
		free(entry_data(fd, &c.v[0]));
		assert_true(res.zipped < prev);
		prev = res.zipped;
		lp_zip_central_free(&c);
		close(fd);
	}
	lp_entries_free(&l);
	free(p);
	free(text);
}


/* A one-entry list with this name and kind (files hold "x" from a fixed source). */
static int names_write(const char *const *names, const enum lp_kind *kinds, size_t n, int expect)
{
	static char *src;
	struct lp_entries l;
	struct lp_zip_opts o;
	int fd;

	if (!src)
		src = mkfile("names-src", "x", 1);
	lp_entries_init(&l);
	for (size_t i = 0; i < n; i++) {
		struct lp_entry *e = add(&l, names[i], kinds[i], kinds[i] == LP_FILE ? src : NULL,
					 kinds[i] == LP_FILE ? 1 : 0, 0644);

		if (kinds[i] == LP_SYMLINK) {
			e->target = strdup("/etc");
			e->size = 4;
		}
	}
	lp_entries_sort(&l);
	lp_zip_opts_init(&o);
	o.threads = 1;
	fd = write_zip(&l, &o, NULL, expect);
	lp_entries_free(&l);
	return fd;
}

/*
 * Names: the UTF-8 flag only on valid UTF-8 (Python's zipfile reads the
 * result), and names an extractor would put elsewhere, twice, or through a
 * link are refused before anything is written, naming the entry.
 */
static void test_names(void **state)
{
	static const struct {
		const char *names[3];
		enum lp_kind kinds[3];
		size_t n;
		int err;
		const char *msg;
	} bad[] = {
		{ { "../evil" }, { LP_FILE }, 1, -LP_E_UNSAFEPATH, "'..' component" },
		{ { "a/./b" }, { LP_FILE }, 1, -LP_E_UNSAFEPATH, "'..' component" },
		{ { "a\\..\\..\\b" }, { LP_FILE }, 1, -LP_E_UNSAFEPATH, "'..' component" },
		{ { "a//b" }, { LP_FILE }, 1, -LP_E_UNSAFEPATH, "empty path component" },
		{ { "data.txt/" }, { LP_FILE }, 1, -LP_E_UNSAFEPATH, "ends with a slash" },
		{ { "/etc/passwd" }, { LP_FILE }, 1, -LP_E_UNSAFEPATH, "absolute" },
		{ { "a", "a" }, { LP_FILE, LP_DIR }, 2, -LP_E_DUPLICATE, "a: is given twice" },
		{ { "a\\b", "a/b" }, { LP_FILE, LP_FILE }, 2, -LP_E_DUPLICATE, "same place as" },
		{ { "l", "l/passwd" }, { LP_SYMLINK, LP_FILE }, 2, -LP_E_UNSAFEPATH, "l/passwd: lies beneath l," },
		{ { "f", "f/x" }, { LP_FILE, LP_DIR }, 2, -LP_E_UNSAFEPATH, "lies beneath f," },
	};
	static const char *const good[] = { "caf\xc3\xa9.txt", "caf\xc3.txt", "\xed\xa0\x80", "ok/a-b.txt" };
	static const enum lp_kind files[] = { LP_FILE, LP_FILE, LP_FILE, LP_FILE };
	struct lp_zip_central cd;
	char path[64], cmd[256];
	size_t n;
	unsigned char *bytes;
	int fd;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fd = names_write(bad[i].names, bad[i].kinds, bad[i].n, bad[i].err);
		if (!strstr(lp_errmsg(), bad[i].msg))
			fail_msg("case %zu: '%s' lacks '%s'", i, lp_errmsg(), bad[i].msg);
		assert_int_equal(lseek(fd, 0, SEEK_END), 0);	/* nothing written */
		close(fd);
	}

	fd = names_write(good, files, 4, 0);
	assert_int_equal(lp_zip_read_central(fd, &cd), 0);
	assert_int_equal(cd.n, 4);
	for (size_t i = 0; i < cd.n; i++) {
		bool utf8 = !strcmp(cd.v[i].name, "caf\xc3\xa9.txt");

		assert_int_equal(!!(cd.v[i].flags & 0x0800), utf8);
	}
	lp_zip_central_free(&cd);
	/* The independent reader: Python's zipfile fails on a flagged invalid name. */
	bytes = slurp(fd, &n);
	close(fd);
	snprintf(path, sizeof(path), "%s/names.zip", tmpdir);
	free(mkfile("names.zip", bytes, n));
	free(bytes);
	snprintf(cmd, sizeof(cmd), "python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); "
		 "assert z.testzip() is None and len(z.namelist()) == 4' %s", path);
	assert_int_equal(system(cmd), 0);
}


/*
 * A name whose last 20 bytes start with the zip64 locator signature ends the
 * central directory right before the end record: readers took it for a
 * locator (Python: "zipfiles that span multiple disks are not supported").
 * The writer then adds a real zip64 end record and locator. Found by
 * fuzz_zipnames.
 */
static void test_name_like_zip64_locator(void **state)
{
	static const char *const names[] = { "abcdePK\x06\x07yyyyyyyyyyyyyyyy" };
	static const enum lp_kind kinds[] = { LP_FILE };
	struct lp_zip_central cd;
	char path[64], cmd[256];
	unsigned char *bytes;
	size_t n;
	int fd = names_write(names, kinds, 1, 0);

	assert_int_equal(lp_zip_read_central(fd, &cd), 0);
	assert_int_equal(cd.n, 1);
	assert_true(cd.zip64);
	lp_zip_central_free(&cd);
	bytes = slurp(fd, &n);
	close(fd);
	snprintf(path, sizeof(path), "%s/loc64.zip", tmpdir);
	free(mkfile("loc64.zip", bytes, n));
	free(bytes);
	snprintf(cmd, sizeof(cmd), "python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); "
		 "assert z.testzip() is None and len(z.namelist()) == 1' %s", path);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dostime),
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_zip64_forced),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_name_like_zip64_locator),
		cmocka_unit_test(test_empty_list),
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_zip64_sparse),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
