/* SPDX-License-Identifier: MIT */
/*
 * Push an image from an OCI layout: every blob the registry lacks (HEAD
 * first), mounted from the base's repository when that is on the same
 * registry, else uploaded (one PUT when small, PATCH chunks streamed from
 * the file when large); the manifest last, so a registry never holds a
 * manifest whose blobs are missing, whatever interrupts the push.
 */
#include "registry/internal.h"
#include "core/err.h"
#include "core/fsutil.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MT_OCI_MANIFEST	"application/vnd.oci.image.manifest.v1+json"
#define CHUNK_DEFAULT	(32ULL << 20)

void lp_reg_pushed_free(struct lp_reg_pushed *p)
{
	free(p->ref);
	free(p->tag_ref);
	memset(p, 0, sizeof(*p));
}

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The next URL of an upload session, from a Location header (absolute, or a path on the registry). */
static int next_location(struct reg_sess *s, const struct reg_req *q, char **loc, const char *what)
{
	char *n;

	if (!q->location || !*q->location)
		return lp_fail(-EIO, NULL, "registry %s, repository %s: %s: no upload location in the answer", s->host,
			       s->repo, what);
	if (!strncmp(q->location, "http://", 7) || !strncmp(q->location, "https://", 8) || q->location[0] == '/')
		n = strdup(q->location);
	else if (asprintf(&n, "/%s", q->location) < 0)
		n = NULL;
	if (!n)
		return -ENOMEM;
	free(*loc);
	*loc = n;
	return 0;
}

static int with_digest(const char *loc, const char *digest, char **ret)
{
	if (asprintf(ret, "%s%sdigest=%s", loc, strchr(loc, '?') ? "&" : "?", digest) < 0) {
		*ret = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Upload one blob from fd (size bytes) into the session that loc starts. */
static int upload(struct reg_sess *s, char **loc, int fd, uint64_t size, const char *digest, const char *what,
		  uint64_t chunk)
{
	struct reg_req q;
	char *url = NULL;
	int r = 0;

	if (size > chunk) {
		/* Chunks in order, each one PATCH with its Content-Range, streamed from the file. */
		for (uint64_t off = 0; off < size && r == 0; off += chunk) {
			uint64_t n = size - off < chunk ? size - off : chunk;

			reg_req_init(&q, "PATCH", *loc, what);
			q.ctype = "application/octet-stream";
			q.body_fd = fd;
			q.body_off = off;
			q.body_len64 = n;
			snprintf(q.content_range, sizeof(q.content_range), "%llu-%llu", (unsigned long long)off,
				 (unsigned long long)(off + n - 1));
			r = reg_do(s, &q);
			if (r == 0 && q.status != 202)
				r = reg_status_fail(s, &q, "push");
			if (r == 0)
				r = next_location(s, &q, loc, what);
			reg_req_free(&q);
			if (r == 0)
				r = lp_check_cancel(NULL);
		}
		if (r < 0)
			return r;
		if ((r = with_digest(*loc, digest, &url)) < 0)
			return r;
		reg_req_init(&q, "PUT", url, what);
		q.body = "";
		q.body_len = 0;
	} else {
		if ((r = with_digest(*loc, digest, &url)) < 0)
			return r;
		reg_req_init(&q, "PUT", url, what);
		q.ctype = "application/octet-stream";
		q.body_fd = fd;
		q.body_off = 0;
		q.body_len64 = size;
	}
	r = reg_do(s, &q);
	if (r == 0 && q.status != 201 && q.status != 204)
		r = q.status == 400 ? lp_fail(-EBADMSG, NULL, "registry %s, repository %s: %s: the registry refused "
					      "it (400: digest or size does not match?)", s->host, s->repo, what) :
			reg_status_fail(s, &q, "push");
	reg_req_free(&q);
	free(url);
	return r;
}

static int push_blob(struct reg_sess *s, const char *layout, const char *digest, uint64_t size,
		     const char *from_repo, const struct lp_reg_opts *o, struct lp_reg_pushed *ret)
{
	struct reg_req q;
	char url[768], what[96], *path = NULL, *loc = NULL;
	struct stat st;
	int fd = -1, r;

	snprintf(what, sizeof(what), "blob %.19s", digest);
	snprintf(url, sizeof(url), "/v2/%s/blobs/%s", s->repo, digest);
	reg_req_init(&q, "HEAD", url, what);
	r = reg_do(s, &q);
	if (r == 0 && q.status == 200) {
		ret->blobs_present++;
		reg_req_free(&q);
		return 0;
	}
	if (r == 0 && q.status != 404)
		r = reg_status_fail(s, &q, "push");
	reg_req_free(&q);
	if (r < 0)
		return r;
	if (asprintf(&path, "%s/blobs/sha256/%s", layout, digest + 7) < 0)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != size) {
		r = lp_fail(fd < 0 ? -errno : -EBADMSG, path, "%s", fd < 0 ? strerror(errno) :
			    "the blob's size is not the manifest's");
		goto out;
	}
	/* Same registry, other repository: ask it to link the blob instead of sending it. */
	if (from_repo)
		snprintf(url, sizeof(url), "/v2/%s/blobs/uploads/?mount=%s&from=%s", s->repo, digest, from_repo);
	else
		snprintf(url, sizeof(url), "/v2/%s/blobs/uploads/", s->repo);
	reg_req_init(&q, "POST", url, what);
	r = reg_do(s, &q);
	if (r == 0 && from_repo && q.status == 201) {
		ret->blobs_mounted++;
		reg_req_free(&q);
		goto out;
	}
	if (r == 0 && q.status != 202)
		r = reg_status_fail(s, &q, "push");
	if (r == 0)
		r = next_location(s, &q, &loc, what);
	reg_req_free(&q);
	if (r == 0)
		r = upload(s, &loc, fd, size, digest, what, o->chunk_size ? o->chunk_size : CHUNK_DEFAULT);
	if (r == 0) {
		ret->blobs_uploaded++;
		ret->bytes_uploaded += size;
	}
out:
	if (fd >= 0)
		close(fd);
	free(loc);
	free(path);
	return r;
}

static const char *shown_host(const char *host)
{
	return !strcmp(host, "registry-1.docker.io") ? "docker.io" : host;
}

int lp_reg_push(const char *layout, const char *manifest_digest, const char *dest, const char *mount_from,
		const struct lp_reg_opts *o, struct lp_reg_pushed *ret)
{
	struct lp_reg_ref ref, from = { 0 };
	struct reg_sess s = { 0 };
	char *path = NULL, *body = NULL, *scope = NULL, url[768], got[LP_REG_DIGEST_LEN];
	const char *from_repo = NULL, *mt;
	size_t len;
	uint8_t d[32];
	cJSON *m = NULL;
	const cJSON *layers;
	int r;

	memset(ret, 0, sizeof(*ret));
	r = lp_reg_ref_parse(dest, &ref);
	if (r < 0)
		return r;
	if (!reg_digest_valid(manifest_digest)) {
		r = lp_fail(-EINVAL, layout, "not a manifest digest");
		goto out;
	}
	if (ref.digest && strcmp(ref.digest, manifest_digest)) {
		r = lp_fail(-LP_E_USAGE, NULL, "--push names digest %.19s but the image is %.19s; push to a tag",
			    ref.digest, manifest_digest);
		goto out;
	}
	if (asprintf(&path, "%s/blobs/sha256/%s", layout, manifest_digest + 7) < 0) {
		r = -ENOMEM;
		goto out;
	}
	r = lp_read_file(path, 4 << 20, &body, &len);
	if (r < 0) {
		r = lp_fail(r, path, "cannot read the manifest: %s", strerror(-r));
		goto out;
	}
	lp_sha256(body, len, d);
	reg_digest_str(d, got);
	if (strcmp(got, manifest_digest) || !(m = cJSON_ParseWithLength(body, len))) {
		r = lp_fail(-EBADMSG, path, "the manifest does not match its digest or is not JSON");
		goto out;
	}
	mt = jstr(m, "mediaType");
	if (!mt)
		mt = MT_OCI_MANIFEST;
	if (mount_from && lp_reg_ref_parse(mount_from, &from) == 0 && !strcmp(from.host, ref.host) &&
	    strcmp(from.repo, ref.repo))
		from_repo = from.repo;
	if (asprintf(&scope, "repository:%s:pull,push%s%s%s", ref.repo, from_repo ? " repository:" : "",
		     from_repo ? from_repo : "", from_repo ? ":pull" : "") < 0) {
		scope = NULL;
		r = -ENOMEM;
		goto out;
	}
	r = reg_sess_open(&s, o, ref.host, ref.repo, scope);
	if (r < 0)
		goto out;
	layers = cJSON_GetObjectItemCaseSensitive(m, "layers");
	if (!cJSON_IsArray(layers) || !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(m, "config"))) {
		r = lp_fail(-EBADMSG, path, "not an image manifest");
		goto out;
	}
	/* Layers, then the config, then (only when all are there) the manifest. */
	for (int i = 0; i <= cJSON_GetArraySize(layers); i++) {
		const cJSON *bd = i < cJSON_GetArraySize(layers) ? cJSON_GetArrayItem(layers, i) :
				  cJSON_GetObjectItemCaseSensitive(m, "config");
		const char *dg = jstr(bd, "digest");
		const cJSON *sz = cJSON_GetObjectItemCaseSensitive(bd, "size");

		if (!reg_digest_valid(dg) || !cJSON_IsNumber(sz) || sz->valuedouble < 0) {
			r = lp_fail(-EBADMSG, path, "the manifest has a bad descriptor");
			goto out;
		}
		ret->blobs_total++;
		r = push_blob(&s, layout, dg, (uint64_t)sz->valuedouble, from_repo, o, ret);
		if (r < 0)
			goto out;
		if ((r = lp_check_cancel(NULL)) < 0)
			goto out;
	}
	{
		struct reg_req q;

		snprintf(url, sizeof(url), "/v2/%s/manifests/%s", ref.repo, ref.digest ? ref.digest : ref.tag);
		reg_req_init(&q, "PUT", url, "manifest");
		q.ctype = mt;
		q.body = body;
		q.body_len = len;
		r = reg_do(&s, &q);
		if (r == 0 && q.status != 201 && q.status != 200)
			r = reg_status_fail(&s, &q, "push");
		if (r == 0 && q.digest_hdr && reg_digest_valid(q.digest_hdr) && strcmp(q.digest_hdr, manifest_digest))
			r = lp_fail(-EBADMSG, NULL, "registry %s, repository %s: the registry stored the manifest as "
				    "%.19s, not %.19s", ref.host, ref.repo, q.digest_hdr, manifest_digest);
		reg_req_free(&q);
		if (r < 0)
			goto out;
	}
	snprintf(ret->digest, sizeof(ret->digest), "%s", manifest_digest);
	if (asprintf(&ret->ref, "%s/%s@%s", shown_host(ref.host), ref.repo, manifest_digest) < 0 ||
	    (!ref.digest && asprintf(&ret->tag_ref, "%s/%s:%s", shown_host(ref.host), ref.repo, ref.tag) < 0))
		r = -ENOMEM;
out:
	reg_sess_close(&s);
	cJSON_Delete(m);
	free(body);
	free(path);
	free(scope);
	lp_reg_ref_free(&from);
	lp_reg_ref_free(&ref);
	if (r < 0)
		lp_reg_pushed_free(ret);
	return r;
}
