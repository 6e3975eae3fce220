/* SPDX-License-Identifier: MIT */
#include "core/json.h"
#include "core/err.h"
#include "core/fsutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int lp_json_str(cJSON *obj, const char *key, const char *val)
{
	cJSON *v = val ? cJSON_CreateString(val) : cJSON_CreateNull();

	if (!v || !cJSON_AddItemToObject(obj, key, v)) {
		cJSON_Delete(v);
		return -ENOMEM;
	}
	return 0;
}

int lp_json_num(cJSON *obj, const char *key, double val)
{
	return cJSON_AddNumberToObject(obj, key, val) ? 0 : -ENOMEM;
}

int lp_json_u64(cJSON *obj, const char *key, uint64_t val)
{
	/* Exact up to 2^53 (8 PiB), far beyond any Lambda artifact. */
	return cJSON_AddNumberToObject(obj, key, (double)val) ? 0 : -ENOMEM;
}

int lp_json_bool(cJSON *obj, const char *key, int val)
{
	return cJSON_AddBoolToObject(obj, key, val) ? 0 : -ENOMEM;
}

cJSON *lp_json_obj(cJSON *parent, const char *key)
{
	return cJSON_AddObjectToObject(parent, key);
}

cJSON *lp_json_arr(cJSON *parent, const char *key)
{
	return cJSON_AddArrayToObject(parent, key);
}

cJSON *lp_json_push_obj(cJSON *arr)
{
	cJSON *o = cJSON_CreateObject();

	if (!o || !cJSON_AddItemToArray(arr, o)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

int lp_json_write(const cJSON *root, const char *path, FILE *dash)
{
	struct lp_outfile of;
	char *text = cJSON_Print(root);
	int r;

	if (!text)
		return -ENOMEM;
	if (!strcmp(path, "-")) {
		r = fputs(text, dash) < 0 || fputc('\n', dash) < 0 ? -EIO : 0;
		free(text);
		return r;
	}
	r = lp_outfile_open(&of, path);
	if (r < 0)
		goto out;
	r = lp_write_all(of.fd, text, strlen(text));
	if (r == 0)
		r = lp_write_all(of.fd, "\n", 1);
	if (r < 0) {
		lp_fail(r, path, "cannot write report: %s", strerror(-r));
		lp_outfile_abort(&of);
		goto out;
	}
	r = lp_outfile_commit(&of);
out:
	free(text);
	return r;
}
