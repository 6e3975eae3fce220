/* SPDX-License-Identifier: MIT */
/*
 * Where credentials come from, as docker and podman look for them. Nothing
 * here ever puts a secret into lp_errmsg(): messages name the file or the
 * helper and the registry only.
 */
#include "registry/registry.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "core/hash.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

void lp_reg_cred_free(struct lp_reg_cred *c)
{
	/* Secrets are wiped before their memory goes back. */
	if (c->secret)
		memset(c->secret, 0, strlen(c->secret));
	if (c->identity_token)
		memset(c->identity_token, 0, strlen(c->identity_token));
	free(c->user);
	free(c->secret);
	free(c->identity_token);
	memset(c, 0, sizeof(*c));
}

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

/* The names a registry may have in an auth file: docker.io's legacy key, URLs, host/path. */
static bool key_matches(const char *key, const char *host)
{
	const char *k = key;
	size_t n = strlen(host);

	if (!strncmp(k, "https://", 8))
		k += 8;
	else if (!strncmp(k, "http://", 7))
		k += 7;
	if (!strcmp(host, "registry-1.docker.io") &&
	    (!strncmp(k, "index.docker.io", 15) || !strncmp(k, "docker.io", 9) || !strncmp(k, "registry-1.docker.io", 20)))
		return k[strcspn(k, "/")] == '\0' || !strncmp(k + strcspn(k, "/"), "/v1", 3);
	return !strncmp(k, host, n) && (k[n] == '\0' || k[n] == '/');
}

/* Decode standard base64 into a malloc'd string; NULL if it is not base64. */
static char *unbase64(const char *s)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(s), o = 0;
	char *out = malloc(n * 3 / 4 + 4);
	unsigned acc = 0;
	int bits = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const char *p;

		if (s[i] == '=')
			break;
		p = strchr(tbl, s[i]);
		if (!p || !s[i]) {
			free(out);
			return NULL;
		}
		acc = acc << 6 | (unsigned)(p - tbl);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)(acc >> bits & 0xff);
		}
	}
	out[o] = '\0';
	return out;
}

/* An "auths" entry: {"auth": base64(user:pass)} or {"username","password"}, and/or {"identitytoken"}. */
static int from_auth_entry(const cJSON *e, struct lp_reg_cred *ret)
{
	const char *a = jstr(e, "auth"), *it = jstr(e, "identitytoken");

	if (a) {
		char *dec = unbase64(a), *colon;

		if (!dec || !(colon = strchr(dec, ':'))) {
			free(dec);
			return -EINVAL;
		}
		*colon = '\0';
		ret->user = strdup(dec);
		ret->secret = strdup(colon + 1);
		memset(dec, 0, strlen(dec) + strlen(colon + 1) + 1);
		free(dec);
	} else if (jstr(e, "username") && jstr(e, "password")) {
		ret->user = strdup(jstr(e, "username"));
		ret->secret = strdup(jstr(e, "password"));
	}
	if (it)
		ret->identity_token = strdup(it);
	if ((a && (!ret->user || !ret->secret)) || (it && !ret->identity_token))
		return -ENOMEM;
	return 0;
}

/* Run docker-credential-NAME get with host on stdin; read {"Username","Secret"}. */
static int cred_helper(const char *name, const char *host, struct lp_reg_cred *ret)
{
	char prog[128], *argv[3], buf[16384];
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, st = 0, r;
	posix_spawn_file_actions_t fa;
	const char *server = !strcmp(host, "registry-1.docker.io") ? "https://index.docker.io/v1/" : host;
	size_t len = 0;
	pid_t pid;
	cJSON *j;

	for (const char *p = name; *p; p++)
		if (*p == '/' || *p == ' ')
			return lp_fail(-EINVAL, NULL, "credential helper name '%s' is not a plain name", name);
	snprintf(prog, sizeof(prog), "docker-credential-%s", name);
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
		r = -errno;
		goto out;
	}
	argv[0] = prog;
	argv[1] = (char *)"get";
	argv[2] = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	r = -posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(out[1]);
	in[0] = out[1] = -1;
	if (r < 0) {
		r = lp_fail(r, NULL, "credential helper %s for %s cannot run: %s", prog, host, strerror(-r));
		goto out;
	}
	{
		/* A helper that exits early must not kill us with SIGPIPE. */
		void (*old)(int) = signal(SIGPIPE, SIG_IGN);

		(void)lp_write_all(in[1], server, strlen(server));
		signal(SIGPIPE, old);
	}
	close(in[1]);
	in[1] = -1;
	for (;;) {
		ssize_t got = read(out[0], buf + len, sizeof(buf) - 1 - len);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		len += (size_t)got;
		if (len == sizeof(buf) - 1)
			break;
	}
	buf[len] = '\0';
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		/* "credentials not found" is an answer, not an error: go on anonymously. */
		r = strstr(buf, "not found") ? 0 :
			lp_fail(-EACCES, NULL, "credential helper %s failed for %s", prog, host);
		goto out;
	}
	j = cJSON_Parse(buf);
	if (!j) {
		r = lp_fail(-EINVAL, NULL, "credential helper %s gave no JSON for %s", prog, host);
		goto out;
	}
	if (jstr(j, "Secret")) {
		const char *u = jstr(j, "Username");

		/* docker's convention: the user "<token>" means the secret is an identity token. */
		if (u && !strcmp(u, "<token>")) {
			ret->identity_token = strdup(jstr(j, "Secret"));
		} else {
			ret->user = strdup(u ? u : "");
			ret->secret = strdup(jstr(j, "Secret"));
		}
	}
	memset(buf, 0, sizeof(buf));
	cJSON_Delete(j);
	r = 0;
out:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
	}
	return r;
}

/* Look in one auth file. 1 = found (ret filled), 0 = not there, <0 = error. */
static int from_file(const char *path, const char *host, bool docker, struct lp_reg_cred *ret)
{
	char *text = NULL;
	size_t len;
	cJSON *j, *e;
	const char *helper = NULL;
	int r = lp_read_file(path, 1 << 20, &text, &len);

	if (r == -ENOENT || r == -ENOTDIR)
		return 0;
	if (r < 0)
		return lp_fail(r, path, "cannot read the auth file");
	j = cJSON_Parse(text);
	memset(text, 0, len);
	free(text);
	if (!j)
		return lp_fail(-EINVAL, path, "auth file is not JSON");
	/* credHelpers for this registry first, then auths, then the default credsStore. */
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(j, "credHelpers"))
		if (e->string && key_matches(e->string, host) && cJSON_IsString(e))
			helper = e->valuestring;
	if (helper && docker) {
		r = cred_helper(helper, host, ret);
		goto out;
	}
	r = 0;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(j, "auths")) {
		if (!e->string || !key_matches(e->string, host))
			continue;
		r = from_auth_entry(e, ret);
		if (r == -EINVAL)
			r = lp_fail(r, path, "the auth entry for %s is not base64 user:password", host);
		if (r == 0 && (ret->user || ret->identity_token))
			r = 1;
		if (r != 0)
			goto out;
	}
	if (docker && jstr(j, "credsStore")) {
		r = cred_helper(jstr(j, "credsStore"), host, ret);
		goto out;
	}
out:
	cJSON_Delete(j);
	if (r == 0 && (ret->user || ret->identity_token))
		r = 1;
	return r;
}

int lp_reg_cred_lookup(const char *host, struct lp_reg_cred *ret)
{
	char path[PATH_MAX];
	const char *e;
	int r;

	memset(ret, 0, sizeof(*ret));
	/* podman's order: $REGISTRY_AUTH_FILE, the runtime auth.json, then docker's config. */
	if ((e = getenv("REGISTRY_AUTH_FILE")) && *e) {
		r = from_file(e, host, false, ret);
		if (r != 0)
			goto done;
	}
	if ((e = getenv("XDG_RUNTIME_DIR")) && *e) {
		snprintf(path, sizeof(path), "%s/containers/auth.json", e);
		r = from_file(path, host, false, ret);
		if (r != 0)
			goto done;
	}
	if ((e = getenv("DOCKER_CONFIG")) && *e)
		snprintf(path, sizeof(path), "%s/config.json", e);
	else if ((e = getenv("HOME")) && *e)
		snprintf(path, sizeof(path), "%s/.docker/config.json", e);
	else
		return 0;
	r = from_file(path, host, true, ret);
done:
	if (r < 0) {
		lp_reg_cred_free(ret);
		return r;
	}
	return 0;
}
