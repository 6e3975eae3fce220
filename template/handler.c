/* SPDX-License-Identifier: MIT */
/*
 * Is the handler in the artifact? Lambda fails the first invocation with
 * Runtime.ImportModuleError / HandlerNotFound when it is not; this finds it
 * at pack time. Python: the module file and a top-level definition of the
 * function (textual: def, class, assignment or import); Node and Ruby: the
 * module file.
 */
#include "template/internal.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "core/limits.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The live entry at path, following one dedupe link to the copy that holds the bytes. */
static const struct lp_entry *find(const struct lp_entries *l, const char *path)
{
	const struct lp_entry *e = lp_entries_find(l, path);

	if (!e || (e->flags & LP_F_REMOVED))
		return NULL;
	if (e->kind == LP_SYMLINK && (e->flags & LP_F_DUPLICATE) && e->target)
		e = lp_entries_find(l, e->target);
	return e && e->kind == LP_FILE && !(e->flags & LP_F_REMOVED) ? e : NULL;
}

static bool word_at(const char *p, const char *w, size_t n)
{
	return strncmp(p, w, n) == 0 && !(p[n] == '_' || (p[n] >= 'a' && p[n] <= 'z') || (p[n] >= 'A' && p[n] <= 'Z') ||
					  (p[n] >= '0' && p[n] <= '9'));
}

static bool is_ident(char ch)
{
	return ch == '_' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

/* Does Python source text define name at the top level? */
static bool py_defines(const char *text, const char *name)
{
	size_t n = strlen(name);

	for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		const char *p = line;

		if (!strncmp(p, "async ", 6))
			p += 6;
		if (!strncmp(p, "def ", 4) || !strncmp(p, "class ", 6)) {
			p += p[0] == 'd' ? 4 : 6;
			while (*p == ' ')
				p++;
			if (word_at(p, name, n))
				return true;
			continue;
		}
		if (word_at(line, name, n)) {
			p = line + n;
			while (*p == ' ' || *p == '\t')
				p++;
			/* "handler = Mangum(app)", "handler: Callable = ...", "handler, other = ..." */
			if ((*p == '=' && p[1] != '=') || *p == ':' || *p == ',')
				return true;
			continue;
		}
		if (!strncmp(line, "from ", 5) || !strncmp(line, "import ", 7)) {
			const char *end = strchr(line, '\n');

			for (p = line; *p && (!end || p < end); p++)
				if ((p == line || !is_ident(p[-1])) && word_at(p, name, n))
					return true;
		}
	}
	return false;
}

static int missing(struct lp_report *rep, const struct lp_template *t, const struct lp_tpl_spec *s, const char *path,
		   const char *why)
{
	return lp_report_problem(rep, 0, -LP_E_INPUT, "handler-missing", path, "%s: %s: handler '%s' of %s: %s",
				 t->name, s->handler_key ? s->handler_key : s->id, s->handler, s->id, why);
}

static int check_python(const struct lp_template *t, const struct lp_tpl_spec *s, const struct lp_entries *l,
			struct lp_report *rep)
{
	const char *dot = strrchr(s->handler, '.');
	char mod[1024], a[1100], b[1100], why[1400];
	const struct lp_entry *e;
	char *text = NULL;
	int r;

	if (!dot || dot == s->handler || !dot[1] || (size_t)(dot - s->handler) >= sizeof(mod))
		return missing(rep, t, s, NULL, "not MODULE.FUNCTION");
	memcpy(mod, s->handler, (size_t)(dot - s->handler));
	mod[dot - s->handler] = '\0';
	for (char *p = mod; *p; p++)
		if (*p == '.')
			*p = '/';
	snprintf(a, sizeof(a), "%s.py", mod);
	snprintf(b, sizeof(b), "%s/__init__.py", mod);
	e = find(l, a);
	if (!e)
		e = find(l, b);
	if (!e) {
		snprintf(why, sizeof(why), "%s is not in the artifact", a);
		return missing(rep, t, s, a, why);
	}
	if (!e->src)
		return 0;
	r = lp_read_file(e->src, 16u << 20, &text, NULL);
	if (r == -ENOMEM)
		return r;
	/* A file we cannot read here is the pack's problem, not the handler's. */
	if (r < 0)
		return 0;
	if (!py_defines(text, dot + 1)) {
		snprintf(why, sizeof(why), "%s defines no top-level '%s'", e->path, dot + 1);
		r = missing(rep, t, s, e->path, why);
	}
	free(text);
	return r;
}

/* Node and Ruby: the module is the handler up to the first '.' of its last component. */
static int check_file(const struct lp_template *t, const struct lp_tpl_spec *s, const struct lp_entries *l,
		      struct lp_report *rep, const char *const *exts)
{
	const char *slash = strrchr(s->handler, '/'), *dot = strchr(slash ? slash + 1 : s->handler, '.');
	char mod[1024], p[1100], why[4200];
	size_t n;

	if (!dot || dot == (slash ? slash + 1 : s->handler) || !dot[1] || (n = (size_t)(dot - s->handler)) >= sizeof(mod))
		return missing(rep, t, s, NULL, "not FILE.FUNCTION");
	memcpy(mod, s->handler, n);
	mod[n] = '\0';
	for (const char *const *x = exts; *x; x++) {
		snprintf(p, sizeof(p), "%s%s", mod, *x);
		if (find(l, p))
			return 0;
	}
	snprintf(p, sizeof(p), "%s%s", mod, exts[0]);
	snprintf(why, sizeof(why), "none of %s%s%s%s%s is in the artifact", mod, exts[0], exts[1] ? ", " : "",
		 exts[1] ? mod : "", exts[1] ? exts[1] : "");
	if (exts[1] && exts[2])
		snprintf(why + strlen(why), sizeof(why) - strlen(why), ", %s%s", mod, exts[2]);
	return missing(rep, t, s, p, why);
}

int lp_template_check_handler(const struct lp_template *t, const struct lp_tpl_spec *s, const struct lp_entries *l,
			      struct lp_report *rep)
{
	static const char *const node[] = { ".js", ".mjs", ".cjs", NULL };
	static const char *const ruby[] = { ".rb", NULL };
	const struct lp_runtime *rt = s->runtime ? lp_runtime_find(s->runtime) : NULL;

	if (s->kind != LP_TPL_FUNCTION || !s->handler || !rt)
		return 0;
	if (!strcmp(rt->family, "python"))
		return check_python(t, s, l, rep);
	if (!strcmp(rt->family, "nodejs"))
		return check_file(t, s, l, rep, node);
	if (!strcmp(rt->family, "ruby"))
		return check_file(t, s, l, rep, ruby);
	return lp_report_finding(rep, LP_SEV_INFO, "handler-not-checked", NULL,
				 "%s: %s: handler '%s' of %s is not checked for %s (compiled or custom runtime)", t->name,
				 s->handler_key ? s->handler_key : s->id, s->handler, s->id, rt->name);
}
