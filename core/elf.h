/* SPDX-License-Identifier: MIT */
/*
 * Native-binary facts: what a file is by its magic bytes (ELF, Mach-O, PE,
 * ar), and for ELF, what the loader will need (libelf, read only).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum lp_binfmt {
	LP_BIN_NONE = 0,
	LP_BIN_ELF,
	LP_BIN_MACHO,		/* thin Mach-O, either endianness, 32 or 64 bit */
	LP_BIN_MACHO_FAT,	/* universal binary */
	LP_BIN_PE,		/* MZ + PE\0\0 */
	LP_BIN_AR,		/* static archive (!<arch>) */
};

enum lp_arch {
	LP_ARCH_UNKNOWN = 0,
	LP_ARCH_X86_64,
	LP_ARCH_ARM64,
	LP_ARCH_X86,
	LP_ARCH_ARM,
	LP_ARCH_OTHER,
};

enum lp_os {
	LP_OS_UNKNOWN = 0,
	LP_OS_LINUX,		/* ELF (any OSABI we accept on Linux) */
	LP_OS_MACOS,
	LP_OS_WINDOWS,
	LP_OS_OTHER,		/* e.g. FreeBSD-branded ELF */
	LP_OS_ANDROID,		/* ELF with .note.android.ident or Android's linker as PT_INTERP */
};

struct lp_binfo {
	enum lp_binfmt fmt;
	enum lp_os os;
	enum lp_arch arch;	/* for fat Mach-O: the first slice */
	unsigned arch_mask;	/* bit (1u << enum lp_arch) for every slice / the one arch */

	/* ELF only below. */
	uint8_t elf_class;	/* 1 = 32-bit, 2 = 64-bit */
	uint8_t elf_data;	/* 1 = little, 2 = big endian */
	uint8_t elf_osabi;
	uint16_t e_machine;
	uint16_t e_type;	/* ET_REL, ET_EXEC, ET_DYN, ... */
	bool has_shdrs;		/* section header table present */
	bool is_pie_or_exec;	/* has PT_INTERP (an executable the loader runs) */
	unsigned glibc_major;	/* highest GLIBC_x.y required (0.0: none) */
	unsigned glibc_minor;
	char **needed;		/* DT_NEEDED, in order */
	size_t n_needed;
	char *soname;		/* DT_SONAME or NULL */
	char *rpath;		/* DT_RPATH or NULL */
	char *runpath;		/* DT_RUNPATH or NULL */
	char *interp;		/* PT_INTERP or NULL */
	uint64_t debug_bytes;	/* .debug_*, .zdebug_*, .gnu_debuglink, .gnu_debugdata */
	uint64_t symtab_bytes;	/* .symtab + .strtab (+ .symtab_shndx) */
	bool malformed;		/* header parsed, but some later part was truncated or corrupt */
	/*
	 * ET_EXEC/ET_DYN only: why the kernel or ld.so would refuse to load
	 * it (one line: a PT_LOAD or the program header table past the end
	 * of the file, a wrong e_phentsize, no PT_LOAD, a bad PT_INTERP,
	 * PT_DYNAMIC or DT_STRTAB/DT_NEEDED/... outside every PT_LOAD); ""
	 * when it would load as far as these headers tell.
	 */
	char unloadable[200];
	/*
	 * Set by readers that have the bytes at hand but no path (analyze of a
	 * zip or image): the size pack's strip would leave (lp_strip_plan_fd),
	 * so the dry run needs no second read. strip_after == 0: not stripped.
	 */
	bool strip_planned;
	uint64_t strip_after;
	unsigned macho_nslices;	/* fat Mach-O: number of slices (thin: 1) */
	/*
	 * PE with a CLI header: a .NET assembly (IL), which the .NET runtime
	 * loads on Linux; not native code for another OS.
	 */
	bool pe_managed;
};

/*
 * Initialize libelf once per process (elf_version); thread-safe. Every
 * function here calls it; other modules using libelf directly must too.
 */
void lp_elf_init(void);

/* Deep copy (NULL on allocation failure or when bi is NULL). */
struct lp_binfo *lp_binfo_dup(const struct lp_binfo *bi);

/* Classify by magic bytes; buf holds the first n bytes (64 is enough; 4096 is better for PE). */
enum lp_binfmt lp_bin_sniff(const void *buf, size_t n);

/* Parse facts from a whole file held in memory (for ELF, uses elf_memory). */
int lp_binfo_read_mem(const void *buf, size_t n, struct lp_binfo **ret);

/*
 * Parse facts from an open file descriptor (reads only what it needs).
 *
 * Both readers return 0 with *ret set for ELF, Mach-O (thin and fat), PE and
 * ar files (ar: fmt only). A file that is none of these, or an ELF file whose
 * header libelf rejects, gives -LP_E_NOTELF. Parts after the header that are
 * truncated or corrupt leave their fields empty and set malformed.
 */
int lp_binfo_read_fd(int fd, struct lp_binfo **ret);

/* Open path and lp_binfo_read_fd() it; failures name the path (lp_fail). */
int lp_binfo_read_path(const char *path, struct lp_binfo **ret);

/* ELF e_machine to our arch enum. */
enum lp_arch lp_arch_from_elf_machine(unsigned e_machine);

void lp_binfo_free(struct lp_binfo *bi);

/* "x86_64", "arm64", ... as Lambda names them; "unknown" otherwise. */
const char *lp_arch_name(enum lp_arch arch);

/* Parse "x86_64"/"amd64" or "arm64"/"aarch64"; LP_ARCH_UNKNOWN if neither. */
enum lp_arch lp_arch_parse(const char *s);

/* "ELF", "Mach-O", "Mach-O universal", "PE", "ar archive", "none". */
const char *lp_binfmt_name(enum lp_binfmt fmt);
