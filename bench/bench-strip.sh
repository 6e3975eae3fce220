#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Strip benchmark: ~50 unstripped shared libraries (generated C, gcc -g -O2,
# plus this project's own test fixtures' kind of code), stripped
#   1. in process by lambdapack's stripper (lp-strip-bench, one file after another),
#   2. by a loop of `eu-strip -o` processes,
#   3. by a loop of `strip --strip-unneeded -o` processes.
# Prints bytes saved by each and the time ratios. Floor (issue #3): at least
# as many bytes saved as eu-strip, at least 2x faster.
#   bench/bench-strip.sh [BUILD_DIR] [NLIBS]
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
n=${2:-50}
bin=$build/tests/elf/lp-strip-bench
[ -x "$bin" ] || ninja -C "$build" -j2 tests/elf/lp-strip-bench >/dev/null
work=$(mktemp -d "${TMPDIR:-/tmp}/lp-bench-strip.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src" "$work/in" "$work/lp" "$work/eu" "$work/gnu"

# Varied sources: i functions each with a loop, a switch and a static table.
i=1
while [ $i -le "$n" ]; do
	nf=$(( (i * 37) % 180 + 20 ))
	{
		echo '#include <stdio.h>'
		echo '#include <string.h>'
		f=0
		while [ $f -lt $nf ]; do
			cat <<C
static const int tab_${f}[8] = { $f, $i, 3, 5, 7, 11, 13, $((f * i)) };
struct s_${f} { int a; double b; char name[16]; };
int lib${i}_fn_${f}(int x, const char *s)
{
	struct s_${f} v = { x, x * 0.5, "f$f" };
	int acc = 0;
	for (int k = 0; k < x % 17; k++) {
		switch ((k + $f) % 4) {
		case 0: acc += tab_${f}[k % 8]; break;
		case 1: acc ^= (int)strlen(s) + v.a; break;
		case 2: acc -= (int)v.b; break;
		default: acc += snprintf(v.name, sizeof(v.name), "%d", k);
		}
	}
	return acc;
}
C
			f=$((f + 1))
		done
	} > "$work/src/lib$i.c"
	i=$((i + 1))
done
ls "$work"/src/*.c | xargs -P 2 -I{} sh -c 'b=$(basename {} .c); gcc -g -O2 -fPIC -shared -o '"$work"'/in/$b.so {}'
files=$(ls "$work"/in/*.so)
count=$(echo "$files" | wc -l)
before=$(cat $files | wc -c)
cat $files > /dev/null	# warm the page cache for every contender

now() { date +%s.%N; }

t0=$(now)
res=$("$bin" "$work/lp" $files)
t1=$(now)
for f in $files; do eu-strip -o "$work/eu/$(basename "$f")" "$f"; done
t2=$(now)
for f in $files; do strip --strip-unneeded -o "$work/gnu/$(basename "$f")" "$f"; done
t3=$(now)

lp_after=$(cat "$work"/lp/*.so | wc -c)
eu_after=$(cat "$work"/eu/*.so | wc -c)
gnu_after=$(cat "$work"/gnu/*.so | wc -c)
lp_ok=$(echo "$res" | cut -d' ' -f2)
python3 - "$count" "$before" "$lp_after" "$eu_after" "$gnu_after" "$t0" "$t1" "$t2" "$t3" "$lp_ok" <<'PY'
import sys
n, before, lp, eu, gnu = map(int, sys.argv[1:6])
t0, t1, t2, t3 = map(float, sys.argv[6:10])
ok = int(sys.argv[10])
tl, te, tg = t1 - t0, t2 - t1, t3 - t2
print(f"libraries: {n} ({ok} stripped in process), {before} bytes unstripped")
print(f"{'tool':<28}{'bytes after':>12}{'saved':>12}{'seconds':>10}")
print(f"{'lambdapack (in process)':<28}{lp:>12}{before - lp:>12}{tl:>10.3f}")
print(f"{'eu-strip -o (loop)':<28}{eu:>12}{before - eu:>12}{te:>10.3f}")
print(f"{'strip --strip-unneeded -o':<28}{gnu:>12}{before - gnu:>12}{tg:>10.3f}")
print(f"speedup vs eu-strip: {te / tl:.1f}x, vs GNU strip: {tg / tl:.1f}x")
fail = []
if before - lp < before - eu: fail.append("saves fewer bytes than eu-strip")
if te / tl < 2: fail.append("less than 2x faster than eu-strip")
print("floor: " + ("met" if not fail else "NOT met: " + ", ".join(fail)))
sys.exit(1 if fail else 0)
PY
