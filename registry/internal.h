/* SPDX-License-Identifier: MIT */
/* Internal to registry/: one HTTP session with one registry and repository. */
#pragma once

#include "registry/registry.h"
#include "core/hash.h"

/* Calls go through pointers loaded at run time (http.c): no type-checking macros over them. */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

struct reg_sess {
	const struct lp_reg_opts *o;
	const char *host;		/* not owned */
	const char *repo;		/* not owned: the repository messages name */
	char *base;			/* "https://HOST" or "http://HOST", after the ping */
	CURL *h;
	struct lp_reg_challenge ch;	/* from the ping (or a later 401) */
	bool have_ch;
	char *scope;			/* the token scope(s) wanted, space-separated */
	char *token_scope;		/* the scope the current token was granted for */
	char *authz;			/* "Authorization: ..." header, or NULL */
	struct lp_reg_cred cred;
	bool cred_loaded;
	bool cred_used;			/* credentials went into the current authorization */
	char curl_err[CURL_ERROR_SIZE];
};

/* One request: a body from memory or a file range; a response to memory, a file, or nowhere. */
struct reg_req {
	const char *method;		/* GET, HEAD, PUT, POST, PATCH */
	const char *url;		/* "/v2/..." (on the session's base) or an absolute URL */
	const char *what;		/* for messages: "manifest latest", "blob sha256:..." */
	const char *accept;
	const char *ctype;		/* request Content-Type */
	char content_range[64];
	const void *body;
	size_t body_len;
	int body_fd;			/* >= 0: the body is body_len64 bytes from body_off */
	uint64_t body_off, body_len64;
	uint64_t sent;
	int out_fd;			/* >= 0: the body goes here, hashed */
	uint64_t out_max;		/* more than this is an error (size check) */
	char *mem;			/* out_fd < 0 and keep_body: the body, NUL-terminated */
	size_t mem_len, mem_cap, mem_max;
	bool keep_body;
	struct lp_sha256 sha;
	uint64_t got;
	bool overflow;
	CURL *cur;			/* set while it runs */
	/* response */
	long status;
	char *location;
	char *digest_hdr;		/* Docker-Content-Digest */
	char *ctype_resp;
	char *www_auth;			/* the Bearer challenge if one was sent, else the first */
	long retry_after;		/* Retry-After in seconds, -1 when absent or a date */
};

void reg_req_init(struct reg_req *q, const char *method, const char *url, const char *what);
void reg_req_free(struct reg_req *q);

/* Open a session (no network yet). scope: "repository:R:pull" etc. */
int reg_sess_open(struct reg_sess *s, const struct lp_reg_opts *o, const char *host, const char *repo,
		  const char *scope);
void reg_sess_close(struct reg_sess *s);

/*
 * GET /v2/ once: choose https or (with tls_verify off, when TLS fails)
 * http, and learn the auth challenge. Errors are the one-line kind.
 */
int reg_ping(struct reg_sess *s);

/*
 * Run q with auth (a Bearer token fetched on 401, Basic from the auth
 * files), retries with backoff for 5xx and dropped connections. Returns 0
 * with q->status set for any HTTP answer, or the transport error (message
 * set). The caller judges the status; reg_status_fail() words it.
 */
int reg_do(struct reg_sess *s, struct reg_req *q);

/* The one-line error for an unexpected status of q; returns the errno for it. */
int reg_status_fail(struct reg_sess *s, const struct reg_req *q, const char *doing);

/* "sha256:<hex>" of 32 bytes. */
void reg_digest_str(const uint8_t d[32], char out[LP_REG_DIGEST_LEN]);
bool reg_digest_valid(const char *d);
