/* SPDX-License-Identifier: MIT */
/*
 * lambdapack pack --template: every function and local layer a SAM
 * template or serverless.yml deploys, one zip each, through the same
 * pipeline (and checks) as pack. Nothing is written unless every selected
 * artifact passes: one run names every problem it can see.
 */
#include "cli/cli.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "core/envelope.h"
#include "core/json.h"
#include "template/template.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Marks an --out-dir as this tool's, so a later run may add to it. */
#define MARKER ".lambdapack-out"

struct unit {
	struct lp_tpl_spec *spec;
	char *real;			/* the source's real path */
	size_t group;
	bool grouped;			/* group is set (a source that resolved) */
	struct lp_report own;		/* the handler check's findings */
	struct lp_pack_result res;
	char *out;			/* the zip written */
	size_t reused_from;		/* SIZE_MAX: packed itself */
	bool selected;
};

struct group {
	char *key;
	struct lp_pack_opts o;
	struct lp_pack_state st;
	size_t first;			/* the unit whose zip holds the bytes */
	bool prepared;
	bool too_big;
};

struct run {
	struct lp_cli *cli;
	struct lp_template *t;
	struct lp_report rep;		/* the template's own findings and problems */
	struct unit *u;
	size_t nu;
	struct group *g;
	size_t ng;
	char *tdir;			/* the template's directory (real path) */
	char *repo;			/* its repository (lp_repo_root) */
	char out_dir[PATH_MAX];
	size_t n_input, n_check, n_big;	/* error counts by kind, for the exit code */
};

static void run_free(struct run *w)
{
	for (size_t i = 0; i < w->nu; i++) {
		free(w->u[i].real);
		free(w->u[i].out);
		lp_report_free(&w->u[i].own);
	}
	for (size_t i = 0; i < w->ng; i++) {
		free(w->g[i].key);
		lp_pack_state_free(&w->g[i].st);
		lp_pack_opts_free(&w->g[i].o);
	}
	free(w->u);
	free(w->g);
	free(w->tdir);
	free(w->repo);
	lp_report_free(&w->rep);
	lp_template_free(w->t);
}

/* ---- the output directory -------------------------------------------- */

/* Absent, an empty directory or one this command made (MARKER); never a symlink or a file. */
static int out_dir_check(const char *dir)
{
	struct stat st;
	struct dirent *de;
	bool empty = true, ours = false;
	char p[PATH_MAX];
	DIR *d;

	if (lstat(dir, &st) < 0)
		return errno == ENOENT ? 0 : lp_fail(-errno, dir, "cannot use as the output directory: %s", strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return lp_fail(-EEXIST, dir, "exists and is not a directory: give --out-dir a new or empty directory");
	d = opendir(dir);
	if (!d)
		return lp_fail(-errno, dir, "cannot read: %s", strerror(errno));
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		empty = false;
		if (!strcmp(de->d_name, MARKER))
			ours = true;
	}
	closedir(d);
	if (snprintf(p, sizeof(p), "%s/%s", dir, MARKER) >= (int)sizeof(p))
		return lp_fail(-ENAMETOOLONG, dir, "path too long");
	if (ours && (lstat(p, &st) < 0 || !S_ISREG(st.st_mode)))
		ours = false;
	if (!empty && !ours)
		return lp_fail(-EEXIST, dir, "not empty and not a lambdapack output directory (no %s): "
			       "give --out-dir a new or empty directory", MARKER);
	return 0;
}

static int out_dir_create(const char *dir)
{
	char p[PATH_MAX];
	int fd, r;

	r = lp_mkdir_p(dir, 0755);
	if (r < 0)
		return lp_fail(r, dir, "cannot create: %s", strerror(-r));
	if (snprintf(p, sizeof(p), "%s/%s", dir, MARKER) >= (int)sizeof(p))
		return lp_fail(-ENAMETOOLONG, dir, "path too long");
	fd = open(p, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return lp_fail(-errno, p, "cannot create: %s", strerror(errno));
	close(fd);
	return 0;
}

/* Copy the zip at from to the output to (temp + rename): same bytes, no second pack. */
static int copy_zip(const char *from, const char *to)
{
	struct lp_outfile of;
	char buf[65536];
	ssize_t n;
	int fd, r;

	fd = open(from, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return lp_fail(-errno, from, "cannot open: %s", strerror(errno));
	r = lp_outfile_open(&of, to);
	while (r == 0 && (n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		r = n < 0 ? lp_fail(-errno, from, "read failed: %s", strerror(errno)) : lp_write_all(of.fd, buf, (size_t)n);
	}
	close(fd);
	if (r < 0) {
		lp_outfile_abort(&of);
		return r;
	}
	return lp_outfile_commit(&of);
}

/* ---- sources ------------------------------------------------------------- */

static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return !strcmp(dir, "/") || (!strncmp(path, dir, n) && (path[n] == '/' || path[n] == '\0'));
}

/* The real path of a spec's source, inside the template's directory or its repository. */
static int resolve_source(struct run *w, struct unit *u)
{
	const struct lp_tpl_spec *s = u->spec;
	char p[PATH_MAX];
	struct stat st;

	if (snprintf(p, sizeof(p), "%s%s%s", s->source[0] == '/' ? "" : w->tdir, s->source[0] == '/' ? "" : "/",
		     s->source) >= (int)sizeof(p))
		return lp_report_problem(&u->own, 0, -LP_E_INPUT, "codeuri-missing", NULL, "%s: %s: path too long",
					 w->t->name, s->key);
	if (stat(p, &st) < 0)
		return lp_report_problem(&u->own, 0, -LP_E_INPUT, "codeuri-missing", NULL, "%s: %s: '%s' %s", w->t->name,
					 s->key, s->source, errno == ENOENT ? "does not exist" : strerror(errno));
	u->real = realpath(p, NULL);
	if (!u->real)
		return errno == ENOMEM ? -ENOMEM : lp_report_problem(&u->own, 0, -LP_E_INPUT, "codeuri-missing", NULL,
								     "%s: %s: '%s': %s", w->t->name, s->key, s->source,
								     strerror(errno));
	/* A template is input too: it must not send the packer to ~/.ssh or /etc. */
	if (!under(u->real, w->tdir) && !under(u->real, w->repo))
		return lp_report_problem(&u->own, 0, -LP_E_INPUT, "codeuri-outside", NULL,
					 "%s: %s: '%s' resolves to %s, outside the template's directory and its "
					 "repository (%s)", w->t->name, s->key, s->source, u->real, w->repo);
	return 0;
}

/* Units with the same key are packed once: same source, rules, runtime and architecture. */
static int group_key(const struct unit *u, char **ret)
{
	const struct lp_tpl_spec *s = u->spec;
	size_t len = strlen(u->real) + 64 + (s->runtime ? strlen(s->runtime) : 0);
	char *k, *p;

	for (size_t i = 0; i < s->excludes.n; i++)
		len += strlen(s->excludes.v[i]) + 1;
	for (size_t i = 0; i < s->layers.n; i++)
		len += strlen(s->layers.v[i]) + 1;
	k = p = malloc(len);
	if (!k)
		return -ENOMEM;
	p += sprintf(p, "%d\n%s\n%s\n%s\n", s->kind, u->real, s->runtime ? s->runtime : "", s->arch ? s->arch : "");
	for (size_t i = 0; i < s->excludes.n; i++)
		p += sprintf(p, "%s\x01", s->excludes.v[i]);
	*p++ = '\n';
	for (size_t i = 0; i < s->layers.n; i++)
		p += sprintf(p, "%s\x01", s->layers.v[i]);
	*p = '\0';
	*ret = k;
	return 0;
}

static struct unit *unit_by_id(struct run *w, const char *id)
{
	for (size_t i = 0; i < w->nu; i++)
		if (!strcmp(w->u[i].spec->id, id))
			return &w->u[i];
	return NULL;
}

/* The group's options: the command line's shared ones plus what the template says. */
static int group_opts(struct run *w, const struct lp_pack_opts *base, struct group *g, const struct unit *u)
{
	struct lp_pack_opts *o = &g->o;
	const struct lp_tpl_spec *s = u->spec;
	int r;

	lp_pack_opts_init(o);
	o->optimize = base->optimize;
	o->explicit_opts = base->explicit_opts;
	o->strip = base->strip;
	o->dedupe = base->dedupe;
	o->prune_foreign = base->prune_foreign;
	o->prune_junk = base->prune_junk;
	o->include_dev = base->include_dev;
	/* Functions grouped here share their inputs; the first one's handler keeps its file from
	 * being taken for a harmless foreign binary. */
	o->handler = s->handler;
	o->cache_dir = base->cache_dir;
	o->no_check = base->no_check;
	o->level = base->level;
	o->threads = base->threads;
	o->epoch = base->epoch;
	o->overwrite = base->overwrite;
	o->fallback = LP_FALLBACK_NONE;
	o->input.no_default_excludes = base->input.no_default_excludes;
	o->input.no_ignore_file = base->input.no_ignore_file;
	o->input.links = base->input.links;
	o->input.max_expand = base->input.max_expand;
	for (size_t i = 0; i < base->junk_patterns.n; i++)
		if ((r = lp_strv_push(&o->junk_patterns, base->junk_patterns.v[i])) < 0)
			return r;
	/* The template's rules first, the command line's --exclude last (it has the last word). */
	for (size_t i = 0; i < s->excludes.n; i++)
		if ((r = lp_strv_push(&o->input.excludes, s->excludes.v[i])) < 0)
			return r;
	for (size_t i = 0; i < base->input.excludes.n; i++)
		if ((r = lp_strv_push(&o->input.excludes, base->input.excludes.v[i])) < 0)
			return r;
	o->sources = calloc(1, sizeof(*o->sources));
	if (!o->sources)
		return -ENOMEM;
	o->n_sources = 1;
	o->sources[0].path = strdup(u->real);
	o->sources[0].prefix = strdup("");
	/* At the root; a CodeUri that is one file (a Go or Rust bootstrap) keeps its name. */
	o->sources[0].prefix_dir = true;
	if (!o->sources[0].path || !o->sources[0].prefix)
		return -ENOMEM;
	o->runtime_name = s->runtime;
	o->runtime = s->runtime ? lp_runtime_find(s->runtime) : NULL;
	o->arch = s->arch ? lp_arch_parse(s->arch) : LP_ARCH_UNKNOWN;
	if ((r = lp_input_skip_add(&o->input, w->out_dir, "the output directory")) < 0)
		return r;
	if (base->json_path && strcmp(base->json_path, "-") &&
	    (r = lp_input_skip_add(&o->input, base->json_path, "the JSON report")) < 0)
		return r;
	return 0;
}

/* ---- messages ------------------------------------------------------------ */

static void print_errors(struct run *w, const char *id, const struct lp_report *rep)
{
	for (size_t i = 0; i < rep->n_findings; i++) {
		const struct lp_finding *f = &rep->findings[i];

		if (f->sev < LP_SEV_WARNING)
			continue;
		fprintf(stderr, "%s: %s: %s%s%s%s%s [%s]\n", w->cli->prog, f->sev == LP_SEV_ERROR ? "error" : "warning",
			id ? lp_cli_esc(id) : "", id ? ": " : "", f->path && id ? lp_cli_esc(f->path) : "",
			f->path && id ? ": " : "", lp_cli_msg(f->message), lp_cli_esc(f->code));
	}
}

static size_t count_errors(const struct lp_report *rep)
{
	return lp_report_count(rep, LP_SEV_ERROR);
}

/* ---- JSON ---------------------------------------------------------------- */

static int push_findings(cJSON *arr, const struct lp_report *rep)
{
	for (size_t i = 0; i < rep->n_findings; i++) {
		const struct lp_finding *f = &rep->findings[i];
		cJSON *fo = lp_json_push_obj(arr);

		if (!fo || lp_json_str(fo, "severity", lp_severity_name(f->sev)) || lp_json_str(fo, "code", f->code) ||
		    lp_json_str(fo, "path", f->path) || lp_json_str(fo, "message", f->message))
			return -ENOMEM;
	}
	return 0;
}

static const char *kind_name(enum lp_tpl_kind k)
{
	return k == LP_TPL_LAYER ? "layer" : k == LP_TPL_IMAGE ? "image" : k == LP_TPL_PREBUILT ? "prebuilt" : "function";
}

/*
 * The --json report (docs/report.md): the common envelope with command
 * "template", the template as its artifact, the template-level findings,
 * and one pack report per artifact in "artifacts" (each with its own
 * findings). Written on every exit past argument parsing, so a failed run
 * lists what it got to.
 */
static cJSON *build_json(struct run *w, const char *path)
{
	cJSON *root = lp_envelope_new("template"), *arts, *a, *art;
	static const char *const drop[] = { "schema", "tool", "version", "command", "exit_code", "error", "findings" };

	if (!root || !(art = lp_envelope_artifact(root)) || lp_json_str(art, "type", "template") ||
	    lp_json_str(art, "path", path) ||
	    lp_json_str(art, "format", !w->t ? NULL : w->t->format == LP_TPL_SAM ? "sam" : "serverless") ||
	    lp_json_str(art, "out_dir", *w->out_dir ? w->out_dir : NULL) || lp_envelope_findings(root, &w->rep) ||
	    !(arts = lp_json_arr(root, "artifacts")))
		goto fail;
	for (size_t i = 0; i < w->nu; i++) {
		struct unit *u = &w->u[i];
		struct group *g;
		cJSON *fa;

		if (!u->selected)
			continue;
		if (u->spec->kind == LP_TPL_IMAGE || u->spec->kind == LP_TPL_PREBUILT) {
			if (!(a = lp_json_push_obj(arts)) || lp_json_str(a, "id", u->spec->id) ||
			    lp_json_str(a, "kind", kind_name(u->spec->kind)) || lp_json_str(a, "path", NULL))
				goto fail;
			continue;
		}
		/* The pack report of the artifact, without the envelope's own members. */
		g = u->grouped ? &w->g[u->group] : NULL;
		if (!(a = lp_envelope_new("pack")))
			goto fail;
		cJSON_AddItemToArray(arts, a);
		if (g && lp_pack_json(&g->o, &g->st, g->prepared, &u->res, a) < 0)
			goto fail;
		for (size_t k = 0; k < sizeof(drop) / sizeof(drop[0]); k++)
			cJSON_DeleteItemFromObjectCaseSensitive(a, drop[k]);
		if (lp_json_str(a, "id", u->spec->id) || lp_json_str(a, "kind", kind_name(u->spec->kind)) ||
		    lp_json_str(a, "path", u->out) || lp_json_str(a, "code_sha256", u->out ? u->res.code_sha256 : NULL) ||
		    lp_json_str(a, "handler", u->spec->handler) || lp_json_str(a, "source", u->real) ||
		    lp_json_str(a, "arch_from", u->spec->arch_from) ||
		    lp_json_str(a, "reused_from", u->reused_from == SIZE_MAX ? NULL : w->u[u->reused_from].spec->id) ||
		    !(fa = lp_json_arr(a, "findings")) || (g && push_findings(fa, &g->st.report)) ||
		    push_findings(fa, &u->own))
			goto fail;
	}
	return root;
fail:
	cJSON_Delete(root);
	return NULL;
}

/* ---- the run ------------------------------------------------------------- */

static int usage_conflicts(struct lp_cli *cli, const struct lp_pack_opts *o, const struct lp_cli_template *tpl, int n_args,
			   const char *image_output)
{
	const char *bad = !tpl->path ? "--function/--out-dir (without --template)" : n_args > 0 ? "SOURCE arguments" :
			  o->output ? "-o" : image_output ? "--image-output" : o->layers.n ? "--with-layer" :
			  o->runtime_name ? "--runtime" : o->arch != LP_ARCH_UNKNOWN ? "--arch" : NULL;

	if (!bad)
		return 0;
	if (!tpl->path)
		lp_cli_error(cli, 0, "--function and --out-dir go with --template FILE");
	else
		lp_cli_error(cli, 0, "--template takes sources, outputs, runtimes, architectures and layers from the "
			     "template: drop %s", bad);
	return -LP_E_USAGE;
}

/* With --function, what the template says about the others is not this run's business. */
static void drop_unselected(struct run *w)
{
	size_t o = 0;

	for (size_t i = 0; i < w->rep.n_findings; i++) {
		bool keep = true;

		for (size_t j = 0; j < w->nu; j++)
			if (!w->u[j].selected && i >= w->u[j].spec->finding0 && i < w->u[j].spec->finding1)
				keep = false;
		if (keep) {
			w->rep.findings[o++] = w->rep.findings[i];
		} else {
			free(w->rep.findings[i].code);
			free(w->rep.findings[i].path);
			free(w->rep.findings[i].message);
		}
	}
	w->rep.n_findings = o;
}

/* Mark the units to pack: the --function IDs and the layers they use, or everything. */
static int select_units(struct run *w, const struct lp_cli_template *tpl)
{
	int r;

	for (size_t i = 0; i < w->nu; i++)
		w->u[i].selected = tpl->functions.n == 0;
	for (size_t i = 0; i < tpl->functions.n; i++) {
		struct unit *u = unit_by_id(w, tpl->functions.v[i]);

		if (!u) {
			char names[512] = "";
			size_t n = 0;

			for (size_t j = 0; j < w->nu && n + 80 < sizeof(names); j++)
				n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%s", n ? ", " : "", w->u[j].spec->id);
			r = lp_report_problem(&w->rep, 0, -LP_E_INPUT, "function-unknown", NULL,
					      "%s: --function %s: no function or layer of that name in the template (it has: %s)",
					      w->t->name, tpl->functions.v[i], n ? names : "none");
			if (r < 0)
				return r;
			continue;
		}
		u->selected = true;
	}
	for (size_t i = 0; i < w->nu; i++) {
		if (!w->u[i].selected)
			continue;
		for (size_t j = 0; j < w->u[i].spec->layers.n; j++) {
			struct unit *l = unit_by_id(w, w->u[i].spec->layers.v[j]);

			if (l)
				l->selected = true;
		}
	}
	return 0;
}

static void summary_line(struct run *w, const struct unit *u)
{
	const struct lp_tpl_spec *s = u->spec;
	const struct lp_runtime *rt;
	char a[32], b[32], glibc[40] = "";

	if (s->kind == LP_TPL_IMAGE || s->kind == LP_TPL_PREBUILT) {
		fprintf(stderr, "%s: skipped %s: %s\n", w->cli->prog, lp_cli_esc(s->id),
			s->kind == LP_TPL_IMAGE ? "a container image function (build it with `lambdapack container`)"
						: "already built and in S3");
		return;
	}
	rt = s->runtime ? lp_runtime_find(s->runtime) : NULL;
	if (rt)
		snprintf(glibc, sizeof(glibc), " (glibc %u.%u)", rt->glibc_major, rt->glibc_minor);
	fprintf(stderr, "%s: wrote %s: %s%s%s %s%s%s%s, %s zipped, %s unzipped, CodeSha256 %s%s%s%s\n", w->cli->prog,
		lp_cli_esc(u->out), s->kind == LP_TPL_LAYER ? "layer, " : "", s->runtime ? s->runtime : "any runtime",
		glibc, lp_arch_name(w->g[u->group].st.arch), s->arch_from ? " (from " : " (detected", s->arch_from ? lp_cli_esc(s->arch_from) : "",
		")", lp_human_size(u->res.zipped, a, sizeof(a)), lp_human_size(u->res.unzipped, b, sizeof(b)),
		u->res.code_sha256, u->reused_from == SIZE_MAX ? "" : " (same inputs as ",
		u->reused_from == SIZE_MAX ? "" : lp_cli_esc(w->u[u->reused_from].spec->id),
		u->reused_from == SIZE_MAX ? "" : ": packed once)");
}

int lp_cli_pack_template(struct lp_cli *cli, struct lp_pack_opts *base, struct lp_cli_template *tpl, int n_args,
			 const char *image_output, bool verbose)
{
	struct run w = { .cli = cli };
	char *slash, tpath[PATH_MAX];
	int r, ret = LP_EXIT_ERROR;
	double t0 = lp_now();

	if (usage_conflicts(cli, base, tpl, n_args, image_output) < 0)
		return LP_EXIT_USAGE;
	lp_report_init(&w.rep);
	lp_errmsg_clear();
	r = lp_template_load(tpl->path, &w.rep, &w.t);
	if (r == -LP_E_INPUT) {
		print_errors(&w, NULL, &w.rep);
		/* One problem is one line: it says what and where. */
		lp_cli_reason("%zu %s in %s; no artifact written", count_errors(&w.rep),
			      lp_plural(count_errors(&w.rep), "problem", "problems"), tpl->path);
		if (count_errors(&w.rep) > 1)
			fprintf(stderr, "%s: %zu problems in %s; no artifact written\n", cli->prog, count_errors(&w.rep),
				lp_cli_esc(tpl->path));
		goto out;
	}
	if (r < 0) {
		lp_cli_error(cli, r, "cannot read template %s", tpl->path);
		ret = lp_cli_exit_for(r);
		goto out;
	}
	/* Sources are relative to the template's own directory, whatever the working directory. */
	snprintf(tpath, sizeof(tpath), "%s", tpl->path);
	slash = strrchr(tpath, '/');
	if (slash)
		*(slash == tpath ? slash + 1 : slash) = '\0';
	w.tdir = realpath(slash ? tpath : ".", NULL);
	if (!w.tdir || (r = lp_repo_root(w.tdir, &w.repo)) < 0) {
		lp_cli_error(cli, w.tdir ? r : -errno, "cannot resolve the template's directory");
		goto out;
	}
	if (tpl->out_dir)
		snprintf(w.out_dir, sizeof(w.out_dir), "%s", tpl->out_dir);
	else if (snprintf(w.out_dir, sizeof(w.out_dir), "%s%s.lambdapack", slash ? tpath : "",
			  slash && slash != tpath ? "/" : "") >= (int)sizeof(w.out_dir)) {
		lp_cli_error(cli, -ENAMETOOLONG, "%s: path too long", tpl->path);
		goto out;
	}
	lp_errmsg_clear();
	if ((r = out_dir_check(w.out_dir)) < 0) {
		lp_cli_error(cli, r, NULL);
		goto out;
	}

	w.u = calloc(w.t->n ? w.t->n : 1, sizeof(*w.u));
	w.g = calloc(w.t->n ? w.t->n : 1, sizeof(*w.g));
	if (!w.u || !w.g) {
		r = -ENOMEM;
		goto fail;
	}
	w.nu = w.t->n;
	for (size_t i = 0; i < w.nu; i++) {
		w.u[i].spec = &w.t->specs[i];
		w.u[i].reused_from = SIZE_MAX;
		lp_report_init(&w.u[i].own);
	}
	if ((r = select_units(&w, tpl)) < 0)
		goto fail;
	drop_unselected(&w);

	/* Resolve and group: identical inputs are one group, packed once. Layers first: functions count their size. */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < w.nu; i++) {
			struct unit *u = &w.u[i];
			char *key = NULL;
			size_t gi;

			if (!u->selected || !u->spec->ok || u->spec->kind == LP_TPL_IMAGE || u->spec->kind == LP_TPL_PREBUILT ||
			    (u->spec->kind == LP_TPL_LAYER) != (pass == 0))
				continue;
			if ((r = resolve_source(&w, u)) < 0)
				goto fail;
			if (!u->real || count_errors(&u->own))
				continue;
			if ((r = group_key(u, &key)) < 0)
				goto fail;
			for (gi = 0; gi < w.ng && strcmp(w.g[gi].key, key); gi++)
				;
			u->group = gi;
			u->grouped = true;
			if (gi < w.ng) {
				free(key);
				u->reused_from = w.g[gi].first;
				continue;
			}
			w.g[gi].key = key;
			w.g[gi].first = i;
			lp_pack_state_init(&w.g[gi].st);
			w.ng++;
			if ((r = group_opts(&w, base, &w.g[gi], u)) < 0)
				goto fail;
		}

	/* Pack (in memory and staging: nothing is written yet) and check every group. */
	lp_progress_start(cli, "reading sources");
	for (size_t gi = 0; gi < w.ng; gi++) {
		struct group *g = &w.g[gi];
		const struct lp_tpl_spec *s = w.u[g->first].spec;
		struct lp_budget b;

		lp_errmsg_clear();
		r = lp_pack_prepare(&g->o, &g->st);
		if (r == -EINTR)
			goto fail;
		if (r < 0 && !g->st.n_problems) {
			/* One failure that is not a list of problems (an unreadable archive ...): it becomes one. */
			if ((r = lp_report_problem(&w.u[g->first].own, 0, -LP_E_INPUT, "input-error", NULL, "%s: %s: %s",
						   w.t->name, s->key, *lp_errmsg() ? lp_errmsg() : lp_strerror(r))) < 0)
				goto fail;
			continue;
		}
		if (r < 0)
			continue;
		g->prepared = true;
		/* Local layers count against the function's 262,144,000 bytes, as --with-layer does. */
		for (size_t j = 0; j < s->layers.n; j++) {
			struct unit *l = unit_by_id(&w, s->layers.v[j]);

			if (l && l->real && w.g[l->group].prepared)
				g->st.layers_unzipped += lp_entries_unzipped_size(&w.g[l->group].st.entries);
		}
		lp_budget_unzipped(lp_entries_unzipped_size(&g->st.entries), g->st.layers_unzipped, &b);
		if (b.over) {
			char x[32];

			g->too_big = true;
			if ((r = lp_report_finding(&w.u[g->first].own, LP_SEV_ERROR, "too-big", NULL,
						   "%s: %s: %s: unzipped size %" PRIu64 " bytes is over Lambda's limit%s by %s; "
						   "try -O, or `lambdapack pack --fallback=container` for an image",
						   w.t->name, s->key, s->id, b.used, g->st.layers_unzipped ? " (minus its layers)" : "",
						   lp_human_size(b.over_by, x, sizeof(x)))) < 0)
				goto fail;
		}
	}
	for (size_t i = 0; i < w.nu; i++) {
		struct unit *u = &w.u[i];

		if (u->selected && u->real && !count_errors(&u->own) && w.g[u->group].prepared &&
		    (r = lp_template_check_handler(w.t, u->spec, &w.g[u->group].st.entries, &u->own)) < 0)
			goto fail;
	}
	lp_progress_stop();

	/* Every problem, then the verdict: nothing is written if one artifact fails. */
	w.n_input = count_errors(&w.rep);
	print_errors(&w, NULL, &w.rep);
	for (size_t i = 0; i < w.nu; i++) {
		struct unit *u = &w.u[i];
		struct group *g;

		if (!u->selected)
			continue;
		for (size_t k = 0; k < u->own.n_findings; k++)
			if (u->own.findings[k].sev == LP_SEV_ERROR) {
				if (!strcmp(u->own.findings[k].code, "too-big"))
					w.n_big++;
				else
					w.n_input++;
			}
		print_errors(&w, NULL, &u->own);
		if (!u->real || count_errors(&u->own) || u->reused_from != SIZE_MAX)
			continue;
		g = &w.g[u->group];
		if (!g->prepared) {
			/* Input problems of this source (escaping links, bad names ...). */
			w.n_input += count_errors(&g->st.report);
			print_errors(&w, u->spec->id, &g->st.report);
		} else if (count_errors(&g->st.report)) {
			w.n_check += count_errors(&g->st.report);
			fprintf(stderr, "%s: error: %s: %s: compatibility check failed (%s, %s from %s):\n", cli->prog,
				lp_cli_esc(w.t->name), lp_cli_esc(u->spec->id), u->spec->runtime ? u->spec->runtime : "no runtime",
				lp_arch_name(g->st.arch), u->spec->arch_from ? lp_cli_esc(u->spec->arch_from) : "detection");
			lp_cli_print_findings(cli, &g->st.report, verbose);
		}
	}
	if (w.n_input || w.n_check || w.n_big) {
		size_t n = w.n_input + w.n_check + w.n_big;

		lp_cli_reason("%zu %s in %s; no artifact written", n, lp_plural(n, "problem", "problems"), w.t->name);
		if (n > 1)
			fprintf(stderr, "%s: %zu problems in %s; no artifact written\n", cli->prog, n, lp_cli_esc(w.t->name));
		if (w.n_check && !w.n_input)
			fprintf(stderr, "hint: --no-check reports compatibility errors as warnings and packs anyway\n");
		ret = w.n_input ? LP_EXIT_ERROR : w.n_check ? LP_EXIT_CHECK : LP_EXIT_TOOBIG;
		goto out;
	}

	/* Write: each group once, then its twins as copies of the same bytes. */
	lp_errmsg_clear();
	if ((r = out_dir_create(w.out_dir)) < 0)
		goto fail;
	lp_progress_start(cli, "writing zips");
	for (size_t i = 0; i < w.nu; i++) {
		struct unit *u = &w.u[i];
		struct group *g;
		char p[PATH_MAX];

		if (!u->selected || !u->real)
			continue;
		g = &w.g[u->group];
		if (snprintf(p, sizeof(p), "%s/%s.zip", w.out_dir, u->spec->id) >= (int)sizeof(p)) {
			r = lp_fail(-ENAMETOOLONG, w.out_dir, "path too long");
			goto fail;
		}
		if (!(u->out = strdup(p))) {
			r = -ENOMEM;
			goto fail;
		}
		if (u->reused_from == SIZE_MAX) {
			g->o.output = u->out;
			r = lp_cli_pack_write_zip(&g->o, &g->st, &u->res);
		} else {
			r = copy_zip(w.u[u->reused_from].out, u->out);
			u->res = w.u[u->reused_from].res;
		}
		u->res.path = u->out;
		if (r < 0)
			goto fail;
	}
	lp_progress_stop();
	if (!cli->quiet)
		for (size_t i = 0; i < w.nu; i++)
			if (w.u[i].selected && (w.u[i].real || w.u[i].spec->kind == LP_TPL_IMAGE ||
						w.u[i].spec->kind == LP_TPL_PREBUILT))
				summary_line(&w, &w.u[i]);
	/* -q silences the summary, not a warning. */
	{
		for (size_t gi = 0; gi < w.ng; gi++) {
			const struct lp_report *rep = &w.g[gi].st.report;

			for (size_t k = 0; k < rep->n_findings; k++)
				if (rep->findings[k].sev >= LP_SEV_WARNING || verbose) {
					fprintf(stderr, "%s:\n", lp_cli_esc(w.u[w.g[gi].first].spec->id));
					lp_cli_print_findings(cli, rep, verbose);
					break;
				}
		}
		if (verbose) {
			lp_cli_print_findings(cli, &w.rep, true);
			for (size_t i = 0; i < w.nu; i++)
				lp_cli_print_findings(cli, &w.u[i].own, true);
		}
	}
	ret = LP_EXIT_OK;
	goto out;
fail:
	lp_progress_stop();
	lp_cli_error(cli, r, NULL);
	ret = lp_cli_exit_for(r);
out:
	lp_progress_stop();
	/* Past argument parsing, every exit writes the report. */
	if (base->json_path)
		ret = lp_cli_write_report(cli, build_json(&w, tpl->path), base->json_path, ret, t0);
	run_free(&w);
	return ret;
}
