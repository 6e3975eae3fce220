/* SPDX-License-Identifier: MIT */
#include "pack/optimize.h"
#include "core/entry.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "core/hash.h"
#include "input/input.h"
#include "core/report.h"
#include "core/util.h"
#include "pack/strip.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* --- strip ---------------------------------------------------------------- */

struct strip_job {
	size_t idx;		/* entry index */
	char *out;		/* staged path */
	struct lp_strip_result res;
	int rc;
	char err[256];
};

struct strip_pool {
	struct lp_entries *l;
	struct strip_job *jobs;
	size_t n;
	size_t next;
	pthread_mutex_t lock;
	const char *cache_dir;
};

static void *strip_worker(void *arg)
{
	struct strip_pool *p = arg;

	for (;;) {
		struct strip_job *j;
		const struct lp_entry *e;

		pthread_mutex_lock(&p->lock);
		j = p->next < p->n ? &p->jobs[p->next++] : NULL;
		pthread_mutex_unlock(&p->lock);
		if (!j)
			return NULL;
		e = &p->l->v[j->idx];
		lp_errmsg_clear();
		if (lp_cancelled()) {
			j->rc = lp_fail(-EINTR, e->path, "interrupted");
			snprintf(j->err, sizeof(j->err), "%s", lp_errmsg());
			continue;
		}
		j->rc = lp_strip_cached(e->src, (e->flags & LP_F_HAS_DIGEST) ? e->digest : NULL,
					p->cache_dir, j->out, NULL, &j->res);
		if (j->rc < 0)
			snprintf(j->err, sizeof(j->err), "%s", lp_errmsg());
	}
}

static bool strip_candidate(const struct lp_entry *e)
{
	return e->kind == LP_FILE && e->binfmt == LP_BIN_ELF && e->src &&
	       !(e->flags & (LP_F_REMOVED | LP_F_DUPLICATE | LP_F_STRIPPED));
}

int lp_opt_strip(struct lp_entries *l, const char *stage_dir, const char *cache_dir,
		 unsigned nthreads, struct lp_report *rep)
{
	struct strip_pool pool = { .l = l, .cache_dir = cache_dir };
	pthread_t *tids = NULL;
	char *dir = NULL;
	unsigned started = 0;
	int r = 0, first_err = 0;

	for (size_t i = 0; i < l->n; i++)
		if (strip_candidate(&l->v[i]))
			pool.n++;
	if (pool.n == 0)
		return 0;
	if (asprintf(&dir, "%s/strip", stage_dir) < 0)
		return -ENOMEM;
	r = lp_mkdir_p(dir, 0700);
	if (r < 0) {
		r = lp_fail(r, dir, "cannot create staging directory: %s", strerror(-r));
		goto out;
	}
	pool.jobs = calloc(pool.n, sizeof(*pool.jobs));
	if (!pool.jobs) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0, k = 0; i < l->n; i++) {
		if (!strip_candidate(&l->v[i]))
			continue;
		pool.jobs[k].idx = i;
		/* Index-named, so two entries with one basename never collide. */
		if (asprintf(&pool.jobs[k].out, "%s/%zu", dir, i) < 0) {
			r = -ENOMEM;
			goto out;
		}
		k++;
	}
	if (nthreads == 0)
		nthreads = 1;
	if (nthreads > pool.n)
		nthreads = (unsigned)pool.n;
	pthread_mutex_init(&pool.lock, NULL);
	tids = calloc(nthreads, sizeof(*tids));
	if (!tids) {
		r = -ENOMEM;
		goto out_lock;
	}
	for (unsigned t = 1; t < nthreads; t++) {
		if (pthread_create(&tids[t], NULL, strip_worker, &pool) != 0)
			break;
		started++;
	}
	strip_worker(&pool);	/* the calling thread works too */
	for (unsigned t = 1; t <= started; t++)
		pthread_join(tids[t], NULL);

	/* Apply results in list order so reports are deterministic. */
	for (size_t k = 0; k < pool.n; k++) {
		struct strip_job *j = &pool.jobs[k];
		struct lp_entry *e = &l->v[j->idx];

		if (j->rc < 0) {
			if (!first_err) {
				first_err = j->rc;
				lp_errmsg_set(j->err);
			}
			continue;
		}
		if (j->res.outcome != LP_STRIP_OK) {
			r = lp_report_change(rep, "strip-skipped", e->path, 0, "%s: %s",
					     lp_strip_outcome_name(j->res.outcome), j->res.reason);
			if (r < 0)
				goto out_lock;
			continue;
		}
		free(e->src);
		e->src = j->out;
		j->out = NULL;
		if (!e->orig_size)
			e->orig_size = e->size;
		e->size = j->res.size_after;
		memcpy(e->digest, j->res.digest, sizeof(e->digest));
		e->flags |= LP_F_STRIPPED | LP_F_HAS_DIGEST;
		if (e->bin) {
			e->bin->debug_bytes = 0;
			e->bin->symtab_bytes = 0;
		}
		r = lp_report_change(rep, "strip", e->path, j->res.size_before - j->res.size_after,
				     "%s%s%s%s", j->res.reason, j->res.cached ? " (cached)" : "",
				     j->res.kept_unknown ? "; kept unknown sections: " : "",
				     j->res.kept_unknown ? j->res.kept_note : "");
		if (r < 0)
			goto out_lock;
	}
	r = first_err;
out_lock:
	pthread_mutex_destroy(&pool.lock);
out:
	for (size_t k = 0; pool.jobs && k < pool.n; k++) {
		if (pool.jobs[k].out) {
			unlink(pool.jobs[k].out);
			free(pool.jobs[k].out);
		}
	}
	free(pool.jobs);
	free(tids);
	free(dir);
	return r;
}

/*
 * Dry-run strip: the size each candidate would have, from the plan a reader
 * made while it had the bytes (binfo->strip_after) or from the file itself.
 * The digest stays the input's (see struct lp_opt_set).
 */
static int strip_plan(struct lp_entries *l, struct lp_report *rep)
{
	for (size_t i = 0; i < l->n; i++) {
		struct lp_entry *e = &l->v[i];
		struct lp_strip_result res;
		uint64_t after;
		int r;

		if (e->kind != LP_FILE || e->binfmt != LP_BIN_ELF ||
		    (e->flags & (LP_F_REMOVED | LP_F_DUPLICATE | LP_F_STRIPPED)))
			continue;
		if (e->bin && e->bin->strip_planned) {
			after = e->bin->strip_after;
		} else if (e->src) {
			r = lp_strip_file(e->src, NULL, NULL, &res);
			if (r < 0)
				return r;
			after = res.outcome == LP_STRIP_OK ? res.size_after : 0;
		} else {
			continue;
		}
		if (after == 0 || after >= e->size)
			continue;
		if (!e->orig_size)
			e->orig_size = e->size;
		r = lp_report_change(rep, "strip", e->path, e->size - after, "would remove debug data and symbols");
		if (r < 0)
			return r;
		e->size = after;
		e->flags |= LP_F_STRIPPED;
		if (e->bin)
			e->bin->debug_bytes = e->bin->symtab_bytes = 0;
	}
	return 0;
}

/* --- dedupe --------------------------------------------------------------- */

int lp_dedupe_mode_parse(const char *s, enum lp_dedupe_mode *ret)
{
	if (!strcmp(s, "off") || !strcmp(s, "none"))
		*ret = LP_DEDUPE_OFF;
	else if (!strcmp(s, "binaries"))
		*ret = LP_DEDUPE_BINARIES;
	else if (!strcmp(s, "all"))
		*ret = LP_DEDUPE_ALL;
	else
		return lp_fail(-LP_E_USAGE, NULL, "--dedupe must be off, binaries or all, not '%s'", s);
	return 0;
}

static bool has_suffix(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);

	return a >= b && memcmp(s + a - b, suf, b) == 0;
}

/*
 * Node resolves a symlinked module by its real path, so a JS/JSON file or an
 * addon turned into a link would load as another module (or twice).
 */
static bool node_sensitive(const char *path)
{
	static const char *const ext[] = { ".js", ".mjs", ".cjs", ".json", ".node", NULL };

	for (const char *const *x = ext; *x; x++)
		if (has_suffix(path, *x))
			return true;
	return false;
}

static bool dedupe_eligible(const struct lp_entry *e, enum lp_dedupe_mode mode)
{
	if (mode == LP_DEDUPE_ALL)
		return true;
	if (mode == LP_DEDUPE_OFF || node_sensitive(e->path))
		return false;
	return e->binfmt != LP_BIN_NONE || e->size >= LP_DEDUPE_MIN_DATA;
}

static int files_equal(const char *a, const char *b)
{
	int fa = open(a, O_RDONLY | O_CLOEXEC), fb = open(b, O_RDONLY | O_CLOEXEC);
	char *ba = malloc(1 << 16), *bb = malloc(1 << 16);
	int r = 1;

	if (fa < 0 || fb < 0 || !ba || !bb) {
		r = fa < 0 || fb < 0 ? lp_fail(-errno, fa < 0 ? a : b, "cannot open: %s", strerror(errno)) :
		    -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t x = read(fa, ba, 1 << 16), y;

		if (x < 0) {
			r = -errno;
			break;
		}
		y = x ? read(fb, bb, (size_t)x) : read(fb, bb, 1);
		if (y < 0) {
			r = -errno;
			break;
		}
		if (x != y || memcmp(ba, bb, (size_t)x) != 0) {
			r = 0;
			break;
		}
		if (x == 0)
			break;
	}
out:
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	free(ba);
	free(bb);
	return r;
}

static int cmp_size(const void *a, const void *b)
{
	const struct lp_entry *x = *(struct lp_entry *const *)a, *y = *(struct lp_entry *const *)b;

	if (x->size != y->size)
		return x->size < y->size ? -1 : 1;
	return strcmp(x->path, y->path);
}

static int cmp_digest(const void *a, const void *b)
{
	const struct lp_entry *x = *(struct lp_entry *const *)a, *y = *(struct lp_entry *const *)b;
	int c = memcmp(x->digest, y->digest, 32);

	return c ? c : strcmp(x->path, y->path);
}

static int dedupe_run(struct lp_entries *l, enum lp_dedupe_mode mode, bool verify, struct lp_report *rep)
{
	struct lp_entry **idx;
	size_t n = 0, ndup = 0, nsaved = 0;
	uint64_t wasted = 0, saved = 0;
	int r = 0;

	/* Files that cannot have a twin get no digest and stay out of the groups. */
	r = lp_entries_digest_candidates(l, 0);
	if (r < 0)
		return r;
	idx = malloc((l->n + 1) * sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	for (size_t i = 0; i < l->n; i++) {
		const struct lp_entry *e = &l->v[i];

		if (e->kind == LP_FILE && (e->flags & LP_F_HAS_DIGEST) && e->size > 0 &&
		    !(e->flags & (LP_F_REMOVED | LP_F_DUPLICATE)))
			idx[n++] = &l->v[i];
	}
	qsort(idx, n, sizeof(*idx), cmp_size);

	for (size_t g = 0; g < n;) {
		size_t end = g + 1;

		if ((r = lp_check_cancel(NULL)) < 0)
			goto out;
		while (end < n && idx[end]->size == idx[g]->size)
			end++;
		if (end - g < 2) {
			g = end;
			continue;
		}
		qsort(idx + g, end - g, sizeof(*idx), cmp_digest);
		/* Within equal digests, path order: the first is canonical. */
		for (size_t a = g; a < end;) {
			size_t b = a + 1;
			struct lp_entry *canon = idx[a];

			while (b < end && !memcmp(idx[b]->digest, canon->digest, 32))
				b++;
			for (size_t k = a + 1; k < b; k++) {
				struct lp_entry *e = idx[k];
				uint64_t link_len;
				char *t;

				/* SHA-256 equal; a byte compare costs little and rules out the impossible. */
				if (verify && canon->src && e->src) {
					r = files_equal(canon->src, e->src);
					if (r < 0)
						goto out;
					if (r == 0)
						continue;
				}
				ndup++;
				wasted += e->size;
				if (!dedupe_eligible(e, mode))
					continue;
				{
					/* Emitted as a link: that is what it saves, and one as long as the file saves nothing. */
					char *rel = lp_path_relative(e->path, canon->path);

					link_len = rel ? strlen(rel) : e->size;
					free(rel);
					if (link_len >= e->size)
						continue;
				}
				t = strdup(canon->path);
				if (!t) {
					r = -ENOMEM;
					goto out;
				}
				free(e->target);
				e->target = t;
				e->flags |= LP_F_DUPLICATE;
				nsaved++;
				saved += e->size - link_len;
				r = lp_report_change(rep, "dedupe", e->path, e->size - link_len, "same bytes as %s",
						     canon->path);
				if (r < 0)
					goto out;
			}
			a = b;
		}
		g = end;
	}
	r = 0;
	if (ndup > 0)
		r = lp_report_finding(rep, LP_SEV_INFO, "duplicates", NULL,
				      "%zu duplicate %s waste %llu bytes; deduplicated %zu of them, saving %llu bytes (mode %s)",
				      ndup, lp_plural(ndup, "file", "files"), (unsigned long long)wasted, nsaved, (unsigned long long)saved,
				      mode == LP_DEDUPE_ALL ? "all" : mode == LP_DEDUPE_BINARIES ? "binaries" : "off");
out:
	free(idx);
	return r;
}

int lp_opt_dedupe(struct lp_entries *l, enum lp_dedupe_mode mode, struct lp_report *rep)
{
	return dedupe_run(l, mode, true, rep);
}

/* --- foreign binaries ----------------------------------------------------- */

static const struct lp_binfo *entry_bin(const struct lp_entry *e, struct lp_binfo **tmp)
{
	*tmp = NULL;
	if (e->bin)
		return e->bin;
	if (!e->src || lp_binfo_read_path(e->src, tmp) < 0) {
		lp_errmsg_clear();
		return NULL;
	}
	return *tmp;
}

static void arch_list(const struct lp_binfo *bi, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (unsigned a = LP_ARCH_X86_64; a <= LP_ARCH_OTHER && o < len; a++)
		if (bi->arch_mask & (1u << a))
			o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? ", " : "",
					      lp_arch_name((enum lp_arch)a));
}

int lp_opt_prune_foreign(struct lp_entries *l, enum lp_arch target, struct lp_report *rep)
{
	struct lp_deps ds;
	int r = lp_deps_build(l, &ds);

	if (r < 0)
		goto out;
	for (size_t i = 0; i < l->n; i++) {
		struct lp_entry *e = &l->v[i];
		struct lp_binfo *tmp;
		const struct lp_binfo *bi;
		char arch[64];

		if (e->kind != LP_FILE || (e->flags & LP_F_REMOVED) || e->binfmt == LP_BIN_NONE ||
		    e->binfmt == LP_BIN_AR)
			continue;
		bi = entry_bin(e, &tmp);
		if (!bi && (e->binfmt == LP_BIN_MACHO || e->binfmt == LP_BIN_MACHO_FAT || e->binfmt == LP_BIN_PE)) {
			/* The magic bytes are enough: no Linux loader runs these. */
			if (!lp_deps_find(&ds, e->path, NULL, 0))
				continue;
			e->flags |= LP_F_REMOVED;
			r = lp_report_change(rep, "prune-foreign", e->path, e->size, "%s: cannot run on Lambda",
					     lp_binfmt_name((enum lp_binfmt)e->binfmt));
			if (r < 0)
				goto out;
			continue;
		}
		if (!bi)
			continue;
		if (!e->bin && tmp) {
			/* Keep the facts: later passes (checks, reports) want them. */
			e->bin = tmp;
			tmp = NULL;
		}
		/* The function's own binaries are never dropped: the checks name them. */
		if (!lp_deps_find(&ds, e->path, NULL, 0))
			continue;
		arch_list(bi, arch, sizeof(arch));
		if ((bi->fmt == LP_BIN_ELF && bi->os == LP_OS_LINUX &&
		     (target == LP_ARCH_UNKNOWN || bi->arch == target)) || (bi->fmt == LP_BIN_PE && bi->pe_managed)) {
			lp_binfo_free(tmp);
			continue;
		}
		if (bi->fmt != LP_BIN_ELF && bi->fmt != LP_BIN_MACHO && bi->fmt != LP_BIN_MACHO_FAT &&
		    bi->fmt != LP_BIN_PE) {
			lp_binfo_free(tmp);
			continue;
		}
		e->flags |= LP_F_REMOVED;
		/* "Mach-O for x86_64, arm64"; an unknown CPU type names no architecture. */
		r = lp_report_change(rep, "prune-foreign", e->path, e->size, "%s%s%s%s%s",
				     lp_binfmt_name(bi->fmt), *arch && strcmp(arch, "other") ? " for " : "",
				     *arch && strcmp(arch, "other") ? arch : "",
				     bi->fmt == LP_BIN_ELF && bi->os == LP_OS_ANDROID ? " (Android)" :
				     bi->fmt == LP_BIN_ELF && bi->os != LP_OS_LINUX ? " (not Linux)" : "",
				     bi->fmt == LP_BIN_ELF ? "" : ": cannot run on Lambda");
		lp_binfo_free(tmp);
		if (r < 0)
			goto out;
	}
	r = 0;
out:
	lp_deps_free(&ds);
	return r;
}

enum lp_arch lp_detect_arch(const struct lp_entries *l)
{
	return lp_detect_arch_ex(l, NULL);
}

enum lp_arch lp_detect_arch_ex(const struct lp_entries *l, bool *from_binaries)
{
	uint64_t bytes[LP_ARCH_OTHER + 1] = { 0 }, files[LP_ARCH_OTHER + 1] = { 0 };
	enum lp_arch best = LP_ARCH_X86_64;

	for (size_t i = 0; i < l->n; i++) {
		const struct lp_entry *e = &l->v[i];
		struct lp_binfo *tmp;
		const struct lp_binfo *bi;

		if (e->kind != LP_FILE || (e->flags & LP_F_REMOVED) || e->binfmt != LP_BIN_ELF)
			continue;
		bi = entry_bin(e, &tmp);
		if (bi && bi->fmt == LP_BIN_ELF && bi->os == LP_OS_LINUX && bi->arch > LP_ARCH_UNKNOWN &&
		    bi->arch <= LP_ARCH_OTHER && (bi->e_type == ET_EXEC || bi->e_type == ET_DYN)) {
			bytes[bi->arch] += e->orig_size ? e->orig_size : e->size;
			files[bi->arch]++;
		}
		lp_binfo_free(tmp);
	}
	if (from_binaries)
		*from_binaries = files[LP_ARCH_X86_64] + files[LP_ARCH_ARM64] > 0;
	/* Lambda runs x86_64 or arm64 only; anything else cannot be the target. */
	if (bytes[LP_ARCH_ARM64] > bytes[LP_ARCH_X86_64] ||
	    (bytes[LP_ARCH_ARM64] == bytes[LP_ARCH_X86_64] && files[LP_ARCH_ARM64] > files[LP_ARCH_X86_64]))
		best = LP_ARCH_ARM64;
	return best;
}

/* --- junk ----------------------------------------------------------------- */

/*
 * Default junk rules, applied only inside dependency trees and documented in
 * docs/optimize.md. Directory rules match a directory strictly below a
 * package's own root (so a package called "test" or "docs" survives);
 * __pycache__ and .github match at any depth. Deliberately absent: LICENSE
 * files, *.dist-info (importlib.metadata reads it), *.md in general,
 * example(s)/ and anything code might import.
 */
enum scope { S_ANY, S_NODE, S_PYTHON };

struct rule {
	const char *pat;	/* lp_glob_match pattern (basename) or directory name */
	bool dir;
	bool anywhere;		/* directory rule that also matches the package root level */
	enum scope scope;
};

static const struct rule rules[] = {
	{ "__pycache__", true, true, S_ANY },
	{ "*.pyc", false, false, S_ANY },
	{ "*.pyo", false, false, S_ANY },
	{ ".github", true, true, S_ANY },
	{ "test", true, false, S_ANY },
	{ "tests", true, false, S_ANY },
	{ "__tests__", true, false, S_ANY },
	{ "docs", true, false, S_ANY },
	{ "*.map", false, false, S_NODE },
	{ "*.d.ts", false, false, S_NODE },
	{ "*.d.mts", false, false, S_NODE },
	{ "*.d.cts", false, false, S_NODE },
	{ "README*", false, false, S_ANY },	/* documentation extensions only, see doc_file() */
	{ "CHANGELOG*", false, false, S_ANY },
	{ "HISTORY*", false, false, S_ANY },
};

static const char *const rule_names[] = {
	"__pycache__/", "*.pyc", "*.pyo", ".github/", "test/", "tests/", "__tests__/", "docs/",
	"*.map (node_modules)", "*.d.ts, *.d.mts, *.d.cts (node_modules)",
	"README*, CHANGELOG*, HISTORY* (no extension or .md/.markdown/.txt/.rst/.adoc)", NULL,
};

const char *const *lp_junk_rules(void)
{
	return rule_names;
}

/*
 * README/CHANGELOG/HISTORY, any case, only with a documentation extension:
 * "history.js" is code (the npm package "history" ships it).
 */
static bool doc_file(const char *base, const char *stem)
{
	static const char *const ext[] = { "", ".md", ".markdown", ".txt", ".rst", ".adoc", NULL };
	size_t n = strlen(stem);

	if (strncasecmp(base, stem, n) != 0)
		return false;
	base += n;
	/* README.en.md, CHANGELOG-2.x.md: skip a middle part up to the last dot. */
	const char *dot = strrchr(base, '.');

	if (*base && *base != '.' && *base != '-' && *base != '_')
		return false;
	for (const char *const *x = ext; *x; x++)
		if (dot ? !strcasecmp(dot, *x) : !**x)
			return true;
	return false;
}

struct dep {
	enum scope scope;
	size_t marker_end;	/* offset just past "node_modules/" etc. */
	size_t pkg_end;		/* offset of the '/' after the package root, or strlen */
	char pkg[512];		/* "node_modules/foo" etc., for reports */
};

static bool comp_is(const char *p, size_t len, const char *name)
{
	return strlen(name) == len && memcmp(p, name, len) == 0;
}

/* --- dependency trees ----------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool strv_has(const struct lp_strv *v, const char *key)
{
	return v->n && bsearch(&key, v->v, v->n, sizeof(*v->v), cmp_str);
}

/* "PyYAML" -> "pyyaml", "zope.interface" -> "zope_interface" (PEP 503 style). */
static void norm_name(const char *in, size_t n, char *out, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 1 < len; i++) {
		char c = in[i];

		out[o++] = c == '-' || c == '.' ? '_' : (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	out[o] = '\0';
}

static int push_root(struct lp_strv *v, const char *s, size_t n)
{
	char buf[256];

	/* The root __pycache__ also holds the function's own modules' caches. */
	if (n == 0 || n >= sizeof(buf) || (n == 2 && s[0] == '.' && s[1] == '.') || (n == 1 && s[0] == '.') ||
	    (n == 11 && !memcmp(s, "__pycache__", 11)))
		return 0;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return lp_strv_push(v, buf);
}

/*
 * Root-level names in a top_level.txt (mode 0: one per line), a RECORD
 * (1: CSV, path first) or an egg's installed-files.txt (2: paths relative
 * to the egg-info directory, so only "../name/..." lines are root-level).
 */
static int roots_from_text(struct lp_strv *v, const char *text, int mode)
{
	bool record = mode == 1;

	for (const char *line = text; line && *line;) {
		const char *eol = strchr(line, '\n');
		size_t ll = eol ? (size_t)(eol - line) : strlen(line);
		size_t n;
		int r;

		if (record && ll && *line == '"') {
			line++;
			ll--;
		}
		if (mode == 2) {
			if (ll < 3 || memcmp(line, "../", 3)) {
				line = eol ? eol + 1 : NULL;
				continue;
			}
			line += 3;
			ll -= 3;
		}
		n = strcspn(line, record ? "/,\"\r\n" : "/\r\n");
		if (n > ll)
			n = ll;
		/* A RECORD line without '/' is a module file at the root ("six.py"). */
		if ((r = push_root(v, line, n)) < 0)
			return r;
		line = eol ? eol + 1 : NULL;
	}
	return 0;
}

static void strv_sort_unique(struct lp_strv *v)
{
	size_t o = 0;

	if (!v->n)
		return;
	qsort(v->v, v->n, sizeof(*v->v), cmp_str);
	for (size_t i = 0; i < v->n; i++) {
		if (o && !strcmp(v->v[o - 1], v->v[i])) {
			free(v->v[i]);
			continue;
		}
		v->v[o++] = v->v[i];
	}
	v->n = o;
}

int lp_deps_build(const struct lp_entries *l, struct lp_deps *d)
{
	int r = 0;

	memset(d, 0, sizeof(*d));
	for (size_t i = 0; i < l->n && r == 0; i++) {
		const struct lp_entry *e = &l->v[i];
		const char *slash = strchr(e->path, '/'), *base;
		size_t dl;
		bool record;
		char *text = NULL;

		if (e->kind != LP_FILE || !slash || strchr(slash + 1, '/') || (e->flags & LP_F_REMOVED))
			continue;
		dl = (size_t)(slash - e->path);
		if (!((dl > 10 && !memcmp(slash - 10, ".dist-info", 10)) ||
		      (dl > 9 && !memcmp(slash - 9, ".egg-info", 9))))
			continue;
		base = slash + 1;
		record = !strcmp(base, "RECORD") || !strcmp(base, "installed-files.txt");
		if (!record && strcmp(base, "top_level.txt") && strcmp(base, "METADATA") && strcmp(base, "PKG-INFO"))
			continue;
		{
			/* The distribution name: "PyYAML-6.0.dist-info" -> "pyyaml". */
			const char *dash = memchr(e->path, '-', dl);
			char nm[256];

			norm_name(e->path, dash ? (size_t)(dash - e->path) : dl - (memcmp(slash - 9, ".egg-info", 9) ? 10 : 9),
				  nm, sizeof(nm));
			if (*nm && (r = lp_strv_push(&d->norm, nm)) < 0)
				break;
		}
		if (!e->src || !strcmp(base, "METADATA") || !strcmp(base, "PKG-INFO"))
			continue;
		/* installed-files.txt paths are relative to the egg-info: "../yaml/x.py". */
		if (lp_read_file(e->src, 16u << 20, &text, NULL) < 0) {
			lp_errmsg_clear();
			continue;
		}
		r = roots_from_text(&d->roots, text, record ? (!strcmp(base, "RECORD") ? 1 : 2) : 0);
		free(text);
	}
	strv_sort_unique(&d->roots);
	strv_sort_unique(&d->norm);
	return r;
}

void lp_deps_free(struct lp_deps *d)
{
	lp_strv_free(&d->roots);
	lp_strv_free(&d->norm);
}

/* Is the root-level component [path, path+len) owned by an installed distribution? */
static bool root_dep(const struct lp_deps *ds, const char *path, size_t len)
{
	char buf[256];

	if (!ds || len >= sizeof(buf) || (!ds->roots.n && !ds->norm.n))
		return false;
	memcpy(buf, path, len);
	buf[len] = '\0';
	/* The metadata directories themselves belong to their distribution. */
	if ((len > 10 && !strcmp(buf + len - 10, ".dist-info")) || (len > 9 && !strcmp(buf + len - 9, ".egg-info")))
		return true;
	if (strv_has(&ds->roots, buf))
		return true;
	norm_name(path, len, buf, sizeof(buf));
	return strv_has(&ds->norm, buf);
}

/* Is path inside a dependency tree? Uses the innermost marker. */
static bool find_dep(const struct lp_deps *ds, const char *path, struct dep *d)
{
	const char *s = path;
	bool found = false;

	for (size_t ci = 0; *s; ci++) {
		const char *e = strchr(s, '/');
		size_t len = e ? (size_t)(e - s) : strlen(s);

		if (e && (comp_is(s, len, "node_modules") || comp_is(s, len, "site-packages") ||
			  comp_is(s, len, "dist-packages") || comp_is(s, len, "vendor") ||
			  (ci == 0 && comp_is(s, len, "python")))) {
			found = true;
			d->scope = comp_is(s, len, "node_modules") ? S_NODE :
				   comp_is(s, len, "vendor") ? S_ANY : S_PYTHON;
			d->marker_end = (size_t)(e + 1 - path);
		}
		s = e ? e + 1 : s + len;
	}
	if (!found) {
		size_t len = strcspn(path, "/");

		if (!root_dep(ds, path, len))
			return false;
		d->scope = S_PYTHON;
		d->marker_end = 0;
		d->pkg_end = len;
		snprintf(d->pkg, sizeof(d->pkg), "%.*s", (int)len, path);
		return true;
	}
	/* Package root: one component, two for an npm @scope/name. */
	{
		const char *p = path + d->marker_end, *e = strchr(p, '/');

		if (d->scope == S_NODE && *p == '@' && e)
			e = strchr(e + 1, '/');
		d->pkg_end = e ? (size_t)(e - path) : strlen(path);
		snprintf(d->pkg, sizeof(d->pkg), "%.*s", (int)d->pkg_end, path);
	}
	return true;
}

bool lp_deps_find(const struct lp_deps *ds, const char *path, char *pkg, size_t len)
{
	struct dep d;

	if (!find_dep(ds, path, &d))
		return false;
	if (pkg)
		snprintf(pkg, len, "%s", d.pkg);
	return true;
}

bool lp_native_module_name(const char *path)
{
	static const char *const ext[] = { ".so", ".node", ".dylib", ".dll", ".pyd", NULL };
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	for (const char *const *x = ext; *x; x++)
		if (has_suffix(base, *x))
			return true;
	/* libfoo.so.1.2 */
	return strstr(base, ".so.") != NULL;
}

/* Does directory-name rule pat match a directory component in [from, to) of path? */
static bool dir_match(const char *path, size_t from, size_t to, const char *pat)
{
	char comp[256];

	while (from < to) {
		const char *e = memchr(path + from, '/', to - from);
		size_t len = e ? (size_t)(e - (path + from)) : to - from;

		if (len < sizeof(comp)) {
			memcpy(comp, path + from, len);
			comp[len] = '\0';
			if (lp_glob_match(pat, comp))
				return true;
		}
		from += len + 1;
	}
	return false;
}

/* Which rule (index, or -1) removes this entry; extra patterns are rules past the table. */
static int junk_rule(const struct lp_entry *e, const struct dep *d, const struct lp_strv *extra)
{
	const char *path = e->path;
	size_t plen = strlen(path);
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	/* Directories this entry lives in (for a dir entry, including itself). */
	size_t dirs_end = e->kind == LP_DIR ? plen : (size_t)(base - path);
	size_t nrules = sizeof(rules) / sizeof(rules[0]);

	for (size_t i = 0; i < nrules; i++) {
		const struct rule *r = &rules[i];

		if (r->scope != S_ANY && r->scope != d->scope)
			continue;
		if (r->dir) {
			size_t from = r->anywhere ? d->marker_end : d->pkg_end + 1;

			if (from < dirs_end && dir_match(path, from, dirs_end, r->pat))
				return (int)i;
			continue;
		}
		if (e->kind == LP_DIR || (size_t)(base - path) <= d->pkg_end)
			continue;
		if (r->pat[0] == '*' ? lp_glob_match(r->pat, base) :
		    doc_file(base, !strcmp(r->pat, "README*") ? "readme" :
				   !strcmp(r->pat, "CHANGELOG*") ? "changelog" : "history"))
			return (int)i;
	}
	for (size_t i = 0; extra && i < extra->n; i++) {
		const char *pat = extra->v[i];
		size_t pl = strlen(pat);
		const char *rel = path + d->marker_end;

		if (pl > 1 && pat[pl - 1] == '/') {
			char dpat[256];

			if (pl - 1 >= sizeof(dpat))
				continue;
			memcpy(dpat, pat, pl - 1);
			dpat[pl - 1] = '\0';
			/* Test every directory prefix of the in-tree path. */
			for (size_t k = d->marker_end; k < dirs_end; k++) {
				if (path[k] != '/' && k + 1 != dirs_end)
					continue;
				{
					char pre[1024];
					size_t n = (path[k] == '/' ? k : k + 1) - d->marker_end;

					if (n == 0 || n >= sizeof(pre))
						continue;
					memcpy(pre, rel, n);
					pre[n] = '\0';
					if (lp_glob_match(dpat, pre))
						return (int)(nrules + i);
				}
			}
		} else if (e->kind != LP_DIR && lp_glob_match(pat, rel)) {
			return (int)(nrules + i);
		}
	}
	return -1;
}

struct agg {
	char pkg[512];
	struct {
		int rule;
		size_t files;
		uint64_t bytes;
	} v[32];
	size_t n;
};

static int agg_flush(struct agg *a, const struct lp_strv *extra, struct lp_report *rep)
{
	size_t nrules = sizeof(rules) / sizeof(rules[0]);
	int r = 0;

	for (size_t i = 0; i < a->n && r == 0; i++) {
		int k = a->v[i].rule;
		const char *name = (size_t)k < nrules ? rules[k].pat : extra->v[(size_t)k - nrules];

		r = lp_report_change(rep, "prune-junk", a->pkg, a->v[i].bytes, "%zu file%s by rule %s%s",
				     a->v[i].files, a->v[i].files == 1 ? "" : "s", name, (size_t)k < nrules && rules[k].dir ? "/" : "");
	}
	a->n = 0;
	a->pkg[0] = '\0';
	return r;
}

int lp_opt_prune_junk(struct lp_entries *l, const struct lp_strv *extra_patterns, struct lp_report *rep)
{
	struct agg *a = calloc(1, sizeof(*a));
	struct lp_deps ds;
	int r;

	if (!a)
		return -ENOMEM;
	r = lp_deps_build(l, &ds);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < l->n; i++) {
		struct lp_entry *e = &l->v[i];
		struct dep d;
		int k;

		if (e->flags & LP_F_REMOVED)
			continue;
		if (!find_dep(&ds, e->path, &d))
			continue;
		k = junk_rule(e, &d, extra_patterns);
		if (k < 0)
			continue;
		e->flags |= LP_F_REMOVED;
		if (e->kind == LP_DIR)
			continue;
		if (strcmp(a->pkg, d.pkg) != 0) {
			r = agg_flush(a, extra_patterns, rep);
			if (r < 0)
				goto out;
			snprintf(a->pkg, sizeof(a->pkg), "%s", d.pkg);
		}
		{
			size_t j = 0;

			while (j < a->n && a->v[j].rule != k)
				j++;
			if (j == a->n) {
				if (a->n == sizeof(a->v) / sizeof(a->v[0])) {
					r = agg_flush(a, extra_patterns, rep);
					if (r < 0)
						goto out;
					snprintf(a->pkg, sizeof(a->pkg), "%s", d.pkg);
					j = 0;
				}
				a->v[j].rule = k;
				a->v[j].files = 0;
				a->v[j].bytes = 0;
				a->n = j + 1;
			}
			a->v[j].files++;
			a->v[j].bytes += e->kind == LP_FILE ? e->size : 0;
		}
	}
	r = agg_flush(a, extra_patterns, rep);
out:
	lp_deps_free(&ds);
	free(a);
	return r;
}

/* --- the pipeline --------------------------------------------------------- */

/* Which directories have at least one child entry (before pruning). */
static uint8_t *dirs_with_children(const struct lp_entries *l)
{
	uint8_t *had = calloc(l->n ? l->n : 1, 1);

	if (!had)
		return NULL;
	for (size_t i = 0; i < l->n; i++) {
		size_t plen = lp_path_parent_len(l->v[i].path);
		char buf[4096];
		struct lp_entry *p;

		if (!plen || plen >= sizeof(buf))
			continue;
		memcpy(buf, l->v[i].path, plen);
		buf[plen] = '\0';
		if ((p = lp_entries_find(l, buf)) && p->kind == LP_DIR)
			had[p - l->v] = 1;
	}
	return had;
}

/*
 * Remove the directories pruning emptied: a directory that had children and
 * now has none left (at any depth). A directory that was empty in the input
 * stays. had is from dirs_with_children() on the same list.
 */
static void prune_emptied_dirs(struct lp_entries *l, const uint8_t *had)
{
	uint8_t *alive = calloc(l->n ? l->n : 1, 1);

	if (!alive)
		return;		/* keeping a directory is harmless */
	for (size_t i = 0; i < l->n; i++) {
		const struct lp_entry *e = &l->v[i];
		char buf[4096];
		size_t plen;

		if ((e->flags & LP_F_REMOVED) || (e->kind == LP_DIR && had[i]))
			continue;
		/* A kept file, link or originally empty directory keeps its ancestors. */
		snprintf(buf, sizeof(buf), "%s", e->path);
		while ((plen = lp_path_parent_len(buf)) > 0) {
			struct lp_entry *p;

			buf[plen] = '\0';
			p = lp_entries_find(l, buf);
			if (!p || alive[p - l->v])
				break;
			alive[p - l->v] = 1;
		}
	}
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].kind == LP_DIR && had[i] && !alive[i])
			l->v[i].flags |= LP_F_REMOVED;
	free(alive);
}

static size_t count_files(const struct lp_entries *l, uint32_t flag)
{
	size_t n = 0;

	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].kind == LP_FILE && (l->v[i].flags & flag))
			n++;
	return n;
}

int lp_optimize(struct lp_entries *l, const struct lp_opt_set *set, struct lp_report *rep,
		struct lp_opt_saved *saved)
{
	struct lp_opt_saved sv = { 0 };
	enum lp_arch arch = set->arch;
	uint8_t *had = NULL;
	uint64_t before = lp_entries_unzipped_size(l), at = before, now;
	size_t n0 = count_files(l, LP_F_REMOVED);
	int r;

	if (arch == LP_ARCH_UNKNOWN)
		arch = lp_detect_arch(l);
	if (set->prune_foreign || set->prune_junk || set->prune_dev) {
		had = dirs_with_children(l);
		if (!had)
			return -ENOMEM;
	}
	/* First: what npm says is not needed goes before anything inspects it. */
	if (set->prune_dev && (r = lp_opt_prune_dev(l, arch, rep, &sv)) < 0)
		goto out;
	at = lp_entries_unzipped_size(l);
	n0 = count_files(l, LP_F_REMOVED);
	if (set->prune_foreign && (r = lp_opt_prune_foreign(l, arch, rep)) < 0)
		goto out;
	now = lp_entries_unzipped_size(l);
	sv.foreign = at - now;
	sv.n_foreign = count_files(l, LP_F_REMOVED) - n0;
	at = now;
	if (set->prune_junk && (r = lp_opt_prune_junk(l, set->junk_patterns, rep)) < 0)
		goto out;
	now = lp_entries_unzipped_size(l);
	sv.junk = at - now;
	sv.n_junk = count_files(l, LP_F_REMOVED) - n0 - sv.n_foreign;
	at = now;
	if (had)
		prune_emptied_dirs(l, had);
	free(had);
	had = NULL;
	lp_entries_compact(l);
	if (set->strip) {
		r = set->stage_dir ? lp_opt_strip(l, set->stage_dir, set->cache_dir, set->threads, rep) :
				     strip_plan(l, rep);
		if (r < 0)
			return r;
	}
	now = lp_entries_unzipped_size(l);
	sv.strip = at - now;
	sv.n_strip = count_files(l, LP_F_STRIPPED);
	at = now;
	if (set->dedupe != LP_DEDUPE_OFF && (r = dedupe_run(l, set->dedupe, set->stage_dir != NULL, rep)) < 0)
		return r;
	now = lp_entries_unzipped_size(l);
	sv.dedupe = at - now;
	sv.n_dedupe = count_files(l, LP_F_DUPLICATE);
	sv.total = before - now;
	if (saved)
		*saved = sv;
	return 0;
out:
	free(had);
	return r;
}
