/* SPDX-License-Identifier: MIT */
/*
 * Byte-preserving strip. Why not the eu-strip recipe (elf_clone +
 * elf_update)? libelf rebuilds the file from its sections and fills every
 * gap with zeros, so bytes a segment covers but no section does are lost,
 * and a program header table it had to move ends up zeroed (see
 * shared/reference/elf.md: denoland/sui #75). Here libelf only parses and
 * translates headers; the output is written as:
 *
 *   [0, prefix_end)       copied verbatim: ELF header (3 fields patched),
 *                         program headers, every segment, every allocated
 *                         section, and anything kept that lies among them
 *   kept non-alloc        .comment, notes, unknown sections, in index order
 *   .shstrtab             rebuilt from the kept names (suffix-shared)
 *   section headers       renumbered, sh_link/sh_info remapped
 *
 * Section indices up to the last allocated section never change, so
 * st_shndx values in .dynsym (which lives in a segment and is not touched)
 * stay right. Then lp_strip_verify() re-reads both files to prove it.
 */
#include "pack/strip.h"
#include "core/elf.h"
#include "core/err.h"
#include "core/fsutil.h"
#include "core/hash.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IOBUF		(1u << 20)
#define MAX_ALIGN	65536u		/* larger sh_addralign on a non-alloc section: hostile */
#define SIG_MARKER	"~Module signature appended~\n"

enum sec_class {
	C_KEEP = 0,	/* allocated, note, or known harmless */
	C_UNKNOWN,	/* non-alloc we do not know: kept, reported */
	C_DEBUG,	/* removable debug data */
	C_SYMTAB,	/* removable static symbol table */
	C_RELOC,	/* removable relocations of removed sections */
};

struct sec {
	GElf_Shdr sh;
	const char *name;	/* owned by libelf, valid while the Elf is open */
	enum sec_class cls;
	bool keep;
	bool fixed;		/* keeps its offset inside the copied prefix */
	bool placeholder;	/* removed, but its index is held by an SHT_NULL header */
	size_t newidx;
	uint64_t newoff;
	uint64_t newname;
};

struct plan {
	int fd;
	Elf *elf;
	GElf_Ehdr eh;
	bool is64;
	uint64_t fsize;
	size_t phnum, shnum, shstrndx;
	struct sec *s;
	uint64_t prefix_end;
	size_t nkept;
	bool rebuild_names;
	char *names;		/* new .shstrtab when rebuild_names */
	size_t names_len;
	uint64_t shoff;
	uint64_t out_size;
};

const char *lp_strip_outcome_name(enum lp_strip_outcome o)
{
	static const char *const names[] = {
		[LP_STRIP_OK] = "ok",
		[LP_STRIP_NOTHING] = "nothing-to-strip",
		[LP_STRIP_NOT_ELF] = "not-elf",
		[LP_STRIP_UNPARSEABLE] = "unparseable",
		[LP_STRIP_ARCHIVE] = "archive",
		[LP_STRIP_RELOCATABLE] = "relocatable",
		[LP_STRIP_UNSUPPORTED] = "unsupported",
		[LP_STRIP_NO_SHDRS] = "no-section-headers",
		[LP_STRIP_TRAILING_DATA] = "trailing-data",
		[LP_STRIP_NOT_SMALLER] = "not-smaller",
		[LP_STRIP_PROOF_FAILED] = "proof-failed",
		[LP_STRIP_UNLOADABLE] = "unloadable",
	};

	if ((unsigned)o < sizeof(names) / sizeof(names[0]) && names[o])
		return names[o];
	return "unknown";
}

__attribute__((format(printf, 3, 4)))
static int outcome(struct lp_strip_result *res, enum lp_strip_outcome o, const char *fmt, ...)
{
	va_list ap;

	res->outcome = o;
	va_start(ap, fmt);
	vsnprintf(res->reason, sizeof(res->reason), fmt, ap);
	va_end(ap);
	return 0;
}

static bool has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

static bool is_debug_name(const char *n)
{
	return has_prefix(n, ".debug_") || has_prefix(n, ".zdebug_") || !strcmp(n, ".debug") ||
	       !strcmp(n, ".gnu_debuglink") || !strcmp(n, ".gnu_debugdata") ||
	       !strcmp(n, ".gnu_debugaltlink") || !strcmp(n, ".gdb_index") ||
	       has_prefix(n, ".gnu.debuglto_") || !strcmp(n, ".stab") || !strcmp(n, ".stabstr") ||
	       !strcmp(n, ".line") || !strcmp(n, ".pdr") || has_prefix(n, ".mdebug.") /* MIPS, for debuggers */;
}

/* Non-allocated sections we know and keep without comment. */
static bool is_known_keep(const GElf_Shdr *sh, const char *n)
{
	return sh->sh_type == SHT_NOTE || sh->sh_type == SHT_NULL ||
	       sh->sh_type == SHT_GNU_ATTRIBUTES || sh->sh_type == 0x70000003 /* ARM/RISC-V attributes */ ||
	       !strcmp(n, ".comment") || has_prefix(n, ".gnu.warning") ||
	       !strcmp(n, ".gnu.build.attributes") || !strcmp(n, ".GCC.command.line") ||
	       !strcmp(n, ".shstrtab");
}

static bool is_reloc(const GElf_Shdr *sh)
{
	return sh->sh_type == SHT_REL || sh->sh_type == SHT_RELA || sh->sh_type == 19 /* SHT_RELR */;
}

static bool info_is_index(const GElf_Shdr *sh)
{
	return (sh->sh_flags & SHF_INFO_LINK) || sh->sh_type == SHT_REL || sh->sh_type == SHT_RELA;
}

static bool removable(enum sec_class c)
{
	return c == C_DEBUG || c == C_SYMTAB || c == C_RELOC;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return a <= 1 ? v : (v + a - 1) / a * a;
}

static void plan_free(struct plan *p)
{
	free(p->s);
	free(p->names);
	if (p->elf)
		elf_end(p->elf);
	if (p->fd >= 0)
		close(p->fd);
}

static bool tail_is_signature(int fd, uint64_t fsize)
{
	char buf[sizeof(SIG_MARKER) - 1];

	if (fsize < sizeof(buf))
		return false;
	if (lp_pread_all(fd, buf, sizeof(buf), (off_t)(fsize - sizeof(buf))) < 0)
		return false;
	return memcmp(buf, SIG_MARKER, sizeof(buf)) == 0;
}

/* Reverse-string order puts every name right after the longer names it ends. */
static int cmp_rev(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	size_t i = strlen(x), j = strlen(y);

	while (i > 0 && j > 0) {
		unsigned char cx = (unsigned char)x[--i], cy = (unsigned char)y[--j];

		if (cx != cy)
			return cx < cy ? 1 : -1;
	}
	return i == j ? 0 : (i > j ? -1 : 1);
}

/* Build a .shstrtab for the kept sections, sharing suffixes as dwelf_strtab does. */
static int build_names(struct plan *p)
{
	const char **v = NULL;
	size_t n = 0, len = 1, pos = 1;
	const char *prev = NULL;
	uint64_t prev_off = 0, *offs = NULL;
	int r = -ENOMEM;

	v = malloc((p->nkept + 1) * sizeof(*v));
	offs = malloc((p->nkept + 1) * sizeof(*offs));
	if (!v || !offs)
		goto out;
	for (size_t i = 1; i < p->shnum; i++)
		if (p->s[i].keep && !p->s[i].placeholder)
			v[n++] = p->s[i].name;
	qsort(v, n, sizeof(*v), cmp_rev);
	for (size_t i = 0; i < n; i++)
		len += strlen(v[i]) + 1;
	p->names = calloc(1, len);
	if (!p->names)
		goto out;
	/* Assign offsets in sorted order, then look them up per section. */
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(v[i]), pl = prev ? strlen(prev) : 0;

		if (prev && pl >= l && memcmp(prev + pl - l, v[i], l) == 0) {
			offs[i] = prev_off + (pl - l);
			continue;
		}
		memcpy(p->names + pos, v[i], l + 1);
		offs[i] = pos;
		prev = v[i];
		prev_off = pos;
		pos += l + 1;
	}
	p->names_len = pos;
	for (size_t i = 1; i < p->shnum; i++) {
		struct sec *s = &p->s[i];
		size_t lo = 0, hi = n;

		if (!s->keep || s->placeholder)
			continue;
		/* Binary search by the same order; equal names share an offset. */
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			int c = cmp_rev(&v[mid], &s->name);

			if (c == 0) {
				lo = mid;
				break;
			}
			if (c < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		s->newname = offs[lo];
	}
	r = 0;
out:
	free(offs);
	free(v);
	return r;
}

/* Highest ordinary section index any .dynsym symbol is defined in (0 if none). */
static size_t dynsym_max_shndx(struct plan *p)
{
	size_t max = 0;

	for (size_t i = 1; i < p->shnum; i++) {
		Elf_Scn *scn;
		Elf_Data *d;
		size_t n;

		if (p->s[i].sh.sh_type != SHT_DYNSYM)
			continue;
		scn = elf_getscn(p->elf, i);
		d = scn ? elf_getdata(scn, NULL) : NULL;
		if (!d) {
			/* Cannot tell: hold every index. */
			return p->shnum;
		}
		n = d->d_size / gelf_fsize(p->elf, ELF_T_SYM, 1, EV_CURRENT);
		for (size_t k = 0; k < n; k++) {
			GElf_Sym sym;

			if (!gelf_getsym(d, (int)k, &sym))
				break;
			if (sym.st_shndx < SHN_LORESERVE && sym.st_shndx > max)
				max = sym.st_shndx;
			else if (sym.st_shndx == SHN_XINDEX)
				return p->shnum;
		}
	}
	return max;
}

/* p->fd is open on the input; name is for messages. */
static int open_plan(const char *in_path, const struct lp_strip_opts *opts, struct plan *p,
		     struct lp_strip_result *res)
{
	struct stat st;
	unsigned char magic[8];
	uint64_t cover_end, loaded_end;
	size_t max_ref, *stack = NULL, sp = 0;

	if (fstat(p->fd, &st) < 0)
		return lp_fail(-errno, in_path, "cannot stat: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return outcome(res, LP_STRIP_NOT_ELF, "not a regular file");
	p->fsize = (uint64_t)st.st_size;
	res->size_before = res->size_after = p->fsize;
	if (p->fsize < sizeof(magic) ||
	    lp_pread_all(p->fd, magic, sizeof(magic), 0) < 0)
		return outcome(res, LP_STRIP_NOT_ELF, "too short to be ELF");
	if (!memcmp(magic, "!<arch>\n", 8))
		return outcome(res, LP_STRIP_ARCHIVE, "static library (ar archive): left unchanged");
	if (memcmp(magic, "\x7f" "ELF", 4) != 0)
		return outcome(res, LP_STRIP_NOT_ELF, "no ELF magic");

	lp_elf_init();
	p->elf = elf_begin(p->fd, ELF_C_READ, NULL);
	if (!p->elf || elf_kind(p->elf) != ELF_K_ELF || !gelf_getehdr(p->elf, &p->eh))
		return outcome(res, LP_STRIP_UNPARSEABLE, "libelf cannot parse it: %s", elf_errmsg(-1));
	p->is64 = gelf_getclass(p->elf) == ELFCLASS64;
	if (p->eh.e_type == ET_REL)
		return outcome(res, LP_STRIP_RELOCATABLE, "relocatable object (ET_REL): symbols are needed for linking");
	if (p->eh.e_type != ET_EXEC && p->eh.e_type != ET_DYN)
		return outcome(res, LP_STRIP_UNSUPPORTED, "ELF type %u is neither executable nor shared object",
			       (unsigned)p->eh.e_type);
	/*
	 * A file the loader refuses ships as it is, so the check that reports
	 * it sees the same bytes (and a rewrite cannot make it worse).
	 */
	{
		struct lp_binfo *bi = NULL;
		int r = lp_binfo_read_fd(p->fd, &bi);

		if (r == -ENOMEM)
			return r;
		if (r == 0 && bi->unloadable[0]) {
			r = outcome(res, LP_STRIP_UNLOADABLE, "the loader would refuse it (%s): left unchanged",
				    bi->unloadable);
			lp_binfo_free(bi);
			return r;
		}
		lp_binfo_free(bi);
	}
	if (elf_getphdrnum(p->elf, &p->phnum) < 0 || elf_getshdrnum(p->elf, &p->shnum) < 0)
		return outcome(res, LP_STRIP_UNPARSEABLE, "bad header counts: %s", elf_errmsg(-1));
	if (p->phnum == 0)
		return outcome(res, LP_STRIP_UNSUPPORTED, "no program headers");
	if (p->shnum == 0 || p->eh.e_shoff == 0)
		return outcome(res, LP_STRIP_NO_SHDRS, "section headers already removed");
	if (elf_getshdrstrndx(p->elf, &p->shstrndx) < 0 || p->shstrndx == 0 || p->shstrndx >= p->shnum)
		return outcome(res, LP_STRIP_UNPARSEABLE, "no section name table");
	if (p->eh.e_ehsize != gelf_fsize(p->elf, ELF_T_EHDR, 1, EV_CURRENT) ||
	    p->eh.e_shentsize != gelf_fsize(p->elf, ELF_T_SHDR, 1, EV_CURRENT) ||
	    p->eh.e_phentsize != gelf_fsize(p->elf, ELF_T_PHDR, 1, EV_CURRENT))
		return outcome(res, LP_STRIP_UNPARSEABLE, "unusual header entry sizes");

	/* The loaded image: header, program header table, every segment's bytes. */
	loaded_end = p->eh.e_ehsize;
	if (p->eh.e_phoff > p->fsize || (uint64_t)p->phnum * p->eh.e_phentsize > p->fsize - p->eh.e_phoff)
		return outcome(res, LP_STRIP_UNPARSEABLE, "program header table outside the file");
	if (p->eh.e_phoff + (uint64_t)p->phnum * p->eh.e_phentsize > loaded_end)
		loaded_end = p->eh.e_phoff + (uint64_t)p->phnum * p->eh.e_phentsize;
	for (size_t i = 0; i < p->phnum; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(p->elf, (int)i, &ph))
			return outcome(res, LP_STRIP_UNPARSEABLE, "cannot read program header %zu", i);
		if (ph.p_filesz == 0)
			continue;
		if (ph.p_offset > p->fsize || ph.p_filesz > p->fsize - ph.p_offset)
			return outcome(res, LP_STRIP_UNPARSEABLE, "segment %zu extends past the end of the file", i);
		if (ph.p_offset + ph.p_filesz > loaded_end)
			loaded_end = ph.p_offset + ph.p_filesz;
	}

	p->s = calloc(p->shnum, sizeof(*p->s));
	if (!p->s)
		return -ENOMEM;
	cover_end = loaded_end;
	if (p->eh.e_shoff > p->fsize || (uint64_t)p->shnum * p->eh.e_shentsize > p->fsize - p->eh.e_shoff)
		return outcome(res, LP_STRIP_UNPARSEABLE, "section header table outside the file");
	if (p->eh.e_shoff + (uint64_t)p->shnum * p->eh.e_shentsize > cover_end)
		cover_end = p->eh.e_shoff + (uint64_t)p->shnum * p->eh.e_shentsize;
	for (size_t i = 0; i < p->shnum; i++) {
		struct sec *s = &p->s[i];
		Elf_Scn *scn = elf_getscn(p->elf, i);

		if (!scn || !gelf_getshdr(scn, &s->sh))
			return outcome(res, LP_STRIP_UNPARSEABLE, "cannot read section header %zu", i);
		s->name = i == 0 ? "" : elf_strptr(p->elf, p->shstrndx, s->sh.sh_name);
		if (!s->name)
			return outcome(res, LP_STRIP_UNPARSEABLE, "section %zu has no readable name", i);
		if (s->sh.sh_type != SHT_NOBITS && s->sh.sh_size > 0) {
			if (s->sh.sh_offset > p->fsize || s->sh.sh_size > p->fsize - s->sh.sh_offset)
				return outcome(res, LP_STRIP_UNPARSEABLE, "section %s extends past the end of the file",
					       s->name);
			if (s->sh.sh_offset + s->sh.sh_size > cover_end)
				cover_end = s->sh.sh_offset + s->sh.sh_size;
		}
		if (i > 0 && (s->sh.sh_link >= p->shnum ||
			      (info_is_index(&s->sh) && s->sh.sh_info >= p->shnum)))
			return outcome(res, LP_STRIP_UNPARSEABLE, "section %s links to a section that does not exist",
				       s->name);
	}
	if (p->fsize > cover_end) {
		if (tail_is_signature(p->fd, p->fsize))
			return outcome(res, LP_STRIP_TRAILING_DATA,
				       "ends with an appended signature (\"~Module signature appended~\"): stripping would drop it");
		return outcome(res, LP_STRIP_TRAILING_DATA,
			       "%llu bytes after the last section and segment (appended payload?): stripping would drop them",
			       (unsigned long long)(p->fsize - cover_end));
	}

	/* Classify. Never remove anything allocated, whatever its name. */
	for (size_t i = 1; i < p->shnum; i++) {
		struct sec *s = &p->s[i];

		if ((s->sh.sh_flags & SHF_ALLOC) || i == p->shstrndx)
			s->cls = C_KEEP;
		else if (is_debug_name(s->name))
			s->cls = C_DEBUG;
		else if (!opts->debug_only && (s->sh.sh_type == SHT_SYMTAB || s->sh.sh_type == SHT_SYMTAB_SHNDX ||
					       (s->sh.sh_type == SHT_STRTAB && !strcmp(s->name, ".strtab"))))
			s->cls = C_SYMTAB;
		else if (is_known_keep(&s->sh, s->name) || is_reloc(&s->sh))
			s->cls = C_KEEP;
		else
			s->cls = C_UNKNOWN;
	}
	/* Relocations go with the section they patch or the symbols they use. */
	for (size_t i = 1; i < p->shnum; i++) {
		struct sec *s = &p->s[i];

		if (s->cls != C_KEEP || (s->sh.sh_flags & SHF_ALLOC) || !is_reloc(&s->sh))
			continue;
		if ((s->sh.sh_info && removable(p->s[s->sh.sh_info].cls)) ||
		    (s->sh.sh_link && removable(p->s[s->sh.sh_link].cls)))
			s->cls = C_RELOC;
	}
	/*
	 * Keep what kept sections link to. Removable sections numbered below a
	 * section that .dynsym names (st_shndx) cannot go away without
	 * renumbering it, and .dynsym is loaded bytes we never touch: those
	 * become empty SHT_NULL placeholders that hold their index.
	 */
	max_ref = dynsym_max_shndx(p);
	stack = malloc(p->shnum * sizeof(*stack));
	if (!stack)
		return -ENOMEM;
	p->s[0].keep = true;
	for (size_t i = 1; i < p->shnum; i++) {
		struct sec *s = &p->s[i];

		s->keep = !removable(s->cls);
		if (s->keep)
			stack[sp++] = i;
	}
	while (sp > 0) {
		struct sec *s = &p->s[stack[--sp]];
		size_t t[2] = { s->sh.sh_link, info_is_index(&s->sh) ? s->sh.sh_info : 0 };

		for (int k = 0; k < 2; k++) {
			if (t[k] && !p->s[t[k]].keep) {
				p->s[t[k]].keep = true;
				stack[sp++] = t[k];
			}
		}
	}
	free(stack);
	for (size_t i = 1; i < max_ref && i < p->shnum; i++) {
		struct sec *s = &p->s[i];

		if (!s->keep) {
			s->keep = true;
			s->placeholder = true;
		}
	}

	for (size_t i = 1; i < p->shnum; i++) {
		struct sec *s = &p->s[i];
		uint64_t bytes = s->sh.sh_type == SHT_NOBITS ? 0 : s->sh.sh_size;

		if (s->keep && !s->placeholder) {
			if (s->cls == C_UNKNOWN) {
				size_t l = strlen(res->kept_note);

				res->kept_unknown++;
				if (l + strlen(s->name) + 3 < sizeof(res->kept_note))
					snprintf(res->kept_note + l, sizeof(res->kept_note) - l, "%s%s",
						 l ? ", " : "", s->name);
			}
			p->nkept++;
			continue;
		}
		if (s->placeholder)
			p->nkept++;
		res->removed++;
		if (s->cls == C_DEBUG)
			res->debug_removed += bytes;
		else if (s->cls == C_SYMTAB)
			res->symtab_removed += bytes;
	}
	p->nkept++;	/* section 0 */
	return 1;
}

static int cmp_off(const void *a, const void *b)
{
	const struct sec *x = *(const struct sec *const *)a, *y = *(const struct sec *const *)b;

	return x->sh.sh_offset < y->sh.sh_offset ? -1 : x->sh.sh_offset > y->sh.sh_offset;
}

/* Offsets and sizes of the output; no I/O. */
static int layout(struct plan *p)
{
	struct sec **by_off;
	size_t n = 0, idx = 0;
	uint64_t cur;
	int r;

	/* Prefix: the loaded image plus every allocated section, at their offsets. */
	p->prefix_end = p->eh.e_ehsize;
	p->prefix_end = p->eh.e_phoff + (uint64_t)p->phnum * p->eh.e_phentsize > p->prefix_end ?
			p->eh.e_phoff + (uint64_t)p->phnum * p->eh.e_phentsize : p->prefix_end;
	for (size_t i = 0; i < p->phnum; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(p->elf, (int)i, &ph) && ph.p_filesz && ph.p_offset + ph.p_filesz > p->prefix_end)
			p->prefix_end = ph.p_offset + ph.p_filesz;
	}
	by_off = malloc(p->shnum * sizeof(*by_off));
	if (!by_off)
		return -ENOMEM;
	for (size_t i = 1; i < p->shnum; i++) {
		struct sec *s = &p->s[i];

		if (!s->keep || s->placeholder)
			continue;
		if (s->sh.sh_flags & SHF_ALLOC) {
			s->fixed = true;
			if (s->sh.sh_type != SHT_NOBITS && s->sh.sh_offset + s->sh.sh_size > p->prefix_end)
				p->prefix_end = s->sh.sh_offset + s->sh.sh_size;
		} else if (s->sh.sh_type != SHT_NOBITS) {
			by_off[n++] = s;
		}
	}
	/* Kept non-alloc sections that start inside the prefix stay where they are. */
	qsort(by_off, n, sizeof(*by_off), cmp_off);
	for (size_t i = 0; i < n; i++) {
		struct sec *s = by_off[i];

		if (s->sh.sh_offset < p->prefix_end) {
			s->fixed = true;
			if (s->sh.sh_offset + s->sh.sh_size > p->prefix_end)
				p->prefix_end = s->sh.sh_offset + s->sh.sh_size;
		}
	}
	free(by_off);

	p->rebuild_names = !p->s[p->shstrndx].fixed;
	if (p->rebuild_names) {
		r = build_names(p);
		if (r < 0)
			return r;
	}
	cur = p->prefix_end;
	for (size_t i = 0; i < p->shnum; i++) {
		struct sec *s = &p->s[i];
		uint64_t a = s->sh.sh_addralign, size;

		if (!s->keep)
			continue;
		s->newidx = idx++;
		if (!p->rebuild_names)
			s->newname = s->sh.sh_name;
		if (i == 0 || s->fixed || s->placeholder) {
			s->newoff = s->sh.sh_offset;
			continue;
		}
		if (a > MAX_ALIGN || (a & (a - 1)))
			return -LP_E_NOTELF;
		size = i == p->shstrndx && p->rebuild_names ? p->names_len :
		       s->sh.sh_type == SHT_NOBITS ? 0 : s->sh.sh_size;
		s->newoff = align_up(cur, a);
		cur = s->newoff + size;
	}
	p->shoff = align_up(cur, p->is64 ? 8 : 4);
	p->out_size = p->shoff + (uint64_t)p->nkept * p->eh.e_shentsize;
	return 0;
}

static void put(unsigned char *b, uint64_t v, size_t w, bool be)
{
	for (size_t i = 0; i < w; i++)
		b[be ? w - 1 - i : i] = (unsigned char)(v >> (8 * i));
}

struct writer {
	int fd;
	uint64_t pos;
	struct lp_sha256 sha;
};

static int w_bytes(struct writer *w, const void *b, size_t n)
{
	int r = lp_write_all(w->fd, b, n);

	if (r < 0)
		return r;
	lp_sha256_update(&w->sha, b, n);
	w->pos += n;
	return 0;
}

static int w_zeros(struct writer *w, uint64_t to)
{
	static const unsigned char z[4096];

	while (w->pos < to) {
		size_t k = to - w->pos < sizeof(z) ? (size_t)(to - w->pos) : sizeof(z);
		int r = w_bytes(w, z, k);

		if (r < 0)
			return r;
	}
	return 0;
}

/* Copy [off, off+len) of the input; the first call patches the ELF header. */
static int w_copy(struct writer *w, struct plan *p, unsigned char *buf, uint64_t off, uint64_t len,
		  bool patch)
{
	while (len > 0) {
		size_t k = len < IOBUF ? (size_t)len : IOBUF;
		int r = lp_pread_all(p->fd, buf, k, (off_t)off);

		if (r < 0)
			return r;
		if (patch && off == 0) {
			bool be = p->eh.e_ident[EI_DATA] == ELFDATA2MSB;
			size_t shnum = p->nkept, shstr = p->s[p->shstrndx].newidx;

			/* e_shoff, e_shnum, e_shstrndx; extended numbering goes in section 0. */
			put(buf + (p->is64 ? 0x28 : 0x20), p->shoff, p->is64 ? 8 : 4, be);
			put(buf + (p->is64 ? 0x3c : 0x30), shnum >= SHN_LORESERVE ? 0 : shnum, 2, be);
			put(buf + (p->is64 ? 0x3e : 0x32), shstr >= SHN_LORESERVE ? SHN_XINDEX : shstr, 2, be);
		}
		r = w_bytes(w, buf, k);
		if (r < 0)
			return r;
		off += k;
		len -= k;
	}
	return 0;
}

static int write_shdrs(struct writer *w, struct plan *p)
{
	size_t esz = p->eh.e_shentsize, n = p->nkept;
	void *mem = calloc(n, p->is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr));
	unsigned char *file = malloc(n * esz);
	Elf_Data src = { .d_type = ELF_T_SHDR, .d_version = EV_CURRENT };
	Elf_Data dst = { .d_type = ELF_T_SHDR, .d_version = EV_CURRENT };
	size_t shstr = p->s[p->shstrndx].newidx;
	int r = -ENOMEM;

	if (!mem || !file)
		goto out;
	for (size_t i = 0; i < p->shnum; i++) {
		struct sec *s = &p->s[i];
		GElf_Shdr sh = s->sh;

		if (!s->keep)
			continue;
		if (s->placeholder) {
			memset(&sh, 0, sizeof(sh));
		} else if (i == 0) {
			/* Extended numbering: real counts live in section 0. */
			sh.sh_size = n >= SHN_LORESERVE ? n : 0;
			sh.sh_link = shstr >= SHN_LORESERVE ? shstr : 0;
		} else {
			sh.sh_name = s->newname;
			sh.sh_offset = s->newoff;
			if (i == p->shstrndx && p->rebuild_names)
				sh.sh_size = p->names_len;
			sh.sh_link = sh.sh_link ? p->s[sh.sh_link].newidx : 0;
			if (info_is_index(&sh) && sh.sh_info)
				sh.sh_info = (GElf_Word)p->s[sh.sh_info].newidx;
		}
		if (p->is64) {
			Elf64_Shdr *o = (Elf64_Shdr *)mem + s->newidx;

			o->sh_name = (Elf64_Word)sh.sh_name;
			o->sh_type = sh.sh_type;
			o->sh_flags = sh.sh_flags;
			o->sh_addr = sh.sh_addr;
			o->sh_offset = sh.sh_offset;
			o->sh_size = sh.sh_size;
			o->sh_link = sh.sh_link;
			o->sh_info = sh.sh_info;
			o->sh_addralign = sh.sh_addralign;
			o->sh_entsize = sh.sh_entsize;
		} else {
			Elf32_Shdr *o = (Elf32_Shdr *)mem + s->newidx;

			o->sh_name = (Elf32_Word)sh.sh_name;
			o->sh_type = sh.sh_type;
			o->sh_flags = (Elf32_Word)sh.sh_flags;
			o->sh_addr = (Elf32_Addr)sh.sh_addr;
			o->sh_offset = (Elf32_Off)sh.sh_offset;
			o->sh_size = (Elf32_Word)sh.sh_size;
			o->sh_link = sh.sh_link;
			o->sh_info = sh.sh_info;
			o->sh_addralign = (Elf32_Word)sh.sh_addralign;
			o->sh_entsize = (Elf32_Word)sh.sh_entsize;
		}
	}
	/* Let libelf translate to the file's class and byte order. */
	src.d_buf = mem;
	src.d_size = n * (p->is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr));
	dst.d_buf = file;
	dst.d_size = n * esz;
	if (!gelf_xlatetof(p->elf, &dst, &src, p->eh.e_ident[EI_DATA])) {
		r = -LP_E_NOTELF;
		goto out;
	}
	r = w_bytes(w, file, dst.d_size);
out:
	free(mem);
	free(file);
	return r;
}

static int write_out(struct plan *p, const char *out_path, mode_t mode, struct lp_strip_result *res)
{
	struct writer w = { .fd = -1 };
	unsigned char *buf = malloc(IOBUF);
	int r = -ENOMEM;

	if (!buf)
		return -ENOMEM;
	w.fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (w.fd < 0) {
		r = lp_fail(-errno, out_path, "cannot create: %s", strerror(errno));
		goto out;
	}
	lp_sha256_init(&w.sha);
	r = w_copy(&w, p, buf, 0, p->prefix_end, true);
	for (size_t i = 1; r == 0 && i < p->shnum; i++) {
		struct sec *s = &p->s[i];

		if (!s->keep || s->fixed || s->placeholder || s->sh.sh_type == SHT_NOBITS)
			continue;
		r = w_zeros(&w, s->newoff);
		if (r < 0)
			break;
		if (i == p->shstrndx && p->rebuild_names)
			r = w_bytes(&w, p->names, p->names_len);
		else
			r = w_copy(&w, p, buf, s->sh.sh_offset, s->sh.sh_size, false);
	}
	if (r == 0)
		r = w_zeros(&w, p->shoff);
	if (r == 0)
		r = write_shdrs(&w, p);
	if (r == 0 && fchmod(w.fd, mode & 0777) < 0)
		r = -errno;
	if (close(w.fd) < 0 && r == 0)
		r = -errno;
	w.fd = -1;
	if (r < 0) {
		unlink(out_path);
		if (r != -LP_E_NOTELF)
			lp_fail(r, out_path, "write failed: %s", lp_strerror(r));
		goto out;
	}
	lp_sha256_final(&w.sha, res->digest);
	res->has_digest = true;
	res->size_after = w.pos;
out:
	free(buf);
	return r;
}

/*
 * After open_plan(): lay out what stays. 1 when p->out_size is a smaller
 * file; 0 for a skip (outcome set); -errno.
 */
static int plan_layout(struct plan *p, struct lp_strip_result *res)
{
	int r;

	if (res->removed == 0)
		return outcome(res, LP_STRIP_NOTHING, "nothing to strip");
	r = layout(p);
	if (r == -LP_E_NOTELF)
		return outcome(res, LP_STRIP_UNPARSEABLE, "a kept section has an impossible alignment");
	if (r < 0)
		return r;
	if (p->out_size >= p->fsize)
		return outcome(res, LP_STRIP_NOT_SMALLER, "stripped copy would not be smaller (%llu >= %llu bytes)",
			       (unsigned long long)p->out_size, (unsigned long long)p->fsize);
	return 1;
}

int lp_strip_file(const char *in_path, const char *out_path, const struct lp_strip_opts *opts,
		  struct lp_strip_result *res)
{
	static const struct lp_strip_opts defaults;
	struct plan p = { .fd = -1 };
	struct stat st;
	int r;

	memset(res, 0, sizeof(*res));
	if (!opts)
		opts = &defaults;
	p.fd = open(in_path, O_RDONLY | O_CLOEXEC);
	if (p.fd < 0)
		return lp_fail(-errno, in_path, "cannot open: %s", strerror(errno));
	if (!out_path) {
		r = lp_strip_plan_fd(p.fd, in_path, opts, res);
		close(p.fd);
		return r;
	}
	r = open_plan(in_path, opts, &p, res);
	if (r > 0)
		r = plan_layout(&p, res);
	if (r <= 0)
		goto out;
	if (fstat(p.fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	r = write_out(&p, out_path, st.st_mode, res);
	if (r == -LP_E_NOTELF) {
		r = outcome(res, LP_STRIP_PROOF_FAILED, "libelf could not translate the section headers");
		goto out;
	}
	if (r < 0)
		goto out;
	plan_free(&p);
	p.fd = -1;
	p.elf = NULL;
	p.s = NULL;
	p.names = NULL;

	{
		char why[200];

		r = lp_strip_verify(in_path, out_path, why, sizeof(why));
		if (r == -LP_E_NOTELF) {
			unlink(out_path);
			res->size_after = res->size_before;
			res->has_digest = false;
			r = outcome(res, LP_STRIP_PROOF_FAILED, "stripped copy failed verification: %s", why);
			goto out;
		}
		if (r < 0) {
			unlink(out_path);
			goto out;
		}
	}
	r = outcome(res, LP_STRIP_OK, "removed %u %s (%llu debug, %llu symbol bytes)", res->removed,
		    lp_plural(res->removed, "section", "sections"),
		    (unsigned long long)res->debug_removed, (unsigned long long)res->symtab_removed);
out:
	plan_free(&p);
	if (res->outcome != LP_STRIP_OK || r < 0)
		res->size_after = res->size_before;
	return r;
}

int lp_strip_plan_fd(int fd, const char *name, const struct lp_strip_opts *opts,
		     struct lp_strip_result *res)
{
	static const struct lp_strip_opts defaults;
	struct plan p = { .fd = -1 };
	int r;

	memset(res, 0, sizeof(*res));
	if (!opts)
		opts = &defaults;
	/* A private descriptor: plan_free() closes it, and libelf reads by offset. */
	p.fd = dup(fd);
	if (p.fd < 0)
		return lp_fail(-errno, name, "cannot duplicate descriptor: %s", strerror(errno));
	r = open_plan(name, opts, &p, res);
	if (r > 0)
		r = plan_layout(&p, res);
	if (r <= 0)
		goto out;
	res->size_after = p.out_size;
	r = outcome(res, LP_STRIP_OK, "would remove %u %s (%llu debug, %llu symbol bytes)", res->removed,
		    lp_plural(res->removed, "section", "sections"),
		    (unsigned long long)res->debug_removed, (unsigned long long)res->symtab_removed);
out:
	plan_free(&p);
	if (res->outcome != LP_STRIP_OK || r < 0)
		res->size_after = res->size_before;
	return r;
}

/* --- proof ---------------------------------------------------------------- */

/*
 * The first PT_LOAD usually maps the ELF header, whose e_shoff/e_shnum/
 * e_shstrndx any strip must change; the loader never reads them. Blank those
 * bytes (in both copies) when a compared range covers them.
 */
static void mask_fields(unsigned char *buf, uint64_t off, size_t k, bool is64)
{
	const uint64_t f[2][2] = { { is64 ? 0x28 : 0x20, is64 ? 8 : 4 }, { is64 ? 0x3c : 0x30, 4 } };

	for (int i = 0; i < 2; i++)
		for (uint64_t b = f[i][0]; b < f[i][0] + f[i][1]; b++)
			if (b >= off && b - off < k)
				buf[b - off] = 0;
}

static int cmp_range(int a, int b, uint64_t off, uint64_t len, unsigned char *ba, unsigned char *bb,
		     bool is64)
{
	while (len > 0) {
		size_t k = len < IOBUF / 2 ? (size_t)len : IOBUF / 2;
		int r = lp_pread_all(a, ba, k, (off_t)off);

		if (r == 0)
			r = lp_pread_all(b, bb, k, (off_t)off);
		if (r < 0)
			return r;
		if (off < 64) {
			mask_fields(ba, off, k, is64);
			mask_fields(bb, off, k, is64);
		}
		if (memcmp(ba, bb, k) != 0)
			return 1;
		off += k;
		len -= k;
	}
	return 0;
}

__attribute__((format(printf, 3, 4)))
static int why_fail(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (why && len) {
		va_start(ap, fmt);
		vsnprintf(why, len, fmt, ap);
		va_end(ap);
	}
	return -LP_E_NOTELF;
}

static bool same_scn(Elf *ea, Elf *eb, size_t k)
{
	size_t sa, sb;
	Elf_Scn *x = elf_getscn(ea, k), *y = elf_getscn(eb, k);
	GElf_Shdr hx, hy;
	const char *nx, *ny;

	if (!x || !y || !gelf_getshdr(x, &hx) || !gelf_getshdr(y, &hy) ||
	    elf_getshdrstrndx(ea, &sa) < 0 || elf_getshdrstrndx(eb, &sb) < 0)
		return false;
	nx = elf_strptr(ea, sa, hx.sh_name);
	ny = elf_strptr(eb, sb, hy.sh_name);
	return nx && ny && !strcmp(nx, ny) && hx.sh_type == hy.sh_type && hx.sh_addr == hy.sh_addr &&
	       hx.sh_size == hy.sh_size;
}

/*
 * .dynsym is loaded (so byte-identical), but its st_shndx values name
 * sections by index: each one must still name the same section.
 */
static int check_dynsym(Elf *ea, Elf *eb, char *why, size_t why_len)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(eb, scn)) != NULL) {
		GElf_Shdr sh;
		Elf_Data *d;
		size_t n;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNSYM)
			continue;
		d = elf_getdata(scn, NULL);
		if (!d)
			return why_fail(why, why_len, "output .dynsym unreadable");
		n = d->d_size / gelf_fsize(eb, ELF_T_SYM, 1, EV_CURRENT);
		for (size_t k = 0; k < n; k++) {
			GElf_Sym sym;

			if (!gelf_getsym(d, (int)k, &sym))
				return why_fail(why, why_len, "output .dynsym unreadable");
			if (sym.st_shndx == SHN_UNDEF || sym.st_shndx >= SHN_LORESERVE)
				continue;
			if (!same_scn(ea, eb, sym.st_shndx))
				return why_fail(why, why_len, "dynamic symbol %zu now points at another section", k);
		}
	}
	return 0;
}

int lp_strip_verify(const char *in_path, const char *out_path, char *why, size_t why_len)
{
	int a = -1, b = -1, r;
	Elf *ea = NULL, *eb = NULL;
	GElf_Ehdr ha, hb;
	unsigned char *ba = NULL, *bb = NULL;
	struct stat sa, sb;
	size_t pa, pb, sn, sstr;

	lp_elf_init();
	a = open(in_path, O_RDONLY | O_CLOEXEC);
	b = open(out_path, O_RDONLY | O_CLOEXEC);
	ba = malloc(IOBUF / 2);
	bb = malloc(IOBUF / 2);
	if (a < 0 || b < 0) {
		r = lp_fail(-errno, a < 0 ? in_path : out_path, "cannot open: %s", strerror(errno));
		goto out;
	}
	if (!ba || !bb) {
		r = -ENOMEM;
		goto out;
	}
	if (fstat(a, &sa) < 0 || fstat(b, &sb) < 0) {
		r = -errno;
		goto out;
	}
	ea = elf_begin(a, ELF_C_READ, NULL);
	eb = elf_begin(b, ELF_C_READ, NULL);
	if (!ea || !gelf_getehdr(ea, &ha) || elf_getphdrnum(ea, &pa) < 0) {
		r = why_fail(why, why_len, "input does not parse");
		goto out;
	}
	if (!eb || elf_kind(eb) != ELF_K_ELF || !gelf_getehdr(eb, &hb) || elf_getphdrnum(eb, &pb) < 0 ||
	    elf_getshdrnum(eb, &sn) < 0 || elf_getshdrstrndx(eb, &sstr) < 0) {
		r = why_fail(why, why_len, "output does not parse with libelf: %s", elf_errmsg(-1));
		goto out;
	}
	/* ELF header: byte-identical except e_shoff, e_shnum, e_shstrndx. */
	{
		unsigned char x[64], y[64];
		bool is64 = ha.e_ident[EI_CLASS] == ELFCLASS64;
		size_t eh = is64 ? 64 : 52;

		if ((uint64_t)sa.st_size < eh || (uint64_t)sb.st_size < eh ||
		    lp_pread_all(a, x, eh, 0) < 0 || lp_pread_all(b, y, eh, 0) < 0) {
			r = why_fail(why, why_len, "short ELF header");
			goto out;
		}
		memset(x + (is64 ? 0x28 : 0x20), 0, is64 ? 8 : 4);
		memset(y + (is64 ? 0x28 : 0x20), 0, is64 ? 8 : 4);
		memset(x + (is64 ? 0x3c : 0x30), 0, 4);
		memset(y + (is64 ? 0x3c : 0x30), 0, 4);
		if (memcmp(x, y, eh) != 0) {
			r = why_fail(why, why_len, "ELF header differs");
			goto out;
		}
	}
	if (pa != pb) {
		r = why_fail(why, why_len, "program header count differs");
		goto out;
	}
	/* Program header table, then every segment's file bytes. */
	{
		uint64_t len = (uint64_t)pa * ha.e_phentsize;

		if (ha.e_phoff + len > (uint64_t)sb.st_size || ha.e_phoff + len > (uint64_t)sa.st_size) {
			r = why_fail(why, why_len, "program header table outside the file");
			goto out;
		}
		r = cmp_range(a, b, ha.e_phoff, len, ba, bb, ha.e_ident[EI_CLASS] == ELFCLASS64);
		if (r != 0) {
			r = r > 0 ? why_fail(why, why_len, "program header table differs") : r;
			goto out;
		}
	}
	for (size_t i = 0; i < pa; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(ea, (int)i, &ph)) {
			r = why_fail(why, why_len, "input program header %zu unreadable", i);
			goto out;
		}
		if (ph.p_filesz == 0)
			continue;
		if (ph.p_offset + ph.p_filesz > (uint64_t)sb.st_size) {
			r = why_fail(why, why_len, "segment %zu is cut off in the output", i);
			goto out;
		}
		r = cmp_range(a, b, ph.p_offset, ph.p_filesz, ba, bb, ha.e_ident[EI_CLASS] == ELFCLASS64);
		if (r != 0) {
			r = r > 0 ? why_fail(why, why_len, "bytes of segment %zu (type %#x) differ", i,
					     (unsigned)ph.p_type) : r;
			goto out;
		}
	}
	/*
	 * Sections: all parse and lie inside the file, and the allocated ones
	 * are the same sections as before, in the same order and place.
	 */
	{
		size_t na = 0, astr = 0;
		Elf_Scn *sc_a = NULL, *sc_b = NULL;

		if (elf_getshdrnum(ea, &na) < 0 || elf_getshdrstrndx(ea, &astr) < 0)
			na = 0;
		for (size_t i = 1; i < sn; i++) {
			GElf_Shdr sh;
			Elf_Scn *scn = elf_getscn(eb, i);

			if (!scn || !gelf_getshdr(scn, &sh) || !elf_strptr(eb, sstr, sh.sh_name)) {
				r = why_fail(why, why_len, "output section %zu unreadable", i);
				goto out;
			}
			if (sh.sh_type != SHT_NOBITS && sh.sh_offset + sh.sh_size > (uint64_t)sb.st_size) {
				r = why_fail(why, why_len, "output section %zu outside the file", i);
				goto out;
			}
		}
		for (;;) {
			GElf_Shdr x, y;
			const char *nx, *ny;

			do
				sc_a = elf_nextscn(ea, sc_a);
			while (sc_a && (!gelf_getshdr(sc_a, &x) || !(x.sh_flags & SHF_ALLOC)));
			do
				sc_b = elf_nextscn(eb, sc_b);
			while (sc_b && (!gelf_getshdr(sc_b, &y) || !(y.sh_flags & SHF_ALLOC)));
			if (!sc_a || !sc_b) {
				if (sc_a || sc_b) {
					r = why_fail(why, why_len, "allocated sections differ in number");
					goto out;
				}
				break;
			}
			nx = elf_strptr(ea, astr, x.sh_name);
			ny = elf_strptr(eb, sstr, y.sh_name);
			if (!nx || !ny || strcmp(nx, ny) || x.sh_type != y.sh_type || x.sh_flags != y.sh_flags ||
			    x.sh_addr != y.sh_addr || x.sh_offset != y.sh_offset || x.sh_size != y.sh_size) {
				r = why_fail(why, why_len, "allocated section %s changed", nx ? nx : "?");
				goto out;
			}
		}
	}
	r = check_dynsym(ea, eb, why, why_len);
out:
	if (ea)
		elf_end(ea);
	if (eb)
		elf_end(eb);
	if (a >= 0)
		close(a);
	if (b >= 0)
		close(b);
	free(ba);
	free(bb);
	return r;
}

/* --- cache ---------------------------------------------------------------- */

/*
 * Layout: <cache_dir>/strip-v2/<sha256-of-input><-g>.elf holds the stripped
 * bytes; .skip holds "<outcome> <reason>" so skips are not re-examined.
 */
static int cache_paths(const char *dir, const uint8_t d[32], const struct lp_strip_opts *o,
		       char **elf, char **skip)
{
	char hex[65];

	lp_hex(d, 32, hex);
	if (asprintf(elf, "%s/strip-v2/%s%s.elf", dir, hex, o->debug_only ? "-g" : "") < 0)
		return -ENOMEM;
	if (asprintf(skip, "%s/strip-v2/%s%s.skip", dir, hex, o->debug_only ? "-g" : "") < 0) {
		free(*elf);
		return -ENOMEM;
	}
	return 0;
}

/* Write via a temp name + rename so concurrent runs never see half a file. */
static int cache_store(const char *from_or_null, const void *text, size_t len, const char *to)
{
	char *tmp;
	int r;

	if (asprintf(&tmp, "%s.%ld.tmp", to, (long)getpid()) < 0)
		return -ENOMEM;
	if (from_or_null) {
		r = lp_copy_file(from_or_null, tmp);
	} else {
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		r = fd < 0 ? -errno : lp_write_all(fd, text, len);
		if (fd >= 0 && close(fd) < 0 && r == 0)
			r = -errno;
	}
	if (r == 0 && rename(tmp, to) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	free(tmp);
	return r;
}

int lp_strip_cached(const char *in_path, const uint8_t *in_digest, const char *cache_dir,
		    const char *out_path, const struct lp_strip_opts *opts,
		    struct lp_strip_result *res)
{
	static const struct lp_strip_opts defaults;
	uint8_t d[32];
	char *celf = NULL, *cskip = NULL, *sub = NULL, *text = NULL;
	size_t tlen;
	struct stat st;
	int r;

	if (!opts)
		opts = &defaults;
	if (!cache_dir || !out_path)
		return lp_strip_file(in_path, out_path, opts, res);
	if (!in_digest) {
		r = lp_sha256_file(in_path, d);
		if (r < 0)
			return lp_fail(r, in_path, "cannot hash: %s", lp_strerror(r));
		in_digest = d;
	}
	r = cache_paths(cache_dir, in_digest, opts, &celf, &cskip);
	if (r < 0)
		return r;
	memset(res, 0, sizeof(*res));
	if (stat(in_path, &st) < 0) {
		r = lp_fail(-errno, in_path, "cannot stat: %s", strerror(errno));
		goto out;
	}

	/* Hit: stripped bytes, proven again against this input before use. */
	if (lp_copy_file(celf, out_path) == 0) {
		char why[200];
		struct stat cs;

		if (lp_strip_verify(in_path, out_path, why, sizeof(why)) == 0 && stat(out_path, &cs) == 0 &&
		    chmod(out_path, st.st_mode & 0777) == 0 && lp_sha256_file(out_path, res->digest) == 0) {
			struct lp_strip_result plan;

			/* Counts and notes come from a plan: parsing only, no writing. */
			if (lp_strip_file(in_path, NULL, opts, &plan) == 0 && plan.outcome == LP_STRIP_OK) {
				res->removed = plan.removed;
				res->debug_removed = plan.debug_removed;
				res->symtab_removed = plan.symtab_removed;
				res->kept_unknown = plan.kept_unknown;
				memcpy(res->kept_note, plan.kept_note, sizeof(res->kept_note));
			}
			res->outcome = LP_STRIP_OK;
			res->cached = true;
			res->has_digest = true;
			res->size_before = (uint64_t)st.st_size;
			res->size_after = (uint64_t)cs.st_size;
			snprintf(res->reason, sizeof(res->reason), "from strip cache");
			r = 0;
			goto out;
		}
		unlink(out_path);
		unlink(celf);
	}
	lp_errmsg_clear();
	if (lp_read_file(cskip, 4096, &text, &tlen) == 0) {
		unsigned o = 0;
		int used = 0;

		if (sscanf(text, "%u %n", &o, &used) == 1 && o > LP_STRIP_OK && o <= LP_STRIP_UNLOADABLE) {
			res->outcome = (enum lp_strip_outcome)o;
			res->cached = true;
			res->size_before = res->size_after = (uint64_t)st.st_size;
			snprintf(res->reason, sizeof(res->reason), "%s", text + used);
			r = 0;
			goto out;
		}
	}
	lp_errmsg_clear();

	r = lp_strip_file(in_path, out_path, opts, res);
	if (r < 0)
		goto out;
	if (asprintf(&sub, "%s/strip-v2", cache_dir) < 0 || lp_mkdir_p(sub, 0755) < 0)
		goto out;	/* an unusable cache never fails the strip */
	if (res->outcome == LP_STRIP_OK) {
		cache_store(out_path, NULL, 0, celf);
	} else if (res->outcome != LP_STRIP_PROOF_FAILED) {
		char line[320];
		int n = snprintf(line, sizeof(line), "%u %s", (unsigned)res->outcome, res->reason);

		cache_store(NULL, line, (size_t)n, cskip);
	}
out:
	free(celf);
	free(cskip);
	free(sub);
	free(text);
	return r;
}
