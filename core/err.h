/* SPDX-License-Identifier: MIT */
/*
 * Error reporting for library code.
 *
 * Library functions return 0 or a negative errno (or a negative LP_E* code).
 * They never print. Before returning an error they may record a one-line
 * detail naming the file and the reason with lp_fail(); the front end reads
 * it back with lp_errmsg(). The detail is thread-local so worker threads do
 * not trample each other; a worker that fails copies it into its job result.
 */
#pragma once

#include <stddef.h>

/* Project error codes live above errno's range, as apk-tools does. */
enum {
	LP_E_FIRST = 1024,
	LP_E_NOTELF,		/* not an ELF file, or not one we can parse */
	LP_E_BADARCHIVE,	/* corrupt or unreadable archive */
	LP_E_UNSAFEPATH,	/* entry name with .., absolute, or escaping */
	LP_E_DUPLICATE,		/* the same artifact path from two sources */
	LP_E_TOOBIG,		/* over a Lambda limit */
	LP_E_SYMLINK,		/* dangling, looping or escaping symlink */
	LP_E_BADTYPE,		/* FIFO, socket or device in the input */
	LP_E_USAGE,		/* bad option value given to a library call */
	LP_E_BADIMAGE,		/* malformed OCI layout or image */
	LP_E_CHECK,		/* a compatibility check failed */
	LP_E_INPUT,		/* input problems, each recorded as an error finding */
	LP_E_LAST
};

/* Record a detail message and return err (which should be negative). */
int lp_fail(int err, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The detail recorded by the last lp_fail() on this thread ("" if none). */
const char *lp_errmsg(void);

/* Replace this thread's detail (used to carry a worker's error home). */
void lp_errmsg_set(const char *msg);

/* Clear this thread's detail. */
void lp_errmsg_clear(void);

/* strerror() that also knows the LP_E_* codes; takes a negative or positive code. */
const char *lp_strerror(int err);
