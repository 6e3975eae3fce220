/* SPDX-License-Identifier: MIT */
/* registry/: docker:// reference parsing, WWW-Authenticate parsing, auth-file lookup. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/fsutil.h"
#include "registry/registry.h"

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void check_ref(const char *spec, const char *host, const char *repo, const char *tag, const char *digest)
{
	struct lp_reg_ref r;

	assert_int_equal(lp_reg_ref_parse(spec, &r), 0);
	assert_string_equal(r.host, host);
	assert_string_equal(r.repo, repo);
	if (tag)
		assert_string_equal(r.tag, tag);
	else
		assert_null(r.tag);
	if (digest)
		assert_string_equal(r.digest, digest);
	else
		assert_null(r.digest);
	lp_reg_ref_free(&r);
}

static void test_ref_forms(void **state)
{
	check_ref("docker://127.0.0.1:5000/fn:v1", "127.0.0.1:5000", "fn", "v1", NULL);
	check_ref("docker://127.0.0.1:5000/fn", "127.0.0.1:5000", "fn", "latest", NULL);
	check_ref("docker://localhost/a/b/c:1.0-x_y", "localhost", "a/b/c", "1.0-x_y", NULL);
	check_ref("docker://public.ecr.aws/lambda/python:3.12", "public.ecr.aws", "lambda/python", "3.12", NULL);
	check_ref("docker://123456789012.dkr.ecr.us-east-1.amazonaws.com/fn@sha256:" D64,
		  "123456789012.dkr.ecr.us-east-1.amazonaws.com", "fn", NULL, "sha256:" D64);
	check_ref("docker://h.io/fn:t@sha256:" D64, "h.io", "fn", "t", "sha256:" D64);
	check_ref("docker://[::1]:5000/fn", "[::1]:5000", "fn", "latest", NULL);
	/* Docker Hub: no registry component, one-word names under library/. */
	check_ref("docker://busybox", "registry-1.docker.io", "library/busybox", "latest", NULL);
	check_ref("docker://busybox:1.36", "registry-1.docker.io", "library/busybox", "1.36", NULL);
	check_ref("docker://amazon/aws-lambda-python:3.12", "registry-1.docker.io", "amazon/aws-lambda-python",
		  "3.12", NULL);
	check_ref("docker://docker.io/alpine", "registry-1.docker.io", "library/alpine", "latest", NULL);
	/* "docker://" may be left out; separators as the grammar allows them. */
	check_ref("h.io/a__b/c-d--e/f.g", "h.io", "a__b/c-d--e/f.g", "latest", NULL);
}

static void check_bad(const char *spec, const char *word)
{
	struct lp_reg_ref r;

	lp_errmsg_clear();
	assert_int_equal(lp_reg_ref_parse(spec, &r), -LP_E_USAGE);
	if (!strstr(lp_errmsg(), word))
		fail_msg("'%s': message '%s' lacks '%s'", spec, lp_errmsg(), word);
	assert_null(strstr(lp_errmsg(), "hunter2"));
}

static void test_ref_errors(void **state)
{
	check_bad("docker://", "empty");
	check_bad("docker:h.io/fn", "docker://");
	check_bad("docker://H.io/Fn", "lowercase");
	check_bad("docker://h.io/fn:", "tag");
	check_bad("docker://h.io/fn:-x", "tag");
	check_bad("docker://h.io/fn@sha256:abc", "digest");
	check_bad("docker://h.io/fn@md5:" D64, "digest");
	check_bad("docker://h.io/fn@sha256:" D64 "00", "digest");
	check_bad("docker://h.io/-fn", "component");
	check_bad("docker://h.io/a//b", "component");
	check_bad("docker://h.io/a_-b", "component");
	check_bad("docker://h.io/", "repository");
	check_bad("docker://h.io:port/fn", "HOST:PORT");
	check_bad("docker://h.io:123456/fn", "HOST:PORT");
	/* A password in the reference is refused without being repeated. */
	check_bad("docker://user:hunter2@h.io/fn", "credentials");
	check_bad("docker://https://h.io/fn", "scheme");
}

static void test_ref_str(void **state)
{
	struct lp_reg_ref r;
	char *s;

	assert_int_equal(lp_reg_ref_parse("docker://h.io:5000/a/b:t", &r), 0);
	s = lp_reg_ref_str(&r);
	assert_string_equal(s, "h.io:5000/a/b:t");
	free(s);
	lp_reg_ref_free(&r);
	assert_int_equal(lp_reg_ref_parse("docker://h.io/a@sha256:" D64, &r), 0);
	s = lp_reg_ref_str(&r);
	assert_string_equal(s, "h.io/a@sha256:" D64);
	free(s);
	lp_reg_ref_free(&r);
}

static void test_challenge_bearer(void **state)
{
	struct lp_reg_challenge c;

	assert_int_equal(lp_reg_challenge_parse("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
						"scope=\"repository:library/busybox:pull\"", &c), 0);
	assert_string_equal(c.scheme, "Bearer");
	assert_string_equal(c.realm, "https://auth.docker.io/token");
	assert_string_equal(c.service, "registry.docker.io");
	assert_string_equal(c.scope, "repository:library/busybox:pull");
	assert_null(c.error);
	lp_reg_challenge_free(&c);

	/* Spaces around '=' and ',', escapes in quoted strings, token values, case of names. */
	assert_int_equal(lp_reg_challenge_parse("bearer  Realm = \"https://x/t?a=\\\"b\\\"\" , SERVICE=svc,"
						"error=\"insufficient_scope\"", &c), 0);
	assert_string_equal(c.scheme, "bearer");
	assert_string_equal(c.realm, "https://x/t?a=\"b\"");
	assert_string_equal(c.service, "svc");
	assert_string_equal(c.error, "insufficient_scope");
	assert_null(c.scope);
	lp_reg_challenge_free(&c);

	/* Two challenges in one value: Bearer wins wherever it is. */
	assert_int_equal(lp_reg_challenge_parse("Basic realm=\"r1\", Bearer realm=\"https://t/\",service=\"s\"", &c), 0);
	assert_string_equal(c.scheme, "Bearer");
	assert_string_equal(c.realm, "https://t/");
	assert_string_equal(c.service, "s");
	lp_reg_challenge_free(&c);
}

static void test_challenge_basic_and_bad(void **state)
{
	struct lp_reg_challenge c;

	assert_int_equal(lp_reg_challenge_parse("Basic realm=\"Registry Realm\"", &c), 0);
	assert_string_equal(c.scheme, "Basic");
	assert_string_equal(c.realm, "Registry Realm");
	lp_reg_challenge_free(&c);
	assert_int_equal(lp_reg_challenge_parse("Negotiate abc==, Basic realm=x", &c), 0);
	assert_string_equal(c.scheme, "Negotiate");
	lp_reg_challenge_free(&c);
	assert_int_equal(lp_reg_challenge_parse("", &c), -EINVAL);
	assert_int_equal(lp_reg_challenge_parse("   ", &c), -EINVAL);
	assert_int_equal(lp_reg_challenge_parse("=x", &c), -EINVAL);
	/* An unterminated quote is not read past the end. */
	assert_int_equal(lp_reg_challenge_parse("Bearer realm=\"abc", &c), -EINVAL);
}

static char *write_tmp(const char *dir, const char *name, const char *text)
{
	char *p;

	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	FILE *f = fopen(p, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return p;
}

static void test_cred_files(void **state)
{
	struct lp_reg_cred c;
	char *dir, *auth, *dcfg;

	assert_int_equal(lp_tmpdir_create("regunit", &dir), 0);
	/* alice:s3cret, in an auth file; "https://" and a path on the key still match the host. */
	auth = write_tmp(dir, "auth.json", "{\"auths\":{\"https://r.example:5000/v2/\":{\"auth\":\"YWxpY2U6czNjcmV0\"}}}");
	dcfg = write_tmp(dir, "config.json", "{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"Ym9iOnB3\"},"
			 "\"id.example\":{\"identitytoken\":\"tok\"}}}");
	setenv("REGISTRY_AUTH_FILE", auth, 1);
	setenv("DOCKER_CONFIG", dir, 1);
	unsetenv("XDG_RUNTIME_DIR");
	assert_int_equal(lp_reg_cred_lookup("r.example:5000", &c), 0);
	assert_string_equal(c.user, "alice");
	assert_string_equal(c.secret, "s3cret");
	lp_reg_cred_free(&c);
	/* Docker Hub's legacy key, from docker's config. */
	assert_int_equal(lp_reg_cred_lookup("registry-1.docker.io", &c), 0);
	assert_string_equal(c.user, "bob");
	assert_string_equal(c.secret, "pw");
	lp_reg_cred_free(&c);
	assert_int_equal(lp_reg_cred_lookup("id.example", &c), 0);
	assert_null(c.user);
	assert_string_equal(c.identity_token, "tok");
	lp_reg_cred_free(&c);
	/* Another host (or another port) has none. */
	assert_int_equal(lp_reg_cred_lookup("r.example", &c), 0);
	assert_null(c.user);
	assert_null(c.identity_token);
	/* Not JSON: an error naming the file, never its content. */
	free(write_tmp(dir, "auth.json", "{\"auths\": alice:s3cret"));
	lp_errmsg_clear();
	assert_true(lp_reg_cred_lookup("r.example:5000", &c) < 0);
	assert_non_null(strstr(lp_errmsg(), "auth.json"));
	assert_null(strstr(lp_errmsg(), "s3cret"));
	unsetenv("REGISTRY_AUTH_FILE");
	unsetenv("DOCKER_CONFIG");
	lp_rm_rf(dir);
	free(dir);
	free(auth);
	free(dcfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ref_forms),
		cmocka_unit_test(test_ref_errors),
		cmocka_unit_test(test_ref_str),
		cmocka_unit_test(test_challenge_bearer),
		cmocka_unit_test(test_challenge_basic_and_bad),
		cmocka_unit_test(test_cred_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
