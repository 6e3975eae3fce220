#!/bin/bash
# SPDX-License-Identifier: MIT
# The build cache and the layer compressor, side by side in one run:
#   1. pack on the ~250 MB tree (gen-tree.py): --no-cache, cold (empty cache),
#      warm with nothing changed, warm with one source file changed, against
#      `zip -qr -X` (floor: warm one-file-changed <= 1/25 of zip's wall time,
#      1/15 at least);
#   2. CPU per input byte of the image path vs the zip path on that tree
#      (container --no-cache vs pack --no-cache; target <= 1.3x);
#   3. container on the gen-tree-image.py tree: cold vs warm with only the
#      code layer changed, against `tar --sort=name | pigz -6` (floors: cold
#      <= 0.6x of tar|pigz, warm <= 1/10);
#   4. container of a one-file function on a base a quarter that size: cold
#      vs warm (the base's import and the runnability check over it);
# with wall, CPU and peak RSS (/usr/bin/time -v; floor < 256 MiB), the cache
# size on disk, and a byte comparison of every warm output with its cold
# twin. Not a timed test; figures go to RESULTS-cache.md.
#
#   bench/bench-cache.sh [BUILD_DIR] [ZIP_TREE_MB] [IMAGE_TREE_MIB]
#
# Defaults 250 and 2048; on a 2-core machine shared with other builds pass a
# smaller image tree (e.g. 1024) to keep the run within minutes, and say so.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
zip_mb=${2:-250}
img_mib=${3:-2048}
lp=$(cd "$build" && pwd)/cli/lambdapack
work=$(mktemp -d "${TMPDIR:-/tmp}/lp-bench-cache.XXXXXX")
trap 'rm -rf "$work"' EXIT
nproc=$(nproc)

for t in zip pigz /usr/bin/time bc; do
	command -v "$t" >/dev/null || { echo "MISSING TOOL: $t (apt-get install it)"; exit 1; }
done

# measure LOG CMD...: prints "wall_s rss_kib cpu_s"
measure() {
	local log=$1; shift
	/usr/bin/time -v "$@" >"$log.out" 2>"$log.time" || { cat "$log.out" "$log.time"; exit 1; }
	awk -F': ' '
		/Elapsed \(wall clock\)/ { n = split($2, a, ":"); w = 0; for (i = 1; i <= n; i++) w = w * 60 + a[i] }
		/Maximum resident set size/ { m = $2 }
		/User time|System time/ { c += $2 }
		END { printf "%.2f %d %.2f\n", w, m, c }' "$log.time"
}

row() {	# name wall rss cpu [note]
	printf '| %s | %.2f | %.2f | %.1f | %s |\n' "$1" "$2" "$4" "$(echo "$3 / 1024" | bc -l)" "${5:-}"
}

# The -v cache line, shortened: "N reused, N computed ... N hashed".
cachenote() {
	awk '/^  cache / { sub(/^  cache +/, ""); sub(/; [0-9]+ evicted/, ""); print; exit }' "$1"
}

echo "lambdapack: $($lp --version 2>&1 | awk 'NR == 1'); cpus: $nproc; load before: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- 1. pack -------------------------------------------------------------------
tree=$work/tree
python3 "$here/gen-tree.py" "$tree" "$zip_mb" >/dev/null
bytes=$(du -sb --apparent-size "$tree" | cut -f1)
nfiles=$(find "$tree" -type f | wc -l)
find "$tree" -type f -exec cat {} + >/dev/null
# Files older than the racy window, as a CI checkout is by the time it builds.
sleep 2
cache=$work/cache
echo
echo "## pack: $nfiles files, $bytes bytes"
echo
echo "| run | wall s | CPU s | peak RSS MiB | note |"
echo "|---|---|---|---|---|"
read -r zw zr zc < <(measure "$work/zip" sh -c "cd '$tree' && exec zip -qr -X '$work/ref.zip' .")
row "zip -qr -X" "$zw" "$zr" "$zc"
read -r nw nr nc < <(measure "$work/nc" "$lp" pack "$tree" -o "$work/nc.zip" -q --no-check --no-cache)
row "pack --no-cache" "$nw" "$nr" "$nc"
read -r cw cr cc < <(measure "$work/cold" "$lp" pack "$tree" -o "$work/cold.zip" -q --no-check --cache-dir "$cache")
row "pack cold (empty cache)" "$cw" "$cr" "$cc" "$(du -sh "$cache" | cut -f1) cached"
read -r ww wr wc < <(measure "$work/warm" "$lp" pack "$tree" -o "$work/warm.zip" -v --no-check --cache-dir "$cache")
row "pack warm, nothing changed" "$ww" "$wr" "$wc" "$(cachenote "$work/warm.time")"
victim=$(find "$tree" -name '*.py' -size +2k -print -quit)
echo "# changed" >>"$victim"
read -r w1w w1r w1c < <(measure "$work/warm1" "$lp" pack "$tree" -o "$work/warm1.zip" -v --no-check --cache-dir "$cache")
row "pack warm, one .py changed" "$w1w" "$w1r" "$w1c" "$(cachenote "$work/warm1.time")"
"$lp" pack "$tree" -o "$work/ref1.zip" -q --no-check --no-cache 2>/dev/null
same=NO
cmp -s "$work/nc.zip" "$work/cold.zip" && cmp -s "$work/cold.zip" "$work/warm.zip" && cmp -s "$work/warm1.zip" "$work/ref1.zip" && same=yes
echo
echo "warm zips byte-identical to cold/uncached ones: $same"
echo "warm one-changed vs zip: $(echo "$zw / $w1w" | bc -l | cut -c1-5)x faster (floor >= 25x, at least 15x)"
echo "cache on disk: $(du -sb "$cache" | cut -f1) bytes"

# ---- 2. CPU per byte: image path vs zip path on the same tree ------------------------
read -r pw pr pc < <(measure "$work/cpu-pack" "$lp" pack "$tree" -o "$work/cpu.zip" -q --no-check --no-cache)
read -r iw ir ic < <(measure "$work/cpu-img" "$lp" container "$tree" -o "$work/cpu-img" -q --no-check --no-cache)
echo
echo "## CPU per input byte on the same tree"
echo
echo "pack --no-cache: ${pc} s CPU; container --no-cache (gzip, libdeflate blocks): ${ic} s CPU;" \
	"ratio $(echo "$ic / $pc" | bc -l | cut -c1-4)x (target <= 1.3x)"
rm -rf "$work/cpu-img" "$tree" "$work"/*.zip "$cache"

# ---- 3. container ------------------------------------------------------------------
itree=$work/itree
python3 "$here/gen-tree-image.py" "$itree" "$img_mib" >/dev/null
ibytes=$(du -sb --apparent-size "$itree" | cut -f1)
tar -cf - -C "$itree" . >/dev/null
sleep 2
echo
echo "## container: $ibytes bytes"
echo
echo "| run | wall s | CPU s | peak RSS MiB | note |"
echo "|---|---|---|---|---|"
tp="tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - -C '$itree' . | pigz -6 -n -p $nproc > '$work/tp.tar.gz'"
read -r tw tr tc < <(measure "$work/tp" bash -c "$tp")
row "tar | pigz -6" "$tw" "$tr" "$tc"
rm -f "$work/tp.tar.gz"
read -r ccw ccr ccc < <(measure "$work/ccold" "$lp" container "$itree" -o "$work/icold" -q --no-check --cache-dir "$cache")
row "container cold (empty cache)" "$ccw" "$ccr" "$ccc" "$(du -sh "$cache" | cut -f1) cached"
echo "// changed" >>"$itree/index.js"
read -r cww cwr cwc < <(measure "$work/cwarm" "$lp" container "$itree" -o "$work/iwarm" -v --no-check --cache-dir "$cache")
row "container warm, code layer changed" "$cww" "$cwr" "$cwc" "$(cachenote "$work/cwarm.time")"
rm -rf "$work/icold"
"$lp" container "$itree" -o "$work/iref" -q --no-check --no-cache
same=NO
diff -r "$work/iwarm" "$work/iref" >/dev/null && same=yes
echo
echo "warm image byte-identical to an uncached build: $same"
echo "cold vs tar|pigz: $(echo "$ccw / $tw" | bc -l | cut -c1-4)x wall (floor <= 0.6x)"
echo "warm vs tar|pigz: $(echo "$cww / $tw" | bc -l | cut -c1-5)x wall (floor <= 0.1x)"
echo "cache on disk: $(du -sb "$cache" | cut -f1) bytes"
rm -rf "$work/iwarm" "$work/iref" "$cache"

# ---- 4. container on a base image: a small function on a big base ---------------------
# The base is a quarter of the image tree, built once as an OCI layout with an
# ELF entry program; what a warm build costs is then the base's import and the
# runnability check over it, which the cache is meant to take off.
bmib=$(( img_mib / 4 ))
btree=$work/btree
python3 "$here/gen-tree-image.py" "$btree" "$bmib" >/dev/null
mkdir -p "$btree/bin" && cp /bin/true "$btree/bin/prog"
"$lp" container "$btree" -o "$work/base" -q --no-check --no-cache --entrypoint /var/task/bin/prog
rm -rf "$btree"
fn=$work/fn
mkdir -p "$fn" && printf 'def handler(event, context):\n    return 1\n' >"$fn/app.py"
sleep 2
bsz=$(du -sb "$work/base" | cut -f1)
echo
echo "## container on a base: $bsz bytes of base layout, a one-file function"
echo
echo "| run | wall s | CPU s | peak RSS MiB | note |"
echo "|---|---|---|---|---|"
read -r bnw bnr bnc < <(measure "$work/bnc" "$lp" container "$fn" -o "$work/bnc-out" --base "oci:$work/base" -q --no-check --no-cache)
row "container --no-cache" "$bnw" "$bnr" "$bnc"
read -r bcw bcr bcc < <(measure "$work/bcold" "$lp" container "$fn" -o "$work/bcold-out" --base "oci:$work/base" -q --no-check --cache-dir "$cache")
row "container cold (empty cache)" "$bcw" "$bcr" "$bcc"
# The --no-cache build linked the base's blobs (their ctime moved): one more
# cached build records them as they are now, as a pipeline's second run would.
sleep 2
"$lp" container "$fn" -o "$work/bprime" --base "oci:$work/base" -q --no-check --cache-dir "$cache"
sleep 2
echo "# changed" >>"$fn/app.py"
read -r bww bwr bwc < <(measure "$work/bwarm" "$lp" container "$fn" -o "$work/bwarm-out" --base "oci:$work/base" -v --no-check --cache-dir "$cache")
row "container warm, code changed" "$bww" "$bwr" "$bwc" "$(cachenote "$work/bwarm.time")"
"$lp" container "$fn" -o "$work/bref" --base "oci:$work/base" -q --no-check --no-cache
same=NO
diff -r "$work/bwarm-out" "$work/bref" >/dev/null && same=yes
echo
echo "warm image byte-identical to an uncached build: $same"
echo "warm vs cold on a base: $(echo "$bww / $bcw" | bc -l | cut -c1-5)x wall"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
