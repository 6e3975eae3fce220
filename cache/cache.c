/* SPDX-License-Identifier: MIT */
/*
 * The build cache (see cache/cache.h for the layout and the rules).
 */
#include "cache/cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "core/fsutil.h"
#include "core/report.h"
#include "core/util.h"

#define MAGIC		"LPCACHE\x01"
#define HDR_LEN		144u
#define IDX_MAGIC	"LPINDEX\x02"	/* v2: + the caller's facts; a v1 index is ignored */
#define IDX_ENT_LEN	(5 * 8 + 32 + 4 + 4)
#define TMP_PREFIX	".tmp."
#define TMP_STALE_S	3600	/* a temporary older than this was left by a dead run */
#define LRU_GRAIN_S	3600	/* a hit refreshes an entry's mtime once per this */

struct idx_ent {
	char *path;
	uint64_t dev, ino, size;
	int64_t mtime, ctime;	/* ns */
	uint8_t d[32];
	uint32_t facts;		/* the caller's, opaque here */
	bool used;		/* looked up and matched this run: kept in the new index */
};

struct lp_cache {
	char *root;
	char *dir[3];		/* zip/v1, layers/v2, index/v1 */
	char *index_path;	/* NULL: no index this run */
	char *cwd;
	bool enabled;
	bool max_given;
	char warning[1024];
	uint64_t max_bytes;
	int64_t taken_at;	/* this run's stats are trusted below this (ns) */
	int64_t old_taken_at;	/* the loaded index's */

	struct idx_ent *old;	/* the loaded index */
	size_t n_old;
	size_t *slot;		/* open addressing over old: index + 1, 0 = empty */
	size_t nslot;

	struct idx_ent *fresh;	/* recorded this run */
	size_t n_fresh, cap_fresh;

	char **dropped;		/* report lines */
	size_t n_dropped;
	bool stored_any;
	bool closed;
	/*
	 * The zip dir's file system keeps access times (relatime or strict):
	 * reading an entry marks it used, so a small hit needs neither an
	 * fstat nor a futimens for the LRU (see lp_cache_get_small).
	 */
	bool atime_lru;
	int zipfd;		/* zip/v1, for opens relative to it (-1: none) */
	struct lp_cache_stats st;
	pthread_mutex_t mu;
};

struct lp_cache_wr {
	struct lp_cache *c;
	enum lp_cache_kind kind;
	int fd;
	char *tmp;
	uint64_t len;
	uint32_t crc;
	bool failed;
};

/* ---- small helpers ---- */

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static int pwrite_all(int fd, const void *p, size_t n, off_t at)
{
	const uint8_t *b = p;

	while (n) {
		ssize_t k = pwrite(fd, b, n, at);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		b += k;
		n -= (size_t)k;
		at += k;
	}
	return 0;
}

static int64_t ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec;
}

static char *path_join(const char *a, const char *b)
{
	char *s;

	if (asprintf(&s, "%s/%s", a, b) < 0)
		return NULL;
	return s;
}

/* Errors that mean the cache dir cannot take writes at all. */
static bool fatal_errno(int e)
{
	return e == ENOSPC || e == EDQUOT || e == EROFS || e == EACCES || e == EPERM || e == ENOTDIR;
}

/* Switch the cache off, remembering the first reason (one warning per run). */
static void disable(struct lp_cache *c, const char *path, int err)
{
	pthread_mutex_lock(&c->mu);
	if (c->enabled) {
		c->enabled = false;
		snprintf(c->warning, sizeof(c->warning), "cache directory %s is not usable (%s: %s); going on without the cache",
			 c->root, path, strerror(err));
	}
	pthread_mutex_unlock(&c->mu);
}

/* Counters are atomic: two workers counting hits must not queue on mu. */
static void bump(struct lp_cache *c, uint64_t *field, uint64_t by)
{
	(void)c;
	__atomic_fetch_add(field, by, __ATOMIC_RELAXED);
}

int lp_cache_default_root(char **ret)
{
	const char *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
	int n;

	/* The XDG spec: a relative XDG_CACHE_HOME is invalid and ignored. */
	if (x && x[0] == '/')
		n = asprintf(ret, "%s/lambdapack", x);
	else if (h && h[0])
		n = asprintf(ret, "%s/.cache/lambdapack", h);
	else
		return -ENOENT;
	return n < 0 ? -ENOMEM : 0;
}

/* ---- keys ---- */

void lp_cache_key_begin(struct lp_cache_keyer *k, const char *domain)
{
	lp_sha256_init(&k->sha);
	lp_cache_key_add_str(k, "lambdapack-cache-key/1");
	lp_cache_key_add_str(k, LP_VERSION);
	lp_cache_key_add_str(k, domain);
}

void lp_cache_key_add(struct lp_cache_keyer *k, const void *p, size_t n)
{
	lp_sha256_update(&k->sha, p, n);
}

void lp_cache_key_add_str(struct lp_cache_keyer *k, const char *s)
{
	lp_sha256_update(&k->sha, s ? s : "", (s ? strlen(s) : 0) + 1);
}

void lp_cache_key_add_u64(struct lp_cache_keyer *k, uint64_t v)
{
	uint8_t b[8];

	put64(b, v);
	lp_sha256_update(&k->sha, b, 8);
}

void lp_cache_key_end(struct lp_cache_keyer *k, struct lp_cache_key *ret)
{
	lp_sha256_final(&k->sha, ret->k);
}

/* ---- the stat index ---- */

static size_t idx_hash(const char *p)
{
	return (size_t)lp_fnv1a(p);
}

static int idx_build_map(struct lp_cache *c)
{
	size_t cap = 16;

	while (cap < c->n_old * 2)
		cap *= 2;
	c->slot = calloc(cap, sizeof(*c->slot));
	if (!c->slot)
		return -ENOMEM;
	c->nslot = cap;
	for (size_t i = 0; i < c->n_old; i++) {
		size_t s = idx_hash(c->old[i].path) & (cap - 1);

		while (c->slot[s]) {
			/* A later record of the same path wins. */
			if (!strcmp(c->old[c->slot[s] - 1].path, c->old[i].path))
				break;
			s = (s + 1) & (cap - 1);
		}
		c->slot[s] = i + 1;
	}
	return 0;
}

static void idx_free(struct idx_ent *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].path);
	free(v);
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void note_dropped(struct lp_cache *c, const char *name, const char *why)
{
	char *line = NULL;

	if (asprintf(&line, "cached data for %s was unusable (%s); dropped and recomputed", name, why) < 0)
		return;
	pthread_mutex_lock(&c->mu);
	{
		char **v = realloc(c->dropped, (c->n_dropped + 1) * sizeof(*v));

		if (v) {
			c->dropped = v;
			v[c->n_dropped++] = line;
			line = NULL;
		}
	}
	bump(c, &c->st.dropped, 1);
	pthread_mutex_unlock(&c->mu);
	free(line);
}

/* A damaged index is dropped like any entry: the run hashes everything. */
static void idx_load(struct lp_cache *c)
{
	char *buf = NULL;
	size_t len = 0, at, n;
	const uint8_t *p;
	int r = lp_read_file(c->index_path, (size_t)1 << 30, &buf, &len);

	if (r == -ENOENT)
		return;
	p = (const uint8_t *)buf;
	if (r < 0 || len < 28 || memcmp(p, IDX_MAGIC, 8) ||
	    rd32(p + len - 4) != libdeflate_crc32(0, p, len - 4)) {
		note_dropped(c, "the stat index", r < 0 ? strerror(-r) : "bad header or checksum");
		unlink(c->index_path);
		free(buf);
		return;
	}
	c->old_taken_at = (int64_t)rd64(p + 8);
	n = (size_t)rd64(p + 16);
	at = 24;
	c->old = calloc(n ? n : 1, sizeof(*c->old));
	if (!c->old)
		goto bad;
	for (size_t i = 0; i < n; i++) {
		struct idx_ent *e = &c->old[i];
		uint32_t pl;

		if (len - 4 - at < IDX_ENT_LEN)
			goto bad;
		e->dev = rd64(p + at);
		e->ino = rd64(p + at + 8);
		e->size = rd64(p + at + 16);
		e->mtime = (int64_t)rd64(p + at + 24);
		e->ctime = (int64_t)rd64(p + at + 32);
		memcpy(e->d, p + at + 40, 32);
		e->facts = rd32(p + at + 72);
		pl = rd32(p + at + 76);
		at += IDX_ENT_LEN;
		if (len - 4 - at < pl)
			goto bad;
		e->path = strndup((const char *)p + at, pl);
		if (!e->path)
			goto bad;
		at += pl;
		c->n_old++;
	}
	free(buf);
	if (idx_build_map(c) < 0) {
		idx_free(c->old, c->n_old);
		c->old = NULL;
		c->n_old = 0;
	}
	return;
bad:
	free(buf);
	idx_free(c->old, c->n_old);
	c->old = NULL;
	c->n_old = 0;
	note_dropped(c, "the stat index", "truncated");
	unlink(c->index_path);
}

/* Index keys are absolute, so runs from other working directories do not mix. */
static int abs_path(const struct lp_cache *c, const char *path, char *buf, size_t len)
{
	int n = path[0] == '/' ? snprintf(buf, len, "%s", path) : snprintf(buf, len, "%s/%s", c->cwd, path);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int lp_cache_index_lookup(struct lp_cache *c, const char *path, const struct stat *st, uint8_t digest[32])
{
	uint32_t facts;

	return lp_cache_index_lookup_facts(c, path, st, digest, &facts);
}

int lp_cache_index_lookup_facts(struct lp_cache *c, const char *path, const struct stat *st, uint8_t digest[32],
				uint32_t *facts)
{
	char abs[4096];
	size_t s;
	struct idx_ent *e = NULL;

	if (!c || !c->index_path || !c->slot || abs_path(c, path, abs, sizeof(abs)) < 0)
		goto miss;
	s = idx_hash(abs) & (c->nslot - 1);
	while (c->slot[s]) {
		if (!strcmp(c->old[c->slot[s] - 1].path, abs)) {
			e = &c->old[c->slot[s] - 1];
			break;
		}
		s = (s + 1) & (c->nslot - 1);
	}
	if (!e || e->size != (uint64_t)st->st_size || e->mtime != ts_ns(&st->st_mtim) ||
	    e->ctime != ts_ns(&st->st_ctim) || e->ino != (uint64_t)st->st_ino || e->dev != (uint64_t)st->st_dev)
		goto miss;
	/* Racy: changed within the same timestamp as the stat we recorded. */
	if (e->mtime >= c->old_taken_at || e->ctime >= c->old_taken_at)
		goto miss;
	memcpy(digest, e->d, 32);
	*facts = e->facts;
	pthread_mutex_lock(&c->mu);
	e->used = true;
	pthread_mutex_unlock(&c->mu);
	bump(c, &c->st.index_hits, 1);
	return 1;
miss:
	if (c)
		bump(c, &c->st.index_misses, 1);
	return 0;
}

void lp_cache_index_record(struct lp_cache *c, const char *path, const struct stat *st, const uint8_t digest[32])
{
	lp_cache_index_record_facts(c, path, st, digest, 0);
}

void lp_cache_index_record_facts(struct lp_cache *c, const char *path, const struct stat *st,
				 const uint8_t digest[32], uint32_t facts)
{
	char abs[4096];
	struct idx_ent e = { 0 };

	if (!c || !c->index_path || !S_ISREG(st->st_mode) || abs_path(c, path, abs, sizeof(abs)) < 0)
		return;
	e.path = strdup(abs);
	if (!e.path)
		return;
	e.dev = (uint64_t)st->st_dev;
	e.ino = (uint64_t)st->st_ino;
	e.size = (uint64_t)st->st_size;
	e.mtime = ts_ns(&st->st_mtim);
	e.ctime = ts_ns(&st->st_ctim);
	memcpy(e.d, digest, 32);
	e.facts = facts;
	pthread_mutex_lock(&c->mu);
	if (c->n_fresh == c->cap_fresh) {
		size_t nc = c->cap_fresh ? c->cap_fresh * 2 : 1024;
		struct idx_ent *v = realloc(c->fresh, nc * sizeof(*v));

		if (!v) {
			pthread_mutex_unlock(&c->mu);
			free(e.path);
			return;
		}
		c->fresh = v;
		c->cap_fresh = nc;
	}
	c->fresh[c->n_fresh++] = e;
	pthread_mutex_unlock(&c->mu);
}

static int put_ent(FILE *f, const struct idx_ent *e, uint32_t *crc)
{
	uint8_t b[IDX_ENT_LEN];
	size_t pl = strlen(e->path);

	put64(b, e->dev);
	put64(b + 8, e->ino);
	put64(b + 16, e->size);
	put64(b + 24, (uint64_t)e->mtime);
	put64(b + 32, (uint64_t)e->ctime);
	memcpy(b + 40, e->d, 32);
	put32(b + 72, e->facts);
	put32(b + 76, (uint32_t)pl);
	*crc = libdeflate_crc32(*crc, b, sizeof(b));
	*crc = libdeflate_crc32(*crc, e->path, pl);
	return fwrite(b, 1, sizeof(b), f) == sizeof(b) && fwrite(e->path, 1, pl, f) == pl ? 0 : -EIO;
}

/* The new index: what matched this run, and what was hashed this run. */
static void idx_write(struct lp_cache *c)
{
	char *tmp = NULL;
	uint8_t h[24], t[4];
	uint32_t crc;
	uint64_t n = c->n_fresh;
	FILE *f;
	int fd, r = 0;

	for (size_t i = 0; i < c->n_old; i++)
		n += c->old[i].used;
	if (asprintf(&tmp, "%s/" TMP_PREFIX "XXXXXX", c->dir[2]) < 0)
		return;
	fd = mkstemp(tmp);
	if (fd < 0) {
		if (fatal_errno(errno))
			disable(c, c->dir[2], errno);
		free(tmp);
		return;
	}
	f = fdopen(fd, "wb");
	if (!f) {
		close(fd);
		unlink(tmp);
		free(tmp);
		return;
	}
	memcpy(h, IDX_MAGIC, 8);
	put64(h + 8, (uint64_t)c->taken_at);
	put64(h + 16, n);
	crc = libdeflate_crc32(0, h, sizeof(h));
	if (fwrite(h, 1, sizeof(h), f) != sizeof(h))
		r = -EIO;
	for (size_t i = 0; r == 0 && i < c->n_old; i++)
		if (c->old[i].used)
			r = put_ent(f, &c->old[i], &crc);
	for (size_t i = 0; r == 0 && i < c->n_fresh; i++)
		r = put_ent(f, &c->fresh[i], &crc);
	put32(t, crc);
	if (r == 0 && fwrite(t, 1, 4, f) != 4)
		r = -EIO;
	if (fclose(f) != 0 || r < 0) {
		if (fatal_errno(errno))
			disable(c, c->dir[2], errno);
		unlink(tmp);
	} else if (rename(tmp, c->index_path) < 0) {
		unlink(tmp);
	}
	free(tmp);
}

/* ---- open / close ---- */

int lp_cache_open(const struct lp_cache_opts *o, struct lp_cache **ret)
{
	static const char *const sub[3] = { "zip/v1", "layers/v2", "index/v1" };
	struct lp_cache *c = calloc(1, sizeof(*c));
	struct timespec now;
	char *probe = NULL;
	int r = 0, fd;

	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->mu, NULL);
	c->zipfd = -1;
	c->max_bytes = o->max_bytes ? o->max_bytes : LP_CACHE_MAX_DEFAULT;
	c->max_given = o->max_bytes != 0;
	c->cwd = getcwd(NULL, 0);
	if (o->root)
		c->root = strdup(o->root);
	else
		r = lp_cache_default_root(&c->root);
	if (r == -ENOENT) {
		snprintf(c->warning, sizeof(c->warning),
			 "no cache directory (neither XDG_CACHE_HOME nor HOME is set); going on without the cache");
		*ret = c;
		return 0;
	}
	if (!c->root || !c->cwd)
		goto nomem;
	for (int i = 0; i < 3; i++) {
		c->dir[i] = path_join(c->root, sub[i]);
		if (!c->dir[i])
			goto nomem;
	}
	c->enabled = true;
	for (int i = 0; i < 3 && c->enabled; i++) {
		r = lp_mkdir_p(c->dir[i], 0755);
		if (r < 0)
			disable(c, c->dir[i], -r);
	}
	/* Can we write here at all? Find out now, not halfway through. */
	if (c->enabled) {
		if (asprintf(&probe, "%s/" TMP_PREFIX "XXXXXX", c->dir[2]) < 0)
			goto nomem;
		fd = mkstemp(probe);
		if (fd < 0) {
			disable(c, c->dir[2], errno);
		} else {
			close(fd);
			unlink(probe);
		}
		free(probe);
	}
	if (c->enabled) {
		struct statvfs vfs;

		c->atime_lru = statvfs(c->dir[0], &vfs) == 0 && !(vfs.f_flag & (ST_NOATIME | ST_RDONLY));
		c->zipfd = open(c->dir[0], O_PATH | O_DIRECTORY | O_CLOEXEC);
	}
	/*
	 * The file system stamps files from the coarse clock; a stat taken now
	 * is trusted for files whose mtime and ctime are older than the second
	 * before this one.
	 */
	clock_gettime(CLOCK_REALTIME_COARSE, &now);
	c->taken_at = ((int64_t)now.tv_sec - 1) * 1000000000LL;
	if (c->enabled && o->index_name) {
		struct lp_sha256 s;
		uint8_t d[32];
		char hex[65];

		lp_sha256_init(&s);
		lp_sha256_update(&s, o->index_name, strlen(o->index_name));
		lp_sha256_update(&s, c->cwd, strlen(c->cwd) + 1);
		/*
		 * And the user: a record lets the walk skip its access check
		 * (the file was read by this user with this very stat), so
		 * another user sharing the cache dir keeps an index of its own.
		 */
		{
			uint64_t ids[2] = { (uint64_t)geteuid(), (uint64_t)getegid() };

			lp_sha256_update(&s, ids, sizeof(ids));
		}
		lp_sha256_final(&s, d);
		lp_hex(d, 16, hex);
		c->index_path = path_join(c->dir[2], hex);
		if (!c->index_path)
			goto nomem;
		idx_load(c);
	}
	*ret = c;
	return 0;
nomem:
	lp_cache_free(c);
	return -ENOMEM;
}

struct ev_file {
	char *path;
	uint64_t bytes;
	int64_t used;
};

static int cmp_ev(const void *a, const void *b)
{
	const struct ev_file *x = a, *y = b;

	if (x->used != y->used)
		return x->used < y->used ? -1 : 1;
	return strcmp(x->path, y->path);
}

/* Every file under dir (two levels at most), for eviction. */
static void scan(const char *dir, int depth, struct ev_file **v, size_t *n, size_t *cap, uint64_t *total)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	time_t now = time(NULL);

	if (!d)
		return;
	while ((de = readdir(d))) {
		struct stat st;
		char *p;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		p = path_join(dir, de->d_name);
		if (!p || lstat(p, &st) < 0) {
			free(p);
			continue;
		}
		if (S_ISDIR(st.st_mode) && depth < 2) {
			scan(p, depth + 1, v, n, cap, total);
			free(p);
			continue;
		}
		/* Temporaries of a run that died; live ones are young. */
		if (!strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX))) {
			if (now - st.st_mtime > TMP_STALE_S)
				unlink(p);
			free(p);
			continue;
		}
		if (*n == *cap) {
			size_t nc = *cap ? *cap * 2 : 1024;
			struct ev_file *nv = realloc(*v, nc * sizeof(*nv));

			if (!nv) {
				free(p);
				break;
			}
			*v = nv;
			*cap = nc;
		}
		(*v)[*n].path = p;
		(*v)[*n].bytes = (uint64_t)st.st_blocks * 512;
		/* A hit touches mtime (hourly) or, read by lp_cache_get_small, atime (relatime: daily). */
		(*v)[*n].used = ts_ns(&st.st_mtim) > ts_ns(&st.st_atim) ? ts_ns(&st.st_mtim) : ts_ns(&st.st_atim);
		*total += (*v)[*n].bytes;
		(*n)++;
	}
	closedir(d);
}

/*
 * Least recently used first: a hit touches its entry's mtime. One run
 * evicts at a time (flock); another that finds the lock taken skips it,
 * the next run catches up.
 */
static void evict(struct lp_cache *c)
{
	static const char *const sub[4] = { "zip", "layers", "index", "strip-v2" };
	struct ev_file *v = NULL;
	size_t n = 0, cap = 0;
	uint64_t total = 0;
	char *lock = path_join(c->root, "index/lock");
	int lfd = lock ? open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644) : -1;

	free(lock);
	if (lfd < 0)
		return;
	if (flock(lfd, LOCK_EX | LOCK_NB) < 0) {
		close(lfd);
		return;
	}
	for (int i = 0; i < 4; i++) {
		char *d = path_join(c->root, sub[i]);

		if (d)
			scan(d, 0, &v, &n, &cap, &total);
		free(d);
	}
	if (total > c->max_bytes) {
		qsort(v, n, sizeof(*v), cmp_ev);
		for (size_t i = 0; i < n && total > c->max_bytes; i++) {
			if (strstr(v[i].path, "/index/lock"))
				continue;
			if (unlink(v[i].path) == 0) {
				total -= v[i].bytes;
				c->st.evicted++;
				c->st.evicted_bytes += v[i].bytes;
			}
		}
	}
	c->st.bytes = total;
	for (size_t i = 0; i < n; i++)
		free(v[i].path);
	free(v);
	close(lfd);	/* drops the lock */
}

void lp_cache_close(struct lp_cache *c)
{
	if (!c || c->closed)
		return;
	c->closed = true;
	if (c->enabled && c->index_path)
		idx_write(c);
	if (c->enabled && (c->stored_any || c->max_given))
		evict(c);
}

void lp_cache_free(struct lp_cache *c)
{
	if (!c)
		return;
	lp_cache_close(c);
	idx_free(c->old, c->n_old);
	idx_free(c->fresh, c->n_fresh);
	free(c->slot);
	for (size_t i = 0; i < c->n_dropped; i++)
		free(c->dropped[i]);
	free(c->dropped);
	for (int i = 0; i < 3; i++)
		free(c->dir[i]);
	free(c->index_path);
	if (c->zipfd >= 0)
		close(c->zipfd);
	free(c->root);
	free(c->cwd);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

void lp_cache_note_miss(struct lp_cache *c)
{
	if (c)
		bump(c, &c->st.misses, 1);
}

bool lp_cache_enabled(const struct lp_cache *c)
{
	return c && c->enabled;
}

const char *lp_cache_root(const struct lp_cache *c)
{
	return c ? c->root : NULL;
}

const char *lp_cache_warning(const struct lp_cache *c)
{
	return c && c->warning[0] ? c->warning : NULL;
}

int lp_cache_report(const struct lp_cache *c, struct lp_report *rep)
{
	for (size_t i = 0; c && i < c->n_dropped; i++) {
		int r = lp_report_finding(rep, LP_SEV_INFO, "cache-entry-corrupt", NULL, "%s", c->dropped[i]);

		if (r < 0)
			return r;
	}
	return 0;
}

void lp_cache_get_stats(const struct lp_cache *c, struct lp_cache_stats *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (c)
		*ret = c->st;
}

/* ---- entry files ---- */

static const char *kind_dir(const struct lp_cache *c, enum lp_cache_kind kind)
{
	return kind == LP_CACHE_LAYER || kind == LP_CACHE_BASE ? c->dir[1] : c->dir[0];
}

char *lp_cache_entry_path(const struct lp_cache *c, enum lp_cache_kind kind, const struct lp_cache_key *key)
{
	char hex[65], *p;

	if (!c || !c->dir[0])
		return NULL;
	lp_hex(key->k, 32, hex);
	if (asprintf(&p, "%s/%.2s/%s", kind_dir(c, kind), hex, hex) < 0)
		return NULL;
	return p;
}

static void hdr_build(uint8_t *h, enum lp_cache_kind kind, const struct lp_cache_key *key,
		      const struct lp_cache_meta *m, uint64_t len, uint32_t pcrc)
{
	memset(h, 0, HDR_LEN);
	memcpy(h, MAGIC, 8);
	put32(h + 8, (uint32_t)kind);
	memcpy(h + 16, key->k, 32);
	put32(h + 48, m->method);
	put32(h + 52, m->crc);
	put64(h + 56, m->usize);
	memcpy(h + 64, m->digest, 32);
	memcpy(h + 96, m->diff_id, 32);
	put64(h + 128, len);
	put32(h + 136, pcrc);
	put32(h + 140, libdeflate_crc32(0, h, 140));
}

/* Why the header is bad, or NULL. */
static const char *hdr_check(const uint8_t *h, enum lp_cache_kind kind, const struct lp_cache_key *key,
			     uint64_t file_size, struct lp_cache_meta *m, uint64_t *len, uint32_t *pcrc)
{
	if (memcmp(h, MAGIC, 8) || rd32(h + 140) != libdeflate_crc32(0, h, 140))
		return "bad header";
	if (rd32(h + 8) != (uint32_t)kind || memcmp(h + 16, key->k, 32))
		return "header of another entry";
	*len = rd64(h + 128);
	/* UINT64_MAX: size unknown, the reader checks where the file ends. */
	if (file_size != UINT64_MAX && file_size != HDR_LEN + *len)
		return file_size < HDR_LEN + *len ? "truncated" : "longer than its header says";
	m->method = rd32(h + 48);
	m->crc = rd32(h + 52);
	m->usize = rd64(h + 56);
	memcpy(m->digest, h + 64, 32);
	memcpy(m->diff_id, h + 96, 32);
	*pcrc = rd32(h + 136);
	return NULL;
}

static void drop_path(struct lp_cache *c, const char *path, const char *name, const char *why)
{
	struct stat st;

	if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
		lp_rm_rf(path);
	else
		unlink(path);
	note_dropped(c, name, why);
}

int lp_cache_rd_open(struct lp_cache *c, enum lp_cache_kind kind, const struct lp_cache_key *key,
		     const char *name, struct lp_cache_rd *rd)
{
	uint8_t h[HDR_LEN];
	struct stat st;
	const char *why = NULL;
	char *path;
	int fd;

	memset(rd, 0, sizeof(*rd));
	rd->fd = -1;
	if (!lp_cache_enabled(c))
		return 0;
	path = lp_cache_entry_path(c, kind, key);
	if (!path)
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		int e = errno;

		if (e == ENOENT)
			bump(c, &c->st.misses, 1);
		else
			drop_path(c, path, name, strerror(e));
		free(path);
		return 0;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		why = "not a regular file";
	else if ((uint64_t)st.st_size < HDR_LEN)
		why = "truncated";
	else if (lp_pread_all(fd, h, HDR_LEN, 0) < 0)
		why = "unreadable";
	else
		why = hdr_check(h, kind, key, (uint64_t)st.st_size, &rd->meta, &rd->len, &rd->payload_crc);
	if (why) {
		close(fd);
		drop_path(c, path, name, why);
		free(path);
		bump(c, &c->st.misses, 1);
		return 0;
	}
	/*
	 * Recently used, for eviction. An entry touched within the hour is
	 * left alone: rebuilding every few minutes should not rewrite
	 * thousands of inodes each time, and LRU needs no finer grain.
	 */
	if (time(NULL) - st.st_mtime > LRU_GRAIN_S)
		(void)futimens(fd, NULL);
	bump(c, &c->st.hits, 1);
	rd->fd = fd;
	rd->path = path;
	rd->c = c;
	rd->kind = kind;
	return 1;
}

/*
 * A zip entry opened through the zip dir's fd (no path walk), or -1: a
 * missing one is a miss, one that cannot be opened is dropped and reported.
 */
static int open_zip_entry(struct lp_cache *c, const struct lp_cache_key *key, const char *name)
{
	char hex[65], rel[3 + 65], *path;
	int fd;

	lp_hex(key->k, 32, hex);
	snprintf(rel, sizeof(rel), "%.2s/%s", hex, hex);
	fd = openat(c->zipfd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		int e = errno;

		if (e == ENOENT) {
			bump(c, &c->st.misses, 1);
		} else if ((path = lp_cache_entry_path(c, LP_CACHE_ZIP, key))) {
			drop_path(c, path, name, strerror(e));
			free(path);
		}
	}
	return fd;
}

int lp_cache_rd_open_fast(struct lp_cache *c, enum lp_cache_kind kind, const struct lp_cache_key *key,
			  const char *name, struct lp_cache_rd *rd)
{
	uint8_t h[HDR_LEN];
	const char *why = NULL;
	char *path;
	ssize_t k;
	int fd;

	if (!lp_cache_enabled(c) || !c->atime_lru || c->zipfd < 0 || kind != LP_CACHE_ZIP)
		return lp_cache_rd_open(c, kind, key, name, rd);
	memset(rd, 0, sizeof(*rd));
	rd->fd = -1;
	fd = open_zip_entry(c, key, name);
	if (fd < 0)
		return 0;
	do
		k = pread(fd, h, HDR_LEN, 0);
	while (k < 0 && errno == EINTR);
	if (k < 0)
		why = errno == EISDIR ? "not a regular file" : "unreadable";
	else if ((size_t)k < HDR_LEN)
		why = "truncated";
	else
		why = hdr_check(h, kind, key, UINT64_MAX, &rd->meta, &rd->len, &rd->payload_crc);
	path = lp_cache_entry_path(c, kind, key);
	if (why || !path) {
		close(fd);
		if (why && path)
			drop_path(c, path, name, why);
		free(path);
		bump(c, &c->st.misses, 1);
		return 0;
	}
	/* The read marks the entry used (atime); its end is checked by lp_cache_rd_read. */
	bump(c, &c->st.hits, 1);
	rd->fd = fd;
	rd->path = path;
	rd->c = c;
	rd->kind = kind;
	rd->unchecked = true;
	return 1;
}

long lp_cache_rd_read(struct lp_cache_rd *rd, void *buf, size_t n)
{
	size_t cap = n, want;
	unsigned char extra;
	ssize_t k;

	if (rd->off + n > rd->len)
		n = (size_t)(rd->len - rd->off);
	if (!n) {
		/* Opened without a size check (lp_cache_rd_open_fast): the file must end here. */
		if (rd->unchecked) {
			rd->unchecked = false;
			do
				k = pread(rd->fd, &extra, 1, (off_t)(HDR_LEN + rd->off));
			while (k < 0 && errno == EINTR);
			if (k != 0)
				return k < 0 ? -errno : -EIO;	/* longer than its header says */
		}
		return 0;
	}
	/* Unchecked and the rest fits with room to spare: one byte more shows the end in the same read. */
	want = rd->unchecked && n < cap ? n + 1 : n;
	do
		k = pread(rd->fd, buf, want, (off_t)(HDR_LEN + rd->off));
	while (k < 0 && errno == EINTR);
	if (k < 0)
		return -errno;
	if (k == 0)
		return -EIO;	/* shrank under us */
	if ((size_t)k > n)
		return -EIO;	/* longer than its header says */
	if (want > n && (size_t)k == n)
		rd->unchecked = false;	/* read short: that was the end */
	rd->crc = libdeflate_crc32(rd->crc, buf, (size_t)k);
	rd->off += (uint64_t)k;
	return (long)k;
}

bool lp_cache_rd_crc_ok(const struct lp_cache_rd *rd)
{
	return rd->off == rd->len && rd->crc == rd->payload_crc;
}

void lp_cache_rd_drop(struct lp_cache_rd *rd, const char *name, const char *why)
{
	if (rd->path) {
		drop_path(rd->c, rd->path, name, why);
		__atomic_fetch_sub(&rd->c->st.hits, 1, __ATOMIC_RELAXED);
		bump(rd->c, &rd->c->st.misses, 1);
	}
	lp_cache_rd_close(rd);
}

void lp_cache_rd_close(struct lp_cache_rd *rd)
{
	if (rd->fd >= 0)
		close(rd->fd);
	free(rd->path);
	rd->fd = -1;
	rd->path = NULL;
}

int lp_cache_get_mem(struct lp_cache *c, enum lp_cache_kind kind, const struct lp_cache_key *key,
		     const char *name, struct lp_cache_meta *meta, unsigned char **ret_data, uint64_t *ret_len)
{
	struct lp_cache_rd rd;
	unsigned char *buf;
	long k;

	if (lp_cache_rd_open(c, kind, key, name, &rd) != 1)
		return 0;
	buf = malloc(rd.len ? (size_t)rd.len : 1);
	if (!buf) {
		lp_cache_rd_close(&rd);
		return 0;
	}
	for (uint64_t got = 0; got < rd.len; got += (uint64_t)k) {
		k = lp_cache_rd_read(&rd, buf + got, (size_t)(rd.len - got));
		if (k <= 0) {
			free(buf);
			lp_cache_rd_drop(&rd, name, "truncated while reading");
			return 0;
		}
	}
	if (!lp_cache_rd_crc_ok(&rd)) {
		free(buf);
		lp_cache_rd_drop(&rd, name, "CRC-32 mismatch");
		return 0;
	}
	*meta = rd.meta;
	*ret_data = buf;
	*ret_len = rd.len;
	lp_cache_rd_close(&rd);
	return 1;
}

int lp_cache_get_small(struct lp_cache *c, enum lp_cache_kind kind, const struct lp_cache_key *key,
		       const char *name, uint64_t max_len, struct lp_cache_meta *meta, unsigned char **ret_data,
		       uint64_t *ret_len)
{
	size_t cap = HDR_LEN + (size_t)max_len + 1;
	unsigned char *buf;
	const char *why = NULL;
	char *path;
	uint64_t len = 0;
	uint32_t pcrc = 0;
	ssize_t k;
	int fd;

	if (!lp_cache_enabled(c))
		return 0;
	if (!c->atime_lru || c->zipfd < 0 || kind != LP_CACHE_ZIP)
		return lp_cache_get_mem(c, kind, key, name, meta, ret_data, ret_len);
	fd = open_zip_entry(c, key, name);
	if (fd < 0)
		return 0;
	buf = malloc(cap);
	if (!buf) {
		close(fd);
		return 0;
	}
	/*
	 * One read for header and payload, one byte more than the longest
	 * payload allowed: a regular file reads short only at its end, so the
	 * count is the file's size (no fstat) up to that bound.
	 */
	do
		k = pread(fd, buf, cap, 0);
	while (k < 0 && errno == EINTR);
	close(fd);
	if (k < 0)
		why = errno == EISDIR ? "not a regular file" : "unreadable";
	else if ((size_t)k < HDR_LEN)
		why = "truncated";
	else if ((size_t)k == cap)
		why = "longer than its contents can be";
	else
		why = hdr_check(buf, kind, key, (uint64_t)k, meta, &len, &pcrc);
	if (!why && libdeflate_crc32(0, buf + HDR_LEN, (size_t)len) != pcrc)
		why = "CRC-32 mismatch";
	if (why) {
		free(buf);
		if ((path = lp_cache_entry_path(c, kind, key))) {
			drop_path(c, path, name, why);
			free(path);
		}
		bump(c, &c->st.misses, 1);
		return 0;
	}
	memmove(buf, buf + HDR_LEN, (size_t)len);
	bump(c, &c->st.hits, 1);
	*ret_data = buf;
	*ret_len = len;
	return 1;
}

struct lp_cache_wr *lp_cache_wr_begin(struct lp_cache *c, enum lp_cache_kind kind)
{
	struct lp_cache_wr *w;
	uint8_t zero[HDR_LEN] = { 0 };

	if (!lp_cache_enabled(c))
		return NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->c = c;
	w->kind = kind;
	if (asprintf(&w->tmp, "%s/" TMP_PREFIX "XXXXXX", kind_dir(c, kind)) < 0) {
		free(w);
		return NULL;
	}
	w->fd = mkstemp(w->tmp);
	if (w->fd < 0) {
		if (fatal_errno(errno))
			disable(c, kind_dir(c, kind), errno);
		free(w->tmp);
		free(w);
		return NULL;
	}
	/* An interrupt between mkstemp and here leaves a temporary that eviction removes later. */
	lp_cleanup_register(w->tmp, false);
	lp_cache_wr_write(w, zero, HDR_LEN);
	w->len = 0;
	w->crc = 0;
	return w;
}

void lp_cache_wr_write(struct lp_cache_wr *w, const void *buf, size_t n)
{
	int r;

	if (!w || w->failed)
		return;
	r = lp_write_all(w->fd, buf, n);
	if (r < 0) {
		w->failed = true;
		if (fatal_errno(-r))
			disable(w->c, w->tmp, -r);
		return;
	}
	w->crc = libdeflate_crc32(w->crc, buf, n);
	w->len += n;
}

void lp_cache_wr_abort(struct lp_cache_wr *w)
{
	if (!w)
		return;
	close(w->fd);
	unlink(w->tmp);
	lp_cleanup_unregister(w->tmp);
	free(w->tmp);
	free(w);
}

int lp_cache_wr_commit(struct lp_cache_wr *w, const struct lp_cache_key *key, const struct lp_cache_meta *meta)
{
	uint8_t h[HDR_LEN];
	char *path, *slash;
	int r;

	if (!w)
		return 0;
	if (w->failed || !lp_cache_enabled(w->c)) {
		lp_cache_wr_abort(w);
		return 0;
	}
	hdr_build(h, w->kind, key, meta, w->len, w->crc);
	r = pwrite_all(w->fd, h, HDR_LEN, 0);
	if (r == 0 && close(w->fd) < 0)
		r = -errno;
	else if (r < 0)
		close(w->fd);
	w->fd = -1;
	path = lp_cache_entry_path(w->c, w->kind, key);
	if (r < 0 || !path) {
		if (r < 0 && fatal_errno(-r))
			disable(w->c, w->tmp, -r);
		free(path);
		unlink(w->tmp);
		goto out;
	}
	slash = strrchr(path, '/');
	*slash = '\0';
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		r = -errno;
		if (fatal_errno(-r))
			disable(w->c, path, -r);
	}
	*slash = '/';
	if (r == 0 && rename(w->tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(w->tmp);
	} else {
		pthread_mutex_lock(&w->c->mu);
		w->c->stored_any = true;
		pthread_mutex_unlock(&w->c->mu);
		bump(w->c, &w->c->st.stored, 1);
	}
	free(path);
out:
	lp_cleanup_unregister(w->tmp);
	free(w->tmp);
	free(w);
	return 0;
}

int lp_cache_put_mem(struct lp_cache *c, enum lp_cache_kind kind, const struct lp_cache_key *key,
		     const struct lp_cache_meta *meta, const void *data, uint64_t len)
{
	struct lp_cache_wr *w = lp_cache_wr_begin(c, kind);

	if (!w)
		return 0;
	lp_cache_wr_write(w, data, (size_t)len);
	return lp_cache_wr_commit(w, key, meta);
}

/* ---- layer blobs, shared with the output by a hard link ---- */

#define BLOB_REC_LEN	8u	/* a layer record's payload: the blob's length */

static char *blob_path(const struct lp_cache *c, const uint8_t digest[32])
{
	char hex[65], *p;

	lp_hex(digest, 32, hex);
	if (asprintf(&p, "%s/blobs/%s", c->dir[1], hex) < 0)
		return NULL;
	return p;
}

/*
 * Does fd hold exactly size bytes whose SHA-256 is digest? NULL if so,
 * else why not. With out >= 0 the bytes are also written there as they
 * are read (*werr says why that failed); the check and the copy are one
 * pass over the blob.
 */
static const char *blob_check(int fd, const uint8_t digest[32], uint64_t size, int out, int *werr)
{
	struct lp_sha256 sha;
	struct stat st;
	uint8_t d[32], *buf;
	uint64_t got = 0;
	const char *why = NULL;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return "not a regular file";
	if ((uint64_t)st.st_size != size)
		return (uint64_t)st.st_size < size ? "truncated" : "longer than its record says";
	buf = malloc(1u << 20);
	if (!buf)
		return "out of memory";
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	lp_sha256_init(&sha);
	while (!why) {
		ssize_t k = read(fd, buf, 1u << 20);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			why = "unreadable";
			break;
		}
		if (k == 0)
			break;
		lp_sha256_update(&sha, buf, (size_t)k);
		got += (uint64_t)k;
		if (out >= 0) {
			int r = lp_write_all(out, buf, (size_t)k);

			if (r < 0) {
				*werr = r;
				why = "not copied";
			}
		}
	}
	free(buf);
	if (why)
		return why;
	lp_sha256_final(&sha, d);
	if (got != size)
		return "changed while read";
	return memcmp(d, digest, 32) ? "SHA-256 mismatch" : NULL;
}

/* A stale or bad layer record goes; the next store writes it again. */
static void drop_record(struct lp_cache *c, const struct lp_cache_key *key)
{
	char *p = lp_cache_entry_path(c, LP_CACHE_LAYER, key);

	if (p)
		unlink(p);
	free(p);
	__atomic_fetch_sub(&c->st.hits, 1, __ATOMIC_RELAXED);
	bump(c, &c->st.misses, 1);
}

int lp_cache_blob_get(struct lp_cache *c, const struct lp_cache_key *key, const char *name, const char *path,
		      struct lp_cache_meta *meta, uint64_t *size)
{
	unsigned char *rec = NULL;
	uint64_t rlen, bsize;
	const char *why = NULL;
	char *bp;
	struct stat st;
	int fd, out, werr = 0;

	if (lp_cache_get_mem(c, LP_CACHE_LAYER, key, name, meta, &rec, &rlen) != 1)
		return 0;
	if (rlen != BLOB_REC_LEN) {
		free(rec);
		drop_record(c, key);
		return 0;
	}
	bsize = rd64(rec);
	free(rec);
	bp = blob_path(c, meta->digest);
	if (!bp) {
		drop_record(c, key);
		return 0;
	}
	if (link(bp, path) == 0) {
		/*
		 * The output now shares the cache's inode: check what it holds,
		 * through the new name. link() does not follow a symlink, so a
		 * planted one fails O_NOFOLLOW here instead of leaking its target.
		 */
		fd = lstat(path, &st) == 0 && S_ISREG(st.st_mode) ? open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
		why = fd < 0 ? "not a regular file" : blob_check(fd, meta->digest, bsize, -1, NULL);
		if (!why && time(NULL) - st.st_mtime > LRU_GRAIN_S)
			(void)futimens(fd, NULL);
		if (fd >= 0)
			close(fd);
		if (why)
			unlink(path);
	} else if (errno == ENOENT) {
		/* Evicted blob, stale record: an ordinary miss. */
		free(bp);
		drop_record(c, key);
		return 0;
	} else {
		/* Another file system, or no hard links here: copy while checking. */
		fd = open(bp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			why = strerror(errno);
		} else {
			out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
			if (out < 0) {
				werr = -errno;
			} else {
				why = blob_check(fd, meta->digest, bsize, out, &werr);
				if (close(out) < 0 && !werr)
					werr = -errno;
				if (why || werr)
					unlink(path);
			}
			close(fd);
		}
		if (werr) {
			free(bp);
			return werr;
		}
	}
	if (why) {
		drop_path(c, bp, name, why);
		drop_record(c, key);
		free(bp);
		return 0;
	}
	free(bp);
	*size = bsize;
	return 1;
}

void lp_cache_blob_put(struct lp_cache *c, const struct lp_cache_key *key, const struct lp_cache_meta *meta,
		       const char *path, uint64_t size)
{
	static atomic_uint seq;
	char *bp, *dir = NULL, *tmp = NULL;
	uint8_t rec[BLOB_REC_LEN];
	struct stat st;
	int r = 0;

	if (!lp_cache_enabled(c))
		return;
	bp = blob_path(c, meta->digest);
	if (!bp || asprintf(&dir, "%s/blobs", c->dir[1]) < 0 ||
	    asprintf(&tmp, "%s/" TMP_PREFIX "%ld.%u", dir, (long)getpid(), atomic_fetch_add(&seq, 1)) < 0) {
		tmp = NULL;
		goto out;
	}
	/* The same blob under another key, or from a concurrent run: one copy serves both. */
	if (lstat(bp, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == size)
		goto record;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		r = -errno;
		goto out;
	}
	lp_cleanup_register(tmp, false);
	/* Another file system: a copy, as the cache has always stored. */
	if (link(path, tmp) < 0)
		r = lp_copy_file(path, tmp);
	if (r == 0 && rename(tmp, bp) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	lp_cleanup_unregister(tmp);
	if (r < 0)
		goto out;
record:
	put64(rec, size);
	lp_cache_put_mem(c, LP_CACHE_LAYER, key, meta, rec, sizeof(rec));
out:
	if (r < 0 && fatal_errno(-r))
		disable(c, dir ? dir : c->dir[1], -r);
	free(bp);
	free(dir);
	free(tmp);
}
