/* SPDX-License-Identifier: MIT */
/* The member reader (input/stream.c): kinds, checks, problems, sources. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/fsutil.h"
#include "core/report.h"
#include "input/input.h"

static char dir[4096];

struct mem {
	const char *name;
	mode_t type;		/* AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFIFO, or 0 for a hard link */
	const char *data;	/* bytes, or the link target */
	int64_t size;		/* -1: strlen(data) */
};

/* A tar (or zip) written by libarchive into dir/name. */
static void write_archive(const char *name, bool zip, const struct mem *m, size_t n)
{
	char path[8192];
	struct archive *a = archive_write_new();

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (zip)
		archive_write_set_format_zip(a);
	else
		archive_write_set_format_pax_restricted(a);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		size_t len = m[i].data ? strlen(m[i].data) : 0;

		archive_entry_set_pathname(e, m[i].name);
		if (m[i].type == 0) {
			archive_entry_set_hardlink(e, m[i].data);
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_size(e, 0);
		} else {
			archive_entry_set_filetype(e, m[i].type);
			archive_entry_set_perm(e, m[i].type == AE_IFDIR ? 0755 : 0644);
			if (m[i].type == AE_IFLNK)
				archive_entry_set_symlink(e, m[i].data);
			else if (m[i].type == AE_IFREG)
				archive_entry_set_size(e, m[i].size >= 0 ? m[i].size : (int64_t)len);
		}
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		if (m[i].type == AE_IFREG && len)
			assert_int_equal(archive_write_data(a, m[i].data, len), (la_ssize_t)len);
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
}

static char *at(const char *name)
{
	static char p[8192];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return p;
}

static int setup(void **state)
{
	char *t;

	assert_int_equal(lp_tmpdir_create("test-stream", &t), 0);
	snprintf(dir, sizeof(dir), "%s", t);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	lp_rm_rf(*state);
	lp_cleanup_unregister(*state);
	free(*state);
	return 0;
}

static void read_all(struct lp_stream *s, char *out, size_t cap)
{
	size_t n = 0;
	ssize_t got;

	while ((got = lp_stream_read(s, out + n, cap - 1 - n)) > 0)
		n += (size_t)got;
	assert_true(got == 0);
	out[n] = '\0';
}

static void test_tar_members_and_hard_link(void **state)
{
	const struct mem m[] = {
		{ "./", AE_IFDIR, NULL, -1 },
		{ "bin/tool", AE_IFREG, "#!/bin/sh\n", -1 },
		{ "bin/tool2", 0, "bin/tool", -1 },
		{ "lib/link", AE_IFLNK, "../bin/tool", -1 },
	};
	struct lp_stream_opts o = { .name = "t.tar" };
	const struct lp_member *mb;
	struct lp_stream *s;
	char buf[64];

	(void)state;
	write_archive("t.tar", false, m, 4);
	assert_int_equal(lp_stream_open_file(at("t.tar"), &o, &s), 0);
	assert_int_equal(lp_stream_next(s, &mb), 1);	/* "./" is skipped */
	assert_string_equal(mb->path, "bin/tool");
	assert_int_equal(mb->kind, LP_MEMBER_FILE);
	assert_int_equal(mb->size, 10);
	read_all(s, buf, sizeof(buf));
	assert_string_equal(buf, "#!/bin/sh\n");
	assert_int_equal(lp_stream_next(s, &mb), 1);
	assert_int_equal(mb->kind, LP_MEMBER_HARDLINK);
	assert_string_equal(mb->path, "bin/tool2");
	assert_string_equal(mb->link, "bin/tool");
	assert_int_equal(lp_stream_next(s, &mb), 1);
	assert_int_equal(mb->kind, LP_MEMBER_SYMLINK);
	assert_string_equal(mb->target, "../bin/tool");
	assert_int_equal(lp_stream_next(s, &mb), 0);
	assert_false(lp_stream_is_zip(s));
	lp_stream_close(s);
}

/* With a report every problem is recorded and the good members still come. */
static void test_problems_recorded_and_skipped(void **state)
{
	const struct mem m[] = {
		{ "a", AE_IFREG, "1", -1 },
		{ "../up", AE_IFREG, "x", -1 },
		{ "a", AE_IFREG, "2", -1 },
		{ "p", AE_IFIFO, NULL, -1 },
		{ "esc", AE_IFLNK, "../../etc/passwd", -1 },
		{ "ctl\x1b[2J", AE_IFREG, "x", -1 },
		{ "gone", 0, "nothere", -1 },
		{ "a/b", AE_IFREG, "x", -1 },
		{ "z", AE_IFREG, "z", -1 },
	};
	static const char *const codes[] = {
		"unsafe-name", "duplicate-member", "bad-type", "link-outside", "bad-name",
		"hardlink-missing", "duplicate-member",
	};
	struct lp_report rep;
	struct lp_stream_opts o = { .name = "p.tar", .problems = &rep };
	const struct lp_member *mb;
	struct lp_stream *s;
	size_t n = 0;

	(void)state;
	lp_report_init(&rep);
	write_archive("p.tar", false, m, 9);
	assert_int_equal(lp_stream_open_file(at("p.tar"), &o, &s), 0);
	while (lp_stream_next(s, &mb) == 1) {
		assert_true(!strcmp(mb->path, "a") || !strcmp(mb->path, "z"));
		n++;
	}
	lp_stream_close(s);
	assert_int_equal(n, 2);
	assert_int_equal(rep.n_findings, 7);
	for (size_t i = 0; i < 7; i++) {
		assert_string_equal(rep.findings[i].code, codes[i]);
		assert_int_equal(rep.findings[i].sev, LP_SEV_ERROR);
		assert_non_null(strstr(rep.findings[i].message, "p.tar: member '"));
		assert_null(strchr(rep.findings[i].message, '\x1b'));	/* names are escaped */
		assert_true(lp_input_problem(rep.findings[i].code));
	}
	lp_report_free(&rep);
}

/* Without a report the first problem stops, naming the input and the member. */
static void test_first_problem_fails_without_report(void **state)
{
	const struct mem m[] = {
		{ "ok", AE_IFREG, "1", -1 },
		{ "../../etc/evil", AE_IFREG, "x", -1 },
	};
	struct lp_stream_opts o = { .name = "e.tar" };
	const struct lp_member *mb;
	struct lp_stream *s;

	(void)state;
	write_archive("e.tar", false, m, 2);
	assert_int_equal(lp_stream_open_file(at("e.tar"), &o, &s), 0);
	assert_int_equal(lp_stream_next(s, &mb), 1);
	assert_int_equal(lp_stream_next(s, &mb), -LP_E_UNSAFEPATH);
	assert_non_null(strstr(lp_errmsg(), "e.tar: member '../../etc/evil'"));
	lp_stream_close(s);
}

struct memsrc {
	const uint8_t *p;
	size_t n;
	bool done;
};

static ssize_t mem_read(void *ud, const void **buf)
{
	struct memsrc *m = ud;

	if (m->done)
		return 0;
	m->done = true;
	*buf = m->p;
	return (ssize_t)m->n;
}

/* Layer mode, from a byte source: whiteouts, a leading '/', escaping hard links. */
static void test_layer_mode_from_callback(void **state)
{
	const struct mem m[] = {
		{ "/etc/ok", AE_IFREG, "ok", -1 },
		{ "etc/.wh.old", AE_IFREG, "", -1 },
		{ "var/.wh..wh..opq", AE_IFREG, "", -1 },
		{ "dev/null", AE_IFCHR, NULL, -1 },
		{ "etc/abs", AE_IFLNK, "/usr/bin/python3", -1 },
		{ "etc/shadow", 0, "../../../etc/shadow", -1 },
		{ "etc/pw", 0, "/etc/shadow", -1 },
		{ "etc/ok2", 0, "etc/ok", -1 },
	};
	static const int kinds[] = {
		LP_MEMBER_FILE, LP_MEMBER_WHITEOUT, LP_MEMBER_OPAQUE, LP_MEMBER_OTHER, LP_MEMBER_SYMLINK,
		LP_MEMBER_HARDLINK,
	};
	static const char *const paths[] = { "etc/ok", "etc/old", "var", "dev/null", "etc/abs", "etc/ok2" };
	struct lp_report rep;
	struct lp_stream_opts o = { .name = "img: layer sha256:x", .layer = true, .only_tar = true, .problems = &rep };
	const struct lp_member *mb;
	struct lp_stream *s;
	struct memsrc src;
	char *data = NULL;
	size_t len = 0, i = 0;

	(void)state;
	lp_report_init(&rep);
	write_archive("l.tar", false, m, 8);
	assert_int_equal(lp_read_file(at("l.tar"), 1 << 20, &data, &len), 0);
	src = (struct memsrc){ .p = (const uint8_t *)data, .n = len };
	assert_int_equal(lp_stream_open_cb(mem_read, &src, &o, &s), 0);
	while (lp_stream_next(s, &mb) == 1) {
		assert_true(i < 6);
		assert_int_equal(mb->kind, kinds[i]);
		assert_string_equal(mb->path, paths[i]);
		i++;
	}
	assert_int_equal(i, 6);
	lp_stream_close(s);
	assert_int_equal(rep.n_findings, 2);
	assert_string_equal(rep.findings[0].code, "hardlink-outside");
	assert_string_equal(rep.findings[1].code, "hardlink-outside");
	assert_non_null(strstr(rep.findings[0].message, "img: layer sha256:x: member 'etc/shadow'"));
	lp_report_free(&rep);
	free(data);
}

/* Expansion is counted from the headers, before a byte is handed out. */
static void test_expansion_and_member_caps(void **state)
{
	const struct mem m[] = {
		{ "a", AE_IFREG, "0123456789", -1 },
		{ "b", AE_IFREG, "0123456789", -1 },
		{ "c", AE_IFREG, "0123456789", -1 },
	};
	struct lp_stream_opts o = { .name = "x.tar", .max_expand = 15 };
	const struct lp_member *mb;
	struct lp_stream *s;

	(void)state;
	write_archive("x.tar", false, m, 3);
	assert_int_equal(lp_stream_open_file(at("x.tar"), &o, &s), 0);
	assert_int_equal(lp_stream_next(s, &mb), 1);
	assert_int_equal(lp_stream_next(s, &mb), -LP_E_BADARCHIVE);
	assert_non_null(strstr(lp_errmsg(), "x.tar: member 'b': archive expands beyond 15 bytes"));
	lp_stream_close(s);
	o.max_expand = 0;
	o.max_members = 2;
	assert_int_equal(lp_stream_open_file(at("x.tar"), &o, &s), 0);
	assert_int_equal(lp_stream_next(s, &mb), 1);
	assert_int_equal(lp_stream_next(s, &mb), 1);
	assert_true(lp_stream_next(s, &mb) < 0);
	assert_non_null(strstr(lp_errmsg(), "more than 2 members"));
	lp_stream_close(s);
}

/* A central directory whose CRC disagrees with the local header is refused before any member. */
static void test_zip_central_and_local_disagree(void **state)
{
	const struct mem m[] = {
		{ "good.txt", AE_IFREG, "good", -1 },
		{ "liar.txt", AE_IFREG, "liar", -1 },
	};
	struct lp_report rep;
	struct lp_stream_opts o = { .name = "z.zip", .problems = &rep };
	const struct lp_member *mb;
	struct lp_stream *s;
	char *data = NULL, *cd;
	size_t len = 0, n = 0;
	FILE *f;

	(void)state;
	write_archive("z.zip", true, m, 2);
	assert_int_equal(lp_read_file(at("z.zip"), 1 << 20, &data, &len), 0);
	/* The second central entry: flip one bit of its CRC-32. */
	cd = memmem(data, len, "PK\x01\x02", 4);
	assert_non_null(cd);
	cd = memmem(cd + 4, len - (size_t)(cd + 4 - data), "PK\x01\x02", 4);
	assert_non_null(cd);
	cd[16] ^= 1;
	f = fopen(at("z.zip"), "wb");
	fwrite(data, 1, len, f);
	fclose(f);
	lp_report_init(&rep);
	assert_int_equal(lp_stream_open_file(at("z.zip"), &o, &s), 0);
	while (lp_stream_next(s, &mb) == 1) {
		assert_string_equal(mb->path, "good.txt");
		n++;
	}
	assert_true(lp_stream_is_zip(s));
	lp_stream_close(s);
	assert_int_equal(n, 1);
	assert_int_equal(rep.n_findings, 1);
	assert_string_equal(rep.findings[0].code, "zip-inconsistent");
	assert_non_null(strstr(rep.findings[0].message, "z.zip: member 'liar.txt'"));
	lp_report_free(&rep);
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tar_members_and_hard_link, setup, teardown),
		cmocka_unit_test_setup_teardown(test_problems_recorded_and_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_problem_fails_without_report, setup, teardown),
		cmocka_unit_test_setup_teardown(test_layer_mode_from_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expansion_and_member_caps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zip_central_and_local_disagree, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
