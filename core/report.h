/* SPDX-License-Identifier: MIT */
/*
 * What commands find and change, collected for the human summary and the
 * JSON report. Library code appends here instead of printing.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

enum lp_severity {
	LP_SEV_INFO = 0,
	LP_SEV_WARNING,
	LP_SEV_ERROR,
};

/* A compatibility or safety finding about one path (or the whole artifact). */
struct lp_finding {
	enum lp_severity sev;
	char *code;		/* stable id, e.g. "glibc-too-new", "foreign-binary", "wrong-arch" */
	char *path;		/* artifact path or NULL */
	char *message;		/* one line, for people */
};

/* Something an optimizer did (or would do, in analyze). */
struct lp_change {
	char *action;		/* "strip", "dedupe", "prune-foreign", "prune-junk", "strip-skipped" */
	char *path;
	uint64_t saved;		/* bytes of unzipped size saved (0 for skips) */
	char *detail;		/* reason or extra fact, may be NULL */
};

struct lp_report {
	struct lp_finding *findings;
	size_t n_findings, cap_findings;
	struct lp_change *changes;
	size_t n_changes, cap_changes;
};

void lp_report_init(struct lp_report *r);
void lp_report_free(struct lp_report *r);

int lp_report_finding(struct lp_report *r, enum lp_severity sev, const char *code,
		      const char *path, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
int lp_report_change(struct lp_report *r, const char *action, const char *path,
		     uint64_t saved, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * An input problem (unsafe name, escaping link, device member, colliding
 * path ...). With r set and fewer than cap (0 = 100) error findings recorded,
 * it becomes an error finding (code, artifact path or NULL, one-line message
 * that names the input and the member) and 0 is returned: the caller skips
 * that member and goes on, so one run reports every problem it can see.
 * Without r, or past the cap, the message is recorded with lp_fail() and err
 * is returned: the caller stops. pack turns recorded problems into a failed
 * run; analyze reports them as findings.
 */
/* The default cap of lp_report_problem (cap 0). */
#define LP_PROBLEMS_CAP 100

int lp_report_problem(struct lp_report *r, unsigned cap, int err, const char *code,
		      const char *path, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Count findings of exactly this severity. */
size_t lp_report_count(const struct lp_report *r, enum lp_severity sev);

/* Total bytes saved by changes with this action (NULL: all actions). */
uint64_t lp_report_saved(const struct lp_report *r, const char *action);

const char *lp_severity_name(enum lp_severity sev);
