/* SPDX-License-Identifier: MIT */
/* docker:// references and WWW-Authenticate challenges: pure parsing, no I/O. */
#include "registry/registry.h"
#include "core/err.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/*
 * One path component: [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)* as the reference
 * grammar of distribution says.
 */
static bool component_ok(const char *s, size_t n)
{
	size_t i = 0;

	if (n == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
		return false;
	while (i < n) {
		if (is_lower_alnum(s[i])) {
			i++;
			continue;
		}
		if (s[i] == '.' || s[i] == '_') {
			size_t k = i + 1;

			if (s[i] == '_' && k < n && s[k] == '_')
				k++;
			if (k >= n || !is_lower_alnum(s[k]))
				return false;
			i = k;
		} else if (s[i] == '-') {
			while (i < n && s[i] == '-')
				i++;
			if (i >= n || !is_lower_alnum(s[i]))
				return false;
		} else {
			return false;
		}
	}
	return true;
}

static bool host_ok(const char *s, size_t n)
{
	size_t i = 0;

	if (n == 0 || n > 255)
		return false;
	if (s[0] == '[') {	/* [IPv6]:port */
		const char *end = memchr(s, ']', n);

		if (!end)
			return false;
		for (const char *p = s + 1; p < end; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
				return false;
		i = (size_t)(end - s) + 1;
	} else {
		for (; i < n && s[i] != ':'; i++)
			if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '-')
				return false;
		if (i == 0 || s[0] == '-' || s[0] == '.')
			return false;
	}
	if (i == n)
		return true;
	if (s[i] != ':' || i + 1 == n || n - i - 1 > 5)
		return false;
	for (i++; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

static bool tag_ok(const char *t)
{
	size_t n = strlen(t);

	if (n == 0 || n > 128 || !(isalnum((unsigned char)t[0]) || t[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)t[i]) && t[i] != '_' && t[i] != '.' && t[i] != '-')
			return false;
	return true;
}

static bool digest_ok(const char *d)
{
	if (strncmp(d, "sha256:", 7) != 0 || strlen(d) != 71)
		return false;
	for (int i = 7; i < 71; i++)
		if (!isdigit((unsigned char)d[i]) && !(d[i] >= 'a' && d[i] <= 'f'))
			return false;
	return true;
}

void lp_reg_ref_free(struct lp_reg_ref *r)
{
	free(r->host);
	free(r->repo);
	free(r->tag);
	free(r->digest);
	memset(r, 0, sizeof(*r));
}

static int bad(const char *what)
{
	return lp_fail(-LP_E_USAGE, NULL, "bad registry reference: %s (expected docker://HOST[:PORT]/REPO[:TAG|@sha256:HEX])",
		       what);
}

int lp_reg_ref_parse(const char *spec, struct lp_reg_ref *ret)
{
	const char *s = spec, *slash, *at, *name_end, *colon, *repo;
	size_t hn;
	int r = -ENOMEM;

	memset(ret, 0, sizeof(*ret));
	if (!strncmp(s, "docker://", 9))
		s += 9;
	else if (!strncmp(s, "docker:", 7))
		return bad("the docker transport is written docker://");
	if (!*s)
		return bad("empty name");
	slash = strchr(s, '/');
	at = strchr(s, '@');
	/* user:password@host would put a secret on a command line and in logs; say so without echoing it. */
	if (at && (!slash || at < slash))
		return bad("credentials do not go in the reference; use docker login or an auth file");
	if (strstr(s, "://"))
		return bad("a URL scheme does not go in the reference (docker://HOST/REPO)");
	if (at) {
		if (!digest_ok(at + 1))
			return bad("the digest must be sha256: and 64 lowercase hex digits");
		if (!(ret->digest = strdup(at + 1)))
			goto fail;
		name_end = at;
	} else {
		name_end = s + strlen(s);
	}
	/* A tag is a ':' after the last '/'. */
	colon = NULL;
	for (const char *p = name_end; p > s; p--) {
		if (p[-1] == '/')
			break;
		if (p[-1] == ':') {
			colon = p - 1;
			break;
		}
	}
	if (colon && slash && colon < slash)
		colon = NULL;	/* host:port with no path is no tag */
	if (colon) {
		char *t = strndup(colon + 1, (size_t)(name_end - colon - 1));

		if (!t)
			goto fail;
		if (!tag_ok(t)) {
			free(t);
			r = bad("a tag is 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'");
			goto fail;
		}
		ret->tag = t;
		name_end = colon;
	}
	if ((size_t)(name_end - s) > 255) {
		r = bad("the name is longer than 255 characters");
		goto fail;
	}
	/* The first component is a registry if it looks like one (docker's rule). */
	hn = slash && slash < name_end ? (size_t)(slash - s) : 0;
	if (hn && (memchr(s, '.', hn) || memchr(s, ':', hn) || (hn == 9 && !strncmp(s, "localhost", 9)) ||
		   s[0] == '[')) {
		if (!host_ok(s, hn)) {
			r = bad("the registry must be HOST or HOST:PORT");
			goto fail;
		}
		ret->host = strndup(s, hn);
		repo = slash + 1;
	} else {
		ret->host = strdup("docker.io");
		repo = s;
	}
	if (!ret->host)
		goto fail;
	/* Docker Hub's API lives at registry-1.docker.io, its one-word names under library/. */
	if (!strcmp(ret->host, "docker.io") || !strcmp(ret->host, "index.docker.io")) {
		free(ret->host);
		if (!(ret->host = strdup("registry-1.docker.io")))
			goto fail;
		if (!memchr(repo, '/', (size_t)(name_end - repo))) {
			if (asprintf(&ret->repo, "library/%.*s", (int)(name_end - repo), repo) < 0) {
				ret->repo = NULL;
				goto fail;
			}
		}
	}
	if (!ret->repo && !(ret->repo = strndup(repo, (size_t)(name_end - repo))))
		goto fail;
	/* The limit is on the full name as it is used (after Docker Hub's normalization). */
	if (strlen(ret->host) + 1 + strlen(ret->repo) > 255) {
		r = bad("the name is longer than 255 characters");
		goto fail;
	}
	for (const char *p = ret->repo; *p; p++)
		if (isupper((unsigned char)*p)) {
			r = bad("repository names must be lowercase");
			goto fail;
		}
	for (const char *p = ret->repo, *e;; p = e + 1) {
		e = strchr(p, '/');
		if (!component_ok(p, e ? (size_t)(e - p) : strlen(p))) {
			r = bad(*ret->repo ? "each repository path component is lowercase letters and digits "
					     "separated by '.', '_', '__' or '-'" : "no repository");
			goto fail;
		}
		if (!e)
			break;
	}
	if (!ret->tag && !ret->digest && !(ret->tag = strdup("latest")))
		goto fail;
	return 0;
fail:
	lp_reg_ref_free(ret);
	return r;
}

char *lp_reg_ref_str(const struct lp_reg_ref *r)
{
	char *s;

	if (asprintf(&s, "%s/%s%s%s", r->host, r->repo, r->digest ? "@" : ":", r->digest ? r->digest : r->tag) < 0)
		return NULL;
	return s;
}

/* ---- WWW-Authenticate ---- */

void lp_reg_challenge_free(struct lp_reg_challenge *c)
{
	free(c->realm);
	free(c->service);
	free(c->scope);
	free(c->error);
	memset(c, 0, sizeof(*c));
}

static bool tchar(char c)
{
	/* strchr() finds the terminator too: NUL must not count as a token character. */
	return c && (isalnum((unsigned char)c) || strchr("!#$%&'*+-.^_`|~", c));
}

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/*
 * Parse one challenge starting at p into c (when keep), return where the
 * next one starts (after its comma) or NULL on a syntax error.
 */
static const char *one_challenge(const char *p, struct lp_reg_challenge *c, bool keep)
{
	const char *s = p;

	while (tchar(*p))
		p++;
	if (p == s || (*p && *p != ' ' && *p != '\t' && *p != ','))
		return NULL;
	if (keep)
		snprintf(c->scheme, sizeof(c->scheme), "%.*s", (int)(p - s), s);
	p = skip_ws(p);
	for (;;) {
		const char *k = p, *ke, *save;
		char *val = NULL;
		size_t vn = 0;

		p = skip_ws(p);
		while (*p == ',')
			p = skip_ws(p + 1);
		if (!*p)
			return p;
		save = p;
		k = p;
		while (tchar(*p))
			p++;
		ke = p;
		p = skip_ws(p);
		if (ke == k || *p != '=' || p[1] == '=') {
			/* Not "key=": the start of the next challenge (or a token68, which we skip). */
			if (ke > k && (*p == ',' || !*p || *p == '=')) {
				while (*p == '=')
					p++;
				p = skip_ws(p);
				if (*p == ',' || !*p)
					continue;
			}
			return save;
		}
		p = skip_ws(p + 1);
		if (*p == '"') {
			val = malloc(strlen(p) + 1);
			if (!val)
				return NULL;
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && p[1])
					p++;
				val[vn++] = *p;
			}
			if (*p != '"') {
				free(val);
				return NULL;
			}
			p++;
			val[vn] = '\0';
		} else {
			const char *vs = p;

			while (tchar(*p) || *p == '/' || *p == ':')
				p++;
			val = strndup(vs, (size_t)(p - vs));
			if (!val)
				return NULL;
		}
		if (keep) {
			char **slot = NULL;
			size_t kn = (size_t)(ke - k);

			if (kn == 5 && !strncasecmp(k, "realm", 5))
				slot = &c->realm;
			else if (kn == 7 && !strncasecmp(k, "service", 7))
				slot = &c->service;
			else if (kn == 5 && !strncasecmp(k, "scope", 5))
				slot = &c->scope;
			else if (kn == 5 && !strncasecmp(k, "error", 5))
				slot = &c->error;
			if (slot && !*slot) {
				*slot = val;
				val = NULL;
			}
		}
		free(val);
		p = skip_ws(p);
		if (*p && *p != ',')
			return NULL;
	}
}

int lp_reg_challenge_parse(const char *value, struct lp_reg_challenge *ret)
{
	const char *p = skip_ws(value);
	bool have = false;

	memset(ret, 0, sizeof(*ret));
	while (*p) {
		struct lp_reg_challenge c = { 0 };
		const char *next = one_challenge(p, &c, true);

		if (!next) {
			lp_reg_challenge_free(&c);
			break;
		}
		if (!have || (strcasecmp(ret->scheme, "Bearer") && !strcasecmp(c.scheme, "Bearer"))) {
			lp_reg_challenge_free(ret);
			*ret = c;
			have = true;
		} else {
			lp_reg_challenge_free(&c);
		}
		if (next == p)
			break;
		p = skip_ws(next);
	}
	return have ? 0 : -EINVAL;
}
