/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the template readers (libyaml tree with its caps,
 * SAM/CloudFormation and serverless.yml) and the handler check on
 * arbitrary bytes. Besides crashes, leaks and sanitizer reports, a broken
 * invariant aborts: an ID that is not a safe file name, a packable
 * function without source, handler, runtime or architecture, a finding
 * without a code or message, findings ranges outside the report.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/entry.h"
#include "core/report.h"
#include "template/template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char text_path[64];

static void check_spec(const struct lp_template *t, const struct lp_tpl_spec *s, const struct lp_report *rep)
{
	if (!s->id || !*s->id || s->id[0] == '.' || strchr(s->id, '/') || strlen(s->id) > 128)
		abort();
	if (s->finding0 > s->finding1 || s->finding1 > rep->n_findings)
		abort();
	if (s->ok && s->kind == LP_TPL_FUNCTION && (!s->source || !s->handler || !s->runtime || !s->arch || !s->key))
		abort();
	if (s->ok && s->kind == LP_TPL_LAYER && !s->source)
		abort();
	if (lp_template_find(t, s->id) == NULL)
		abort();
}

/* Entries where the handler check looks (module.py, file.js), holding the input itself as their bytes. */
static void handler_entries(const struct lp_tpl_spec *s, struct lp_entries *l)
{
	char p[600];
	const char *dot, *slash;
	struct lp_entry *e;
	size_t n;

	if (!s->handler || strlen(s->handler) > 500)
		return;
	dot = strrchr(s->handler, '.');
	if (dot) {
		n = (size_t)(dot - s->handler);
		memcpy(p, s->handler, n);
		p[n] = '\0';
		for (char *q = p; *q; q++)
			if (*q == '.')
				*q = '/';
		strcat(p, ".py");
		if ((e = lp_entries_push(l, p, LP_FILE)))
			e->src = strdup(text_path);
	}
	slash = strrchr(s->handler, '/');
	dot = strchr(slash ? slash + 1 : s->handler, '.');
	if (dot) {
		n = (size_t)(dot - s->handler);
		memcpy(p, s->handler, n);
		strcpy(p + n, ".mjs");
		if ((e = lp_entries_push(l, p, LP_FILE)))
			e->src = strdup(text_path);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lp_template *t = NULL;
	struct lp_report rep;
	int r;

	if (!text_path[0]) {
		int fd = memfd_create("fuzz-text", 0);

		if (fd < 0)
			abort();
		snprintf(text_path, sizeof(text_path), "/proc/self/fd/%d", fd);
	}
	{
		FILE *f = fopen(text_path, "w");

		if (!f)
			abort();
		if (size && fwrite(data, 1, size, f) != size)
			abort();
		fclose(f);
	}
	lp_report_init(&rep);
	r = lp_template_parse("fuzz.yaml", (const char *)data, size, &rep, &t);
	if (r == 0) {
		if (!t)
			abort();
		for (size_t i = 0; i < t->n; i++) {
			struct lp_entries l;

			check_spec(t, &t->specs[i], &rep);
			lp_entries_init(&l);
			handler_entries(&t->specs[i], &l);
			lp_entries_sort(&l);
			/* Duplicate paths would break the binary search's contract: keep one. */
			for (size_t j = 1; j < l.n; j++)
				if (!strcmp(l.v[j].path, l.v[j - 1].path))
					l.v[j].flags |= LP_F_REMOVED;
			if (lp_template_check_handler(t, &t->specs[i], &l, &rep) < 0)
				abort();
			lp_entries_free(&l);
		}
	} else if (t) {
		abort();
	}
	for (size_t i = 0; i < rep.n_findings; i++)
		if (!rep.findings[i].code || !rep.findings[i].message)
			abort();
	lp_template_free(t);
	lp_report_free(&rep);
	return 0;
}
