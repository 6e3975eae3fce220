/* SPDX-License-Identifier: MIT */
/* The report envelope every command's --json shares (core/envelope.h). */
#include "core/envelope.h"
#include "core/json.h"
#include "core/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

cJSON *lp_envelope_new(const char *command)
{
	cJSON *env = cJSON_CreateObject();

	if (!env)
		return NULL;
	if (lp_json_str(env, "schema", LP_REPORT_SCHEMA) || lp_json_str(env, "tool", "lambdapack") ||
	    lp_json_str(env, "version", LP_VERSION) || lp_json_str(env, "command", command) ||
	    !cJSON_AddNullToObject(env, "exit_code") || !cJSON_AddNullToObject(env, "error") ||
	    !lp_json_obj(env, "artifact") || !lp_json_obj(env, "limits") || !lp_json_arr(env, "findings") ||
	    !lp_json_obj(env, "timing")) {
		cJSON_Delete(env);
		return NULL;
	}
	return env;
}

cJSON *lp_envelope_artifact(cJSON *env)
{
	return cJSON_GetObjectItemCaseSensitive(env, "artifact");
}

int lp_envelope_limit(cJSON *env, const char *name, const struct lp_budget *b)
{
	cJSON *limits = cJSON_GetObjectItemCaseSensitive(env, "limits"), *o;

	if (!limits || !(o = lp_json_obj(limits, name)))
		return -ENOMEM;
	if (lp_json_u64(o, "limit", b->limit) || lp_json_u64(o, "used", b->used) ||
	    lp_json_bool(o, "fits", !b->over) || lp_json_u64(o, "over_by", b->over_by) ||
	    lp_json_u64(o, "headroom", b->headroom) ||
	    lp_json_num(o, "percent", (double)(long long)(b->pct * 100 + 0.5) / 100))
		return -ENOMEM;
	return 0;
}

int lp_envelope_findings(cJSON *env, const struct lp_report *rep)
{
	cJSON *arr = cJSON_GetObjectItemCaseSensitive(env, "findings");

	if (!arr)
		return -ENOMEM;
	/* Errors first, then warnings, then info; report order within a severity. */
	for (int sev = LP_SEV_ERROR; sev >= LP_SEV_INFO; sev--)
		for (size_t i = 0; rep && i < rep->n_findings; i++) {
			const struct lp_finding *f = &rep->findings[i];
			cJSON *o;

			if ((int)f->sev != sev)
				continue;
			if (!(o = lp_json_push_obj(arr)) || lp_json_str(o, "severity", lp_severity_name(f->sev)) ||
			    lp_json_str(o, "code", f->code) || lp_json_str(o, "path", f->path) ||
			    lp_json_str(o, "message", f->message))
				return -ENOMEM;
		}
	return 0;
}

int lp_envelope_time(cJSON *env, const char *key, double seconds)
{
	cJSON *t = cJSON_GetObjectItemCaseSensitive(env, "timing");

	if (!t)
		return -ENOMEM;
	cJSON_DeleteItemFromObjectCaseSensitive(t, key);
	/* Milliseconds are all a report needs; fewer digits read better. */
	return lp_json_num(t, key, (double)(long long)(seconds * 1000 + 0.5) / 1000);
}

int lp_envelope_target(cJSON *env, const char *arch, const struct lp_runtime *rt)
{
	cJSON *t = lp_json_obj(env, "target");
	char g[32];

	if (!t || lp_json_str(t, "arch", arch) || lp_json_str(t, "runtime", rt ? rt->name : NULL) ||
	    lp_json_str(t, "os", rt ? rt->os : NULL))
		return -ENOMEM;
	if (rt)
		snprintf(g, sizeof(g), "%u.%u", rt->glibc_major, rt->glibc_minor);
	return lp_json_str(t, "glibc", rt ? g : NULL);
}

static bool envelope_key(const char *k)
{
	static const char *const keys[] = { "schema", "tool", "version", "command", "exit_code", "error" };

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(k, keys[i]))
			return true;
	return false;
}

int lp_envelope_absorb(cJSON *env, cJSON *doc)
{
	cJSON *it;

	if (!doc)
		return -ENOMEM;
	while ((it = doc->child)) {
		cJSON_DetachItemViaPointer(doc, it);
		if (!it->string || envelope_key(it->string)) {
			cJSON_Delete(it);
			continue;
		}
		/*
		 * Replace in place, so the envelope's order stays the same. cJSON
		 * frees the replacement's own key while it sets it: pass a copy.
		 */
		if (cJSON_GetObjectItemCaseSensitive(env, it->string)) {
			char key[256];

			snprintf(key, sizeof(key), "%s", it->string);
			cJSON_ReplaceItemInObjectCaseSensitive(env, key, it);
		} else if (!cJSON_AddItemToObject(env, it->string, it)) {
			cJSON_Delete(it);
			cJSON_Delete(doc);
			return -ENOMEM;
		}
	}
	cJSON_Delete(doc);
	return 0;
}

int lp_envelope_finish(cJSON *env, int exit_code, const char *error, double t0)
{
	cJSON *code = cJSON_CreateNumber(exit_code), *err = error ? cJSON_CreateObject() : cJSON_CreateNull();

	if (!code || !err || (error && lp_json_str(err, "message", error))) {
		cJSON_Delete(code);
		cJSON_Delete(err);
		return -ENOMEM;
	}
	cJSON_ReplaceItemInObjectCaseSensitive(env, "exit_code", code);
	cJSON_ReplaceItemInObjectCaseSensitive(env, "error", err);
	return lp_envelope_time(env, "total_s", lp_now() - t0);
}
