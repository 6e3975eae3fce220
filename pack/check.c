/* SPDX-License-Identifier: MIT */
#include "pack/check.h"
#include "core/elf.h"
#include "core/entry.h"
#include "core/err.h"
#include "core/limits.h"
#include "core/report.h"
#include "pack/optimize.h"

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Directories at the artifact root the loader searches on Lambda:
 * LD_LIBRARY_PATH has /var/task, /var/task/lib and /opt/lib, and a layer's
 * root is /opt, so lib/ serves both. lib64/, bin/ and python/lib are where
 * layers commonly put native code next to what loads it.
 */
static const char *const root_dirs[] = { "", "lib", "lib64", "bin", "python/lib", NULL };

struct named {
	const char *key;	/* path, basename or soname */
	const char *path;	/* artifact path it belongs to */
};

struct index {
	struct named *paths;	/* every present file or symlink, by path */
	size_t npaths;
	struct named *names;	/* the same, by basename, plus ELF sonames */
	size_t nnames;
};

static int cmp_named(const void *a, const void *b)
{
	return strcmp(((const struct named *)a)->key, ((const struct named *)b)->key);
}

static const struct named *lookup(const struct named *v, size_t n, const char *key)
{
	struct named k = { .key = key };

	return n ? bsearch(&k, v, n, sizeof(*v), cmp_named) : NULL;
}

static bool present(const struct lp_entry *e)
{
	return (e->kind == LP_FILE || e->kind == LP_SYMLINK) && !(e->flags & LP_F_REMOVED);
}

static int index_build(const struct lp_entries *l, struct index *ix)
{
	memset(ix, 0, sizeof(*ix));
	ix->paths = malloc((l->n + 1) * sizeof(*ix->paths));
	ix->names = malloc((2 * l->n + 1) * sizeof(*ix->names));
	if (!ix->paths || !ix->names)
		return -ENOMEM;
	for (size_t i = 0; i < l->n; i++) {
		const struct lp_entry *e = &l->v[i];
		const char *base;

		if (!present(e))
			continue;
		base = strrchr(e->path, '/');
		ix->paths[ix->npaths++] = (struct named){ e->path, e->path };
		ix->names[ix->nnames++] = (struct named){ base ? base + 1 : e->path, e->path };
		if (e->bin && e->bin->soname)
			ix->names[ix->nnames++] = (struct named){ e->bin->soname, e->path };
	}
	qsort(ix->paths, ix->npaths, sizeof(*ix->paths), cmp_named);
	qsort(ix->names, ix->nnames, sizeof(*ix->names), cmp_named);
	return 0;
}

static void index_free(struct index *ix)
{
	free(ix->paths);
	free(ix->names);
}

/*
 * Resolve "a/./b/../c" inside the artifact; false if it climbs above the
 * root. out has room for strlen(in) + 1.
 */
static bool normalize(const char *in, char *out)
{
	size_t o = 0;

	while (*in) {
		const char *e = strchr(in, '/');
		size_t len = e ? (size_t)(e - in) : strlen(in);

		if (len == 0 || (len == 1 && in[0] == '.')) {
			/* skip */
		} else if (len == 2 && in[0] == '.' && in[1] == '.') {
			if (o == 0)
				return false;
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
		} else {
			if (o > 0)
				out[o++] = '/';
			memcpy(out + o, in, len);
			o += len;
		}
		in += len;
		if (*in == '/')
			in++;
	}
	out[o] = '\0';
	return true;
}

static bool in_dir(const struct index *ix, const char *dir, const char *soname)
{
	char buf[4096];
	int n = *dir ? snprintf(buf, sizeof(buf), "%s/%s", dir, soname) : snprintf(buf, sizeof(buf), "%s", soname);

	return n > 0 && (size_t)n < sizeof(buf) && lookup(ix->paths, ix->npaths, buf);
}

/*
 * One DT_RPATH/DT_RUNPATH element, as a directory inside the artifact:
 * $ORIGIN is the entry's directory, /var/task/X and /opt/X are X. Anything
 * else points outside the package (or at the cwd) and is not searched.
 */
static bool rpath_dir(const char *elem, size_t len, const char *origin, char *out, size_t outlen)
{
	char raw[4096];
	size_t o = 0;

	for (size_t i = 0; i < len;) {
		const char *s = elem + i;
		size_t skip = 0;

		if (!strncmp(s, "$ORIGIN", 7) && len - i >= 7)
			skip = 7;
		else if (!strncmp(s, "${ORIGIN}", 9) && len - i >= 9)
			skip = 9;
		if (skip) {
			int n = snprintf(raw + o, sizeof(raw) - o, "/var/task/%s", origin);

			if (n < 0 || (size_t)n >= sizeof(raw) - o)
				return false;
			o += (size_t)n;
			i += skip;
			continue;
		}
		if (o + 1 >= sizeof(raw))
			return false;
		raw[o++] = elem[i++];
	}
	raw[o] = '\0';
	if (o + 1 > outlen)
		return false;
	if (!strncmp(raw, "/var/task/", 10) || !strcmp(raw, "/var/task"))
		return normalize(raw + 9, out);
	if (!strncmp(raw, "/opt/", 5) || !strcmp(raw, "/opt"))
		return normalize(raw + 4, out);
	return false;
}

static bool on_search_path(const struct index *ix, const struct lp_entry *e, const struct lp_binfo *bi,
			   const char *soname)
{
	const char *paths = bi->runpath ? bi->runpath : bi->rpath;
	size_t plen = lp_path_parent_len(e->path);
	char origin[4096], dir[4096];

	if (plen >= sizeof(origin))
		return false;
	memcpy(origin, e->path, plen);
	origin[plen] = '\0';
	/* A DT_NEEDED with a slash is a path, relative to the cwd: not ours to find. */
	if (strchr(soname, '/'))
		return true;
	while (paths && *paths) {
		const char *c = strchr(paths, ':');
		size_t len = c ? (size_t)(c - paths) : strlen(paths);

		if (len && len < sizeof(dir) && rpath_dir(paths, len, origin, dir, sizeof(dir)) &&
		    in_dir(ix, dir, soname))
			return true;
		paths = c ? c + 1 : NULL;
	}
	if (in_dir(ix, origin, soname))
		return true;
	for (const char *const *d = root_dirs; *d; d++)
		if (in_dir(ix, *d, soname))
			return true;
	return false;
}

static enum lp_severity err_sev(const struct lp_check_opts *o)
{
	return o->warn_only ? LP_SEV_WARNING : LP_SEV_ERROR;
}

static void arch_names(const struct lp_binfo *bi, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (unsigned a = LP_ARCH_X86_64; a <= LP_ARCH_OTHER && o < len; a++)
		if (bi->arch_mask & (1u << a))
			o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? ", " : "",
					      lp_arch_name((enum lp_arch)a));
}

static int check_one(const struct index *ix, const struct lp_entry *e, const struct lp_binfo *bi,
		     const struct lp_check_opts *o, enum lp_arch arch, struct lp_report *rep)
{
	const struct lp_runtime *rt = o->runtime;
	char archs[64];
	int r;

	arch_names(bi, archs, sizeof(archs));
	if (bi->fmt == LP_BIN_MACHO || bi->fmt == LP_BIN_MACHO_FAT || bi->fmt == LP_BIN_PE)
		return lp_report_finding(rep, err_sev(o), "foreign-binary", e->path,
					 "%s binary (%s) in a Linux package: loading it fails with \"invalid ELF header\"",
					 lp_binfmt_name(bi->fmt), archs);
	if (bi->fmt != LP_BIN_ELF || (bi->e_type != ET_EXEC && bi->e_type != ET_DYN))
		return 0;
	if (bi->os != LP_OS_LINUX)
		return lp_report_finding(rep, err_sev(o), "foreign-binary", e->path,
					 "ELF built for another OS (OSABI %u): the loader rejects it (\"ELF file OS ABI invalid\")",
					 (unsigned)bi->elf_osabi);
	if (bi->arch != arch)
		return lp_report_finding(rep, err_sev(o), "wrong-arch", e->path,
					 "built for %s (%u-bit) but the function runs on %s: it fails with \"%s\"",
					 lp_arch_name(bi->arch), bi->elf_class == ELFCLASS64 ? 64u : 32u,
					 lp_arch_name(arch),
					 bi->is_pie_or_exec ? "exec format error" : "wrong ELF class / cannot open shared object file");
	if (bi->unloadable[0])
		return lp_report_finding(rep, err_sev(o), "elf-unloadable", e->path,
					 "%s cannot be loaded: %s",
					 bi->is_pie_or_exec || bi->e_type == ET_EXEC ? "executable" : "shared object",
					 bi->unloadable);
	if (rt && bi->glibc_major &&
	    (bi->glibc_major > rt->glibc_major ||
	     (bi->glibc_major == rt->glibc_major && bi->glibc_minor > rt->glibc_minor))) {
		r = lp_report_finding(rep, err_sev(o), "glibc-too-new", e->path,
				      "needs GLIBC_%u.%u but %s (%s) has glibc %u.%u: Lambda fails with \"/lib64/libc.so.6: version `GLIBC_%u.%u' not found (required by /var/task/%s)\"",
				      bi->glibc_major, bi->glibc_minor, rt->name,
				      !strcmp(rt->os, "al2") ? "Amazon Linux 2" : "Amazon Linux 2023",
				      rt->glibc_major, rt->glibc_minor, bi->glibc_major, bi->glibc_minor, e->path);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < bi->n_needed; i++) {
		const char *so = bi->needed[i];
		const struct named *n;

		if (lp_runtime_has_lib(rt, so) || on_search_path(ix, e, bi, so))
			continue;
		n = lookup(ix->names, ix->nnames, so);
		if (n)
			r = lp_report_finding(rep, LP_SEV_INFO, "library-off-path", e->path,
					      "needs %s: the package has it at %s, which is not on this file's search path (RUNPATH, its own directory, lib/); it loads only if something loaded it first",
					      so, n->path);
		else
			r = lp_report_finding(rep, LP_SEV_WARNING, "missing-library", e->path,
					      "needs %s, which is neither in the package nor in the %s runtime: loading fails with \"%s: cannot open shared object file\"",
					      so, rt ? rt->name : "base", so);
		if (r < 0)
			return r;
	}
	return 0;
}

int lp_check_entries(const struct lp_entries *l, const struct lp_check_opts *o, struct lp_report *rep)
{
	struct index ix;
	enum lp_arch arch = o->arch != LP_ARCH_UNKNOWN ? o->arch : lp_detect_arch(l);
	int r;

	r = index_build(l, &ix);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < l->n; i++) {
		const struct lp_entry *e = &l->v[i];
		struct lp_binfo *tmp = NULL;
		const struct lp_binfo *bi = e->bin;

		if (e->kind != LP_FILE || (e->flags & (LP_F_REMOVED | LP_F_DUPLICATE)))
			continue;
		if (!bi && e->binfmt == LP_BIN_NONE)
			continue;
		if (!bi && e->src) {
			r = lp_binfo_read_path(e->src, &tmp);
			if (r == -ENOMEM)
				goto out;
			if (r < 0) {
				lp_errmsg_clear();
				r = lp_report_finding(rep, LP_SEV_WARNING, "unreadable-elf", e->path,
						      "looks like a native binary but its headers cannot be parsed");
				if (r < 0)
					goto out;
				continue;
			}
			bi = tmp;
		}
		if (!bi && (e->binfmt == LP_BIN_MACHO || e->binfmt == LP_BIN_MACHO_FAT || e->binfmt == LP_BIN_PE)) {
			/* The magic bytes alone are enough to know Lambda cannot load it. */
			r = lp_report_finding(rep, err_sev(o), "foreign-binary", e->path,
					      "%s binary in a Linux package: loading it fails with \"invalid ELF header\"",
					      lp_binfmt_name((enum lp_binfmt)e->binfmt));
			if (r < 0)
				goto out;
			continue;
		}
		if (!bi)
			continue;
		r = check_one(&ix, e, bi, o, arch, rep);
		lp_binfo_free(tmp);
		if (r < 0)
			goto out;
	}
	r = 0;
out:
	index_free(&ix);
	return r;
}
