/* SPDX-License-Identifier: MIT */
#include "core/limits.h"

#include <stddef.h>
#include <string.h>

/*
 * glibc per Amazon Linux release: AL2 ships 2.26, AL2023 ships 2.34. The
 * base image is AWS's for the runtime (public.ecr.aws/lambda/<family>:<tag>,
 * the tag the runtime's version; docs/runtimes.md lists them and a unit test
 * holds the two together). The .al2023 variants of Java 8/11/17 have no
 * image here (the reference names none): --base must name one.
 */
static const struct lp_runtime runtimes[] = {
	{ "python3.8", "python", "al2", 2, 26, "public.ecr.aws/lambda/python:3.8" },
	{ "python3.9", "python", "al2", 2, 26, "public.ecr.aws/lambda/python:3.9" },
	{ "python3.10", "python", "al2", 2, 26, "public.ecr.aws/lambda/python:3.10" },
	{ "python3.11", "python", "al2", 2, 26, "public.ecr.aws/lambda/python:3.11" },
	{ "python3.12", "python", "al2023", 2, 34, "public.ecr.aws/lambda/python:3.12" },
	{ "python3.13", "python", "al2023", 2, 34, "public.ecr.aws/lambda/python:3.13" },
	{ "python3.14", "python", "al2023", 2, 34, "public.ecr.aws/lambda/python:3.14" },
	{ "nodejs16.x", "nodejs", "al2", 2, 26, "public.ecr.aws/lambda/nodejs:16" },
	{ "nodejs18.x", "nodejs", "al2", 2, 26, "public.ecr.aws/lambda/nodejs:18" },
	{ "nodejs20.x", "nodejs", "al2023", 2, 34, "public.ecr.aws/lambda/nodejs:20" },
	{ "nodejs22.x", "nodejs", "al2023", 2, 34, "public.ecr.aws/lambda/nodejs:22" },
	{ "nodejs24.x", "nodejs", "al2023", 2, 34, "public.ecr.aws/lambda/nodejs:24" },
	{ "java8.al2", "java", "al2", 2, 26, "public.ecr.aws/lambda/java:8.al2" },
	{ "java11", "java", "al2", 2, 26, "public.ecr.aws/lambda/java:11" },
	{ "java17", "java", "al2", 2, 26, "public.ecr.aws/lambda/java:17" },
	{ "java21", "java", "al2023", 2, 34, "public.ecr.aws/lambda/java:21" },
	{ "java25", "java", "al2023", 2, 34, "public.ecr.aws/lambda/java:25" },
	{ "java8.al2023", "java", "al2023", 2, 34, NULL },
	{ "java11.al2023", "java", "al2023", 2, 34, NULL },
	{ "java17.al2023", "java", "al2023", 2, 34, NULL },
	{ "provided.al2", "provided", "al2", 2, 26, "public.ecr.aws/lambda/provided:al2" },
	{ "provided.al2023", "provided", "al2023", 2, 34, "public.ecr.aws/lambda/provided:al2023" },
	{ "dotnet8", "dotnet", "al2023", 2, 34, "public.ecr.aws/lambda/dotnet:8" },
	{ "ruby3.2", "ruby", "al2", 2, 26, "public.ecr.aws/lambda/ruby:3.2" },
	{ "ruby3.3", "ruby", "al2023", 2, 34, "public.ecr.aws/lambda/ruby:3.3" },
	{ "ruby3.4", "ruby", "al2023", 2, 34, "public.ecr.aws/lambda/ruby:3.4" },
	{ NULL, NULL, NULL, 0, 0, NULL },
};

/*
 * Libraries every Amazon Linux runtime image provides. Deliberately short:
 * glibc's own libraries, the GCC runtime and zlib. Anything else (OpenSSL,
 * libffi, ...) differs between images and should ship with the function.
 */
static const char *const base_libs[] = {
	"libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1",
	"libutil.so.1", "libresolv.so.2", "libanl.so.1", "libnsl.so.1",
	"libcrypt.so.1", "libBrokenLocale.so.1", "libmvec.so.1",
	"ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1",
	"libgcc_s.so.1", "libstdc++.so.6", "libz.so.1",
	NULL,
};

const struct lp_runtime *lp_runtime_find(const char *name)
{
	for (const struct lp_runtime *r = runtimes; r->name; r++)
		if (strcmp(r->name, name) == 0)
			return r;
	return NULL;
}

const struct lp_runtime *lp_runtime_table(void)
{
	return runtimes;
}

bool lp_runtime_has_lib(const struct lp_runtime *rt, const char *soname)
{
	for (const char *const *p = base_libs; *p; p++)
		if (strcmp(*p, soname) == 0)
			return true;
	/* AL2023 replaced libcrypt.so.1 with libxcrypt's libcrypt.so.2. */
	if (rt && strcmp(rt->os, "al2023") == 0 && strcmp(soname, "libcrypt.so.2") == 0)
		return true;
	return false;
}

static void budget(uint64_t used, uint64_t limit, struct lp_budget *b)
{
	b->limit = limit;
	b->used = used;
	b->over = used >= limit;
	b->over_by = b->over ? used - limit + 1 : 0;
	b->headroom = b->over ? 0 : limit - 1 - used;
	b->pct = limit ? (double)used * 100.0 / (double)limit : 100.0;
}

void lp_budget_unzipped(uint64_t used, uint64_t layers, struct lp_budget *ret)
{
	uint64_t limit = layers >= LP_LIMIT_UNZIPPED ? 0 : LP_LIMIT_UNZIPPED - layers;

	budget(used, limit, ret);
}

void lp_budget_zipped(uint64_t used, struct lp_budget *ret)
{
	/* "Zipped size must be smaller than 52428800 bytes": also strict. */
	budget(used, LP_LIMIT_ZIPPED, ret);
}

void lp_budget_image(uint64_t used, struct lp_budget *ret)
{
	/* "up to 10 GB": the limit itself is allowed. */
	budget(used, LP_LIMIT_IMAGE + 1, ret);
	ret->used = used;
	ret->limit = LP_LIMIT_IMAGE;
	ret->pct = (double)used * 100.0 / (double)LP_LIMIT_IMAGE;
}
