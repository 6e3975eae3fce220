/* SPDX-License-Identifier: MIT */
#include "core/util.h"
#include "core/err.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

char *lp_human_size(uint64_t n, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = 0;

	if (n < 1024) {
		snprintf(buf, len, "%" PRIu64 " B", n);
		return buf;
	}
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, v >= 100 ? "%.0f %s" : v >= 10 ? "%.1f %s" : "%.2f %s", v, units[u]);
	return buf;
}

int lp_parse_size(const char *s, uint64_t *ret)
{
	char *end;
	double v;
	uint64_t mul = 1;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno || v < 0)
		return -EINVAL;
	while (*end == ' ')
		end++;
	switch (tolower((unsigned char)*end)) {
	case '\0':
		break;
	case 'b':
		break;
	case 'k':
		mul = 1024ULL;
		break;
	case 'm':
		mul = 1024ULL * 1024;
		break;
	case 'g':
		mul = 1024ULL * 1024 * 1024;
		break;
	case 't':
		mul = 1024ULL * 1024 * 1024 * 1024;
		break;
	default:
		return -EINVAL;
	}
	if (*end) {
		end++;
		if (*end == 'i' || *end == 'I')
			end++;
		if (*end == 'b' || *end == 'B')
			end++;
		if (*end)
			return -EINVAL;
	}
	if (v * (double)mul > 1.8e19)
		return -ERANGE;
	*ret = (uint64_t)(v * (double)mul + 0.5);
	return 0;
}

static bool match_class(const char **pp, char c)
{
	const char *p = *pp + 1;
	bool neg = false, hit = false;

	if (*p == '!' || *p == '^') {
		neg = true;
		p++;
	}
	if (*p == ']') {
		hit = c == ']';
		p++;
	}
	while (*p && *p != ']') {
		if (p[1] == '-' && p[2] && p[2] != ']') {
			if (c >= p[0] && c <= p[2])
				hit = true;
			p += 3;
		} else {
			if (c == *p)
				hit = true;
			p++;
		}
	}
	if (*p != ']')
		return false;
	*pp = p + 1;
	return hit != neg;
}

/* Recursive matcher; '*' never crosses '/', '**' does. */
static bool glob_rec(const char *p, const char *s)
{
	while (*p) {
		if (p[0] == '*' && p[1] == '*') {
			p += 2;
			if (*p == '/') {
				/* A double star followed by a slash matches zero or more whole components. */
				p++;
				for (const char *t = s;; t++) {
					if ((t == s || t[-1] == '/') && glob_rec(p, t))
						return true;
					if (!*t)
						return false;
				}
			}
			for (const char *t = s;; t++) {
				if (glob_rec(p, t))
					return true;
				if (!*t)
					return false;
			}
		}
		if (*p == '*') {
			p++;
			for (const char *t = s;; t++) {
				if (glob_rec(p, t))
					return true;
				if (!*t || *t == '/')
					return false;
			}
		}
		if (!*s)
			return false;
		if (*p == '?') {
			if (*s == '/')
				return false;
			p++;
			s++;
			continue;
		}
		if (*p == '[') {
			const char *q = p;

			if (*s == '/' || !match_class(&q, *s))
				return false;
			p = q;
			s++;
			continue;
		}
		if (*p == '\\' && p[1])
			p++;
		if (*p != *s)
			return false;
		p++;
		s++;
	}
	return *s == '\0';
}

bool lp_glob_match(const char *pattern, const char *path)
{
	const char *base;

	if (*pattern == '/')
		return glob_rec(pattern + 1, path);
	if (strchr(pattern, '/'))
		return glob_rec(pattern, path);
	/* No slash: match any component suffix, like gitignore's basename rule. */
	base = strrchr(path, '/');
	return glob_rec(pattern, base ? base + 1 : path);
}

int lp_path_clean(const char *in, char *out)
{
	const char *s = in;
	char *o = out;

	if (*s == '/')
		return -LP_E_UNSAFEPATH;
	while (*s) {
		const char *e = strchr(s, '/');
		size_t len = e ? (size_t)(e - s) : strlen(s);

		if (len == 0 || (len == 1 && s[0] == '.')) {
			/* empty or "." component: skip */
		} else if (len == 2 && s[0] == '.' && s[1] == '.') {
			return -LP_E_UNSAFEPATH;
		} else {
			if (o != out)
				*o++ = '/';
			memcpy(o, s, len);
			o += len;
		}
		s += len;
		if (*s == '/')
			s++;
	}
	*o = '\0';
	if (o == out)
		return -LP_E_UNSAFEPATH;
	return 0;
}

char *lp_path_join(const char *prefix, const char *rel)
{
	size_t pl = prefix ? strlen(prefix) : 0;
	size_t rl = strlen(rel);
	char *out = malloc(pl + rl + 2);

	if (!out)
		return NULL;
	if (pl) {
		memcpy(out, prefix, pl);
		if (out[pl - 1] != '/')
			out[pl++] = '/';
	}
	memcpy(out + pl, rel, rl + 1);
	return out;
}

int lp_strv_push(struct lp_strv *sv, const char *s)
{
	if (sv->n + 1 >= sv->cap) {
		size_t cap = sv->cap ? sv->cap * 2 : 8;
		char **v = realloc(sv->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		sv->v = v;
		sv->cap = cap;
	}
	sv->v[sv->n] = strdup(s);
	if (!sv->v[sv->n])
		return -ENOMEM;
	sv->n++;
	sv->v[sv->n] = NULL;
	return 0;
}

void lp_strv_free(struct lp_strv *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	memset(sv, 0, sizeof(*sv));
}

double lp_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
