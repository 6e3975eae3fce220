/* SPDX-License-Identifier: MIT */
#include "core/elf.h"
#include "core/err.h"
#include "core/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Upper bounds that keep hostile input from costing unbounded work or memory. */
#define MAX_INTERP	4096		/* PT_INTERP string */
#define MAX_VERNEED	(1u << 20)	/* bytes of version-needs read without section headers */
#define MAX_DYNSTR	(64u << 20)	/* bytes of dynamic string table */
#define MAX_LOADS	4096		/* PT_LOAD entries used for address mapping */

static pthread_once_t elf_once = PTHREAD_ONCE_INIT;

static void elf_init_once(void)
{
	elf_version(EV_CURRENT);
}

void lp_elf_init(void)
{
	pthread_once(&elf_once, elf_init_once);
}

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

static bool dup_str(char **dst, const char *src)
{
	*dst = src ? strdup(src) : NULL;
	return !src || *dst;
}

struct lp_binfo *lp_binfo_dup(const struct lp_binfo *bi)
{
	struct lp_binfo *c;

	if (!bi || !(c = malloc(sizeof(*c))))
		return NULL;
	*c = *bi;
	c->needed = NULL;
	c->n_needed = 0;
	c->soname = c->rpath = c->runpath = c->interp = NULL;
	if (!dup_str(&c->soname, bi->soname) || !dup_str(&c->rpath, bi->rpath) ||
	    !dup_str(&c->runpath, bi->runpath) || !dup_str(&c->interp, bi->interp))
		goto fail;
	if (bi->n_needed) {
		c->needed = calloc(bi->n_needed, sizeof(*c->needed));
		if (!c->needed)
			goto fail;
		for (; c->n_needed < bi->n_needed; c->n_needed++)
			if (!(c->needed[c->n_needed] = strdup(bi->needed[c->n_needed])))
				goto fail;
	}
	return c;
fail:
	lp_binfo_free(c);
	return NULL;
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


enum lp_arch lp_arch_from_elf_machine(unsigned m)
{
	switch (m) {
	case EM_X86_64:
		return LP_ARCH_X86_64;
	case EM_AARCH64:
		return LP_ARCH_ARM64;
	case EM_386:
		return LP_ARCH_X86;
	case EM_ARM:
		return LP_ARCH_ARM;
	default:
		return LP_ARCH_OTHER;
	}
}

/*
 * Where the bytes come from: a caller's buffer or a file descriptor. Non-ELF
 * formats are parsed from a few small reads through this, ELF through libelf.
 */
struct src {
	const unsigned char *mem;
	int fd;
	uint64_t size;
};

/* Read exactly len bytes at off; false if they are not all there. */
static bool src_get(const struct src *s, uint64_t off, void *buf, size_t len)
{
	if (off > s->size || len > s->size - off)
		return false;
	if (s->mem) {
		memcpy(buf, s->mem + off, len);
		return true;
	}
	return lp_pread_all(s->fd, buf, len, (off_t)off) == 0;
}

static uint32_t rd32be(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t rd16le(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static enum lp_arch macho_arch(uint32_t cputype)
{
	const uint32_t abi64 = 0x01000000, abi64_32 = 0x02000000;

	switch (cputype & 0xffffff) {
	case 7:
		return (cputype & abi64) ? LP_ARCH_X86_64 : LP_ARCH_X86;
	case 12:
		if (cputype & abi64)
			return LP_ARCH_ARM64;
		/* arm64_32 (watchOS) runs nowhere Lambda does. */
		return (cputype & abi64_32) ? LP_ARCH_OTHER : LP_ARCH_ARM;
	default:
		return LP_ARCH_OTHER;
	}
}

static enum lp_arch pe_arch(uint16_t machine)
{
	switch (machine) {
	case 0x8664:
		return LP_ARCH_X86_64;
	case 0xaa64:
		return LP_ARCH_ARM64;
	case 0x014c:
		return LP_ARCH_X86;
	case 0x01c0:
	case 0x01c2:
	case 0x01c4:
		return LP_ARCH_ARM;
	default:
		return LP_ARCH_OTHER;
	}
}

static void set_arch(struct lp_binfo *bi, enum lp_arch a)
{
	if (bi->arch == LP_ARCH_UNKNOWN)
		bi->arch = a;
	bi->arch_mask |= 1u << a;
}

static int read_macho(const struct src *s, const unsigned char *head, struct lp_binfo *bi)
{
	uint32_t magic = rd32be(head);

	bi->os = LP_OS_MACOS;
	if (bi->fmt == LP_BIN_MACHO) {
		/* feedfacX is stored big-endian, cefaedfe/cffaedfe little-endian. */
		const unsigned char *p = head + 4;
		uint32_t cpu = (magic >> 8) == 0xfeedfa ? rd32be(p) :
			       (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;

		set_arch(bi, macho_arch(cpu));
		bi->macho_nslices = 1;
		return 0;
	}
	/* Fat headers are always big-endian; the sniffer bounded nfat to < 43. */
	uint32_t nfat = rd32be(head + 4);
	size_t esz = magic == 0xcafebabf ? 32 : 20;

	for (uint32_t i = 0; i < nfat; i++) {
		unsigned char ent[4];

		if (!src_get(s, 8 + (uint64_t)i * esz, ent, sizeof(ent))) {
			bi->malformed = true;
			break;
		}
		set_arch(bi, macho_arch(rd32be(ent)));
		bi->macho_nslices++;
	}
	return 0;
}

static int read_pe(const struct src *s, const unsigned char *head, struct lp_binfo *bi)
{
	unsigned char sig[6];
	uint32_t off = (uint32_t)head[0x3c] | (uint32_t)head[0x3d] << 8 |
		       (uint32_t)head[0x3e] << 16 | (uint32_t)head[0x3f] << 24;

	if (!src_get(s, off, sig, sizeof(sig)) || memcmp(sig, "PE\0\0", 4) != 0)
		return -LP_E_NOTELF;
	bi->os = LP_OS_WINDOWS;
	set_arch(bi, pe_arch(rd16le(sig + 4)));
	{
		/* COFF header is 20 bytes; data directory 14 is the CLI (.NET) header. */
		unsigned char opt[2], dd[8];
		uint64_t oh = (uint64_t)off + 24;

		if (src_get(s, oh, opt, sizeof(opt))) {
			uint16_t magic = rd16le(opt);
			uint64_t at = oh + (magic == 0x20b ? 112 : 96) + 14 * 8;

			if ((magic == 0x10b || magic == 0x20b) && src_get(s, at, dd, sizeof(dd)) &&
			    (dd[0] | dd[1] | dd[2] | dd[3]) && (dd[4] | dd[5] | dd[6] | dd[7]))
				bi->pe_managed = true;
		}
	}
	return 0;
}

/* --- ELF ----------------------------------------------------------------- */

/* Raw bytes in the file's byte order; decoded with the class/data we saw. */
struct bytes {
	const unsigned char *p;
	size_t n;
};

struct elfctx {
	Elf *elf;
	struct lp_binfo *bi;
	bool be;		/* big-endian file */
	bool is64;
	uint64_t fsize;
	GElf_Phdr loads[MAX_LOADS];
	size_t nloads;
};

static uint64_t dec(const struct elfctx *c, const unsigned char *p, size_t w)
{
	uint64_t v = 0;

	for (size_t i = 0; i < w; i++)
		v |= (uint64_t)p[c->be ? w - 1 - i : i] << (8 * i);
	return v;
}

/* Raw bytes of [off, off+len) through libelf (which bounds-checks the range). */
static bool chunk(struct elfctx *c, uint64_t off, uint64_t len, struct bytes *ret)
{
	Elf_Data *d;

	ret->p = NULL;
	ret->n = 0;
	if (len == 0 || off > c->fsize || len > c->fsize - off)
		return false;
	d = elf_getdata_rawchunk(c->elf, (int64_t)off, (size_t)len, ELF_T_BYTE);
	if (!d || !d->d_buf || d->d_size != len)
		return false;
	ret->p = d->d_buf;
	ret->n = d->d_size;
	return true;
}

static bool scn_bytes(Elf_Scn *scn, struct bytes *ret)
{
	Elf_Data *d = scn ? elf_rawdata(scn, NULL) : NULL;

	ret->p = d ? d->d_buf : NULL;
	ret->n = d && d->d_buf ? d->d_size : 0;
	return ret->p != NULL;
}

/* NUL-terminated string at off inside a string table, or NULL. */
static const char *str_at(const struct bytes *t, uint64_t off)
{
	if (!t->p || off >= t->n)
		return NULL;
	if (!memchr(t->p + off, '\0', t->n - off))
		return NULL;
	return (const char *)t->p + off;
}

/* File offset of a virtual address inside some PT_LOAD's file bytes; avail = bytes left there. */
static bool vaddr_to_off(const struct elfctx *c, uint64_t va, uint64_t *off, uint64_t *avail)
{
	for (size_t i = 0; i < c->nloads; i++) {
		const GElf_Phdr *p = &c->loads[i];

		if (va >= p->p_vaddr && va - p->p_vaddr < p->p_filesz) {
			*off = p->p_offset + (va - p->p_vaddr);
			*avail = p->p_filesz - (va - p->p_vaddr);
			return true;
		}
	}
	return false;
}

static bool is_ldso(const char *file)
{
	return !strncmp(file, "ld-linux", 8) || !strncmp(file, "ld64.so", 7) ||
	       !strncmp(file, "ld.so", 5);
}

/* "GLIBC_2.28" or "GLIBC_2.2.5" -> (2, 28) / (2, 2). GLIBC_PRIVATE and junk: false. */
static bool parse_glibc(const char *name, unsigned *maj, unsigned *min)
{
	unsigned long a, b;
	char *end;

	if (strncmp(name, "GLIBC_", 6) != 0 || name[6] < '0' || name[6] > '9')
		return false;
	a = strtoul(name + 6, &end, 10);
	if (*end != '.' || end[1] < '0' || end[1] > '9')
		return false;
	b = strtoul(end + 1, &end, 10);
	if (*end != '\0' && *end != '.')
		return false;
	if (a > 1000 || b > 100000)
		return false;
	*maj = (unsigned)a;
	*min = (unsigned)b;
	return true;
}

/*
 * Walk Elf_Verneed/Elf_Vernaux records (same 16-byte layout in both
 * classes). Every step must move forward inside the buffer, so the walk ends
 * even on hostile input.
 */
static void walk_verneed(struct elfctx *c, const struct bytes *vn, uint64_t count,
			 const struct bytes *strs)
{
	struct lp_binfo *bi = c->bi;
	uint64_t off = 0;

	for (uint64_t i = 0; i < count; i++) {
		const unsigned char *r;
		uint64_t cnt, aux, next, a;
		const char *file;

		if (off > vn->n || vn->n - off < 16) {
			bi->malformed = true;
			return;
		}
		r = vn->p + off;
		cnt = dec(c, r + 2, 2);
		file = str_at(strs, dec(c, r + 4, 4));
		aux = dec(c, r + 8, 4);
		next = dec(c, r + 12, 4);
		if (file && !is_ldso(file)) {
			a = off + aux;
			for (uint64_t j = 0; j < cnt; j++) {
				const char *name;
				unsigned maj, min;
				uint64_t anext;

				if (a > vn->n || vn->n - a < 16) {
					bi->malformed = true;
					break;
				}
				name = str_at(strs, dec(c, vn->p + a + 8, 4));
				if (name && parse_glibc(name, &maj, &min) &&
				    (maj > bi->glibc_major ||
				     (maj == bi->glibc_major && min > bi->glibc_minor))) {
					bi->glibc_major = maj;
					bi->glibc_minor = min;
				}
				anext = dec(c, vn->p + a + 12, 4);
				if (anext == 0)
					break;
				a += anext;
			}
		}
		if (next == 0)
			break;
		off += next;
	}
}

static int push_needed(struct lp_binfo *bi, const char *s)
{
	char **v;

	v = realloc(bi->needed, (bi->n_needed + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	bi->needed = v;
	v[bi->n_needed] = strdup(s);
	if (!v[bi->n_needed])
		return -ENOMEM;
	bi->n_needed++;
	return 0;
}

static int set_str(char **dst, const char *s)
{
	if (!s || *dst)
		return 0;
	*dst = strdup(s);
	return *dst ? 0 : -ENOMEM;
}

/*
 * Dynamic tags. With section headers the dynamic array, its string table and
 * the version needs come from SHT_DYNAMIC / SHT_GNU_verneed and their
 * sh_link; without them from PT_DYNAMIC and the addresses in DT_STRTAB /
 * DT_VERNEED mapped through PT_LOAD (what eu-readelf -D does).
 */
static int read_dynamic(struct elfctx *c, const GElf_Phdr *pt_dyn, Elf_Scn *dyn_scn,
			Elf_Scn *vn_scn)
{
	struct lp_binfo *bi = c->bi;
	struct bytes dyn = { 0 }, strs = { 0 }, vn = { 0 };
	size_t esz = c->is64 ? 16 : 8, w = c->is64 ? 8 : 4;
	uint64_t strtab_va = 0, strsz = 0, vn_va = 0, vn_num = 0;
	bool have_strtab = false, have_vn = false;
	uint64_t vn_count = 0;
	int r = 0;

	if (dyn_scn) {
		GElf_Shdr sh;

		if (gelf_getshdr(dyn_scn, &sh) && scn_bytes(dyn_scn, &dyn))
			scn_bytes(elf_getscn(c->elf, sh.sh_link), &strs);
	}
	if (!dyn.p && pt_dyn && !chunk(c, pt_dyn->p_offset, pt_dyn->p_filesz, &dyn)) {
		bi->malformed = true;
		return 0;
	}
	if (!dyn.p)
		goto verneed;

	/* First pass: addresses and sizes. */
	for (size_t o = 0; o + esz <= dyn.n; o += esz) {
		uint64_t tag = dec(c, dyn.p + o, w), val = dec(c, dyn.p + o + w, w);

		if (tag == DT_NULL)
			break;
		if (tag == DT_STRTAB) {
			strtab_va = val;
			have_strtab = true;
		} else if (tag == DT_STRSZ) {
			strsz = val;
		} else if (tag == DT_VERNEED) {
			vn_va = val;
			have_vn = true;
		} else if (tag == DT_VERNEEDNUM) {
			vn_num = val;
		}
	}
	if (!strs.p && have_strtab) {
		uint64_t off, avail;

		if (strsz > MAX_DYNSTR)
			strsz = MAX_DYNSTR;
		if (vaddr_to_off(c, strtab_va, &off, &avail)) {
			if (strsz == 0 || strsz > avail)
				strsz = avail < MAX_DYNSTR ? avail : MAX_DYNSTR;
			if (!chunk(c, off, strsz, &strs))
				bi->malformed = true;
		} else {
			bi->malformed = true;
		}
	}
	for (size_t o = 0; o + esz <= dyn.n; o += esz) {
		uint64_t tag = dec(c, dyn.p + o, w), val = dec(c, dyn.p + o + w, w);
		const char *sv;

		if (tag == DT_NULL)
			break;
		if (tag != DT_NEEDED && tag != DT_SONAME && tag != DT_RPATH && tag != DT_RUNPATH)
			continue;
		sv = str_at(&strs, val);
		if (!sv) {
			bi->malformed = true;
			continue;
		}
		if (tag == DT_NEEDED)
			r = push_needed(bi, sv);
		else if (tag == DT_SONAME)
			r = set_str(&bi->soname, sv);
		else if (tag == DT_RPATH)
			r = set_str(&bi->rpath, sv);
		else
			r = set_str(&bi->runpath, sv);
		if (r < 0)
			return r;
	}

verneed:
	if (vn_scn) {
		GElf_Shdr sh;
		struct bytes vstrs = { 0 };

		if (gelf_getshdr(vn_scn, &sh) && scn_bytes(vn_scn, &vn)) {
			scn_bytes(elf_getscn(c->elf, sh.sh_link), &vstrs);
			walk_verneed(c, &vn, sh.sh_info, &vstrs);
		} else {
			bi->malformed = true;
		}
		return 0;
	}
	if (have_vn && vn_num > 0) {
		uint64_t off, avail;

		vn_count = vn_num;
		if (!vaddr_to_off(c, vn_va, &off, &avail) ||
		    !chunk(c, off, avail < MAX_VERNEED ? avail : MAX_VERNEED, &vn)) {
			bi->malformed = true;
			return 0;
		}
		walk_verneed(c, &vn, vn_count, &strs);
	}
	return 0;
}

/* --- loadability ---------------------------------------------------------- */

#define PAGE_MIN	4096u		/* smallest page size Lambda (x86_64, arm64) runs with */
#define MAX_NAME_SCAN	4096u		/* bytes searched for a dynamic string's NUL */
#define MAX_DYN_NAMES	256u		/* DT_NEEDED/DT_SONAME/... names checked (each costs a read) */

__attribute__((format(printf, 2, 3)))
static void unloadable(struct lp_binfo *bi, const char *fmt, ...)
{
	va_list ap;

	if (bi->unloadable[0])
		return;		/* the first reason is the one reported */
	va_start(ap, fmt);
	vsnprintf(bi->unloadable, sizeof(bi->unloadable), fmt, ap);
	va_end(ap);
}

/* The PT_LOAD whose memory image holds va (file bytes only if file_only). */
static const GElf_Phdr *load_at(const struct elfctx *c, uint64_t va, bool file_only)
{
	for (size_t i = 0; i < c->nloads; i++) {
		const GElf_Phdr *p = &c->loads[i];

		if (va >= p->p_vaddr && va - p->p_vaddr < (file_only ? p->p_filesz : p->p_memsz))
			return p;
	}
	return NULL;
}

/*
 * A string the loader reads at DT_STRTAB + off: it must start in the file
 * bytes of a PT_LOAD and end there with a NUL (or in its zero-filled tail).
 */
static const char *dyn_string_problem(struct elfctx *c, uint64_t strtab, uint64_t off)
{
	const GElf_Phdr *p;
	uint64_t va = strtab + off, foff, avail;
	struct bytes b;

	if (va < strtab || !(p = load_at(c, va, true)))
		return "lies outside the file bytes of every PT_LOAD";
	foff = p->p_offset + (va - p->p_vaddr);
	avail = p->p_filesz - (va - p->p_vaddr);
	if (foff > c->fsize || avail > c->fsize - foff)
		return "lies past the end of the file";
	if (avail > MAX_NAME_SCAN || p->p_memsz > p->p_filesz)
		return NULL;	/* long enough to end somewhere, or ends in zero fill */
	if (!chunk(c, foff, avail, &b) || !memchr(b.p, '\0', b.n))
		return "is not NUL-terminated inside its PT_LOAD";
	return NULL;
}

static const char *dt_name(uint64_t tag)
{
	switch (tag) {
	case DT_NEEDED: return "DT_NEEDED";
	case DT_SONAME: return "DT_SONAME";
	case DT_RPATH: return "DT_RPATH";
	case DT_RUNPATH: return "DT_RUNPATH";
	case DT_HASH: return "DT_HASH";
	case DT_GNU_HASH: return "DT_GNU_HASH";
	case DT_STRTAB: return "DT_STRTAB";
	case DT_SYMTAB: return "DT_SYMTAB";
	case DT_RELA: return "DT_RELA";
	case DT_REL: return "DT_REL";
	case DT_JMPREL: return "DT_JMPREL";
	case DT_VERSYM: return "DT_VERSYM";
	default: return "dynamic tag";
	}
}

/*
 * The dynamic array as ld.so sees it: read at PT_DYNAMIC's address through
 * the PT_LOAD mapping, every table ld.so dereferences inside a PT_LOAD, and
 * every name (DT_NEEDED, DT_SONAME, ...) inside the file bytes one maps.
 */
static void check_dynamic(struct elfctx *c, const GElf_Phdr *pt_dyn)
{
	struct lp_binfo *bi = c->bi;
	size_t esz = c->is64 ? 16 : 8, w = c->is64 ? 8 : 4;
	const GElf_Phdr *p = load_at(c, pt_dyn->p_vaddr, false);
	uint64_t strtab = 0, relasz = 0, relsz = 0, pltrelsz = 0, foff, avail, len;
	unsigned names = 0;
	bool have_strtab = false;
	struct bytes dyn;

	if (!p) {
		unloadable(bi, "PT_DYNAMIC (address 0x%llx) lies outside every PT_LOAD: ld.so reads it from memory that is not mapped",
			   (unsigned long long)pt_dyn->p_vaddr);
		return;
	}
	if (pt_dyn->p_vaddr - p->p_vaddr >= p->p_filesz)
		return;		/* in the zero fill: an empty array */
	foff = p->p_offset + (pt_dyn->p_vaddr - p->p_vaddr);
	avail = p->p_filesz - (pt_dyn->p_vaddr - p->p_vaddr);
	len = pt_dyn->p_filesz < avail ? pt_dyn->p_filesz : avail;
	if (len > MAX_DYNSTR)
		len = MAX_DYNSTR;
	len -= len % esz;
	if (len == 0 || !chunk(c, foff, len, &dyn))
		return;		/* PT_LOAD past the end of the file: reported already */

	for (size_t o = 0; o + esz <= dyn.n; o += esz) {
		uint64_t tag = dec(c, dyn.p + o, w), val = dec(c, dyn.p + o + w, w);

		if (tag == DT_NULL)
			break;
		if (tag == DT_STRTAB) {
			strtab = val;
			have_strtab = true;
		} else if (tag == DT_RELASZ) {
			relasz = val;
		} else if (tag == DT_RELSZ) {
			relsz = val;
		} else if (tag == DT_PLTRELSZ) {
			pltrelsz = val;
		}
	}
	for (size_t o = 0; o + esz <= dyn.n; o += esz) {
		uint64_t tag = dec(c, dyn.p + o, w), val = dec(c, dyn.p + o + w, w);
		const char *why;
		bool ptr;

		if (tag == DT_NULL)
			break;
		if (tag == DT_NEEDED || tag == DT_SONAME || tag == DT_RPATH || tag == DT_RUNPATH) {
			if (!have_strtab) {
				unloadable(bi, "has %s but no DT_STRTAB: ld.so has no string table to read the name from",
					   dt_name(tag));
				return;
			}
			if (++names > MAX_DYN_NAMES)
				continue;
			why = dyn_string_problem(c, strtab, val);
			if (why) {
				unloadable(bi, "%s string (DT_STRTAB 0x%llx + %llu) %s: ld.so reads unmapped or wrong memory",
					   dt_name(tag), (unsigned long long)strtab, (unsigned long long)val, why);
				return;
			}
			continue;
		}
		/* Tables ld.so dereferences (relocation tables only when non-empty). */
		ptr = tag == DT_HASH || tag == DT_GNU_HASH || tag == DT_STRTAB || tag == DT_SYMTAB ||
		      tag == DT_VERSYM || (tag == DT_RELA && relasz) || (tag == DT_REL && relsz) ||
		      (tag == DT_JMPREL && pltrelsz);
		if (ptr && !load_at(c, val, false)) {
			unloadable(bi, "%s (address 0x%llx) lies outside every PT_LOAD: ld.so reads unmapped memory",
				   dt_name(tag), (unsigned long long)val);
			return;
		}
	}
}

/*
 * What makes the kernel (binfmt_elf) or ld.so (open_verify,
 * _dl_map_object_from_fd) refuse an executable or shared object, or crash
 * mapping it. Only the first reason is kept.
 */
static void check_loadable(struct elfctx *c, const GElf_Ehdr *eh, size_t phnum)
{
	struct lp_binfo *bi = c->bi;
	size_t want = gelf_fsize(c->elf, ELF_T_PHDR, 1, EV_CURRENT);
	uint64_t n = eh->e_phnum == PN_XNUM ? phnum : eh->e_phnum, nload = 0;
	GElf_Phdr interp = { 0 }, dyn = { 0 };
	bool have_interp = false, have_dyn = false;

	if (eh->e_type != ET_EXEC && eh->e_type != ET_DYN)
		return;
	if (eh->e_phentsize != want) {
		unloadable(bi, "e_phentsize is %u, not %zu: ld.so refuses it (\"ELF file's phentsize not the expected size\")",
			   (unsigned)eh->e_phentsize, want);
		return;
	}
	if (n == 0) {
		unloadable(bi, "no program headers: nothing to load (ld.so: \"object file has no loadable segments\")");
		return;
	}
	if (eh->e_phoff > c->fsize || n * want > c->fsize - eh->e_phoff) {
		unloadable(bi, "program header table (offset %llu, %llu entries) runs past the end of the file (%llu bytes): truncated?",
			   (unsigned long long)eh->e_phoff, (unsigned long long)n, (unsigned long long)c->fsize);
		return;
	}
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(c->elf, (int)i, &ph)) {
			unloadable(bi, "program header %zu cannot be read", i);
			return;
		}
		if (ph.p_type == PT_INTERP && !have_interp) {
			interp = ph;
			have_interp = true;
		} else if (ph.p_type == PT_DYNAMIC && !have_dyn) {
			dyn = ph;
			have_dyn = true;
		}
		if (ph.p_type != PT_LOAD)
			continue;
		nload++;
		if (ph.p_filesz && (ph.p_offset > c->fsize || ph.p_filesz > c->fsize - ph.p_offset)) {
			unloadable(bi, "PT_LOAD %zu (file bytes %llu to %llu) runs past the end of the file (%llu bytes): truncated",
				   i, (unsigned long long)ph.p_offset,
				   (unsigned long long)(ph.p_offset + ph.p_filesz), (unsigned long long)c->fsize);
			return;
		}
		if ((ph.p_vaddr - ph.p_offset) % PAGE_MIN) {
			unloadable(bi, "PT_LOAD %zu: address 0x%llx and file offset 0x%llx differ by no multiple of the page size (ld.so: \"ELF load command address/offset not page-aligned\")",
				   i, (unsigned long long)ph.p_vaddr, (unsigned long long)ph.p_offset);
			return;
		}
	}
	if (nload == 0) {
		unloadable(bi, "no PT_LOAD segment (ld.so: \"object file has no loadable segments\")");
		return;
	}
	/* What ld.so's open_verify checks on every object it opens (not the kernel's executables). */
	if (!have_interp && eh->e_type == ET_DYN) {
		for (int i = EI_PAD; i < EI_NIDENT; i++)
			if (eh->e_ident[i]) {
				unloadable(bi, "byte %d of e_ident is not zero (ld.so: \"nonzero padding in e_ident\")", i);
				return;
			}
		if (eh->e_version != EV_CURRENT) {
			unloadable(bi, "e_version is %u, not 1 (ld.so: \"ELF file version does not match current one\")",
				   (unsigned)eh->e_version);
			return;
		}
		if (eh->e_ident[EI_OSABI] == ELFOSABI_NONE && eh->e_ident[EI_ABIVERSION] != 0) {
			unloadable(bi, "EI_ABIVERSION is %u for a System V object (ld.so: \"ELF file ABI version invalid\")",
				   (unsigned)eh->e_ident[EI_ABIVERSION]);
			return;
		}
	}
	if (have_interp) {
		struct bytes b;

		if (interp.p_offset > c->fsize || interp.p_filesz > c->fsize - interp.p_offset) {
			unloadable(bi, "PT_INTERP (file bytes %llu to %llu) runs past the end of the file (%llu bytes)",
				   (unsigned long long)interp.p_offset,
				   (unsigned long long)(interp.p_offset + interp.p_filesz), (unsigned long long)c->fsize);
			return;
		}
		if (interp.p_filesz < 2 || interp.p_filesz > MAX_INTERP) {
			unloadable(bi, "PT_INTERP is %llu bytes: the kernel refuses an interpreter name under 2 or over %u bytes",
				   (unsigned long long)interp.p_filesz, MAX_INTERP);
			return;
		}
		if (!chunk(c, interp.p_offset + interp.p_filesz - 1, 1, &b) || b.p[0] != '\0') {
			unloadable(bi, "PT_INTERP is not NUL-terminated: the kernel refuses it");
			return;
		}
	}
	if (have_dyn)
		check_dynamic(c, &dyn);
}

static bool name_is_debug(const char *n)
{
	return !strncmp(n, ".debug_", 7) || !strncmp(n, ".zdebug_", 8) ||
	       !strcmp(n, ".gnu_debuglink") || !strcmp(n, ".gnu_debugdata");
}

static int read_elf(Elf *elf, uint64_t fsize, struct lp_binfo *bi)
{
	struct elfctx *c;
	GElf_Ehdr eh;
	GElf_Phdr pt_dyn = { 0 };
	bool have_dyn = false;
	Elf_Scn *dyn_scn = NULL, *vn_scn = NULL;
	size_t phnum = 0, shnum = 0, shstrndx = 0;
	bool have_names;
	int r = 0;

	if (elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh))
		return -LP_E_NOTELF;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->elf = elf;
	c->bi = bi;
	c->fsize = fsize;
	bi->fmt = LP_BIN_ELF;
	bi->elf_class = eh.e_ident[EI_CLASS];
	bi->elf_data = eh.e_ident[EI_DATA];
	bi->elf_osabi = eh.e_ident[EI_OSABI];
	bi->e_machine = eh.e_machine;
	bi->e_type = eh.e_type;
	c->be = bi->elf_data == ELFDATA2MSB;
	c->is64 = bi->elf_class == ELFCLASS64;
	set_arch(bi, lp_arch_from_elf_machine(eh.e_machine));
	/* Linux binaries carry SYSV (0) or GNU (3); FreeBSD etc. brand theirs. */
	bi->os = (bi->elf_osabi == ELFOSABI_NONE || bi->elf_osabi == ELFOSABI_GNU) ?
		 LP_OS_LINUX : LP_OS_OTHER;

	if (elf_getphdrnum(elf, &phnum) < 0) {
		bi->malformed = true;
		phnum = 0;
	}
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph)) {
			bi->malformed = true;
			break;
		}
		if (ph.p_type == PT_LOAD && c->nloads < MAX_LOADS) {
			c->loads[c->nloads++] = ph;
		} else if (ph.p_type == PT_DYNAMIC && !have_dyn) {
			pt_dyn = ph;
			have_dyn = true;
		} else if (ph.p_type == PT_INTERP && !bi->interp) {
			struct bytes b;
			uint64_t len = ph.p_filesz < MAX_INTERP ? ph.p_filesz : MAX_INTERP;

			bi->is_pie_or_exec = true;
			if (chunk(c, ph.p_offset, len, &b)) {
				bi->interp = strndup((const char *)b.p, b.n);
				if (!bi->interp) {
					r = -ENOMEM;
					goto out;
				}
			} else {
				bi->malformed = true;
			}
		}
	}

	if (elf_getshdrnum(elf, &shnum) < 0) {
		bi->malformed = true;
		shnum = 0;
	}
	bi->has_shdrs = shnum > 0;
	have_names = elf_getshdrstrndx(elf, &shstrndx) == 0;
	for (Elf_Scn *scn = NULL; shnum > 0 && (scn = elf_nextscn(elf, scn)) != NULL;) {
		GElf_Shdr sh;
		const char *name;

		if (!gelf_getshdr(scn, &sh)) {
			bi->malformed = true;
			break;
		}
		if (sh.sh_type == SHT_DYNAMIC && !dyn_scn)
			dyn_scn = scn;
		else if (sh.sh_type == SHT_GNU_verneed && !vn_scn)
			vn_scn = scn;
		name = have_names ? elf_strptr(elf, shstrndx, sh.sh_name) : NULL;
		if (!name || sh.sh_type == SHT_NOBITS)
			continue;
		/* Bionic binaries carry this note; Linux's loader cannot run them (no libc.so). */
		if (sh.sh_type == SHT_NOTE && !strcmp(name, ".note.android.ident"))
			bi->os = LP_OS_ANDROID;
		if (name_is_debug(name))
			bi->debug_bytes += sh.sh_size;
		else if ((sh.sh_type == SHT_SYMTAB && !strcmp(name, ".symtab")) ||
			 (sh.sh_type == SHT_STRTAB && !strcmp(name, ".strtab")) ||
			 (sh.sh_type == SHT_SYMTAB_SHNDX && !strcmp(name, ".symtab_shndx")))
			bi->symtab_bytes += sh.sh_size;
	}
	if (bi->interp && !strncmp(bi->interp, "/system/bin/linker", 18))
		bi->os = LP_OS_ANDROID;
	r = read_dynamic(c, have_dyn ? &pt_dyn : NULL, dyn_scn, vn_scn);
	if (r == 0)
		check_loadable(c, &eh, phnum);
out:
	free(c);
	return r;
}

static int read_any(const struct src *s, Elf *elf_or_null, const void *mem_for_elf,
		    struct lp_binfo **ret)
{
	unsigned char head[64];
	size_t n = s->size < sizeof(head) ? (size_t)s->size : sizeof(head);
	struct lp_binfo *bi;
	enum lp_binfmt fmt;
	int r;

	*ret = NULL;
	if (!src_get(s, 0, head, n))
		return -EIO;
	fmt = lp_bin_sniff(head, n);
	/* The sniffer wants the PE header inside its buffer; look further here. */
	if (fmt == LP_BIN_NONE && n >= 0x40 && head[0] == 'M' && head[1] == 'Z')
		fmt = LP_BIN_PE;
	if (fmt == LP_BIN_NONE)
		return -LP_E_NOTELF;
	bi = calloc(1, sizeof(*bi));
	if (!bi)
		return -ENOMEM;
	bi->fmt = fmt;
	switch (fmt) {
	case LP_BIN_ELF: {
		Elf *elf = elf_or_null;

		lp_elf_init();
		if (!elf)
			elf = elf_memory((char *)mem_for_elf, (size_t)s->size);
		r = elf ? read_elf(elf, s->size, bi) : -LP_E_NOTELF;
		if (elf != elf_or_null)
			elf_end(elf);
		break;
	}
	case LP_BIN_MACHO:
	case LP_BIN_MACHO_FAT:
		r = read_macho(s, head, bi);
		break;
	case LP_BIN_PE:
		r = read_pe(s, head, bi);
		break;
	default:
		r = 0;
		break;
	}
	if (r < 0) {
		lp_binfo_free(bi);
		return r;
	}
	*ret = bi;
	return 0;
}

int lp_binfo_read_mem(const void *buf, size_t n, struct lp_binfo **ret)
{
	struct src s = { .mem = buf, .fd = -1, .size = n };
	void *copy = NULL;
	int r;

	*ret = NULL;
	if (n >= 4 && memcmp(buf, "\x7f" "ELF", 4) == 0) {
		/*
		 * elf_memory() takes a non-const image and may convert it in
		 * place; work on a private copy so the caller's bytes stay put.
		 */
		copy = malloc(n);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, buf, n);
	}
	r = read_any(&s, NULL, copy, ret);
	free(copy);
	return r;
}

int lp_binfo_read_fd(int fd, struct lp_binfo **ret)
{
	struct stat st;
	struct src s = { .mem = NULL, .fd = fd };
	unsigned char magic[4];
	Elf *elf = NULL;
	int r;

	*ret = NULL;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -LP_E_NOTELF;
	s.size = (uint64_t)st.st_size;
	if (s.size >= 4 && src_get(&s, 0, magic, 4) && memcmp(magic, "\x7f" "ELF", 4) == 0) {
		lp_elf_init();
		/* ELF_C_READ reads headers and data lazily with pread: no whole-file read. */
		elf = elf_begin(fd, ELF_C_READ, NULL);
		if (!elf)
			return -LP_E_NOTELF;
	}
	r = read_any(&s, elf, NULL, ret);
	if (elf)
		elf_end(elf);
	return r;
}

int lp_binfo_read_path(const char *path, struct lp_binfo **ret)
{
	int fd, r;

	*ret = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return lp_fail(-errno, path, "cannot open: %s", strerror(errno));
	r = lp_binfo_read_fd(fd, ret);
	close(fd);
	if (r == -LP_E_NOTELF)
		return lp_fail(r, path, "not a native binary, or an ELF header libelf rejects");
	if (r < 0)
		return lp_fail(r, path, "cannot read binary facts: %s", lp_strerror(r));
	return 0;
}
