/* SPDX-License-Identifier: MIT */
#include "core/classify.h"
#include "core/elf.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "core/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

int lp_entry_sniff(struct lp_entry *e, const uint8_t *p, size_t n)
{
	e->binfmt = (uint8_t)lp_bin_sniff(p, n);
	if (n >= 2 && p[0] == '#' && p[1] == '!')
		e->flags |= LP_F_SCRIPT | LP_F_EXEC;
	if (e->binfmt == LP_BIN_ELF && n >= 52 && elf_head_is_program(p, n))
		e->flags |= LP_F_EXEC;
	return 0;
}

void lp_entry_finish_mode(struct lp_entry *e)
{
	if (e->bin && e->bin->is_pie_or_exec)
		e->flags |= LP_F_EXEC;
	e->mode = (e->flags & LP_F_EXEC) ? 0755 : 0644;
	e->flags |= LP_F_SNIFFED;
}

#define FACT_VALID	1u
#define FACT_SCRIPT	2u
#define FACT_BINFMT_SHIFT	8

uint32_t lp_entry_sniff_facts(const struct lp_entry *e)
{
	if (!(e->flags & LP_F_SNIFFED))
		return 0;
	return FACT_VALID | ((e->flags & LP_F_SCRIPT) ? FACT_SCRIPT : 0) | (uint32_t)e->binfmt << FACT_BINFMT_SHIFT;
}

bool lp_entry_apply_sniff_facts(struct lp_entry *e, uint32_t facts)
{
	if (!(facts & FACT_VALID) || (uint8_t)(facts >> FACT_BINFMT_SHIFT) != LP_BIN_NONE)
		return false;
	e->binfmt = LP_BIN_NONE;
	if (facts & FACT_SCRIPT)
		e->flags |= LP_F_SCRIPT | LP_F_EXEC;
	lp_entry_finish_mode(e);
	return true;
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
		r = lp_cancelled() ? lp_fail(-EINTR, NULL, "interrupted") : p->fn(i, p->ctx);
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
	lp_entry_sniff(e, head, headn);
	if (c->binfo && e->binfmt != LP_BIN_NONE && !e->bin)
		(void)lp_binfo_read_fd(fd, &e->bin);
	lp_entry_finish_mode(e);
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
