/* SPDX-License-Identifier: MIT */
/* Directory sources: a walk of the tree with excludes, links and modes. */
#include "input/internal.h"
#include "core/err.h"
#include "core/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- repositories ----------------------------------------------------- */

const char *const lp_repo_roots[] = {
	".git", ".hg", ".svn",
	"pnpm-workspace.yaml", "lerna.json", "nx.json", "turbo.json", "rush.json", "go.work",
	NULL,
};

const char *const lp_repo_projects[] = {
	"package.json", "pyproject.toml", "setup.py", "go.mod", "Cargo.toml",
	"template.yaml", "template.yml", "serverless.yml", "serverless.yaml", "samconfig.toml", "cdk.json",
	NULL,
};

static bool has_marker(const char *dir, const char *const *markers)
{
	char p[PATH_MAX];
	struct stat st;

	for (const char *const *m = markers; *m; m++)
		if (snprintf(p, sizeof(p), "%s/%s", dir, *m) < (int)sizeof(p) && lstat(p, &st) == 0)
			return true;
	return false;
}

int lp_repo_root(const char *dir, char **ret)
{
	const char *home = getenv("HOME");
	char *cur = realpath(dir, NULL), *homereal = NULL, *proj = NULL, *p;
	int r = 0;

	*ret = NULL;
	if (!cur)
		return lp_fail(-errno, dir, "cannot resolve the source's real path: %s", strerror(errno));
	p = strdup(cur);
	if (!p) {
		free(cur);
		return -ENOMEM;
	}
	if (home && *home)
		homereal = realpath(home, NULL);
	/* $HOME and / hold stray package.json files too often to be trusted as one repository. */
	while (strcmp(p, "/") != 0 && !(homereal && strcmp(p, homereal) == 0)) {
		char *s;

		if (has_marker(p, lp_repo_roots)) {
			*ret = strdup(p);
			goto out;
		}
		if (!proj && has_marker(p, lp_repo_projects) && !(proj = strdup(p))) {
			r = -ENOMEM;
			goto out;
		}
		s = strrchr(p, '/');
		if (!s)
			break;
		if (s == p)
			s[1] = '\0';
		else
			*s = '\0';
	}
	*ret = proj ? proj : cur;
	if (proj)
		free(cur);
	cur = proj = NULL;
out:
	if (r == 0 && !*ret)
		r = -ENOMEM;
	free(cur);
	free(proj);
	free(p);
	free(homereal);
	return r;
}

/* ---- directory sources ------------------------------------------------ */

struct walk {
	const struct lp_source *src;
	const struct lp_input_opts *o;
	struct lp_entries *out;
	struct rules rules;
	dev_t devs[256];
	ino_t inos[256];
	int depth;
	char *repo;		/* real path of the enclosing repository (lp_repo_root) */
	bool repo_marked;	/* found by a marker; else it is the source itself */
	uint32_t under;		/* LP_F_MATERIALIZED while walking a materialized directory */
};

static char *art_path(const struct walk *w, const char *rel)
{
	return lp_path_join(w->src->prefix, rel);
}

/*
 * One input problem with the member at rel: an error finding when the
 * caller collects them (0: skip the member, go on), else the load stops.
 * The message names the file (source path and member).
 */
static int __attribute__((format(printf, 5, 6)))
problem(struct walk *w, int err, const char *code, const char *rel, const char *fmt, ...)
{
	char msg[1024];
	char *ap = *rel ? art_path(w, rel) : NULL;	/* the source root itself: no artifact path */
	va_list va;
	int r;

	va_start(va, fmt);
	vsnprintf(msg, sizeof(msg), fmt, va);
	va_end(va);
	r = lp_report_problem(w->o->problems, 0, err, code, ap, "%s", msg);
	free(ap);
	return r;
}

/* A warning or info about the member at rel, when the caller collects findings. */
static int __attribute__((format(printf, 5, 6)))
note(struct walk *w, enum lp_severity sev, const char *code, const char *rel, const char *fmt, ...)
{
	char msg[1024];
	char *ap;
	va_list va;
	int r;

	if (!w->o->problems)
		return 0;
	va_start(va, fmt);
	vsnprintf(msg, sizeof(msg), fmt, va);
	va_end(va);
	ap = art_path(w, rel);
	if (!ap)
		return -ENOMEM;
	r = lp_report_finding(w->o->problems, sev, code, ap, "%s", msg);
	free(ap);
	return r;
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
	char *ap;
	struct lp_entry *e;
	uint8_t digest[32];
	uint32_t facts = 0;
	/* A materialized link's bytes are read from its real path: not looked up by the link's. */
	bool memo = w->o->memo.lookup && !(extra & LP_F_MATERIALIZED);
	bool known = memo && w->o->memo.lookup(w->o->memo.ctx, fs, st, digest, &facts) == 1;

	/* Effective ids, as the emitter will open it; root reads anything. */
	if (!known && faccessat(AT_FDCWD, fs, R_OK, AT_EACCESS) < 0) {
		int err = errno;

		return problem(w, -err, "unreadable", rel, "%s: cannot read: %s", fs, strerror(err));
	}
	ap = art_path(w, rel);
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
	e->flags |= extra | w->under;
	if (st->st_mode & 0111)
		e->flags |= LP_F_EXEC;
	e->mode = (e->flags & LP_F_EXEC) ? 0755 : 0644;
	e->stat_id.dev = (uint64_t)st->st_dev;
	e->stat_id.ino = (uint64_t)st->st_ino;
	e->stat_id.size = (uint64_t)st->st_size;
	e->stat_id.mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
	e->stat_id.ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec;
	e->flags |= LP_F_STAT_ID;
	if (known) {
		memcpy(e->digest, digest, 32);
		e->flags |= LP_F_HAS_DIGEST;
		(void)lp_entry_apply_sniff_facts(e, facts);
	} else if (memo) {
		e->flags |= LP_F_MEMO_MISS;
	}
	return 0;
}

static int add_dir(struct walk *w, const char *fs, const char *rel, const struct stat *st)
{
	char *ap;
	struct lp_entry *e;

	if (w->depth >= (int)(sizeof(w->devs) / sizeof(w->devs[0])))
		return problem(w, -ELOOP, "too-deep", rel, "%s: directory nesting too deep (over %zu levels)", fs,
			       sizeof(w->devs) / sizeof(w->devs[0]));
	for (int i = 0; i < w->depth; i++)
		if (w->devs[i] == st->st_dev && w->inos[i] == st->st_ino)
			return problem(w, -LP_E_SYMLINK, "link-loop", rel,
				       "%s: symbolic link loop (the directory contains itself)", fs);
	ap = art_path(w, rel);
	if (!ap)
		return -ENOMEM;
	e = lp_entries_push(w->out, ap, LP_DIR);
	free(ap);
	if (!e)
		return -ENOMEM;
	e->src_mode = st->st_mode;
	e->origin = w->src->index;
	e->mode = 0755;
	e->flags |= w->under;
	w->devs[w->depth] = st->st_dev;
	w->inos[w->depth] = st->st_ino;
	w->depth++;
	int r = walk_dir(w, fs, rel);
	w->depth--;
	return r;
}

static int keep_link(struct walk *w, const char *rel, const char *target)
{
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

static bool path_within(const char *path, const char *root)
{
	size_t n = strlen(root);

	if (n == 1 && root[0] == '/')
		return true;
	return strncmp(path, root, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* Store a link leaving the source as its target's bytes; list it (with its bytes) as an info finding. */
static int materialize(struct walk *w, const char *fs, const char *rel, const char *target,
		       const char *real, const struct stat *tst)
{
	uint64_t bytes = 0;
	size_t n0 = w->out->n;
	uint32_t under = w->under;
	int r;

	if (S_ISREG(tst->st_mode)) {
		r = add_file(w, fs, rel, tst, LP_F_MATERIALIZED);
		/* Read the bytes from the path that was checked, not through the link again. */
		if (r == 0 && w->out->n > n0) {
			struct lp_entry *e = &w->out->v[w->out->n - 1];
			char *src = strdup(real);

			if (!src)
				return -ENOMEM;
			free(e->src);
			e->src = src;
		}
	} else if (S_ISDIR(tst->st_mode)) {
		w->under = LP_F_MATERIALIZED;
		r = add_dir(w, fs, rel, tst);
		w->under = under;
	} else {
		return problem(w, -LP_E_BADTYPE, "special-file", rel,
			       "%s: symbolic link to a special file (-> %s); Lambda packages hold only files, directories and symlinks",
			       fs, target);
	}
	if (r < 0 || w->out->n == n0)
		return r;
	for (size_t i = n0; i < w->out->n; i++)
		if (w->out->v[i].kind == LP_FILE)
			bytes += w->out->v[i].size;
	return note(w, LP_SEV_INFO, "materialized-link", rel,
		    "%s: symbolic link outside the source (-> %s, %s) stored as its target's %s (%" PRIu64 " bytes)",
		    fs, target, real, S_ISDIR(tst->st_mode) ? "directory" : "bytes", bytes);
}

static int add_link(struct walk *w, const char *fs, const char *rel)
{
	char target[PATH_MAX], resolved[PATH_MAX];
	struct stat tst;
	char *real;
	ssize_t n;
	int r;

	n = readlink(fs, target, sizeof(target) - 1);
	if (n < 0) {
		int err = errno;

		return problem(w, -err, "unreadable", rel, "%s: cannot read symbolic link: %s", fs, strerror(err));
	}
	target[n] = '\0';
	if (stat(fs, &tst) < 0) {
		int err = errno;

		if (err == ELOOP)
			return problem(w, -LP_E_SYMLINK, "link-loop", rel, "%s: symbolic link loop (-> %s)", fs, target);
		if (err != ENOENT && err != ENOTDIR)
			return problem(w, -err, "unreadable", rel, "%s: cannot follow symbolic link (-> %s): %s",
				       fs, target, strerror(err));
		/* Dangling: no bytes to leak and none to store; the link text itself is harmless. */
		r = keep_link(w, rel, target);
		if (r == 0)
			r = note(w, LP_SEV_WARNING, "dangling-link", rel,
				 "%s: dangling symbolic link (-> %s) kept as a link", fs, target);
		return r;
	}
	r = link_resolve(rel, target, resolved, sizeof(resolved));
	if (r == 0 && resolved[0] != '\0')
		return keep_link(w, rel, target);
	/* The link leaves the source (or points at its root). */
	if (w->o->links == LP_LINKS_REFUSE)
		return problem(w, -LP_E_SYMLINK, "link-outside", rel,
			       "%s: symbolic link points outside the package (-> %s); refused by --links=refuse "
			       "(--links=materialize stores it if it stays in the repository), or exclude it",
			       fs, target);
	real = realpath(fs, NULL);
	if (!real) {
		int err = errno;

		return problem(w, -err, "unreadable", rel, "%s: cannot resolve symbolic link (-> %s): %s",
			       fs, target, strerror(err));
	}
	if (w->o->links != LP_LINKS_MATERIALIZE_ALL && !path_within(real, w->repo)) {
		r = problem(w, -LP_E_SYMLINK, "link-outside-repository", rel,
			    "%s: symbolic link leaves the %s %s (-> %s, resolves to %s); not packed: "
			    "use --links=materialize-all to store its target anyway, or exclude it (--exclude '%s')",
			    fs, w->repo_marked ? "repository" : "source directory", w->repo, target, real, rel);
		free(real);
		return r;
	}
	r = materialize(w, fs, rel, target, real, &tst);
	free(real);
	return r;
}

static bool has_control(const char *name)
{
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return true;
	return false;
}

static int walk_dir(struct walk *w, const char *fsdir, const char *reldir)
{
	DIR *d = opendir(fsdir);
	struct dirent *de;
	int r = 0;

	if (!d) {
		int err = errno;

		return problem(w, -err, "unreadable", reldir, "%s: cannot read directory: %s", fsdir, strerror(err));
	}
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
			r = problem(w, -ENAMETOOLONG, "path-too-long", reldir, "%s: a name inside is too long (%.40s...)",
				    fsdir, de->d_name);
			if (r < 0)
				break;
			continue;
		}
		/* Relative to the open directory: no walk of the whole path per file. */
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			int err = errno;

			r = problem(w, -err, "unreadable", rel, "%s: cannot stat: %s", fs, strerror(err));
			if (r < 0)
				break;
			continue;
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
		if (has_control(de->d_name))
			r = problem(w, -LP_E_UNSAFEPATH, "unsafe-name", rel,
				    "%s: file name contains control characters; rename it or exclude it", fs);
		else if (S_ISREG(st.st_mode))
			r = add_file(w, fs, rel, &st, 0);
		else if (S_ISDIR(st.st_mode))
			r = add_dir(w, fs, rel, &st);
		else if (S_ISLNK(st.st_mode))
			r = add_link(w, fs, rel);
		else
			r = problem(w, -LP_E_BADTYPE, "special-file", rel,
				    "%s: unsupported file type (%s); Lambda packages hold only files, directories and symlinks",
				    fs, S_ISFIFO(st.st_mode) ? "FIFO" : S_ISSOCK(st.st_mode) ? "socket" :
				    S_ISCHR(st.st_mode) ? "character device" : S_ISBLK(st.st_mode) ? "block device" : "special file");
		if (r < 0)
			break;
	}
	if (r == 0 && errno) {
		int err = errno;

		r = problem(w, -err, "unreadable", reldir, "%s: cannot read directory: %s", fsdir, strerror(err));
	}
	closedir(d);
	return r;
}

int lp_input_load_dir(const struct lp_source *src, const struct lp_input_opts *o, struct lp_entries *out)
{
	struct walk w = { .src = src, .o = o, .out = out };
	struct stat st;
	char *self = NULL;
	int r;

	if (stat(src->path, &st) < 0)
		return lp_fail(-errno, src->path, "cannot read source: %s", strerror(errno));
	r = rules_build(&w.rules, o, src->path);
	if (r < 0)
		goto out;
	if (o->links == LP_LINKS_MATERIALIZE) {
		r = lp_repo_root(src->path, &w.repo);
		if (r < 0)
			goto out;
		self = realpath(src->path, NULL);
		w.repo_marked = !self || strcmp(self, w.repo) != 0 || has_marker(self, lp_repo_roots) ||
				has_marker(self, lp_repo_projects);
	}
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
	free(self);
	free(w.repo);
	rules_free(&w.rules);
	return r;
}

/* ---- archive sources -------------------------------------------------- */

