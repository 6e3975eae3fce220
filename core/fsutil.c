/* SPDX-License-Identifier: MIT */
#include "core/fsutil.h"
#include "core/err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A fixed table: cleanup runs on the way out and must not allocate. */
#define LP_CLEANUP_MAX 64
static struct {
	char path[4096];
	bool is_dir;
	bool used;
} cleanup_tab[LP_CLEANUP_MAX];
/*
 * Recursive: code that creates a file under lp_cleanup_lock() may call
 * lp_cleanup_register() (or a helper that does) without deadlocking itself.
 */
static pthread_mutex_t cleanup_lock;
static pthread_once_t cleanup_once = PTHREAD_ONCE_INIT;

static void cleanup_init(void)
{
	pthread_mutexattr_t a;

	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&cleanup_lock, &a);
	pthread_mutexattr_destroy(&a);
}

static void register_locked(const char *path, bool is_dir)
{
	for (int i = 0; i < LP_CLEANUP_MAX; i++) {
		if (!cleanup_tab[i].used && strlen(path) < sizeof(cleanup_tab[i].path)) {
			strcpy(cleanup_tab[i].path, path);
			cleanup_tab[i].is_dir = is_dir;
			cleanup_tab[i].used = true;
			break;
		}
	}
}

void lp_cleanup_lock(void)
{
	pthread_once(&cleanup_once, cleanup_init);
	pthread_mutex_lock(&cleanup_lock);
}

void lp_cleanup_unlock(void)
{
	pthread_mutex_unlock(&cleanup_lock);
}

static char *sibling_template(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
	const char *name = slash ? slash + 1 : path;
	size_t len = dirlen + 1 + strlen(name) + 8 + 1;
	char *t = malloc(len);

	if (!t)
		return NULL;
	snprintf(t, len, "%.*s.%s.XXXXXX", (int)dirlen, path, name);
	return t;
}

bool lp_output_is_temp_name(const char *tempname, const char *name)
{
	size_t n = strlen(name);

	/* mkstemp's six characters are letters and digits. */
	if (tempname[0] != '.' || strncmp(tempname + 1, name, n) != 0 || tempname[n + 1] != '.' ||
	    strlen(tempname + n + 2) != 6)
		return false;
	for (const char *p = tempname + n + 2; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
			return false;
	return true;
}

int lp_output_check_file(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : lp_fail(-errno, path, "cannot check the output path: %s", strerror(errno));
	if (S_ISREG(st.st_mode))
		return 0;
	if (S_ISDIR(st.st_mode))
		return lp_fail(-EEXIST, path, "output is a directory; give a file path (an existing file there "
			       "is replaced, a directory never is)");
	if (S_ISLNK(st.st_mode))
		return lp_fail(-EEXIST, path, "output is a symbolic link; refusing to replace it: remove it or "
			       "give another path");
	return lp_fail(-EEXIST, path, "output exists and is not a regular file; refusing to replace it: "
		       "remove it or give another path");
}

int lp_outfile_open(struct lp_outfile *o, const char *path)
{
	int r;

	memset(o, 0, sizeof(*o));
	o->fd = -1;
	r = lp_output_check_file(path);
	if (r < 0)
		return r;
	o->path = strdup(path);
	o->tmp = sibling_template(path);
	if (!o->path || !o->tmp) {
		r = -ENOMEM;
		goto err;
	}
	/* Create and register under the cleanup lock, so an interrupt never misses it. */
	lp_cleanup_lock();
	o->fd = mkostemp(o->tmp, O_CLOEXEC);
	if (o->fd >= 0)
		register_locked(o->tmp, false);
	lp_cleanup_unlock();
	if (o->fd < 0) {
		r = lp_fail(-errno, path, "cannot create output: %s", strerror(errno));
		goto err;
	}
	/* Artifacts are for others to read; do not inherit mkstemp's 0600. */
	(void)fchmod(o->fd, 0644);
	return 0;
err:
	free(o->path);
	free(o->tmp);
	memset(o, 0, sizeof(*o));
	o->fd = -1;
	return r;
}

int lp_outfile_commit(struct lp_outfile *o)
{
	int r = 0;

	if (fsync(o->fd) < 0 && errno != EINVAL)
		r = lp_fail(-errno, o->path, "cannot flush output: %s", strerror(errno));
	if (close(o->fd) < 0 && r == 0)
		r = lp_fail(-errno, o->path, "cannot close output: %s", strerror(errno));
	o->fd = -1;
	if (r == 0 && rename(o->tmp, o->path) < 0)
		r = lp_fail(-errno, o->path, "cannot move output into place: %s", strerror(errno));
	if (r < 0) {
		unlink(o->tmp);
	}
	lp_cleanup_unregister(o->tmp);
	free(o->tmp);
	free(o->path);
	o->tmp = o->path = NULL;
	return r;
}

void lp_outfile_abort(struct lp_outfile *o)
{
	if (o->fd >= 0)
		close(o->fd);
	o->fd = -1;
	if (o->tmp) {
		unlink(o->tmp);
		lp_cleanup_unregister(o->tmp);
	}
	free(o->tmp);
	free(o->path);
	o->tmp = o->path = NULL;
}

int lp_outdir_open(struct lp_outdir *o, const char *path)
{
	char *clean;
	size_t len;

	memset(o, 0, sizeof(*o));
	clean = strdup(path);
	if (!clean)
		return -ENOMEM;
	len = strlen(clean);
	while (len > 1 && clean[len - 1] == '/')
		clean[--len] = '\0';
	o->path = clean;
	o->tmp = sibling_template(clean);
	if (!o->tmp) {
		free(clean);
		return -ENOMEM;
	}
	lp_cleanup_lock();
	if (!mkdtemp(o->tmp)) {
		int r = lp_fail(-errno, path, "cannot create output directory: %s", strerror(errno));

		lp_cleanup_unlock();
		free(o->tmp);
		free(o->path);
		memset(o, 0, sizeof(*o));
		return r;
	}
	register_locked(o->tmp, true);
	lp_cleanup_unlock();
	(void)chmod(o->tmp, 0755);
	return 0;
}

int lp_outdir_commit(struct lp_outdir *o)
{
	int r = 0;

	/*
	 * rename(2) moves the directory into place when path is absent and
	 * replaces path only if it is an empty directory; whatever else is
	 * there (it may have appeared since the caller looked) stays.
	 */
	if (rename(o->tmp, o->path) < 0) {
		if (errno == ENOTEMPTY || errno == EEXIST || errno == ENOTDIR || errno == EISDIR)
			r = lp_fail(-EEXIST, o->path, "output appeared while the image was written and is not an "
				    "empty directory; nothing was changed there (give an empty or new directory)");
		else
			r = lp_fail(-errno, o->path, "cannot move output into place: %s", strerror(errno));
		lp_rm_rf(o->tmp);
	}
	lp_cleanup_unregister(o->tmp);
	free(o->tmp);
	free(o->path);
	o->tmp = o->path = NULL;
	return r;
}

void lp_outdir_abort(struct lp_outdir *o)
{
	if (o->tmp) {
		lp_rm_rf(o->tmp);
		lp_cleanup_unregister(o->tmp);
	}
	free(o->tmp);
	free(o->path);
	o->tmp = o->path = NULL;
}

int lp_tmpdir_create(const char *tag, char **ret)
{
	const char *base = getenv("TMPDIR");
	size_t len;
	char *t;

	if (!base || !*base)
		base = "/tmp";
	len = strlen(base) + strlen(tag) + 32;
	t = malloc(len);
	if (!t)
		return -ENOMEM;
	snprintf(t, len, "%s/lambdapack-%s.XXXXXX", base, tag);
	lp_cleanup_lock();
	if (!mkdtemp(t)) {
		int r = lp_fail(-errno, t, "cannot create temporary directory: %s", strerror(errno));

		lp_cleanup_unlock();
		free(t);
		return r;
	}
	register_locked(t, true);
	lp_cleanup_unlock();
	*ret = t;
	return 0;
}

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	if (flag == FTW_DP)
		rmdir(p);
	else
		unlink(p);
	return 0;
}

int lp_rm_rf(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) < 0 ? -errno : 0;
	/* Make read-only subdirectories removable (tests create such trees). */
	if (nftw(path, rm_cb, 32, FTW_DEPTH | FTW_PHYS) < 0)
		return -errno;
	return 0;
}

int lp_mkdir_p(const char *path, mode_t mode)
{
	char *p = strdup(path);
	int r = 0;

	if (!p)
		return -ENOMEM;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST) {
			r = -errno;
			goto out;
		}
		*s = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		r = -errno;
out:
	free(p);
	return r;
}

int lp_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (w == 0)
			return -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int lp_pread_all(int fd, void *buf, size_t n, off_t off)
{
	char *p = buf;

	while (n) {
		ssize_t got = pread(fd, p, n, off);

		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (got == 0)
			return -EIO;
		p += got;
		n -= (size_t)got;
		off += got;
	}
	return 0;
}

int lp_copy_file(const char *from, const char *to)
{
	char buf[1 << 16];
	int in, out, r = 0;

	in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return lp_fail(-errno, from, "cannot open: %s", strerror(errno));
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0) {
		r = lp_fail(-errno, to, "cannot create: %s", strerror(errno));
		close(in);
		return r;
	}
	for (;;) {
		ssize_t got = read(in, buf, sizeof(buf));

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = lp_fail(-errno, from, "read failed: %s", strerror(errno));
			break;
		}
		if (got == 0)
			break;
		r = lp_write_all(out, buf, (size_t)got);
		if (r < 0) {
			r = lp_fail(r, to, "write failed: %s", strerror(-r));
			break;
		}
	}
	close(in);
	if (close(out) < 0 && r == 0)
		r = -errno;
	return r;
}

int lp_read_file(const char *path, size_t max, char **ret, size_t *ret_len)
{
	struct stat st;
	char *buf;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return lp_fail(-errno, path, "cannot open: %s", strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return lp_fail(-EINVAL, path, "not a regular file");
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return lp_fail(-EFBIG, path, "too large (%lld bytes)", (long long)st.st_size);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	r = lp_pread_all(fd, buf, (size_t)st.st_size, 0);
	close(fd);
	if (r < 0) {
		free(buf);
		return lp_fail(r, path, "read failed: %s", strerror(-r));
	}
	buf[st.st_size] = '\0';
	*ret = buf;
	if (ret_len)
		*ret_len = (size_t)st.st_size;
	return 0;
}

void lp_cleanup_register(const char *path, bool is_dir)
{
	lp_cleanup_lock();
	register_locked(path, is_dir);
	lp_cleanup_unlock();
}

void lp_cleanup_unregister(const char *path)
{
	lp_cleanup_lock();
	for (int i = 0; i < LP_CLEANUP_MAX; i++)
		if (cleanup_tab[i].used && strcmp(cleanup_tab[i].path, path) == 0)
			cleanup_tab[i].used = false;
	lp_cleanup_unlock();
}

void lp_cleanup_run(void)
{
	/*
	 * Called by the front end's signal thread on the way out. The lock is
	 * kept: the process exits next, and no thread may create more.
	 */
	lp_cleanup_lock();
	for (int i = 0; i < LP_CLEANUP_MAX; i++) {
		if (!cleanup_tab[i].used)
			continue;
		if (cleanup_tab[i].is_dir)
			lp_rm_rf(cleanup_tab[i].path);
		else
			unlink(cleanup_tab[i].path);
		cleanup_tab[i].used = false;
	}
}

static atomic_int cancel_sig;

void lp_cancel(int sig)
{
	atomic_store(&cancel_sig, sig ? sig : 2);
}

bool lp_cancelled(void)
{
	return atomic_load_explicit(&cancel_sig, memory_order_relaxed) != 0;
}

int lp_cancel_signal(void)
{
	return atomic_load(&cancel_sig);
}

int lp_check_cancel(const char *path)
{
	if (!lp_cancelled())
		return 0;
	return lp_fail(-EINTR, path, "interrupted");
}
