/* SPDX-License-Identifier: MIT */
/* What the libFuzzer harnesses share: writing an input where the code under test reads it. */
#pragma once

#include <stdio.h>
#include <stdlib.h>

/* Write n bytes of p to dir/name; abort on failure (a harness bug, not a finding). */
static inline void fuzz_put(const char *dir, const char *name, const void *p, size_t n)
{
	char path[4096];
	FILE *f;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		abort();
	f = fopen(path, "wb");
	if (!f)
		abort();
	if (n && fwrite(p, 1, n, f) != n)
		abort();
	fclose(f);
}
