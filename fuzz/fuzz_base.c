/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target over `container --base` import (lp_oci_base_import): the
 * base image is input the user fetched from elsewhere, so its JSON, tar and
 * layer bytes are untrusted. The first byte picks the mode (mod 3):
 * 0: the rest is a docker-archive tar;
 * 1: the rest is index.json of an OCI layout whose blobs/ holds one small
 *    valid manifest, config and layer (so the parser gets past the index);
 * 2: the rest is the manifest blob, named by its digest from a fixed index.
 * A first byte of 0xff (mode 0 otherwise) makes the rest a layer listing as
 * the build cache keeps it (lp_rootfs_layer_load): one that loads must save
 * back to the same bytes. Every imported base's listings make the same
 * round trip.
 */
#include "container/oci.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "fuzz/fuzz_util.h"
#include "core/hash.h"
#include "input/input.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *dir;

/* Store bytes as blobs/sha256/<hex> of the layout; hex gets the digest. */
static void put_blob(const void *p, size_t n, char hex[65])
{
	uint8_t d[32];
	char name[128];

	lp_sha256(p, n, d);
	lp_hex(d, 32, hex);
	snprintf(name, sizeof(name), "layout/blobs/sha256/%s", hex);
	fuzz_put(dir, name, p, n);
}

static char kept[3][200];

static bool keep(const char *name)
{
	for (int i = 0; i < 3; i++)
		if (!strcmp(kept[i], name))
			return true;
	return false;
}

/* A valid one-layer image: an empty uncompressed tar, its config and manifest. */
static void make_layout(char man_hex[65])
{
	static const uint8_t layer[1024];	/* two zero blocks: an empty tar */
	char lhex[65], chex[65], cfg[512], man[1024];

	put_blob(layer, sizeof(layer), lhex);
	snprintf(kept[0], sizeof(kept[0]), "layout/blobs/sha256/%s", lhex);
	snprintf(cfg, sizeof(cfg),
		 "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":[\"A=1\"]},"
		 "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:%s\"]}}", lhex);
	put_blob(cfg, strlen(cfg), chex);
	snprintf(kept[1], sizeof(kept[1]), "layout/blobs/sha256/%s", chex);
	snprintf(man, sizeof(man),
		 "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		 "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:%s\",\"size\":%zu},"
		 "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:%s\",\"size\":1024}]}",
		 chex, strlen(cfg), lhex);
	put_blob(man, strlen(man), man_hex);
	snprintf(kept[2], sizeof(kept[2]), "layout/blobs/sha256/%s", man_hex);
}

/* load(save(layer)) saves to the same bytes; a listing that loads saves back to itself. */
static void round_trip(const unsigned char *buf, size_t n)
{
	struct lp_rootfs *fs;
	unsigned char *back;
	size_t bn;

	if (lp_rootfs_new(1, &fs) < 0)
		abort();
	if (lp_rootfs_layer_load(fs, 0, buf, n) == 0) {
		if (lp_rootfs_layer_save(fs, 0, &back, &bn) < 0 || bn != n || memcmp(back, buf, n) != 0)
			abort();
		free(back);
	}
	lp_rootfs_free(fs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lp_oci_base b;
	char spec[4300], out[4200], path[4200], fuzzed_blob[200] = "";

	if (!dir) {
		char hex[65];

		if (lp_tmpdir_create("fuzz-base", &dir) < 0)
			abort();
		snprintf(path, sizeof(path), "%s/layout/blobs/sha256", dir);
		lp_mkdir_p(path, 0755);
		fuzz_put(dir, "layout/oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 30);
		make_layout(hex);
	}
	if (size < 1)
		return 0;
	if (data[0] == 0xff) {
		round_trip(data + 1, size - 1);
		return 0;
	}
	switch (data[0] % 3) {
	case 0:
		fuzz_put(dir, "base.tar", data + 1, size - 1);
		snprintf(spec, sizeof(spec), "docker-archive:%s/base.tar", dir);
		break;
	case 1:
		fuzz_put(dir, "layout/index.json", data + 1, size - 1);
		snprintf(spec, sizeof(spec), "oci:%s/layout", dir);
		break;
	default: {
		char hex[65], idx[512];

		put_blob(data + 1, size - 1, hex);
		snprintf(fuzzed_blob, sizeof(fuzzed_blob), "layout/blobs/sha256/%s", hex);
		snprintf(idx, sizeof(idx),
			 "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
			 "\"digest\":\"sha256:%s\",\"size\":%zu,\"annotations\":{\"org.opencontainers.image.ref.name\":\"t\"}}]}",
			 hex, size - 1);
		fuzz_put(dir, "layout/index.json", idx, strlen(idx));
		snprintf(spec, sizeof(spec), "oci:%s/layout:t", dir);
		break;
	}
	}
	snprintf(out, sizeof(out), "%s/out/blobs/sha256", dir);
	lp_mkdir_p(out, 0755);
	lp_errmsg_clear();
	memset(&b, 0, sizeof(b));
	if (lp_oci_base_import(spec, "amd64", out, NULL, &b) == 0) {
		for (size_t i = 0; i < b.n; i++) {
			unsigned char *l;
			size_t ln;

			if (lp_rootfs_layer_save(b.fs, i, &l, &ln) < 0)
				abort();
			round_trip(l, ln);
			free(l);
		}
		lp_oci_base_free(&b);
	}
	snprintf(path, sizeof(path), "%s/out", dir);
	lp_rm_rf(path);
	/* Keep the layout small across millions of runs (unless it is one of ours). */
	if (*fuzzed_blob) {
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, fuzzed_blob);
		if (stat(path, &st) == 0 && st.st_nlink == 1 && size - 1 > 0 && !keep(fuzzed_blob))
			unlink(path);
	}
	return 0;
}
