#!/bin/bash
# SPDX-License-Identifier: MIT
# Benchmark `lambdapack container` on a generated ~2 GB tree against
#   tar --sort=name ... | pigz -6 -n   (the same work: one sorted tar, gzip level 6)
#   umoci insert (+ repack)            (a daemonless OCI builder)
# in the same run, with wall time and peak RSS from /usr/bin/time -v, and
# checks that two lambdapack runs (different mtimes, thread counts) give
# byte-identical images. Not a timed test; figures go to RESULTS-container.md.
# usage: bench/bench-container.sh [BUILD_DIR] [SIZE_MIB] [mixed|text]
#   mixed (default): half text, half random bytes; text: every byte compressible.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build-oci}
size=${2:-2048}
kind=${3:-mixed}
lp=$(cd "$build" && pwd)/cli/lambdapack
work=$(mktemp -d "${TMPDIR:-/tmp}/lp-bench-container.XXXXXX")
trap 'rm -rf "$work"' EXIT

for t in pigz umoci /usr/bin/time; do
	command -v "$t" >/dev/null || { echo "MISSING TOOL: $t (apt-get install it)"; exit 1; }
done

python3 "$here/gen-tree-image.py" "$work/src" "$size" $([ "$kind" = text ] && echo --text)
bytes=$(du -sb "$work/src" | cut -f1)
nproc=$(nproc)
echo "tree: $bytes bytes; cpus: $nproc; $($lp --version)"

# Run a command under /usr/bin/time -v; print "wall_s rss_kib".
measure() {
	local log=$1; shift
	/usr/bin/time -v "$@" >"$log.out" 2>"$log.time" || { cat "$log.out" "$log.time"; exit 1; }
	local wall rss
	wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log.time" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
	rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log.time")
	cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$log.time")
	echo "$wall $rss $cpu"
}

sync
# Warm the page cache the same way for everyone.
tar -cf - -C "$work/src" . >/dev/null

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
# tar | pigz runs before and after lambdapack; the faster of the two counts,
# so a burst of load from other processes does not decide the comparison.
tp_cmd="tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - -C '$work/src' . | pigz -6 -n -p $nproc > '$work/tp.tar.gz'"
read -r tp_wall tp_rss tp_cpu < <(measure "$work/tp0" bash -c "$tp_cmd")
# The generated tree has no bootstrap: --no-check writes the image anyway (the runnability check
# still runs, on the entry list: no layer is read back).
read -r lp_wall lp_rss lp_cpu < <(measure "$work/lp1" "$lp" container "$work/src" -o "$work/img1" -q --no-check)
find "$work/src" -exec touch -h -d @1700000000 {} +
read -r lp2_wall lp2_rss lp2_cpu < <(measure "$work/lp2" "$lp" container "$work/src" -o "$work/img2" -q -j 1 --no-check)
if diff -r "$work/img1" "$work/img2" >/dev/null; then same=yes; else same=NO; fi
rm -rf "$work/img2"

read -r tp2_wall tp2_rss tp2_cpu < <(measure "$work/tp" bash -c "$tp_cmd")
if [ "$(echo "$tp2_wall < $tp_wall" | bc -l)" = 1 ]; then tp_wall=$tp2_wall; tp_rss=$tp2_rss; tp_cpu=$tp2_cpu; fi

umoci init --layout "$work/u" >/dev/null
umoci new --image "$work/u:t" >/dev/null
read -r um_wall um_rss um_cpu < <(measure "$work/um" umoci insert --rootless --image "$work/u:t" "$work/src" /var/task)

img_bytes=$(du -sb "$work/img1/blobs" | cut -f1)
tp_bytes=$(stat -c %s "$work/tp.tar.gz")
um_bytes=$(du -sb "$work/u/blobs" | cut -f1)
layers=$(python3 -c "import json,sys; d='$work/img1'; i=json.load(open(d+'/index.json')); m=json.load(open(d+'/blobs/sha256/'+i['manifests'][0]['digest'][7:])); print(len(m['layers']))")

mib() { echo "$1/1024" | bc -l; }
printf '\n%-34s %8s %8s %12s %14s\n' "tool" "wall s" "CPU s" "peak RSS MiB" "output bytes"
printf '%-34s %8.2f %8.2f %12.1f %14d\n' "lambdapack container (-j $nproc)" "$lp_wall" "$lp_cpu" "$(mib "$lp_rss")" "$img_bytes"
printf '%-34s %8.2f %8.2f %12.1f %14s\n' "lambdapack container (-j 1)" "$lp2_wall" "$lp2_cpu" "$(mib "$lp2_rss")" "same bytes: $same"
printf '%-34s %8.2f %8.2f %12.1f %14d\n' "tar --sort=name | pigz -6 -n" "$tp_wall" "$tp_cpu" "$(mib "$tp_rss")" "$tp_bytes"
printf '%-34s %8.2f %8.2f %12.1f %14d\n' "umoci insert --rootless" "$um_wall" "$um_cpu" "$(mib "$um_rss")" "$um_bytes"
printf '\nratios lambdapack/other (below 1 = lambdapack faster or smaller):\n'
printf '  wall vs tar|pigz %.2f, vs umoci %.2f; CPU vs tar|pigz %.2f, vs umoci %.2f; size vs tar|pigz %.3f\n' \
	"$(echo "$lp_wall/$tp_wall" | bc -l)" "$(echo "$lp_wall/$um_wall" | bc -l)" \
	"$(echo "$lp_cpu/$tp_cpu" | bc -l)" "$(echo "$lp_cpu/$um_cpu" | bc -l)" "$(echo "$img_bytes/$tp_bytes" | bc -l)"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "layers: $layers; byte-identical across runs (mtimes changed, -j $nproc vs -j 1): $same"
if [ "$same" != yes ]; then echo "FLOOR MISSED: output differs between runs"; exit 1; fi
if [ "$(echo "$lp_wall > $tp_wall" | bc -l)" = 1 ]; then echo "FLOOR MISSED: slower than tar | pigz"; fi
