/* SPDX-License-Identifier: MIT */
/*
 * HTTP for the registry client: libcurl with bounded connect and stall
 * timeouts, retries with backoff for 5xx and dropped connections, and the
 * auth dance (ping, WWW-Authenticate, Bearer token or Basic). Every error
 * is one line naming the registry and the repository; no URL with its
 * query, no header value and no credential ever reaches a message.
 */
#include "registry/internal.h"
#include "core/err.h"
#include "core/fsutil.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/*
 * libcurl is loaded when a registry session first opens, not linked: it
 * brings about thirty libraries (TLS, Kerberos, LDAP, ...) whose loading
 * and relocation would cost every run, pack and analyze included, some
 * 15 ms before main(). LP_CURL_SONAME is the ABI the headers describe.
 */
#define LP_CURL_SONAME "libcurl.so.4"

static struct {
	CURLcode (*global_init)(long flags);
	CURL *(*easy_init)(void);
	void (*easy_cleanup)(CURL *h);
	void (*easy_reset)(CURL *h);
	CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
	CURLcode (*easy_perform)(CURL *h);
	CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
	const char *(*easy_strerror)(CURLcode rc);
	char *(*easy_escape)(CURL *h, const char *s, int len);
	void (*free)(void *p);
	struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
	void (*slist_free_all)(struct curl_slist *l);
	bool ok;
	char err[512];
} lc;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void *curl_sym(void *dl, const char *name, bool *ok)
{
	void *p = dlsym(dl, name);

	if (!p && *ok) {
		snprintf(lc.err, sizeof(lc.err), "%s has no symbol %s", LP_CURL_SONAME, name);
		*ok = false;
	}
	return p;
}

static void curl_init_once(void)
{
	void *dl = dlopen(LP_CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
	bool ok = true;

	if (!dl) {
		const char *e = dlerror();

		snprintf(lc.err, sizeof(lc.err), "%s", e ? e : "not found");
		return;
	}
	/* Through void * as POSIX allows for dlsym results. */
	*(void **)&lc.global_init = curl_sym(dl, "curl_global_init", &ok);
	*(void **)&lc.easy_init = curl_sym(dl, "curl_easy_init", &ok);
	*(void **)&lc.easy_cleanup = curl_sym(dl, "curl_easy_cleanup", &ok);
	*(void **)&lc.easy_reset = curl_sym(dl, "curl_easy_reset", &ok);
	*(void **)&lc.easy_setopt = curl_sym(dl, "curl_easy_setopt", &ok);
	*(void **)&lc.easy_perform = curl_sym(dl, "curl_easy_perform", &ok);
	*(void **)&lc.easy_getinfo = curl_sym(dl, "curl_easy_getinfo", &ok);
	*(void **)&lc.easy_strerror = curl_sym(dl, "curl_easy_strerror", &ok);
	*(void **)&lc.easy_escape = curl_sym(dl, "curl_easy_escape", &ok);
	*(void **)&lc.free = curl_sym(dl, "curl_free", &ok);
	*(void **)&lc.slist_append = curl_sym(dl, "curl_slist_append", &ok);
	*(void **)&lc.slist_free_all = curl_sym(dl, "curl_slist_free_all", &ok);
	if (!ok)
		return;	/* dl stays loaded: harmless, and never retried */
	if (lc.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(lc.err, sizeof(lc.err), "curl_global_init failed");
		return;
	}
	lc.ok = true;
}

/* From here on the curl_* calls go through the loaded library. */
#define curl_easy_init lc.easy_init
#define curl_easy_cleanup lc.easy_cleanup
#define curl_easy_reset lc.easy_reset
#undef curl_easy_setopt	/* curl.h may wrap these two in macros */
#undef curl_easy_getinfo
#define curl_easy_setopt lc.easy_setopt
#define curl_easy_perform lc.easy_perform
#define curl_easy_getinfo lc.easy_getinfo
#define curl_easy_strerror lc.easy_strerror
#define curl_easy_escape lc.easy_escape
#define curl_free lc.free
#define curl_slist_append lc.slist_append
#define curl_slist_free_all lc.slist_free_all

void lp_reg_opts_init(struct lp_reg_opts *o)
{
	const char *t = getenv("LAMBDAPACK_REGISTRY_TIMEOUT");
	char *end;
	long v;

	memset(o, 0, sizeof(*o));
	o->tls_verify = true;
	if (t && *t) {
		v = strtol(t, &end, 10);
		if (!*end && v > 0 && v < 86400) {
			o->stall_timeout = v;
			o->connect_timeout = v < 15 ? v : 15;
		}
	}
}

void reg_digest_str(const uint8_t d[32], char out[LP_REG_DIGEST_LEN])
{
	memcpy(out, "sha256:", 7);
	lp_hex(d, 32, out + 7);
}

bool reg_digest_valid(const char *d)
{
	if (!d || strncmp(d, "sha256:", 7) != 0 || strlen(d) != 71)
		return false;
	for (int i = 7; i < 71; i++)
		if (!isdigit((unsigned char)d[i]) && !(d[i] >= 'a' && d[i] <= 'f'))
			return false;
	return true;
}

void reg_req_init(struct reg_req *q, const char *method, const char *url, const char *what)
{
	memset(q, 0, sizeof(*q));
	q->method = method;
	q->url = url;
	q->what = what;
	q->body_fd = -1;
	q->out_fd = -1;
	q->out_max = UINT64_MAX;
	q->mem_max = 8 << 20;
	q->retry_after = -1;
}

static void resp_reset(struct reg_req *q)
{
	free(q->location);
	free(q->digest_hdr);
	free(q->ctype_resp);
	free(q->www_auth);
	q->location = q->digest_hdr = q->ctype_resp = q->www_auth = NULL;
	q->retry_after = -1;
	q->status = 0;
	q->mem_len = 0;
	if (q->mem)
		q->mem[0] = '\0';
	q->got = 0;
	q->sent = 0;
	q->overflow = false;
	lp_sha256_init(&q->sha);
}

void reg_req_free(struct reg_req *q)
{
	resp_reset(q);
	free(q->mem);
	q->mem = NULL;
}

int reg_sess_open(struct reg_sess *s, const struct lp_reg_opts *o, const char *host, const char *repo,
		  const char *scope)
{
	memset(s, 0, sizeof(*s));
	pthread_once(&curl_once, curl_init_once);
	if (!lc.ok)
		return lp_fail(-ENOENT, LP_CURL_SONAME,
			       "cannot load libcurl, which the registry client needs (%s); install it "
			       "(Debian: apt install libcurl4)", lc.err);
	s->o = o;
	s->host = host;
	s->repo = repo;
	s->h = curl_easy_init();
	s->scope = scope ? strdup(scope) : NULL;
	if (!s->h || (scope && !s->scope)) {
		reg_sess_close(s);
		return -ENOMEM;
	}
	return 0;
}

void reg_sess_close(struct reg_sess *s)
{
	if (s->h)
		curl_easy_cleanup(s->h);
	free(s->base);
	free(s->scope);
	free(s->token_scope);
	if (s->authz) {
		memset(s->authz, 0, strlen(s->authz));
		free(s->authz);
	}
	lp_reg_cred_free(&s->cred);
	lp_reg_challenge_free(&s->ch);
	memset(s, 0, sizeof(*s));
}

/* ---- one transfer ---- */

static char *hdr_value(const char *line, size_t n, const char *name)
{
	size_t k = strlen(name);
	const char *v;
	char *out;

	if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
		return NULL;
	v = line + k + 1;
	while (v < line + n && (*v == ' ' || *v == '\t'))
		v++;
	while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n' || line[n - 1] == ' '))
		n--;
	if (line + n < v)
		return strdup("");
	out = strndup(v, (size_t)(line + n - v));
	return out;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
	struct reg_req *q = ud;
	size_t n = size * nitems;
	char *v;

	/* A redirect's headers come first; keep only the final response's. */
	if (n >= 5 && !strncmp(buf, "HTTP/", 5)) {
		free(q->location);
		free(q->digest_hdr);
		free(q->ctype_resp);
		free(q->www_auth);
		q->location = q->digest_hdr = q->ctype_resp = q->www_auth = NULL;
		q->retry_after = -1;
		return n;
	}
	if ((v = hdr_value(buf, n, "Retry-After"))) {
		char *end;
		long secs = strtol(v, &end, 10);

		/* delta-seconds only; an HTTP-date is left to the usual backoff. */
		q->retry_after = end != v && !*end && secs >= 0 ? secs : -1;
		free(v);
	} else if ((v = hdr_value(buf, n, "Location"))) {
		free(q->location);
		q->location = v;
	} else if ((v = hdr_value(buf, n, "Docker-Content-Digest"))) {
		free(q->digest_hdr);
		q->digest_hdr = v;
	} else if ((v = hdr_value(buf, n, "Content-Type"))) {
		free(q->ctype_resp);
		q->ctype_resp = v;
	} else if ((v = hdr_value(buf, n, "WWW-Authenticate"))) {
		if (!q->www_auth || (strncasecmp(q->www_auth, "Bearer", 6) && !strncasecmp(v, "Bearer", 6))) {
			free(q->www_auth);
			q->www_auth = v;
		} else {
			free(v);
		}
	}
	return n;
}

static size_t on_body(char *buf, size_t size, size_t nmemb, void *ud)
{
	struct reg_req *q = ud;
	size_t n = size * nmemb;
	long code = 0;

	curl_easy_getinfo(q->cur, CURLINFO_RESPONSE_CODE, &code);
	/* Only a success body may go into a blob file; an error body is kept (short) for the message. */
	if (q->out_fd >= 0 && code >= 200 && code < 300) {
		if (q->got + n > q->out_max) {
			q->overflow = true;
			return 0;
		}
		lp_sha256_update(&q->sha, buf, n);
		if (lp_write_all(q->out_fd, buf, n) < 0)
			return 0;
		q->got += n;
		return n;
	}
	if (!q->keep_body && q->out_fd < 0 && code >= 200 && code < 300)
		return n;
	if (q->mem_len + n > q->mem_max) {
		if (code >= 200 && code < 300) {
			q->overflow = true;
			return 0;
		}
		return n;	/* a long error page: the start is enough */
	}
	if (q->mem_len + n + 1 > q->mem_cap) {
		size_t cap = q->mem_cap ? q->mem_cap : 4096;
		char *m;

		while (cap < q->mem_len + n + 1)
			cap *= 2;
		m = realloc(q->mem, cap);
		if (!m)
			return 0;
		q->mem = m;
		q->mem_cap = cap;
	}
	memcpy(q->mem + q->mem_len, buf, n);
	q->mem_len += n;
	q->mem[q->mem_len] = '\0';
	if (code >= 200 && code < 300) {
		lp_sha256_update(&q->sha, buf, n);
		q->got += n;
	}
	return n;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *ud)
{
	struct reg_req *q = ud;
	size_t want = size * nitems;
	uint64_t total = q->body_fd >= 0 ? q->body_len64 : q->body_len;
	uint64_t left = total - q->sent;

	if (want > left)
		want = (size_t)left;
	if (!want)
		return 0;
	if (q->body_fd >= 0) {
		ssize_t got = pread(q->body_fd, buf, want, (off_t)(q->body_off + q->sent));

		if (got <= 0)
			return CURL_READFUNC_ABORT;
		want = (size_t)got;
	} else {
		memcpy(buf, (const char *)q->body + q->sent, want);
	}
	q->sent += want;
	return want;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	return lp_cancelled() ? 1 : 0;
}

static long stall_timeout(const struct lp_reg_opts *o)
{
	return o->stall_timeout > 0 ? o->stall_timeout : 30;
}

/* One attempt. Returns the curl code; q->status is the HTTP status when it got one. */
static CURLcode perform(struct reg_sess *s, struct reg_req *q, const char *url, const char *authz)
{
	struct curl_slist *hl = NULL;
	char line[512];
	CURLcode rc;
	CURL *h = s->h;

	curl_easy_reset(h);
	resp_reset(q);
	if (q->out_fd >= 0) {
		if (ftruncate(q->out_fd, 0) < 0 || lseek(q->out_fd, 0, SEEK_SET) < 0)
			return CURLE_WRITE_ERROR;
	}
	q->cur = h;
	s->curl_err[0] = '\0';
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, s->curl_err);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "lambdapack/" LP_VERSION);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, s->o->tls_verify ? "https" : "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
	/* Registries answer a HEAD or a GET; a redirect of a PUT/PATCH is not followed with its body. */
	curl_easy_setopt(h, CURLOPT_POSTREDIR, 0L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, s->o->connect_timeout > 0 ? s->o->connect_timeout : 15L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, stall_timeout(s->o));
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, q);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, q);
	if (!s->o->tls_verify) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	} else {
		const char *ca = getenv("SSL_CERT_FILE");

		/* libcurl with OpenSSL reads the system bundle; SSL_CERT_FILE replaces it, as in Go tools. */
		if (ca && *ca)
			curl_easy_setopt(h, CURLOPT_CAINFO, ca);
		if ((ca = getenv("SSL_CERT_DIR")) && *ca)
			curl_easy_setopt(h, CURLOPT_CAPATH, ca);
	}
	if (q->accept) {
		snprintf(line, sizeof(line), "Accept: %s", q->accept);
		hl = curl_slist_append(hl, line);
	}
	if (q->ctype) {
		snprintf(line, sizeof(line), "Content-Type: %s", q->ctype);
		hl = curl_slist_append(hl, line);
	}
	if (q->content_range[0]) {
		snprintf(line, sizeof(line), "Content-Range: %s", q->content_range);
		hl = curl_slist_append(hl, line);
	}
	if (authz)
		hl = curl_slist_append(hl, authz);
	hl = curl_slist_append(hl, "Expect:");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);

	if (!strcmp(q->method, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (!strcmp(q->method, "PUT") || !strcmp(q->method, "PATCH")) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, q);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)(q->body_fd >= 0 ? q->body_len64 : q->body_len));
		if (!strcmp(q->method, "PATCH"))
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PATCH");
	} else if (!strcmp(q->method, "POST")) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->body ? q->body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(q->body ? q->body_len : 0));
	}
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &q->status);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hl);
	q->cur = NULL;
	return rc;
}

/* Transient: worth another try. */
static bool transient(CURLcode rc)
{
	return rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING ||
	       rc == CURLE_PARTIAL_FILE || rc == CURLE_HTTP2 || rc == CURLE_HTTP2_STREAM;
}

static int where_fail(struct reg_sess *s, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int where_fail(struct reg_sess *s, int err, const char *fmt, ...)
{
	char msg[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (s->repo)
		return lp_fail(err, NULL, "registry %s, repository %s: %s", s->host, s->repo, msg);
	return lp_fail(err, NULL, "registry %s: %s", s->host, msg);
}

static int transport_fail(struct reg_sess *s, const struct reg_req *q, CURLcode rc, unsigned tries)
{
	const char *what = q->what ? q->what : "request";
	char again[48] = "";

	if (tries > 1)
		snprintf(again, sizeof(again), " (after %u tries)", tries);
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
		return where_fail(s, -ECONNREFUSED, "%s: cannot connect (connection refused or unreachable)", what);
	case CURLE_OPERATION_TIMEDOUT:
		return where_fail(s, -ETIMEDOUT, "%s: timed out (no data for %ld s, or no connection)", what,
				  stall_timeout(s->o));
	case CURLE_COULDNT_RESOLVE_HOST:
		return where_fail(s, -EHOSTUNREACH, "%s: cannot resolve the host name", what);
	case CURLE_ABORTED_BY_CALLBACK:
		return lp_fail(-EINTR, NULL, "interrupted");
	case CURLE_WRITE_ERROR:
		if (q->overflow)
			return where_fail(s, -EBADMSG, "%s: the registry sent more bytes than the descriptor's size", what);
		return where_fail(s, -EIO, "%s: cannot write what was received", what);
	case CURLE_PEER_FAILED_VERIFICATION:
		return where_fail(s, -EIO, "%s: TLS certificate not trusted (%s); set SSL_CERT_FILE to its CA, or "
				  "--tls-verify=false for a local registry", what, curl_easy_strerror(rc));
	case CURLE_SSL_CONNECT_ERROR:
		return where_fail(s, -EIO, "%s: TLS handshake failed%s", what, s->o->tls_verify ?
				  " (a plain-HTTP registry? --tls-verify=false, for a local registry only)" : "");
	default:
		if (transient(rc))
			return where_fail(s, -EIO, "%s: connection dropped%s", what, again);
		return where_fail(s, -EIO, "%s: %s", what, curl_easy_strerror(rc));
	}
}

/* The registry's error code from {"errors":[{"code":...}]} (a fixed word list), if any. */
static void error_code(const struct reg_req *q, char *out, size_t n)
{
	cJSON *j = q->mem && q->mem_len ? cJSON_Parse(q->mem) : NULL;
	const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "errors"), 0);
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");

	out[0] = '\0';
	if (cJSON_IsString(c)) {
		size_t k = 0;

		for (const char *p = c->valuestring; *p && k + 1 < n; p++)
			if (isalnum((unsigned char)*p) || *p == '_')
				out[k++] = *p;
		out[k] = '\0';
	}
	cJSON_Delete(j);
}

int reg_status_fail(struct reg_sess *s, const struct reg_req *q, const char *doing)
{
	char code[64];
	const char *what = q->what ? q->what : "request";

	error_code(q, code, sizeof(code));
	switch (q->status) {
	case 401:
		if (s->cred_used)
			return where_fail(s, -EACCES, "%s: 401 unauthorized: the credentials were rejected%s%s", what,
					  *code ? " " : "", code);
		return where_fail(s, -EACCES, "%s: 401 unauthorized: no credentials for %s (docker login, "
				  "$REGISTRY_AUTH_FILE or $DOCKER_CONFIG/config.json)%s%s", what, s->host,
				  *code ? " " : "", code);
	case 403:
		return where_fail(s, -EACCES, "%s: 403 forbidden (not allowed to %s)%s%s", what, doing,
				  *code ? " " : "", code);
	case 404:
		return where_fail(s, -ENOENT, "%s: 404 not found%s%s", what, *code ? " " : "", code);
	case 429:
		return where_fail(s, -EBUSY, "%s: 429 too many requests (after %u tries; rate limited: try later or log in)",
				  what, s->o->tries ? s->o->tries : 3);
	default:
		if (q->status >= 500)
			return where_fail(s, -EIO, "%s: server error %ld (after %u tries)%s%s", what, q->status,
					  s->o->tries ? s->o->tries : 3, *code ? " " : "", code);
		return where_fail(s, -EIO, "%s: unexpected HTTP status %ld while trying to %s%s%s", what, q->status,
				  doing, *code ? " " : "", code);
	}
}

static char *full_url(struct reg_sess *s, const char *url)
{
	char *u;

	if (!strncmp(url, "http://", 7) || !strncmp(url, "https://", 8))
		return strdup(url);
	if (asprintf(&u, "%s%s", s->base, url) < 0)
		return NULL;
	return u;
}

/* A registry's Retry-After is honoured up to this; a longer wait is its problem, not the build's. */
#define RETRY_AFTER_MAX	10

static void backoff(unsigned attempt, long retry_after)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = 250000000L };

	if (retry_after >= 0) {
		ts.tv_sec = retry_after < RETRY_AFTER_MAX ? retry_after : RETRY_AFTER_MAX;
		ts.tv_nsec = 0;
		attempt = 1;
	}
	/* 0.25 s, 0.5 s, 1 s, ... capped at 4 s. */
	for (unsigned i = 1; i < attempt && ts.tv_sec < 4; i++) {
		ts.tv_nsec *= 2;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec += ts.tv_nsec / 1000000000L;
			ts.tv_nsec %= 1000000000L;
		}
	}
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !lp_cancelled())
		;
}

/* Run with retries (5xx, 429 after its Retry-After, dropped connections), without auth handling. */
static int run_retry(struct reg_sess *s, struct reg_req *q, const char *url, const char *authz, CURLcode *ret_rc)
{
	unsigned tries = s->o->tries ? s->o->tries : 3;
	CURLcode rc = CURLE_OK;

	for (unsigned a = 1; a <= tries; a++) {
		rc = perform(s, q, url, authz);
		if (rc == CURLE_ABORTED_BY_CALLBACK || lp_cancelled())
			return lp_fail(-EINTR, NULL, "interrupted");
		if (rc == CURLE_OK && q->status < 500 && q->status != 429)
			break;
		if (rc != CURLE_OK && !transient(rc))
			break;
		/* A body read from a file can be sent again; a one-shot stream could not (we have none). */
		if (a < tries)
			backoff(a, rc == CURLE_OK ? q->retry_after : -1);
	}
	*ret_rc = rc;
	if (rc != CURLE_OK)
		return transport_fail(s, q, rc, tries);
	return 0;
}

/* ---- auth ---- */

static int load_cred(struct reg_sess *s)
{
	int r;

	if (s->cred_loaded)
		return 0;
	r = lp_reg_cred_lookup(s->host, &s->cred);
	if (r < 0)
		return r;
	s->cred_loaded = true;
	return 0;
}

static void set_authz(struct reg_sess *s, char *v)
{
	if (s->authz) {
		memset(s->authz, 0, strlen(s->authz));
		free(s->authz);
	}
	s->authz = v;
}

static int basic_header(const struct lp_reg_cred *c, char **ret)
{
	size_t n = strlen(c->user) + strlen(c->secret) + 1;
	char *raw = malloc(n + 1), *b64 = malloc(4 * (n / 3 + 1) + 1);
	int r = 0;

	if (!raw || !b64) {
		r = -ENOMEM;
		goto out;
	}
	snprintf(raw, n + 1, "%s:%s", c->user, c->secret);
	lp_base64((const uint8_t *)raw, n, b64);
	if (asprintf(ret, "Authorization: Basic %s", b64) < 0)
		r = -ENOMEM;
out:
	if (raw)
		memset(raw, 0, n);
	if (b64)
		memset(b64, 0, strlen(b64));
	free(raw);
	free(b64);
	return r;
}

/* Append "&key=value" to *u, value percent-encoded. */
static int add_param(char **u, const char *key, const char *value, CURL *h)
{
	char *e = curl_easy_escape(h, value, 0), *n;
	int r;

	if (!e)
		return -ENOMEM;
	r = asprintf(&n, "%s%s%s=%s", *u, strchr(*u, '?') ? "&" : "?", key, e);
	curl_free(e);
	if (r < 0)
		return -ENOMEM;
	free(*u);
	*u = n;
	return 0;
}

/* The host of a URL, for messages (never its path or query). */
static void url_host(const char *url, char *out, size_t n)
{
	const char *p = strstr(url, "://");

	p = p ? p + 3 : url;
	snprintf(out, n, "%.*s", (int)strcspn(p, "/?#"), p);
	/* user:pass@host in a realm would be a secret: keep what follows the '@'. */
	if (strchr(out, '@'))
		memmove(out, strchr(out, '@') + 1, strlen(strchr(out, '@') + 1) + 1);
}

/* Get a Bearer token for s->scope from the challenge's realm. */
static int fetch_token(struct reg_sess *s)
{
	struct reg_req q;
	char *url = NULL, *hdr = NULL, *form = NULL, realm_host[256];
	const char *scope = s->scope ? s->scope : s->ch.scope;
	bool secure;
	CURLcode rc;
	cJSON *j = NULL;
	const cJSON *t;
	int r;

	if (!s->ch.realm || (strncmp(s->ch.realm, "https://", 8) && strncmp(s->ch.realm, "http://", 7)))
		return where_fail(s, -EACCES, "the registry asks for a token but names no usable token server");
	url_host(s->ch.realm, realm_host, sizeof(realm_host));
	secure = !strncmp(s->ch.realm, "https://", 8) || !s->o->tls_verify;
	r = load_cred(s);
	if (r < 0)
		return r;
	reg_req_init(&q, "GET", NULL, "token");
	q.keep_body = true;
	q.mem_max = 1 << 20;
	if (!(url = strdup(s->ch.realm)))
		return -ENOMEM;
	s->cred_used = false;
	if (s->cred.identity_token && secure) {
		/* An identity token is a refresh token: OAuth2 POST, as docker does. */
		char *e1 = curl_easy_escape(s->h, s->cred.identity_token, 0);
		char *e2 = curl_easy_escape(s->h, s->ch.service ? s->ch.service : "", 0);
		char *e3 = curl_easy_escape(s->h, scope ? scope : "", 0);

		if (!e1 || !e2 || !e3 ||
		    asprintf(&form, "grant_type=refresh_token&client_id=lambdapack&refresh_token=%s&service=%s&scope=%s",
			     e1, e2, e3) < 0)
			form = NULL;
		if (e1)
			memset(e1, 0, strlen(e1));
		curl_free(e1);
		curl_free(e2);
		curl_free(e3);
		if (!form) {
			r = -ENOMEM;
			goto out;
		}
		q.method = "POST";
		q.body = form;
		q.body_len = strlen(form);
		q.ctype = "application/x-www-form-urlencoded";
		s->cred_used = true;
	} else {
		if (s->ch.service && (r = add_param(&url, "service", s->ch.service, s->h)) < 0)
			goto out;
		/* Several scopes are several scope= parameters. */
		if (scope) {
			char *sc = strdup(scope), *save = NULL;

			if (!sc) {
				r = -ENOMEM;
				goto out;
			}
			for (char *t1 = strtok_r(sc, " ", &save); t1; t1 = strtok_r(NULL, " ", &save))
				if ((r = add_param(&url, "scope", t1, s->h)) < 0)
					break;
			free(sc);
			if (r < 0)
				goto out;
		}
		if (s->cred.user && s->cred.secret && secure) {
			if ((r = basic_header(&s->cred, &hdr)) < 0)
				goto out;
			s->cred_used = true;
		}
	}
	r = run_retry(s, &q, url, hdr, &rc);
	if (r < 0)
		goto out;
	if (q.status != 200) {
		r = where_fail(s, q.status == 401 || q.status == 403 ? -EACCES : -EIO,
			       "token server %s answered %ld%s", realm_host, q.status,
			       q.status == 401 || q.status == 403 ? (s->cred_used ? " (the credentials were rejected)" :
								     " (credentials needed: docker login, or an auth file)") : "");
		goto out;
	}
	j = cJSON_Parse(q.mem ? q.mem : "");
	t = cJSON_GetObjectItemCaseSensitive(j, "token");
	if (!cJSON_IsString(t) || !*t->valuestring)
		t = cJSON_GetObjectItemCaseSensitive(j, "access_token");
	if (!cJSON_IsString(t) || !*t->valuestring || strpbrk(t->valuestring, "\r\n")) {
		r = where_fail(s, -EACCES, "token server %s gave no token", realm_host);
		goto out;
	}
	{
		char *a;

		if (asprintf(&a, "Authorization: Bearer %s", t->valuestring) < 0) {
			r = -ENOMEM;
			goto out;
		}
		set_authz(s, a);
	}
	free(s->token_scope);
	s->token_scope = scope ? strdup(scope) : NULL;
	r = 0;
out:
	if (q.mem)
		memset(q.mem, 0, q.mem_len);
	if (j) {
		cJSON *tk = cJSON_GetObjectItemCaseSensitive(j, "token");

		if (cJSON_IsString(tk))
			memset(tk->valuestring, 0, strlen(tk->valuestring));
		tk = cJSON_GetObjectItemCaseSensitive(j, "access_token");
		if (cJSON_IsString(tk))
			memset(tk->valuestring, 0, strlen(tk->valuestring));
	}
	cJSON_Delete(j);
	reg_req_free(&q);
	if (hdr)
		memset(hdr, 0, strlen(hdr));
	free(hdr);
	if (form)
		memset(form, 0, strlen(form));
	free(form);
	free(url);
	return r;
}

/* Answer a challenge: Bearer -> a token; Basic -> the stored credentials. 1 = retry, 0 = nothing to try. */
static int authorize(struct reg_sess *s)
{
	int r;

	if (!s->have_ch)
		return 0;
	if (!strcasecmp(s->ch.scheme, "Bearer")) {
		r = fetch_token(s);
		return r < 0 ? r : 1;
	}
	if (!strcasecmp(s->ch.scheme, "Basic")) {
		char *a = NULL;

		if (s->authz && s->cred_used)
			return 0;	/* sent already and refused */
		r = load_cred(s);
		if (r < 0)
			return r;
		if (!s->cred.user || !s->cred.secret)
			return 0;
		if (s->o->tls_verify && !strncmp(s->base, "http://", 7))
			return 0;
		r = basic_header(&s->cred, &a);
		if (r < 0)
			return r;
		set_authz(s, a);
		s->cred_used = true;
		return 1;
	}
	return 0;
}

static int take_challenge(struct reg_sess *s, const char *www)
{
	struct lp_reg_challenge c;

	if (!www || lp_reg_challenge_parse(www, &c) < 0)
		return 0;
	lp_reg_challenge_free(&s->ch);
	s->ch = c;
	s->have_ch = true;
	return 1;
}

int reg_ping(struct reg_sess *s)
{
	const char *schemes[2] = { "https://", "http://" };
	struct reg_req q;
	CURLcode rc = CURLE_OK;
	int r = 0;

	if (s->base)
		return 0;
	reg_req_init(&q, "GET", NULL, "API check");
	q.keep_body = true;
	q.mem_max = 64 << 10;
	for (int i = 0; i < (s->o->tls_verify ? 1 : 2); i++) {
		char *url;

		free(s->base);
		if (asprintf(&s->base, "%s%s", schemes[i], s->host) < 0) {
			s->base = NULL;
			r = -ENOMEM;
			goto out;
		}
		if (asprintf(&url, "%s/v2/", s->base) < 0) {
			r = -ENOMEM;
			goto out;
		}
		r = run_retry(s, &q, url, NULL, &rc);
		free(url);
		/*
		 * Without verification a registry may speak plain HTTP (what skopeo's
		 * --tls-verify=false allows): a TLS failure there means try http://.
		 */
		if (r < 0 && i == 0 && !s->o->tls_verify &&
		    (rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING ||
		     rc == CURLE_WEIRD_SERVER_REPLY || rc == CURLE_SEND_ERROR))
			continue;
		break;
	}
	if (r < 0)
		goto out;
	if (q.status == 401) {
		take_challenge(s, q.www_auth);
	} else if (q.status == 404) {
		r = where_fail(s, -ENOENT, "not a registry (no /v2/ API)");
	} else if (q.status >= 300 && q.status != 403) {
		q.what = "API check";
		r = reg_status_fail(s, &q, "reach the API");
	}
out:
	if (r < 0) {
		free(s->base);
		s->base = NULL;
	}
	reg_req_free(&q);
	return r;
}

static bool same_host(const struct reg_sess *s, const char *url)
{
	char h[300];

	url_host(url, h, sizeof(h));
	return !strcmp(h, s->host);
}

int reg_do(struct reg_sess *s, struct reg_req *q)
{
	char *url;
	CURLcode rc;
	int r;
	bool authed = false;

	r = reg_ping(s);
	if (r < 0)
		return r;
	/* A Bearer registry: get the token up front rather than after every first 401. */
	if (s->have_ch && !strcasecmp(s->ch.scheme, "Bearer") &&
	    (!s->authz || (s->scope && (!s->token_scope || strcmp(s->scope, s->token_scope))))) {
		r = fetch_token(s);
		if (r < 0)
			return r;
		authed = true;
	} else if (s->have_ch && !s->authz) {
		r = authorize(s);
		if (r < 0)
			return r;
		authed = r > 0;
	}
	if (!(url = full_url(s, q->url)))
		return -ENOMEM;
	/* An upload Location may name another host: our authorization is for this registry only. */
	if (!same_host(s, url)) {
		r = run_retry(s, q, url, NULL, &rc);
		free(url);
		return r;
	}
	r = run_retry(s, q, url, s->authz, &rc);
	if (r == 0 && q->status == 401 && !authed) {
		/* A new challenge (another scope, or auth only for this repository). */
		take_challenge(s, q->www_auth);
		r = authorize(s);
		if (r > 0)
			r = run_retry(s, q, url, s->authz, &rc);
	}
	free(url);
	return r;
}
