/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target over analyze's readers. The first byte picks the mode:
 * even: the rest is a target file (zip, tar, docker-archive, oci-archive);
 * odd: the rest is index.json of an OCI layout whose blobs/ holds one
 * small valid manifest, config and layer (so the parser gets past it).
 */
#include "analyze/analyze.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "fuzz/fuzz_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *dir;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lp_ana_opts o;
	struct lp_analysis a;
	char path[4096];

	if (!dir) {
		if (lp_tmpdir_create("fuzz-analyze", &dir) < 0)
			abort();
		snprintf(path, sizeof(path), "%s/layout/blobs/sha256", dir);
		lp_mkdir_p(path, 0755);
		fuzz_put(dir, "layout/oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 30);
	}
	if (size < 1)
		return 0;
	lp_ana_opts_init(&o);
	o.threads = 1;
	o.max_expand = 64u << 20;	/* keep iterations fast; bombs still hit the cap */
	if (data[0] & 1) {
		fuzz_put(dir, "layout/index.json", data + 1, size - 1);
		snprintf(path, sizeof(path), "%s/layout", dir);
	} else {
		fuzz_put(dir, "target", data + 1, size - 1);
		snprintf(path, sizeof(path), "%s/target", dir);
	}
	lp_errmsg_clear();
	if (lp_analyze_target(path, &o, &a) == 0) {
		cJSON *j = lp_analyze_json(&a, NULL);

		cJSON_Delete(j);
	}
	lp_analysis_free(&a);
	return 0;
}
