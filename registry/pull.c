/* SPDX-License-Identifier: MIT */
/*
 * Pull: manifests and blobs into the content-addressed cache (an OCI
 * layout, see registry.h). A blob is written to ROOT/registry/tmp, hashed
 * as it streams in, and renamed under its digest only when its size and
 * digest match the descriptor; anything else is deleted.
 */
#include "registry/internal.h"
#include "core/err.h"
#include "core/fsutil.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define MT_OCI_INDEX	"application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST	"application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_LIST	"application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_V2	"application/vnd.docker.distribution.manifest.v2+json"
#define MANIFEST_ACCEPT	MT_OCI_INDEX ", " MT_OCI_MANIFEST ", " MT_DOCKER_LIST ", " MT_DOCKER_V2
#define MANIFEST_MAX	(4u << 20)

struct cache {
	char *dir;	/* ROOT/registry */
	char *blobs;	/* ROOT/registry/blobs/sha256 */
	char *tmp;	/* ROOT/registry/tmp */
};

void lp_reg_pulled_free(struct lp_reg_pulled *p)
{
	free(p->oci_spec);
	free(p->ref);
	free(p->offline_reason);
	memset(p, 0, sizeof(*p));
}

int lp_reg_cache_root(const struct lp_reg_opts *o, char **ret)
{
	const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	int n;

	if (o && o->cache_root)
		n = asprintf(ret, "%s", o->cache_root);
	else if (x && x[0] == '/')
		n = asprintf(ret, "%s/lambdapack", x);
	else if (home && *home)
		n = asprintf(ret, "%s/.cache/lambdapack", home);
	else
		return lp_fail(-ENOENT, NULL, "no cache directory: set XDG_CACHE_HOME or HOME, or give --cache-dir");
	if (n < 0) {
		*ret = NULL;
		return -ENOMEM;
	}
	return 0;
}

static void cache_free(struct cache *c)
{
	free(c->dir);
	free(c->blobs);
	free(c->tmp);
	memset(c, 0, sizeof(*c));
}

/* Write a small file atomically (temp + rename) in its directory. */
static int write_atomic(const char *path, const void *data, size_t n)
{
	struct lp_outfile f;
	int r = lp_outfile_open(&f, path);

	if (r < 0)
		return r;
	r = lp_write_all(f.fd, data, n);
	if (r == 0)
		return lp_outfile_commit(&f);
	lp_outfile_abort(&f);
	return r;
}

static int cache_open(const struct lp_reg_opts *o, struct cache *c)
{
	char *root = NULL, *p = NULL;
	struct stat st;
	int r;

	memset(c, 0, sizeof(*c));
	r = lp_reg_cache_root(o, &root);
	if (r < 0)
		return r;
	if (asprintf(&c->dir, "%s/registry", root) < 0 || asprintf(&c->blobs, "%s/blobs/sha256", c->dir) < 0 ||
	    asprintf(&c->tmp, "%s/tmp", c->dir) < 0) {
		r = -ENOMEM;
		goto out;
	}
	if ((r = lp_mkdir_p(c->blobs, 0755)) < 0 || (r = lp_mkdir_p(c->tmp, 0755)) < 0) {
		r = lp_fail(r, c->dir, "cannot create the registry cache: %s", strerror(-r));
		goto out;
	}
	if (asprintf(&p, "%s/oci-layout", c->dir) < 0) {
		r = -ENOMEM;
		goto out;
	}
	if (lstat(p, &st) < 0) {
		static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";

		r = write_atomic(p, layout, sizeof(layout) - 1);
		if (r < 0)
			goto out;
	}
	free(p);
	if (asprintf(&p, "%s/index.json", c->dir) < 0) {
		p = NULL;
		r = -ENOMEM;
		goto out;
	}
	if (lstat(p, &st) < 0) {
		static const char idx[] = "{\"schemaVersion\":2,\"manifests\":[]}";

		r = write_atomic(p, idx, sizeof(idx) - 1);
	}
out:
	free(p);
	free(root);
	if (r < 0)
		cache_free(c);
	return r;
}

static char *blob_path(const struct cache *c, const char *digest)
{
	char *p;

	if (asprintf(&p, "%s/%s", c->blobs, digest + 7) < 0)
		return NULL;
	return p;
}

/* Is the blob cached (a regular file of the expected size; -1 = any)? */
static bool have_blob(const struct cache *c, const char *digest, int64_t size)
{
	char *p = blob_path(c, digest);
	struct stat st;
	bool ok;

	if (!p)
		return false;
	ok = lstat(p, &st) == 0 && S_ISREG(st.st_mode) && (size < 0 || st.st_size == size);
	free(p);
	return ok;
}

static int read_blob(const struct cache *c, const char *digest, char **ret, size_t *ret_len)
{
	char *p = blob_path(c, digest);
	uint8_t d[32];
	char got[LP_REG_DIGEST_LEN];
	int r;

	if (!p)
		return -ENOMEM;
	r = lp_read_file(p, MANIFEST_MAX, ret, ret_len);
	free(p);
	if (r < 0)
		return r;
	/* The cache is ours but a disk can rot: a manifest is small enough to check every time. */
	lp_sha256(*ret, *ret_len, d);
	reg_digest_str(d, got);
	if (strcmp(got, digest)) {
		free(*ret);
		*ret = NULL;
		return -EBADMSG;
	}
	return 0;
}

/* Create a temp file in the cache's tmp directory, registered for removal on a signal. */
static int tmp_open(const struct cache *c, char **ret_path)
{
	char *p;
	int fd;

	if (asprintf(&p, "%s/blob-XXXXXX", c->tmp) < 0)
		return -ENOMEM;
	/* lp_cleanup_register() takes the cleanup lock itself: the window between is a few instructions. */
	fd = mkostemp(p, O_CLOEXEC);
	if (fd >= 0)
		lp_cleanup_register(p, false);
	if (fd < 0) {
		int e = -errno;

		lp_fail(e, c->tmp, "cannot create a file in the cache: %s", strerror(errno));
		free(p);
		return e;
	}
	*ret_path = p;
	return fd;
}

static void tmp_drop(char *path, int fd)
{
	if (fd >= 0)
		close(fd);
	if (path) {
		unlink(path);
		lp_cleanup_unregister(path);
		free(path);
	}
}

/* Move a verified temp file under its digest. */
static int tmp_commit(const struct cache *c, char *path, int fd, const char *digest)
{
	char *dst = blob_path(c, digest);
	int r = 0;

	if (!dst) {
		tmp_drop(path, fd);
		return -ENOMEM;
	}
	if (fsync(fd) < 0 || fchmod(fd, 0644) < 0 || rename(path, dst) < 0)
		r = lp_fail(-errno, dst, "cannot store the blob in the cache: %s", strerror(errno));
	close(fd);
	if (r < 0)
		unlink(path);
	lp_cleanup_unregister(path);
	free(path);
	free(dst);
	return r;
}

/* GET a blob (kind "blobs") into the cache, verified against digest and size. */
static int fetch_blob(struct reg_sess *s, const struct cache *c, const char *digest, uint64_t size,
		      struct lp_reg_pulled *ret)
{
	struct reg_req q;
	char url[512], what[128], got[LP_REG_DIGEST_LEN], *tmp = NULL;
	uint8_t d[32];
	int fd, r;

	fd = tmp_open(c, &tmp);
	if (fd < 0)
		return fd;
	snprintf(url, sizeof(url), "/v2/%s/blobs/%s", s->repo, digest);
	snprintf(what, sizeof(what), "blob %.19s", digest);
	reg_req_init(&q, "GET", url, what);
	q.out_fd = fd;
	q.out_max = size;
	q.mem_max = 64 << 10;
	r = reg_do(s, &q);
	if (r == 0 && q.status != 200)
		r = reg_status_fail(s, &q, "pull");
	if (r == 0) {
		lp_sha256_final(&q.sha, d);
		reg_digest_str(d, got);
		if (q.got != size)
			r = lp_fail(-EBADMSG, NULL, "registry %s, repository %s: %s: size mismatch (%llu bytes, the "
				    "manifest says %llu); not cached", s->host, s->repo, what,
				    (unsigned long long)q.got, (unsigned long long)size);
		else if (strcmp(got, digest))
			r = lp_fail(-EBADMSG, NULL, "registry %s, repository %s: %s: digest mismatch (got %.19s); "
				    "not cached", s->host, s->repo, what, got);
	}
	if (r == 0) {
		ret->bytes_fetched += q.got;
		ret->blobs_fetched++;
		r = tmp_commit(c, tmp, fd, digest);
	} else {
		tmp_drop(tmp, fd);
	}
	reg_req_free(&q);
	return r;
}

/*
 * GET a manifest by reference (tag or digest) into memory. want_digest
 * (may be NULL for a tag) is checked; the digest of the bytes goes to
 * ret_digest and the bytes into the cache.
 */
static int fetch_manifest(struct reg_sess *s, const struct cache *c, const char *reference,
			  const char *want_digest, char **ret_body, size_t *ret_len,
			  char ret_digest[LP_REG_DIGEST_LEN], struct lp_reg_pulled *ret)
{
	struct reg_req q;
	char url[512], what[160], *p;
	uint8_t d[32];
	int r;

	snprintf(url, sizeof(url), "/v2/%s/manifests/%s", s->repo, reference);
	snprintf(what, sizeof(what), "manifest %.*s", reg_digest_valid(reference) ? 19 : 128, reference);
	reg_req_init(&q, "GET", url, what);
	q.accept = MANIFEST_ACCEPT;
	q.keep_body = true;
	q.mem_max = MANIFEST_MAX;
	r = reg_do(s, &q);
	if (r == 0 && q.status != 200)
		r = reg_status_fail(s, &q, "pull");
	if (r == 0 && q.overflow)
		r = lp_fail(-EBADMSG, NULL, "registry %s, repository %s: %s: larger than %u MiB", s->host, s->repo,
			    what, MANIFEST_MAX >> 20);
	if (r < 0)
		goto out;
	lp_sha256(q.mem ? q.mem : "", q.mem_len, d);
	reg_digest_str(d, ret_digest);
	if ((want_digest && strcmp(ret_digest, want_digest)) ||
	    (!want_digest && q.digest_hdr && reg_digest_valid(q.digest_hdr) && strcmp(q.digest_hdr, ret_digest))) {
		r = lp_fail(-EBADMSG, NULL, "registry %s, repository %s: %s: digest mismatch (got %.19s); not cached",
			    s->host, s->repo, what, ret_digest);
		goto out;
	}
	if (!(p = blob_path(c, ret_digest))) {
		r = -ENOMEM;
		goto out;
	}
	r = write_atomic(p, q.mem ? q.mem : "", q.mem_len);
	free(p);
	if (r < 0)
		goto out;
	ret->bytes_fetched += q.mem_len;
	*ret_body = q.mem ? q.mem : strdup("");
	*ret_len = q.mem_len;
	q.mem = NULL;
out:
	reg_req_free(&q);
	return r;
}

/* What a tag points at now: HEAD (its digest header), else a GET. */
static int resolve_tag(struct reg_sess *s, const struct cache *c, const struct lp_reg_ref *ref,
		       char top[LP_REG_DIGEST_LEN], struct lp_reg_pulled *ret)
{
	struct reg_req q;
	char url[512], what[160], *body = NULL;
	size_t len;
	int r;

	snprintf(url, sizeof(url), "/v2/%s/manifests/%s", ref->repo, ref->tag);
	snprintf(what, sizeof(what), "tag %s", ref->tag);
	reg_req_init(&q, "HEAD", url, what);
	q.accept = MANIFEST_ACCEPT;
	r = reg_do(s, &q);
	ret->network = true;
	/* A registry that does not answer HEAD on manifests (405 and the like) gets the GET below. */
	if (r == 0 && q.status != 200 && (q.status < 400 || q.status >= 500 || q.status == 401 || q.status == 403 ||
					  q.status == 404 || q.status == 429))
		r = reg_status_fail(s, &q, "pull");
	if (r == 0 && q.digest_hdr && reg_digest_valid(q.digest_hdr) && have_blob(c, q.digest_hdr, -1)) {
		snprintf(top, LP_REG_DIGEST_LEN, "%s", q.digest_hdr);
		reg_req_free(&q);
		return 0;
	}
	reg_req_free(&q);
	if (r < 0)
		return r;
	r = fetch_manifest(s, c, ref->tag, NULL, &body, &len, top, ret);
	free(body);
	return r;
}

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool is_index_doc(const cJSON *j)
{
	const char *mt = jstr(j, "mediaType");

	if (mt)
		return !strcmp(mt, MT_OCI_INDEX) || !strcmp(mt, MT_DOCKER_LIST);
	return cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "manifests"));
}

/* A descriptor's digest and size, checked. */
static int desc(const cJSON *d, const char **ret_digest, uint64_t *ret_size)
{
	const char *dg = jstr(d, "digest");
	const cJSON *sz = cJSON_GetObjectItemCaseSensitive(d, "size");

	if (!reg_digest_valid(dg) || !cJSON_IsNumber(sz) || sz->valuedouble < 0 || sz->valuedouble > 1e15)
		return -EBADMSG;
	*ret_digest = dg;
	*ret_size = (uint64_t)sz->valuedouble;
	return 0;
}

/* The linux/arch entry of an index; fills the list of what it has on failure. */
static const cJSON *pick_arch(const cJSON *idx, const char *arch, char *have, size_t n)
{
	const cJSON *d;

	have[0] = '\0';
	cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(idx, "manifests")) {
		const cJSON *pl = cJSON_GetObjectItemCaseSensitive(d, "platform");
		const char *os = jstr(pl, "os"), *a = jstr(pl, "architecture");
		size_t k = strlen(have);

		if (os && a && !strcmp(os, "linux") && !strcmp(a, arch) && !is_index_doc(d))
			return d;
		if (os && a && k + 1 < n)
			snprintf(have + k, n - k, "%s%s/%s", k ? ", " : "", os, a);
	}
	return NULL;
}

/* Add "m-<hex>" for the manifest to the cache's index.json (under a lock). */
static int index_add(const struct cache *c, const char *mt, const char *digest, size_t size, const char *arch)
{
	char *lock = NULL, *path = NULL, *text = NULL, *out = NULL, name[80];
	cJSON *j = NULL, *arr, *e;
	size_t len;
	int fd = -1, r;

	snprintf(name, sizeof(name), "m-%s", digest + 7);
	if (asprintf(&lock, "%s/.lock", c->dir) < 0 || asprintf(&path, "%s/index.json", c->dir) < 0) {
		r = -ENOMEM;
		goto out;
	}
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		r = lp_fail(-errno, lock, "cannot lock the registry cache: %s", strerror(errno));
		goto out;
	}
	r = lp_read_file(path, 64 << 20, &text, &len);
	j = r == 0 ? cJSON_Parse(text) : NULL;
	if (!j)
		j = cJSON_Parse("{\"schemaVersion\":2,\"manifests\":[]}");
	arr = cJSON_GetObjectItemCaseSensitive(j, "manifests");
	if (!cJSON_IsArray(arr)) {
		cJSON_DeleteItemFromObjectCaseSensitive(j, "manifests");
		arr = cJSON_AddArrayToObject(j, "manifests");
	}
	cJSON_ArrayForEach(e, arr) {
		const char *n = jstr(cJSON_GetObjectItemCaseSensitive(e, "annotations"),
				     "org.opencontainers.image.ref.name");

		if (n && !strcmp(n, name)) {
			r = 0;
			goto out;
		}
	}
	e = cJSON_CreateObject();
	if (!e || !cJSON_AddStringToObject(e, "mediaType", mt) || !cJSON_AddStringToObject(e, "digest", digest) ||
	    !cJSON_AddNumberToObject(e, "size", (double)size)) {
		cJSON_Delete(e);
		r = -ENOMEM;
		goto out;
	}
	{
		cJSON *pl = cJSON_AddObjectToObject(e, "platform"), *an = cJSON_AddObjectToObject(e, "annotations");

		if (!pl || !an || !cJSON_AddStringToObject(pl, "architecture", arch) ||
		    !cJSON_AddStringToObject(pl, "os", "linux") ||
		    !cJSON_AddStringToObject(an, "org.opencontainers.image.ref.name", name)) {
			cJSON_Delete(e);
			r = -ENOMEM;
			goto out;
		}
	}
	cJSON_AddItemToArray(arr, e);
	out = cJSON_PrintUnformatted(j);
	r = out ? write_atomic(path, out, strlen(out)) : -ENOMEM;
out:
	if (fd >= 0)
		close(fd);
	cJSON_Delete(j);
	free(out);
	free(text);
	free(path);
	free(lock);
	return r;
}

static char *refs_path(const struct cache *c, const struct lp_reg_ref *ref)
{
	char *p;

	if (asprintf(&p, "%s/refs/%s/%s/%s", c->dir, ref->host, ref->repo, ref->tag) < 0)
		return NULL;
	return p;
}

static int refs_write(const struct cache *c, const struct lp_reg_ref *ref, const char *digest)
{
	char *p = refs_path(c, ref), *dir, line[LP_REG_DIGEST_LEN + 1];
	int r;

	if (!p)
		return -ENOMEM;
	dir = strdup(p);
	if (!dir) {
		free(p);
		return -ENOMEM;
	}
	*strrchr(dir, '/') = '\0';
	r = lp_mkdir_p(dir, 0755);
	snprintf(line, sizeof(line), "%s\n", digest);
	if (r == 0)
		r = write_atomic(p, line, strlen(line));
	free(dir);
	free(p);
	return r;
}

static int refs_read(const struct cache *c, const struct lp_reg_ref *ref, char out[LP_REG_DIGEST_LEN])
{
	char *p = refs_path(c, ref), *text = NULL;
	size_t len;
	int r;

	if (!p)
		return -ENOMEM;
	r = lp_read_file(p, 256, &text, &len);
	free(p);
	if (r < 0)
		return r;
	text[strcspn(text, "\n")] = '\0';
	r = reg_digest_valid(text) ? 0 : -EBADMSG;
	if (r == 0)
		snprintf(out, LP_REG_DIGEST_LEN, "%s", text);
	free(text);
	return r;
}

/* Failures that mean "cannot reach it", after which a cached tag may stand in. */
static bool unreachable(int r)
{
	return r == -ECONNREFUSED || r == -ETIMEDOUT || r == -EHOSTUNREACH;
}

/* Get a manifest (by digest) from the cache, or the registry. */
static int get_manifest(struct reg_sess *s, const struct cache *c, const char *digest, char **body, size_t *len,
			struct lp_reg_pulled *ret)
{
	char got[LP_REG_DIGEST_LEN];
	int r = read_blob(c, digest, body, len);

	if (r == 0)
		return 0;
	ret->network = true;
	return fetch_manifest(s, c, digest, digest, body, len, got, ret);
}

int lp_reg_pull(const char *spec, const struct lp_reg_opts *o, struct lp_reg_pulled *ret)
{
	struct lp_reg_ref ref;
	struct cache c;
	struct reg_sess s;
	char top[LP_REG_DIGEST_LEN] = "", scope[512], have[256], *body = NULL, *mbody = NULL;
	const char *arch = o->arch ? o->arch : "amd64", *mdigest, *mt;
	size_t len = 0, mlen = 0;
	uint64_t msize = 0;
	cJSON *j = NULL, *m = NULL;
	const cJSON *d, *layers;
	int r;

	memset(ret, 0, sizeof(*ret));
	r = lp_reg_ref_parse(spec, &ref);
	if (r < 0)
		return r;
	r = cache_open(o, &c);
	if (r < 0) {
		lp_reg_ref_free(&ref);
		return r;
	}
	snprintf(scope, sizeof(scope), "repository:%s:pull", ref.repo);
	r = reg_sess_open(&s, o, ref.host, ref.repo, scope);
	if (r < 0)
		goto out;

	if (ref.digest) {
		snprintf(top, sizeof(top), "%s", ref.digest);
	} else {
		r = resolve_tag(&s, &c, &ref, top, ret);
		if (r < 0 && unreachable(r)) {
			char why[1024];

			snprintf(why, sizeof(why), "%s", lp_errmsg());
			if (refs_read(&c, &ref, top) == 0) {
				ret->offline = true;
				ret->offline_reason = strdup(why);
				r = 0;
			} else {
				lp_errmsg_set(why);
			}
		}
		if (r < 0)
			goto out;
	}
	/* The top document: an index (pick linux/arch) or the image manifest itself. */
	r = get_manifest(&s, &c, top, &body, &len, ret);
	if (r < 0)
		goto out;
	j = cJSON_ParseWithLength(body, len);
	if (!j) {
		r = lp_fail(-EBADMSG, NULL, "registry %s, repository %s: manifest %.19s is not JSON", ref.host, ref.repo,
			    top);
		goto out;
	}
	if (is_index_doc(j)) {
		d = pick_arch(j, arch, have, sizeof(have));
		if (!d) {
			r = lp_fail(-ENOENT, NULL, "registry %s, repository %s: the image index has no linux/%s image "
				    "(it has: %s); choose another --arch", ref.host, ref.repo, arch, *have ? have : "none");
			goto out;
		}
		if (desc(d, &mdigest, &msize) < 0) {
			r = lp_fail(-EBADMSG, NULL, "registry %s, repository %s: bad descriptor in image index %.19s",
				    ref.host, ref.repo, top);
			goto out;
		}
		r = get_manifest(&s, &c, mdigest, &mbody, &mlen, ret);
		if (r < 0)
			goto out;
		m = cJSON_ParseWithLength(mbody, mlen);
		if (!m) {
			r = lp_fail(-EBADMSG, NULL, "registry %s, repository %s: manifest %.19s is not JSON", ref.host,
				    ref.repo, mdigest);
			goto out;
		}
	} else {
		m = j;
		j = NULL;
		mdigest = top;
		mlen = len;
	}
	snprintf(ret->manifest_digest, sizeof(ret->manifest_digest), "%s", mdigest);
	snprintf(ret->top_digest, sizeof(ret->top_digest), "%s", top);
	mt = jstr(m, "mediaType");
	if (is_index_doc(m) || (mt && strcmp(mt, MT_OCI_MANIFEST) && strcmp(mt, MT_DOCKER_V2)) ||
	    !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(m, "config"))) {
		r = lp_fail(-EBADMSG, NULL, "registry %s, repository %s: manifest %.19s is not an OCI or Docker "
			    "schema 2 image manifest", ref.host, ref.repo, ret->manifest_digest);
		goto out;
	}
	if (!mt)
		mt = MT_OCI_MANIFEST;
	/* Config first, then the layers: everything is cached before anything is used. */
	layers = cJSON_GetObjectItemCaseSensitive(m, "layers");
	if (!cJSON_IsArray(layers)) {
		r = lp_fail(-EBADMSG, NULL, "registry %s, repository %s: manifest %.19s has no layers list", ref.host,
			    ref.repo, ret->manifest_digest);
		goto out;
	}
	for (int i = -1; i < cJSON_GetArraySize(layers); i++) {
		const cJSON *bd = i < 0 ? cJSON_GetObjectItemCaseSensitive(m, "config") : cJSON_GetArrayItem(layers, i);
		const char *bdg;
		uint64_t bsz;

		if (desc(bd, &bdg, &bsz) < 0) {
			r = lp_fail(-EBADMSG, NULL, "registry %s, repository %s: manifest %.19s has a bad descriptor",
				    ref.host, ref.repo, ret->manifest_digest);
			goto out;
		}
		if (have_blob(&c, bdg, (int64_t)bsz))
			continue;
		ret->network = true;
		r = fetch_blob(&s, &c, bdg, bsz, ret);
		if (r < 0)
			goto out;
	}
	if (!ref.digest && !ret->offline) {
		r = refs_write(&c, &ref, top);
		if (r < 0)
			goto out;
	}
	r = index_add(&c, mt, ret->manifest_digest, mlen, arch);
	if (r < 0)
		goto out;
	if (asprintf(&ret->oci_spec, "oci:%s:m-%s", c.dir, ret->manifest_digest + 7) < 0 ||
	    asprintf(&ret->ref, "%s/%s@%s", ref.host, ref.repo, ret->manifest_digest) < 0)
		r = -ENOMEM;
out:
	cJSON_Delete(j);
	cJSON_Delete(m);
	free(body);
	free(mbody);
	reg_sess_close(&s);
	cache_free(&c);
	lp_reg_ref_free(&ref);
	if (r < 0)
		lp_reg_pulled_free(ret);
	return r;
}
