/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the two parsers of registry/ that read what others
 * write: docker:// references (command lines, scripts) and WWW-Authenticate
 * values (any registry's answer). A reference that parses must print and
 * parse back to itself; a challenge's fields must be NUL-terminated strings
 * taken from the input. Any crash, leak or sanitizer report is a bug.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const char *a, const char *b)
{
	if ((a == NULL) != (b == NULL) || (a && strcmp(a, b)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), *back;
	struct lp_reg_ref r, r2;
	struct lp_reg_challenge c;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (lp_reg_ref_parse(s, &r) == 0) {
		back = lp_reg_ref_str(&r);
		if (!back || lp_reg_ref_parse(back, &r2) != 0)
			abort();
		same(r.host, r2.host);
		same(r.repo, r2.repo);
		same(r.digest, r2.digest);
		if (!r.digest)
			same(r.tag, r2.tag);
		lp_reg_ref_free(&r2);
		lp_reg_ref_free(&r);
		free(back);
	}
	if (lp_reg_challenge_parse(s, &c) == 0) {
		if (!c.scheme[0] || (c.realm && strlen(c.realm) > size) || (c.scope && strlen(c.scope) > size))
			abort();
		lp_reg_challenge_free(&c);
	}
	free(s);
	return 0;
}
