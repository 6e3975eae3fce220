/* SPDX-License-Identifier: MIT */
/*
 * The image: base layers (reused as they are), our layers (container/plan.c
 * decides which entries go where, container/layer.c writes each one), the
 * config, the manifest, index.json and oci-layout. Written into a temporary
 * sibling of the output and renamed into place at the end; for FILE.tar the
 * finished layout is wrapped in one deterministic tar with a Docker
 * manifest.json beside index.json so docker load reads it too.
 */
#include "container/oci.h"
#include "cache/cache.h"
#include "core/progress.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "core/hash.h"
#include "core/util.h"
#include "input/input.h"

#include <archive.h>
#include <archive_entry.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define REF_NAME	"org.opencontainers.image.ref.name"

void lp_oci_result_free(struct lp_oci_result *r)
{
	for (size_t i = 0; i < r->n_layers; i++)
		free(r->layers[i].created_by);
	free(r->layers);
	r->layers = NULL;
	r->n_layers = 0;
}

static bool has_suffix(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);

	return a >= b && strcmp(s + a - b, suf) == 0;
}

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* annotations.md: component ("/" component)*, component = alnum (separator alnum)*. */
static bool valid_ref_name(const char *s)
{
	bool need_alnum = true;

	if (!*s)
		return false;
	for (const char *p = s; *p; p++) {
		if (is_alnum(*p)) {
			need_alnum = false;
			continue;
		}
		if (need_alnum)
			return false;
		if (*p == '/' || strchr("-._:@+", *p)) {
			if (p[0] == '-' && p[1] == '-')
				p++;
			need_alnum = true;
			continue;
		}
		return false;
	}
	return !need_alnum;
}

static const char *oci_arch(enum lp_arch a)
{
	return a == LP_ARCH_X86_64 ? "amd64" : a == LP_ARCH_ARM64 ? "arm64" : NULL;
}

/* The architecture the function's own ELF binaries are built for (most common wins). */
static enum lp_arch detect_arch(const struct lp_entries *l)
{
	size_t x86 = 0, arm = 0;

	for (size_t i = 0; i < l->n; i++) {
		const struct lp_binfo *b = l->v[i].bin;

		if (!b || b->fmt != LP_BIN_ELF || (l->v[i].flags & LP_F_REMOVED))
			continue;
		if (b->arch == LP_ARCH_X86_64)
			x86++;
		else if (b->arch == LP_ARCH_ARM64)
			arm++;
	}
	if (!x86 && !arm)
		return LP_ARCH_UNKNOWN;
	return arm > x86 ? LP_ARCH_ARM64 : LP_ARCH_X86_64;
}

static void rfc3339(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static char *join(const char *a, const char *b)
{
	size_t len = strlen(a) + strlen(b) + 2;
	char *p = malloc(len);

	if (p)
		snprintf(p, len, "%s/%s", a, b);
	return p;
}

/* Write a small blob (config, manifest) under its digest; fills digest and size. */
static int put_blob(const char *blobdir, const char *data, size_t len, char digest[LP_OCI_DIGEST_LEN])
{
	uint8_t d[32];
	char *path;
	int fd, r;

	lp_sha256(data, len, d);
	memcpy(digest, "sha256:", 7);
	lp_hex(d, 32, digest + 7);
	path = join(blobdir, digest + 7);
	if (!path)
		return -ENOMEM;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = lp_fail(-errno, path, "cannot create: %s", strerror(errno));
		free(path);
		return r;
	}
	r = lp_write_all(fd, data, len);
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0)
		r = lp_fail(r, path, "cannot write: %s", strerror(-r));
	free(path);
	return r;
}

static int put_file(const char *dir, const char *name, const char *data)
{
	char *path = join(dir, name);
	int fd, r;

	if (!path)
		return -ENOMEM;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = lp_fail(-errno, path, "cannot create: %s", strerror(errno));
		free(path);
		return r;
	}
	r = lp_write_all(fd, data, strlen(data));
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0)
		r = lp_fail(r, path, "cannot write: %s", strerror(-r));
	free(path);
	return r;
}

/* ---- writing our layers, several at a time ---- */

struct job {
	const struct lp_oci_layer_plan *lp;
	struct lp_oci_blob blob;
	char *tmp;
	int err;
	char errmsg[1024];
};

struct pool {
	const struct lp_entries *l;
	const struct lp_oci_opts *o;
	struct job *jobs;
	size_t *order;		/* biggest first, for balance; never affects bytes */
	size_t n, next;
	unsigned per_layer_threads;
	bool stop;
	pthread_mutex_t mu;
};

static int run_job(struct pool *p, struct job *j)
{
	return lp_oci_write_layer(p->l, j->lp, p->o, p->per_layer_threads, j->tmp, &j->blob);
}

static void *worker(void *arg)
{
	struct pool *p = arg;

	for (;;) {
		struct job *j;

		pthread_mutex_lock(&p->mu);
		if (p->stop || p->next == p->n) {
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		j = &p->jobs[p->order[p->next++]];
		pthread_mutex_unlock(&p->mu);
		lp_errmsg_clear();
		j->err = run_job(p, j);
		if (j->err < 0) {
			snprintf(j->errmsg, sizeof(j->errmsg), "%s", lp_errmsg());
			pthread_mutex_lock(&p->mu);
			p->stop = true;
			pthread_mutex_unlock(&p->mu);
		}
	}
}

static struct pool *pool_sort_ctx;

static int cmp_job(const void *a, const void *b)
{
	const struct job *ja = &pool_sort_ctx->jobs[*(const size_t *)a];
	const struct job *jb = &pool_sort_ctx->jobs[*(const size_t *)b];

	if (ja->lp->bytes != jb->lp->bytes)
		return ja->lp->bytes > jb->lp->bytes ? -1 : 1;
	return ja < jb ? -1 : ja > jb;
}

static int write_layers(const struct lp_entries *l, const struct lp_oci_opts *o, const struct lp_oci_plan *plan,
			const char *blobdir, unsigned threads, struct job *jobs)
{
	static pthread_mutex_t sort_mu = PTHREAD_MUTEX_INITIALIZER;
	struct pool p = { .l = l, .o = o, .jobs = jobs, .n = plan->n };
	unsigned workers = threads < plan->n ? threads : (unsigned)plan->n;
	pthread_t *tids = NULL;
	unsigned started = 0;
	int r = 0;

	if (workers == 0)
		workers = 1;
	/*
	 * Every layer may use every thread: while one layer waits on its
	 * reads another compresses, and the last layer running alone still
	 * gets all cores. The bytes do not depend on this.
	 */
	p.per_layer_threads = threads;
	p.order = calloc(plan->n ? plan->n : 1, sizeof(*p.order));
	tids = calloc(workers, sizeof(*tids));
	if (!p.order || !tids) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < plan->n; i++) {
		char name[64];

		jobs[i].lp = &plan->v[i];
		snprintf(name, sizeof(name), ".layer-%zu.tmp", i);
		jobs[i].tmp = join(blobdir, name);
		if (!jobs[i].tmp) {
			r = -ENOMEM;
			goto out;
		}
		p.order[i] = i;
	}
	pthread_mutex_lock(&sort_mu);
	pool_sort_ctx = &p;
	qsort(p.order, p.n, sizeof(*p.order), cmp_job);
	pthread_mutex_unlock(&sort_mu);
	pthread_mutex_init(&p.mu, NULL);
	if (workers == 1) {
		worker(&p);
	} else {
		for (; started < workers; started++)
			if (pthread_create(&tids[started], NULL, worker, &p) != 0)
				break;
		if (started == 0)
			worker(&p);
		for (unsigned i = 0; i < started; i++)
			pthread_join(tids[i], NULL);
	}
	pthread_mutex_destroy(&p.mu);
	/* Report the failure of the lowest layer, so the message does not depend on timing. */
	for (size_t i = 0; i < plan->n; i++) {
		if (jobs[i].err < 0) {
			lp_errmsg_set(jobs[i].errmsg);
			r = jobs[i].err;
			goto out;
		}
	}
	for (size_t i = 0; i < plan->n; i++) {
		char *final = join(blobdir, jobs[i].blob.digest + 7);

		if (!final) {
			r = -ENOMEM;
			goto out;
		}
		if (rename(jobs[i].tmp, final) < 0)
			r = lp_fail(-errno, final, "cannot rename: %s", strerror(errno));
		free(final);
		if (r < 0)
			goto out;
	}
out:
	free(p.order);
	free(tids);
	return r;
}

/* ---- sizes: the 10 GiB budget ---- */

struct contrib {
	char *label;
	uint64_t bytes;
};

static int cmp_contrib_key(const void *a, const void *b)
{
	return strcmp(((const struct contrib *)a)->label, ((const struct contrib *)b)->label);
}

static int cmp_contrib_size(const void *a, const void *b)
{
	const struct contrib *x = a, *y = b;

	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	return strcmp(x->label, y->label);
}

/* Name the biggest base layers and top-level directories in the error and the report. */
static int too_big(const struct lp_entries *l, const struct lp_oci_base *base, uint64_t used,
		   const struct lp_oci_opts *o)
{
	struct contrib *c = calloc(l->n + base->n + 1, sizeof(*c));
	size_t n = 0, w = 0;
	char msg[600] = "", hs[32];
	int r = -LP_E_TOOBIG;

	if (!c)
		return -ENOMEM;
	for (size_t i = 0; i < base->n; i++) {
		char lab[96];

		snprintf(lab, sizeof(lab), "base layer %zu (%.19s)", i + 1, base->layers[i].digest);
		c[n].label = strdup(lab);
		c[n++].bytes = base->layers[i].usize;
	}
	for (size_t i = 0; i < l->n; i++) {
		const struct lp_entry *e = &l->v[i];
		const char *s = strchr(e->path, '/');

		if (e->kind == LP_DIR || (e->flags & LP_F_REMOVED))
			continue;
		/* The first two components: "node_modules/aws-sdk", "opt/python", "models/w.bin". */
		s = s ? strchr(s + 1, '/') : NULL;
		c[n].label = s ? strndup(e->path, (size_t)(s - e->path)) : strdup(e->path);
		c[n++].bytes = e->size;
	}
	for (size_t i = 0; i < n; i++)
		if (!c[i].label)
			goto out;
	qsort(c, n, sizeof(*c), cmp_contrib_key);
	for (size_t i = 0; i < n; i++) {
		if (w && strcmp(c[w - 1].label, c[i].label) == 0) {
			c[w - 1].bytes += c[i].bytes;
			free(c[i].label);
			c[i].label = NULL;
			continue;
		}
		c[w++] = c[i];
	}
	n = w;
	qsort(c, n, sizeof(*c), cmp_contrib_size);
	for (size_t i = 0; i < n && i < 5; i++) {
		size_t len = strlen(msg);

		lp_human_size(c[i].bytes, hs, sizeof(hs));
		snprintf(msg + len, sizeof(msg) - len, "%s%s %s", i ? ", " : "", c[i].label, hs);
		if (o->report)
			lp_report_finding(o->report, LP_SEV_ERROR, "image-too-big", c[i].label,
					  "contributes %llu bytes to an image of %llu (limit %llu)",
					  (unsigned long long)c[i].bytes, (unsigned long long)used,
					  (unsigned long long)LP_LIMIT_IMAGE);
	}
	lp_human_size(used, hs, sizeof(hs));
	r = lp_fail(-LP_E_TOOBIG, o->output, "image would be %s uncompressed, over Lambda's 10 GiB; largest: %s",
		    hs, msg);
out:
	for (size_t i = 0; i < n; i++)
		free(c[i].label);
	free(c);
	return r;
}

/* Tar size of a layer before writing it: headers, data padded to 512, the end blocks. */
static uint64_t estimate_layer(const struct lp_entries *l, const struct lp_oci_layer_plan *lp)
{
	uint64_t t = 1024 + 512 * 4;	/* end-of-archive + the task root's ancestors */

	for (size_t i = 0; i < lp->n; i++) {
		const struct lp_entry *e = &l->v[lp->idx[i]];

		t += 512;
		if (e->kind == LP_FILE)
			t += (e->size + 511) & ~511ULL;
	}
	return t;
}

/* ---- JSON ---- */

static cJSON *str_array(const char *const *v, size_t n)
{
	cJSON *a = cJSON_CreateArray();

	for (size_t i = 0; a && i < n; i++) {
		cJSON *s = cJSON_CreateString(v[i]);

		if (!s) {
			cJSON_Delete(a);
			return NULL;
		}
		cJSON_AddItemToArray(a, s);
	}
	return a;
}

/* Set obj[key] = item (replacing, keeping the position); takes item; false on NULL item. */
static bool set_item(cJSON *obj, const char *key, cJSON *item)
{
	if (!item)
		return false;
	if (cJSON_GetObjectItemCaseSensitive(obj, key))
		return cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item);
	return cJSON_AddItemToObject(obj, key, item);
}

static bool env_has(const cJSON *env, const char *kv, size_t klen, cJSON **ret)
{
	cJSON *e;

	cJSON_ArrayForEach(e, env) {
		if (cJSON_IsString(e) && strncmp(e->valuestring, kv, klen) == 0 && e->valuestring[klen] == '=') {
			if (ret)
				*ret = e;
			return true;
		}
	}
	return false;
}

static int merge_env(cJSON *cfg, const struct lp_oci_opts *o, const char *task_root)
{
	cJSON *env = cJSON_GetObjectItemCaseSensitive(cfg, "Env");
	char buf[4200];

	if (!cJSON_IsArray(env)) {
		if (!set_item(cfg, "Env", cJSON_CreateArray()))
			return -ENOMEM;
		env = cJSON_GetObjectItemCaseSensitive(cfg, "Env");
	}
	for (size_t i = 0; i < o->n_env; i++) {
		const char *eq = strchr(o->env[i], '=');
		cJSON *old = NULL, *s;

		if (!eq || eq == o->env[i])
			return lp_fail(-LP_E_USAGE, o->env[i], "environment setting must be KEY=VALUE");
		s = cJSON_CreateString(o->env[i]);
		if (!s)
			return -ENOMEM;
		if (env_has(env, o->env[i], (size_t)(eq - o->env[i]), &old))
			cJSON_ReplaceItemViaPointer(env, old, s);
		else
			cJSON_AddItemToArray(env, s);
	}
	if (!env_has(env, "LAMBDA_TASK_ROOT", 16, NULL)) {
		cJSON *s;

		snprintf(buf, sizeof(buf), "LAMBDA_TASK_ROOT=%s", task_root);
		s = cJSON_CreateString(buf);
		if (!s)
			return -ENOMEM;
		cJSON_AddItemToArray(env, s);
	}
	return 0;
}

static int build_run_config(cJSON *cfg, const struct lp_entries *l, const struct lp_oci_opts *o,
			    const char *task_root)
{
	const cJSON *wd = cJSON_GetObjectItemCaseSensitive(cfg, "WorkingDir");
	const char *handler[1] = { o->handler };
	char ep[4200];
	const char *epv[1] = { ep };
	int r;

	r = merge_env(cfg, o, task_root);
	if (r < 0)
		return r;
	if (o->entrypoint) {
		if (o->entrypoint[0] == '/')
			snprintf(ep, sizeof(ep), "%s", o->entrypoint);
		else
			snprintf(ep, sizeof(ep), "%s/%s", strcmp(task_root, "/") ? task_root : "", o->entrypoint);
		if (!set_item(cfg, "Entrypoint", str_array(epv, 1)))
			return -ENOMEM;
		/* As a Dockerfile ENTRYPOINT does: the base's Cmd was for the old entrypoint. */
		cJSON_DeleteItemFromObjectCaseSensitive(cfg, "Cmd");
	} else if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(cfg, "Entrypoint")) ||
		   cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(cfg, "Entrypoint")) == 0) {
		const struct lp_entry *b = lp_entries_find(l, "bootstrap");

		/* A custom runtime FROM scratch: its bootstrap is what Lambda runs. */
		if (b && b->kind != LP_DIR && !(b->flags & LP_F_REMOVED)) {
			snprintf(ep, sizeof(ep), "%s/bootstrap", strcmp(task_root, "/") ? task_root : "");
			if (!set_item(cfg, "Entrypoint", str_array(epv, 1)))
				return -ENOMEM;
		}
	}
	if (o->handler && !set_item(cfg, "Cmd", str_array(handler, 1)))
		return -ENOMEM;
	if (o->workdir) {
		if (!set_item(cfg, "WorkingDir", cJSON_CreateString(o->workdir)))
			return -ENOMEM;
	} else if (!cJSON_IsString(wd) || !wd->valuestring[0]) {
		if (!set_item(cfg, "WorkingDir", cJSON_CreateString(task_root)))
			return -ENOMEM;
	}
	return 0;
}

static char *history_text(const struct lp_oci_layer_plan *lp, const char *task_root)
{
	static const char *const names[] = { "/opt content", "dependencies", "function code" };
	char buf[1024];

	if (lp->group == LP_OCI_G_CODE)
		snprintf(buf, sizeof(buf), "lambdapack container: function code in %s", task_root);
	else
		snprintf(buf, sizeof(buf), "lambdapack container: %s %u/%u (%s .. %s)", names[lp->group],
			 lp->part, lp->nparts, lp->first_unit ? lp->first_unit : "",
			 lp->last_unit ? lp->last_unit : "");
	return strdup(buf);
}

static cJSON *descriptor(const char *mt, const char *digest, uint64_t size)
{
	cJSON *d = cJSON_CreateObject();

	if (!d)
		return NULL;
	if (!cJSON_AddStringToObject(d, "mediaType", mt) || !cJSON_AddStringToObject(d, "digest", digest) ||
	    !cJSON_AddNumberToObject(d, "size", (double)size)) {
		cJSON_Delete(d);
		return NULL;
	}
	return d;
}

static int build_config(const struct lp_entries *l, const struct lp_oci_opts *o, const struct lp_oci_base *base,
			const struct lp_oci_result *res, const char *task_root, char **ret)
{
	cJSON *cfg = base->config ? cJSON_Duplicate(base->config, true) : cJSON_CreateObject();
	cJSON *run, *rootfs, *ids, *hist;
	char created[32];
	int r = -ENOMEM;

	if (!cfg)
		return -ENOMEM;
	rfc3339(o->epoch, created);
	if (!set_item(cfg, "created", cJSON_CreateString(created)) ||
	    !set_item(cfg, "architecture", cJSON_CreateString(res->arch)) ||
	    !set_item(cfg, "os", cJSON_CreateString("linux")))
		goto out;
	run = cJSON_GetObjectItemCaseSensitive(cfg, "config");
	if (!cJSON_IsObject(run)) {
		if (!set_item(cfg, "config", cJSON_CreateObject()))
			goto out;
		run = cJSON_GetObjectItemCaseSensitive(cfg, "config");
	}
	r = build_run_config(run, l, o, task_root);
	if (r < 0)
		goto out;
	r = -ENOMEM;
	rootfs = cJSON_CreateObject();
	if (!set_item(cfg, "rootfs", rootfs) || !cJSON_AddStringToObject(rootfs, "type", "layers") ||
	    !(ids = cJSON_AddArrayToObject(rootfs, "diff_ids")))
		goto out;
	for (size_t i = 0; i < res->n_layers; i++) {
		cJSON *s = cJSON_CreateString(res->layers[i].diff_id);

		if (!s)
			goto out;
		cJSON_AddItemToArray(ids, s);
	}
	hist = cJSON_GetObjectItemCaseSensitive(cfg, "history");
	if (!cJSON_IsArray(hist) || cJSON_GetArraySize(hist) == 0) {
		if (!set_item(cfg, "history", cJSON_CreateArray()))
			goto out;
		hist = cJSON_GetObjectItemCaseSensitive(cfg, "history");
		for (size_t i = 0; i < res->n_base_layers; i++) {
			cJSON *h = cJSON_CreateObject();

			if (!h)
				goto out;
			cJSON_AddItemToArray(hist, h);
			if (!cJSON_AddStringToObject(h, "created_by", "base image layer"))
				goto out;
		}
	}
	for (size_t i = res->n_base_layers; i < res->n_layers; i++) {
		cJSON *h = cJSON_CreateObject();

		if (!h)
			goto out;
		cJSON_AddItemToArray(hist, h);
		if (!cJSON_AddStringToObject(h, "created", created) ||
		    !cJSON_AddStringToObject(h, "created_by", res->layers[i].created_by) ||
		    !cJSON_AddStringToObject(h, "comment", "lambdapack " LP_VERSION))
			goto out;
	}
	*ret = cJSON_PrintUnformatted(cfg);
	r = *ret ? 0 : -ENOMEM;
out:
	cJSON_Delete(cfg);
	return r;
}

static int build_manifest(const struct lp_oci_result *res, uint64_t cfg_size, char **ret)
{
	cJSON *m = cJSON_CreateObject(), *layers;
	int r = -ENOMEM;

	if (!m)
		return -ENOMEM;
	if (!cJSON_AddNumberToObject(m, "schemaVersion", 2) ||
	    !cJSON_AddStringToObject(m, "mediaType", LP_OCI_MT_MANIFEST) ||
	    !set_item(m, "config", descriptor(LP_OCI_MT_CONFIG, res->config_digest, cfg_size)) ||
	    !(layers = cJSON_AddArrayToObject(m, "layers")))
		goto out;
	for (size_t i = 0; i < res->n_layers; i++) {
		cJSON *d = descriptor(res->layers[i].media_type, res->layers[i].digest, res->layers[i].size);

		if (!d)
			goto out;
		cJSON_AddItemToArray(layers, d);
	}
	*ret = cJSON_PrintUnformatted(m);
	r = *ret ? 0 : -ENOMEM;
out:
	cJSON_Delete(m);
	return r;
}

static int build_index(const struct lp_oci_result *res, const char *variant, const char *tag, char **ret)
{
	cJSON *idx = cJSON_CreateObject(), *arr, *d, *pl, *an;
	int r = -ENOMEM;

	if (!idx)
		return -ENOMEM;
	if (!cJSON_AddNumberToObject(idx, "schemaVersion", 2) ||
	    !cJSON_AddStringToObject(idx, "mediaType", LP_OCI_MT_INDEX) ||
	    !(arr = cJSON_AddArrayToObject(idx, "manifests")))
		goto out;
	d = descriptor(LP_OCI_MT_MANIFEST, res->manifest_digest, res->manifest_size);
	if (!d)
		goto out;
	cJSON_AddItemToArray(arr, d);
	if (!(pl = cJSON_AddObjectToObject(d, "platform")) ||
	    !cJSON_AddStringToObject(pl, "architecture", res->arch) || !cJSON_AddStringToObject(pl, "os", "linux") ||
	    (variant && !cJSON_AddStringToObject(pl, "variant", variant)) ||
	    !(an = cJSON_AddObjectToObject(d, "annotations")) || !cJSON_AddStringToObject(an, REF_NAME, tag))
		goto out;
	*ret = cJSON_PrintUnformatted(idx);
	r = *ret ? 0 : -ENOMEM;
out:
	cJSON_Delete(idx);
	return r;
}

/* docker load's classic loader reads this; paths point into the OCI blobs. */
static int build_docker_manifest(const struct lp_oci_result *res, const struct lp_oci_opts *o, const char *tag,
				 char **ret)
{
	cJSON *arr = cJSON_CreateArray(), *img, *tags, *layers;
	char buf[600];
	const char *slash = strrchr(tag, '/');
	int r = -ENOMEM;

	if (!arr)
		return -ENOMEM;
	img = cJSON_CreateObject();
	if (!img)
		goto out;
	cJSON_AddItemToArray(arr, img);
	snprintf(buf, sizeof(buf), "blobs/sha256/%s", res->config_digest + 7);
	if (!cJSON_AddStringToObject(img, "Config", buf) || !(tags = cJSON_AddArrayToObject(img, "RepoTags")))
		goto out;
	/* "name:tag" as given, else our default repository name with the tag. */
	if (strchr(slash ? slash : tag, ':'))
		snprintf(buf, sizeof(buf), "%s", tag);
	else
		snprintf(buf, sizeof(buf), "%s:%s", o->repo_name ? o->repo_name : "lambda-function", tag);
	cJSON_AddItemToArray(tags, cJSON_CreateString(buf));
	if (cJSON_GetArraySize(tags) != 1 || !(layers = cJSON_AddArrayToObject(img, "Layers")))
		goto out;
	for (size_t i = 0; i < res->n_layers; i++) {
		cJSON *s;

		snprintf(buf, sizeof(buf), "blobs/sha256/%s", res->layers[i].digest + 7);
		s = cJSON_CreateString(buf);
		if (!s)
			goto out;
		cJSON_AddItemToArray(layers, s);
	}
	*ret = cJSON_PrintUnformatted(arr);
	r = *ret ? 0 : -ENOMEM;
out:
	cJSON_Delete(arr);
	return r;
}

/* ---- the oci-archive tar ---- */

static int tar_add(struct archive *a, struct archive_entry *ae, const char *dir, const char *name, bool is_dir,
		   int64_t epoch)
{
	char *path = join(dir, name);
	struct stat st;
	uint8_t *buf = NULL;
	int fd = -1, r = 0;

	if (!path)
		return -ENOMEM;
	archive_entry_clear(ae);
	archive_entry_set_pathname_utf8(ae, name);
	archive_entry_set_mtime(ae, (time_t)epoch, 0);
	if (is_dir) {
		archive_entry_set_filetype(ae, AE_IFDIR);
		archive_entry_set_perm(ae, 0755);
	} else {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0) {
			r = lp_fail(-errno, path, "cannot read: %s", strerror(errno));
			goto out;
		}
		archive_entry_set_filetype(ae, AE_IFREG);
		archive_entry_set_perm(ae, 0644);
		archive_entry_set_size(ae, st.st_size);
	}
	if (archive_write_header(a, ae) != ARCHIVE_OK) {
		r = lp_fail(-EIO, name, "cannot write archive: %s",
			     archive_error_string(a) ? archive_error_string(a) : "unknown error");
		goto out;
	}
	if (fd >= 0) {
		buf = malloc(1 << 20);
		if (!buf) {
			r = -ENOMEM;
			goto out;
		}
		for (;;) {
			ssize_t got = read(fd, buf, 1 << 20);

			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0) {
				r = lp_fail(-errno, path, "read failed: %s", strerror(errno));
				goto out;
			}
			if (got == 0)
				break;
			if ((r = lp_check_cancel(path)) < 0)
				goto out;
			if (archive_write_data(a, buf, (size_t)got) != got) {
				r = lp_fail(-EIO, name, "cannot write archive: %s",
					     archive_error_string(a) ? archive_error_string(a) : "unknown error");
				goto out;
			}
		}
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(path);
	return r;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int write_archive(const char *layout, const char *output, int64_t epoch)
{
	static const char *const top[] = { "index.json", "manifest.json", "oci-layout" };
	struct lp_outfile of;
	struct archive *a = NULL;
	struct archive_entry *ae = NULL;
	struct lp_strv blobs = { 0 };
	char *blobdir = join(layout, "blobs/sha256");
	DIR *d = NULL;
	struct dirent *de;
	int r;

	if (!blobdir)
		return -ENOMEM;
	d = opendir(blobdir);
	if (!d) {
		r = lp_fail(-errno, blobdir, "cannot list: %s", strerror(errno));
		free(blobdir);
		return r;
	}
	r = 0;
	while (r == 0 && (de = readdir(d))) {
		char name[320];

		if (de->d_name[0] == '.')
			continue;
		snprintf(name, sizeof(name), "blobs/sha256/%s", de->d_name);
		r = lp_strv_push(&blobs, name);
	}
	closedir(d);
	free(blobdir);
	if (r < 0)
		goto out_list;
	qsort(blobs.v, blobs.n, sizeof(*blobs.v), cmp_str);
	r = lp_outfile_open(&of, output);
	if (r < 0)
		goto out_list;
	a = archive_write_new();
	ae = archive_entry_new();
	if (!a || !ae) {
		r = -ENOMEM;
		goto out;
	}
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(a, 64 * 1024) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    archive_write_open_fd(a, of.fd) != ARCHIVE_OK) {
		r = lp_fail(-EIO, output, "cannot start archive: %s",
			     archive_error_string(a) ? archive_error_string(a) : "unknown error");
		goto out;
	}
	/* strcmp order: blobs/, blobs/sha256/, the blobs, then the top-level files. */
	r = tar_add(a, ae, layout, "blobs", true, epoch);
	if (r == 0)
		r = tar_add(a, ae, layout, "blobs/sha256", true, epoch);
	for (size_t i = 0; r == 0 && i < blobs.n; i++) {
		r = lp_check_cancel(output);
		if (r == 0)
			r = tar_add(a, ae, layout, blobs.v[i], false, epoch);
	}
	for (size_t i = 0; r == 0 && i < sizeof(top) / sizeof(top[0]); i++)
		r = tar_add(a, ae, layout, top[i], false, epoch);
	if (r < 0)
		goto out;
	if (archive_write_close(a) != ARCHIVE_OK) {
		r = lp_fail(-EIO, output, "cannot finish archive: %s",
			     archive_error_string(a) ? archive_error_string(a) : "unknown error");
		goto out;
	}
	archive_write_free(a);
	a = NULL;
	r = lp_outfile_commit(&of);
	goto out_list;
out:
	if (a)
		archive_write_free(a);
	lp_outfile_abort(&of);
out_list:
	archive_entry_free(ae);
	lp_strv_free(&blobs);
	return r;
}

/* ---- an existing layout as the output: add the image, keep the rest ---- */

#define INDEX_MAX	(64u << 20)

static char *strip_slashes(const char *path)
{
	char *c = strdup(path);
	size_t len;

	if (!c)
		return NULL;
	len = strlen(c);
	while (len > 1 && c[len - 1] == '/')
		c[--len] = '\0';
	return c;
}

static int read_index(const char *layout, cJSON **ret)
{
	char *path = join(layout, "index.json"), *buf = NULL;
	cJSON *idx = NULL;
	size_t len;
	int r;

	if (!path)
		return -ENOMEM;
	r = lp_read_file(path, INDEX_MAX, &buf, &len);
	if (r < 0)
		goto out;
	idx = cJSON_ParseWithLength(buf, len);
	if (!cJSON_IsObject(idx) || !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(idx, "manifests"))) {
		r = lp_fail(-LP_E_BADIMAGE, path, "not an OCI image index (no manifests array); "
			    "refusing to change this layout (give an empty or new directory)");
		cJSON_Delete(idx);
		idx = NULL;
		goto out;
	}
	*ret = idx;
out:
	free(buf);
	free(path);
	return r;
}

static bool is_kind(const char *dir, const char *name, mode_t kind)
{
	char *p = join(dir, name);
	struct stat st;
	bool ok;

	if (!p)
		return false;
	/* kind 0: anything at all. */
	ok = lstat(p, &st) == 0 && (!kind || (st.st_mode & S_IFMT) == kind);
	free(p);
	return ok;
}

int lp_oci_output_check(const char *path, bool *ret_layout)
{
	char *clean;
	struct stat st;
	struct dirent *de;
	bool empty = true;
	cJSON *idx = NULL;
	DIR *d;
	int r = 0;

	if (ret_layout)
		*ret_layout = false;
	if (has_suffix(path, ".tar"))
		return lp_output_check_file(path);
	/* Without the trailing '/', lstat() sees a symlink rather than its target. */
	clean = strip_slashes(path);
	if (!clean)
		return -ENOMEM;
	if (lstat(clean, &st) < 0) {
		if (errno != ENOENT)
			r = lp_fail(-errno, path, "cannot check the output path: %s", strerror(errno));
		goto out;
	}
	if (S_ISLNK(st.st_mode)) {
		r = lp_fail(-EEXIST, path, "output is a symbolic link; refusing to write through it "
			    "(give an empty or new directory)");
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		r = lp_fail(-EEXIST, path, "output exists and is not a directory; refusing to replace it "
			    "(give an empty or new directory, or FILE.tar for an oci-archive)");
		goto out;
	}
	d = opendir(clean);
	if (!d) {
		r = lp_fail(-errno, path, "cannot read the output directory: %s", strerror(errno));
		goto out;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			empty = false;
			break;
		}
	closedir(d);
	if (empty)
		goto out;
	if (!is_kind(clean, "oci-layout", S_IFREG) || !is_kind(clean, "index.json", S_IFREG) ||
	    !is_kind(clean, "blobs", S_IFDIR) ||
	    (is_kind(clean, "blobs/sha256", 0) && !is_kind(clean, "blobs/sha256", S_IFDIR))) {
		r = lp_fail(-EEXIST, path, "output directory is not empty and is not an OCI image layout "
			    "(oci-layout, index.json, blobs/); refusing to write into it: give an empty or new directory");
		goto out;
	}
	r = read_index(clean, &idx);
	cJSON_Delete(idx);
	if (r == 0 && ret_layout)
		*ret_layout = true;
out:
	free(clean);
	return r;
}

/* Copy a blob into place when the staging area is on another file system. */
static int copy_blob(const char *from, const char *to)
{
	struct lp_outfile of;
	char buf[1 << 16];
	int in, r;

	in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return lp_fail(-errno, from, "cannot open: %s", strerror(errno));
	r = lp_outfile_open(&of, to);
	while (r == 0) {
		ssize_t got = read(in, buf, sizeof(buf));

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			r = lp_fail(-errno, from, "read failed: %s", strerror(errno));
		else if (got == 0)
			break;
		else if ((r = lp_write_all(of.fd, buf, (size_t)got)) < 0)
			r = lp_fail(r, to, "write failed: %s", strerror(-r));
		if (r == 0 && lp_cancelled())
			r = lp_fail(-EINTR, to, "interrupted");
	}
	close(in);
	if (r == 0)
		return lp_outfile_commit(&of);
	lp_outfile_abort(&of);
	return r;
}

/* Content-addressed: a blob already there under the same digest is kept as it is. */
static int merge_blob(const char *from, const char *blobdir, const char *name)
{
	char *to = join(blobdir, name);
	struct stat st;
	int r = 0;

	if (!to)
		return -ENOMEM;
	if (lstat(to, &st) == 0) {
		if (!S_ISREG(st.st_mode))
			r = lp_fail(-EEXIST, to, "is not a regular file; refusing to replace it");
	} else if (errno != ENOENT) {
		r = lp_fail(-errno, to, "cannot check: %s", strerror(errno));
	} else if (rename(from, to) < 0) {
		r = errno == EXDEV ? copy_blob(from, to) : lp_fail(-errno, to, "cannot move into place: %s", strerror(errno));
	}
	free(to);
	return r;
}

static bool same_tag(const cJSON *desc, const char *tag)
{
	const cJSON *an = cJSON_GetObjectItemCaseSensitive(desc, "annotations");
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(an, REF_NAME);

	return cJSON_IsString(t) && strcmp(t->valuestring, tag) == 0;
}

/*
 * Add the image staged in staged/ to the layout: the blobs first (so no
 * reader ever sees an index naming a missing blob), then index.json
 * replaced in one rename, the old manifests kept except one with our tag.
 */
static int merge_layout(const char *staged, const char *output, const char *tag)
{
	char *layout = strip_slashes(output), *from = NULL, *to = NULL, *text = NULL, *ipath = NULL;
	cJSON *old = NULL, *nw = NULL, *arr, *desc, *it, *next;
	struct lp_strv blobs = { 0 };
	struct lp_outfile of;
	struct dirent *de;
	bool replaced = false;
	DIR *d;
	int r;

	if (!layout)
		return -ENOMEM;
	r = read_index(layout, &old);
	if (r == 0)
		r = read_index(staged, &nw);
	if (r < 0)
		goto out;
	from = join(staged, "blobs/sha256");
	to = join(layout, "blobs/sha256");
	ipath = join(layout, "index.json");
	if (!from || !to || !ipath) {
		r = -ENOMEM;
		goto out;
	}
	if (mkdir(to, 0755) < 0 && errno != EEXIST) {
		r = lp_fail(-errno, to, "cannot create: %s", strerror(errno));
		goto out;
	}
	d = opendir(from);
	if (!d) {
		r = lp_fail(-errno, from, "cannot list: %s", strerror(errno));
		goto out;
	}
	while (r == 0 && (de = readdir(d)))
		if (de->d_name[0] != '.')
			r = lp_strv_push(&blobs, de->d_name);
	closedir(d);
	for (size_t i = 0; r == 0 && i < blobs.n; i++) {
		char *f = join(from, blobs.v[i]);

		r = f ? merge_blob(f, to, blobs.v[i]) : -ENOMEM;
		free(f);
		if (r == 0 && lp_cancelled())
			r = lp_fail(-EINTR, layout, "interrupted");
	}
	if (r < 0)
		goto out;
	desc = cJSON_DetachItemFromArray(cJSON_GetObjectItemCaseSensitive(nw, "manifests"), 0);
	if (!desc) {
		r = lp_fail(-LP_E_BADIMAGE, staged, "the new image has no manifest");
		goto out;
	}
	/* The tag moves: the first manifest carrying it is replaced in place, any others dropped. */
	arr = cJSON_GetObjectItemCaseSensitive(old, "manifests");
	for (it = arr->child; it; it = next) {
		next = it->next;
		if (!same_tag(it, tag))
			continue;
		if (!replaced) {
			cJSON_ReplaceItemViaPointer(arr, it, desc);
			replaced = true;
		} else {
			cJSON_Delete(cJSON_DetachItemViaPointer(arr, it));
		}
	}
	if (!replaced)
		cJSON_AddItemToArray(arr, desc);
	text = cJSON_PrintUnformatted(old);
	if (!text) {
		r = -ENOMEM;
		goto out;
	}
	r = lp_outfile_open(&of, ipath);
	if (r < 0)
		goto out;
	r = lp_write_all(of.fd, text, strlen(text));
	if (r < 0) {
		r = lp_fail(r, ipath, "cannot write: %s", strerror(-r));
		lp_outfile_abort(&of);
		goto out;
	}
	r = lp_outfile_commit(&of);
out:
	lp_strv_free(&blobs);
	cJSON_Delete(old);
	cJSON_Delete(nw);
	free(text);
	free(ipath);
	free(from);
	free(to);
	free(layout);
	return r;
}

/* ---- the whole image ---- */

/*
 * The staged layout is the whole image (the base's blobs included), so the
 * check reads exactly what will be written, through the reader analyze uses.
 */
/*
 * The check's file reads, kept in the build cache by the digest of the
 * layer blob that holds them: the base's layers are verified by this run's
 * import, so their digests name their bytes.
 */
static void file_key(const char *layer_digest, const char *path, struct lp_cache_key *ret)
{
	struct lp_cache_keyer k;

	lp_cache_key_begin(&k, "rootfs-file/1");
	lp_cache_key_add_str(&k, layer_digest);
	lp_cache_key_add_str(&k, path);
	lp_cache_key_end(&k, ret);
}

static int memo_get(void *ud, const char *layer_digest, const char *path, unsigned char **buf, size_t *n)
{
	struct lp_cache_key key;
	struct lp_cache_meta m;
	uint64_t len;

	file_key(layer_digest, path, &key);
	if (lp_cache_get_mem(ud, LP_CACHE_BASE, &key, path, &m, buf, &len) != 1)
		return 0;
	*n = (size_t)len;
	return 1;
}

static void memo_put(void *ud, const char *layer_digest, const char *path, const unsigned char *buf, size_t n)
{
	struct lp_cache_key key;
	struct lp_cache_meta m = { .usize = n };

	file_key(layer_digest, path, &key);
	lp_cache_put_mem(ud, LP_CACHE_BASE, &key, &m, buf, n);
}

static int check_runnable(const char *layout, const char *tag, const struct lp_entries *l, size_t n_base,
			  struct lp_rootfs *base_fs, const struct lp_oci_opts *o)
{
	struct lp_rootfs_memo memo = { .ud = o->cache, .get = memo_get, .put = memo_put };
	struct lp_image_opts io = { .ref = tag };
	struct lp_report local;
	struct lp_report *rep = o->report ? o->report : &local;
	size_t first = rep->n_findings, n = 0;
	struct lp_rootfs_add *top = calloc(l->n ? l->n : 1, sizeof(*top));
	struct lp_image *img = NULL;
	int r = 0;

	lp_report_init(&local);
	if (!top)
		return -ENOMEM;
	/* Our own layers are the entries: given as files, not decompressed again. */
	for (size_t i = 0; i < l->n; i++) {
		const struct lp_entry *e = &l->v[i];
		char *p;

		if (e->flags & LP_F_REMOVED)
			continue;
		p = lp_oci_image_path(o, e->path);
		if (!p) {
			r = -ENOMEM;
			goto out;
		}
		top[n].path = p;
		top[n].kind = e->kind == LP_DIR ? LP_MEMBER_DIR : e->kind == LP_SYMLINK ? LP_MEMBER_SYMLINK :
			      LP_MEMBER_FILE;
		top[n].mode = (e->kind == LP_DIR ? 0040000u : e->kind == LP_SYMLINK ? 0120000u : 0100000u) | e->mode;
		top[n].target = e->target;
		top[n].src = e->src;
		/* A copy dedupe made a link to: its bytes are its canonical entry's. */
		if (e->kind == LP_FILE && (e->flags & LP_F_DUPLICATE)) {
			const struct lp_entry *c = e->target ? lp_entries_find(l, e->target) : NULL;

			top[n].target = NULL;
			if (c && c->src)
				top[n].src = c->src;
		}
		n++;
	}
	r = lp_image_open(layout, LP_IMAGE_LAYOUT, &io, &img);
	if (r == 0 && base_fs && o->cache)
		lp_rootfs_set_memo(base_fs, &memo);
	/* The base's members as its import walked them: its layers are not read again. */
	if (r == 0)
		r = lp_image_runnable(img, base_fs, n_base, top, n, o->runtime,
				      o->check_warn ? LP_SEV_WARNING : LP_SEV_ERROR, rep);
	if (r == 1 && !o->check_warn)
		r = lp_fail(-LP_E_CHECK, o->output, "the image would not start: %s",
			    first < rep->n_findings ? rep->findings[first].message : "see the findings");
	else if (r == 1)
		r = 0;
out:
	lp_image_close(img);
	for (size_t i = 0; i < n; i++)
		free((char *)top[i].path);
	free(top);
	lp_report_free(&local);
	return r;
}

int lp_oci_write(const struct lp_entries *l, const struct lp_oci_opts *o, struct lp_oci_result *res)
{
	struct lp_outdir od = { 0 };
	struct lp_oci_base base = { 0 };
	struct lp_oci_plan plan = { 0 };
	struct job *jobs = NULL;
	const char *tag = o->tag ? o->tag : "latest";
	const char *want = oci_arch(o->arch);
	char *blobdir = NULL, *task_root = NULL, *cfg = NULL, *man = NULL, *idx = NULL, *dman = NULL;
	const char *variant = NULL;
	enum lp_arch detected = LP_ARCH_UNKNOWN;
	unsigned threads = o->threads;
	uint64_t est = 0;
	bool opened = false, base_failed = false;
	int r;

	memset(res, 0, sizeof(*res));
	if (!o->output || !*o->output)
		return lp_fail(-LP_E_USAGE, NULL, "no output path given");
	if (!valid_ref_name(tag))
		return lp_fail(-LP_E_USAGE, tag, "not a valid image tag (letters, digits and -._:@+/ between them)");
	if ((unsigned)o->compression > LP_OCI_NONE)
		return lp_fail(-LP_E_USAGE, NULL, "unknown compression");
	if (o->arch != LP_ARCH_UNKNOWN && !want)
		return lp_fail(-LP_E_USAGE, lp_arch_name(o->arch), "Lambda images are x86_64 (amd64) or arm64");
	if (o->task_root && o->task_root[0] != '/')
		return lp_fail(-LP_E_USAGE, o->task_root, "the task root must be an absolute path");
	if (threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		threads = n > 0 ? (unsigned)n : 1;
	}
	{
		char *x = lp_oci_image_path(&(struct lp_oci_opts){ .task_root = o->task_root }, "x");

		if (!x)
			return -ENOMEM;
		x[strlen(x) - 1] = '\0';
		/* "var/task/" -> "/var/task"; "" -> "/" */
		task_root = malloc(strlen(x) + 2);
		if (task_root) {
			size_t len = strlen(x);

			task_root[0] = '/';
			memcpy(task_root + 1, x, len);
			task_root[len > 0 ? len : 1] = '\0';
		}
		free(x);
		if (!task_root)
			return -ENOMEM;
	}
	if (!want) {
		detected = detect_arch(l);
		want = oci_arch(detected);
	}
	res->archive = has_suffix(o->output, ".tar");
	r = lp_oci_output_check(o->output, &res->added);
	if (r < 0)
		goto out;

	r = lp_outdir_open(&od, o->output);
	if (r < 0)
		goto out;
	opened = true;
	blobdir = join(od.tmp, "blobs/sha256");
	if (!blobdir) {
		r = -ENOMEM;
		goto out;
	}
	r = lp_mkdir_p(blobdir, 0755);
	if (r < 0) {
		r = lp_fail(r, blobdir, "cannot create: %s", strerror(-r));
		goto out;
	}
	if (o->base) {
		r = lp_oci_base_import(o->base, want, blobdir, o->cache, &base);
		if (r < 0) {
			base_failed = true;
			goto out;
		}
		if (want && strcmp(want, base.arch) != 0) {
			if (o->report)
				lp_report_finding(o->report, LP_SEV_ERROR, "wrong-arch", NULL,
						  "base image is %s, function is %s", base.arch, want);
			r = lp_fail(-LP_E_CHECK, o->base, "base image is %s but the function targets %s%s",
				    base.arch, want, o->arch ? "" : " (from its binaries)");
			goto out;
		}
		if (!want)
			want = base.arch;
		{
			const cJSON *v = cJSON_GetObjectItemCaseSensitive(base.config, "variant");

			variant = cJSON_IsString(v) ? v->valuestring : NULL;
		}
	}
	snprintf(res->arch, sizeof(res->arch), "%s", want ? want : "amd64");

	r = lp_oci_plan_layers(l, o, &plan);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < base.n; i++)
		est += base.layers[i].usize;
	for (size_t i = 0; i < plan.n; i++)
		est += estimate_layer(l, &plan.v[i]);
	/* Fail before writing gigabytes when the answer is already known. */
	lp_budget_image(est, &res->budget);
	if (res->budget.over) {
		r = too_big(l, &base, est, o);
		goto out;
	}

	jobs = calloc(plan.n ? plan.n : 1, sizeof(*jobs));
	if (!jobs) {
		r = -ENOMEM;
		goto out;
	}
	/* Layers count each entry once, in whichever layer holds it (core/progress.h). */
	lp_progress_begin(lp_entries_unzipped_size(l));
	r = write_layers(l, o, &plan, blobdir, threads, jobs);
	if (r < 0)
		goto out;

	res->layers = calloc(base.n + plan.n, sizeof(*res->layers));
	if (!res->layers) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < base.n; i++) {
		res->layers[res->n_layers] = base.layers[i];
		base.layers[i].created_by = NULL;
		res->n_layers++;
	}
	res->n_base_layers = base.n;
	for (size_t i = 0; i < plan.n; i++) {
		struct lp_oci_blob *b = &res->layers[res->n_layers];

		*b = jobs[i].blob;
		b->created_by = history_text(&plan.v[i], task_root);
		if (!b->created_by) {
			r = -ENOMEM;
			goto out;
		}
		res->n_layers++;
	}
	for (size_t i = 0; i < res->n_layers; i++) {
		res->usize += res->layers[i].usize;
		res->csize += res->layers[i].size;
	}
	lp_budget_image(res->usize, &res->budget);
	if (res->budget.over) {
		r = too_big(l, &base, res->usize, o);
		goto out;
	}

	r = build_config(l, o, &base, res, task_root, &cfg);
	if (r < 0)
		goto out;
	r = put_blob(blobdir, cfg, strlen(cfg), res->config_digest);
	if (r < 0)
		goto out;
	r = build_manifest(res, strlen(cfg), &man);
	if (r < 0)
		goto out;
	res->manifest_size = strlen(man);
	r = put_blob(blobdir, man, strlen(man), res->manifest_digest);
	if (r < 0)
		goto out;
	r = build_index(res, variant, tag, &idx);
	if (r < 0)
		goto out;
	r = put_file(od.tmp, "index.json", idx);
	if (r == 0)
		r = put_file(od.tmp, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
	if (r < 0)
		goto out;
	if (o->check_runnable) {
		r = check_runnable(od.tmp, tag, l, res->n_base_layers, base.fs, o);
		if (r < 0)
			goto out;
	}

	if (res->archive) {
		r = build_docker_manifest(res, o, tag, &dman);
		if (r == 0)
			r = put_file(od.tmp, "manifest.json", dman);
		if (r == 0)
			r = write_archive(od.tmp, o->output, o->epoch);
		/* The layout was only the staging area of the archive. */
		lp_outdir_abort(&od);
	} else if (res->added) {
		r = merge_layout(od.tmp, o->output, tag);
		/* The staging area held only what was moved into the layout. */
		lp_outdir_abort(&od);
	} else {
		r = lp_outdir_commit(&od);
	}
	opened = false;
out:
	if (opened)
		lp_outdir_abort(&od);
	if (jobs) {
		/* Leftover temp blobs went with the output directory. */
		for (size_t i = 0; i < plan.n; i++)
			free(jobs[i].tmp);
		free(jobs);
	}
	if (r < 0) {
		lp_oci_result_free(res);
		res->base_failed = base_failed;
	}
	lp_oci_plan_free(&plan);
	lp_oci_base_free(&base);
	free(blobdir);
	free(task_root);
	free(cfg);
	free(man);
	free(idx);
	free(dman);
	return r;
}
