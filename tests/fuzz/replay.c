/* SPDX-License-Identifier: MIT */
/*
 * Replays fuzz inputs through a libFuzzer harness built without libFuzzer
 * (the release and the ASan+UBSan builds), so every committed corpus input
 * and every crash reproducer runs as an ordinary meson test:
 *   replay_TARGET FILE_OR_DIR...
 * A crash, a sanitizer report or an abort() in the harness fails the test.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fsutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t runs;

static void replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0, got;

	if (!f) {
		perror(path);
		exit(1);
	}
	do {
		if (n == cap) {
			cap = cap ? 2 * cap : 65536;
			buf = realloc(buf, cap);
			if (!buf)
				abort();
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	fclose(f);
	/* libFuzzer hands over a buffer of exactly size bytes: so does this. */
	{
		uint8_t *exact = malloc(n ? n : 1);

		if (!exact)
			abort();
		memcpy(exact, buf, n);
		free(buf);
		fprintf(stderr, "replay %s (%zu bytes)\n", path, n);
		LLVMFuzzerTestOneInput(exact, n);
		free(exact);
	}
	runs++;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void replay(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;

	if (stat(path, &st) < 0) {
		perror(path);
		exit(1);
	}
	if (!S_ISDIR(st.st_mode)) {
		replay_file(path);
		return;
	}
	d = opendir(path);
	if (!d) {
		perror(path);
		exit(1);
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;	/* ., .., README-style notes */
		names = realloc(names, (n + 1) * sizeof(*names));
		if (!names || asprintf(&names[n], "%s/%s", path, de->d_name) < 0)
			abort();
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp);
	for (size_t i = 0; i < n; i++) {
		replay(names[i]);
		free(names[i]);
	}
	free(names);
}

int main(int argc, char **argv)
{
	const char *base = getenv("TMPDIR");
	char *tmp;

	/* The harnesses make their scratch directories under TMPDIR: one to remove at the end. */
	if (asprintf(&tmp, "%s/lp-replay-XXXXXX", base && *base ? base : "/tmp") < 0 || !mkdtemp(tmp) ||
	    setenv("TMPDIR", tmp, 1) < 0) {
		perror("replay: temp dir");
		return 1;
	}
	for (int i = 1; i < argc; i++)
		replay(argv[i]);
	printf("replayed %zu inputs\n", runs);
	lp_rm_rf(tmp);
	free(tmp);
	return 0;
}
