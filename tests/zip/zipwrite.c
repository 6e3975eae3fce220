/* SPDX-License-Identifier: MIT */
/*
 * Test and bench driver for the zip writer (not installed): walks a
 * directory with code of its own (no symlink following, modes normalized
 * to 0644/0755 the way the real loader does), optionally marks files with
 * identical bytes as duplicates of the first, and writes the zip.
 *
 *   zipwrite [-t threads] [-l level] [-e epoch] [-w whole_max] [-b block]
 *            [-W window] [-Z zip64_size] [-N zip64_count] [-d] [-v] DIR OUT.zip
 *
 * Prints "entries=N unzipped=U zipped=Z zip64=0|1" (and one line per entry
 * with -v). Exit 1 with the library's error detail on failure.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/entry.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "core/hash.h"
#include "pack/zip.h"

static char *join(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *p = malloc(la + lb + 2);

	if (!p)
		exit(2);
	memcpy(p, a, la);
	p[la] = '/';
	memcpy(p + la + 1, b, lb + 1);
	return p;
}

static int walk(struct lp_entries *l, const char *root, const char *rel)
{
	char *dir = *rel ? join(root, rel) : strdup(root);
	DIR *d = opendir(dir);
	struct dirent *de;
	int r = 0;

	if (!d) {
		fprintf(stderr, "zipwrite: %s: %s\n", dir, strerror(errno));
		free(dir);
		return -errno;
	}
	while (r == 0 && (de = readdir(d))) {
		char *path, *src;
		struct lp_entry *e;
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		path = *rel ? join(rel, de->d_name) : strdup(de->d_name);
		src = join(dir, de->d_name);
		if (lstat(src, &st) < 0) {
			r = -errno;
		} else if (S_ISDIR(st.st_mode)) {
			e = lp_entries_push(l, path, LP_DIR);
			e->mode = 0755;
			r = walk(l, root, path);
		} else if (S_ISLNK(st.st_mode)) {
			char buf[4096];
			ssize_t n = readlink(src, buf, sizeof(buf) - 1);

			if (n < 0) {
				r = -errno;
			} else {
				buf[n] = '\0';
				e = lp_entries_push(l, path, LP_SYMLINK);
				e->target = strdup(buf);
				e->size = (uint64_t)n;
				e->mode = 0777;
			}
		} else if (S_ISREG(st.st_mode)) {
			e = lp_entries_push(l, path, LP_FILE);
			e->mode = (st.st_mode & 0111) ? 0755 : 0644;
			e->size = e->orig_size = (uint64_t)st.st_size;
			e->src = strdup(src);
			e->src_mode = st.st_mode;
		}
		free(path);
		free(src);
	}
	closedir(d);
	free(dir);
	return r;
}

/* Later files with the same bytes as an earlier one become duplicates of it. */
static int dedupe(struct lp_entries *l)
{
	for (size_t i = 0; i < l->n; i++) {
		struct lp_entry *e = &l->v[i];
		int r;

		if (e->kind != LP_FILE || e->size == 0)
			continue;
		r = lp_sha256_file(e->src, e->digest);
		if (r < 0)
			return r;
		e->flags |= LP_F_HAS_DIGEST;
		for (size_t k = 0; k < i; k++) {
			struct lp_entry *c = &l->v[k];

			if (c->kind == LP_FILE && !(c->flags & LP_F_DUPLICATE) &&
			    (c->flags & LP_F_HAS_DIGEST) && c->size == e->size &&
			    !memcmp(c->digest, e->digest, 32)) {
				e->flags |= LP_F_DUPLICATE;
				e->target = strdup(c->path);
				break;
			}
		}
	}
	return 0;
}

static void print_entry(void *ctx, size_t i, const struct lp_entry *e, const struct lp_zip_entry_info *info)
{
	printf("%s\t%" PRIu64 "\t%" PRIu64 "\t%u\t%08" PRIx32 "%s\n", e->path, info->usize, info->csize,
	       info->method, info->crc, info->zip64 ? "\tzip64" : "");
}

int main(int argc, char **argv)
{
	struct lp_zip_opts o;
	struct lp_zip_result res = { 0 };
	struct lp_entries l;
	struct lp_outfile out;
	bool dd = false;
	int c, r;

	lp_zip_opts_init(&o);
	while ((c = getopt(argc, argv, "t:l:e:w:b:W:Z:N:dv")) != -1) {
		switch (c) {
		case 't': o.threads = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'l': o.level = atoi(optarg); break;
		case 'e': o.epoch = strtoll(optarg, NULL, 0); break;
		case 'w': o.whole_max = strtoull(optarg, NULL, 0); break;
		case 'b': o.block = strtoull(optarg, NULL, 0); break;
		case 'W': o.window = strtoull(optarg, NULL, 0); break;
		case 'Z': o.zip64_size = strtoull(optarg, NULL, 0); break;
		case 'N': o.zip64_count = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'd': dd = true; break;
		case 'v': o.on_entry = print_entry; break;
		default:
			fprintf(stderr, "usage: zipwrite [-t N] [-l L] [-e EPOCH] [-w WHOLE] [-b BLOCK] "
				"[-W WINDOW] [-Z SIZE] [-N COUNT] [-d] [-v] DIR OUT.zip\n");
			return 2;
		}
	}
	if (argc - optind != 2)
		return 2;
	/* EFBIG from RLIMIT_FSIZE must come back as an error, not kill us. */
	signal(SIGXFSZ, SIG_IGN);

	lp_entries_init(&l);
	r = walk(&l, argv[optind], "");
	if (r < 0)
		return 1;
	lp_entries_sort(&l);
	if (dd && dedupe(&l) < 0)
		return 1;
	o.name = argv[optind + 1];
	r = lp_outfile_open(&out, argv[optind + 1]);
	if (r == 0) {
		r = lp_zip_write(&l, out.fd, &o, &res);
		if (r == 0)
			r = lp_outfile_commit(&out);
		else
			lp_outfile_abort(&out);
	}
	if (r < 0) {
		fprintf(stderr, "zipwrite: %s (%s)\n", lp_errmsg(), lp_strerror(r));
		lp_entries_free(&l);
		return 1;
	}
	printf("entries=%zu unzipped=%" PRIu64 " zipped=%" PRIu64 " zip64=%d\n",
	       res.entries, res.unzipped, res.zipped, res.zip64);
	lp_entries_free(&l);
	return 0;
}
