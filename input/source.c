/* SPDX-License-Identifier: MIT */
#include "input/internal.h"
#include "core/err.h"
#include "core/fsutil.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
		const char *pre = eq + 1;
		size_t plen = strlen(pre);

		ret->path = strndup(arg, (size_t)(eq - arg));
		/* "=", "=/", "=.", "=./", "=.//.": the root, as a directory. */
		ret->prefix_dir = plen == 0 || pre[plen - 1] == '/' || strspn(pre, "./") == plen;
		if (strspn(pre, "./") == plen && !strstr(pre, "..")) {
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
		ret->prefix_dir = true;
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

static bool name_ends(const char *name, const char *suf)
{
	size_t a = strlen(name), b = strlen(suf);

	return a >= b && strcasecmp(name + a - b, suf) == 0;
}

bool lp_source_is_archive(const char *path)
{
	static const char *const ext[] = {
		".zip", ".whl", ".jar", ".war", ".egg", ".tar", ".tgz", ".tbz", ".tbz2", ".txz", ".tzst",
		".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst", ".tar.lz4", ".tar.lzma", NULL,
	};
	unsigned char h[512];
	ssize_t n;
	int fd;

	for (const char *const *x = ext; *x; x++)
		if (name_ends(path, *x))
			return true;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;	/* let the archive reader name the error */
	n = pread(fd, h, sizeof(h), 0);
	close(fd);
	if (n < 6)
		return false;
	return !memcmp(h, "PK\3\4", 4) || !memcmp(h, "PK\5\6", 4) || !memcmp(h, "PK\7\x08", 4) ||
	       !memcmp(h, "\x1f\x8b", 2) || !memcmp(h, "BZh", 3) || !memcmp(h, "\xfd" "7zXZ\0", 6) ||
	       !memcmp(h, "\x28\xb5\x2f\xfd", 4) || !memcmp(h, "\x04\x22\x4d\x18", 4) ||
	       (n >= 262 && !memcmp(h + 257, "ustar", 5));
}

/* ---- ignore rules ----------------------------------------------------- */

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

void rules_free(struct rules *rs)
{
	free(rs->v);
	lp_strv_free(&rs->store);
	memset(rs, 0, sizeof(*rs));
}

/* Last matching rule wins, as in gitignore. */
bool rules_excluded(const struct rules *rs, const char *rel, const char *art, bool is_dir)
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

int rules_build(struct rules *rs, const struct lp_input_opts *o, const char *dir)
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

/* ---- this run's own outputs ------------------------------------------ */

int lp_input_skip_add(struct lp_input_opts *o, const char *path, const char *what)
{
	struct lp_input_skip *v, *k;
	struct stat st;
	char *clean, *slash;
	int r = -ENOMEM;

	v = realloc(o->skip, (o->n_skip + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	o->skip = v;
	k = &v[o->n_skip];
	memset(k, 0, sizeof(*k));
	k->what = what;
	clean = strdup(path);
	k->path = strdup(path);
	if (!clean || !k->path)
		goto err;
	for (size_t len = strlen(clean); len > 1 && clean[len - 1] == '/';)
		clean[--len] = '\0';
	if (lstat(clean, &st) == 0) {
		k->exists = true;
		k->dev = st.st_dev;
		k->ino = st.st_ino;
	}
	slash = strrchr(clean, '/');
	k->name = strdup(slash ? slash + 1 : clean);
	if (!k->name)
		goto err;
	if (slash)
		*(slash == clean ? slash + 1 : slash) = '\0';
	if (stat(slash ? clean : ".", &st) == 0 && S_ISDIR(st.st_mode)) {
		k->has_parent = true;
		k->pdev = st.st_dev;
		k->pino = st.st_ino;
	}
	free(clean);
	o->n_skip++;
	return 0;
err:
	free(clean);
	free(k->path);
	free(k->name);
	return r;
}

void lp_input_skip_free(struct lp_input_opts *o)
{
	for (size_t i = 0; i < o->n_skip; i++) {
		free(o->skip[i].path);
		free(o->skip[i].name);
		lp_strv_free(&o->skip[i].seen);
	}
	free(o->skip);
	o->skip = NULL;
	o->n_skip = 0;
}

bool lp_input_skipped(const struct lp_input_opts *o, dev_t dev, ino_t ino, const char *name,
		      const struct stat *st, const char *fs)
{
	for (size_t i = 0; i < o->n_skip; i++) {
		struct lp_input_skip *k = &o->skip[i];

		if (!(k->exists && st->st_dev == k->dev && st->st_ino == k->ino) &&
		    !(k->has_parent && dev == k->pdev && ino == k->pino &&
		      (strcmp(name, k->name) == 0 || lp_output_is_temp_name(name, k->name))))
			continue;
		if (k->hits++ < LP_INPUT_SKIP_SEEN)
			(void)lp_strv_push(&k->seen, fs);	/* only for -v; a failure loses a line */
		return true;
	}
	return false;
}

/*
 * One regular file (a Go/Rust bootstrap, a bundled handler): at the root or
 * under a "DIR/" prefix by its own name, or renamed by "FILE=NAME".
 */
static int load_file(const struct lp_source *src, const struct stat *st, struct lp_entries *out)
{
	const char *base = strrchr(src->path, '/');
	struct lp_entry *e;
	char *ap;

	base = base ? base + 1 : src->path;
	if (!src->prefix_dir)
		ap = strdup(src->prefix);
	else
		ap = lp_path_join(src->prefix, base);
	if (!ap)
		return -ENOMEM;
	if (!*ap || !strcmp(ap, ".") || !strcmp(ap, "..")) {
		free(ap);
		return lp_fail(-LP_E_UNSAFEPATH, src->path, "a file source needs a name: give FILE=NAME");
	}
	if (access(src->path, R_OK) < 0) {
		int err = errno;

		free(ap);
		return lp_fail(-err, src->path, "cannot read: %s", strerror(err));
	}
	e = lp_entries_push(out, ap, LP_FILE);
	free(ap);
	if (!e || !(e->src = strdup(src->path)))
		return -ENOMEM;
	e->size = e->orig_size = (uint64_t)st->st_size;
	e->src_mode = st->st_mode;
	e->origin = src->index;
	if (st->st_mode & 0111)
		e->flags |= LP_F_EXEC;
	e->mode = (e->flags & LP_F_EXEC) ? 0755 : 0644;
	return 0;
}

int lp_input_load(const struct lp_source *src, const struct lp_input_opts *o, struct lp_entries *out)
{
	struct stat st;

	if (stat(src->path, &st) < 0)
		return lp_fail(-errno, src->path, "cannot read source: %s", strerror(errno));
	for (size_t i = 0; i < o->n_skip; i++)
		if (o->skip[i].exists && o->skip[i].dev == st.st_dev && o->skip[i].ino == st.st_ino)
			return lp_fail(-EINVAL, src->path, "this source is %s of this run%s%s%s; "
				       "write the output somewhere else", o->skip[i].what,
				       /* Name the output only when the source spelled it another way. */
				       strcmp(o->skip[i].path, src->path) ? " (" : "",
				       strcmp(o->skip[i].path, src->path) ? o->skip[i].path : "",
				       strcmp(o->skip[i].path, src->path) ? ")" : "");
	if (S_ISDIR(st.st_mode))
		return lp_input_load_dir(src, o, out);
	if (!S_ISREG(st.st_mode))
		return lp_fail(-LP_E_BADTYPE, src->path, "source is neither a directory nor a regular file");
	if (lp_source_is_archive(src->path))
		return lp_input_load_archive(src, o, out);
	return load_file(src, &st, out);
}

int lp_input_load_all(const struct lp_source *srcs, size_t n, const struct lp_input_opts *o,
		      bool overwrite, struct lp_entries *out)
{
	char **names = calloc(n ? n : 1, sizeof(*names));
	int r = 0;

	if (!names)
		return -ENOMEM;
	/* How the user gave each source, for collision messages: "deps/", "build.zip". */
	for (size_t i = 0; i < n && r == 0; i++) {
		size_t len = strlen(srcs[i].path);
		bool dir = lp_source_is_dir(&srcs[i]) && (len == 0 || srcs[i].path[len - 1] != '/');

		if (asprintf(&names[i], "%s%s", srcs[i].path, dir ? "/" : "") < 0) {
			names[i] = NULL;
			r = -ENOMEM;
		}
	}
	/*
	 * With o->problems every source is read even after one has problems, or
	 * cannot be read at all (missing, corrupt): one run names them all.
	 */
	for (size_t i = 0; i < n && r == 0; i++) {
		r = lp_input_load(&srcs[i], o, out);
		if (r < 0 && r != -ENOMEM && r != -EINTR && o->problems &&
		    lp_report_count(o->problems, LP_SEV_ERROR) < LP_PROBLEMS_CAP) {
			char msg[1024];

			snprintf(msg, sizeof(msg), "%s", *lp_errmsg() ? lp_errmsg() : lp_strerror(r));
			r = lp_report_problem(o->problems, LP_PROBLEMS_CAP, r, "bad-source", NULL, "%s", msg);
		}
	}
	if (r == 0) {
		lp_entries_sort(out);
		r = lp_entries_unique_named(out, overwrite, (const char *const *)names, n, o->problems);
	}
	if (r == 0)
		r = lp_entries_add_parents(out);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}
