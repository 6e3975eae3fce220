/* SPDX-License-Identifier: MIT */
/*
 * npm: leave out what the lockfile marks as not needed at run time on
 * Lambda. npm 7+ writes node_modules/.package-lock.json (the hidden
 * lockfile, what is actually installed) and package-lock.json (lockfile
 * version 2 or 3); both have a "packages" map from install path to
 * {dev, optional, devOptional, os, cpu}. A package marked dev is a
 * devDependency (or only reachable from one); an optional package whose os
 * or cpu list excludes linux or the function's architecture (fsevents,
 * @esbuild/darwin-arm64) is never loaded there.
 */
#include "pack/optimize.h"
#include "core/entry.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "core/json.h"
#include "core/report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LOCKFILE (64u << 20)

/* First entry whose path is >= key (the list is sorted bytewise). */
static size_t lower_bound(const struct lp_entries *l, const char *key)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(l->v[mid].path, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Does an npm "os"/"cpu" list admit name? Entries are names or "!name";
 * with only negations, everything not negated is admitted.
 */
static bool list_admits(const cJSON *list, const char *name)
{
	const cJSON *it;
	bool any_pos = false;

	if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0)
		return true;
	cJSON_ArrayForEach(it, list) {
		if (!cJSON_IsString(it))
			continue;
		if (it->valuestring[0] == '!') {
			if (!strcmp(it->valuestring + 1, name))
				return false;
		} else {
			any_pos = true;
			if (!strcmp(it->valuestring, name))
				return true;
		}
	}
	return !any_pos;
}

static void list_text(const cJSON *list, char *buf, size_t len)
{
	const cJSON *it;
	size_t o = 0;

	buf[0] = '\0';
	cJSON_ArrayForEach(it, list)
		if (cJSON_IsString(it) && o < len)
			o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? "," : "", it->valuestring);
}

/* Mark path and everything below it removed; the bytes it held. */
static uint64_t remove_tree(struct lp_entries *l, const char *path, size_t *files)
{
	char pre[4096];
	uint64_t bytes = 0;
	struct lp_entry *d = lp_entries_find(l, path);
	int n = snprintf(pre, sizeof(pre), "%s/", path);

	if (n < 0 || (size_t)n >= sizeof(pre))
		return 0;
	if (d && !(d->flags & LP_F_REMOVED)) {
		d->flags |= LP_F_REMOVED;
		if (d->kind != LP_DIR) {
			bytes += d->size;
			(*files)++;
		}
	}
	for (size_t i = lower_bound(l, pre); i < l->n && !strncmp(l->v[i].path, pre, (size_t)n); i++) {
		struct lp_entry *e = &l->v[i];

		if (e->flags & LP_F_REMOVED)
			continue;
		e->flags |= LP_F_REMOVED;
		if (e->kind != LP_DIR) {
			bytes += e->size;
			(*files)++;
		}
	}
	return bytes;
}

/* node_modules/.bin links into a package that was left out would dangle: drop them too. */
static void drop_bin_links(struct lp_entries *l, const char *base)
{
	char pre[4096], tgt[8192];
	int n = snprintf(pre, sizeof(pre), "%snode_modules/.bin/", base);

	if (n < 0 || (size_t)n >= sizeof(pre))
		return;
	for (size_t i = lower_bound(l, pre); i < l->n && !strncmp(l->v[i].path, pre, (size_t)n); i++) {
		struct lp_entry *e = &l->v[i], *t;

		if (e->kind != LP_SYMLINK || (e->flags & LP_F_REMOVED) || !e->target || e->target[0] == '/' ||
		    strncmp(e->target, "../", 3))
			continue;
		/* "../left-pad/cli.js" from node_modules/.bin is node_modules/left-pad/cli.js. */
		snprintf(tgt, sizeof(tgt), "%snode_modules/%s", base, e->target + 3);
		t = lp_entries_find(l, tgt);
		if (t && (t->flags & LP_F_REMOVED))
			e->flags |= LP_F_REMOVED;
	}
}

static int prune_lockfile(struct lp_entries *l, const char *lock_path, const char *src, size_t base_len,
			  enum lp_arch arch, struct lp_report *rep, struct lp_opt_saved *sv)
{
	const char *cpu = arch == LP_ARCH_ARM64 ? "arm64" : "x64";
	char base[4096], *text = NULL;
	const cJSON *pkgs, *it;
	cJSON *root;
	int r;

	if (base_len >= sizeof(base))
		return 0;
	memcpy(base, lock_path, base_len);
	base[base_len] = '\0';
	r = lp_read_file(src, MAX_LOCKFILE, &text, NULL);
	if (r < 0) {
		lp_errmsg_clear();
		return r == -ENOMEM ? r : 0;
	}
	root = cJSON_Parse(text);
	free(text);
	if (!root)
		return lp_report_finding(rep, LP_SEV_WARNING, "lockfile-unreadable", lock_path,
					 "not valid JSON: devDependencies are not left out; run npm install again");
	pkgs = cJSON_GetObjectItemCaseSensitive(root, "packages");
	r = 0;
	cJSON_ArrayForEach(it, pkgs) {
		const char *key = it->string;
		const cJSON *os = cJSON_GetObjectItemCaseSensitive(it, "os");
		const cJSON *cpus = cJSON_GetObjectItemCaseSensitive(it, "cpu");
		bool dev = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "dev"));
		bool opt = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "optional")) ||
			   cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "devOptional"));
		char path[4096], why[200], lst[120];
		size_t files = 0;
		uint64_t bytes;

		if (!key || strncmp(key, "node_modules/", 13) || strstr(key, "/../") || strstr(key, "/./"))
			continue;
		if (dev) {
			snprintf(why, sizeof(why), "devDependency (%s)", lock_path);
		} else if (opt && !list_admits(os, "linux")) {
			list_text(os, lst, sizeof(lst));
			snprintf(why, sizeof(why), "optional dependency for os %s (%s)", lst, lock_path);
		} else if (opt && !list_admits(cpus, cpu)) {
			list_text(cpus, lst, sizeof(lst));
			snprintf(why, sizeof(why), "optional dependency for cpu %s, not %s (%s)", lst, cpu, lock_path);
		} else {
			continue;
		}
		if (snprintf(path, sizeof(path), "%s%s", base, key) >= (int)sizeof(path))
			continue;
		bytes = remove_tree(l, path, &files);
		if (!files && !lp_entries_find(l, path))
			continue;	/* listed but not installed here */
		sv->n_dev_pkgs++;
		sv->n_dev += files;
		sv->dev += bytes;
		r = lp_report_change(rep, "prune-dev", path, bytes, "%s; --include-dev keeps it", why);
		if (r < 0)
			break;
	}
	if (r == 0)
		drop_bin_links(l, base);
	cJSON_Delete(root);
	return r;
}

int lp_opt_prune_dev(struct lp_entries *l, enum lp_arch arch, struct lp_report *rep, struct lp_opt_saved *sv)
{
	static const char hidden[] = "node_modules/.package-lock.json";
	int r = 0;

	for (size_t i = 0; i < l->n && r == 0; i++) {
		const struct lp_entry *e = &l->v[i];
		size_t n = strlen(e->path);
		const char *base;

		if (e->kind != LP_FILE || !e->src || (e->flags & LP_F_REMOVED))
			continue;
		base = strrchr(e->path, '/');
		base = base ? base + 1 : e->path;
		if (n >= sizeof(hidden) - 1 && !strcmp(e->path + n - (sizeof(hidden) - 1), hidden) &&
		    (n == sizeof(hidden) - 1 || e->path[n - sizeof(hidden)] == '/')) {
			/* The hidden lockfile: what npm actually installed. */
			r = prune_lockfile(l, e->path, e->src, n - (sizeof(hidden) - 1), arch, rep, sv);
		} else if (!strcmp(base, "package-lock.json") && !strstr(e->path, "node_modules/")) {
			char h[4096];
			size_t bl = (size_t)(base - e->path);

			/* The hidden lockfile, when there is one, has the last word. */
			if (snprintf(h, sizeof(h), "%.*s%s", (int)bl, e->path, hidden) < (int)sizeof(h) &&
			    lp_entries_find(l, h))
				continue;
			r = prune_lockfile(l, e->path, e->src, bl, arch, rep, sv);
		}
	}
	return r;
}
