/* SPDX-License-Identifier: MIT */
/*
 * lp-strip-bench OUTDIR FILE...: strip every FILE in process into OUTDIR
 * (same basename), one after another like a loop of eu-strip -o would, and
 * print "files ok bytes_before bytes_after seconds". Not installed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"
#include "pack/strip.h"

int main(int argc, char **argv)
{
	unsigned long long before = 0, after = 0;
	unsigned ok = 0;
	double t0;

	if (argc < 3) {
		fprintf(stderr, "usage: lp-strip-bench OUTDIR FILE...\n");
		return 2;
	}
	t0 = lp_now();
	for (int i = 2; i < argc; i++) {
		const char *base = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];
		char out[4096];
		struct lp_strip_result res;

		snprintf(out, sizeof(out), "%s/%s", argv[1], base);
		if (lp_strip_file(argv[i], out, NULL, &res) < 0) {
			fprintf(stderr, "%s: %s\n", argv[i], lp_errmsg());
			return 1;
		}
		if (res.outcome != LP_STRIP_OK)
			fprintf(stderr, "%s: %s: %s\n", argv[i], lp_strip_outcome_name(res.outcome), res.reason);
		else
			ok++;
		before += res.size_before;
		after += res.size_after;
	}
	printf("%d %u %llu %llu %.6f\n", argc - 2, ok, before, after, lp_now() - t0);
	return 0;
}
