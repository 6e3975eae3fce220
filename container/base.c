/* SPDX-License-Identifier: MIT */
/*
 * Base images: an OCI layout (oci:DIR[:TAG]) or a `docker save` tar
 * (docker-archive:FILE). Their layer blobs are reused byte for byte (never
 * recompressed) so their digests stay what the registry already has; each
 * one is read once to check its digest and diff_id and to learn its
 * uncompressed size for the 10 GiB budget.
 */
#include "container/oci.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "core/hash.h"
#include "input/input.h"

#include <archive.h>
#include <archive_entry.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define CHUNK		(1u << 20)
#define JSON_MAX	(16u << 20)

#define MT_OCI_INDEX		LP_OCI_MT_INDEX
#define MT_DOCKER_LIST		"application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST	"application/vnd.docker.distribution.manifest.v2+json"

const char *lp_oci_layer_media_type(const char *mt)
{
	static const char *const map[][2] = {
		{ LP_OCI_MT_TAR, LP_OCI_MT_TAR },
		{ LP_OCI_MT_TAR_GZIP, LP_OCI_MT_TAR_GZIP },
		{ LP_OCI_MT_TAR_ZSTD, LP_OCI_MT_TAR_ZSTD },
		{ "application/vnd.docker.image.rootfs.diff.tar", LP_OCI_MT_TAR },
		{ "application/vnd.docker.image.rootfs.diff.tar.gzip", LP_OCI_MT_TAR_GZIP },
		{ "application/vnd.docker.image.rootfs.diff.tar.zstd", LP_OCI_MT_TAR_ZSTD },
	};

	if (!mt)
		return NULL;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(mt, map[i][0]) == 0)
			return map[i][1];
	return NULL;
}

/* ---- reading a layer blob: digest, uncompressed digest and size ---- */

enum { M_TAR, M_GZIP, M_ZSTD };

struct meter {
	int kind;
	struct lp_sha256 blob, diff;
	uint64_t size, usize;
	z_stream zs;
	bool zinit, zend;
	ZSTD_DCtx *dz;
	size_t zlast;
	uint8_t *tmp;
	int outfd;		/* copy the blob bytes here, or -1 */
};

static int meter_init(struct meter *m, int kind, int outfd)
{
	memset(m, 0, sizeof(*m));
	m->kind = kind;
	m->outfd = outfd;
	lp_sha256_init(&m->blob);
	lp_sha256_init(&m->diff);
	m->tmp = malloc(CHUNK);
	if (!m->tmp)
		return -ENOMEM;
	if (kind == M_GZIP) {
		if (inflateInit2(&m->zs, 15 + 16) != Z_OK)
			return -ENOMEM;
		m->zinit = true;
	} else if (kind == M_ZSTD) {
		m->dz = ZSTD_createDCtx();
		if (!m->dz)
			return -ENOMEM;
	}
	return 0;
}

static void meter_free(struct meter *m)
{
	if (m->zinit)
		inflateEnd(&m->zs);
	ZSTD_freeDCtx(m->dz);
	free(m->tmp);
	m->zinit = false;
	m->dz = NULL;
	m->tmp = NULL;
}

static void meter_out(struct meter *m, const void *p, size_t n)
{
	lp_sha256_update(&m->diff, p, n);
	m->usize += n;
}

static int meter_feed(struct meter *m, const void *buf, size_t n)
{
	int r;

	lp_sha256_update(&m->blob, buf, n);
	m->size += n;
	if (m->outfd >= 0 && (r = lp_write_all(m->outfd, buf, n)) < 0)
		return r;
	if (m->kind == M_TAR) {
		meter_out(m, buf, n);
		return 0;
	}
	if (m->kind == M_ZSTD) {
		ZSTD_inBuffer in = { buf, n, 0 };

		while (in.pos < in.size) {
			ZSTD_outBuffer out = { m->tmp, CHUNK, 0 };

			m->zlast = ZSTD_decompressStream(m->dz, &out, &in);
			if (ZSTD_isError(m->zlast))
				return -LP_E_BADIMAGE;
			meter_out(m, m->tmp, out.pos);
		}
		return 0;
	}
	m->zs.next_in = (Bytef *)buf;
	m->zs.avail_in = (uInt)n;
	while (m->zs.avail_in) {
		int zr;

		/* Concatenated gzip members are one valid stream (pigz -i, appends). */
		if (m->zend) {
			inflateReset(&m->zs);
			m->zend = false;
		}
		m->zs.next_out = m->tmp;
		m->zs.avail_out = CHUNK;
		zr = inflate(&m->zs, Z_NO_FLUSH);
		if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
			return -LP_E_BADIMAGE;
		meter_out(m, m->tmp, CHUNK - m->zs.avail_out);
		if (zr == Z_STREAM_END)
			m->zend = true;
	}
	/* Drain output that did not fit. */
	while (!m->zend) {
		int zr;

		m->zs.next_out = m->tmp;
		m->zs.avail_out = CHUNK;
		zr = inflate(&m->zs, Z_NO_FLUSH);
		if (zr == Z_BUF_ERROR || CHUNK == m->zs.avail_out)
			break;
		if (zr != Z_OK && zr != Z_STREAM_END)
			return -LP_E_BADIMAGE;
		meter_out(m, m->tmp, CHUNK - m->zs.avail_out);
		if (zr == Z_STREAM_END)
			m->zend = true;
	}
	return 0;
}

static int meter_end(struct meter *m)
{
	if (m->kind == M_GZIP && !m->zend)
		return -LP_E_BADIMAGE;
	if (m->kind == M_ZSTD && m->zlast != 0)
		return -LP_E_BADIMAGE;
	return 0;
}

static void digest_final(struct lp_sha256 *c, char out[LP_OCI_DIGEST_LEN])
{
	uint8_t d[32];

	lp_sha256_final(c, d);
	memcpy(out, "sha256:", 7);
	lp_hex(d, 32, out + 7);
}

static int kind_of_media(const char *mt)
{
	if (strcmp(mt, LP_OCI_MT_TAR_GZIP) == 0)
		return M_GZIP;
	if (strcmp(mt, LP_OCI_MT_TAR_ZSTD) == 0)
		return M_ZSTD;
	return M_TAR;
}

static bool valid_sha256(const char *d)
{
	if (!d || strncmp(d, "sha256:", 7) != 0 || strlen(d) != 71)
		return false;
	for (const char *p = d + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

static char *path_join3(const char *a, const char *b, const char *c)
{
	size_t len = strlen(a) + strlen(b) + strlen(c) + 3;
	char *p = malloc(len);

	if (p)
		snprintf(p, len, "%s/%s%s%s", a, b, *c ? "/" : "", c);
	return p;
}

/* ---- small JSON helpers ---- */

static const char *jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int parse_json(const char *what, const char *buf, size_t len, cJSON **ret)
{
	cJSON *j = cJSON_ParseWithLength(buf, len);

	if (!j)
		return lp_fail(-LP_E_BADIMAGE, what, "not valid JSON");
	*ret = j;
	return 0;
}

/* Read a small blob of an OCI layout, checking its digest and (if known) size. */
static int read_blob_json(const char *dir, const cJSON *desc, cJSON **ret)
{
	const char *digest = jstr(desc, "digest");
	const cJSON *size = cJSON_GetObjectItemCaseSensitive(desc, "size");
	char *path, *buf = NULL;
	char got[LP_OCI_DIGEST_LEN];
	struct lp_sha256 c;
	size_t len;
	int r;

	if (!valid_sha256(digest))
		return lp_fail(-LP_E_BADIMAGE, dir, "descriptor without a usable sha256 digest");
	path = path_join3(dir, "blobs/sha256", digest + 7);
	if (!path)
		return -ENOMEM;
	r = lp_read_file(path, JSON_MAX, &buf, &len);
	if (r < 0)
		goto out;
	lp_sha256_init(&c);
	lp_sha256_update(&c, buf, len);
	digest_final(&c, got);
	if (strcmp(got, digest) != 0 || (cJSON_IsNumber(size) && (double)len != size->valuedouble)) {
		r = lp_fail(-LP_E_BADIMAGE, path, "blob does not match its descriptor");
		goto out;
	}
	r = parse_json(path, buf, len, ret);
out:
	free(buf);
	free(path);
	return r;
}

static bool is_index(const char *mt)
{
	return mt && (strcmp(mt, MT_OCI_INDEX) == 0 || strcmp(mt, MT_DOCKER_LIST) == 0);
}

/* From an index, the linux manifest for arch (attestations have platform unknown). */
static const cJSON *pick_platform(const cJSON *index, const char *arch)
{
	const cJSON *m, *arr = cJSON_GetObjectItemCaseSensitive(index, "manifests");

	cJSON_ArrayForEach(m, arr) {
		const cJSON *pl = cJSON_GetObjectItemCaseSensitive(m, "platform");
		const char *os = jstr(pl, "os"), *a = jstr(pl, "architecture");

		if (os && a && strcmp(os, "linux") == 0 && strcmp(a, arch) == 0 && !is_index(jstr(m, "mediaType")))
			return m;
	}
	return NULL;
}

static int add_layer(struct lp_oci_base *b, const char *mt, const struct meter *m, const char *diff)
{
	struct lp_oci_blob *v = realloc(b->layers, (b->n + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	b->layers = v;
	v = &b->layers[b->n];
	memset(v, 0, sizeof(*v));
	v->media_type = mt;
	v->size = m->size;
	v->usize = m->usize;
	v->from_base = true;
	snprintf(v->diff_id, sizeof(v->diff_id), "%s", diff);
	v->created_by = strdup("base image layer");
	if (!v->created_by)
		return -ENOMEM;
	b->n++;
	return 0;
}

/* Check a measured layer against its descriptor digest and the config's diff_id. */
static int check_layer(const char *what, struct meter *m, const char *want_digest, uint64_t want_size,
		       const char *want_diff, char digest[LP_OCI_DIGEST_LEN])
{
	char diff[LP_OCI_DIGEST_LEN];

	if (meter_end(m) < 0)
		return lp_fail(-LP_E_BADIMAGE, what, "truncated or corrupt compressed layer");
	digest_final(&m->blob, digest);
	digest_final(&m->diff, diff);
	if (want_digest && strcmp(digest, want_digest) != 0)
		return lp_fail(-LP_E_BADIMAGE, what, "layer digest is %s, expected %s", digest, want_digest);
	if (want_size != UINT64_MAX && m->size != want_size)
		return lp_fail(-LP_E_BADIMAGE, what, "layer is %llu bytes, descriptor says %llu",
			       (unsigned long long)m->size, (unsigned long long)want_size);
	if (strcmp(diff, want_diff) != 0)
		return lp_fail(-LP_E_BADIMAGE, what, "layer diff_id is %s, config says %s", diff, want_diff);
	return 0;
}

/*
 * A layer's bytes on their way to the digests: pulled by the input reader
 * (layer mode), which walks the members, and fed to the meter as they pass,
 * so each base layer is read once and never carried into the output with
 * '..' members or hard links leaving the root file system.
 */
struct pump {
	struct meter *m;
	int fd;			/* the blob file, or -1 */
	struct archive *outer;	/* or the current member of a docker-archive */
	int outfd;		/* docker-archive: copy here (the meter starts on the first block) */
	bool started;
	int *kind;		/* docker-archive: the kind found from the magic bytes */
	uint8_t *buf;
	const char *what;
	int err;
};

static ssize_t pump_read(void *ud, const void **out)
{
	struct pump *p = ud;
	ssize_t got;
	int r;

	if (p->err)
		return -1;
	if (p->outer) {
		const void *b;
		size_t n;
		la_int64_t off;
		int ar = archive_read_data_block(p->outer, &b, &n, &off);

		if (ar == ARCHIVE_EOF)
			return 0;
		if (ar != ARCHIVE_OK) {
			p->err = lp_fail(-LP_E_BADIMAGE, p->what, "cannot read layer: %s", lp_archive_error(p->outer));
			return -1;
		}
		*out = b;
		got = (ssize_t)n;
	} else {
		do
			got = read(p->fd, p->buf, CHUNK);
		while (got < 0 && errno == EINTR);
		if (got < 0) {
			p->err = lp_fail(-errno, p->what, "read failed: %s", strerror(errno));
			return -1;
		}
		*out = p->buf;
	}
	if (got == 0)
		return 0;
	if (!p->started) {
		const uint8_t *q = *out;
		size_t n = (size_t)got;

		*p->kind = n >= 2 && q[0] == 0x1f && q[1] == 0x8b ? M_GZIP :
			   n >= 4 && q[0] == 0x28 && q[1] == 0xb5 && q[2] == 0x2f && q[3] == 0xfd ? M_ZSTD : M_TAR;
		if ((r = meter_init(p->m, *p->kind, p->outfd)) < 0) {
			p->err = r;
			return -1;
		}
		p->started = true;
	}
	if ((r = meter_feed(p->m, *out, (size_t)got)) < 0) {
		p->err = lp_fail(r, p->what, "cannot read layer: %s", lp_strerror(r));
		return -1;
	}
	return got;
}

/* Walk every member of the layer in layer mode while it is measured; then the rest of the bytes. */
static int pump_layer(struct pump *p)
{
	struct lp_stream_opts so = {
		.name = p->what,
		.layer = true,
		.only_tar = true,
		.max_expand = UINT64_MAX,	/* the 10 GiB budget is checked on the measured size */
	};
	const struct lp_member *mem;
	struct lp_stream *st;
	const void *b;
	ssize_t got;
	int r = lp_stream_open_cb(pump_read, p, &so, &st);

	if (r < 0)
		return p->err ? p->err : r;
	while ((r = lp_stream_next(st, &mem)) > 0)
		;
	lp_stream_close(st);
	if (r < 0)
		return p->err ? p->err : r;
	while ((got = pump_read(p, &b)) > 0)
		;
	return got < 0 ? p->err : 0;
}

static int measure_file(const char *src, const char *what, int kind, int outfd, struct meter *m)
{
	struct pump p = { .m = m, .outer = NULL, .outfd = outfd, .started = true, .what = what };
	int r;

	(void)kind;
	r = meter_init(m, kind, outfd);
	if (r < 0)
		return r;
	p.kind = &kind;
	p.buf = malloc(CHUNK);
	if (!p.buf)
		return -ENOMEM;
	p.fd = open(src, O_RDONLY | O_CLOEXEC);
	if (p.fd < 0) {
		free(p.buf);
		return lp_fail(-errno, src, "cannot open: %s", strerror(errno));
	}
	(void)posix_fadvise(p.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	r = pump_layer(&p);
	close(p.fd);
	free(p.buf);
	return r;
}

static int config_diff_ids(const cJSON *config, size_t n, const cJSON **ret)
{
	const cJSON *rootfs = cJSON_GetObjectItemCaseSensitive(config, "rootfs");
	const cJSON *ids = cJSON_GetObjectItemCaseSensitive(rootfs, "diff_ids");

	if (!cJSON_IsArray(ids) || (size_t)cJSON_GetArraySize(ids) != n)
		return lp_fail(-LP_E_BADIMAGE, NULL, "base config's rootfs.diff_ids does not match its %zu layers", n);
	*ret = ids;
	return 0;
}

static int base_arch(struct lp_oci_base *b, const char *what)
{
	const char *a = jstr(b->config, "architecture"), *os = jstr(b->config, "os");

	if (!a || !os || strcmp(os, "linux") != 0)
		return lp_fail(-LP_E_BADIMAGE, what, "base is not a linux image");
	snprintf(b->arch, sizeof(b->arch), "%s", a);
	return 0;
}

static int import_oci(const char *dir, const char *tag, const char *want_arch, const char *blobdir,
		      struct lp_oci_base *b)
{
	cJSON *index = NULL, *inner = NULL, *manifest = NULL;
	const cJSON *desc = NULL, *m, *arr, *ids, *layers;
	char *path = NULL;
	size_t count, i = 0;
	int r;

	path = path_join3(dir, "index.json", "");
	if (!path)
		return -ENOMEM;
	{
		char *buf;
		size_t len;

		r = lp_read_file(path, JSON_MAX, &buf, &len);
		if (r < 0)
			goto out;
		r = parse_json(path, buf, len, &index);
		free(buf);
		if (r < 0)
			goto out;
	}
	arr = cJSON_GetObjectItemCaseSensitive(index, "manifests");
	count = (size_t)cJSON_GetArraySize(arr);
	cJSON_ArrayForEach(m, arr) {
		const char *ref = jstr(cJSON_GetObjectItemCaseSensitive(m, "annotations"),
				       "org.opencontainers.image.ref.name");

		if (tag ? (ref && strcmp(ref, tag) == 0) : (count == 1 || (ref && strcmp(ref, "latest") == 0))) {
			desc = m;
			break;
		}
	}
	if (!desc) {
		r = lp_fail(-LP_E_BADIMAGE, dir, tag ? "no image tagged \"%s\" in this layout" :
			    "%s: several images and none tagged latest; name one with oci:DIR:TAG", tag ? tag : "");
		goto out;
	}
	if (is_index(jstr(desc, "mediaType"))) {
		r = read_blob_json(dir, desc, &inner);
		if (r < 0)
			goto out;
		desc = pick_platform(inner, want_arch);
		if (!desc) {
			r = lp_fail(-LP_E_BADIMAGE, dir, "base index has no linux/%s image", want_arch);
			goto out;
		}
	}
	r = read_blob_json(dir, desc, &manifest);
	if (r < 0)
		goto out;
	r = read_blob_json(dir, cJSON_GetObjectItemCaseSensitive(manifest, "config"), &b->config);
	if (r < 0)
		goto out;
	r = base_arch(b, dir);
	if (r < 0)
		goto out;
	layers = cJSON_GetObjectItemCaseSensitive(manifest, "layers");
	r = config_diff_ids(b->config, (size_t)cJSON_GetArraySize(layers), &ids);
	if (r < 0)
		goto out;
	cJSON_ArrayForEach(m, layers) {
		const char *digest = jstr(m, "digest");
		const char *mt = lp_oci_layer_media_type(jstr(m, "mediaType"));
		const cJSON *sz = cJSON_GetObjectItemCaseSensitive(m, "size");
		const cJSON *id = cJSON_GetArrayItem(ids, (int)i++);
		char got[LP_OCI_DIGEST_LEN];
		struct meter me = { 0 };
		char *src, *dst;
		int outfd = -1;

		if (!mt || !valid_sha256(digest) || !cJSON_IsNumber(sz) || !cJSON_IsString(id)) {
			r = lp_fail(-LP_E_BADIMAGE, dir, "base layer %zu has an unsupported media type or descriptor", i);
			goto out;
		}
		src = path_join3(dir, "blobs/sha256", digest + 7);
		dst = path_join3(blobdir, digest + 7, "");
		if (!src || !dst) {
			free(src);
			free(dst);
			r = -ENOMEM;
			goto out;
		}
		/* Same file system: share the blob's inode; else copy while reading it anyway. */
		if (link(src, dst) < 0 && errno != EEXIST) {
			outfd = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
			if (outfd < 0)
				r = lp_fail(-errno, dst, "cannot create: %s", strerror(errno));
		}
		if (r == 0) {
			char what[PATH_MAX + 96];

			snprintf(what, sizeof(what), "%s: layer %s", dir, digest);
			r = measure_file(src, what, kind_of_media(mt), outfd, &me);
		}
		if (r == 0)
			r = check_layer(src, &me, digest, (uint64_t)sz->valuedouble, id->valuestring, got);
		if (r == 0)
			r = add_layer(b, mt, &me, id->valuestring);
		if (r == 0)
			snprintf(b->layers[b->n - 1].digest, LP_OCI_DIGEST_LEN, "%s", digest);
		meter_free(&me);
		if (outfd >= 0 && close(outfd) < 0 && r == 0)
			r = lp_fail(-errno, dst, "cannot write: %s", strerror(errno));
		free(src);
		free(dst);
		if (r < 0)
			goto out;
	}
out:
	cJSON_Delete(index);
	cJSON_Delete(inner);
	cJSON_Delete(manifest);
	free(path);
	return r;
}

/* ---- docker-archive ---- */

static struct archive *open_tar(const char *file, int *r)
{
	struct archive *a = archive_read_new();

	if (!a) {
		*r = -ENOMEM;
		return NULL;
	}
	archive_read_support_format_tar(a);
	archive_read_support_filter_all(a);
	if (archive_read_open_filename(a, file, 1 << 16) != ARCHIVE_OK) {
		*r = lp_fail(-LP_E_BADIMAGE, file, "cannot read: %s", lp_archive_error(a));
		archive_read_free(a);
		return NULL;
	}
	*r = 0;
	return a;
}

static const char *member_name(struct archive_entry *ae)
{
	const char *n = archive_entry_pathname(ae);

	while (n && n[0] == '.' && n[1] == '/')
		n += 2;
	return n ? n : "";
}

static int read_member(struct archive *a, const char *file, size_t max, char **ret, size_t *ret_len)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		la_ssize_t got;

		if (len + 1 >= cap) {
			char *nb;

			if (cap >= max) {
				free(buf);
				return lp_fail(-LP_E_BADIMAGE, file, "metadata member too large");
			}
			nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		got = archive_read_data(a, buf + len, cap - len - 1);
		if (got < 0) {
			free(buf);
			return lp_fail(-LP_E_BADIMAGE, file, "%s", lp_archive_error(a));
		}
		if (got == 0)
			break;
		len += (size_t)got;
	}
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	return 0;
}

struct dlayer {
	const char *name;	/* member path from manifest.json */
	struct meter m;
	bool done;
	int kind;
	char digest[LP_OCI_DIGEST_LEN];
};

/* Stream one layer member into blobdir, measuring it; the kind comes from the magic bytes. */
static int import_member(struct archive *a, const char *file, const char *blobdir, size_t seq, struct dlayer *d)
{
	char tmp[64], *tpath = NULL, *fpath = NULL;
	bool started = false;
	int fd = -1, r = 0;

	snprintf(tmp, sizeof(tmp), ".base-%zu", seq);
	tpath = path_join3(blobdir, tmp, "");
	if (!tpath)
		return -ENOMEM;
	fd = open(tpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = lp_fail(-errno, tpath, "cannot create: %s", strerror(errno));
		goto out;
	}
	{
		char what[PATH_MAX + 96];
		struct pump p = { .m = &d->m, .fd = -1, .outer = a, .outfd = fd, .kind = &d->kind, .what = what };

		snprintf(what, sizeof(what), "%s: layer %s", file, d->name);
		r = pump_layer(&p);
		started = p.started;
		if (r < 0)
			goto out;
	}
	if (!started && (r = meter_init(&d->m, M_TAR, fd)) < 0)
		goto out;
	if (close(fd) < 0) {
		fd = -1;
		r = lp_fail(-errno, tpath, "cannot write: %s", strerror(errno));
		goto out;
	}
	fd = -1;
	d->done = true;
	if (meter_end(&d->m) < 0) {
		r = lp_fail(-LP_E_BADIMAGE, file, "%s: truncated or corrupt compressed layer", d->name);
		goto out;
	}
	{
		struct lp_sha256 c = d->m.blob;

		digest_final(&c, d->digest);
	}
	fpath = path_join3(blobdir, d->digest + 7, "");
	if (!fpath) {
		r = -ENOMEM;
		goto out;
	}
	if (rename(tpath, fpath) < 0)
		r = lp_fail(-errno, fpath, "cannot rename: %s", strerror(errno));
out:
	if (fd >= 0)
		close(fd);
	if (r < 0)
		unlink(tpath);
	free(tpath);
	free(fpath);
	return r;
}

static int import_docker(const char *file, const char *ref, const char *blobdir, struct lp_oci_base *b)
{
	struct archive *a;
	struct archive_entry *ae;
	cJSON *manifest = NULL;
	const cJSON *img = NULL, *m, *layers, *ids;
	const char *cfgname;
	struct dlayer *dl = NULL;
	size_t nl = 0, seq = 0;
	int r;

	a = open_tar(file, &r);
	if (!a)
		return r;
	while (archive_read_next_header(a, &ae) == ARCHIVE_OK) {
		if (strcmp(member_name(ae), "manifest.json") == 0) {
			char *buf;
			size_t len;

			r = read_member(a, file, JSON_MAX, &buf, &len);
			if (r == 0) {
				r = parse_json(file, buf, len, &manifest);
				free(buf);
			}
			break;
		}
	}
	archive_read_free(a);
	a = NULL;
	if (r < 0)
		goto out;
	if (!manifest) {
		r = lp_fail(-LP_E_BADIMAGE, file, "no manifest.json: not a docker-archive");
		goto out;
	}
	cJSON_ArrayForEach(m, manifest) {
		const cJSON *t, *tags = cJSON_GetObjectItemCaseSensitive(m, "RepoTags");

		if (!ref) {
			img = m;
			break;
		}
		cJSON_ArrayForEach(t, tags)
			if (cJSON_IsString(t) && strcmp(t->valuestring, ref) == 0)
				img = m;
		if (img)
			break;
	}
	cfgname = jstr(img, "Config");
	layers = cJSON_GetObjectItemCaseSensitive(img, "Layers");
	if (!img || !cfgname || !cJSON_IsArray(layers)) {
		r = lp_fail(-LP_E_BADIMAGE, file, ref ? "no image %s in manifest.json" : "manifest.json names no image",
			    ref ? ref : "");
		goto out;
	}
	nl = (size_t)cJSON_GetArraySize(layers);
	dl = calloc(nl ? nl : 1, sizeof(*dl));
	if (!dl) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nl; i++) {
		dl[i].name = cJSON_GetArrayItem(layers, (int)i)->valuestring;
		if (!dl[i].name) {
			r = lp_fail(-LP_E_BADIMAGE, file, "manifest.json layer %zu is not a path", i + 1);
			goto out;
		}
	}
	a = open_tar(file, &r);
	if (!a)
		goto out;
	while ((r = archive_read_next_header(a, &ae)) == ARCHIVE_OK) {
		const char *name = member_name(ae);
		size_t first = nl;

		r = 0;
		if (strcmp(name, cfgname) == 0 && !b->config) {
			char *buf;
			size_t len;

			r = read_member(a, file, JSON_MAX, &buf, &len);
			if (r == 0) {
				r = parse_json(file, buf, len, &b->config);
				free(buf);
			}
			if (r < 0)
				goto out;
			continue;
		}
		for (size_t i = 0; i < nl; i++) {
			if (dl[i].done || strcmp(dl[i].name, name) != 0)
				continue;
			if (first == nl) {
				first = i;
				r = import_member(a, file, blobdir, seq++, &dl[i]);
				if (r < 0)
					goto out;
			} else {
				/* The same layer listed twice: share the measurement. */
				dl[i].done = true;
				dl[i].kind = dl[first].kind;
				dl[i].m.size = dl[first].m.size;
				dl[i].m.usize = dl[first].m.usize;
				dl[i].m.diff = dl[first].m.diff;
				memcpy(dl[i].digest, dl[first].digest, sizeof(dl[i].digest));
			}
		}
	}
	if (r != ARCHIVE_EOF) {
		r = lp_fail(-LP_E_BADIMAGE, file, "%s", lp_archive_error(a));
		goto out;
	}
	r = 0;
	if (!b->config) {
		r = lp_fail(-LP_E_BADIMAGE, file, "config %s not found in the archive", cfgname);
		goto out;
	}
	for (size_t i = 0; i < nl; i++) {
		if (!dl[i].done) {
			r = lp_fail(-LP_E_BADIMAGE, file, "layer %s not found in the archive (symlinked layers are not supported)",
				    dl[i].name);
			goto out;
		}
	}
	r = base_arch(b, file);
	if (r < 0)
		goto out;
	r = config_diff_ids(b->config, nl, &ids);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < nl; i++) {
		const cJSON *id = cJSON_GetArrayItem(ids, (int)i);
		char got[LP_OCI_DIGEST_LEN];
		const char *mt = dl[i].kind == M_GZIP ? LP_OCI_MT_TAR_GZIP :
				 dl[i].kind == M_ZSTD ? LP_OCI_MT_TAR_ZSTD : LP_OCI_MT_TAR;

		/* meter_end() already ran; check only the diff_id here. */
		dl[i].m.kind = M_TAR;
		if (!cJSON_IsString(id)) {
			r = lp_fail(-LP_E_BADIMAGE, file, "bad diff_id %zu in the base config", i + 1);
			goto out;
		}
		r = check_layer(dl[i].name, &dl[i].m, NULL, UINT64_MAX, id->valuestring, got);
		if (r == 0)
			r = add_layer(b, mt, &dl[i].m, id->valuestring);
		if (r < 0)
			goto out;
		snprintf(b->layers[b->n - 1].digest, LP_OCI_DIGEST_LEN, "%s", dl[i].digest);
	}
out:
	for (size_t i = 0; i < nl; i++)
		meter_free(&dl[i].m);
	free(dl);
	if (a)
		archive_read_free(a);
	cJSON_Delete(manifest);
	return r;
}

void lp_oci_base_free(struct lp_oci_base *b)
{
	cJSON_Delete(b->config);
	for (size_t i = 0; i < b->n; i++)
		free(b->layers[i].created_by);
	free(b->layers);
	memset(b, 0, sizeof(*b));
}

int lp_oci_base_import(const char *spec, const char *want_arch, const char *blobdir, struct lp_oci_base *ret)
{
	char *s = NULL;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (strncmp(spec, "oci:", 4) == 0) {
		char *colon, *slash, *tag = NULL;

		s = strdup(spec + 4);
		if (!s)
			return -ENOMEM;
		/* oci:DIR[:TAG] - a ':' after the last '/' starts the tag. */
		colon = strrchr(s, ':');
		slash = strrchr(s, '/');
		if (colon && (!slash || colon > slash)) {
			*colon = '\0';
			tag = colon + 1;
		}
		r = import_oci(s, tag && *tag ? tag : NULL, want_arch ? want_arch : "amd64", blobdir, ret);
	} else if (strncmp(spec, "docker-archive:", 15) == 0) {
		char *colon, *ref = NULL;

		s = strdup(spec + 15);
		if (!s)
			return -ENOMEM;
		/* docker-archive:FILE[:name:tag], as skopeo spells it. */
		colon = strchr(s, ':');
		if (colon) {
			*colon = '\0';
			ref = colon + 1;
		}
		r = import_docker(s, ref && *ref ? ref : NULL, blobdir, ret);
	} else {
		return lp_fail(-LP_E_USAGE, spec, "unknown base; use oci:DIR[:TAG] or docker-archive:FILE");
	}
	free(s);
	if (r < 0)
		lp_oci_base_free(ret);
	return r;
}
