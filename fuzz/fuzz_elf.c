/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the binary-facts reader (from memory and from a file)
 * and the stripper (file in, file out, then its own proof) on arbitrary
 * bytes. Any crash, leak or sanitizer report is a bug.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/elf.h"
#include "core/fsutil.h"
#include "pack/strip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char in_path[64], out_path[64];

static void init_paths(void)
{
	/* memfds give real paths (/proc/self/fd/N) without touching the disk. */
	int in = memfd_create("fuzz-in", 0), out = memfd_create("fuzz-out", 0);

	if (in < 0 || out < 0)
		abort();
	snprintf(in_path, sizeof(in_path), "/proc/self/fd/%d", in);
	snprintf(out_path, sizeof(out_path), "/proc/self/fd/%d", out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lp_binfo *bi = NULL;
	struct lp_strip_result res;
	int fd;

	if (!in_path[0])
		init_paths();
	if (lp_binfo_read_mem(data, size, &bi) == 0)
		lp_binfo_free(bi);

	fd = open(in_path, O_WRONLY | O_TRUNC);
	if (fd < 0)
		abort();
	if (lp_write_all(fd, data, size) < 0)
		abort();
	close(fd);

	fd = open(in_path, O_RDONLY);
	if (fd < 0)
		abort();
	bi = NULL;
	if (lp_binfo_read_fd(fd, &bi) == 0)
		lp_binfo_free(bi);
	close(fd);

	lp_strip_file(in_path, out_path, NULL, &res);
	if (res.outcome == LP_STRIP_OK && lp_strip_verify(in_path, out_path, NULL, 0) != 0)
		abort();	/* the stripper said OK but its own proof disagrees */
	return 0;
}
