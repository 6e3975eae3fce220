/* SPDX-License-Identifier: MIT */
/*
 * The treemap data of the HTML report. The first level is what people
 * think in: the function's own code, each Node package, each Python
 * distribution, each vendored gem, and for images the runtime and base
 * directories outside the task root; inside a group, its directories and
 * files. Every node carries the kind that dominates its bytes (code,
 * package, native binary, data/asset, prunable junk) for the colours.
 * Small things and long tails become one "(N more)" node per directory so
 * the page stays small whatever the tree (a node budget per group).
 */
#include "analyze/internal.h"
#include "core/json.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum tk { K_CODE, K_NODE, K_PY, K_VENDOR, K_BASE, K_NATIVE, K_DATA, K_JUNK, K_N };
static const char kind_ch[K_N] = { 'c', 'n', 'p', 'v', 'b', 'x', 'd', 'j' };

#define TOP_GROUPS	60	/* first-level groups drawn; the rest is one node */
#define MAX_CHILDREN	40	/* per directory */
#define CODE_KEY	"\x01"	/* the function's code: one group, never cut */

struct tn {
	const char *name;	/* borrowed from the entry path */
	size_t nlen;
	uint64_t size, kb[K_N];
	size_t first, last, next;	/* children; SIZE_MAX = none */
};

struct group {
	char *key;
	enum tk kind;
	uint64_t size;
	size_t *files, n, cap;	/* entry indices, in path order */
	size_t baselen;		/* common directory prefix of the files */
};

struct tctx {
	const struct lp_analysis *a;
	struct tn *t;
	size_t nt, cap;
	size_t budget;
	uint64_t floor;
	uint8_t *leafk;		/* enum tk of every entry */
	char name[PATH_MAX];
};

#define TRY(x)                  \
	do {                    \
		if (!(x))       \
			goto fail; \
	} while (0)
#define TRY0(x) TRY((x) == 0)

static const char *const data_ext[] = {
	"bin", "dat", "onnx", "pt", "pth", "pb", "tflite", "h5", "hdf5", "npy", "npz", "pkl", "pickle",
	"parquet", "csv", "tsv", "safetensors", "gguf", "ckpt", "model", "weights", "db", "sqlite",
	"sqlite3", "pak", "png", "jpg", "jpeg", "gif", "webp", "svg", "ico", "bmp", "tif", "tiff", "ttf",
	"otf", "woff", "woff2", "eot", "mp3", "mp4", "wav", "ogg", "webm", "pdf", "zip", "gz", "tgz",
	"xz", "zst", "br", "bz2", "tar", "jar", "wasm", "mo", "xml", "txt",
};

static bool is_data(const char *path)
{
	const char *base = strrchr(path, '/'), *dot;

	base = base ? base + 1 : path;
	dot = strrchr(base, '.');
	if (!dot || dot == base)
		return false;
	for (size_t i = 0; i < sizeof(data_ext) / sizeof(data_ext[0]); i++)
		if (!strcasecmp(dot + 1, data_ext[i]))
			return true;
	return false;
}

static size_t tn_new(struct tctx *c, const char *name, size_t nlen)
{
	if (c->nt == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 1024;
		struct tn *nt = realloc(c->t, nc * sizeof(*nt));

		if (!nt)
			return SIZE_MAX;
		c->t = nt;
		c->cap = nc;
	}
	memset(&c->t[c->nt], 0, sizeof(c->t[0]));
	c->t[c->nt].name = name;
	c->t[c->nt].nlen = nlen;
	c->t[c->nt].first = c->t[c->nt].last = c->t[c->nt].next = SIZE_MAX;
	return c->nt++;
}

/*
 * Paths come sorted, so a directory's members are contiguous and a
 * component either matches the last child added or starts a new one.
 */
static int tn_add(struct tctx *c, const char *rel, uint64_t size, enum tk k)
{
	size_t cur = 0;

	for (;;) {
		const char *slash = strchr(rel, '/');
		size_t len = slash ? (size_t)(slash - rel) : strlen(rel);
		size_t last = c->t[cur].last;

		c->t[cur].size += size;
		c->t[cur].kb[k] += size;
		if (!len)
			return 0;
		if (last == SIZE_MAX || c->t[last].nlen != len || memcmp(c->t[last].name, rel, len)) {
			size_t n = tn_new(c, rel, len);

			if (n == SIZE_MAX)
				return -ENOMEM;
			if (c->t[cur].last == SIZE_MAX)
				c->t[cur].first = n;
			else
				c->t[c->t[cur].last].next = n;
			c->t[cur].last = n;
			last = n;
		}
		cur = last;
		if (!slash) {
			c->t[cur].size += size;
			c->t[cur].kb[k] += size;
			return 0;
		}
		rel = slash + 1;
	}
}

static const struct tn *sort_tn;

static int cmp_tn(const void *x, const void *y)
{
	const struct tn *a = &sort_tn[*(const size_t *)x], *b = &sort_tn[*(const size_t *)y];
	size_t n = a->nlen < b->nlen ? a->nlen : b->nlen;
	int r;

	if (a->size != b->size)
		return a->size < b->size ? 1 : -1;
	r = memcmp(a->name, b->name, n);
	return r ? r : (a->nlen < b->nlen ? -1 : a->nlen > b->nlen);
}

static enum tk dominant(const struct tn *t)
{
	enum tk best = K_CODE;

	for (int k = 1; k < K_N; k++)
		if (t->kb[k] > t->kb[best])
			best = (enum tk)k;
	return best;
}

static int add_more(cJSON *kids, size_t n, uint64_t bytes)
{
	cJSON *m = lp_json_push_obj(kids);
	char label[64];

	if (!m)
		return -ENOMEM;
	snprintf(label, sizeof(label), "(%zu more)", n);
	if (lp_json_str(m, "n", label) || lp_json_u64(m, "s", bytes) || lp_json_str(m, "k", "m"))
		return -ENOMEM;
	return 0;
}

static int emit_kids(struct tctx *c, size_t i, cJSON *o, int depth);

/* One directory or file; a chain of single-child directories becomes one "a/b/c" node. */
static cJSON *emit(struct tctx *c, size_t i, int depth)
{
	cJSON *o = cJSON_CreateObject();
	size_t nl = 0;
	char k[2] = { kind_ch[dominant(&c->t[i])], 0 };

	if (!o)
		return NULL;
	for (;;) {
		const struct tn *t = &c->t[i];

		if (nl + t->nlen + 2 < sizeof(c->name)) {
			if (nl)
				c->name[nl++] = '/';
			memcpy(c->name + nl, t->name, t->nlen);
			nl += t->nlen;
		}
		if (t->first == SIZE_MAX || t->first != t->last || c->t[t->first].first == SIZE_MAX)
			break;
		i = t->first;
	}
	c->name[nl] = '\0';
	TRY0(lp_json_str(o, "n", c->name));
	TRY0(lp_json_u64(o, "s", c->t[i].size));
	TRY0(lp_json_str(o, "k", k));
	TRY0(emit_kids(c, i, o, depth));
	return o;
fail:
	cJSON_Delete(o);
	return NULL;
}

static int emit_kids(struct tctx *c, size_t i, cJSON *o, int depth)
{
	size_t n = 0, *ch, nrest = 0;
	uint64_t rest = 0;
	cJSON *kids;
	int r = 0;

	for (size_t j = c->t[i].first; j != SIZE_MAX; j = c->t[j].next)
		n++;
	if (!n || depth > 40)
		return 0;
	if (!(ch = malloc(n * sizeof(*ch))))
		return -ENOMEM;
	n = 0;
	for (size_t j = c->t[i].first; j != SIZE_MAX; j = c->t[j].next)
		ch[n++] = j;
	sort_tn = c->t;
	qsort(ch, n, sizeof(*ch), cmp_tn);
	if (!(kids = cJSON_AddArrayToObject(o, "c"))) {
		free(ch);
		return -ENOMEM;
	}
	for (size_t j = 0; j < n && r == 0; j++) {
		cJSON *sub;

		if (j > 0 && (j >= MAX_CHILDREN || c->budget == 0 || c->t[ch[j]].size < c->floor)) {
			rest += c->t[ch[j]].size;
			nrest++;
			continue;
		}
		if (c->budget)
			c->budget--;
		sub = emit(c, ch[j], depth + 1);
		if (!sub || !cJSON_AddItemToArray(kids, sub)) {
			cJSON_Delete(sub);
			r = -ENOMEM;
		}
	}
	if (r == 0 && nrest)
		r = add_more(kids, nrest, rest);
	free(ch);
	return r;
}

static const char *group_label(const struct group *g)
{
	const char *k = g->key, *s;

	switch (g->kind) {
	case K_CODE:
		return "function code";
	case K_BASE:
		return k;
	case K_NODE:
		for (s = strstr(k, "node_modules/"); s; s = strstr(s + 1, "node_modules/"))
			k = s + strlen("node_modules/");
		return k;
	default:
		s = strrchr(k, '/');
		return s ? s + 1 : k;
	}
}

static int emit_group(struct tctx *c, const struct lp_analysis *a, struct group *g, cJSON *kids, uint64_t total,
		      size_t budget)
{
	const struct lp_entries *l = &a->entries;
	cJSON *o = lp_json_push_obj(kids);
	char k[2] = { kind_ch[g->kind], 0 }, base[PATH_MAX];
	size_t root;
	int r;

	if (!o)
		return -ENOMEM;
	c->nt = 0;
	root = tn_new(c, "", 0);
	if (root == SIZE_MAX)
		return -ENOMEM;
	for (size_t i = 0; i < g->n; i++) {
		const struct lp_entry *e = &l->v[g->files[i]];
		const char *rel = e->path + g->baselen + (g->baselen ? 1 : 0);

		if ((r = tn_add(c, rel, e->size, (enum tk)c->leafk[g->files[i]])) < 0)
			return r;
	}
	snprintf(base, sizeof(base), "%.*s", (int)g->baselen, l->v[g->files[0]].path);
	if (lp_json_str(o, "n", group_label(g)) || lp_json_u64(o, "s", g->size) || lp_json_str(o, "k", k) ||
	    lp_json_str(o, "b", base) || lp_json_str(o, "g", g->kind == K_CODE ? "" : g->key))
		return -ENOMEM;
	/* The function's code stays legible next to a 400 MiB browser: drawn at 4% at least. */
	if (g->kind == K_CODE && g->size < total / 25 && !cJSON_AddNumberToObject(o, "w", (double)(total / 25)))
		return -ENOMEM;
	c->budget = budget;
	c->floor = g->size / 500;
	return emit_kids(c, root, o, 0);
}

static int cmp_group(const void *x, const void *y)
{
	const struct group *a = x, *b = y;

	if (a->size != b->size)
		return a->size < b->size ? 1 : -1;
	return strcmp(a->key, b->key);
}

/* "a/b/c" -> "a/b"; "a" -> "a". */
static void two_components(const char *path, char *buf, size_t len)
{
	const char *s = strchr(path, '/');

	if (s && strchr(s + 1, '/'))
		s = strchr(s + 1, '/');
	else if (s)
		s = NULL;
	snprintf(buf, len, "%.*s", (int)(s ? (size_t)(s - path) : strlen(path)), path);
	if (!s && strchr(buf, '/'))
		buf[strrchr(buf, '/') - buf] = '\0';
}

cJSON *ana_treemap_json(const struct lp_analysis *a, int layer)
{
	const struct lp_entries *l = &a->entries;
	struct tctx c = { .a = a };
	struct ana_map gm = { 0 };
	struct group *g = NULL;
	size_t ng = 0, budget = layer < 0 ? 5000 : 1500, nrest = 0;
	char **keys = calloc(l->n + 1, sizeof(*keys));
	const char **kinds = calloc(l->n + 1, sizeof(*kinds));
	uint8_t *leafk = calloc(l->n + 1, 1);
	const char *tr = a->is_image ? (a->img_task_root ? a->img_task_root : "var/task") : "";
	size_t trl = strlen(tr);
	uint64_t total = 0, rest = 0;
	cJSON *root = NULL, *kids;
	char key[PATH_MAX];

	g = calloc(l->n + 1, sizeof(*g));
	c.leafk = leafk;
	TRY(keys && kinds && leafk && g);
	TRY0(ana_entry_groups(a, keys, kinds));
	TRY0(ana_map_init(&gm, 64));
	for (size_t i = 0; i < l->n; i++) {
		const struct lp_entry *e = &l->v[i];
		bool in_root = !trl || (!strncmp(e->path, tr, trl) && e->path[trl] == '/');
		enum tk gk;
		size_t *gi;

		if (e->kind == LP_DIR || !keys[i] || (layer >= 0 && e->layer != layer))
			continue;
		if (!in_root && strncmp(e->path, "opt/", 4) != 0)
			gk = K_BASE;	/* the runtime's own npm is the base image's, not the function's */
		else if (!strcmp(kinds[i], "node"))
			gk = K_NODE;
		else if (!strcmp(kinds[i], "python"))
			gk = K_PY;
		else if (!strcmp(kinds[i], "vendor"))
			gk = K_VENDOR;
		else
			gk = in_root ? K_CODE : K_BASE;	/* opt/'s loose files: extensions, layers */
		if (gk == K_CODE)
			snprintf(key, sizeof(key), "%s", CODE_KEY);
		else if (gk == K_BASE)
			two_components(e->path, key, sizeof(key));
		else
			snprintf(key, sizeof(key), "%s", keys[i]);
		gi = ana_map_get(&gm, key);
		if (!gi) {
			TRY(g[ng].key = strdup(key));
			g[ng].kind = gk;
			TRY0(ana_map_put(&gm, g[ng].key, ng));
			gi = ana_map_get(&gm, key);
			ng++;
		}
		if (g[*gi].n == g[*gi].cap) {
			size_t nc = g[*gi].cap ? g[*gi].cap * 2 : 16;
			size_t *nf = realloc(g[*gi].files, nc * sizeof(*nf));

			TRY(nf);
			g[*gi].files = nf;
			g[*gi].cap = nc;
		}
		/* Common directory prefix of the group's files. */
		if (!g[*gi].n) {
			g[*gi].baselen = lp_path_parent_len(e->path);
		} else {
			const char *p0 = l->v[g[*gi].files[0]].path;
			size_t n = 0, bl = g[*gi].baselen;

			while (n < bl && p0[n] == e->path[n])
				n++;
			if (n < bl || (bl && e->path[bl] != '/')) {
				/* Back to a '/' before the mismatch: both paths have it there. */
				while (n > 0 && p0[--n] != '/')
					;
				g[*gi].baselen = n;
			}
		}
		g[*gi].files[g[*gi].n++] = i;
		g[*gi].size += e->size;
		total += e->size;
		leafk[i] = (uint8_t)((e->flags & LP_ANA_F_PRUNABLE) ? K_JUNK : e->binfmt ? K_NATIVE
				     : is_data(e->path) ? K_DATA : gk);
	}
	ana_map_free(&gm);
	if (ng > 1)
		qsort(g, ng, sizeof(*g), cmp_group);
	TRY(root = cJSON_CreateObject());
	TRY0(lp_json_str(root, "n", layer < 0 ? "/" : "layer"));
	TRY0(lp_json_u64(root, "s", total));
	TRY0(lp_json_str(root, "k", "m"));
	TRY(kids = cJSON_AddArrayToObject(root, "c"));
	for (size_t i = 0; i < ng; i++) {
		size_t gb = 60 + (size_t)((double)budget * (double)g[i].size / (double)(total ? total : 1));

		if (g[i].kind != K_CODE && i > 0 && (i >= TOP_GROUPS || g[i].size < total / 1000)) {
			rest += g[i].size;
			nrest++;
			continue;
		}
		if (!g[i].size && g[i].kind != K_CODE)
			continue;
		TRY0(emit_group(&c, a, &g[i], kids, total, gb));
	}
	if (nrest) {
		cJSON *m = lp_json_push_obj(kids);

		snprintf(key, sizeof(key), "(%zu more %s)", nrest, nrest == 1 ? "package" : "packages");
		TRY(m);
		TRY0(lp_json_str(m, "n", key));
		TRY0(lp_json_u64(m, "s", rest));
		TRY0(lp_json_str(m, "k", "m"));
	}
	goto out;
fail:
	cJSON_Delete(root);
	root = NULL;
out:
	for (size_t i = 0; keys && i < l->n; i++)
		free(keys[i]);
	for (size_t i = 0; g && i < ng; i++) {
		free(g[i].key);
		free(g[i].files);
	}
	ana_map_free(&gm);
	free(g);
	free(keys);
	free(kinds);
	free(leafk);
	free(c.t);
	return root;
}
