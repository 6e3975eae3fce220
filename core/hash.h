/* SPDX-License-Identifier: MIT */
/*
 * SHA-256 (portable, plus the x86 SHA extensions when the CPU has them) and
 * the encodings Lambda and OCI use for digests.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lp_sha256 {
	uint32_t h[8];
	uint64_t len;
	uint8_t buf[64];
	size_t fill;
};

void lp_sha256_init(struct lp_sha256 *c);
void lp_sha256_update(struct lp_sha256 *c, const void *data, size_t n);
void lp_sha256_final(struct lp_sha256 *c, uint8_t out[32]);
void lp_sha256(const void *data, size_t n, uint8_t out[32]);

/* SHA-256 of a whole file (streamed, 1 MiB at a time). */
int lp_sha256_file(const char *path, uint8_t out[32]);

/* 64 lowercase hex chars + NUL. */
void lp_hex(const uint8_t *d, size_t n, char *out);
/* The reverse, for exactly 2n lowercase hex digits and nothing after them: true on success. */
bool lp_unhex(const char *h, uint8_t *out, size_t n);

/* Base64 (standard alphabet, padded) of n bytes; out needs 4*ceil(n/3)+1. */
void lp_base64(const uint8_t *d, size_t n, char *out);

/* "ni" when the SHA extensions are in use, else "portable" (for bench output). */
const char *lp_sha256_impl(void);

/* Tests: force the portable code path (1) or go back to auto-detection (0). */
void lp_sha256_force_portable(int on);
