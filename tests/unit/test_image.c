/* SPDX-License-Identifier: MIT */
/* The image reader (input/image.c): OCI layout, oci-archive, docker-archive; choice; digests. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <archive.h>
#include <archive_entry.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/fsutil.h"
#include "core/hash.h"
#include "input/input.h"

static char *tmp;

struct file {
	const char *name;
	const void *data;
	size_t len;
};

/* A tar of files, in memory (gzip: compressed) or at path. */
static size_t write_tar(const char *path, bool gzip, const struct file *f, size_t n, uint8_t *buf, size_t cap)
{
	struct archive *a = archive_write_new();
	size_t used = 0;

	archive_write_set_format_pax_restricted(a);
	if (gzip)
		archive_write_add_filter_gzip(a);
	if (path)
		assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	else
		assert_int_equal(archive_write_open_memory(a, buf, cap, &used), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();

		archive_entry_set_pathname(e, f[i].name);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_size(e, (int64_t)f[i].len);
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		assert_int_equal(archive_write_data(a, f[i].data, f[i].len), (la_ssize_t)f[i].len);
		archive_entry_free(e);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	return used;
}

static void sha_hex(const void *p, size_t n, char hex[65])
{
	struct lp_sha256 c;
	uint8_t d[32];

	lp_sha256_init(&c);
	lp_sha256_update(&c, p, n);
	lp_sha256_final(&c, d);
	lp_hex(d, 32, hex);
}

static void put(const char *dir, const char *name, const void *p, size_t n)
{
	char path[8192];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

/* The blobs written since the last make_layout(), for the oci-archive. */
static char blob_names[16][128];
static size_t n_blobs;

/* Store a blob in the layout; its descriptor's digest into dg ("sha256:..."). */
static void blob(const char *dir, const void *p, size_t n, char dg[72])
{
	char hex[65], name[128];

	sha_hex(p, n, hex);
	snprintf(dg, 72, "sha256:%s", hex);
	snprintf(name, sizeof(name), "blobs/sha256/%s", hex);
	put(dir, name, p, n);
	if (n_blobs < 16)
		snprintf(blob_names[n_blobs++], sizeof(blob_names[0]), "%s", name);
}

/* One platform's image: a one-file layer, its config and manifest; the manifest's descriptor into desc. */
static void platform(const char *dir, const char *arch, const char *file, bool gzip, char *desc, size_t dlen)
{
	static uint8_t layer[65536], tarb[65536];
	struct file f = { file, arch, strlen(arch) };
	size_t n = write_tar(NULL, gzip, &f, 1, layer, sizeof(layer)), tn = write_tar(NULL, false, &f, 1, tarb, sizeof(tarb));
	char ldg[72], cdg[72], mdg[72], diff[65], cfg[1024], man[2048];

	blob(dir, layer, n, ldg);
	sha_hex(tarb, tn, diff);
	snprintf(cfg, sizeof(cfg), "{\"architecture\":\"%s\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
		 "\"diff_ids\":[\"sha256:%s\"]}}", arch, diff);
	blob(dir, cfg, strlen(cfg), cdg);
	snprintf(man, sizeof(man), "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		 "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":%zu},"
		 "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar%s\",\"digest\":\"%s\",\"size\":%zu}]}",
		 cdg, strlen(cfg), gzip ? "+gzip" : "", ldg, n);
	blob(dir, man, strlen(man), mdg);
	snprintf(desc, dlen, "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\","
		 "\"size\":%zu,\"platform\":{\"os\":\"linux\",\"architecture\":\"%s\"}}", mdg, strlen(man), arch);
}

/* dir/NAME: a layout whose index.json names one multi-platform index (tag v1): amd64 and arm64. */
static char *make_layout(const char *name)
{
	char *dir, d1[512], d2[512], list[2048], ldg[72], idx[4096], path[8192];

	n_blobs = 0;
	assert_true(asprintf(&dir, "%s/%s", tmp, name) > 0);
	snprintf(path, sizeof(path), "%s/blobs/sha256", dir);
	assert_int_equal(lp_mkdir_p(path, 0755), 0);
	put(dir, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 30);
	platform(dir, "amd64", "amd.txt", true, d1, sizeof(d1));
	platform(dir, "arm64", "arm.txt", false, d2, sizeof(d2));
	snprintf(list, sizeof(list), "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
		 "\"manifests\":[%s,%s]}", d1, d2);
	blob(dir, list, strlen(list), ldg);
	snprintf(idx, sizeof(idx), "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
		 "\"application/vnd.oci.image.index.v1+json\",\"digest\":\"%s\",\"size\":%zu,"
		 "\"annotations\":{\"org.opencontainers.image.ref.name\":\"v1\"}}]}", ldg, strlen(list));
	put(dir, "index.json", idx, strlen(idx));
	return dir;
}

/* Walk the image's layers, collecting their member names. */
static int collect(void *ud, struct lp_image *img, size_t i, struct lp_image_blob *b)
{
	struct lp_strv *names = ud;
	const struct lp_member *m;
	struct lp_stream *st;
	int r;

	(void)img;
	(void)i;
	assert_int_equal(lp_image_blob_stream(b, NULL, &st), 0);
	while ((r = lp_stream_next(st, &m)) > 0)
		assert_int_equal(lp_strv_push(names, m->path), 0);
	lp_stream_close(st);
	return r;
}

static const char *config_arch(const struct lp_image *img)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(img->config, "architecture");

	return cJSON_IsString(a) ? a->valuestring : "";
}

static void test_layout_platforms(void **state)
{
	char *dir = make_layout("layout");
	struct lp_image_opts o = { .arch = "arm64", .need_arch = true };
	struct lp_strv names = { 0 };
	struct lp_image *img;

	(void)state;
	assert_int_equal(lp_image_open(dir, LP_IMAGE_LAYOUT, &o, &img), 0);
	assert_string_equal(config_arch(img), "arm64");
	assert_int_equal(img->n_layers, 1);
	assert_true(img->diff_ids_match);
	assert_string_equal(img->layers[0].media_type, "application/vnd.oci.image.layer.v1.tar");
	assert_int_equal(lp_image_layers(img, collect, &names), 0);
	assert_int_equal(names.n, 1);
	assert_string_equal(names.v[0], "arm.txt");
	lp_strv_free(&names);
	lp_image_close(img);

	/* x86_64 is amd64; by tag too. */
	o.arch = "x86_64";
	o.ref = "v1";
	assert_int_equal(lp_image_open(dir, LP_IMAGE_LAYOUT, &o, &img), 0);
	assert_string_equal(config_arch(img), "amd64");
	assert_string_equal(img->layers[0].media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
	assert_int_equal(lp_image_layers(img, collect, &names), 0);
	assert_string_equal(names.v[0], "amd.txt");
	lp_strv_free(&names);
	lp_image_close(img);

	/* No such platform, no such tag. */
	o.ref = NULL;
	o.arch = "s390x";
	lp_errmsg_clear();
	assert_int_equal(lp_image_open(dir, LP_IMAGE_LAYOUT, &o, &img), -LP_E_BADIMAGE);
	assert_non_null(strstr(lp_errmsg(), "linux/s390x"));
	o.arch = "arm64";
	o.ref = "v2";
	lp_errmsg_clear();
	assert_int_equal(lp_image_open(dir, LP_IMAGE_LAYOUT, &o, &img), -LP_E_BADIMAGE);
	assert_non_null(strstr(lp_errmsg(), "no image 'v2' here (it has: v1)"));
	free(dir);
}

/* The same layout as an oci-archive tar. */
static void test_oci_archive(void **state)
{
	char *dir = make_layout("oa"), *tar;
	struct lp_image_opts o = { .arch = "amd64" };
	struct lp_strv names = { 0 };
	struct lp_image *img;
	struct file f[18] = { 0 };
	char *bufs[18];
	size_t n = n_blobs;

	(void)state;
	/* index.json first: the reader must not depend on the members' order. */
	snprintf(blob_names[n_blobs], sizeof(blob_names[0]), "index.json");
	snprintf(blob_names[n_blobs + 1], sizeof(blob_names[0]), "oci-layout");
	n = n_blobs + 2;
	for (size_t i = 0; i < n; i++) {
		char path[8300];
		size_t len, k = (i + n - 2) % n;

		snprintf(path, sizeof(path), "%s/%s", dir, blob_names[k]);
		assert_int_equal(lp_read_file(path, 1 << 20, &bufs[i], &len), 0);
		f[i] = (struct file){ blob_names[k], bufs[i], len };
	}
	assert_true(asprintf(&tar, "%s/oa.tar", tmp) > 0);
	write_tar(tar, false, f, n, NULL, 0);
	for (size_t i = 0; i < n; i++)
		free(bufs[i]);
	assert_int_equal(lp_image_open(tar, LP_IMAGE_OCI_ARCHIVE, &o, &img), 0);
	assert_string_equal(config_arch(img), "amd64");
	assert_int_equal(lp_image_layers(img, collect, &names), 0);
	assert_int_equal(names.n, 1);
	assert_string_equal(names.v[0], "amd.txt");
	assert_int_equal(strlen(img->layers[0].digest), 71);
	lp_strv_free(&names);
	lp_image_close(img);
	free(tar);
	free(dir);
}

/* docker save of two images: manifest.json, configs, layer.tar members. */
static void test_docker_archive(void **state)
{
	static uint8_t l0[65536], l1[65536];
	struct file in0 = { "a.txt", "A", 1 }, in1 = { "b.txt", "B", 1 };
	size_t n0 = write_tar(NULL, false, &in0, 1, l0, sizeof(l0)), n1 = write_tar(NULL, true, &in1, 1, l1, sizeof(l1));
	char h0[65], h1[65], raw1[65], cfg0[512], cfg1[512], man[1024], *tar;
	static uint8_t t1[65536];
	size_t tn1 = write_tar(NULL, false, &in1, 1, t1, sizeof(t1));
	struct lp_image_opts o = { 0 };
	struct lp_strv names = { 0 };
	struct lp_image *img;

	(void)state;
	sha_hex(l0, n0, h0);
	sha_hex(l1, n1, raw1);
	sha_hex(t1, tn1, h1);
	snprintf(cfg0, sizeof(cfg0), "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"diff_ids\":[\"sha256:%s\"]}}", h0);
	snprintf(cfg1, sizeof(cfg1), "{\"architecture\":\"arm64\",\"os\":\"linux\",\"rootfs\":{\"diff_ids\":[\"sha256:%s\"]}}", h1);
	snprintf(man, sizeof(man), "[{\"Config\":\"c0.json\",\"RepoTags\":[\"fn-a:1\"],\"Layers\":[\"l0/layer.tar\"]},"
		 "{\"Config\":\"c1.json\",\"RepoTags\":[\"fn-b:1\"],\"Layers\":[\"l1/layer.tar\"]}]");
	{
		struct file f[] = {
			{ "l0/layer.tar", l0, n0 }, { "l1/layer.tar", l1, n1 },
			{ "c0.json", cfg0, strlen(cfg0) }, { "c1.json", cfg1, strlen(cfg1) },
			{ "manifest.json", man, strlen(man) },
		};

		assert_true(asprintf(&tar, "%s/docker.tar", tmp) > 0);
		write_tar(tar, false, f, 5, NULL, 0);
	}
	/* No ref: the first, and it says there were several. */
	assert_int_equal(lp_image_open(tar, LP_IMAGE_DOCKER_ARCHIVE, &o, &img), 0);
	assert_int_equal(img->n_images, 2);
	assert_true(img->defaulted);
	assert_string_equal(img->names, "fn-a:1, fn-b:1");
	assert_string_equal(config_arch(img), "amd64");
	lp_image_close(img);
	/* By tag and by index; the layer's digest and media type come from its bytes. */
	for (int k = 0; k < 2; k++) {
		char want[72];

		o.ref = k ? "@1" : "fn-b:1";
		assert_int_equal(lp_image_open(tar, LP_IMAGE_DOCKER_ARCHIVE, &o, &img), 0);
		assert_string_equal(config_arch(img), "arm64");
		assert_int_equal(lp_image_layers(img, collect, &names), 0);
		assert_string_equal(names.v[0], "b.txt");
		snprintf(want, sizeof(want), "sha256:%s", raw1);
		assert_string_equal(img->layers[0].digest, want);
		snprintf(want, sizeof(want), "sha256:%s", h1);
		assert_string_equal(img->layers[0].diff_id, want);
		assert_string_equal(img->layers[0].media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
		assert_int_equal(img->layers[0].size, n1);
		lp_strv_free(&names);
		lp_image_close(img);
	}
	/* A layer path with "..": refused before any member is looked for. */
	{
		const char *bad = "[{\"Config\":\"c0.json\",\"Layers\":[\"../l0/layer.tar\"]}]";
		struct file f[] = { { "c0.json", cfg0, strlen(cfg0) }, { "manifest.json", bad, strlen(bad) } };

		write_tar(tar, false, f, 2, NULL, 0);
		o.ref = NULL;
		lp_errmsg_clear();
		assert_int_equal(lp_image_open(tar, LP_IMAGE_DOCKER_ARCHIVE, &o, &img), -LP_E_BADIMAGE);
		assert_non_null(strstr(lp_errmsg(), "not a usable member path"));
	}
	free(tar);
}

static int drain_only(void *ud, struct lp_image *img, size_t i, struct lp_image_blob *b)
{
	(void)ud;
	(void)img;
	(void)i;
	(void)b;
	return 0;
}

static int failing_tap(void *ud, const void *buf, size_t n)
{
	(void)ud;
	(void)buf;
	(void)n;
	return lp_fail(-EIO, "tap", "cannot copy the layer");
}

/* A consumer's tap failing under lp_stream: the walk fails with the tap's error and message. */
static int walk_tapped(void *ud, struct lp_image *img, size_t i, struct lp_image_blob *b)
{
	const struct lp_member *m;
	struct lp_stream *st;
	int r;

	(void)ud;
	(void)img;
	(void)i;
	lp_image_blob_tap(b, failing_tap, NULL);
	/* Opening the stream reads the first block already: the tap's error, or the walk's. */
	r = lp_image_blob_stream(b, NULL, &st);
	if (r < 0)
		return r;
	while ((r = lp_stream_next(st, &m)) > 0)
		;
	lp_stream_close(st);
	assert_true(r < 0);
	return lp_image_blob_error(b, r);
}

static void test_tap_error(void **state)
{
	char *dir = make_layout("tap");
	struct lp_image *img;

	(void)state;
	assert_int_equal(lp_image_open(dir, LP_IMAGE_LAYOUT, NULL, &img), 0);
	lp_errmsg_clear();
	assert_int_equal(lp_image_layers(img, walk_tapped, NULL), -EIO);
	assert_string_equal(lp_errmsg(), "tap: cannot copy the layer");
	lp_image_close(img);
	free(dir);
}

/* A layer blob whose bytes are not its digest's: the walk fails, naming the layer. */
static void test_digest_mismatch(void **state)
{
	char *dir = make_layout("mismatch"), path[8300];
	struct lp_image_opts o = { .arch = "arm64" };
	struct lp_image *img;
	FILE *f;

	(void)state;
	assert_int_equal(lp_image_open(dir, LP_IMAGE_LAYOUT, &o, &img), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, img->layers[0].path);
	f = fopen(path, "r+b");
	assert_non_null(f);
	fputc('X', f);
	fclose(f);
	lp_errmsg_clear();
	assert_int_equal(lp_image_layers(img, drain_only, NULL), -LP_E_BADIMAGE);
	assert_non_null(strstr(lp_errmsg(), "does not match its digest"));
	assert_non_null(strstr(lp_errmsg(), img->layers[0].what));
	lp_image_close(img);
	/* A manifest blob whose bytes are not its digest's: refused at open. */
	{
		char idx[1024];

		snprintf(idx, sizeof(idx), "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
			 "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:%064d\",\"size\":2}]}", 0);
		put(dir, "blobs/sha256/0000000000000000000000000000000000000000000000000000000000000000", "{}", 2);
		put(dir, "index.json", idx, strlen(idx));
		lp_errmsg_clear();
		assert_int_equal(lp_image_open(dir, LP_IMAGE_LAYOUT, &o, &img), -LP_E_BADIMAGE);
		assert_non_null(strstr(lp_errmsg(), "does not match its descriptor"));
	}
	free(dir);
}

/* Digests that would be paths out of blobs/sha256: refused before any file is opened. */
static void test_digest_dotdot(void **state)
{
	static const char *const bad[] = {
		"sha256:../../../../etc/passwd",
		"sha256:../index.json",
		"sha512:0000000000000000000000000000000000000000000000000000000000000000",
		"sha256:000000000000000000000000000000000000000000000000000000000000000/",
	};
	char *dir = make_layout("dotdot");
	struct lp_image *img;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char idx[1024];

		snprintf(idx, sizeof(idx), "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
			 "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\",\"size\":30}]}", bad[i]);
		put(dir, "index.json", idx, strlen(idx));
		lp_errmsg_clear();
		assert_int_equal(lp_image_open(dir, LP_IMAGE_LAYOUT, NULL, &img), -LP_E_BADIMAGE);
		assert_non_null(strstr(lp_errmsg(), "no valid sha256 digest"));
	}
	/* And a layer digest in a (digest-correct) manifest. */
	{
		char man[512], mdg[72], idx[1024];

		snprintf(man, sizeof(man), "{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:%064d\",\"size\":2},"
			 "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\","
			 "\"digest\":\"sha256:../../../etc/shadow\",\"size\":1}]}", 0);
		blob(dir, man, strlen(man), mdg);
		snprintf(idx, sizeof(idx), "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
			 "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\",\"size\":%zu}]}", mdg, strlen(man));
		put(dir, "index.json", idx, strlen(idx));
		lp_errmsg_clear();
		assert_int_equal(lp_image_open(dir, LP_IMAGE_LAYOUT, NULL, &img), -LP_E_BADIMAGE);
		assert_non_null(strstr(lp_errmsg(), "layer 0 has no valid digest"));
	}
	free(dir);
}

static int setup(void **state)
{
	(void)state;
	return lp_tmpdir_create("test-image", &tmp);
}

static int teardown(void **state)
{
	(void)state;
	lp_rm_rf(tmp);
	free(tmp);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_platforms),
		cmocka_unit_test(test_oci_archive),
		cmocka_unit_test(test_docker_archive),
		cmocka_unit_test(test_digest_mismatch),
		cmocka_unit_test(test_digest_dotdot),
		cmocka_unit_test(test_tap_error),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
