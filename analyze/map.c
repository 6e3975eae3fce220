/* SPDX-License-Identifier: MIT */
#include "analyze/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

int ana_map_init(struct ana_map *m, size_t hint)
{
	size_t cap = 64;

	while (cap < hint * 2)
		cap <<= 1;
	m->keys = calloc(cap, sizeof(*m->keys));
	m->vals = calloc(cap, sizeof(*m->vals));
	m->cap = cap;
	m->n = 0;
	if (!m->keys || !m->vals) {
		ana_map_free(m);
		return -ENOMEM;
	}
	return 0;
}

void ana_map_free(struct ana_map *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

static size_t slot(const struct ana_map *m, const char *key, size_t len)
{
	size_t i = (size_t)hash(key, len) & (m->cap - 1);

	while (m->keys[i] && !(strncmp(m->keys[i], key, len) == 0 && m->keys[i][len] == '\0'))
		i = (i + 1) & (m->cap - 1);
	return i;
}

static int grow(struct ana_map *m)
{
	struct ana_map n;
	int r = ana_map_init(&n, m->cap);

	if (r < 0)
		return r;
	for (size_t i = 0; i < m->cap; i++)
		if (m->keys[i]) {
			size_t j = slot(&n, m->keys[i], strlen(m->keys[i]));

			n.keys[j] = m->keys[i];
			n.vals[j] = m->vals[i];
			n.n++;
		}
	ana_map_free(m);
	*m = n;
	return 0;
}

int ana_map_put(struct ana_map *m, const char *key, size_t val)
{
	size_t i;

	if ((m->n + 1) * 2 > m->cap) {
		int r = grow(m);

		if (r < 0)
			return r;
	}
	i = slot(m, key, strlen(key));
	if (!m->keys[i]) {
		m->keys[i] = key;
		m->n++;
	}
	m->vals[i] = val;
	return 0;
}

size_t *ana_map_getn(const struct ana_map *m, const char *key, size_t len)
{
	size_t i;

	if (!m->cap)
		return NULL;
	i = slot(m, key, len);
	return m->keys[i] ? &m->vals[i] : NULL;
}

size_t *ana_map_get(const struct ana_map *m, const char *key)
{
	return ana_map_getn(m, key, strlen(key));
}
