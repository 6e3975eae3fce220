/* SPDX-License-Identifier: MIT */
#include "core/input.h"
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
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const lp_default_excludes[] = {
	".git/", ".hg/", ".svn/", ".bzr/",
	".DS_Store", "._*", "__MACOSX/", "Thumbs.db", "desktop.ini",
	"*.swp", "*.swo", "*~", ".#*", ".idea/", ".vscode/",
	"npm-debug.log*", "yarn-debug.log*", "yarn-error.log*",
	".serverless/", ".aws-sam/", ".pytest_cache/", ".mypy_cache/",
	LP_IGNORE_FILE,
	NULL,
};

/* ---- sources ---------------------------------------------------------- */

int lp_source_parse(const char *arg, uint16_t index, struct lp_source *ret)
{
	const char *eq = strrchr(arg, '=');
	char *prefix = NULL;
	int r;

	memset(ret, 0, sizeof(*ret));
	ret->index = index;
	if (eq && eq != arg) {
		ret->path = strndup(arg, (size_t)(eq - arg));
		if (eq[1] == '\0' || strcmp(eq + 1, "/") == 0 || strcmp(eq + 1, ".") == 0) {
			prefix = strdup("");
		} else {
			prefix = malloc(strlen(eq + 1) + 1);
			if (prefix && (r = lp_path_clean(eq + 1, prefix)) < 0) {
				free(prefix);
				free(ret->path);
				ret->path = NULL;
				return lp_fail(r, arg, "prefix '%s' must be a relative path without '..'", eq + 1);
			}
		}
	} else {
		ret->path = strdup(arg);
		prefix = strdup("");
	}
	if (!ret->path || !prefix) {
		free(ret->path);
		free(prefix);
		ret->path = NULL;
		return -ENOMEM;
	}
	ret->prefix = prefix;
	return 0;
}

void lp_source_free(struct lp_source *s)
{
	free(s->path);
	free(s->prefix);
	s->path = s->prefix = NULL;
}

bool lp_source_is_dir(const struct lp_source *s)
{
	struct stat st;

	return stat(s->path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- ignore rules ----------------------------------------------------- */

struct rule {
	const char *pat;	/* points into owned storage */
	bool neg;
	bool dironly;
	bool user;		/* --exclude: also matched against the artifact path */
};

struct rules {
	struct rule *v;
	size_t n, cap;
	struct lp_strv store;
};

static int rules_add(struct rules *rs, const char *line, bool user)
{
	char buf[4096];
	size_t len;
	struct rule ru = { .user = user };
	int r;

	while (*line == ' ' || *line == '\t')
		line++;
	if (!*line || *line == '#')
		return 0;
	if (*line == '!') {
		ru.neg = true;
		line++;
	}
	len = strlen(line);
	while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\n'))
		len--;
	if (!len || len >= sizeof(buf))
		return 0;
	memcpy(buf, line, len);
	buf[len] = '\0';
	if (buf[len - 1] == '/') {
		ru.dironly = true;
		buf[--len] = '\0';
		if (!len)
			return 0;
	}
	r = lp_strv_push(&rs->store, buf);
	if (r < 0)
		return r;
	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 32;
		struct rule *v = realloc(rs->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		rs->v = v;
		rs->cap = cap;
	}
	ru.pat = NULL;	/* fixed up below: store may realloc its array, not its strings */
	rs->v[rs->n] = ru;
	rs->v[rs->n].pat = rs->store.v[rs->store.n - 1];
	rs->n++;
	return 0;
}

static void rules_free(struct rules *rs)
{
	free(rs->v);
	lp_strv_free(&rs->store);
	memset(rs, 0, sizeof(*rs));
}

/* Last matching rule wins, as in gitignore. */
static bool rules_excluded(const struct rules *rs, const char *rel, const char *art, bool is_dir)
{
	bool ex = false;

	for (size_t i = 0; i < rs->n; i++) {
		const struct rule *ru = &rs->v[i];

		if (ru->dironly && !is_dir)
			continue;
		if (lp_glob_match(ru->pat, rel) || (ru->user && art && lp_glob_match(ru->pat, art)))
			ex = !ru->neg;
	}
	return ex;
}

static int rules_build(struct rules *rs, const struct lp_input_opts *o, const char *dir)
{
	int r;

	memset(rs, 0, sizeof(*rs));
	if (!o->no_default_excludes)
		for (const char *const *p = lp_default_excludes; *p; p++)
			if ((r = rules_add(rs, *p, false)) < 0)
				return r;
	if (dir && !o->no_ignore_file) {
		char path[PATH_MAX];
		char *text = NULL;

		snprintf(path, sizeof(path), "%s/%s", dir, LP_IGNORE_FILE);
		if (access(path, F_OK) == 0) {
			r = lp_read_file(path, 1 << 20, &text, NULL);
			if (r < 0)
				return r;
			for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
			     line = strtok_r(NULL, "\n", &save))
				if ((r = rules_add(rs, line, false)) < 0)
					break;
			free(text);
			if (r < 0)
				return r;
		}
	}
	for (size_t i = 0; i < o->excludes.n; i++)
		if ((r = rules_add(rs, o->excludes.v[i], true)) < 0)
			return r;
	return 0;
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
};

static char *art_path(const struct walk *w, const char *rel)
{
	return lp_path_join(w->src->prefix, rel);
}

/*
 * Where does a link at rel (relative to the source root) point, lexically?
 * Returns 0 and the cleaned in-root path, or -LP_E_UNSAFEPATH if it leaves.
 */
static int link_resolve(const char *rel, const char *target, char *out, size_t outlen)
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
		if (snprintf(fs, sizeof(fs), "%s/%s", fsdir, de->d_name) >= (int)sizeof(fs) ||
		    snprintf(rel, sizeof(rel), "%s%s%s", reldir, *reldir ? "/" : "", de->d_name) >= (int)sizeof(rel)) {
			r = lp_fail(-ENAMETOOLONG, fsdir, "path too long");
			break;
		}
		if (lstat(fs, &st) < 0) {
			r = lp_fail(-errno, fs, "cannot stat: %s", strerror(errno));
			break;
		}
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

static int load_dir(const struct lp_source *src, const struct lp_input_opts *o, struct lp_entries *out)
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

struct arc {
	const struct lp_source *src;
	const struct lp_input_opts *o;
	struct lp_entries *out;
	uint64_t expanded;
	uint64_t max;
	unsigned counter;
	void *buf;
};

static uint64_t rd(const uint8_t *p, int size, bool be)
{
	uint64_t v = 0;

	for (int i = 0; i < size; i++)
		v |= (uint64_t)p[be ? size - 1 - i : i] << (8 * i);
	return v;
}

/*
 * Is this ELF something the loader runs (ET_EXEC, or a PIE: ET_DYN with a
 * PT_INTERP)? Decided from the first bytes alone, so a binary that lost its
 * x bit (a Windows checkout, a zip without Unix modes) still gets 0755.
 */
static bool elf_head_is_program(const uint8_t *p, size_t n)
{
	bool be = p[5] == 2, is64 = p[4] == 2;
	unsigned et = (unsigned)rd(p + 16, 2, be);
	uint64_t phoff;
	unsigned phentsize, phnum;

	if (et == 2)
		return true;
	if (et != 3 || (is64 && n < 64))
		return false;
	phoff = is64 ? rd(p + 32, 8, be) : rd(p + 28, 4, be);
	phentsize = (unsigned)(is64 ? rd(p + 54, 2, be) : rd(p + 42, 2, be));
	phnum = (unsigned)(is64 ? rd(p + 56, 2, be) : rd(p + 44, 2, be));
	if (phentsize < 4)
		return false;
	for (unsigned i = 0; i < phnum; i++) {
		uint64_t off = phoff + (uint64_t)i * phentsize;

		if (off + 4 > n)
			break;
		if (rd(p + off, 4, be) == 3)	/* PT_INTERP */
			return true;
	}
	return false;
}

static int sniff_flags(const uint8_t *p, size_t n, struct lp_entry *e)
{
	e->binfmt = (uint8_t)lp_bin_sniff(p, n);
	if (n >= 2 && p[0] == '#' && p[1] == '!')
		e->flags |= LP_F_SCRIPT | LP_F_EXEC;
	if (e->binfmt == LP_BIN_ELF && n >= 52 && elf_head_is_program(p, n))
		e->flags |= LP_F_EXEC;
	return 0;
}

static void finish_mode(struct lp_entry *e)
{
	if (e->bin && e->bin->is_pie_or_exec)
		e->flags |= LP_F_EXEC;
	e->mode = (e->flags & LP_F_EXEC) ? 0755 : 0644;
	e->flags |= LP_F_SNIFFED;
}

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
		la_ssize_t got = archive_read_data(ar, a->buf, 1 << 20);

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
	sniff_flags(head, headn, e);
	if (a->o->binfo && e->binfmt != LP_BIN_NONE && fd >= 0)
		(void)lp_binfo_read_fd(fd, &e->bin);
	finish_mode(e);
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

static int load_archive(const struct lp_source *src, const struct lp_input_opts *o, struct lp_entries *out)
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

int lp_input_load(const struct lp_source *src, const struct lp_input_opts *o, struct lp_entries *out)
{
	struct stat st;

	if (stat(src->path, &st) < 0)
		return lp_fail(-errno, src->path, "cannot read source: %s", strerror(errno));
	if (S_ISDIR(st.st_mode))
		return load_dir(src, o, out);
	if (!S_ISREG(st.st_mode))
		return lp_fail(-LP_E_BADTYPE, src->path, "source is neither a directory nor an archive file");
	return load_archive(src, o, out);
}

int lp_input_load_all(const struct lp_source *srcs, size_t n, const struct lp_input_opts *o,
		      bool overwrite, struct lp_entries *out)
{
	int r;

	for (size_t i = 0; i < n; i++) {
		r = lp_input_load(&srcs[i], o, out);
		if (r < 0)
			return r;
	}
	lp_entries_sort(out);
	r = lp_entries_unique(out, overwrite);
	if (r < 0)
		return r;
	return lp_entries_add_parents(out);
}

/* ---- classification --------------------------------------------------- */

unsigned lp_ncpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (unsigned)n : 1;
}

struct pfor {
	size_t n;
	atomic_size_t next;
	atomic_int err;
	int (*fn)(size_t i, void *ctx);
	void *ctx;
	pthread_mutex_t lock;
	char msg[1024];
};

static void *pfor_worker(void *arg)
{
	struct pfor *p = arg;

	for (;;) {
		size_t i = atomic_fetch_add(&p->next, 1);
		int r;

		if (i >= p->n || atomic_load(&p->err))
			break;
		r = p->fn(i, p->ctx);
		if (r < 0) {
			int zero = 0;

			if (atomic_compare_exchange_strong(&p->err, &zero, r)) {
				pthread_mutex_lock(&p->lock);
				snprintf(p->msg, sizeof(p->msg), "%s", lp_errmsg());
				pthread_mutex_unlock(&p->lock);
			}
			break;
		}
	}
	return NULL;
}

int lp_parallel_for(size_t n, unsigned nthreads, int (*fn)(size_t i, void *ctx), void *ctx)
{
	struct pfor p = { .n = n, .fn = fn, .ctx = ctx };
	pthread_t th[64];
	unsigned started = 0;

	if (nthreads == 0)
		nthreads = lp_ncpus();
	if (nthreads > 64)
		nthreads = 64;
	if (nthreads > n)
		nthreads = n ? (unsigned)n : 1;
	atomic_init(&p.next, 0);
	atomic_init(&p.err, 0);
	pthread_mutex_init(&p.lock, NULL);
	for (unsigned i = 1; i < nthreads; i++)
		if (pthread_create(&th[started], NULL, pfor_worker, &p) == 0)
			started++;
	/* The caller's thread works too, so nthreads == 1 spawns nothing. */
	pfor_worker(&p);
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&p.lock);
	if (atomic_load(&p.err)) {
		lp_errmsg_set(p.msg);
		return atomic_load(&p.err);
	}
	return 0;
}

struct classify_ctx {
	struct lp_entries *l;
	bool digest, binfo;
};

static int classify_one(size_t i, void *ctx)
{
	struct classify_ctx *c = ctx;
	struct lp_entry *e = &c->l->v[i];
	uint8_t head[4096];
	size_t headn = 0;
	struct lp_sha256 sha;
	uint8_t *buf;
	int fd, r = 0;

	if (e->kind != LP_FILE || !e->src || (e->flags & LP_F_SNIFFED))
		return 0;
	fd = open(e->src, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return lp_fail(-errno, e->src, "cannot read file: %s", strerror(errno));
	/* Without a digest only the head matters: do not pull the file into memory. */
	size_t chunk = c->digest ? 1u << 20 : sizeof(head);

	buf = malloc(chunk);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	lp_sha256_init(&sha);
	for (;;) {
		ssize_t got = read(fd, buf, chunk);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = lp_fail(-errno, e->src, "cannot read file: %s", strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		if (headn < sizeof(head)) {
			size_t take = sizeof(head) - headn < (size_t)got ? sizeof(head) - headn : (size_t)got;

			memcpy(head + headn, buf, take);
			headn += take;
		}
		if (!c->digest)
			break;
		lp_sha256_update(&sha, buf, (size_t)got);
	}
	if (c->digest) {
		lp_sha256_final(&sha, e->digest);
		e->flags |= LP_F_HAS_DIGEST;
	}
	sniff_flags(head, headn, e);
	if (c->binfo && e->binfmt != LP_BIN_NONE && !e->bin)
		(void)lp_binfo_read_fd(fd, &e->bin);
	finish_mode(e);
out:
	free(buf);
	close(fd);
	return r;
}

int lp_entries_classify(struct lp_entries *l, bool want_digest, bool want_binfo, unsigned nthreads)
{
	struct classify_ctx c = { .l = l, .digest = want_digest, .binfo = want_binfo };

	return lp_parallel_for(l->n, nthreads, classify_one, &c);
}

/* --- duplicate candidates ------------------------------------------------- */

#define HEAD_BYTES 4096u

struct cand {
	struct lp_entry *e;
	uint64_t head;		/* first 8 bytes of SHA-256(first 4 KiB) */
};

static int cmp_cand_size(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->e->size != y->e->size)
		return x->e->size < y->e->size ? -1 : 1;
	return 0;
}

static int cmp_cand_head(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->e->size != y->e->size)
		return x->e->size < y->e->size ? -1 : 1;
	if (x->head != y->head)
		return x->head < y->head ? -1 : 1;
	return 0;
}

static int head_one(size_t i, void *ctx)
{
	struct cand *c = &((struct cand *)ctx)[i];
	uint8_t buf[HEAD_BYTES], d[32];
	int fd = open(c->e->src, O_RDONLY | O_CLOEXEC);
	ssize_t got;

	if (fd < 0)
		return lp_fail(-errno, c->e->src, "cannot read file: %s", strerror(errno));
	do
		got = pread(fd, buf, sizeof(buf), 0);
	while (got < 0 && errno == EINTR);
	close(fd);
	if (got < 0)
		return lp_fail(-errno, c->e->src, "cannot read file: %s", strerror(errno));
	lp_sha256(buf, (size_t)got, d);
	memcpy(&c->head, d, sizeof(c->head));
	return 0;
}

static int full_one(size_t i, void *ctx)
{
	struct lp_entry *e = ((struct cand *)ctx)[i].e;
	int r = lp_sha256_file(e->src, e->digest);

	if (r < 0)
		return lp_fail(r, e->src, "cannot hash: %s", lp_strerror(r));
	e->flags |= LP_F_HAS_DIGEST;
	return 0;
}

int lp_entries_digest_candidates(struct lp_entries *l, unsigned nthreads)
{
	struct cand *all = calloc(l->n + 1, sizeof(*all)), *heads, *full;
	size_t n = 0, nh = 0, nf = 0;
	int r;

	heads = calloc(l->n + 1, sizeof(*heads));
	full = calloc(l->n + 1, sizeof(*full));
	if (!all || !heads || !full) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < l->n; i++) {
		struct lp_entry *e = &l->v[i];

		if (e->kind == LP_FILE && e->size > 0 && !(e->flags & (LP_F_REMOVED | LP_F_DUPLICATE)) &&
		    (e->src || (e->flags & LP_F_HAS_DIGEST)))
			all[n++].e = e;
	}
	qsort(all, n, sizeof(*all), cmp_cand_size);
	for (size_t g = 0; g < n;) {
		size_t end = g + 1;
		bool blind = false;

		while (end < n && all[end].e->size == all[g].e->size)
			end++;
		for (size_t k = g; k < end; k++)
			blind |= !all[k].e->src;
		for (size_t k = g; end - g > 1 && k < end; k++) {
			if (!all[k].e->src)
				continue;
			/* A head at or past the end is the whole file: hash it in full right away. */
			if (blind || all[k].e->size <= HEAD_BYTES) {
				if (!(all[k].e->flags & LP_F_HAS_DIGEST))
					full[nf++] = all[k];
			} else {
				heads[nh++] = all[k];
			}
		}
		g = end;
	}
	r = lp_parallel_for(nh, nthreads, head_one, heads);
	if (r < 0)
		goto out;
	qsort(heads, nh, sizeof(*heads), cmp_cand_head);
	for (size_t g = 0; g < nh;) {
		size_t end = g + 1;

		while (end < nh && !cmp_cand_head(&heads[g], &heads[end]))
			end++;
		for (size_t k = g; end - g > 1 && k < end; k++)
			if (!(heads[k].e->flags & LP_F_HAS_DIGEST))
				full[nf++] = heads[k];
		g = end;
	}
	r = lp_parallel_for(nf, nthreads, full_one, full);
out:
	free(all);
	free(heads);
	free(full);
	return r;
}
