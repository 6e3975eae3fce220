/* SPDX-License-Identifier: MIT */
/*
 * A client of the OCI distribution API (libcurl): pull a base image into a
 * content-addressed local cache that is itself an OCI image layout, and push
 * an image from a local layout. No daemon, no skopeo, no docker.
 *
 * References are spelled as containers-transports' docker transport (what
 * skopeo takes): docker://HOST[:PORT]/REPO[:TAG|@sha256:HEX]. A first
 * component without '.' or ':' (and not "localhost") is a Docker Hub name:
 * docker://busybox is registry-1.docker.io/library/busybox:latest.
 *
 * Cache (ROOT = --cache-dir, else $XDG_CACHE_HOME/lambdapack, else
 * ~/.cache/lambdapack): ROOT/registry/ is an OCI layout. blobs/sha256/ holds
 * every manifest, index, config and layer pulled, each verified (size and
 * digest) before it is renamed in; refs/HOST/REPO/TAG holds the digest a tag
 * last resolved to; index.json names each pulled platform manifest
 * "m-<hex>" so container/base.c imports it like any local base.
 *
 * Errors: -EACCES (401/403), -ENOENT (404: no such repository, tag or
 * blob), -EBUSY (429), -EBADMSG (digest or size mismatch, bad manifest),
 * -ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH (name or route), -EIO (5xx after
 * the retries, TLS, anything else), each with a one-line lp_errmsg() naming
 * the registry and the repository. Messages never hold credentials, tokens
 * or URLs with query strings.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LP_REG_DIGEST_LEN 72	/* "sha256:" + 64 hex + NUL */

/* A parsed docker:// reference. */
struct lp_reg_ref {
	char *host;	/* "registry-1.docker.io", "127.0.0.1:5000", "[::1]:5000" */
	char *repo;	/* "library/busybox" */
	char *tag;	/* NULL when only a digest was given; "latest" when neither */
	char *digest;	/* "sha256:<64 hex>" or NULL */
};

/*
 * Parse "docker://NAME" (the "docker://" prefix may be left out). Fails with
 * -LP_E_USAGE and a message saying what is wrong (uppercase, bad tag, bad
 * digest, credentials in the reference, ...). Never echoes a user:password.
 */
int lp_reg_ref_parse(const char *spec, struct lp_reg_ref *ret);
void lp_reg_ref_free(struct lp_reg_ref *r);
/* "HOST/REPO@DIGEST", or "HOST/REPO:TAG" without a digest (malloc'd). */
char *lp_reg_ref_str(const struct lp_reg_ref *r);

/* One WWW-Authenticate challenge (RFC 7235), the parameters the registries use. */
struct lp_reg_challenge {
	char scheme[16];	/* "Bearer", "Basic" (as sent) */
	char *realm;
	char *service;
	char *scope;
	char *error;
};

/*
 * Parse a WWW-Authenticate value. Of several challenges in one value the
 * Bearer one is kept, else the first. -EINVAL if it is not a challenge.
 */
int lp_reg_challenge_parse(const char *value, struct lp_reg_challenge *ret);
void lp_reg_challenge_free(struct lp_reg_challenge *c);

/* Credentials for one registry (any field may be NULL). */
struct lp_reg_cred {
	char *user;
	char *secret;		/* password */
	char *identity_token;	/* a refresh token for the token server */
};
void lp_reg_cred_free(struct lp_reg_cred *c);

/*
 * Find credentials for host the way docker and podman do:
 * $REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json,
 * $DOCKER_CONFIG/config.json (default ~/.docker/config.json): credHelpers
 * then auths then credsStore. A helper runs as docker-credential-NAME get
 * with the server name on stdin. Returns 0 with ret filled, 0 with ret empty
 * when there are none, or an error (a helper that fails, an auth file that
 * is not JSON).
 */
int lp_reg_cred_lookup(const char *host, struct lp_reg_cred *ret);

struct lp_reg_opts {
	const char *cache_root;	/* ROOT; NULL = $XDG_CACHE_HOME/lambdapack or ~/.cache/lambdapack */
	bool tls_verify;	/* false: unverified TLS, and plain HTTP when TLS fails */
	const char *arch;	/* "amd64" / "arm64"; NULL = amd64 */
	long connect_timeout;	/* seconds; 0 = 15 */
	long stall_timeout;	/* seconds without a byte before giving up; 0 = 30 */
	unsigned tries;		/* attempts for 5xx and dropped connections; 0 = 3 */
	uint64_t chunk_size;	/* push: blobs above this go up in PATCH chunks of it; 0 = 32 MiB */
};

/* Defaults, with LAMBDAPACK_REGISTRY_TIMEOUT (seconds) for the stall timeout. */
void lp_reg_opts_init(struct lp_reg_opts *o);

/* The cache root (malloc'd) for o: the rule in the comment above. */
int lp_reg_cache_root(const struct lp_reg_opts *o, char **ret);

struct lp_reg_pulled {
	char *oci_spec;				/* "oci:ROOT/registry:m-<hex>" for lp_oci_base_import */
	char *ref;				/* "HOST/REPO@sha256:..." of the platform manifest */
	char manifest_digest[LP_REG_DIGEST_LEN];/* the platform manifest */
	char top_digest[LP_REG_DIGEST_LEN];	/* what the reference resolved to (may be an index) */
	bool network;				/* the registry was asked (false: all from the cache) */
	bool offline;				/* registry unreachable; the tag's cached digest used */
	char *offline_reason;			/* why (one line, safe to print) when offline */
	uint64_t bytes_fetched;			/* blob and manifest bytes downloaded */
	size_t blobs_fetched;
};
void lp_reg_pulled_free(struct lp_reg_pulled *p);

/*
 * Make the image spec (docker://...) available in the cache, choosing the
 * linux/o->arch manifest of an index. A digest reference whose blobs are
 * all cached touches no network; a tag is resolved with one request, and
 * when the registry cannot be reached a tag resolved before is used
 * (ret->offline). Every blob is verified before it enters the cache; a
 * blob that does not match is deleted.
 */
int lp_reg_pull(const char *spec, const struct lp_reg_opts *o, struct lp_reg_pulled *ret);

struct lp_reg_pushed {
	char *ref;		/* "HOST/REPO@sha256:..." (what Lambda's --image-uri takes) */
	char *tag_ref;		/* "HOST/REPO:TAG" when pushed to a tag, else NULL */
	char digest[LP_REG_DIGEST_LEN];
	size_t blobs_total;
	size_t blobs_uploaded;	/* sent */
	size_t blobs_mounted;	/* cross-repository mounts */
	size_t blobs_present;	/* already there (HEAD) */
	uint64_t bytes_uploaded;
};
void lp_reg_pushed_free(struct lp_reg_pushed *p);

/*
 * Push the image whose manifest is blobs/sha256/<manifest_digest> in the OCI
 * layout directory layout to dest ("docker://HOST/REPO[:TAG]"; no tag =
 * latest). Blobs the registry has are skipped (HEAD), blobs of mount_from
 * (a docker:// reference of the base, or NULL) are mounted when it is the
 * same registry, the rest are uploaded (one PUT up to o->chunk_size, PATCH
 * chunks streamed from disk above); the manifest goes last, so an
 * interrupted push never leaves a manifest pointing at a missing blob.
 */
int lp_reg_push(const char *layout, const char *manifest_digest, const char *dest, const char *mount_from,
		const struct lp_reg_opts *o, struct lp_reg_pushed *ret);
