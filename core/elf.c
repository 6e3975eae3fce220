/* SPDX-License-Identifier: MIT */
#include "core/elf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint32_t rd32le(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

enum lp_binfmt lp_bin_sniff(const void *buf, size_t n)
{
	const unsigned char *p = buf;

	if (n >= 4 && memcmp(p, "\x7f" "ELF", 4) == 0)
		return LP_BIN_ELF;
	if (n >= 4) {
		uint32_t be = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];

		if (be == 0xfeedface || be == 0xfeedfacf || be == 0xcefaedfe || be == 0xcffaedfe)
			return LP_BIN_MACHO;
		/*
		 * 0xcafebabe is also a Java class file; like LLVM, call it fat
		 * Mach-O only when the slice count is small (class files put
		 * their major version, >= 43, there).
		 */
		if ((be == 0xcafebabe || be == 0xcafebabf) && n >= 8) {
			uint32_t nfat = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];

			if (nfat > 0 && nfat < 43)
				return LP_BIN_MACHO_FAT;
		}
	}
	if (n >= 0x40 && p[0] == 'M' && p[1] == 'Z') {
		uint32_t off = rd32le(p + 0x3c);

		if (off <= n - 4 && memcmp(p + off, "PE\0\0", 4) == 0)
			return LP_BIN_PE;
	}
	if (n >= 8 && memcmp(p, "!<arch>\n", 8) == 0)
		return LP_BIN_AR;
	return LP_BIN_NONE;
}

void lp_binfo_free(struct lp_binfo *bi)
{
	if (!bi)
		return;
	for (size_t i = 0; i < bi->n_needed; i++)
		free(bi->needed[i]);
	free(bi->needed);
	free(bi->soname);
	free(bi->rpath);
	free(bi->runpath);
	free(bi->interp);
	free(bi);
}

const char *lp_arch_name(enum lp_arch arch)
{
	switch (arch) {
	case LP_ARCH_X86_64:
		return "x86_64";
	case LP_ARCH_ARM64:
		return "arm64";
	case LP_ARCH_X86:
		return "i386";
	case LP_ARCH_ARM:
		return "arm";
	case LP_ARCH_OTHER:
		return "other";
	default:
		return "unknown";
	}
}

enum lp_arch lp_arch_parse(const char *s)
{
	if (!strcmp(s, "x86_64") || !strcmp(s, "amd64") || !strcmp(s, "x86-64"))
		return LP_ARCH_X86_64;
	if (!strcmp(s, "arm64") || !strcmp(s, "aarch64"))
		return LP_ARCH_ARM64;
	return LP_ARCH_UNKNOWN;
}

const char *lp_binfmt_name(enum lp_binfmt fmt)
{
	switch (fmt) {
	case LP_BIN_ELF:
		return "ELF";
	case LP_BIN_MACHO:
		return "Mach-O";
	case LP_BIN_MACHO_FAT:
		return "Mach-O universal";
	case LP_BIN_PE:
		return "PE";
	case LP_BIN_AR:
		return "ar archive";
	default:
		return "none";
	}
}

/* Placeholder until the libelf reader lands (issue #3 work): facts unknown. */
int lp_binfo_read_mem(const void *buf, size_t n, struct lp_binfo **ret)
{
	*ret = NULL;
	return -ENOTSUP;
}

int lp_binfo_read_fd(int fd, struct lp_binfo **ret)
{
	*ret = NULL;
	return -ENOTSUP;
}
