/* SPDX-License-Identifier: MIT */
/*
 * Lambda's limits and runtimes (see shared/reference/lambda.md). Lambda's
 * "MB" is MiB for the zipped limit; the unzipped limit is the exact figure
 * its error message prints.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define LP_LIMIT_UNZIPPED	262144000ULL	/* "Unzipped size must be smaller than 262144000 bytes" */
#define LP_LIMIT_ZIPPED		52428800ULL	/* direct upload; larger zips go through S3 */
#define LP_LIMIT_IMAGE		10737418240ULL	/* 10 GiB container image */
#define LP_MAX_LAYERS		5

struct lp_runtime {
	const char *name;	/* "python3.12" */
	const char *family;	/* "python", "nodejs", "java", "provided", "dotnet", "ruby" */
	const char *os;		/* "al2" or "al2023" */
	unsigned glibc_major;
	unsigned glibc_minor;
	const char *base_image;	/* AWS base image, "public.ecr.aws/lambda/python:3.12"; NULL if none */
};

/* Look up a runtime identifier; NULL if unknown. */
const struct lp_runtime *lp_runtime_find(const char *name);

/* The runtime table, NULL-name terminated (for --help and docs). */
const struct lp_runtime *lp_runtime_table(void);

/*
 * Is soname part of the runtime's base system (so a DT_NEEDED on it is
 * satisfied without shipping it)?
 */
bool lp_runtime_has_lib(const struct lp_runtime *rt, const char *soname);

/*
 * Unzipped budget: Lambda rejects when function + layers >= limit, so the
 * function may use at most limit - layers - 1 bytes.
 */
struct lp_budget {
	uint64_t limit;		/* the limit that applies to this artifact */
	uint64_t used;
	bool over;
	uint64_t over_by;	/* used - (limit - 1) when over, else 0 */
	uint64_t headroom;	/* (limit - 1) - used when not over, else 0 */
	double pct;		/* used / limit * 100 */
};

/* Function unzipped size against 262,144,000 minus the layers' unzipped size. */
void lp_budget_unzipped(uint64_t used, uint64_t layers, struct lp_budget *ret);
/* Zipped size against the 52,428,800-byte direct-upload limit (inclusive). */
void lp_budget_zipped(uint64_t used, struct lp_budget *ret);
/* Image uncompressed size against 10 GiB (inclusive). */
void lp_budget_image(uint64_t used, struct lp_budget *ret);
