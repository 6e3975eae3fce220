/* SPDX-License-Identifier: MIT */
/*
 * cache/: entries round-trip and are verified, keys separate what must
 * differ, and the stat index trusts a record only when every stat field
 * matches and the record is not racy (timestamps faked through struct stat).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "cache/cache.h"
#include "core/fsutil.h"
#include "core/report.h"

static char *root;

static int setup(void **state)
{
	(void)state;
	return lp_tmpdir_create("cache-unit", &root) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	lp_rm_rf(root);
	free(root);
	return 0;
}

static struct lp_cache *open_cache(const char *index)
{
	struct lp_cache_opts o = { .root = root, .index_name = index };
	struct lp_cache *c = NULL;

	assert_int_equal(lp_cache_open(&o, &c), 0);
	assert_true(lp_cache_enabled(c));
	return c;
}

static void key_of(const char *domain, const char *what, struct lp_cache_key *k)
{
	struct lp_cache_keyer kr;

	lp_cache_key_begin(&kr, domain);
	lp_cache_key_add_str(&kr, what);
	lp_cache_key_end(&kr, k);
}

static void test_keys(void **state)
{
	struct lp_cache_key a, b, c;

	(void)state;
	key_of("zip", "x", &a);
	key_of("zip", "x", &b);
	key_of("layer", "x", &c);
	assert_memory_equal(a.k, b.k, 32);
	assert_memory_not_equal(a.k, c.k, 32);
	key_of("zip", "y", &b);
	assert_memory_not_equal(a.k, b.k, 32);
}

static void test_roundtrip_and_corruption(void **state)
{
	struct lp_cache *c = open_cache(NULL);
	struct lp_cache_key k;
	struct lp_cache_meta m = { .method = 8, .crc = 0x12345678, .usize = 99 }, got;
	unsigned char *data;
	uint64_t len;
	char *path;
	FILE *f;
	struct lp_report rep;

	(void)state;
	key_of("zip", "roundtrip", &k);
	assert_int_equal(lp_cache_get_mem(c, LP_CACHE_ZIP, &k, "a", &got, &data, &len), 0);
	assert_int_equal(lp_cache_put_mem(c, LP_CACHE_ZIP, &k, &m, "hello world", 11), 0);
	assert_int_equal(lp_cache_get_mem(c, LP_CACHE_ZIP, &k, "a", &got, &data, &len), 1);
	assert_int_equal(len, 11);
	assert_memory_equal(data, "hello world", 11);
	assert_int_equal(got.crc, 0x12345678);
	assert_int_equal(got.usize, 99);
	free(data);
	/* The same key as another kind is another entry. */
	assert_int_equal(lp_cache_get_mem(c, LP_CACHE_LAYER, &k, "a", &got, &data, &len), 0);

	/* One flipped payload byte: dropped (deleted) and reported. */
	path = lp_cache_entry_path(c, LP_CACHE_ZIP, &k);
	f = fopen(path, "r+b");
	assert_non_null(f);
	fseek(f, -3, SEEK_END);
	fputc('X', f);
	fclose(f);
	assert_int_equal(lp_cache_get_mem(c, LP_CACHE_ZIP, &k, "a", &got, &data, &len), 0);
	assert_int_equal(access(path, F_OK), -1);
	lp_report_init(&rep);
	assert_int_equal(lp_cache_report(c, &rep), 0);
	assert_int_equal(rep.n_findings, 1);
	assert_string_equal(rep.findings[0].code, "cache-entry-corrupt");
	assert_non_null(strstr(rep.findings[0].message, "CRC-32"));
	lp_report_free(&rep);
	free(path);
	lp_cache_free(c);
}

static void fake_stat(struct stat *st, int64_t mtime_s, int64_t ctime_s, ino_t ino)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFREG | 0644;
	st->st_size = 1234;
	st->st_ino = ino;
	st->st_dev = 7;
	st->st_mtim.tv_sec = mtime_s;
	st->st_mtim.tv_nsec = 500;
	st->st_ctim.tv_sec = ctime_s;
	st->st_ctim.tv_nsec = 900;
}

static void test_stat_index(void **state)
{
	uint8_t d[32], got[32];
	struct stat old, racy, st;
	time_t now = time(NULL);
	struct lp_cache *c = open_cache("unit-index");

	(void)state;
	memset(d, 0xab, sizeof(d));
	fake_stat(&old, now - 100, now - 100, 42);
	fake_stat(&racy, now - 100, now, 43);	/* ctime within the run's own second */
	assert_int_equal(lp_cache_index_lookup(c, "/src/a", &old, got), 0);
	lp_cache_index_record(c, "/src/a", &old, d);
	lp_cache_index_record(c, "/src/b", &racy, d);
	lp_cache_index_record_facts(c, "/src/c", &old, d, 0x1203);
	lp_cache_free(c);

	c = open_cache("unit-index");
	assert_int_equal(lp_cache_index_lookup(c, "/src/a", &old, got), 1);
	assert_memory_equal(got, d, 32);
	{
		uint32_t facts = 7;

		/* The caller's facts come back with the digest; the plain record keeps none. */
		assert_int_equal(lp_cache_index_lookup_facts(c, "/src/c", &old, got, &facts), 1);
		assert_int_equal(facts, 0x1203);
		assert_int_equal(lp_cache_index_lookup_facts(c, "/src/a", &old, got, &facts), 1);
		assert_int_equal(facts, 0);
	}
	/* Racy: recorded with a ctime not older than the second before the stat. */
	assert_int_equal(lp_cache_index_lookup(c, "/src/b", &racy, got), 0);
	/* Every field counts: size, mtime (to the ns), ctime, inode, device. */
	st = old;
	st.st_size++;
	assert_int_equal(lp_cache_index_lookup(c, "/src/a", &st, got), 0);
	st = old;
	st.st_mtim.tv_nsec++;
	assert_int_equal(lp_cache_index_lookup(c, "/src/a", &st, got), 0);
	st = old;
	st.st_ctim.tv_sec++;
	assert_int_equal(lp_cache_index_lookup(c, "/src/a", &st, got), 0);
	st = old;
	st.st_ino++;
	assert_int_equal(lp_cache_index_lookup(c, "/src/a", &st, got), 0);
	st = old;
	st.st_dev++;
	assert_int_equal(lp_cache_index_lookup(c, "/src/a", &st, got), 0);
	/* Another set of sources has an index of its own. */
	lp_cache_free(c);
	c = open_cache("unit-other");
	assert_int_equal(lp_cache_index_lookup(c, "/src/a", &old, got), 0);
	lp_cache_free(c);
	/* The matched record was carried over to the next index. */
	c = open_cache("unit-index");
	assert_int_equal(lp_cache_index_lookup(c, "/src/a", &old, got), 1);
	lp_cache_free(c);
}

/* Read the whole payload through a buffer of exactly its size: 1 when it checks out, else 0. */
static int read_fast(struct lp_cache *c, const struct lp_cache_key *k, size_t len)
{
	struct lp_cache_rd rd;
	char buf[1000];
	long got, end;
	int ok;

	assert_true(len <= sizeof(buf));
	if (lp_cache_rd_open_fast(c, LP_CACHE_ZIP, k, "x", &rd) != 1)
		return 0;
	got = lp_cache_rd_read(&rd, buf, len);
	end = got == (long)len ? lp_cache_rd_read(&rd, buf, len) : -1;
	ok = got == (long)len && end == 0 && lp_cache_rd_crc_ok(&rd);
	lp_cache_rd_close(&rd);
	return ok;
}

static void rewrite(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

static void test_fast_open_finds_the_end(void **state)
{
	struct lp_cache *c = open_cache(NULL);
	struct lp_cache_meta m = { .method = 0, .usize = 1000 };
	struct lp_cache_key k;
	char payload[1000], *path, *file;
	size_t n;

	(void)state;
	memset(payload, 'p', sizeof(payload));
	key_of("fast", "a", &k);
	assert_int_equal(lp_cache_put_mem(c, LP_CACHE_ZIP, &k, &m, payload, sizeof(payload)), 0);
	/* A caller's buffer of exactly the payload's size: the end is found by one more read. */
	assert_int_equal(read_fast(c, &k, sizeof(payload)), 1);
	path = lp_cache_entry_path(c, LP_CACHE_ZIP, &k);
	assert_int_equal(lp_read_file(path, 1 << 20, &file, &n), 0);
	/* Longer than its header says: refused (here or, without the fast open, at open). */
	file = realloc(file, n + 3);
	memcpy(file + n, "xyz", 3);
	rewrite(path, file, n + 3);
	assert_int_equal(read_fast(c, &k, sizeof(payload)), 0);
	/* Truncated. */
	rewrite(path, file, n - 10);
	assert_int_equal(read_fast(c, &k, sizeof(payload)), 0);
	/* And the intact entry again. */
	rewrite(path, file, n);
	assert_int_equal(read_fast(c, &k, sizeof(payload)), 1);
	free(file);
	free(path);
	lp_cache_free(c);
}

static void test_unusable_root(void **state)
{
	char *file;
	struct lp_cache_opts o = { 0 };
	struct lp_cache *c = NULL;
	FILE *f;

	(void)state;
	assert_true(asprintf(&file, "%s/plain-file", root) > 0);
	f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	o.root = file;
	assert_int_equal(lp_cache_open(&o, &c), 0);
	assert_false(lp_cache_enabled(c));
	assert_non_null(lp_cache_warning(c));
	assert_null(lp_cache_wr_begin(c, LP_CACHE_ZIP));
	lp_cache_free(c);
	free(file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_roundtrip_and_corruption),
		cmocka_unit_test(test_stat_index),
		cmocka_unit_test(test_fast_open_finds_the_end),
		cmocka_unit_test(test_unusable_root),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
