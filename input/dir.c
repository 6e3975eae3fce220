/* SPDX-License-Identifier: MIT */
/* Directory sources: a walk of the tree with excludes, links and modes. */
#include "input/internal.h"
#include "core/err.h"
#include "core/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- directory sources ------------------------------------------------ */

struct walk {
	const struct lp_source *src;
	const struct lp_input_opts *o;
	struct lp_entries *out;
	struct rules rules;
	dev_t devs[256];
	ino_t inos[256];
	int depth;
};

static char *art_path(const struct walk *w, const char *rel)
{
	return lp_path_join(w->src->prefix, rel);
}

/*
 * Where does a link at rel (relative to the source root) point, lexically?
 * Returns 0 and the cleaned in-root path, or -LP_E_UNSAFEPATH if it leaves.
 */
int link_resolve(const char *rel, const char *target, char *out, size_t outlen)
{
	char buf[PATH_MAX * 2];
	size_t plen = lp_path_parent_len(rel);
	char *parts[PATH_MAX / 2];
	size_t np = 0;
	char *save = NULL;

	if (target[0] == '/')
		return -LP_E_UNSAFEPATH;
	snprintf(buf, sizeof(buf), "%.*s/%s", (int)plen, rel, target);
	for (char *t = strtok_r(buf, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		if (!strcmp(t, "."))
			continue;
		if (!strcmp(t, "..")) {
			if (np == 0)
				return -LP_E_UNSAFEPATH;
			np--;
			continue;
		}
		if (np < sizeof(parts) / sizeof(parts[0]))
			parts[np++] = t;
	}
	out[0] = '\0';
	for (size_t i = 0; i < np; i++) {
		if (i)
			strncat(out, "/", outlen - strlen(out) - 1);
		strncat(out, parts[i], outlen - strlen(out) - 1);
	}
	return 0;
}

static int walk_dir(struct walk *w, const char *fsdir, const char *reldir);

static int add_file(struct walk *w, const char *fs, const char *rel, const struct stat *st, uint32_t extra)
{
	char *ap = art_path(w, rel);
	struct lp_entry *e;

	if (!ap)
		return -ENOMEM;
	e = lp_entries_push(w->out, ap, LP_FILE);
	free(ap);
	if (!e)
		return -ENOMEM;
	e->src = strdup(fs);
	if (!e->src)
		return -ENOMEM;
	e->size = (uint64_t)st->st_size;
	e->orig_size = e->size;
	e->src_mode = st->st_mode;
	e->origin = w->src->index;
	e->flags |= extra;
	if (st->st_mode & 0111)
		e->flags |= LP_F_EXEC;
	e->mode = (e->flags & LP_F_EXEC) ? 0755 : 0644;
	return 0;
}

static int add_dir(struct walk *w, const char *fs, const char *rel, const struct stat *st)
{
	char *ap = art_path(w, rel);
	struct lp_entry *e;

	if (!ap)
		return -ENOMEM;
	e = lp_entries_push(w->out, ap, LP_DIR);
	free(ap);
	if (!e)
		return -ENOMEM;
	e->src_mode = st->st_mode;
	e->origin = w->src->index;
	e->mode = 0755;
	if (w->depth >= (int)(sizeof(w->devs) / sizeof(w->devs[0])))
		return lp_fail(-ELOOP, fs, "directory nesting too deep");
	for (int i = 0; i < w->depth; i++)
		if (w->devs[i] == st->st_dev && w->inos[i] == st->st_ino)
			return lp_fail(-LP_E_SYMLINK, fs, "symbolic link loop (directory contains itself)");
	w->devs[w->depth] = st->st_dev;
	w->inos[w->depth] = st->st_ino;
	w->depth++;
	int r = walk_dir(w, fs, rel);
	w->depth--;
	return r;
}

static int add_link(struct walk *w, const char *fs, const char *rel)
{
	char target[PATH_MAX], resolved[PATH_MAX];
	struct stat tst;
	ssize_t n;
	int r;

	n = readlink(fs, target, sizeof(target) - 1);
	if (n < 0)
		return lp_fail(-errno, fs, "cannot read symbolic link: %s", strerror(errno));
	target[n] = '\0';
	if (stat(fs, &tst) < 0) {
		if (errno == ELOOP)
			return lp_fail(-LP_E_SYMLINK, fs, "symbolic link loop (-> %s)", target);
		if (errno == ENOENT || errno == ENOTDIR)
			return lp_fail(-LP_E_SYMLINK, fs, "dangling symbolic link (-> %s)", target);
		return lp_fail(-errno, fs, "cannot follow symbolic link: %s", strerror(errno));
	}
	r = link_resolve(rel, target, resolved, sizeof(resolved));
	if (r == 0 && resolved[0] != '\0') {
		char *ap = art_path(w, rel);
		struct lp_entry *e;

		if (!ap)
			return -ENOMEM;
		e = lp_entries_push(w->out, ap, LP_SYMLINK);
		free(ap);
		if (!e || !(e->target = strdup(target)))
			return -ENOMEM;
		e->size = strlen(target);
		e->origin = w->src->index;
		e->mode = 0777;
		return 0;
	}
	/* The link leaves the package root (or points at the root itself). */
	if (w->o->links == LP_LINKS_REFUSE)
		return lp_fail(-LP_E_SYMLINK, fs,
			       "symbolic link points outside the package (-> %s); use --links=materialize to store its target",
			       target);
	if (S_ISREG(tst.st_mode))
		return add_file(w, fs, rel, &tst, LP_F_MATERIALIZED);
	if (S_ISDIR(tst.st_mode))
		return add_dir(w, fs, rel, &tst);
	return lp_fail(-LP_E_BADTYPE, fs, "symbolic link to a special file (-> %s)", target);
}

static int walk_dir(struct walk *w, const char *fsdir, const char *reldir)
{
	DIR *d = opendir(fsdir);
	struct dirent *de;
	int r = 0;

	if (!d)
		return lp_fail(-errno, fsdir, "cannot read directory: %s", strerror(errno));
	while ((errno = 0, de = readdir(d))) {
		char fs[PATH_MAX], rel[PATH_MAX];
		struct stat st;
		char *ap;
		bool ex;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if ((r = lp_check_cancel(fsdir)) < 0)
			break;
		if (snprintf(fs, sizeof(fs), "%s/%s", fsdir, de->d_name) >= (int)sizeof(fs) ||
		    snprintf(rel, sizeof(rel), "%s%s%s", reldir, *reldir ? "/" : "", de->d_name) >= (int)sizeof(rel)) {
			r = lp_fail(-ENAMETOOLONG, fsdir, "path too long");
			break;
		}
		if (lstat(fs, &st) < 0) {
			r = lp_fail(-errno, fs, "cannot stat: %s", strerror(errno));
			break;
		}
		/* This run's own output and its temporaries are never an input. */
		if (lp_input_skipped(w->o, w->devs[w->depth - 1], w->inos[w->depth - 1], de->d_name, &st, fs))
			continue;
		ap = art_path(w, rel);
		if (!ap) {
			r = -ENOMEM;
			break;
		}
		ex = rules_excluded(&w->rules, rel, ap, S_ISDIR(st.st_mode));
		free(ap);
		if (ex)
			continue;
		if (S_ISREG(st.st_mode))
			r = add_file(w, fs, rel, &st, 0);
		else if (S_ISDIR(st.st_mode))
			r = add_dir(w, fs, rel, &st);
		else if (S_ISLNK(st.st_mode))
			r = add_link(w, fs, rel);
		else
			r = lp_fail(-LP_E_BADTYPE, fs, "unsupported file type (%s); Lambda packages hold only files, directories and symlinks",
				    S_ISFIFO(st.st_mode) ? "FIFO" : S_ISSOCK(st.st_mode) ? "socket" :
				    S_ISCHR(st.st_mode) ? "character device" : S_ISBLK(st.st_mode) ? "block device" : "special file");
		if (r < 0)
			break;
	}
	if (r == 0 && errno)
		r = lp_fail(-errno, fsdir, "cannot read directory: %s", strerror(errno));
	closedir(d);
	return r;
}

int lp_input_load_dir(const struct lp_source *src, const struct lp_input_opts *o, struct lp_entries *out)
{
	struct walk w = { .src = src, .o = o, .out = out };
	struct stat st;
	int r;

	if (stat(src->path, &st) < 0)
		return lp_fail(-errno, src->path, "cannot read source: %s", strerror(errno));
	r = rules_build(&w.rules, o, src->path);
	if (r < 0)
		goto out;
	w.devs[0] = st.st_dev;
	w.inos[0] = st.st_ino;
	w.depth = 1;
	/* A prefix is itself a directory of the artifact. */
	if (*src->prefix) {
		struct lp_entry *e = lp_entries_push(out, src->prefix, LP_DIR);

		if (!e) {
			r = -ENOMEM;
			goto out;
		}
		e->origin = src->index;
		e->flags |= LP_F_IMPLICIT;
	}
	r = walk_dir(&w, src->path, "");
out:
	rules_free(&w.rules);
	return r;
}

/* ---- archive sources -------------------------------------------------- */

