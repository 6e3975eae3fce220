/* SPDX-License-Identifier: MIT */
/* JSON output through cJSON: checked builders and atomic writes. */
#pragma once

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>

/* Add helpers that return -ENOMEM instead of silently dropping a field. */
int lp_json_str(cJSON *obj, const char *key, const char *val);	/* NULL -> JSON null */
int lp_json_num(cJSON *obj, const char *key, double val);
int lp_json_u64(cJSON *obj, const char *key, uint64_t val);
int lp_json_bool(cJSON *obj, const char *key, int val);
/* Create and attach an object/array; NULL on ENOMEM. */
cJSON *lp_json_obj(cJSON *parent, const char *key);
cJSON *lp_json_arr(cJSON *parent, const char *key);
/* Append a new object to an array; NULL on ENOMEM. */
cJSON *lp_json_push_obj(cJSON *arr);

/* Pretty-print to a file atomically (temp + rename), or to f if path is "-". */
int lp_json_write(const cJSON *root, const char *path, FILE *dash);
