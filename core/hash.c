/* SPDX-License-Identifier: MIT */
#include "core/hash.h"
#include "core/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define LP_HAVE_SHANI_CODE 1
#endif

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static int force_portable;

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void blocks_portable(uint32_t h[8], const uint8_t *p, size_t nblk)
{
	while (nblk--) {
		uint32_t w[64], a, b, c, d, e, f, g, hh;

		for (int i = 0; i < 16; i++)
			w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
			       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
		for (int i = 16; i < 64; i++) {
			uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
			uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);

			w[i] = w[i - 16] + s0 + w[i - 7] + s1;
		}
		a = h[0]; b = h[1]; c = h[2]; d = h[3];
		e = h[4]; f = h[5]; g = h[6]; hh = h[7];
		for (int i = 0; i < 64; i++) {
			uint32_t S1 = ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25);
			uint32_t ch = (e & f) ^ (~e & g);
			uint32_t t1 = hh + S1 + ch + K[i] + w[i];
			uint32_t S0 = ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22);
			uint32_t mj = (a & b) ^ (a & c) ^ (b & c);
			uint32_t t2 = S0 + mj;

			hh = g; g = f; f = e; e = d + t1;
			d = c; c = b; b = a; a = t1 + t2;
		}
		h[0] += a; h[1] += b; h[2] += c; h[3] += d;
		h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
		p += 64;
	}
}

#ifdef LP_HAVE_SHANI_CODE
/* The SHA-NI round structure follows Intel's published reference flow. */
__attribute__((target("sha,sse4.1")))
static void blocks_shani(uint32_t h[8], const uint8_t *p, size_t nblk)
{
	const __m128i MASK = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
	__m128i st0, st1, msg, tmp, m0, m1, m2, m3, abef_save, cdgh_save;

	tmp = _mm_loadu_si128((const __m128i *)&h[0]);
	st1 = _mm_loadu_si128((const __m128i *)&h[4]);
	tmp = _mm_shuffle_epi32(tmp, 0xB1);		/* CDAB */
	st1 = _mm_shuffle_epi32(st1, 0x1B);		/* EFGH */
	st0 = _mm_alignr_epi8(tmp, st1, 8);		/* ABEF */
	st1 = _mm_blend_epi16(st1, tmp, 0xF0);		/* CDGH */

	while (nblk--) {
		abef_save = st0;
		cdgh_save = st1;

#define RND4(mi, k)                                                              \
	msg = _mm_add_epi32(mi, _mm_loadu_si128((const __m128i *)&K[k]));       \
	st1 = _mm_sha256rnds2_epu32(st1, st0, msg);                              \
	msg = _mm_shuffle_epi32(msg, 0x0E);                                      \
	st0 = _mm_sha256rnds2_epu32(st0, st1, msg)

		m0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 0)), MASK);
		m1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16)), MASK);
		m2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 32)), MASK);
		m3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 48)), MASK);

		for (int k = 0; k < 64; k += 16) {
			RND4(m0, k);
			if (k < 48) {
				m0 = _mm_sha256msg1_epu32(m0, m1);
				tmp = _mm_alignr_epi8(m3, m2, 4);
				m0 = _mm_add_epi32(m0, tmp);
				m0 = _mm_sha256msg2_epu32(m0, m3);
			}
			RND4(m1, k + 4);
			if (k < 48) {
				m1 = _mm_sha256msg1_epu32(m1, m2);
				tmp = _mm_alignr_epi8(m0, m3, 4);
				m1 = _mm_add_epi32(m1, tmp);
				m1 = _mm_sha256msg2_epu32(m1, m0);
			}
			RND4(m2, k + 8);
			if (k < 48) {
				m2 = _mm_sha256msg1_epu32(m2, m3);
				tmp = _mm_alignr_epi8(m1, m0, 4);
				m2 = _mm_add_epi32(m2, tmp);
				m2 = _mm_sha256msg2_epu32(m2, m1);
			}
			RND4(m3, k + 12);
			if (k < 48) {
				m3 = _mm_sha256msg1_epu32(m3, m0);
				tmp = _mm_alignr_epi8(m2, m1, 4);
				m3 = _mm_add_epi32(m3, tmp);
				m3 = _mm_sha256msg2_epu32(m3, m2);
			}
		}
#undef RND4
		st0 = _mm_add_epi32(st0, abef_save);
		st1 = _mm_add_epi32(st1, cdgh_save);
		p += 64;
	}

	tmp = _mm_shuffle_epi32(st0, 0x1B);		/* FEBA */
	st1 = _mm_shuffle_epi32(st1, 0xB1);		/* DCHG */
	st0 = _mm_blend_epi16(tmp, st1, 0xF0);		/* DCBA */
	st1 = _mm_alignr_epi8(st1, tmp, 8);		/* ABEF */
	_mm_storeu_si128((__m128i *)&h[0], st0);
	_mm_storeu_si128((__m128i *)&h[4], st1);
}

static int have_shani(void)
{
	static int cached = -1;

	if (force_portable)
		return 0;

	if (cached < 0) {
		unsigned a, b, c, d;
		int ok = 0;

		if (__get_cpuid_count(7, 0, &a, &b, &c, &d))
			ok = (b >> 29) & 1;
		if (ok && __get_cpuid(1, &a, &b, &c, &d))
			ok = (c >> 19) & 1;	/* SSE4.1 */
		if (getenv("LP_SHA_PORTABLE"))
			ok = 0;
		cached = ok;
	}
	return cached;
}
#endif

static void blocks(uint32_t h[8], const uint8_t *p, size_t nblk)
{
#ifdef LP_HAVE_SHANI_CODE
	if (have_shani()) {
		blocks_shani(h, p, nblk);
		return;
	}
#endif
	blocks_portable(h, p, nblk);
}

void lp_sha256_force_portable(int on)
{
	force_portable = on;
}

const char *lp_sha256_impl(void)
{
#ifdef LP_HAVE_SHANI_CODE
	if (have_shani())
		return "ni";
#endif
	return "portable";
}

void lp_sha256_init(struct lp_sha256 *c)
{
	static const uint32_t iv[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
	};

	memcpy(c->h, iv, sizeof(iv));
	c->len = 0;
	c->fill = 0;
}

void lp_sha256_update(struct lp_sha256 *c, const void *data, size_t n)
{
	const uint8_t *p = data;

	c->len += n;
	if (c->fill) {
		size_t take = 64 - c->fill < n ? 64 - c->fill : n;

		memcpy(c->buf + c->fill, p, take);
		c->fill += take;
		p += take;
		n -= take;
		if (c->fill < 64)
			return;
		blocks(c->h, c->buf, 1);
		c->fill = 0;
	}
	if (n >= 64) {
		blocks(c->h, p, n / 64);
		p += n & ~(size_t)63;
		n &= 63;
	}
	if (n) {
		memcpy(c->buf, p, n);
		c->fill = n;
	}
}

void lp_sha256_final(struct lp_sha256 *c, uint8_t out[32])
{
	uint64_t bits = c->len * 8;
	uint8_t pad[72] = { 0x80 };
	size_t padlen = (c->fill < 56 ? 56 : 120) - c->fill;

	for (int i = 0; i < 8; i++)
		pad[padlen + i] = (uint8_t)(bits >> (56 - 8 * i));
	lp_sha256_update(c, pad, padlen + 8);
	for (int i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(c->h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
		out[4 * i + 3] = (uint8_t)c->h[i];
	}
}

void lp_sha256(const void *data, size_t n, uint8_t out[32])
{
	struct lp_sha256 c;

	lp_sha256_init(&c);
	lp_sha256_update(&c, data, n);
	lp_sha256_final(&c, out);
}

int lp_sha256_file(const char *path, uint8_t out[32])
{
	enum { CHUNK = 1 << 20 };
	struct lp_sha256 c;
	uint8_t *buf;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return lp_fail(-errno, path, "cannot open: %s", strerror(errno));
	buf = malloc(CHUNK);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	lp_sha256_init(&c);
	for (;;) {
		ssize_t got = read(fd, buf, CHUNK);

		if (got < 0) {
			if (errno == EINTR)
				continue;
			r = lp_fail(-errno, path, "read failed: %s", strerror(errno));
			break;
		}
		if (got == 0)
			break;
		lp_sha256_update(&c, buf, (size_t)got);
	}
	if (r == 0)
		lp_sha256_final(&c, out);
	free(buf);
	close(fd);
	return r;
}

void lp_hex(const uint8_t *d, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[d[i] >> 4];
		out[2 * i + 1] = hx[d[i] & 15];
	}
	out[2 * n] = '\0';
}

bool lp_unhex(const char *h, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < 2 * n; i++) {
		char ch = h[i];
		unsigned v;

		if (ch >= '0' && ch <= '9')
			v = (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			v = (unsigned)(ch - 'a' + 10);
		else
			return false;
		out[i / 2] = (uint8_t)(i % 2 ? out[i / 2] << 4 | v : v);
	}
	return h[2 * n] == '\0';
}

void lp_base64(const uint8_t *d, size_t n, char *out)
{
	static const char tb[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i = 0;

	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];

		*out++ = tb[v >> 18];
		*out++ = tb[(v >> 12) & 63];
		*out++ = tb[(v >> 6) & 63];
		*out++ = tb[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0);

		*out++ = tb[v >> 18];
		*out++ = tb[(v >> 12) & 63];
		*out++ = i + 1 < n ? tb[(v >> 6) & 63] : '=';
		*out++ = '=';
	}
	*out = '\0';
}
