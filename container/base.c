/* SPDX-License-Identifier: MIT */
/*
 * Base images: an OCI layout (oci:DIR[:TAG]), an oci-archive tar
 * (oci-archive:FILE[:TAG]) or a `docker save` tar (docker-archive:FILE),
 * read by the input module's image reader (input/image.c) like analyze
 * reads them. Their layer blobs are reused byte for byte (never
 * recompressed) so their digests stay what the registry already has; each
 * one is read once, its members walked in layer mode (a '..' member or a
 * hard link out of the root file system fails the import), its digest
 * checked by the reader and its diff_id and uncompressed size (for the
 * 10 GiB budget) measured here.
 */
#include "container/oci.h"
#include "cache/cache.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "core/hash.h"
#include "input/input.h"

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

/* ---- measuring a layer blob: uncompressed digest and size ---- */

enum { M_TAR, M_GZIP, M_ZSTD };

struct meter {
	int kind;
	struct lp_sha256 diff;
	uint64_t usize;
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

static const char *jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int add_layer(struct lp_oci_base *b, const struct lp_image_layer *L, uint64_t usize)
{
	struct lp_oci_blob *v = realloc(b->layers, (b->n + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	b->layers = v;
	v = &b->layers[b->n];
	memset(v, 0, sizeof(*v));
	v->media_type = L->media_type;
	v->size = L->size;
	v->usize = usize;
	v->from_base = true;
	snprintf(v->digest, sizeof(v->digest), "%s", L->digest);
	snprintf(v->diff_id, sizeof(v->diff_id), "%s", L->diff_id);
	v->created_by = strdup("base image layer");
	if (!v->created_by)
		return -ENOMEM;
	b->n++;
	return 0;
}

struct import {
	const char *blobdir;
	struct lp_cache *cache;	/* remembers layout blobs that passed, or NULL */
	struct lp_rootfs *fs;	/* every member, by layer, for the runnability check */
	size_t i;		/* the layer being imported */
	uint64_t *usize;	/* per layer */
	struct meter m;
	bool started;
	int outfd;		/* the copy in blobdir, or -1 */
	const struct lp_image_layer *L;
};

/* Every chunk of the blob, as the reader passes it: copied out and measured. */
static int tap(void *ud, const void *buf, size_t n)
{
	struct import *c = ud;
	int r;

	if (!c->started) {
		const uint8_t *q = buf;
		/* The descriptor's type when it has one; docker-archive's magic bytes. */
		int kind = c->L->media_type ? kind_of_media(c->L->media_type) :
			   n >= 2 && q[0] == 0x1f && q[1] == 0x8b ? M_GZIP :
			   n >= 4 && q[0] == 0x28 && q[1] == 0xb5 && q[2] == 0x2f && q[3] == 0xfd ? M_ZSTD : M_TAR;

		if ((r = meter_init(&c->m, kind, c->outfd)) < 0)
			return r;
		c->started = true;
	}
	if ((r = meter_feed(&c->m, buf, n)) < 0)
		return lp_fail(r, c->L->what, "cannot read layer: %s", lp_strerror(r));
	return 0;
}

/* Walk every member of the layer in layer mode while it is copied and measured. */
static int walk_layer(struct import *c, struct lp_image_blob *blob)
{
	struct lp_stream_opts so = {
		.max_expand = UINT64_MAX,	/* the 10 GiB budget is checked on the measured size */
	};
	const struct lp_member *mem;
	struct lp_stream *st;
	int r;

	lp_image_blob_tap(blob, tap, c);
	r = lp_image_blob_stream(blob, &so, &st);
	if (r < 0)
		return r;
	while ((r = lp_stream_next(st, &mem)) > 0)
		if ((r = lp_rootfs_add(c->fs, c->i, mem)) < 0)
			break;
	lp_stream_close(st);
	r = lp_image_blob_error(blob, r);
	if (r == 0)
		r = lp_image_blob_drain(blob);
	if (r == 0 && !c->started && (r = meter_init(&c->m, M_TAR, c->outfd)) == 0)
		c->started = true;
	return r;
}

static char *path_join(const char *a, const char *b)
{
	size_t len = strlen(a) + strlen(b) + 2;
	char *p = malloc(len);

	if (p)
		snprintf(p, len, "%s/%s", a, b);
	return p;
}

/* ---- layout blobs that passed before ---- */

/* What an import proved about a blob: its digest, the diff_id the config gives, this walker's version. */
static void known_key(const struct lp_image_layer *L, struct lp_cache_key *ret)
{
	struct lp_cache_keyer k;

	lp_cache_key_begin(&k, "base-layer/1");
	lp_cache_key_add_str(&k, L->digest);
	lp_cache_key_add_str(&k, L->diff_id);
	lp_cache_key_add_str(&k, L->media_type);
	lp_cache_key_end(&k, ret);
}

/* The layer's members (lp_rootfs_layer_save), by the blob's digest. */
static void listing_key(const struct lp_image_layer *L, struct lp_cache_key *ret)
{
	struct lp_cache_keyer k;

	lp_cache_key_begin(&k, "base-listing/1");
	lp_cache_key_add_str(&k, L->digest);
	lp_cache_key_end(&k, ret);
}

/*
 * A layout blob that passed this import before and has not changed since
 * (the stat index: same path, inode, size, mtime and ctime, and not racy,
 * so its bytes are the ones that were checked) is not read again: the
 * cache's copy of it is linked into place (its length and SHA-256 checked
 * through the new name, as every cached blob is). A big runtime base would
 * otherwise be decompressed and hashed on every warm build.
 *
 * The cache keeps its own copy, never a link to the base's file: a link
 * moves the linked inode's ctime, which would void the very stat record
 * that vouches for the base's blob. 1 done, 0 not, -errno.
 */
static int import_known(struct import *c, const char *src, const char *dst, const struct stat *st)
{
	struct lp_cache_key key, lkey;
	struct lp_cache_meta m, lm;
	struct stat dst_st;
	uint8_t d[32], want[32];
	unsigned char *listing = NULL;
	uint64_t size, llen;
	int r;

	if (!c->cache || !st || !lp_unhex(c->L->digest + 7, want, 32) || lstat(dst, &dst_st) == 0 ||
	    lp_cache_index_lookup(c->cache, src, st, d) != 1 || memcmp(d, want, 32) != 0)
		return 0;
	known_key(c->L, &key);
	listing_key(c->L, &lkey);
	if (lp_cache_get_mem(c->cache, LP_CACHE_BASE, &lkey, c->L->what, &lm, &listing, &llen) != 1)
		return 0;
	r = lp_cache_blob_get(c->cache, &key, c->L->what, dst, &m, &size);
	if (r <= 0) {
		free(listing);
		return r < 0 ? lp_fail(r, dst, "cannot write: %s", strerror(-r)) : 0;
	}
	if (memcmp(m.digest, want, 32) != 0 || size != (uint64_t)st->st_size || m.usize == 0 ||
	    lp_rootfs_layer_load(c->fs, c->i, listing, (size_t)llen) < 0) {
		free(listing);
		unlink(dst);
		return 0;
	}
	free(listing);
	c->usize[c->i] = m.usize;
	return 1;
}

/* After a full import of a layout blob: what made it pass, for the next build. */
static void remember(struct import *c, const char *src, const char *dst, const struct stat *st, uint64_t size)
{
	struct lp_cache_key key;
	struct lp_cache_meta m = { .usize = c->m.usize }, lm = { 0 };
	unsigned char *listing;
	size_t llen;

	if (!c->cache || !st || !lp_unhex(c->L->digest + 7, m.digest, 32) || !lp_unhex(c->L->diff_id + 7, m.diff_id, 32) ||
	    m.usize == 0)
		return;
	/* The copy and the listing first: an index record without them would only miss. */
	if (lp_rootfs_layer_save(c->fs, c->i, &listing, &llen) < 0)
		return;
	listing_key(c->L, &key);
	lp_cache_put_mem(c->cache, LP_CACHE_BASE, &key, &lm, listing, llen);
	free(listing);
	known_key(c->L, &key);
	lp_cache_blob_put(c->cache, &key, &m, dst, size);
	lp_cache_index_record(c->cache, src, st, m.digest);
}

/*
 * One layer: into blobdir under its digest (a layout's blob is hard-linked
 * when it can be, else copied while read; a tar member is written to a
 * temporary and renamed once its digest is known), its diff_id checked.
 */
static int import_layer(void *ud, struct lp_image *img, size_t i, struct lp_image_blob *blob)
{
	struct import *c = ud;
	const struct lp_image_layer *L = &img->layers[i];
	char tmp[64], diff[LP_OCI_DIGEST_LEN], *src = NULL, *dst = NULL, *tpath = NULL;
	struct stat st0, *st = NULL;
	int r = 0;

	memset(&c->m, 0, sizeof(c->m));
	c->i = i;
	c->started = false;
	c->outfd = -1;
	c->L = L;
	if (img->format == LP_IMAGE_LAYOUT) {
		src = path_join(img->input, L->path);
		dst = path_join(c->blobdir, L->digest + 7);
		if (!src || !dst) {
			r = -ENOMEM;
			goto out;
		}
		/* The stat of what is about to be read, as the index wants it. */
		if (c->cache && lp_image_blob_fd(blob) >= 0 && fstat(lp_image_blob_fd(blob), &st0) == 0)
			st = &st0;
		r = import_known(c, src, dst, st);
		if (r != 0) {
			r = r > 0 ? LP_IMAGE_SKIP : r;
			goto out;
		}
		/*
		 * Same file system and no cache: share the blob's inode. Else copy
		 * while reading it anyway (the cache then links that copy).
		 */
		if (st || (link(src, dst) < 0 && errno != EEXIST)) {
			/* Never truncate through a name that may be a link to another inode. */
			if (st)
				unlink(dst);
			c->outfd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
			if (c->outfd < 0) {
				r = lp_fail(-errno, dst, "cannot create: %s", strerror(errno));
				goto out;
			}
		}
	} else {
		snprintf(tmp, sizeof(tmp), ".base-%zu", i);
		tpath = path_join(c->blobdir, tmp);
		if (!tpath) {
			r = -ENOMEM;
			goto out;
		}
		c->outfd = open(tpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (c->outfd < 0) {
			r = lp_fail(-errno, tpath, "cannot create: %s", strerror(errno));
			goto out;
		}
	}
	r = walk_layer(c, blob);
	if (c->outfd >= 0 && close(c->outfd) < 0 && r == 0)
		r = lp_fail(-errno, tpath ? tpath : dst, "cannot write: %s", strerror(errno));
	c->outfd = -1;
	if (r < 0)
		goto out;
	if (meter_end(&c->m) < 0) {
		r = lp_fail(-LP_E_BADIMAGE, L->what, "truncated or corrupt compressed layer");
		goto out;
	}
	digest_final(&c->m.diff, diff);
	if (strcmp(diff, L->diff_id) != 0) {
		r = lp_fail(-LP_E_BADIMAGE, L->what, "layer diff_id is %s, config says %s", diff, L->diff_id);
		goto out;
	}
	c->usize[i] = c->m.usize;
	if (src && st)
		remember(c, src, dst, st, lp_image_blob_bytes(blob));
	if (tpath) {
		dst = path_join(c->blobdir, L->digest + 7);
		if (!dst)
			r = -ENOMEM;
		else if (rename(tpath, dst) < 0)
			r = lp_fail(-errno, dst, "cannot rename: %s", strerror(errno));
	}
out:
	if (c->outfd >= 0)
		close(c->outfd);
	if (r < 0 && tpath)
		unlink(tpath);
	meter_free(&c->m);
	free(src);
	free(dst);
	free(tpath);
	return r;
}

static int import(const char *path, enum lp_image_format fmt, const char *ref, const char *want_arch,
		  const char *blobdir, struct lp_cache *cache, struct lp_oci_base *b)
{
	struct lp_image_opts io = { .ref = ref, .arch = want_arch, .need_arch = true };
	struct import c = { .blobdir = blobdir, .cache = cache, .outfd = -1 };
	struct lp_image *img;
	const char *a, *os;
	int r = lp_image_open(path, fmt, &io, &img);

	if (r < 0)
		return r;
	if (fmt != LP_IMAGE_DOCKER_ARCHIVE && img->defaulted) {
		r = lp_fail(-LP_E_BADIMAGE, path, "several images and none tagged latest; name one with %s:%s:TAG",
			    fmt == LP_IMAGE_LAYOUT ? "oci" : "oci-archive", path);
		goto out;
	}
	b->config = img->config;
	img->config = NULL;
	a = jstr(b->config, "architecture");
	os = jstr(b->config, "os");
	if (!a || !os || strcmp(os, "linux") != 0) {
		r = lp_fail(-LP_E_BADIMAGE, path, "base is not a linux image");
		goto out;
	}
	snprintf(b->arch, sizeof(b->arch), "%s", a);
	if (!img->diff_ids_match) {
		r = lp_fail(-LP_E_BADIMAGE, path, "base config's rootfs.diff_ids does not match its %zu layers",
			    img->n_layers);
		goto out;
	}
	for (size_t i = 0; i < img->n_layers; i++) {
		const struct lp_image_layer *L = &img->layers[i];

		if (!*L->diff_id || (fmt != LP_IMAGE_DOCKER_ARCHIVE && (!L->media_type || L->size == UINT64_MAX))) {
			r = lp_fail(-LP_E_BADIMAGE, path, "base layer %zu has an unsupported media type or descriptor",
				    i + 1);
			goto out;
		}
	}
	c.usize = calloc(img->n_layers ? img->n_layers : 1, sizeof(*c.usize));
	if (!c.usize || lp_rootfs_new(img->n_layers, &b->fs) < 0) {
		r = -ENOMEM;
		goto out;
	}
	c.fs = b->fs;
	r = lp_image_layers(img, import_layer, &c);
	for (size_t i = 0; r == 0 && i < img->n_layers; i++) {
		const struct lp_image_layer *L = &img->layers[i];
		size_t k = L->dup_of != SIZE_MAX ? L->dup_of : i;

		/* A blob listed twice is one blob; its diff_id must still be the config's. */
		if (k != i && strcmp(L->diff_id, img->layers[k].diff_id) != 0)
			r = lp_fail(-LP_E_BADIMAGE, L->what, "layer diff_id is %s, config says %s",
				    img->layers[k].diff_id, L->diff_id);
		if (r == 0)
			r = add_layer(b, L, c.usize[k]);
	}
out:
	free(c.usize);
	lp_image_close(img);
	return r;
}

void lp_oci_base_free(struct lp_oci_base *b)
{
	cJSON_Delete(b->config);
	lp_rootfs_free(b->fs);
	for (size_t i = 0; i < b->n; i++)
		free(b->layers[i].created_by);
	free(b->layers);
	memset(b, 0, sizeof(*b));
}

int lp_oci_base_import(const char *spec, const char *want_arch, const char *blobdir, struct lp_cache *cache,
		       struct lp_oci_base *ret)
{
	enum lp_image_format fmt;
	char *s, *colon, *ref = NULL;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (strncmp(spec, "oci:", 4) == 0) {
		fmt = LP_IMAGE_LAYOUT;
		s = strdup(spec + 4);
	} else if (strncmp(spec, "oci-archive:", 12) == 0) {
		fmt = LP_IMAGE_OCI_ARCHIVE;
		s = strdup(spec + 12);
	} else if (strncmp(spec, "docker-archive:", 15) == 0) {
		fmt = LP_IMAGE_DOCKER_ARCHIVE;
		s = strdup(spec + 15);
	} else if (strncmp(spec, "docker://", 9) == 0) {
		return lp_fail(-LP_E_BADIMAGE, NULL, "this build has no registry client");
	} else {
		return lp_fail(-LP_E_USAGE, spec,
			       "unknown base; use oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE");
	}
	if (!s)
		return -ENOMEM;
	if (fmt == LP_IMAGE_DOCKER_ARCHIVE) {
		/* docker-archive:FILE[:name:tag], as skopeo spells it. */
		colon = strchr(s, ':');
	} else {
		/* oci:DIR[:TAG] - a ':' after the last '/' starts the tag. */
		char *slash = strrchr(s, '/');

		colon = strrchr(s, ':');
		if (colon && slash && colon < slash)
			colon = NULL;
	}
	if (colon) {
		*colon = '\0';
		ref = colon + 1;
	}
	r = import(s, fmt, ref && *ref ? ref : NULL, want_arch ? want_arch : "amd64", blobdir, cache, ret);
	free(s);
	if (r < 0)
		lp_oci_base_free(ret);
	return r;
}
