/* SPDX-License-Identifier: MIT */
#include "core/report.h"
#include "core/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lp_report_init(struct lp_report *r)
{
	memset(r, 0, sizeof(*r));
}

void lp_report_free(struct lp_report *r)
{
	for (size_t i = 0; i < r->n_findings; i++) {
		free(r->findings[i].code);
		free(r->findings[i].path);
		free(r->findings[i].message);
	}
	for (size_t i = 0; i < r->n_changes; i++) {
		free(r->changes[i].action);
		free(r->changes[i].path);
		free(r->changes[i].detail);
	}
	free(r->findings);
	free(r->changes);
	lp_report_init(r);
}

static char *vfmt(const char *fmt, va_list ap)
{
	char *s = NULL;

	if (!fmt)
		return NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		return NULL;
	return s;
}

int lp_report_finding(struct lp_report *r, enum lp_severity sev, const char *code,
		      const char *path, const char *fmt, ...)
{
	struct lp_finding *f;
	va_list ap;

	if (r->n_findings == r->cap_findings) {
		size_t cap = r->cap_findings ? r->cap_findings * 2 : 16;
		void *v = realloc(r->findings, cap * sizeof(*r->findings));

		if (!v)
			return -ENOMEM;
		r->findings = v;
		r->cap_findings = cap;
	}
	f = &r->findings[r->n_findings];
	f->sev = sev;
	f->code = strdup(code);
	f->path = path ? strdup(path) : NULL;
	va_start(ap, fmt);
	f->message = vfmt(fmt, ap);
	va_end(ap);
	if (!f->code || (path && !f->path) || !f->message) {
		free(f->code);
		free(f->path);
		free(f->message);
		return -ENOMEM;
	}
	r->n_findings++;
	return 0;
}

int lp_report_problem(struct lp_report *r, unsigned cap, int err, const char *code,
		      const char *path, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!cap)
		cap = LP_PROBLEMS_CAP;
	if (!r || lp_report_count(r, LP_SEV_ERROR) >= cap)
		return lp_fail(err, NULL, "%s", msg);
	rc = lp_report_finding(r, LP_SEV_ERROR, code, path, "%s", msg);
	return rc < 0 ? rc : 0;
}

int lp_report_change(struct lp_report *r, const char *action, const char *path,
		     uint64_t saved, const char *fmt, ...)
{
	struct lp_change *c;
	va_list ap;

	if (r->n_changes == r->cap_changes) {
		size_t cap = r->cap_changes ? r->cap_changes * 2 : 16;
		void *v = realloc(r->changes, cap * sizeof(*r->changes));

		if (!v)
			return -ENOMEM;
		r->changes = v;
		r->cap_changes = cap;
	}
	c = &r->changes[r->n_changes];
	c->action = strdup(action);
	c->path = path ? strdup(path) : NULL;
	c->saved = saved;
	va_start(ap, fmt);
	c->detail = vfmt(fmt, ap);
	va_end(ap);
	if (!c->action || (path && !c->path)) {
		free(c->action);
		free(c->path);
		free(c->detail);
		return -ENOMEM;
	}
	r->n_changes++;
	return 0;
}

size_t lp_report_count(const struct lp_report *r, enum lp_severity sev)
{
	size_t n = 0;

	for (size_t i = 0; i < r->n_findings; i++)
		if (r->findings[i].sev == sev)
			n++;
	return n;
}

uint64_t lp_report_saved(const struct lp_report *r, const char *action)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < r->n_changes; i++)
		if (!action || strcmp(r->changes[i].action, action) == 0)
			sum += r->changes[i].saved;
	return sum;
}

const char *lp_severity_name(enum lp_severity sev)
{
	switch (sev) {
	case LP_SEV_ERROR:
		return "error";
	case LP_SEV_WARNING:
		return "warning";
	default:
		return "info";
	}
}
