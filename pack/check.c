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

/* Is e the file the handler names ("app.handler" -> app.py, app.js, app.mjs ...; "bootstrap")? */
static bool handler_file(const struct lp_check_opts *o, const char *path)
{
	const char *dot, *pdot, *slash;
	size_t n;

	if (!o->handler || !*o->handler)
		return false;
	if (!strcmp(path, o->handler))
		return true;
	dot = strrchr(o->handler, '.');
	n = dot ? (size_t)(dot - o->handler) : strlen(o->handler);
	slash = strrchr(path, '/');
	pdot = strrchr(path, '.');
	if (!pdot || (slash && pdot < slash))
		pdot = path + strlen(path);
	return (size_t)(pdot - path) == n && !strncmp(path, o->handler, n);
}

/*
 * How bad a binary for another platform is, and the way out. Inside a
 * dependency, a file no runtime loads by name (pip's distlib/t64.exe, an
 * Android prebuild) is harmless dead weight: a warning that -O removes. A
 * native module (.so, .node, ...) there would be loaded and fail: an error
 * that -O also removes. The function's own files are never pruned, so
 * their fix is a rebuild.
 */
static enum lp_severity foreign_sev(const struct lp_check_opts *o, const struct lp_deps *ds, const char *path,
				    const char **fix)
{
	if (!lp_deps_find(ds, path, NULL, 0)) {
		*fix = "it is the function's own file, so --prune-foreign keeps it: rebuild it for Linux or --exclude it";
		return err_sev(o);
	}
	*fix = "-O or --prune-foreign removes it";
	if (lp_native_module_name(path) || handler_file(o, path))
		return err_sev(o);
	return LP_SEV_WARNING;
}

/* The runtime of the same family on Amazon Linux 2023 (glibc 2.34), for hints. */
static const char *al2023_sibling(const struct lp_runtime *rt)
{
	static const char *const fam[][2] = {
		{ "python", "python3.12" }, { "nodejs", "nodejs20.x" }, { "java", "java21" },
		{ "provided", "provided.al2023" }, { "ruby", "ruby3.3" }, { "dotnet", "dotnet8" },
	};

	for (size_t i = 0; rt && i < sizeof(fam) / sizeof(fam[0]); i++)
		if (!strcmp(rt->family, fam[i][0]))
			return fam[i][1];
	return NULL;
}

/* glibc's program interpreters as Amazon Linux has them (/lib64 and /lib are /usr's). */
static bool glibc_interp(const char *interp)
{
	static const char *const dirs[] = { "/lib64/", "/lib/", "/usr/lib64/", "/usr/lib/", NULL };
	static const char *const names[] = { "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1", NULL };

	for (const char *const *d = dirs; *d; d++)
		for (const char *const *n = names; *n; n++)
			if (!strncmp(interp, *d, strlen(*d)) && !strcmp(interp + strlen(*d), *n))
				return true;
	return false;
}

static int check_one(const struct index *ix, const struct lp_deps *ds, const struct lp_entry *e,
		     const struct lp_binfo *bi, const struct lp_check_opts *o, enum lp_arch arch,
		     struct lp_report *rep)
{
	const struct lp_runtime *rt = o->runtime;
	const char *fix;
	enum lp_severity sev;
	char archs[64];
	int r;

	arch_names(bi, archs, sizeof(archs));
	if (bi->fmt == LP_BIN_PE && bi->pe_managed)
		return 0;	/* a .NET assembly: IL the runtime loads anywhere */
	if (bi->fmt == LP_BIN_MACHO || bi->fmt == LP_BIN_MACHO_FAT || bi->fmt == LP_BIN_PE) {
		sev = foreign_sev(o, ds, e->path, &fix);
		if (sev == LP_SEV_WARNING)
			return lp_report_finding(rep, sev, "foreign-binary", e->path,
						 "%s binary (%s) inside a dependency: Lambda never runs it; %s",
						 lp_binfmt_name(bi->fmt), archs, fix);
		return lp_report_finding(rep, sev, "foreign-binary", e->path,
					 "%s binary (%s) in a Linux package: loading it fails with \"invalid ELF header\"; %s",
					 lp_binfmt_name(bi->fmt), archs, fix);
	}
	if (bi->fmt != LP_BIN_ELF || (bi->e_type != ET_EXEC && bi->e_type != ET_DYN))
		return 0;
	if (bi->os != LP_OS_LINUX) {
		sev = foreign_sev(o, ds, e->path, &fix);
		if (bi->os == LP_OS_ANDROID)
			return lp_report_finding(rep, sev, "foreign-binary", e->path,
						 "Android ELF (%s, Bionic libc): it cannot load on Lambda (no Android linker or libc); %s",
						 archs, fix);
		return lp_report_finding(rep, sev, "foreign-binary", e->path,
					 "ELF built for another OS (OSABI %u): the loader rejects it (\"ELF file OS ABI invalid\"); %s",
					 (unsigned)bi->elf_osabi, fix);
	}
	if (bi->arch != arch) {
		char alt[160];

		sev = foreign_sev(o, ds, e->path, &fix);
		if (sev == LP_SEV_WARNING)
			sev = err_sev(o);	/* an ELF for the wrong CPU may well be loaded */
		if (!lp_deps_find(ds, e->path, NULL, 0) && (bi->arch == LP_ARCH_X86_64 || bi->arch == LP_ARCH_ARM64)) {
			snprintf(alt, sizeof(alt), "it is the function's own file: rebuild it for %s, or give --arch %s "
				 "if the function runs on %s", lp_arch_name(arch), lp_arch_name(bi->arch), lp_arch_name(bi->arch));
			fix = alt;
		}
		return lp_report_finding(rep, sev, "wrong-arch", e->path,
					 "built for %s (%u-bit) but the function runs on %s: it fails with \"%s\"; %s",
					 lp_arch_name(bi->arch), bi->elf_class == ELFCLASS64 ? 64u : 32u,
					 lp_arch_name(arch),
					 bi->is_pie_or_exec ? "exec format error" : "wrong ELF class / cannot open shared object file",
					 fix);
	}
	if (bi->interp && *bi->interp && !glibc_interp(bi->interp) && !bi->unloadable[0]) {
		char in_pkg[4096];
		bool ours = (!strncmp(bi->interp, "/var/task/", 10) &&
			     normalize(bi->interp + 10, in_pkg) && lookup(ix->paths, ix->npaths, in_pkg)) ||
			    (!strncmp(bi->interp, "/opt/", 5) && normalize(bi->interp + 5, in_pkg) &&
			     lookup(ix->paths, ix->npaths, in_pkg));

		if (!ours && strlen(bi->interp) < sizeof(in_pkg)) {
			r = lp_report_finding(rep, err_sev(o), "interpreter-missing", e->path,
					      "needs the program interpreter %s, which Amazon Linux does not have: it fails with "
					      "\"no such file or directory\"; link it statically or against glibc",
					      bi->interp);
			if (r < 0)
				return r;
		}
	}
	if (bi->unloadable[0])
		return lp_report_finding(rep, err_sev(o), "elf-unloadable", e->path,
					 "%s cannot be loaded: %s",
					 bi->is_pie_or_exec || bi->e_type == ET_EXEC ? "executable" : "shared object",
					 bi->unloadable);
	if (rt && bi->glibc_major &&
	    (bi->glibc_major > rt->glibc_major ||
	     (bi->glibc_major == rt->glibc_major && bi->glibc_minor > rt->glibc_minor))) {
		const char *sib = al2023_sibling(rt);
		char fixbuf[200];

		if (!strcmp(rt->os, "al2") && sib && (bi->glibc_major < 2 || (bi->glibc_major == 2 && bi->glibc_minor <= 34)))
			snprintf(fixbuf, sizeof(fixbuf), "--runtime %s (Amazon Linux 2023, glibc 2.34) runs it, "
				 "or build it on Amazon Linux 2", sib);
		else
			snprintf(fixbuf, sizeof(fixbuf), "build it on %s (or a manylinux wheel for glibc %u.%u)",
				 !strcmp(rt->os, "al2") ? "Amazon Linux 2" : "Amazon Linux 2023", rt->glibc_major,
				 rt->glibc_minor);
		r = lp_report_finding(rep, err_sev(o), "glibc-too-new", e->path,
				      "needs GLIBC_%u.%u but %s (%s) has glibc %u.%u: Lambda fails with \"/lib64/libc.so.6: version `GLIBC_%u.%u' not found (required by /var/task/%s)\"; %s",
				      bi->glibc_major, bi->glibc_minor, rt->name,
				      !strcmp(rt->os, "al2") ? "Amazon Linux 2" : "Amazon Linux 2023",
				      rt->glibc_major, rt->glibc_minor, bi->glibc_major, bi->glibc_minor, e->path, fixbuf);
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

/* ---- provided.*: the bootstrap ------------------------------------------ */

static int check_bootstrap(const struct lp_entries *l, const struct lp_check_opts *o, struct lp_report *rep)
{
	const struct lp_runtime *rt = o->runtime;
	const struct lp_entry *e = lp_entries_find(l, "bootstrap");
	char path[4096] = "bootstrap", next[4096];

	if (!rt || strcmp(rt->family, "provided") || o->image)
		return 0;
	/* A link to the binary is fine: follow it inside the artifact (a few hops). */
	for (int hop = 0; e && e->kind == LP_SYMLINK && !(e->flags & LP_F_REMOVED) && hop < 8; hop++) {
		size_t plen = lp_path_parent_len(path);
		char joined[8192];

		if (!e->target || e->target[0] == '/')
			break;
		snprintf(joined, sizeof(joined), "%.*s%s%s", (int)plen, path, plen ? "/" : "", e->target);
		if (strlen(joined) >= sizeof(next) || !normalize(joined, next))
			break;
		snprintf(path, sizeof(path), "%s", next);
		e = lp_entries_find(l, path);
	}
	if (!e || (e->flags & LP_F_REMOVED) || e->kind == LP_SYMLINK)
		return lp_report_finding(rep, err_sev(o), "bootstrap-missing", "bootstrap",
					 "%s runs the executable file 'bootstrap' at the root of the zip, and there is none: "
					 "Lambda fails with \"Runtime.InvalidEntrypoint\"; give the binary as a SOURCE "
					 "(e.g. target/lambda/bootstrap, or ./main=bootstrap)", rt->name);
	if (e->kind == LP_DIR)
		return lp_report_finding(rep, err_sev(o), "bootstrap-missing", "bootstrap",
					 "%s runs the file 'bootstrap' at the root of the zip, but it is a directory: "
					 "give the binary itself as a SOURCE (e.g. target/lambda/bootstrap/bootstrap=bootstrap)",
					 rt->name);
	if (!(e->mode & 0111))
		return lp_report_finding(rep, err_sev(o), "bootstrap-missing", path,
					 "%s runs 'bootstrap' but it is not executable (mode %04o, not an ELF program or #! script): "
					 "Lambda fails with \"permission denied\"; chmod +x it before packing",
					 rt->name, (unsigned)e->mode);
	return 0;
}

/* ---- python*: the CPython ABI ------------------------------------------ */

/* "python3.12" -> 312; 0 if not a CPython runtime. */
static unsigned runtime_pyver(const struct lp_runtime *rt)
{
	unsigned maj, min;

	if (!rt || strcmp(rt->family, "python") || sscanf(rt->name, "python%u.%u", &maj, &min) != 2)
		return 0;
	return maj * 100 + min;
}

/* "x.cpython-311-x86_64-linux-gnu.so" / "x.cpython-311.pyc" -> 311; 0 if untagged. */
static unsigned cpython_tag(const char *base)
{
	const char *t = strstr(base, ".cpython-");
	unsigned v = 0;
	int n = 0;

	if (!t || sscanf(t + 9, "%u%n", &v, &n) != 1 || n < 2 || n > 4 || v < 30 || v >= 400)
		return 0;
	/* "cpython-311"; before 3.10 two digits: "cpython-37m". */
	return v >= 300 ? v : v / 10 == 3 ? 300 + v % 10 : 0;
}

/* The Python version a .pyc magic number belongs to (ranges from CPython's importlib). */
static unsigned pyc_version(unsigned magic)
{
	static const struct { unsigned lo, ver; } ranges[] = {
		{ 3400, 308 }, { 3420, 309 }, { 3430, 310 }, { 3450, 311 }, { 3500, 312 },
		{ 3550, 313 }, { 3600, 314 }, { 3650, 315 }, { 3700, 0 },
	};

	for (size_t i = 0; i + 1 < sizeof(ranges) / sizeof(ranges[0]); i++)
		if (magic >= ranges[i].lo && magic < ranges[i + 1].lo)
			return ranges[i].ver;
	return 0;
}

static unsigned pyc_file_version(const struct lp_entry *e)
{
	unsigned char h[4];
	FILE *f;

	if (!e->src || !(f = fopen(e->src, "rb")))
		return 0;
	if (fread(h, 1, 4, f) != 4 || h[2] != '\r' || h[3] != '\n') {
		fclose(f);
		return 0;
	}
	fclose(f);
	return pyc_version((unsigned)h[0] | (unsigned)h[1] << 8);
}

static int check_python(const struct lp_entries *l, const struct lp_check_opts *o, struct lp_report *rep)
{
	unsigned want = runtime_pyver(o->runtime);
	const char *stale = NULL;
	unsigned stale_ver = 0;
	size_t n_stale = 0;
	char alt[64];
	int r;

	if (!want)
		return 0;
	for (size_t i = 0; i < l->n; i++) {
		const struct lp_entry *e = &l->v[i];
		const char *base = strrchr(e->path, '/');
		unsigned have;
		bool cache;

		base = base ? base + 1 : e->path;
		if (e->kind != LP_FILE || (e->flags & LP_F_REMOVED))
			continue;
		if (strstr(base, ".abi3.") || strstr(base, ".abi3-"))
			continue;
		if (lp_native_module_name(base) && strstr(base, ".cpython-")) {
			have = cpython_tag(base);
			if (!have || have == want)
				continue;
			snprintf(alt, sizeof(alt), "python%u.%u", have / 100, have % 100);
			r = lp_report_finding(rep, err_sev(o), "python-abi", e->path,
					      "extension module built for Python %u.%u (cpython-%u) but %s runs Python %u.%u: "
					      "import fails with \"No module named ...\"; install it for Python %u.%u "
					      "(pip install --python-version %u.%u --only-binary=:all:)%s%s",
					      have / 100, have % 100, have, o->runtime->name, want / 100, want % 100,
					      want / 100, want % 100, want / 100, want % 100,
					      lp_runtime_find(alt) ? " or use --runtime " : "", lp_runtime_find(alt) ? alt : "");
			if (r < 0)
				return r;
			continue;
		}
		{
			size_t bl = strlen(base);

			if (bl < 5 || strcmp(base + bl - 4, ".pyc"))
				continue;
		}
		cache = (size_t)(base - e->path) >= 12 && !strncmp(base - 12, "__pycache__/", 12) &&
			(base - e->path == 12 || base[-13] == '/');
		have = cache ? cpython_tag(base) : 0;
		if (!have)
			have = pyc_file_version(e);
		if (!have || have == want)
			continue;
		if (cache) {
			/* Never loaded (3.12 looks for .cpython-312.pyc): dead weight, not a failure. */
			if (!n_stale++) {
				stale = e->path;
				stale_ver = have;
			}
			continue;
		}
		snprintf(alt, sizeof(alt), "python%u.%u", have / 100, have % 100);
		r = lp_report_finding(rep, err_sev(o), "python-abi", e->path,
				      "bytecode for Python %u.%u without its source, but %s runs Python %u.%u: import fails "
				      "with \"bad magic number\"; ship the .py file or compile it with Python %u.%u%s%s",
				      have / 100, have % 100, o->runtime->name, want / 100, want % 100, want / 100, want % 100,
				      lp_runtime_find(alt) ? ", or use --runtime " : "", lp_runtime_find(alt) ? alt : "");
		if (r < 0)
			return r;
	}
	if (n_stale)
		return lp_report_finding(rep, LP_SEV_WARNING, "python-abi", stale,
					 "%zu cached .pyc file%s in __pycache__ (like this one, Python %u.%u) %s for another "
					 "Python than %s: never loaded, only bytes; -O or --prune-junk removes them inside "
					 "dependencies", n_stale, n_stale == 1 ? "" : "s", stale_ver / 100, stale_ver % 100,
					 n_stale == 1 ? "is" : "are", o->runtime->name);
	return 0;
}

int lp_check_entries(const struct lp_entries *l, const struct lp_check_opts *o, struct lp_report *rep)
{
	struct index ix;
	struct lp_deps ds = { 0 };
	enum lp_arch arch = o->arch != LP_ARCH_UNKNOWN ? o->arch : lp_detect_arch(l);
	int r;

	r = index_build(l, &ix);
	if (r < 0)
		goto out;
	r = lp_deps_build(l, &ds);
	if (r < 0)
		goto out;
	r = check_bootstrap(l, o, rep);
	if (r < 0)
		goto out;
	r = check_python(l, o, rep);
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
			const char *fix;
			enum lp_severity sev = foreign_sev(o, &ds, e->path, &fix);

			r = lp_report_finding(rep, sev, "foreign-binary", e->path,
					      sev == LP_SEV_WARNING ? "%s binary inside a dependency: Lambda never runs it; %s" :
					      "%s binary in a Linux package: loading it fails with \"invalid ELF header\"; %s",
					      lp_binfmt_name((enum lp_binfmt)e->binfmt), fix);
			if (r < 0)
				goto out;
			continue;
		}
		if (!bi)
			continue;
		r = check_one(&ix, &ds, e, bi, o, arch, rep);
		lp_binfo_free(tmp);
		if (r < 0)
			goto out;
	}
	r = 0;
out:
	lp_deps_free(&ds);
	index_free(&ix);
	return r;
}
