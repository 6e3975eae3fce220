/* SPDX-License-Identifier: MIT */
/* Unit tests of container/: layer plan, tar headers (read back with libarchive), JSON, determinism. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "container/oci.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "tests/oci/fixture.h"

#include <archive.h>
#include <archive_entry.h>
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fx {
	char *tmp;
	struct lp_entries l;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f || lp_tmpdir_create("test-oci", &f->tmp) < 0)
		return -1;
	lp_entries_init(&f->l);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	lp_entries_free(&f->l);
	lp_rm_rf(f->tmp);
	lp_cleanup_unregister(f->tmp);
	free(f->tmp);
	free(f);
	return 0;
}

static void add(struct fx *f, const char *path, const char *data, unsigned mode)
{
	assert_int_equal(fx_add_file(&f->l, f->tmp, path, data, mode), 0);
}

static void add_dir(struct fx *f, const char *path)
{
	struct lp_entry *e = lp_entries_push(&f->l, path, LP_DIR);

	assert_non_null(e);
	e->mode = 0755;
}

static void add_link(struct fx *f, const char *path, const char *target)
{
	struct lp_entry *e = lp_entries_push(&f->l, path, LP_SYMLINK);

	assert_non_null(e);
	e->target = strdup(target);
	e->size = strlen(target);
}

static void finish(struct fx *f)
{
	lp_entries_sort(&f->l);
	assert_int_equal(lp_entries_add_parents(&f->l), 0);
}

static char *out_path(struct fx *f, const char *name)
{
	char *p = malloc(strlen(f->tmp) + strlen(name) + 2);

	sprintf(p, "%s/%s", f->tmp, name);
	return p;
}

/* Does the layer plan contain path, and in which group? -1 if absent. */
static int group_of(const struct lp_oci_plan *p, const struct lp_entries *l, const char *path, size_t *layer)
{
	for (size_t i = 0; i < p->n; i++)
		for (size_t k = 0; k < p->v[i].n; k++)
			if (strcmp(l->v[p->v[i].idx[k]].path, path) == 0) {
				if (layer)
					*layer = i;
				return (int)p->v[i].group;
			}
	return -1;
}

static void test_plan_groups(void **state)
{
	struct fx *f = *state;
	struct lp_oci_opts o;
	struct lp_oci_plan p;

	add(f, "app.py", "x", 0644);
	add(f, "lib/helper.so", "x", 0755);
	add(f, "node_modules/a/index.js", "x", 0644);
	add(f, "layer/nodejs/node_modules/b/i.js", "x", 0644);
	add(f, "python/lib/python3.12/site-packages/yaml/__init__.py", "x", 0644);
	add(f, "six.py", "x", 0644);
	add(f, "six-1.16.0.dist-info/RECORD", "six.py,sha256=a,1\n../../bin/x,,\n", 0644);
	add(f, "yaml/__init__.py", "x", 0644);
	add(f, "PyYAML-6.0.dist-info/top_level.txt", "_yaml\nyaml\n", 0644);
	add(f, "opt/extensions/e", "x", 0755);
	add(f, "src/handler.py", "x", 0644);
	finish(f);
	lp_oci_opts_init(&o);
	assert_int_equal(lp_oci_plan_layers(&f->l, &o, &p), 0);
	assert_int_equal(p.n, 3);
	assert_int_equal(p.v[0].group, LP_OCI_G_OPT);
	assert_int_equal(p.v[1].group, LP_OCI_G_DEPS);
	assert_int_equal(p.v[2].group, LP_OCI_G_CODE);
	assert_int_equal(group_of(&p, &f->l, "app.py", NULL), LP_OCI_G_CODE);
	assert_int_equal(group_of(&p, &f->l, "src/handler.py", NULL), LP_OCI_G_CODE);
	assert_int_equal(group_of(&p, &f->l, "lib/helper.so", NULL), LP_OCI_G_DEPS);
	assert_int_equal(group_of(&p, &f->l, "node_modules/a/index.js", NULL), LP_OCI_G_DEPS);
	assert_int_equal(group_of(&p, &f->l, "layer/nodejs/node_modules/b/i.js", NULL), LP_OCI_G_DEPS);
	assert_int_equal(group_of(&p, &f->l, "python/lib/python3.12/site-packages/yaml/__init__.py", NULL),
			 LP_OCI_G_DEPS);
	assert_int_equal(group_of(&p, &f->l, "six.py", NULL), LP_OCI_G_DEPS);
	assert_int_equal(group_of(&p, &f->l, "yaml/__init__.py", NULL), LP_OCI_G_DEPS);
	assert_int_equal(group_of(&p, &f->l, "six-1.16.0.dist-info/RECORD", NULL), LP_OCI_G_DEPS);
	assert_int_equal(group_of(&p, &f->l, "opt/extensions/e", NULL), LP_OCI_G_OPT);
	/* Each layer's indices ascend (entry order is tar order). */
	for (size_t i = 0; i < p.n; i++)
		for (size_t k = 1; k < p.v[i].n; k++)
			assert_true(p.v[i].idx[k - 1] < p.v[i].idx[k]);
	lp_oci_plan_free(&p);

	/* opt_in_task_root keeps opt/ with the code. */
	o.opt_in_task_root = true;
	assert_int_equal(lp_oci_plan_layers(&f->l, &o, &p), 0);
	assert_int_equal(group_of(&p, &f->l, "opt/extensions/e", NULL), LP_OCI_G_CODE);
	lp_oci_plan_free(&p);
}

static void test_plan_split_by_package(void **state)
{
	struct fx *f = *state;
	struct lp_oci_opts o;
	struct lp_oci_plan p;
	char path[64], data[200];
	size_t la, la2, lb;

	memset(data, 'z', sizeof(data) - 1);
	data[sizeof(data) - 1] = '\0';
	for (int i = 0; i < 40; i++) {
		snprintf(path, sizeof(path), "node_modules/p%02d/index.js", i);
		add(f, path, data, 0644);
		snprintf(path, sizeof(path), "node_modules/p%02d/lib/x.js", i);
		add(f, path, data, 0644);
	}
	add(f, "node_modules/a/x.js", data, 0644);
	add(f, "node_modules/a-b/x.js", data, 0644);
	add(f, "node_modules/a/z.js", data, 0644);
	add(f, "app.js", "x", 0644);
	finish(f);
	lp_oci_opts_init(&o);
	o.layer_max = 1000;	/* ~2.5 packages per layer; the cap of 8 layers wins */
	assert_int_equal(lp_oci_plan_layers(&f->l, &o, &p), 0);
	assert_true(p.n <= LP_OCI_MAX_OWN_LAYERS);
	assert_int_equal(p.n, LP_OCI_MAX_OWN_LAYERS);
	assert_int_equal(p.v[p.n - 1].group, LP_OCI_G_CODE);
	assert_int_equal(p.v[0].nparts, LP_OCI_MAX_OWN_LAYERS - 1);
	/* A package never straddles two layers, even when its paths are not contiguous. */
	group_of(&p, &f->l, "node_modules/a/x.js", &la);
	group_of(&p, &f->l, "node_modules/a/z.js", &la2);
	assert_int_equal(la, la2);
	for (int i = 0; i < 40; i++) {
		snprintf(path, sizeof(path), "node_modules/p%02d/index.js", i);
		group_of(&p, &f->l, path, &la);
		snprintf(path, sizeof(path), "node_modules/p%02d/lib/x.js", i);
		group_of(&p, &f->l, path, &lb);
		assert_int_equal(la, lb);
	}
	lp_oci_plan_free(&p);
	/* A generous bound: one dependency layer. */
	o.layer_max = 1 << 20;
	assert_int_equal(lp_oci_plan_layers(&f->l, &o, &p), 0);
	assert_int_equal(p.n, 2);
	lp_oci_plan_free(&p);
}

static void test_image_path(void **state)
{
	struct lp_oci_opts o;
	char *s;

	lp_oci_opts_init(&o);
	s = lp_oci_image_path(&o, "app.py");
	assert_string_equal(s, "var/task/app.py");
	free(s);
	s = lp_oci_image_path(&o, "opt/x");
	assert_string_equal(s, "opt/x");
	free(s);
	s = lp_oci_image_path(&o, "optional/x");
	assert_string_equal(s, "var/task/optional/x");
	free(s);
	o.task_root = "/";
	s = lp_oci_image_path(&o, "app.py");
	assert_string_equal(s, "app.py");
	free(s);
	o.task_root = "/srv/fn/";
	s = lp_oci_image_path(&o, "app.py");
	assert_string_equal(s, "srv/fn/app.py");
	free(s);
}

/* Write one layer uncompressed and read it back with libarchive. */
static void test_tar_headers(void **state)
{
	struct fx *f = *state;
	struct lp_oci_opts o;
	struct lp_oci_plan p;
	struct lp_oci_blob b;
	struct archive *a;
	struct archive_entry *ae;
	char *tarp = out_path(f, "layer.tar");
	const char *want[] = {
		"var/", "var/task/", "var/task/a.txt", "var/task/bin/", "var/task/bin/run",
		"var/task/copy.txt", "var/task/empty/", "var/task/link", "var/task/z.txt",
	};
	size_t n = 0;

	add(f, "z.txt", "same", 0644);
	add(f, "a.txt", "same", 0644);
	add(f, "copy.txt", "same", 0644);
	add(f, "bin/run", "#!/bin/sh\n", 0755);
	add_dir(f, "empty");
	add_link(f, "link", "a.txt");
	finish(f);
	/* z.txt and copy.txt are copies of a.txt (as pack's dedupe marks them). */
	for (size_t i = 0; i < f->l.n; i++)
		if (!strcmp(f->l.v[i].path, "z.txt") || !strcmp(f->l.v[i].path, "copy.txt")) {
			f->l.v[i].flags |= LP_F_DUPLICATE;
			f->l.v[i].target = strdup("a.txt");
		}
	lp_oci_opts_init(&o);
	o.compression = LP_OCI_NONE;
	o.epoch = 1234567890;
	assert_int_equal(lp_oci_plan_layers(&f->l, &o, &p), 0);
	assert_int_equal(p.n, 1);
	unlink(tarp);
	assert_int_equal(lp_oci_write_layer(&f->l, &p.v[0], &o, 1, tarp, &b), 0);
	assert_int_equal(b.size, b.usize);
	assert_string_equal(b.digest, b.diff_id);
	assert_string_equal(b.media_type, LP_OCI_MT_TAR);

	a = archive_read_new();
	archive_read_support_format_tar(a);
	assert_int_equal(archive_read_open_filename(a, tarp, 10240), ARCHIVE_OK);
	while (archive_read_next_header(a, &ae) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(ae);

		assert_true(n < sizeof(want) / sizeof(want[0]));
		assert_string_equal(name, want[n]);
		n++;
		assert_int_equal(archive_entry_uid(ae), 0);
		assert_int_equal(archive_entry_gid(ae), 0);
		/* ustar has the fields; they must be empty. */
		assert_true(!archive_entry_uname(ae) || !*archive_entry_uname(ae));
		assert_true(!archive_entry_gname(ae) || !*archive_entry_gname(ae));
		assert_int_equal(archive_entry_mtime(ae), 1234567890);
		assert_false(archive_entry_atime_is_set(ae));
		assert_false(archive_entry_ctime_is_set(ae));
		assert_int_equal(archive_entry_xattr_count(ae), 0);
		if (!strcmp(name, "var/task/link")) {
			assert_int_equal(archive_entry_filetype(ae), AE_IFLNK);
			assert_string_equal(archive_entry_symlink(ae), "a.txt");
		} else if (!strcmp(name, "var/task/copy.txt") || !strcmp(name, "var/task/z.txt")) {
			/* The canonical a.txt comes first in the tar, so both link to it. */
			assert_non_null(archive_entry_hardlink(ae));
			assert_string_equal(archive_entry_hardlink(ae), "var/task/a.txt");
			assert_int_equal(archive_entry_size(ae), 0);
		} else if (name[strlen(name) - 1] == '/') {
			assert_int_equal(archive_entry_filetype(ae), AE_IFDIR);
			assert_int_equal(archive_entry_perm(ae), 0755);
		} else {
			char buf[64] = "";

			assert_int_equal(archive_entry_filetype(ae), AE_IFREG);
			assert_null(archive_entry_hardlink(ae));
			assert_int_equal(archive_entry_perm(ae), !strcmp(name, "var/task/bin/run") ? 0755 : 0644);
			assert_true(archive_read_data(a, buf, sizeof(buf) - 1) >= 0);
			assert_string_equal(buf, !strcmp(name, "var/task/a.txt") ? "same" : "#!/bin/sh\n");
		}
	}
	assert_int_equal(n, sizeof(want) / sizeof(want[0]));
	archive_read_free(a);
	lp_oci_plan_free(&p);
	free(tarp);
}

static cJSON *read_json(const char *dir, const char *rel)
{
	char path[4096], *buf;
	size_t len;
	cJSON *j;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	if (lp_read_file(path, 1 << 20, &buf, &len) < 0)
		return NULL;
	j = cJSON_Parse(buf);
	free(buf);
	return j;
}

static cJSON *read_blob(const char *dir, const char *digest)
{
	char rel[512];

	snprintf(rel, sizeof(rel), "blobs/sha256/%s", digest + 7);
	return read_json(dir, rel);
}

static const char *jstr(const cJSON *o, const char *k)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

static void test_layout_json(void **state)
{
	struct fx *f = *state;
	struct lp_oci_opts o;
	struct lp_oci_result res;
	const char *env[] = { "A=1", "LAMBDA_TASK_ROOT=/custom" };
	char *out = out_path(f, "img");
	cJSON *index, *man, *cfg, *d, *c, *e;

	add(f, "app.py", "print(1)", 0644);
	add(f, "bootstrap", "#!/bin/sh\n", 0755);
	add(f, "node_modules/x/i.js", "1", 0644);
	finish(f);
	lp_oci_opts_init(&o);
	o.output = out;
	o.handler = "app.handler";
	o.env = env;
	o.n_env = 2;
	o.tag = "v1.2";
	o.arch = LP_ARCH_ARM64;
	o.epoch = 0;
	assert_int_equal(lp_oci_write(&f->l, &o, &res), 0);
	assert_int_equal(res.n_layers, 2);
	assert_int_equal(res.n_base_layers, 0);
	assert_string_equal(res.arch, "arm64");
	assert_false(res.archive);

	index = read_json(out, "index.json");
	assert_non_null(index);
	assert_string_equal(jstr(index, "mediaType"), LP_OCI_MT_INDEX);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(index, "manifests")), 1);
	d = cJSON_GetArrayItem(cJSON_GetObjectItem(index, "manifests"), 0);
	assert_string_equal(jstr(d, "mediaType"), LP_OCI_MT_MANIFEST);
	assert_string_equal(jstr(d, "digest"), res.manifest_digest);
	assert_int_equal((uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(d, "size")), res.manifest_size);
	assert_string_equal(jstr(cJSON_GetObjectItem(d, "platform"), "architecture"), "arm64");
	assert_string_equal(jstr(cJSON_GetObjectItem(d, "platform"), "os"), "linux");
	assert_string_equal(jstr(cJSON_GetObjectItem(d, "annotations"), "org.opencontainers.image.ref.name"), "v1.2");

	man = read_blob(out, res.manifest_digest);
	assert_non_null(man);
	assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItem(man, "schemaVersion")), 2);
	assert_string_equal(jstr(cJSON_GetObjectItem(man, "config"), "mediaType"), LP_OCI_MT_CONFIG);
	assert_string_equal(jstr(cJSON_GetObjectItem(man, "config"), "digest"), res.config_digest);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(man, "layers")), 2);
	assert_string_equal(jstr(cJSON_GetArrayItem(cJSON_GetObjectItem(man, "layers"), 0), "mediaType"),
			    LP_OCI_MT_TAR_GZIP);

	cfg = read_blob(out, res.config_digest);
	assert_non_null(cfg);
	assert_string_equal(jstr(cfg, "architecture"), "arm64");
	assert_string_equal(jstr(cfg, "os"), "linux");
	assert_string_equal(jstr(cfg, "created"), "1970-01-01T00:00:00Z");
	assert_string_equal(jstr(cJSON_GetObjectItem(cfg, "rootfs"), "type"), "layers");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetArrayItem(
		cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "rootfs"), "diff_ids"), 1)), res.layers[1].diff_id);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(cfg, "history")), 2);
	c = cJSON_GetObjectItem(cfg, "config");
	e = cJSON_GetObjectItem(c, "Env");
	assert_int_equal(cJSON_GetArraySize(e), 2);	/* the user's LAMBDA_TASK_ROOT wins, no second one */
	assert_string_equal(cJSON_GetStringValue(cJSON_GetArrayItem(e, 0)), "A=1");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetArrayItem(e, 1)), "LAMBDA_TASK_ROOT=/custom");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(c, "Cmd"), 0)), "app.handler");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(c, "Entrypoint"), 0)),
			    "/var/task/bootstrap");
	assert_string_equal(jstr(c, "WorkingDir"), "/var/task");
	cJSON_Delete(index);
	cJSON_Delete(man);
	cJSON_Delete(cfg);
	lp_oci_result_free(&res);
	free(out);
}

static void build_digest(struct fx *f, const char *name, unsigned threads, enum lp_oci_compression c,
			 char out_digest[LP_OCI_DIGEST_LEN])
{
	struct lp_oci_opts o;
	struct lp_oci_result res;
	char *out = out_path(f, name);

	lp_oci_opts_init(&o);
	o.output = out;
	o.threads = threads;
	o.compression = c;
	o.layer_max = 4096;
	assert_int_equal(lp_oci_write(&f->l, &o, &res), 0);
	assert_true(res.n_layers > 3);
	memcpy(out_digest, res.manifest_digest, LP_OCI_DIGEST_LEN);
	lp_oci_result_free(&res);
	free(out);
}

static void test_same_bytes_any_thread_count(void **state)
{
	struct fx *f = *state;
	char d1[LP_OCI_DIGEST_LEN], d2[LP_OCI_DIGEST_LEN], d3[LP_OCI_DIGEST_LEN];
	char *big = malloc(300000);

	/* Incompressible-ish data, big enough for several deflate blocks. */
	for (size_t i = 0; i < 299999; i++)
		big[i] = (char)('a' + (i * 2654435761u >> 13) % 26);
	big[299999] = '\0';
	for (int i = 0; i < 12; i++) {
		char p[64];

		snprintf(p, sizeof(p), "node_modules/m%02d/data.txt", i);
		add(f, p, big + i * 1000, 0644);
	}
	add(f, "app.js", big, 0644);
	finish(f);
	free(big);
	build_digest(f, "t1", 1, LP_OCI_GZIP, d1);
	build_digest(f, "t2", 2, LP_OCI_GZIP, d2);
	build_digest(f, "t5", 5, LP_OCI_GZIP, d3);
	assert_string_equal(d1, d2);
	assert_string_equal(d1, d3);
	build_digest(f, "z1", 1, LP_OCI_ZSTD, d1);
	build_digest(f, "z3", 3, LP_OCI_ZSTD, d2);
	assert_string_equal(d1, d2);
	build_digest(f, "n1", 1, LP_OCI_NONE, d1);
	build_digest(f, "n4", 4, LP_OCI_NONE, d2);
	assert_string_equal(d1, d2);
}

static void test_too_big_names_contributors(void **state)
{
	struct fx *f = *state;
	struct lp_oci_opts o;
	struct lp_oci_result res;
	struct lp_report rep;
	char *out = out_path(f, "big");
	struct lp_entry *e;

	add(f, "app.py", "x", 0644);
	/* No bytes behind these: the budget check must fail before anything is read. */
	e = lp_entries_push(&f->l, "node_modules/huge/blob.bin", LP_FILE);
	e->size = 7ULL << 30;
	e->mode = 0644;
	e = lp_entries_push(&f->l, "models/weights.bin", LP_FILE);
	e->size = 4ULL << 30;
	e->mode = 0644;
	finish(f);
	lp_report_init(&rep);
	lp_oci_opts_init(&o);
	o.output = out;
	o.report = &rep;
	assert_int_equal(lp_oci_write(&f->l, &o, &res), -LP_E_TOOBIG);
	assert_non_null(strstr(lp_errmsg(), "node_modules/huge"));
	assert_non_null(strstr(lp_errmsg(), "models/weights.bin"));
	assert_true(rep.n_findings >= 2);
	assert_string_equal(rep.findings[0].code, "image-too-big");
	assert_string_equal(rep.findings[0].path, "node_modules/huge");
	assert_int_equal(access(out, F_OK), -1);
	lp_report_free(&rep);
	free(out);
}

static void test_bad_options(void **state)
{
	struct fx *f = *state;
	struct lp_oci_opts o;
	struct lp_oci_result res;
	char *out = out_path(f, "bad");

	finish(f);
	lp_oci_opts_init(&o);
	o.output = out;
	o.tag = "no spaces";
	assert_int_equal(lp_oci_write(&f->l, &o, &res), -LP_E_USAGE);
	o.tag = NULL;
	o.arch = LP_ARCH_X86;
	assert_int_equal(lp_oci_write(&f->l, &o, &res), -LP_E_USAGE);
	o.arch = LP_ARCH_UNKNOWN;
	o.base = "oci:/nonexistent/layout:x";
	assert_true(lp_oci_write(&f->l, &o, &res) < 0);
	assert_int_equal(access(out, F_OK), -1);
	/* An empty function still makes a valid image (one layer with /var/task). */
	o.base = NULL;
	assert_int_equal(lp_oci_write(&f->l, &o, &res), 0);
	assert_int_equal(res.n_layers, 1);
	lp_oci_result_free(&res);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_plan_groups, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plan_split_by_package, setup, teardown),
		cmocka_unit_test(test_image_path),
		cmocka_unit_test_setup_teardown(test_tar_headers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_layout_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_same_bytes_any_thread_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_big_names_contributors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_options, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
