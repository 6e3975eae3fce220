/* SPDX-License-Identifier: MIT */
/*
 * The report envelope: what every command's --json writes, on success and
 * on every failure past argument parsing (docs/report.md, described by
 * docs/report.schema.json). One shape for pack, container, analyze and
 * analyze --diff: schema, tool, version, command, exit_code, error,
 * artifact, limits, findings, timing, in that order, then the command's own
 * members. A command starts one with lp_envelope_new(), fills the common
 * members through the helpers here, adds its own, and the front end ends it
 * with lp_envelope_finish() and writes it with lp_json_write() (atomic).
 *
 * Forms shared by every command: a field named "sha256" is bare lowercase
 * hex; a field named "*digest" is an OCI digest "sha256:<hex>"; a limit is
 * {limit, used, fits, over_by, headroom, percent}; sizes are bytes; times
 * are seconds.
 */
#pragma once

#include <cjson/cJSON.h>
#include <stdint.h>

#include "core/limits.h"
#include "core/report.h"

#define LP_REPORT_SCHEMA "lambdapack/report/1"

/*
 * A new report for command ("pack", "container", "analyze", "diff", ...):
 * schema, tool, version, command, then exit_code and error (null until
 * lp_envelope_finish), an empty artifact object, empty limits, no findings
 * and an empty timing object. NULL on ENOMEM.
 */
cJSON *lp_envelope_new(const char *command);

/* The envelope's artifact object (to add type, path and the rest to). */
cJSON *lp_envelope_artifact(cJSON *env);

/* limits.<name> = {limit, used, fits, over_by, headroom, percent (2 decimals)}. */
int lp_envelope_limit(cJSON *env, const char *name, const struct lp_budget *b);

/* Every finding of rep appended to "findings": errors, then warnings, then info. */
int lp_envelope_findings(cJSON *env, const struct lp_report *rep);

/* timing.<key> = seconds (phase times; lp_envelope_finish adds total_s). */
int lp_envelope_time(cJSON *env, const char *key, double seconds);

/*
 * target = {arch, runtime, os, glibc}: what the artifact was checked
 * against (NULL arch or runtime: null members).
 */
int lp_envelope_target(cJSON *env, const char *arch, const struct lp_runtime *rt);

/*
 * Move a command's own members from doc into env and free doc. A member
 * named like an envelope member replaces it (artifact, limits, findings,
 * timing: the command built them itself); schema, tool, version and
 * command in doc are dropped (the envelope's win).
 */
int lp_envelope_absorb(cJSON *env, cJSON *doc);

/*
 * The end of a run: exit_code, error = {"message": error} (NULL: null) and
 * timing.total_s = now - t0 (lp_now()).
 */
int lp_envelope_finish(cJSON *env, int exit_code, const char *error, double t0);
