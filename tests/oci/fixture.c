/* SPDX-License-Identifier: MIT */
#include "tests/oci/fixture.h"
#include "core/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct lp_entries *walk_list;
static size_t walk_root_len;

static int walk_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	struct lp_entry *e;
	const char *rel = p + walk_root_len;

	if (*rel == '/')
		rel++;
	if (!*rel)
		return 0;
	if (S_ISDIR(st->st_mode)) {
		e = lp_entries_push(walk_list, rel, LP_DIR);
		if (!e)
			return -1;
		e->mode = 0755;
	} else if (S_ISLNK(st->st_mode)) {
		char buf[PATH_MAX];
		ssize_t n = readlink(p, buf, sizeof(buf) - 1);

		if (n < 0)
			return -1;
		buf[n] = '\0';
		e = lp_entries_push(walk_list, rel, LP_SYMLINK);
		if (!e || !(e->target = strdup(buf)))
			return -1;
		e->size = (uint64_t)n;
	} else if (S_ISREG(st->st_mode)) {
		char head[2] = { 0 };
		int fd = open(p, O_RDONLY);

		if (fd >= 0) {
			if (read(fd, head, 2) < 0)
				head[0] = 0;
			close(fd);
		}
		e = lp_entries_push(walk_list, rel, LP_FILE);
		if (!e || !(e->src = strdup(p)))
			return -1;
		e->size = (uint64_t)st->st_size;
		e->orig_size = e->size;
		e->mode = (st->st_mode & 0111) || (head[0] == '#' && head[1] == '!') ? 0755 : 0644;
		if (lp_sha256_file(p, e->digest) < 0)
			return -1;
		e->flags |= LP_F_HAS_DIGEST;
	}
	return 0;
}

int fx_load_dir(const char *dir, bool dedupe, struct lp_entries *l)
{
	walk_list = l;
	walk_root_len = strlen(dir);
	if (nftw(dir, walk_cb, 32, FTW_PHYS) != 0)
		return -EIO;
	lp_entries_sort(l);
	if (!dedupe)
		return 0;
	/* The first path (sorted) with given bytes is canonical; later ones point at it. */
	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i].kind != LP_FILE || (l->v[i].flags & LP_F_DUPLICATE))
			continue;
		for (size_t j = i + 1; j < l->n; j++) {
			struct lp_entry *e = &l->v[j];

			if (e->kind != LP_FILE || (e->flags & LP_F_DUPLICATE) ||
			    memcmp(e->digest, l->v[i].digest, 32) != 0)
				continue;
			e->flags |= LP_F_DUPLICATE;
			e->target = strdup(l->v[i].path);
			if (!e->target)
				return -ENOMEM;
		}
	}
	return 0;
}

int fx_add_file(struct lp_entries *l, const char *tmpdir, const char *path, const char *data, unsigned mode)
{
	char src[PATH_MAX];
	struct lp_entry *e;
	FILE *f;

	snprintf(src, sizeof(src), "%s/f%zu", tmpdir, l->n);
	f = fopen(src, "wb");
	if (!f)
		return -errno;
	fputs(data, f);
	fclose(f);
	e = lp_entries_push(l, path, LP_FILE);
	if (!e || !(e->src = strdup(src)))
		return -ENOMEM;
	e->size = strlen(data);
	e->mode = mode;
	return 0;
}
