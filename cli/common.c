/* SPDX-License-Identifier: MIT */
/* Front-end helpers shared by the subcommands: messages, exit codes, options. */
#include "cli/cli.h"
#include "cache/cache.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "core/util.h"
#include "core/json.h"

#include <errno.h>
#include <inttypes.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/*
 * Every line about the input goes out through here, escaped: names come
 * from archives and file systems, and a raw ESC in one must not clear the
 * screen or set the title (nor reach a log).
 */
static void emit(struct lp_cli *cli, const char *label, const char *color, const char *msg)
{
	char esc[LP_CLI_LINE * 4 + 1];

	lp_sanitize(msg, esc, sizeof(esc));
	if (!strcmp(label, "error:"))
		lp_cli_note_error(esc);
	fprintf(stderr, "%s: %s%s%s %s\n", cli->prog, cli->color ? color : "", label, cli->color ? "\033[0m" : "", esc);
}

void lp_cli_error(struct lp_cli *cli, int err, const char *fmt, ...)
{
	const char *detail = lp_errmsg();
	char msg[LP_CLI_LINE];
	size_t n = 0;
	va_list ap;

	msg[0] = '\0';
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		n = strlen(msg);
	}
	/*
	 * Say the path once: "cannot write X" + "X: cannot create: ..." reads
	 * "cannot write X: cannot create: ...".
	 */
	if (detail && *detail && n) {
		const char *colon = strstr(detail, ": ");
		size_t k = colon ? (size_t)(colon - detail) : 0;

		if (strncmp(detail, msg, n) == 0)
			n = 0;
		else if (k && k <= n && strncmp(msg + n - k, detail, k) == 0 && (k == n || msg[n - k - 1] == ' '))
			detail = colon + 2;
	}
	if (detail && *detail)
		snprintf(msg + n, sizeof(msg) - n, "%s%s", n ? ": " : "", detail);
	else if (err)
		snprintf(msg + n, sizeof(msg) - n, "%s%s", n ? ": " : "", lp_strerror(err));
	emit(cli, "error:", "\033[1;31m", msg);
}

void lp_cli_warn(struct lp_cli *cli, const char *fmt, ...)
{
	char msg[LP_CLI_LINE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	emit(cli, "warning:", "\033[1;33m", msg);
}

const char *lp_cli_esc(const char *s)
{
	/* A few rotating buffers, so one printf can escape several names (cli/ is single-threaded). */
	static char bufs[8][LP_CLI_LINE * 4 + 1];
	static unsigned k;
	char *b = bufs[k++ % 8];

	return lp_escape(s ? s : "", b, sizeof(bufs[0]));
}

const char *lp_cli_msg(const char *s)
{
	static char bufs[4][LP_CLI_LINE * 4 + 1];
	static unsigned k;
	char *b = bufs[k++ % 4];

	return lp_sanitize(s ? s : "", b, sizeof(bufs[0]));
}

void lp_cli_problems(struct lp_cli *cli, const struct lp_report *rep, int err, const char *outcome)
{
	size_t n = 0;

	for (size_t i = 0; i < rep->n_findings; i++) {
		const struct lp_finding *f = &rep->findings[i];

		if (f->sev == LP_SEV_ERROR) {
			char line[LP_CLI_LINE];

			/* The code in brackets is what docs/analyze-json.md explains. */
			snprintf(line, sizeof(line), "%s [%s]", f->message, f->code);
			emit(cli, "error:", "\033[1;31m", line);
			n++;
		} else if (f->sev == LP_SEV_WARNING) {
			emit(cli, "warning:", "\033[1;33m", f->message);
		}
	}
	/* Past the cap (or on a fatal error) the load stopped: say where. */
	if (err < 0 && err != -LP_E_INPUT)
		lp_cli_error(cli, err, "stopped");
	/* One problem is one line: the error itself says what and where. */
	lp_cli_reason("%zu problem%s in the input%s; %s", n, n == 1 ? "" : "s",
		      err < 0 && err != -LP_E_INPUT ? " (and more not checked)" : "", outcome);
	if (n == 1 && err == -LP_E_INPUT)
		return;
	fprintf(stderr, "%s: %zu problem%s in the input%s; %s\n", cli->prog, n, n == 1 ? "" : "s",
		err < 0 && err != -LP_E_INPUT ? " (and more not checked)" : "", outcome);
}

int lp_cli_exit_for(int err)
{
	if (err >= 0)
		return LP_EXIT_OK;
	switch (-err) {
	case LP_E_USAGE:
		return LP_EXIT_USAGE;
	case LP_E_TOOBIG:
		return LP_EXIT_TOOBIG;
	case LP_E_CHECK:
		return LP_EXIT_CHECK;
	case EINTR:
		return LP_EXIT_INTERRUPTED;
	default:
		return LP_EXIT_ERROR;
	}
}

enum {
	OPT_EXCLUDE = 1000,
	OPT_NO_DEFAULT_EXCLUDES,
	OPT_NO_IGNORE_FILE,
	OPT_LINKS,
	OPT_OVERWRITE,
	OPT_STRIP,
	OPT_NO_STRIP,
	OPT_DEDUPE,
	OPT_PRUNE_FOREIGN,
	OPT_NO_PRUNE_FOREIGN,
	OPT_PRUNE_JUNK,
	OPT_NO_PRUNE_JUNK,
	OPT_PRUNE_PATTERN,
	OPT_ARCH,
	OPT_RUNTIME,
	OPT_NO_CHECK,
	OPT_CACHE_DIR,
	OPT_MAX_EXPAND,
	OPT_INCLUDE_DEV,
	OPT_NO_CACHE,
	OPT_CACHE_MAX,
};

const struct option lp_cli_source_longopts[] = {
	{ "exclude", required_argument, NULL, OPT_EXCLUDE },
	{ "no-default-excludes", no_argument, NULL, OPT_NO_DEFAULT_EXCLUDES },
	{ "no-ignore-file", no_argument, NULL, OPT_NO_IGNORE_FILE },
	{ "links", required_argument, NULL, OPT_LINKS },
	{ "overwrite", no_argument, NULL, OPT_OVERWRITE },
	{ "optimize", no_argument, NULL, 'O' },
	{ "strip", no_argument, NULL, OPT_STRIP },
	{ "no-strip", no_argument, NULL, OPT_NO_STRIP },
	{ "dedupe", required_argument, NULL, OPT_DEDUPE },
	{ "prune-foreign", no_argument, NULL, OPT_PRUNE_FOREIGN },
	{ "no-prune-foreign", no_argument, NULL, OPT_NO_PRUNE_FOREIGN },
	{ "prune-junk", no_argument, NULL, OPT_PRUNE_JUNK },
	{ "no-prune-junk", no_argument, NULL, OPT_NO_PRUNE_JUNK },
	{ "prune-pattern", required_argument, NULL, OPT_PRUNE_PATTERN },
	{ "arch", required_argument, NULL, OPT_ARCH },
	{ "runtime", required_argument, NULL, OPT_RUNTIME },
	{ "no-check", no_argument, NULL, OPT_NO_CHECK },
	{ "cache-dir", required_argument, NULL, OPT_CACHE_DIR },
	{ "max-expand", required_argument, NULL, OPT_MAX_EXPAND },
	{ "include-dev", no_argument, NULL, OPT_INCLUDE_DEV },
	{ "no-cache", no_argument, NULL, OPT_NO_CACHE },
	{ "cache-max", required_argument, NULL, OPT_CACHE_MAX },
	{ "threads", required_argument, NULL, 'j' },
	{ NULL, 0, NULL, 0 },
};

const char lp_cli_source_help[] =
	"Sources:\n"
	"  SOURCE                    a directory, an archive (zip, wheel, jar, tar, tar.gz, tgz, tar.zst),\n"
	"                            or one file (at the root by its name; FILE=NAME renames, FILE=DIR/ places)\n"
	"  SOURCE=PREFIX/            place the source under PREFIX/ in the artifact (e.g. deps/=python/)\n"
	"  --exclude GLOB            leave out matching paths (gitignore-like; repeatable)\n"
	"  --no-default-excludes     keep .git/, .DS_Store, editor and OS junk (excluded by default)\n"
	"  --no-ignore-file          do not read .lambdapackignore in a directory source's root\n"
	"  --links=materialize|refuse|materialize-all\n"
	"                            a symlink leaving the source: store its target's bytes if it stays\n"
	"                            inside the repository (default), refuse it, or store it wherever it points\n"
	"  --overwrite               on a path given by two sources, the later source wins (default: error)\n"
	"  --max-expand SIZE         refuse archives that expand beyond SIZE (default 16G)\n"
	"Optimization:\n"
	"  -O, --optimize            --strip --dedupe=binaries --prune-foreign --prune-junk\n"
	"  --strip / --no-strip      strip debug data and symbol tables from ELF files (libelf, verified)\n"
	"  --dedupe=off|binaries|all store identical files once (as symlinks); 'binaries' never touches\n"
	"                            .js/.json modules, whose resolution depends on their real path\n"
	"  --prune-foreign / --no-prune-foreign  drop binaries for another OS or architecture\n"
	"  --prune-junk / --no-prune-junk        drop caches, tests, docs, source maps inside dependencies\n"
	"  --prune-pattern GLOB      more paths for --prune-junk (repeatable)\n"
	"  --include-dev             keep npm devDependencies and optional packages for other platforms\n"
	"                            (left out by default when node_modules/.package-lock.json marks them)\n"
	"Cache:\n"
	"  --cache-dir DIR           build cache root (default $XDG_CACHE_HOME/lambdapack, ~/.cache/lambdapack):\n"
	"                            compressed zip entries, layer blobs, stripped files, a stat index,\n"
	"                            registry base images (DIR/registry)\n"
	"  --cache-max SIZE          evict least recently used entries beyond SIZE (default 4G)\n"
	"  --no-cache                neither read nor write the cache (the directory is not touched)\n"
	"Target:\n"
	"  --arch x86_64|arm64       target architecture (default: detected from the binaries, else x86_64)\n"
	"  --runtime NAME            e.g. python3.12, nodejs20.x, provided.al2023 (checks glibc and libraries;\n"
	"                            an image's default base is its AWS base image: docs/runtimes.md)\n"
	"  --no-check                report compatibility errors (and an image that would not start) as warnings\n"
	"  -j, --threads N           worker threads (default: online CPUs; output is the same for any N)\n";

static int add_source_arg(struct lp_pack_opts *o, const char *arg)
{
	struct lp_source *v = realloc(o->sources, (o->n_sources + 1) * sizeof(*v));
	int r;

	if (!v)
		return -ENOMEM;
	o->sources = v;
	r = lp_source_parse(arg, (uint16_t)o->n_sources, &o->sources[o->n_sources]);
	if (r < 0)
		return r;
	o->n_sources++;
	return 0;
}

int lp_cli_add_sources(struct lp_cli *cli, int argc, char **argv, struct lp_pack_opts *o)
{
	for (int i = 0; i < argc; i++) {
		int r = add_source_arg(o, argv[i]);

		if (r < 0) {
			lp_cli_error(cli, r, "bad SOURCE '%s'", argv[i]);
			return -LP_E_USAGE;
		}
	}
	if (o->n_sources == 0) {
		lp_cli_error(cli, 0, "no SOURCE given");
		return -LP_E_USAGE;
	}
	return 0;
}

size_t lp_cli_merge_longopts(const struct option *own, size_t n_own, struct option *out, size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < n_own && n + 1 < cap; i++)
		out[n++] = own[i];
	for (size_t i = 0; lp_cli_source_longopts[i].name && n + 1 < cap; i++)
		out[n++] = lp_cli_source_longopts[i];
	memset(&out[n], 0, sizeof(out[n]));
	return n;
}

int lp_cli_shared_opt(struct lp_cli *cli, const char *cmd, const char *usage, int opt, const char *arg,
		      const char *argword, struct lp_pack_opts *o, bool *verbose)
{
	switch (opt) {
	case 'q':
		cli->quiet = true;
		return 1;
	case 'v':
		*verbose = true;
		return 1;
	case 'h':
		fputs(usage, stdout);
		fputs(lp_cli_source_help, stdout);
		fputs(lp_cli_registry_help, stdout);
		return 0;
	case ':':
		lp_cli_error(cli, 0, "option '%s' needs a value", argword);
		return -LP_E_USAGE;
	case '?':
		lp_cli_error(cli, 0, "unknown option '%s' (see 'lambdapack %s --help')", argword, cmd);
		return -LP_E_USAGE;
	default:
		return lp_cli_source_opt(cli, opt, arg, o) > 0 ? 1 : -LP_E_USAGE;
	}
}

/* "--name" of a source option (with "-x/" before it when it has a short form), for messages. */
static const char *source_opt_name(int opt, char *buf, size_t len)
{
	for (size_t i = 0; lp_cli_source_longopts[i].name; i++)
		if (lp_cli_source_longopts[i].val == opt) {
			if (opt < 128)
				snprintf(buf, len, "-%c/--%s", opt, lp_cli_source_longopts[i].name);
			else
				snprintf(buf, len, "--%s", lp_cli_source_longopts[i].name);
			return buf;
		}
	snprintf(buf, len, "an option");
	return buf;
}

int lp_cli_source_opt(struct lp_cli *cli, int opt, const char *arg, struct lp_pack_opts *o)
{
	int r = 0;

	lp_errmsg_clear();
	switch (opt) {
	case OPT_EXCLUDE:
		r = lp_strv_push(&o->input.excludes, arg);
		break;
	case OPT_NO_DEFAULT_EXCLUDES:
		o->input.no_default_excludes = true;
		break;
	case OPT_NO_IGNORE_FILE:
		o->input.no_ignore_file = true;
		break;
	case OPT_LINKS:
		if (!strcmp(arg, "materialize"))
			o->input.links = LP_LINKS_MATERIALIZE;
		else if (!strcmp(arg, "refuse"))
			o->input.links = LP_LINKS_REFUSE;
		else if (!strcmp(arg, "materialize-all"))
			o->input.links = LP_LINKS_MATERIALIZE_ALL;
		else
			goto bad;
		break;
	case OPT_OVERWRITE:
		o->overwrite = true;
		break;
	case 'O':
		o->optimize = true;
		break;
	case OPT_STRIP:
	case OPT_NO_STRIP:
		o->strip = opt == OPT_STRIP;
		o->explicit_opts |= LP_OPT_STRIP;
		break;
	case OPT_DEDUPE:
		if (lp_dedupe_mode_parse(arg, &o->dedupe) < 0)
			goto bad;
		o->explicit_opts |= LP_OPT_DEDUPE;
		break;
	case OPT_PRUNE_FOREIGN:
	case OPT_NO_PRUNE_FOREIGN:
		o->prune_foreign = opt == OPT_PRUNE_FOREIGN;
		o->explicit_opts |= LP_OPT_PRUNE_FOREIGN;
		break;
	case OPT_PRUNE_JUNK:
	case OPT_NO_PRUNE_JUNK:
		o->prune_junk = opt == OPT_PRUNE_JUNK;
		o->explicit_opts |= LP_OPT_PRUNE_JUNK;
		break;
	case OPT_PRUNE_PATTERN:
		r = lp_strv_push(&o->junk_patterns, arg);
		break;
	case OPT_ARCH:
		o->arch = lp_arch_parse(arg);
		if (o->arch == LP_ARCH_UNKNOWN)
			goto bad;
		break;
	case OPT_RUNTIME:
		o->runtime = lp_runtime_find(arg);
		o->runtime_name = arg;
		if (!o->runtime) {
			lp_cli_error(cli, 0, "unknown runtime '%s' (e.g. python3.12, nodejs20.x, provided.al2023)", arg);
			return -LP_E_USAGE;
		}
		break;
	case OPT_NO_CHECK:
		o->no_check = true;
		break;
	case OPT_CACHE_DIR:
		o->cache_dir = arg;
		break;
	case OPT_INCLUDE_DEV:
		o->include_dev = true;
		break;
	case OPT_MAX_EXPAND:
		if (lp_parse_size(arg, &o->input.max_expand) < 0)
			goto bad;
		break;
	case OPT_NO_CACHE:
		o->no_cache = true;
		break;
	case OPT_CACHE_MAX:
		if (lp_parse_size(arg, &o->cache_max) < 0 || o->cache_max == 0)
			goto bad;
		break;
	case 'j': {
		char *end;
		long v = strtol(arg, &end, 10);

		if (*end || v < 1 || v > 64)
			goto bad;
		o->threads = (unsigned)v;
		break;
	}
	default:
		return 0;
	}
	if (r < 0) {
		lp_cli_error(cli, r, NULL);
		return r;
	}
	return 1;
bad:
	/* The parser's own words when it has them, else the option named with what it takes. */
	if (*lp_errmsg()) {
		lp_cli_error(cli, 0, NULL);
	} else {
		char name[64];

		lp_cli_error(cli, 0, "%s takes %s, not '%s' (see --help)", source_opt_name(opt, name, sizeof(name)),
			     opt == 'j' ? "a number from 1 to 64" : opt == OPT_LINKS ? "materialize, refuse or materialize-all" :
			     opt == OPT_ARCH ? "x86_64 or arm64" : opt == OPT_MAX_EXPAND ? "a size such as 16G" : "another value",
			     arg);
	}
	return -LP_E_USAGE;
}

void lp_cli_print_findings(struct lp_cli *cli, const struct lp_report *rep, bool verbose)
{
	for (size_t i = 0; i < rep->n_findings; i++) {
		const struct lp_finding *f = &rep->findings[i];
		const char *col = f->sev == LP_SEV_ERROR ? "\033[1;31m" : f->sev == LP_SEV_WARNING ? "\033[1;33m" : "";

		/* Materialized links are listed by lp_cli_materialized(). */
		if ((f->sev == LP_SEV_INFO && !verbose) || strcmp(f->code, "materialized-link") == 0)
			continue;
		fprintf(stderr, "  %s%-7s%s %s%s%s [%s]\n", cli->color ? col : "", lp_severity_name(f->sev),
			cli->color ? "\033[0m" : "", f->path ? lp_cli_esc(f->path) : "", f->path ? ": " : "",
			lp_cli_msg(f->message), lp_cli_esc(f->code));
	}
}

void lp_cli_materialized(struct lp_cli *cli, const struct lp_entries *l, const struct lp_report *rep, bool verbose)
{
	size_t n = 0;
	uint64_t bytes = 0;
	char h[32];

	for (size_t i = 0; i < rep->n_findings; i++)
		n += strcmp(rep->findings[i].code, "materialized-link") == 0;
	if (!n)
		return;
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].kind == LP_FILE && (l->v[i].flags & LP_F_MATERIALIZED) && !(l->v[i].flags & LP_F_REMOVED))
			bytes += l->v[i].size;
	fprintf(stderr, "  links       %zu materialized from outside the source (%s, %" PRIu64 " bytes)%s\n", n,
		lp_human_size(bytes, h, sizeof(h)), bytes, verbose ? ":" : "; -v lists them");
	if (!verbose)
		return;
	for (size_t i = 0; i < rep->n_findings; i++)
		if (strcmp(rep->findings[i].code, "materialized-link") == 0)
			fprintf(stderr, "    %s\n", lp_cli_msg(rep->findings[i].message));
}

void lp_cli_print_skipped(struct lp_cli *cli, const struct lp_input_opts *o)
{
	for (size_t i = 0; i < o->n_skip; i++) {
		const struct lp_input_skip *k = &o->skip[i];

		for (size_t j = 0; j < k->seen.n; j++) {
			const char *base = strrchr(k->seen.v[j], '/');
			char esc[1024];

			base = base ? base + 1 : k->seen.v[j];
			lp_escape(k->seen.v[j], esc, sizeof(esc));
			fprintf(stderr, "%s: left out %s from the sources: %s%s of this run\n", cli->prog, esc,
				strcmp(base, k->name) ? "a temporary beside " : "", k->what);
		}
		if (k->hits > k->seen.n)
			fprintf(stderr, "%s: left out %zu more beside %s\n", cli->prog, k->hits - k->seen.n, k->what);
	}
}

/* ---- the base image of container and of pack's fallback image ---------- */

int lp_cli_base(struct lp_cli *cli, const char *given, const struct lp_pack_opts *o, const char **ret)
{
	static char auto_spec[512];
	const char *b = given;

	*ret = NULL;
	/* A runtime names its AWS base image; without one the image starts empty, as before. */
	if (!b)
		b = o->runtime ? "auto" : "scratch";
	if (strcmp(b, "scratch") == 0)
		return 0;
	if (strcmp(b, "auto") == 0) {
		if (!o->runtime) {
			lp_cli_error(cli, 0, "--base auto needs --runtime (it picks the runtime's AWS base image)");
			return LP_EXIT_USAGE;
		}
		if (!o->runtime->base_image) {
			lp_cli_error(cli, 0, "no AWS base image is known for %s; give one with --base oci:DIR[:TAG], "
				     "--base docker-archive:FILE or --base docker://REF, or build without one with --base scratch",
				     o->runtime->name);
			return LP_EXIT_ERROR;
		}
		snprintf(auto_spec, sizeof(auto_spec), "docker://%s", o->runtime->base_image);
		*ret = auto_spec;
		return 0;
	}
	if (strncmp(b, "oci:", 4) && strncmp(b, "oci-archive:", 12) && strncmp(b, "docker-archive:", 15) &&
	    strncmp(b, "docker://", 9)) {
		lp_cli_error(cli, 0, "--base takes oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE, "
			     "docker://REF, auto or scratch, not '%s'", b);
		return LP_EXIT_USAGE;
	}
	*ret = b;
	return 0;
}

void lp_cli_base_failed(struct lp_cli *cli, int err, const char *spec)
{
	const char *detail = lp_errmsg();
	const char *ref = strncmp(spec, "docker://", 9) == 0 ? spec + 9 : spec;
	const char *at = strchr(ref, '@'), *slash = strchr(ref, '/');
	char line[LP_CLI_LINE];

	/* user:password@host never reaches a terminal (the registry code refuses such a reference too). */
	if (at && (!slash || at < slash))
		ref = at + 1;

	/* One line: the reference, why, and the ways around a registry out of reach. */
	snprintf(line, sizeof(line), "cannot obtain base image %s: %s; give it another way: --base oci:DIR[:TAG] or "
		 "--base docker-archive:FILE (e.g. from `skopeo copy docker://%s oci:DIR:TAG` where the registry "
		 "is reachable), or build without a base with --base scratch",
		 ref, detail && *detail ? detail : lp_strerror(err), ref);
	lp_errmsg_clear();
	lp_cli_error(cli, 0, "%s", line);
}

/* ---- registries (container and pack) ---- */

const char lp_cli_registry_help[] =
	"\nRegistries:\n"
	"  --base docker://HOST[:PORT]/REPO[:TAG|@sha256:HEX]\n"
	"                            pull the base from a registry (cached under --cache-dir,\n"
	"                            default $XDG_CACHE_HOME/lambdapack; a cached digest needs no network)\n"
	"  --push docker://HOST[:PORT]/REPO[:TAG]\n"
	"                            push the image; prints HOST/REPO@sha256:... (for --image-uri)\n"
	"  --tls-verify=false        unverified TLS, and plain HTTP: for local registries only\n"
	"  Credentials: $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json,\n"
	"  $DOCKER_CONFIG/config.json (auths, credHelpers, credsStore); SSL_CERT_FILE for a CA.\n";

void lp_cli_reg_init(struct lp_cli_reg *r)
{
	memset(r, 0, sizeof(*r));
	r->tls_verify = true;
}

void lp_cli_reg_free(struct lp_cli_reg *r)
{
	lp_reg_pulled_free(&r->pulled);
	lp_reg_pushed_free(&r->pushed);
	if (r->scratch_root) {
		lp_rm_rf(r->scratch_root);
		lp_cleanup_unregister(r->scratch_root);
		free(r->scratch_root);
		r->scratch_root = NULL;
	}
}

int lp_cli_reg_opt(struct lp_cli *cli, int opt, const char *arg, struct lp_cli_reg *r)
{
	switch (opt) {
	case LP_CLI_OPT_PUSH:
		if (strncmp(arg, "docker://", 9)) {
			lp_cli_error(cli, 0, "--push takes docker://HOST[:PORT]/REPO[:TAG], not '%s'", arg);
			return -LP_E_USAGE;
		}
		r->push = arg;
		return 1;
	case LP_CLI_OPT_TLS_VERIFY:
		if (!arg || !strcmp(arg, "true") || !strcmp(arg, "1")) {
			r->tls_verify = true;
		} else if (!strcmp(arg, "false") || !strcmp(arg, "0")) {
			r->tls_verify = false;
		} else {
			lp_cli_error(cli, 0, "--tls-verify takes true or false, not '%s'", arg);
			return -LP_E_USAGE;
		}
		return 1;
	default:
		return 0;
	}
}

static int reg_opts(const struct lp_pack_opts *o, struct lp_cli_reg *r, struct lp_reg_opts *ro)
{
	lp_reg_opts_init(ro);
	ro->cache_root = o->cache_dir;
	/* --no-cache leaves the cache dir alone: a pulled base goes to a scratch root for this run only. */
	if (o->no_cache) {
		if (!r->scratch_root) {
			int e = lp_tmpdir_create("registry", &r->scratch_root);

			if (e < 0)
				return e;
		}
		ro->cache_root = r->scratch_root;
	}
	ro->tls_verify = r->tls_verify;
	/* The base's architecture: the one asked for, else amd64 (Lambda's default). */
	ro->arch = o->arch == LP_ARCH_ARM64 ? "arm64" : "amd64";
	return 0;
}

int lp_cli_base_resolve(struct lp_cli *cli, const char *spec, const struct lp_pack_opts *o,
			struct lp_cli_reg *r, char **ret)
{
	struct lp_reg_opts ro;
	char a[32];
	int e;

	*ret = NULL;
	if (strncmp(spec, "docker://", 9)) {
		*ret = strdup(spec);
		return *ret ? 0 : -ENOMEM;
	}
	e = reg_opts(o, r, &ro);
	if (e < 0) {
		lp_cli_error(cli, e, "--base");
		return e;
	}
	lp_errmsg_clear();
	e = lp_reg_pull(spec, &ro, &r->pulled);
	if (e == -LP_E_USAGE) {
		/* A reference that does not parse: its message never repeats it (it may hold a password). */
		lp_cli_error(cli, e, "--base");
		return e;
	}
	if (e < 0) {
		/* The reference, why, and the other ways to give a base. */
		lp_cli_base_failed(cli, e, spec);
		return e;
	}
	r->have_pulled = true;
	r->base_ref = spec;
	if (r->pulled.offline)
		lp_cli_warn(cli, "registry unreachable; using the cached %s for %s (%s)", r->pulled.ref,
			    lp_cli_esc(spec), lp_cli_msg(r->pulled.offline_reason ? r->pulled.offline_reason : ""));
	else if (!cli->quiet)
		fprintf(stderr, "%s: base %s: %s (%s)\n", cli->prog, lp_cli_esc(spec), r->pulled.ref,
			r->pulled.blobs_fetched ? lp_human_size(r->pulled.bytes_fetched, a, sizeof(a)) :
			r->pulled.network ? "cached, tag checked" : "cached");
	if (r->pulled.blobs_fetched && !cli->quiet)
		fprintf(stderr, "  pulled %zu blobs\n", r->pulled.blobs_fetched);
	*ret = strdup(r->pulled.oci_spec);
	return *ret ? 0 : -ENOMEM;
}

int lp_cli_push(struct lp_cli *cli, const char *layout, const char *manifest_digest,
		const struct lp_pack_opts *o, struct lp_cli_reg *r)
{
	struct lp_reg_opts ro;
	char a[32];
	int e;

	e = reg_opts(o, r, &ro);
	if (e < 0) {
		lp_cli_error(cli, e, "--push");
		return e;
	}
	lp_errmsg_clear();
	e = lp_reg_push(layout, manifest_digest, r->push, r->base_ref, &ro, &r->pushed);
	if (e < 0) {
		lp_cli_error(cli, e, "push failed; the local image is at %s", layout);
		return e;
	}
	r->have_pushed = true;
	if (!cli->quiet)
		fprintf(stderr, "%s: pushed %s: %zu blobs: %zu uploaded (%s), %zu mounted, %zu already there\n",
			cli->prog, r->pushed.tag_ref ? r->pushed.tag_ref : r->pushed.ref, r->pushed.blobs_total,
			r->pushed.blobs_uploaded, lp_human_size(r->pushed.bytes_uploaded, a, sizeof(a)),
			r->pushed.blobs_mounted, r->pushed.blobs_present);
	if (!o->json_path || strcmp(o->json_path, "-"))
		printf("%s\n", r->pushed.ref);
	return 0;
}

int lp_cli_reg_json(struct cJSON *root, const struct lp_cli_reg *r)
{
	cJSON *j;

	if (r->have_pulled) {
		if (!(j = lp_json_obj(root, "base_image")) || lp_json_str(j, "reference", r->base_ref) < 0 ||
		    lp_json_str(j, "resolved", r->pulled.ref) < 0 ||
		    lp_json_str(j, "manifest_digest", r->pulled.manifest_digest) < 0 ||
		    lp_json_bool(j, "offline", r->pulled.offline) < 0 ||
		    lp_json_u64(j, "blobs_fetched", r->pulled.blobs_fetched) < 0 ||
		    lp_json_u64(j, "bytes_fetched", r->pulled.bytes_fetched) < 0)
			return -ENOMEM;
	}
	if (r->have_pushed) {
		if (!(j = lp_json_obj(root, "push")) || lp_json_str(j, "reference", r->pushed.ref) < 0 ||
		    lp_json_str(j, "tag", r->pushed.tag_ref) < 0 || lp_json_str(j, "digest", r->pushed.digest) < 0 ||
		    lp_json_u64(j, "blobs", r->pushed.blobs_total) < 0 ||
		    lp_json_u64(j, "blobs_uploaded", r->pushed.blobs_uploaded) < 0 ||
		    lp_json_u64(j, "blobs_mounted", r->pushed.blobs_mounted) < 0 ||
		    lp_json_u64(j, "blobs_present", r->pushed.blobs_present) < 0 ||
		    lp_json_u64(j, "bytes_uploaded", r->pushed.bytes_uploaded) < 0)
			return -ENOMEM;
	}
	return 0;
}

/*
 * The build cache for this run (none with --no-cache): root from
 * --cache-dir or the default, its stat index named by the command and the
 * absolute source paths. The strip cache lives under the same root.
 * A cache that cannot be used is a warning, never a failure.
 */
int lp_cli_cache_open(struct lp_cli *cli, const char *cmd, struct lp_pack_opts *o)
{
	struct lp_cache_opts co = { .root = o->cache_dir, .max_bytes = o->cache_max };
	char *name = NULL;
	size_t len = strlen(cmd) + 1;
	int r;

	if (o->no_cache) {
		o->cache_dir = NULL;
		return 0;
	}
	for (size_t i = 0; i < o->n_sources; i++)
		len += strlen(o->sources[i].path) + strlen(o->sources[i].prefix) + 4;
	name = malloc(len);
	if (!name)
		return -ENOMEM;
	strcpy(name, cmd);
	for (size_t i = 0; i < o->n_sources; i++) {
		strcat(name, "\n");
		strcat(name, o->sources[i].path);
		strcat(name, "=");
		strcat(name, o->sources[i].prefix);
	}
	co.index_name = name;
	r = lp_cache_open(&co, &o->cache);
	free(name);
	if (r < 0) {
		lp_cli_error(cli, r, "cannot set up the cache");
		return r;
	}
	if (lp_cache_warning(o->cache)) {
		o->cache_warned = true;
		lp_cli_warn(cli, "%s", lp_cli_msg(lp_cache_warning(o->cache)));
	}
	o->cache_dir = lp_cache_enabled(o->cache) ? lp_cache_root(o->cache) : NULL;
	return 0;
}

/* Report dropped entries (info findings), warn once if the cache failed mid-run, close. */
void lp_cli_cache_close(struct lp_cli *cli, struct lp_pack_opts *o, struct lp_report *rep, bool verbose)
{
	struct lp_cache_stats cs;

	if (!o->cache)
		return;
	if (rep)
		(void)lp_cache_report(o->cache, rep);
	lp_cache_close(o->cache);
	lp_cache_get_stats(o->cache, &cs);
	if (verbose && !cli->quiet && lp_cache_enabled(o->cache))
		fprintf(stderr, "  cache       %" PRIu64 " reused, %" PRIu64 " computed, %" PRIu64 " stored, %" PRIu64
			" dropped; stat index: %" PRIu64 " unchanged, %" PRIu64 " hashed; %" PRIu64 " evicted\n",
			cs.hits, cs.misses, cs.stored, cs.dropped, cs.index_hits, cs.index_misses, cs.evicted);
	/* Closing writes the index and evicts: either may find the disk full. */
	if (lp_cache_warning(o->cache) && !o->cache_warned)
		lp_cli_warn(cli, "%s", lp_cli_msg(lp_cache_warning(o->cache)));
	lp_cache_free(o->cache);
	o->cache = NULL;
}
