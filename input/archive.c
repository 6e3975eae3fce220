/* SPDX-License-Identifier: MIT */
/* Archive sources: zip, tar family ... read with libarchive. */
#include "input/internal.h"
#include "core/classify.h"
#include "core/elf.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "core/hash.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct arc {
	const struct lp_source *src;
	const struct lp_input_opts *o;
	struct lp_stream *st;
	unsigned counter;
	uint8_t *buf;
};

/* Stage (or only hash) one file member's bytes. 1: dropped as a problem. */
static int arc_read_file(struct arc *a, const struct lp_member *m, struct lp_entry *e)
{
	struct lp_sha256 sha;
	uint8_t head[4096];
	size_t headn = 0;
	uint64_t total = 0;
	char stage[PATH_MAX];
	int fd = -1, r = 0;
	bool spool = false;

	lp_sha256_init(&sha);
	if (a->o->stage_dir) {
		snprintf(stage, sizeof(stage), "%s/a%u-%u", a->o->stage_dir, (unsigned)a->src->index, a->counter++);
		fd = open(stage, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return lp_fail(-errno, stage, "cannot create staging file: %s", strerror(errno));
	}
	for (;;) {
		const uint8_t *buf = a->buf;
		ssize_t got;

		if ((r = lp_check_cancel(a->src->path)) < 0)
			goto out;
		got = lp_stream_read(a->st, a->buf, 1 << 20);

		if (got < 0) {
			r = (int)got;
			goto out;
		}
		if (got == 0)
			break;
		total += (uint64_t)got;
		if (headn < sizeof(head)) {
			size_t take = sizeof(head) - headn < (size_t)got ? sizeof(head) - headn : (size_t)got;

			memcpy(head + headn, buf, take);
			headn += take;
			if (fd < 0 && a->o->binfo && headn >= 4 && lp_bin_sniff(head, headn) != LP_BIN_NONE) {
				/* Not staging, but the binary facts need a file to read from. */
				const char *td = getenv("TMPDIR");
				char path[PATH_MAX];

				snprintf(path, sizeof(path), "%s/lambdapack-spool.XXXXXX", td && *td ? td : "/tmp");
				fd = mkostemp(path, O_CLOEXEC);
				if (fd < 0) {
					r = lp_fail(-errno, path, "cannot create spool file: %s", strerror(errno));
					goto out;
				}
				unlink(path);
				spool = true;
				if ((r = lp_write_all(fd, head, headn)) < 0)
					goto out_wfail;
				lp_sha256_update(&sha, buf, (size_t)got);
				continue;
			}
		}
		lp_sha256_update(&sha, buf, (size_t)got);
		if (fd >= 0 && (r = lp_write_all(fd, buf, (size_t)got)) < 0)
			goto out_wfail;
	}
	if (lp_stream_dropped(a->st)) {
		r = 1;
		goto out;
	}
	(void)m;
	/* The declared size may lie; what was read is the truth. */
	e->size = e->orig_size = total;
	lp_sha256_final(&sha, e->digest);
	e->flags |= LP_F_HAS_DIGEST;
	lp_entry_sniff(e, head, headn);
	if (a->o->binfo && e->binfmt != LP_BIN_NONE && fd >= 0)
		(void)lp_binfo_read_fd(fd, &e->bin);
	lp_entry_finish_mode(e);
	if (a->o->stage_dir && !spool) {
		e->src = strdup(stage);
		if (!e->src)
			r = -ENOMEM;
	}
	goto out;
out_wfail:
	r = lp_fail(r, a->o->stage_dir ? stage : a->src->path, "cannot write staged copy: %s", strerror(-r));
out:
	if (fd >= 0)
		close(fd);
	if (r != 0 && a->o->stage_dir && !spool)
		unlink(stage);
	return r;
}

/* The entry of an earlier member of this source, by artifact path (hard links). */
static struct lp_entry *arc_find(struct lp_entries *out, size_t first, const char *ap)
{
	for (size_t i = out->n; i > first; i--)
		if (out->v[i - 1].kind == LP_FILE && strcmp(out->v[i - 1].path, ap) == 0)
			return &out->v[i - 1];
	return NULL;
}

int lp_input_load_archive(const struct lp_source *src, const struct lp_input_opts *o, struct lp_entries *out)
{
	struct lp_stream_opts so = {
		.name = src->path,
		.max_expand = o->max_expand,
		.ratio = !o->max_expand,
		.problems = o->problems,
	};
	struct arc a = { .src = src, .o = o };
	const struct lp_member *m;
	struct rules rs;
	size_t first = out->n;
	int r;

	r = rules_build(&rs, o, NULL);
	if (r < 0)
		return r;
	a.buf = malloc(1 << 20);
	if (!a.buf) {
		r = -ENOMEM;
		goto out;
	}
	r = lp_stream_open_file(src->path, &so, &a.st);
	if (r < 0)
		goto out;
	while ((r = lp_stream_next(a.st, &m)) > 0) {
		struct lp_entry *e;
		char *ap = lp_path_join(src->prefix, m->path);

		if ((r = lp_check_cancel(src->path)) < 0) {
			free(ap);
			goto out;
		}
		if (!ap) {
			r = -ENOMEM;
			break;
		}
		if (rules_excluded(&rs, m->path, ap, m->kind == LP_MEMBER_DIR)) {
			free(ap);
			continue;
		}
		switch (m->kind) {
		case LP_MEMBER_HARDLINK: {
			/* Same bytes as an earlier member (the reader checked it is one). */
			char *lap = lp_path_join(src->prefix, m->link);
			struct lp_entry *orig = lap ? arc_find(out, first, lap) : NULL;
			size_t oi;

			free(lap);
			if (!orig) {
				/* The target was excluded: the link is too. */
				break;
			}
			oi = (size_t)(orig - out->v);
			e = lp_entries_push(out, ap, LP_FILE);
			if (!e) {
				r = -ENOMEM;
				break;
			}
			orig = &out->v[oi];
			{
				char *own = e->path;	/* the copy push made */

				*e = *orig;
				e->path = own;
			}
			e->src = orig->src ? strdup(orig->src) : NULL;
			e->target = NULL;
			e->bin = NULL;
			if (orig->src && !e->src)
				r = -ENOMEM;
			break;
		}
		case LP_MEMBER_DIR:
			e = lp_entries_push(out, ap, LP_DIR);
			if (!e) {
				r = -ENOMEM;
				break;
			}
			e->origin = src->index;
			e->mode = 0755;
			e->src_mode = m->mode;
			break;
		case LP_MEMBER_FILE:
			e = lp_entries_push(out, ap, LP_FILE);
			if (!e) {
				r = -ENOMEM;
				break;
			}
			e->origin = src->index;
			e->src_mode = m->mode;
			if (e->src_mode & 0111)
				e->flags |= LP_F_EXEC;
			r = arc_read_file(&a, m, e);
			if (r == 1) {
				/* Recorded as a problem: drop it. */
				lp_entry_release(e);
				out->n--;
				r = 0;
			}
			break;
		case LP_MEMBER_SYMLINK:
			e = lp_entries_push(out, ap, LP_SYMLINK);
			if (!e || !(e->target = strdup(m->target))) {
				r = -ENOMEM;
				break;
			}
			e->origin = src->index;
			e->size = strlen(m->target);
			e->mode = 0777;
			break;
		default:
			/* Whiteouts and devices come only from layers. */
			break;
		}
		free(ap);
		if (r < 0)
			break;
	}
out:
	lp_stream_close(a.st);
	free(a.buf);
	rules_free(&rs);
	return r < 0 ? r : 0;
}
