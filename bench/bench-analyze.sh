#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Bench `lambdapack analyze` on a ~250 MB generated tree and on its zip
# (made with zip -qr) against the tools that give the same information:
#   floor 1: within 2x of sha256sum over the same files (each byte read once)
#   floor 2: faster than `du -ab | sort -n` plus `fdupes -r`
#   peak RSS under 256 MiB
# usage: bench/bench-analyze.sh [LAMBDAPACK] [WORKDIR]
# Warm page cache: every command runs once untimed, then best of 3.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
lp=${1:-$src/build/cli/lambdapack}
work=${2:-$src/bench/out/analyze}
tree=$work/tree
zipf=$work/tree.zip
mkdir -p "$work"

if [ ! -f "$work/.tree-done" ]; then
	rm -rf "$tree"
	python3 - "$tree" <<'PY'
import os, random, sys
root = sys.argv[1]
rnd = random.Random(5)
def put(p, data):
    p = os.path.join(root, p)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
words = [b"function", b"return", b"const", b"module", b"exports", b"require", b"async", b"await",
         b"this", b"value", b"object", b"string", b"number", b"null", b"undefined", b"=>", b"{", b"}"]
def text(n):
    out = bytearray()
    while len(out) < n:
        out += b" ".join(rnd.choice(words) for _ in range(12)) + b";\n"
    return bytes(out[:n])
# ~70 MB of JS in 3500 files across 120 packages
for i in range(3500):
    put(f"node_modules/pkg{i % 120}/lib/f{i}.js", text(rnd.randint(4000, 36000)))
# ~40 MB of Python in 2000 files
for i in range(2000):
    put(f"python/lib/python3.12/site-packages/mod{i % 40}/m{i}.py", text(rnd.randint(4000, 36000)))
# ~90 MB of incompressible binaries
for i in range(18):
    put(f"bin/tool{i}.bin", rnd.randbytes(rnd.randint(4 << 20, 6 << 20)))
# ~50 MB of duplicates: one 5 MiB file, ten copies
dup = rnd.randbytes(5 << 20)
for i in range(10):
    put(f"vendor/copy{i}/blob.bin", dup)
PY
	(cd "$tree" && rm -f "$zipf" && zip -qr "$zipf" .)
	touch "$work/.tree-done"
fi

bytes=$(du -sb "$tree" | cut -f1)
nfiles=$(find "$tree" -type f | wc -l)

# best of 5 wall seconds, the CPU seconds (user+sys) of that run, and the peak RSS (KiB)
# (the machine is shared: CPU time is the steadier figure when others are busy)
measure() {
	local best=999999 cpu=0 rss=0 t m u s
	bash -c "$1" >/dev/null 2>&1 || true
	for _ in 1 2 3 4 5; do
		/usr/bin/time -f "%e %M %U %S" -o "$work/time.txt" bash -c "$1" >/dev/null 2>&1 || true
		read -r t m u s < "$work/time.txt"
		if awk "BEGIN{exit !($t < $best)}"; then best=$t; cpu=$(awk "BEGIN{print $u + $s}"); fi
		[ "$m" -gt "$rss" ] && rss=$m
	done
	echo "$best $rss $cpu"
}

read -r t_ana_dir rss_ana_dir c_ana_dir < <(measure "'$lp' analyze '$tree' -q --json '$work/dir.json'")
read -r t_ana_zip rss_ana_zip c_ana_zip < <(measure "'$lp' analyze '$zipf' -q --json '$work/zip.json'")
read -r t_sha _ c_sha < <(measure "cd '$tree' && find . -type f -print0 | xargs -0 sha256sum")
read -r t_du _ c_du < <(measure "du -ab '$tree' | sort -n")
read -r t_fd _ c_fd < <(measure "fdupes -r '$tree'")
# For a zip, du and fdupes need the files on disk first.
read -r t_unz _ c_unz < <(measure "rm -rf '$work/unz' && mkdir '$work/unz' && unzip -qo '$zipf' -d '$work/unz' && du -ab '$work/unz' | sort -n && fdupes -r '$work/unz'")
rm -rf "$work/unz"
t_dufd=$(awk "BEGIN{print $t_du + $t_fd}")
c_dufd=$(awk "BEGIN{print $c_du + $c_fd}")

ratio() { awk "BEGIN{printf \"%.2f\", $1 / $2}"; }
echo "tree: $bytes bytes in $nfiles files; zip: $(stat -c %s "$zipf") bytes; $(nproc) CPUs"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-34s %8s %8s %10s\n" "command" "wall s" "cpu s" "peak RSS"
printf "%-34s %8s %8s %7s MiB\n" "lambdapack analyze TREE" "$t_ana_dir" "$c_ana_dir" "$((rss_ana_dir / 1024))"
printf "%-34s %8s %8s %7s MiB\n" "lambdapack analyze TREE.zip" "$t_ana_zip" "$c_ana_zip" "$((rss_ana_zip / 1024))"
printf "%-34s %8s %8s\n" "sha256sum (all files)" "$t_sha" "$c_sha"
printf "%-34s %8s %8s\n" "du -ab | sort -n" "$t_du" "$c_du"
printf "%-34s %8s %8s\n" "fdupes -r" "$t_fd" "$c_fd"
printf "%-34s %8s %8s\n" "du + fdupes" "$t_dufd" "$c_dufd"
printf "%-34s %8s %8s\n" "unzip + du + fdupes (zip)" "$t_unz" "$c_unz"
echo "wall ratios: dir/sha256sum $(ratio "$t_ana_dir" "$t_sha"), zip/sha256sum $(ratio "$t_ana_zip" "$t_sha"), dir/(du+fdupes) $(ratio "$t_ana_dir" "$t_dufd"), zip/(du+fdupes) $(ratio "$t_ana_zip" "$t_dufd")"
echo "cpu ratios:  dir/sha256sum $(ratio "$c_ana_dir" "$c_sha"), zip/sha256sum $(ratio "$c_ana_zip" "$c_sha"), dir/(du+fdupes) $(ratio "$c_ana_dir" "$c_dufd"), zip/(du+fdupes) $(ratio "$c_ana_zip" "$c_dufd")"
echo "zip vs unzip+du+fdupes: wall $(ratio "$t_ana_zip" "$t_unz"), cpu $(ratio "$c_ana_zip" "$c_unz")"
echo "zip estimate for the tree: $(python3 -c "import json;print(json.load(open('$work/dir.json'))['totals']['zipped_bytes'])") bytes (zip -qr made $(stat -c %s "$zipf"))"
fail=0
for t in "$t_ana_dir" "$t_ana_zip"; do
	awk "BEGIN{exit !($t <= 2 * $t_sha)}" || { echo "FLOOR: slower than 2x sha256sum ($t vs $t_sha)"; fail=1; }
done
awk "BEGIN{exit !($t_ana_dir < $t_dufd)}" || { echo "FLOOR: tree: not faster than du+fdupes ($t_ana_dir vs $t_dufd)"; fail=1; }
awk "BEGIN{exit !($t_ana_zip < $t_unz)}" || { echo "FLOOR: zip: not faster than unzip+du+fdupes ($t_ana_zip vs $t_unz)"; fail=1; }
awk "BEGIN{exit !($t_ana_zip < $t_dufd)}" || echo "note: zip analysis is not faster than du+fdupes over the extracted tree ($t_ana_zip vs $t_dufd)"
for m in "$rss_ana_dir" "$rss_ana_zip"; do
	[ "$m" -lt $((256 * 1024)) ] || { echo "FLOOR: peak RSS $((m / 1024)) MiB >= 256 MiB"; fail=1; }
done
[ $fail -eq 0 ] && echo "bench-analyze: all floors met"
exit $fail
