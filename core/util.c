/* SPDX-License-Identifier: MIT */
#include "core/util.h"
#include "core/err.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
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

/* Length of the valid UTF-8 sequence at s, or 0 if it is not one. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned c = s[0];
	size_t n;
	unsigned cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

bool lp_utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t n = utf8_len(p);

		if (!n)
			return false;
		p += n;
	}
	return true;
}

static char *escape(const char *in, char *out, size_t outlen, bool backslash)
{
	const unsigned char *p = (const unsigned char *)(in ? in : "");
	size_t o = 0;

	if (!outlen)
		return out;
	while (*p) {
		size_t n = utf8_len(p);
		/* C1 controls are U+0080..U+009F: 0xc2 0x80..0x9f in UTF-8. */
		bool c1 = n == 2 && p[0] == 0xc2 && p[1] < 0xa0;
		char tmp[5];
		size_t tn;

		if (n == 1 && *p >= 0x20 && *p != 0x7f && (*p != '\\' || !backslash)) {
			tmp[0] = (char)*p;
			tn = 1;
		} else if (n == 1 && *p == '\\') {
			memcpy(tmp, "\\\\", 2);
			tn = 2;
		} else if (n > 1 && !c1) {
			memcpy(tmp, p, n);
			tn = n;
		} else {
			snprintf(tmp, sizeof(tmp), "\\x%02x", *p);
			tn = 4;
			n = 1;
		}
		if (o + tn >= outlen)
			break;
		memcpy(out + o, tmp, tn);
		o += tn;
		p += n;
	}
	out[o] = '\0';
	return out;
}

char *lp_escape(const char *in, char *out, size_t outlen)
{
	return escape(in, out, outlen, true);
}

char *lp_sanitize(const char *in, char *out, size_t outlen)
{
	return escape(in, out, outlen, false);
}

int lp_grow(void **buf, size_t *cap, size_t need, size_t first)
{
	size_t nc = *cap ? *cap : first;
	void *p;

	if (need <= *cap)
		return 0;
	while (nc < need) {
		if (nc > SIZE_MAX / 2)
			return -ENOMEM;
		nc *= 2;
	}
	p = realloc(*buf, nc);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = nc;
	return 0;
}
