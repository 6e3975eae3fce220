/* SPDX-License-Identifier: MIT */
/*
 * Test helper: build an image from a directory with the fixture loader
 * (and, with --dedupe, duplicates marked the way pack's dedupe marks them),
 * so the integration tests can check hard links with umoci.
 * usage: oci_fixture [--dedupe] [-j N] [--compression C] SRC OUT
 */
#include "container/oci.h"
#include "core/err.h"
#include "tests/oci/fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	struct lp_entries l;
	struct lp_oci_opts o;
	struct lp_oci_result res;
	bool dedupe = false;
	int i = 1, r;

	lp_oci_opts_init(&o);
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--dedupe") == 0)
			dedupe = true;
		else if (strcmp(argv[i], "-j") == 0 && i + 1 < argc)
			o.threads = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--compression") == 0 && i + 1 < argc)
			o.compression = (enum lp_oci_compression)lp_oci_compression_parse(argv[++i]);
		else
			break;
	}
	if (argc - i != 2) {
		fprintf(stderr, "usage: oci_fixture [--dedupe] [-j N] [--compression C] SRC OUT\n");
		return 2;
	}
	lp_entries_init(&l);
	r = fx_load_dir(argv[i], dedupe, &l);
	if (r < 0) {
		fprintf(stderr, "oci_fixture: cannot load %s\n", argv[i]);
		return 1;
	}
	o.output = argv[i + 1];
	r = lp_oci_write(&l, &o, &res);
	if (r < 0) {
		fprintf(stderr, "oci_fixture: %s: %s\n", lp_strerror(r), lp_errmsg());
		return 1;
	}
	printf("%s\n", res.manifest_digest);
	lp_oci_result_free(&res);
	lp_entries_free(&l);
	return 0;
}
