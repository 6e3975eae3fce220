#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Build the ELF fixtures the elf/strip/optimize/check tests use:
#   make-fixtures.sh OUTDIR [STAMP]
# Everything is compiled here, at test time, from the sources below, so the
# fixtures always match this machine's toolchain. Optional cross targets are
# skipped (and the tests that want them skip) when a compiler is missing.
set -eu

out=$1
stamp=${2:-}
case $stamp in ''|/*) ;; *) stamp=$(pwd)/$stamp ;; esac
mkdir -p "$out"
cd "$out"

cat > hello.c <<'C'
#include <stdio.h>
#include <stdlib.h>
static int table[64];
int main(int argc, char **argv)
{
	long sum = 0;
	for (int i = 0; i < 64; i++)
		table[i] = i * i + argc;
	for (int i = 0; i < 64; i++)
		sum += table[i];
	printf("hello from lambdapack fixture: %ld\n", sum);
	return argc > 1 ? atoi(argv[1]) : 0;
}
C

cat > foo.c <<'C'
#include <math.h>
#include <stdio.h>
#include <string.h>
struct point { double x, y; };
static char buf[256];
double foo_dist(const struct point *a, const struct point *b)
{
	return sqrt((a->x - b->x) * (a->x - b->x) + (a->y - b->y) * (a->y - b->y));
}
const char *foo_greet(const char *who)
{
	snprintf(buf, sizeof(buf), "hi %s", who);
	return buf;
}
int foo_answer(void) { return 42; }
C

cat > usefoo.c <<'C'
#include <stdio.h>
int foo_answer(void);
const char *foo_greet(const char *who);
int main(void)
{
	printf("%s %d\n", foo_greet("lambda"), foo_answer());
	return 0;
}
C

# copy_file_range is GLIBC_2.27: one step past Amazon Linux 2's 2.26.
cat > new227.c <<'C'
#define _GNU_SOURCE
#include <unistd.h>
long n227_copy(int a, int b) { return copy_file_range(a, 0, b, 0, 1, 0); }
C

# arc4random is GLIBC_2.36: newer than even Amazon Linux 2023's 2.34.
cat > new236.c <<'C'
#include <stdlib.h>
unsigned n236_random(void) { return arc4random(); }
C

cat > tiny.c <<'C'
int tiny_f(int x) { return x * 3 + 1; }
int tiny_data[16] = { 1, 2, 3 };
C

CC=${CC:-cc}
$CC -g -O2 -o hello hello.c
$CC -g -O2 -no-pie -o hello-nopie hello.c
$CC -g -O2 -fPIC -shared -Wl,-soname,libfoo.so.1 -o libfoo.so foo.c -lm
$CC -g -O2 -fPIC -shared -Wl,-soname,libfoo.so.1 -Wl,--emit-relocs -o libfoo-emitrelocs.so foo.c -lm
$CC -g -O2 -o usefoo usefoo.c -L. -lfoo -Wl,-rpath,'$ORIGIN/lib'
# Same program but the RUNPATH names a directory the package will not have.
$CC -g -O2 -o usefoo-badpath usefoo.c -L. -lfoo -Wl,-rpath,'$ORIGIN/nowhere'
$CC -g -O2 -fPIC -shared -o libnew227.so new227.c
$CC -g -O2 -fPIC -shared -o libnew236.so new236.c
$CC -g -O2 -c -o hello.o hello.c
ar rcs libhello.a hello.o
cp hello hello-stripped && strip hello-stripped

# Appended payloads: a generic trailer and a kernel-style module signature.
cp libfoo.so libpayload.so
head -c 4096 /dev/urandom >> libpayload.so
cp libfoo.so libsigned.so
head -c 600 /dev/urandom >> libsigned.so
printf '~Module signature appended~\n' >> libsigned.so

# A PyInstaller-style archive kept in a non-allocated section.
head -c 8192 /dev/urandom > pydata.bin
objcopy --add-section pydata=pydata.bin libfoo.so libpydata.so

# Section headers removed (e_shoff = e_shnum = e_shstrndx = 0), as sstrip does.
python3 - libfoo.so libnoshdr.so <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
assert b[4] == 2 and b[5] == 1          # ELF64 little-endian
struct.pack_into('<Q', b, 0x28, 0)      # e_shoff
struct.pack_into('<HH', b, 0x3c, 0, 0)  # e_shnum, e_shstrndx
open(sys.argv[2], 'wb').write(b)
PY

# Foreign formats: minimal headers are all the reader looks at.
python3 - <<'PY'
import struct
# thin Mach-O, x86_64, little-endian (cffaedfe)
open('macho-x86_64', 'wb').write(struct.pack('<IIIIIIII', 0xfeedfacf, 0x01000007, 3, 2, 0, 0, 0, 0) + bytes(64))
# fat Mach-O with arm64 + x86_64 slices (big-endian header)
fat = struct.pack('>II', 0xcafebabe, 2)
fat += struct.pack('>IIIII', 0x0100000c, 0, 4096, 64, 12)
fat += struct.pack('>IIIII', 0x01000007, 3, 8192, 64, 12)
open('macho-fat', 'wb').write(fat + bytes(8192 + 64 - len(fat)))
# PE32+ for x86-64: MZ, e_lfanew = 0x80, "PE\0\0", Machine 0x8664
pe = bytearray(0x200)
pe[0:2] = b'MZ'
struct.pack_into('<I', pe, 0x3c, 0x80)
pe[0x80:0x84] = b'PE\0\0'
struct.pack_into('<H', pe, 0x84, 0x8664)
open('pe-x86_64.dll', 'wb').write(pe)
# PE for arm64 with the PE header past the first 4 KiB
pe = bytearray(0x1200)
pe[0:2] = b'MZ'
struct.pack_into('<I', pe, 0x3c, 0x1100)
pe[0x1100:0x1104] = b'PE\0\0'
struct.pack_into('<H', pe, 0x1104, 0xaa64)
open('pe-arm64.exe', 'wb').write(pe)
PY

# aarch64 via the Debian cross toolchain.
if command -v aarch64-linux-gnu-gcc >/dev/null 2>&1; then
	aarch64-linux-gnu-gcc -g -O2 -o hello-aarch64 hello.c
	aarch64-linux-gnu-gcc -g -O2 -fPIC -shared -Wl,-soname,libfoo.so.1 -o libfoo-aarch64.so foo.c -lm
fi

# 32-bit little-endian (i386), without libc: the multilib libc is not installed.
if $CC -m32 -g -O2 -fPIC -shared -nostdlib -o libtiny-i386.so tiny.c 2>/dev/null; then :; else rm -f libtiny-i386.so; fi
# Big-endian 64-bit (ppc64) and 32-bit (mips) through clang + lld.
if command -v clang >/dev/null 2>&1 && command -v ld.lld >/dev/null 2>&1; then
	clang --target=powerpc64-linux-gnu -fuse-ld=lld -g -O2 -fPIC -shared -nostdlib \
		-Wl,-soname,libtiny.so -o libtiny-ppc64.so tiny.c 2>/dev/null || rm -f libtiny-ppc64.so
	clang --target=mips-linux-gnu -fuse-ld=lld -g -O2 -fPIC -shared -nostdlib \
		-o libtiny-mips.so tiny.c 2>/dev/null || rm -f libtiny-mips.so
fi

rm -f pydata.bin
[ -n "$stamp" ] && touch "$stamp"
exit 0
