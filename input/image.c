/* SPDX-License-Identifier: MIT */
/*
 * Container images as input: an OCI layout directory, an oci-archive tar
 * or a docker-archive tar, read the same way for container --base and for
 * analyze. An image is untrusted input like any archive: digests are
 * checked before they become paths, JSON reads are capped, and a layer's
 * blob is handed out as a byte source whose digest and size are verified
 * when it is drained, so a blob that lies fails the read.
 *
 * Tars are read twice: once for the small JSON members (index, manifests,
 * configs; skipped over cheaply elsewhere), then once for the layers of the
 * image chosen, streamed without staging.
 */
#include "core/progress.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "core/hash.h"
#include "core/elf.h"
#include "input/input.h"

#include <archive.h>
#include <archive_entry.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define JSON_MAX	(16u << 20)	/* one index, manifest or config */
#define JSON_TOTAL	(256u << 20)	/* all JSON members of one tar */
#define MAX_LAYERS	1000u
#define MAX_MEMBERS	4000000u
#define CHUNK		(256u << 10)

#define MT_TAR		"application/vnd.oci.image.layer.v1.tar"
#define MT_TAR_GZIP	"application/vnd.oci.image.layer.v1.tar+gzip"
#define MT_TAR_ZSTD	"application/vnd.oci.image.layer.v1.tar+zstd"

struct jdoc {
	char *name;	/* cleaned member name */
	char *data;
	size_t len;
};

struct priv {
	struct jdoc *json;
	size_t n_json, total;
	struct lp_strv alias_from, alias_to;	/* hard links of the outer tar */
};

struct lp_image_blob {
	struct lp_image *img;
	struct lp_image_layer *L;
	int fd;
	struct archive *outer;
	uint8_t *buf;
	struct lp_sha256 sha;
	uint64_t n;
	uint8_t magic[4];
	size_t nmagic;
	bool eof, drained;
	int rc;		/* the first error, also the drain's result */
	lp_image_tap_fn tap;
	void *tap_ud;
	char msg[1024];	/* rc's message: a reader above (lp_stream) records its own over it */
};

const char *lp_image_layer_media_type(const char *mt)
{
	static const char *const map[][2] = {
		{ MT_TAR, MT_TAR },
		{ MT_TAR_GZIP, MT_TAR_GZIP },
		{ MT_TAR_ZSTD, MT_TAR_ZSTD },
		{ "application/vnd.docker.image.rootfs.diff.tar", MT_TAR },
		{ "application/vnd.docker.image.rootfs.diff.tar.gzip", MT_TAR_GZIP },
		{ "application/vnd.docker.image.rootfs.diff.tar.zstd", MT_TAR_ZSTD },
	};

	if (!mt)
		return NULL;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(mt, map[i][0]) == 0)
			return map[i][1];
	return NULL;
}

/* ---- names and digests ---- */

static bool hex64(const char *p)
{
	size_t n = 0;

	for (; *p; p++, n++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return n == 64;
}

/* "sha256:<64 hex>", the only form that may become a path. */
static bool valid_digest(const char *d)
{
	return d && strncmp(d, "sha256:", 7) == 0 && hex64(d + 7);
}

static const char *jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool is_index(const char *mt)
{
	return mt && (!strcmp(mt, "application/vnd.oci.image.index.v1+json") ||
		      !strcmp(mt, "application/vnd.docker.distribution.manifest.list.v2+json"));
}

/* Does ref name this tag? "name" means "name:latest", as docker does. */
static bool ref_matches(const char *ref, const char *tag)
{
	const char *slash = strrchr(ref, '/'), *colon = strrchr(ref, ':');
	size_t n = strlen(ref);

	if (!tag)
		return false;
	if (!strcmp(ref, tag))
		return true;
	return (!colon || (slash && colon < slash)) && !strncmp(tag, ref, n) && !strcmp(tag + n, ":latest");
}

/* "@N" -> N; -1 if ref is not an index. */
static long ref_index(const char *ref)
{
	char *end;
	long v;

	if (ref[0] != '@' || !ref[1])
		return -1;
	v = strtol(ref + 1, &end, 10);
	return *end || v < 0 ? -1 : v;
}

static bool arch_matches(const char *want, const char *arch)
{
	return want && arch && (!strcmp(want, arch) ||
				(lp_arch_parse(want) != LP_ARCH_UNKNOWN && lp_arch_parse(want) == lp_arch_parse(arch)));
}

/* A member name of the outer tar, cleaned ("./x" -> "x"); false if unsafe. */
static bool clean_member(const char *name, char *out)
{
	if (strlen(name) >= PATH_MAX)
		return false;
	return lp_path_clean(name, out) == 0 && *out;
}

static const char *alias(const struct priv *p, const char *name)
{
	for (size_t i = 0; i < p->alias_from.n; i++)
		if (!strcmp(p->alias_from.v[i], name))
			return p->alias_to.v[i];
	return name;
}

/* ---- JSON documents ---- */

/* Read a regular file (never through a symlink) of at most max bytes. */
static int read_small(const char *path, size_t max, char **ret, size_t *ret_len)
{
	struct stat st;
	char *buf;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
		int e = errno;

		close(fd);
		return S_ISREG(st.st_mode) || !e ? -EFBIG : -e;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (len < (size_t)st.st_size) {
		ssize_t got = read(fd, buf + len, (size_t)st.st_size - len);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		len += (size_t)got;
	}
	close(fd);
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	return 0;
}

/* The bytes of name ("index.json", "blobs/sha256/<hex>", a docker member): a file or a tar member. */
static int load_bytes(struct lp_image *img, const char *name, char *where, size_t wlen, char **buf, size_t *len)
{
	struct priv *p = img->priv;
	int r;

	if (img->format == LP_IMAGE_LAYOUT) {
		snprintf(where, wlen, "%s/%s", img->input, name);
		r = read_small(where, JSON_MAX, buf, len);
		if (r == -ENOENT)
			return lp_fail(-LP_E_BADIMAGE, where, "missing blob or file in the OCI layout");
		if (r == -EFBIG)
			return lp_fail(-LP_E_BADIMAGE, where, "not a regular file of at most 16 MiB");
		if (r < 0)
			return lp_fail(r, where, "cannot read: %s", lp_strerror(r));
		return 0;
	}
	snprintf(where, wlen, "%s: %s", img->input, name);
	name = alias(p, name);
	for (size_t i = 0; i < p->n_json; i++) {
		if (strcmp(p->json[i].name, name))
			continue;
		*buf = malloc(p->json[i].len + 1);
		if (!*buf)
			return -ENOMEM;
		memcpy(*buf, p->json[i].data, p->json[i].len + 1);
		*len = p->json[i].len;
		return 0;
	}
	return lp_fail(-LP_E_BADIMAGE, where, "missing from the image archive");
}

/* Parse name; with digest (and size >= 0), the bytes must match it first. */
static int load_json(struct lp_image *img, const char *name, const char *digest, double size, cJSON **ret)
{
	char where[PATH_MAX + 64], *buf = NULL;
	size_t len = 0;
	int r = load_bytes(img, name, where, sizeof(where), &buf, &len);

	*ret = NULL;
	if (r < 0)
		return r;
	if (digest) {
		struct lp_sha256 c;
		uint8_t d[32];
		char hex[65];

		lp_sha256_init(&c);
		lp_sha256_update(&c, buf, len);
		lp_sha256_final(&c, d);
		lp_hex(d, 32, hex);
		if (strcmp(hex, digest + 7) || (size >= 0 && (double)len != size)) {
			free(buf);
			return lp_fail(-LP_E_BADIMAGE, where, "blob does not match its descriptor");
		}
	}
	*ret = cJSON_ParseWithLength(buf, len);
	free(buf);
	if (!*ret)
		return lp_fail(-LP_E_BADIMAGE, where, "not valid JSON");
	return 0;
}

/* A descriptor's blob: its digest checked as a name, then its bytes against it. */
static int load_desc(struct lp_image *img, const cJSON *desc, const char *where, const char *what, cJSON **ret)
{
	const char *dg = jstr(desc, "digest");
	const cJSON *sz = cJSON_GetObjectItemCaseSensitive(desc, "size");
	char name[128];

	*ret = NULL;
	if (!valid_digest(dg))
		return lp_fail(-LP_E_BADIMAGE, where, "%s descriptor has no valid sha256 digest", what);
	snprintf(name, sizeof(name), "blobs/sha256/%s", dg + 7);
	return load_json(img, name, dg, cJSON_IsNumber(sz) ? sz->valuedouble : -1, ret);
}

/* ---- choosing one image ---- */

static void add_name(struct lp_image *img, const char *name)
{
	size_t o = strlen(img->names);

	if (o + 1 < sizeof(img->names))
		snprintf(img->names + o, sizeof(img->names) - o, "%s%s", o ? ", " : "", name ? name : "(untagged)");
}

static const char *desc_arch(const cJSON *d)
{
	return jstr(cJSON_GetObjectItemCaseSensitive(d, "platform"), "architecture");
}

static const char *desc_os(const cJSON *d)
{
	return jstr(cJSON_GetObjectItemCaseSensitive(d, "platform"), "os");
}

/*
 * The top of an image (index.json's manifests, or docker's manifest.json):
 * by o->ref (name or @N); else the only one, the one for o->arch, the one
 * tagged latest, the first.
 */
static const cJSON *pick_top(struct lp_image *img, const cJSON *arr, const struct lp_image_opts *o,
			     const char *where)
{
	bool docker = img->format == LP_IMAGE_DOCKER_ARCHIVE;
	const cJSON *d, *pick = NULL, *latest = NULL, *for_arch = NULL;
	long want = o->ref ? ref_index(o->ref) : -1, k = 0;

	img->n_images = (size_t)cJSON_GetArraySize(arr);
	cJSON_ArrayForEach(d, arr) {
		const cJSON *an = cJSON_GetObjectItemCaseSensitive(d, "annotations");
		const cJSON *tags = cJSON_GetObjectItemCaseSensitive(d, "RepoTags"), *t;
		const char *ref = docker ? (cJSON_IsArray(tags) && cJSON_IsString(cJSON_GetArrayItem(tags, 0)) ?
					    cJSON_GetArrayItem(tags, 0)->valuestring : NULL) :
				  jstr(an, "org.opencontainers.image.ref.name");
		bool hit = false;

		add_name(img, ref);
		if (o->ref && want >= 0) {
			hit = k == want;
		} else if (o->ref) {
			hit = ref_matches(o->ref, ref) || ref_matches(o->ref, jstr(an, "io.containerd.image.name"));
			for (t = cJSON_IsArray(tags) ? tags->child : NULL; t; t = t->next)
				hit |= cJSON_IsString(t) && ref_matches(o->ref, t->valuestring);
		}
		if (hit && !pick)
			pick = d;
		if (!for_arch && arch_matches(o->arch, desc_arch(d)))
			for_arch = d;
		if (!latest && ref && !strcmp(ref, "latest"))
			latest = d;
		k++;
	}
	if (o->ref) {
		if (!pick)
			lp_fail(-LP_E_BADIMAGE, where, "no image '%s' here (it has: %s)", o->ref, img->names);
		return pick;
	}
	if (img->n_images == 1)
		return arr->child;
	if (for_arch)
		return for_arch;
	if (latest)
		return latest;
	img->defaulted = true;
	return arr->child;
}

/* In a nested index (a manifest list): the linux image for o->arch, else (unless need_arch) the first. */
static const cJSON *pick_platform(const cJSON *arr, const struct lp_image_opts *o, const char *where)
{
	const cJSON *d;

	cJSON_ArrayForEach(d, arr) {
		const char *os = desc_os(d);

		if (arch_matches(o->arch, desc_arch(d)) && (!os || !strcmp(os, "linux")) &&
		    !is_index(jstr(d, "mediaType")))
			return d;
	}
	if (o->need_arch && o->arch) {
		lp_fail(-LP_E_BADIMAGE, where, "image index has no linux/%s image", o->arch);
		return NULL;
	}
	return arr->child;
}

static int set_diff_ids(struct lp_image *img)
{
	const cJSON *ids = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(img->config, "rootfs"),
							    "diff_ids");

	img->diff_ids_match = cJSON_IsArray(ids) && (size_t)cJSON_GetArraySize(ids) == img->n_layers;
	for (size_t i = 0; img->diff_ids_match && i < img->n_layers; i++) {
		const char *id = cJSON_GetArrayItem(ids, (int)i)->valuestring;

		if (id && strlen(id) < sizeof(img->layers[i].diff_id))
			snprintf(img->layers[i].diff_id, sizeof(img->layers[i].diff_id), "%s", id);
	}
	return 0;
}

static int layers_alloc(struct lp_image *img, size_t n, const char *where)
{
	if (n > MAX_LAYERS)
		return lp_fail(-LP_E_BADIMAGE, where, "more than %u layers", MAX_LAYERS);
	img->layers = calloc(n ? n : 1, sizeof(*img->layers));
	if (!img->layers)
		return -ENOMEM;
	img->n_layers = n;
	for (size_t i = 0; i < n; i++) {
		img->layers[i].size = UINT64_MAX;
		img->layers[i].dup_of = SIZE_MAX;
	}
	return 0;
}

static int set_layer(struct lp_image *img, size_t i, const char *path, const char *id)
{
	struct lp_image_layer *L = &img->layers[i];
	size_t len = strlen(img->input) + strlen(id) + 16;

	L->path = strdup(path);
	L->what = malloc(len);
	if (!L->path || !L->what)
		return -ENOMEM;
	snprintf(L->what, len, "%s: layer %s", img->input, id);
	return 0;
}

static int resolve_oci(struct lp_image *img, const struct lp_image_opts *o)
{
	cJSON *idx = NULL, *man = NULL;
	const cJSON *d, *layers;
	char where[PATH_MAX + 64];
	int r = load_json(img, "index.json", NULL, -1, &idx);

	if (r < 0)
		return r;
	snprintf(where, sizeof(where), "%s: index.json", img->input);
	for (int depth = 0;; depth++) {
		const cJSON *arr = cJSON_GetObjectItemCaseSensitive(idx, "manifests");
		const cJSON *pick;
		cJSON *next;

		if (depth > 4) {
			r = lp_fail(-LP_E_BADIMAGE, img->input, "image indexes nested too deep");
			goto out;
		}
		if (!cJSON_IsArray(arr) || !arr->child) {
			r = lp_fail(-LP_E_BADIMAGE, where, "no manifests in the image index");
			goto out;
		}
		pick = depth ? pick_platform(arr, o, where) : pick_top(img, arr, o, where);
		if (!pick) {
			r = -LP_E_BADIMAGE;
			goto out;
		}
		r = load_desc(img, pick, where, "manifest", &next);
		if (r < 0)
			goto out;
		if (valid_digest(jstr(pick, "digest")))
			snprintf(where, sizeof(where), "%s: blobs/sha256/%s", img->input, jstr(pick, "digest") + 7);
		if (!is_index(jstr(pick, "mediaType")) && !is_index(jstr(next, "mediaType"))) {
			man = next;
			/* load_desc checked the manifest against this digest. */
			if (valid_digest(jstr(pick, "digest")))
				snprintf(img->manifest_digest, sizeof(img->manifest_digest), "%s", jstr(pick, "digest"));
			break;
		}
		cJSON_Delete(idx);
		idx = next;
	}
	layers = cJSON_GetObjectItemCaseSensitive(man, "layers");
	if (!cJSON_IsArray(layers)) {
		r = lp_fail(-LP_E_BADIMAGE, where, "manifest has no valid layers list");
		goto out;
	}
	if ((r = layers_alloc(img, (size_t)cJSON_GetArraySize(layers), where)) < 0)
		goto out;
	{
		size_t i = 0;

		cJSON_ArrayForEach(d, layers) {
			struct lp_image_layer *L = &img->layers[i];
			const char *dg = jstr(d, "digest"), *mt = jstr(d, "mediaType");
			const cJSON *sz = cJSON_GetObjectItemCaseSensitive(d, "size");
			char path[96];

			if (!valid_digest(dg)) {
				r = lp_fail(-LP_E_BADIMAGE, where, "layer %zu has no valid digest", i);
				goto out;
			}
			snprintf(L->digest, sizeof(L->digest), "%s", dg);
			snprintf(path, sizeof(path), "blobs/sha256/%s", dg + 7);
			if ((r = set_layer(img, i, path, dg)) < 0)
				goto out;
			if (mt && !(L->raw_media_type = strdup(mt))) {
				r = -ENOMEM;
				goto out;
			}
			L->media_type = lp_image_layer_media_type(mt);
			if (cJSON_IsNumber(sz) && sz->valuedouble >= 0 && sz->valuedouble < 1e18)
				L->size = (uint64_t)sz->valuedouble;
			i++;
		}
	}
	d = cJSON_GetObjectItemCaseSensitive(man, "config");
	r = load_desc(img, d, where, "config", &img->config);
	if (r < 0)
		goto out;
	snprintf(img->config_digest, sizeof(img->config_digest), "%s", jstr(d, "digest"));
	r = set_diff_ids(img);
out:
	cJSON_Delete(idx);
	cJSON_Delete(man);
	return r;
}

static int resolve_docker(struct lp_image *img, const struct lp_image_opts *o)
{
	cJSON *doc = NULL;
	const cJSON *m, *layers, *d;
	const char *cfg;
	char where[PATH_MAX + 64], clean[PATH_MAX];
	size_t i = 0;
	int r = load_json(img, "manifest.json", NULL, -1, &doc);

	if (r < 0)
		return r;
	snprintf(where, sizeof(where), "%s: manifest.json", img->input);
	m = cJSON_IsArray(doc) && doc->child ? pick_top(img, doc, o, where) : NULL;
	if (!m && cJSON_IsArray(doc) && doc->child) {
		r = -LP_E_BADIMAGE;
		goto out;
	}
	layers = cJSON_GetObjectItemCaseSensitive(m, "Layers");
	cfg = jstr(m, "Config");
	if (!cJSON_IsArray(layers) || !cfg) {
		r = lp_fail(-LP_E_BADIMAGE, where, "expected [{\"Config\": ..., \"Layers\": [...]}]");
		goto out;
	}
	if ((r = layers_alloc(img, (size_t)cJSON_GetArraySize(layers), where)) < 0)
		goto out;
	cJSON_ArrayForEach(d, layers) {
		if (!cJSON_IsString(d) || !clean_member(d->valuestring, clean)) {
			r = lp_fail(-LP_E_BADIMAGE, where, "layer %zu is not a usable member path", i + 1);
			goto out;
		}
		if ((r = set_layer(img, i, clean, clean)) < 0)
			goto out;
		i++;
	}
	if (!clean_member(cfg, clean)) {
		r = lp_fail(-LP_E_BADIMAGE, where, "config '%s' is not a usable member path", cfg);
		goto out;
	}
	{
		/* "<hex>.json" (docker save) and "blobs/sha256/<hex>" (newer) name their digest: check it. */
		const char *base = strrchr(clean, '/') ? strrchr(clean, '/') + 1 : clean;
		char hex[80] = "";

		if (strlen(base) == 69 && !strcmp(base + 64, ".json"))
			snprintf(hex, sizeof(hex), "%.64s", base);
		else if (!strncmp(clean, "blobs/sha256/", 13))
			snprintf(hex, sizeof(hex), "%.70s", clean + 13);
		if (*hex && hex64(hex))
			snprintf(img->config_digest, sizeof(img->config_digest), "sha256:%s", hex);
	}
	r = load_json(img, clean, *img->config_digest ? img->config_digest : NULL, -1, &img->config);
	if (r == 0)
		r = set_diff_ids(img);
out:
	cJSON_Delete(doc);
	return r;
}

/* ---- tars: the first pass keeps the JSON members ---- */

static int open_tar(const char *path, struct archive **ret)
{
	struct archive *ar = archive_read_new();

	*ret = NULL;
	if (!ar)
		return -ENOMEM;
	/* Built-in decoders only: filter_all may run external programs. */
	archive_read_support_filter_gzip(ar);
	archive_read_support_filter_zstd(ar);
	archive_read_support_filter_bzip2(ar);
	archive_read_support_filter_xz(ar);
	archive_read_support_format_tar(ar);
	archive_read_support_format_gnutar(ar);
	if (archive_read_open_filename(ar, path, 1 << 16) != ARCHIVE_OK) {
		int e = archive_errno(ar);
		int r = lp_fail(e == ENOENT || e == EACCES ? -e : -LP_E_BADIMAGE, path, "cannot read: %s",
				lp_archive_error(ar));

		archive_read_free(ar);
		return r;
	}
	*ret = ar;
	return 0;
}

static int keep_json(struct lp_image *img, struct archive *ar, const char *name, int64_t size)
{
	struct priv *p = img->priv;
	struct jdoc *v, *j;
	char first;
	la_ssize_t got;

	if (size <= 0 || size > (int64_t)JSON_MAX)
		return 0;
	got = archive_read_data(ar, &first, 1);
	if (got < 0)
		return lp_fail(-LP_E_BADIMAGE, img->input, "member '%s': %s", name, lp_archive_error(ar));
	if (got != 1 || (first != '{' && first != '['))
		return 0;
	if (p->total + (size_t)size > JSON_TOTAL)
		return lp_fail(-LP_E_BADIMAGE, img->input, "more than 256 MiB of JSON members");
	v = realloc(p->json, (p->n_json + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	p->json = v;
	j = &v[p->n_json];
	j->name = strdup(name);
	j->data = malloc((size_t)size + 1);
	if (!j->name || !j->data) {
		free(j->name);
		free(j->data);
		return -ENOMEM;
	}
	j->data[0] = first;
	j->len = 1;
	while (j->len < (size_t)size) {
		got = archive_read_data(ar, j->data + j->len, (size_t)size - j->len);
		if (got < 0) {
			free(j->name);
			free(j->data);
			return lp_fail(-LP_E_BADIMAGE, img->input, "member '%s': %s", name, lp_archive_error(ar));
		}
		if (got == 0)
			break;
		j->len += (size_t)got;
	}
	j->data[j->len] = '\0';
	p->n_json++;
	p->total += j->len;
	return 0;
}

static int scan_tar(struct lp_image *img)
{
	struct priv *p = img->priv;
	struct archive_entry *ae;
	struct archive *ar;
	size_t n = 0;
	int ar_r, r = open_tar(img->input, &ar);

	if (r < 0)
		return r;
	while ((ar_r = archive_read_next_header(ar, &ae)) == ARCHIVE_OK || ar_r == ARCHIVE_WARN) {
		const char *name = archive_entry_pathname(ae), *hl = archive_entry_hardlink(ae);
		char clean[PATH_MAX], target[PATH_MAX];

		if (++n > MAX_MEMBERS) {
			r = lp_fail(-LP_E_BADIMAGE, img->input, "more than 4,000,000 entries");
			break;
		}
		if (!name)
			continue;
		if (!clean_member(name, clean)) {
			if (lp_path_clean(name, clean) == 0 || !strcmp(name, "./") || !strcmp(name, "."))
				continue;	/* the root itself */
			r = lp_fail(-LP_E_UNSAFEPATH, img->input,
				    "entry '%.1024s': unsafe path (absolute or containing '..')", name);
			break;
		}
		if (hl) {
			if (!clean_member(hl, target)) {
				r = lp_fail(-LP_E_UNSAFEPATH, img->input, "entry '%.1024s': unsafe hard link", name);
				break;
			}
			if ((r = lp_strv_push(&p->alias_from, clean)) < 0 ||
			    (r = lp_strv_push(&p->alias_to, alias(p, target))) < 0)
				break;
			continue;
		}
		if (archive_entry_filetype(ae) == AE_IFREG && (r = keep_json(img, ar, clean, archive_entry_size(ae))) < 0)
			break;
	}
	if (r == 0 && ar_r != ARCHIVE_EOF)
		r = lp_fail(-LP_E_BADIMAGE, img->input, "corrupt archive: %s", lp_archive_error(ar));
	archive_read_free(ar);
	return r;
}

/* ---- open / close ---- */

void lp_image_close(struct lp_image *img)
{
	struct priv *p;

	if (!img)
		return;
	p = img->priv;
	if (p) {
		for (size_t i = 0; i < p->n_json; i++) {
			free(p->json[i].name);
			free(p->json[i].data);
		}
		free(p->json);
		lp_strv_free(&p->alias_from);
		lp_strv_free(&p->alias_to);
		free(p);
	}
	for (size_t i = 0; i < img->n_layers; i++) {
		free(img->layers[i].raw_media_type);
		free(img->layers[i].path);
		free(img->layers[i].what);
	}
	free(img->layers);
	cJSON_Delete(img->config);
	free(img->input);
	free(img);
}

int lp_image_open(const char *path, enum lp_image_format format, const struct lp_image_opts *o,
		  struct lp_image **ret)
{
	static const struct lp_image_opts none = { 0 };
	struct lp_image *img = calloc(1, sizeof(*img));
	int r;

	*ret = NULL;
	if (!o)
		o = &none;
	if (!img || !(img->input = strdup(path)) || !(img->priv = calloc(1, sizeof(struct priv)))) {
		lp_image_close(img);
		return -ENOMEM;
	}
	img->format = format;
	r = format == LP_IMAGE_LAYOUT ? 0 : scan_tar(img);
	if (r == 0)
		r = format == LP_IMAGE_DOCKER_ARCHIVE ? resolve_docker(img, o) : resolve_oci(img, o);
	if (r < 0) {
		lp_image_close(img);
		return r;
	}
	*ret = img;
	return 0;
}

/* ---- layer blobs ---- */

static ssize_t blob_read(struct lp_image_blob *b, const void **out)
{
	ssize_t got;

	if (b->rc < 0)
		return b->rc;
	if (b->eof)
		return 0;
	if (b->outer) {
		got = archive_read_data(b->outer, b->buf, CHUNK);
		if (got < 0)
			return b->rc = lp_fail(-LP_E_BADIMAGE, b->L->what, "cannot read layer: %s",
					       lp_archive_error(b->outer));
	} else {
		do
			got = read(b->fd, b->buf, CHUNK);
		while (got < 0 && errno == EINTR);
		if (got < 0)
			return b->rc = lp_fail(-errno, b->L->what, "cannot read layer: %s", strerror(errno));
	}
	if (got == 0) {
		b->eof = true;
		return 0;
	}
	if (b->nmagic < sizeof(b->magic)) {
		size_t k = sizeof(b->magic) - b->nmagic < (size_t)got ? sizeof(b->magic) - b->nmagic : (size_t)got;

		memcpy(b->magic + b->nmagic, b->buf, k);
		b->nmagic += k;
	}
	lp_sha256_update(&b->sha, b->buf, (size_t)got);
	lp_progress_add((uint64_t)got);
	b->n += (uint64_t)got;
	if (b->tap && (b->rc = b->tap(b->tap_ud, b->buf, (size_t)got)) < 0)
		return b->rc;
	*out = b->buf;
	return got;
}

ssize_t lp_image_blob_read(void *ud, const void **out)
{
	struct lp_image_blob *b = ud;
	bool failed = b->rc < 0;
	ssize_t got = blob_read(b, out);

	if (got < 0 && !failed)
		snprintf(b->msg, sizeof(b->msg), "%s", lp_errmsg());
	return got;
}

/*
 * A layer that fails to decode is most often a blob that is not what its
 * digest says (a flipped byte breaks gzip long before the end): read the
 * rest, untapped, and when the digest does not match say that, the cause,
 * instead of the decoder's complaint. True if it did not match.
 */
static bool blob_digest_mismatch(struct lp_image_blob *b, int r)
{
	char saved[sizeof(b->msg)], got_digest[72];
	int rc = b->rc;
	const void *p;
	ssize_t got;
	uint8_t d[32];

	if (b->drained || !*b->L->digest)
		return false;
	snprintf(saved, sizeof(saved), "%s", lp_errmsg());
	b->tap = NULL;
	b->rc = 0;
	while ((got = blob_read(b, &p)) > 0)
		;
	if (got < 0) {
		b->rc = rc;
		lp_errmsg_set(saved);
		return false;
	}
	b->drained = true;
	lp_sha256_final(&b->sha, d);
	memcpy(got_digest, "sha256:", 7);
	lp_hex(d, 32, got_digest + 7);
	if (!strcmp(got_digest, b->L->digest)) {
		/* The bytes are right: the first error stands, and the blob stays failed. */
		if (rc >= 0) {
			rc = r;
			snprintf(b->msg, sizeof(b->msg), "%s", saved);
		}
		b->rc = rc;
		lp_errmsg_set(saved);
		return false;
	}
	b->rc = lp_fail(-LP_E_BADIMAGE, b->L->what, "blob content does not match its digest (it is %s)", got_digest);
	snprintf(b->msg, sizeof(b->msg), "%s", lp_errmsg());
	return true;
}

int lp_image_blob_error(struct lp_image_blob *b, int r)
{
	if (r >= 0)
		return r;
	if (blob_digest_mismatch(b, r))
		return b->rc;
	if (b->rc >= 0)
		return r;
	lp_errmsg_set(b->msg);
	return b->rc;
}

int lp_image_blob_stream(struct lp_image_blob *b, const struct lp_stream_opts *o, struct lp_stream **ret)
{
	struct lp_stream_opts so = o ? *o : (struct lp_stream_opts){ 0 };

	so.layer = true;
	so.only_tar = true;
	if (!so.name)
		so.name = b->L->what;
	/* Opening reads the first bytes: a read or tap failure shows here first. */
	return lp_image_blob_error(b, lp_stream_open_cb(lp_image_blob_read, b, &so, ret));
}

void lp_image_blob_tap(struct lp_image_blob *b, lp_image_tap_fn fn, void *ud)
{
	b->tap = fn;
	b->tap_ud = ud;
}

uint64_t lp_image_blob_bytes(const struct lp_image_blob *b)
{
	return b->n;
}

int lp_image_blob_fd(const struct lp_image_blob *b)
{
	return b->outer ? -1 : b->fd;
}

int lp_image_blob_drain(struct lp_image_blob *b)
{
	struct lp_image_layer *L = b->L;
	const void *p;
	ssize_t got;
	uint8_t d[32];
	char got_digest[72];

	if (b->drained)
		return b->rc;
	while ((got = lp_image_blob_read(b, &p)) > 0)
		;
	b->drained = true;
	if (got < 0)
		return b->rc = (int)got;
	lp_sha256_final(&b->sha, d);
	memcpy(got_digest, "sha256:", 7);
	lp_hex(d, 32, got_digest + 7);
	if (*L->digest && strcmp(got_digest, L->digest))
		return b->rc = lp_fail(-LP_E_BADIMAGE, L->what, "blob content does not match its digest (it is %s)",
				       got_digest);
	if (L->size != UINT64_MAX && b->n != L->size)
		return b->rc = lp_fail(-LP_E_BADIMAGE, L->what, "blob is %llu bytes, its descriptor says %llu",
				       (unsigned long long)b->n, (unsigned long long)L->size);
	snprintf(L->digest, sizeof(L->digest), "%s", got_digest);
	L->size = b->n;
	if (!L->media_type && !L->raw_media_type) {
		/* docker-archive names no media type: the magic bytes say it. */
		const uint8_t *m = b->magic;

		L->media_type = b->nmagic >= 2 && m[0] == 0x1f && m[1] == 0x8b ? MT_TAR_GZIP :
				b->nmagic >= 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd ?
				MT_TAR_ZSTD : MT_TAR;
	}
	return 0;
}

static int visit(struct lp_image *img, size_t i, int fd, struct archive *outer, lp_image_layer_fn fn, void *ud)
{
	struct lp_image_blob b = { .img = img, .L = &img->layers[i], .fd = fd, .outer = outer };
	int r;

	b.buf = malloc(CHUNK);
	if (!b.buf)
		return -ENOMEM;
	lp_sha256_init(&b.sha);
	r = fn(ud, img, i, &b);
	if (r == 0)
		r = lp_image_blob_drain(&b);
	else if (r == LP_IMAGE_SKIP)
		r = 0;
	free(b.buf);
	return r;
}

static int layers_layout(struct lp_image *img, lp_image_layer_fn fn, void *ud)
{
	for (size_t i = 0; i < img->n_layers; i++) {
		char fp[PATH_MAX + 128];
		struct stat st;
		int fd, r;

		/* path is "blobs/sha256/<hex>", built from a checked digest; never through a symlink. */
		snprintf(fp, sizeof(fp), "%s/%s", img->input, img->layers[i].path);
		fd = open(fp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			return lp_fail(errno == ENOENT ? -LP_E_BADIMAGE : -errno, fp, "%s",
				       errno == ENOENT ? "missing layer blob" : strerror(errno));
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			close(fd);
			return lp_fail(-LP_E_BADIMAGE, fp, "layer blob is not a regular file");
		}
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
		r = visit(img, i, fd, NULL, fn, ud);
		close(fd);
		if (r < 0)
			return r;
	}
	return 0;
}

static int layers_tar(struct lp_image *img, lp_image_layer_fn fn, void *ud)
{
	struct priv *p = img->priv;
	struct archive_entry *ae;
	struct archive *ar;
	bool *done = calloc(img->n_layers ? img->n_layers : 1, sizeof(bool));
	const char **want = calloc(img->n_layers ? img->n_layers : 1, sizeof(char *));
	int ar_r = ARCHIVE_EOF, r;

	if (!done || !want) {
		free(done);
		free(want);
		return -ENOMEM;
	}
	for (size_t i = 0; i < img->n_layers; i++)
		want[i] = alias(p, img->layers[i].path);
	r = open_tar(img->input, &ar);
	while (r == 0 && ((ar_r = archive_read_next_header(ar, &ae)) == ARCHIVE_OK || ar_r == ARCHIVE_WARN)) {
		const char *name = archive_entry_pathname(ae);
		char clean[PATH_MAX];
		size_t first = SIZE_MAX;

		if (!name || archive_entry_hardlink(ae) || archive_entry_filetype(ae) != AE_IFREG ||
		    !clean_member(name, clean))
			continue;
		for (size_t i = 0; i < img->n_layers; i++) {
			if (done[i] || strcmp(want[i], clean))
				continue;
			done[i] = true;
			if (first == SIZE_MAX)
				first = i;
			else
				img->layers[i].dup_of = first;
		}
		if (first != SIZE_MAX)
			r = visit(img, first, -1, ar, fn, ud);
	}
	if (r == 0 && ar_r != ARCHIVE_EOF)
		r = lp_fail(-LP_E_BADIMAGE, img->input, "corrupt archive: %s", lp_archive_error(ar));
	for (size_t i = 0; r == 0 && i < img->n_layers; i++)
		if (!done[i])
			r = lp_fail(-LP_E_BADIMAGE, img->input, "layer %s missing from the image archive",
				    img->layers[i].path);
	/* A shared blob: its twins take the digest, size and type learned from it. */
	for (size_t i = 0; r == 0 && i < img->n_layers; i++) {
		struct lp_image_layer *L = &img->layers[i];

		if (L->dup_of == SIZE_MAX)
			continue;
		memcpy(L->digest, img->layers[L->dup_of].digest, sizeof(L->digest));
		L->size = img->layers[L->dup_of].size;
		if (!L->media_type)
			L->media_type = img->layers[L->dup_of].media_type;
	}
	if (ar)
		archive_read_free(ar);
	free(done);
	free(want);
	return r;
}

int lp_image_layers(struct lp_image *img, lp_image_layer_fn fn, void *ud)
{
	uint64_t total = 0;

	/* The blobs' bytes, as their descriptors give them (docker-archive: unknown, unmeasured). */
	for (size_t i = 0; i < img->n_layers; i++) {
		if (img->layers[i].size == UINT64_MAX || img->layers[i].dup_of != SIZE_MAX) {
			if (img->layers[i].size == UINT64_MAX) {
				total = 0;
				break;
			}
			continue;
		}
		total += img->layers[i].size;
	}
	/* Nothing to measure (a scratch base read back by container's runnability check, a
	 * docker-archive): leave the phase's own counter, which the front end reset at its start. */
	if (total)
		lp_progress_begin(total);
	return img->format == LP_IMAGE_LAYOUT ? layers_layout(img, fn, ud) : layers_tar(img, fn, ud);
}
