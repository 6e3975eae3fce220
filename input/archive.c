/* SPDX-License-Identifier: MIT */
/* Archive sources: zip, tar family ... read with libarchive. */
#include "input/internal.h"
#include "core/classify.h"
#include "core/elf.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "core/hash.h"

#include <archive.h>
#include <archive_entry.h>
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
	struct lp_entries *out;
	uint64_t expanded;
	uint64_t max;
	unsigned counter;
	void *buf;
};

static int arc_fail(struct arc *a, int r, const char *name, const char *reason, const char *extra)
{
	char what[PATH_MAX + 64];

	snprintf(what, sizeof(what), "%s: entry '%s'", a->src->path, name);
	return lp_fail(r, what, "%s%s%s", reason, extra ? " " : "", extra ? extra : "");
}

static int arc_read_file(struct arc *a, struct archive *ar, const char *name, struct lp_entry *e)
{
	struct lp_sha256 sha;
	uint8_t head[4096];
	size_t headn = 0;
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
		la_ssize_t got;

		if ((r = lp_check_cancel(name)) < 0)
			goto out;
		got = archive_read_data(ar, a->buf, 1 << 20);

		if (got < 0) {
			r = arc_fail(a, -LP_E_BADARCHIVE, name, "cannot read data:", archive_error_string(ar));
			goto out;
		}
		if (got == 0)
			break;
		a->expanded += (uint64_t)got;
		if (a->expanded > a->max) {
			r = arc_fail(a, -LP_E_TOOBIG, name, "archive expands beyond the allowed size (zip bomb?); raise it with --max-expand", NULL);
			goto out;
		}
		if (headn < sizeof(head)) {
			size_t take = sizeof(head) - headn < (size_t)got ? sizeof(head) - headn : (size_t)got;

			memcpy(head + headn, a->buf, take);
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
				lp_sha256_update(&sha, a->buf, (size_t)got);
				continue;
			}
		}
		lp_sha256_update(&sha, a->buf, (size_t)got);
		if (fd >= 0 && (r = lp_write_all(fd, a->buf, (size_t)got)) < 0)
			goto out_wfail;
	}
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
	if (r < 0 && a->o->stage_dir && !spool)
		unlink(stage);
	return r;
}

int lp_input_load_archive(const struct lp_source *src, const struct lp_input_opts *o, struct lp_entries *out)
{
	struct arc a = { .src = src, .o = o, .out = out };
	struct archive *ar;
	struct archive_entry *ae;
	struct rules rs;
	int r = 0, ar_r;
	size_t first = out->n;

	a.max = o->max_expand ? o->max_expand : (16ULL << 30);
	r = rules_build(&rs, o, NULL);
	if (r < 0)
		return r;
	a.buf = malloc(1 << 20);
	ar = archive_read_new();
	if (!a.buf || !ar) {
		r = -ENOMEM;
		goto out;
	}
	archive_read_support_filter_all(ar);
	archive_read_support_format_all(ar);
	if (archive_read_open_filename(ar, src->path, 1 << 16) != ARCHIVE_OK) {
		int e = archive_errno(ar);

		r = lp_fail(e == ENOENT || e == EACCES ? -e : -LP_E_BADARCHIVE, src->path,
			    "cannot read archive: %s", archive_error_string(ar));
		goto out;
	}
	while ((ar_r = archive_read_next_header(ar, &ae)) == ARCHIVE_OK || ar_r == ARCHIVE_WARN) {
		const char *name = archive_entry_pathname_utf8(ae);
		char *clean, *ap;
		struct lp_entry *e;
		mode_t type = archive_entry_filetype(ae);

		if ((r = lp_check_cancel(src->path)) < 0)
			goto out;
		if (!name)
			name = archive_entry_pathname(ae);
		if (!name) {
			r = lp_fail(-LP_E_BADARCHIVE, src->path, "entry without a name");
			goto out;
		}
		clean = malloc(strlen(name) + 1);
		if (!clean) {
			r = -ENOMEM;
			goto out;
		}
		if (lp_path_clean(name, clean) < 0) {
			free(clean);
			/* "./" as the tar root is harmless; anything else unsafe is fatal. */
			if (type == AE_IFDIR && (strcmp(name, "./") == 0 || strcmp(name, ".") == 0))
				continue;
			r = arc_fail(&a, -LP_E_UNSAFEPATH, name, "unsafe path (absolute or containing '..')", NULL);
			goto out;
		}
		ap = lp_path_join(src->prefix, clean);
		if (!ap) {
			free(clean);
			r = -ENOMEM;
			goto out;
		}
		if (rules_excluded(&rs, clean, ap, type == AE_IFDIR)) {
			free(clean);
			free(ap);
			continue;
		}
		if (type == AE_IFREG && archive_entry_hardlink(ae)) {
			/* A tar hard link: same bytes as an earlier member. */
			char *lt = malloc(strlen(archive_entry_hardlink(ae)) + 1);
			struct lp_entry *orig = NULL;

			if (lt && lp_path_clean(archive_entry_hardlink(ae), lt) == 0) {
				char *lap = lp_path_join(src->prefix, lt);

				for (size_t i = first; lap && i < out->n; i++)
					if (out->v[i].kind == LP_FILE && strcmp(out->v[i].path, lap) == 0)
						orig = &out->v[i];
				free(lap);
			}
			free(lt);
			if (!orig) {
				r = arc_fail(&a, -LP_E_BADARCHIVE, name, "hard link to a missing member:",
					     archive_entry_hardlink(ae));
				free(clean);
				free(ap);
				goto out;
			}
			size_t oi = (size_t)(orig - out->v);
			e = lp_entries_push(out, ap, LP_FILE);
			if (!e) {
				r = -ENOMEM;
			} else {
				struct lp_entry *o2 = &out->v[oi];

				*e = *o2;
				e->path = strdup(ap);
				e->src = o2->src ? strdup(o2->src) : NULL;
				e->target = NULL;
				e->bin = NULL;
				if (!e->path)
					r = -ENOMEM;
			}
			free(clean);
			free(ap);
			if (r < 0)
				goto out;
			continue;
		}
		switch (type) {
		case AE_IFDIR:
			e = lp_entries_push(out, ap, LP_DIR);
			if (!e) {
				r = -ENOMEM;
				break;
			}
			e->origin = src->index;
			e->mode = 0755;
			e->src_mode = archive_entry_mode(ae);
			break;
		case AE_IFREG:
			e = lp_entries_push(out, ap, LP_FILE);
			if (!e) {
				r = -ENOMEM;
				break;
			}
			e->origin = src->index;
			e->src_mode = archive_entry_mode(ae);
			if (e->src_mode & 0111)
				e->flags |= LP_F_EXEC;
			r = arc_read_file(&a, ar, name, e);
			/* The declared size may lie; what we read is the truth. */
			if (r == 0) {
				e->size = archive_entry_size_is_set(ae) ? (uint64_t)archive_entry_size(ae) : 0;
				if (a.o->stage_dir && e->src) {
					struct stat st;

					if (stat(e->src, &st) == 0)
						e->size = (uint64_t)st.st_size;
				}
				e->orig_size = e->size;
			}
			break;
		case AE_IFLNK: {
			const char *t = archive_entry_symlink(ae);
			char resolved[PATH_MAX];

			if (!t || !*t || link_resolve(clean, t, resolved, sizeof(resolved)) < 0 || !resolved[0]) {
				r = arc_fail(&a, -LP_E_SYMLINK, name, "symbolic link points outside the package ->",
					     t ? t : "");
				break;
			}
			e = lp_entries_push(out, ap, LP_SYMLINK);
			if (!e || !(e->target = strdup(t))) {
				r = -ENOMEM;
				break;
			}
			e->origin = src->index;
			e->size = strlen(t);
			e->mode = 0777;
			break;
		}
		default:
			r = arc_fail(&a, -LP_E_BADTYPE, name, "unsupported entry type (device, FIFO or socket)", NULL);
			break;
		}
		free(clean);
		free(ap);
		if (r < 0)
			goto out;
	}
	if (ar_r != ARCHIVE_EOF) {
		r = lp_fail(-LP_E_BADARCHIVE, src->path, "corrupt archive: %s", archive_error_string(ar));
		goto out;
	}
out:
	if (ar)
		archive_read_free(ar);
	free(a.buf);
	rules_free(&rs);
	return r;
}

