#!/bin/bash
# SPDX-License-Identifier: MIT
# Benchmark `lambdapack container --push` against `skopeo copy oci:DIR docker://...`
# on Debian's docker-registry on 127.0.0.1 (plain HTTP, one fresh registry per tool
# so neither finds the other's blobs), in the same run:
#   1. lambdapack container SRC -o A              (build only)
#   2. lambdapack container SRC -o B --push R1    (build + push)
#   3. skopeo copy oci:A docker://R2              (push only, the image of step 1)
#   push time of lambdapack = 2 - 1; end to end: 2 vs 1 + 3.
#   3b. lambdapack container EMPTY --base oci:A -o D         (the built layout as a base, no push)
#   3c. lambdapack container EMPTY --base oci:A --push R3    (the same, pushed: 3c - 3b is a
#       second push-only figure for the same blobs plus one empty code layer)
#   4. a code-only change, re-pushed by lambdapack through a counting proxy in front
#      of R1, and the same changed image re-pushed by skopeo to R2 through nothing:
#      bytes sent vs the size of the code layer (+ the config, which must change).
# Not a timed test; figures go to bench/RESULTS-registry.md.
# usage: bench/bench-registry.sh [BUILD_DIR] [SIZE_MIB]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
size=${2:-1024}
lp=$(cd "$build" && pwd)/cli/lambdapack
work=$(mktemp -d "${TMPDIR:-/tmp}/lp-bench-registry.XXXXXX")
fixpid=
cleanup() {
	[ -n "$fixpid" ] && { exec 3>&-; wait "$fixpid" 2>/dev/null || true; }
	rm -rf "$work"
}
trap cleanup EXIT

for t in docker-registry skopeo /usr/bin/time python3; do
	command -v "$t" >/dev/null || { echo "MISSING TOOL: $t (scripts/install-deps.sh --test)"; exit 1; }
done

python3 "$here/gen-tree-image.py" "$work/src" "$size"
mkdir -p "$work/src/app"
echo 'def handler(e, c): return "v1"' >"$work/src/app/main.py"
bytes=$(du -sb "$work/src" | cut -f1)

# Two plain registries and a counting proxy in front of the first (tests/registry/regfix.py);
# they live until fd 3 (their stdin) is closed.
mkfifo "$work/fix.in"
python3 "$here/../tests/registry/regfix.py" serve 3 "$work/proxy.log" <"$work/fix.in" >"$work/fix.out" &
fixpid=$!
exec 3>"$work/fix.in"
for _ in $(seq 200); do [ -s "$work/fix.out" ] && break; sleep 0.1; done
read -r r1 r2 r3 px <"$work/fix.out"
[ -n "$px" ] || { echo "fixture did not start"; exit 1; }
echo "tree: $bytes bytes; cpus: $(nproc); $($lp --version); $(skopeo --version)"
echo "registries: lambdapack -> $r1 (proxy $px) and $r3, skopeo -> $r2"

measure() {
	local log=$1; shift
	/usr/bin/time -v "$@" >"$log.out" 2>"$log.time" || { cat "$log.out" "$log.time"; exit 1; }
	local wall rss cpu
	wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log.time" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
	rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log.time")
	cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$log.time")
	echo "$wall $rss $cpu" >"$log.res"
}

export XDG_CACHE_HOME="$work/xdg" HOME="$work/home" DOCKER_CONFIG="$work/home/docker"
mkdir -p "$HOME"
sync
tar -cf - -C "$work/src" . >/dev/null  # warm the page cache the same way for everyone
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

measure "$work/build" "$lp" container "$work/src" -o "$work/A" -q
read -r b_wall b_rss b_cpu <"$work/build.res"
measure "$work/push" "$lp" container "$work/src" -o "$work/B" -q \
	--push "docker://$r1/bench/lp:1" --tls-verify=false --cache-dir "$work/cache"
read -r p_wall p_rss p_cpu <"$work/push.res"
measure "$work/skopeo" skopeo copy -q --dest-tls-verify=false \
	"oci:$work/A:latest" "docker://$r2/bench/sk:1"
read -r s_wall s_rss s_cpu <"$work/skopeo.res"
mkdir "$work/empty"
measure "$work/rebase" "$lp" container "$work/empty" -o "$work/D0" -q --base "oci:$work/A:latest"
read -r e_wall e_rss e_cpu <"$work/rebase.res"
rm -rf "$work/D0"
measure "$work/pushonly" "$lp" container "$work/empty" -o "$work/D" -q --base "oci:$work/A:latest" \
	--push "docker://$r3/bench/lp:1" --tls-verify=false --cache-dir "$work/cache"
read -r o_wall o_rss o_cpu <"$work/pushonly.res"
img_bytes=$(du -sb "$work/A/blobs" | cut -f1)
if diff -r "$work/A/blobs" "$work/B/blobs" >/dev/null; then same=yes; else same=NO; fi

# Code-only change.
echo 'def handler(e, c): return "v2"' >"$work/src/app/main.py"
: >"$work/proxy.log"
"$lp" container "$work/src" -o "$work/C" -q --json "$work/C.json" \
	--push "docker://$px/bench/lp:2" --tls-verify=false --cache-dir "$work/cache" >"$work/repush.out"
lp_sent=$(awk '$2 ~ /\/blobs\/uploads\// && ($1=="PATCH" || $1=="PUT" || $1=="POST") {s += $3} END {print s+0}' "$work/proxy.log")
lp_up=$(awk '$2 ~ /\/blobs\/uploads\// && $1=="PUT"' "$work/proxy.log" | wc -l)
read -r code_bytes cfg_bytes < <(python3 - "$work/C" <<'EOF'
import json, sys
d = sys.argv[1]
i = json.load(open(d + "/index.json"))
m = json.load(open(d + "/blobs/sha256/" + i["manifests"][0]["digest"][7:]))
print(m["layers"][-1]["size"], m["config"]["size"])
EOF
)
# skopeo with the same two images: the first straight to R1 (repository bench/sk), the
# changed one through the proxy to the same repository, so both tools start from the same state.
skopeo copy -q --dest-tls-verify=false "oci:$work/A:latest" "docker://$r1/bench/sk:1" >/dev/null
: >"$work/proxy.log"
skopeo copy -q --dest-tls-verify=false "oci:$work/C:latest" "docker://$px/bench/sk:2" >/dev/null
sk_sent=$(awk '$2 ~ /\/blobs\/uploads\// && ($1=="PATCH" || $1=="PUT" || $1=="POST") {s += $3} END {print s+0}' "$work/proxy.log")
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

mib() { echo "$1/1024" | bc -l; }
lp_push=$(echo "$p_wall - $b_wall" | bc -l)
printf '\nimage: %d bytes of blobs (%d layers of a %d-byte tree); pushed blobs identical to the build-only run: %s\n' \
	"$img_bytes" "$(python3 -c "import json; d='$work/A'; i=json.load(open(d+'/index.json')); print(len(json.load(open(d+'/blobs/sha256/'+i['manifests'][0]['digest'][7:]))['layers']))")" \
	"$bytes" "$same"
printf '%-46s %8s %8s %12s\n' "step" "wall s" "CPU s" "peak RSS MiB"
printf '%-46s %8.2f %8.2f %12.1f\n' "lambdapack container (build only)" "$b_wall" "$b_cpu" "$(mib "$b_rss")"
printf '%-46s %8.2f %8.2f %12.1f\n' "lambdapack container --push (build + push)" "$p_wall" "$p_cpu" "$(mib "$p_rss")"
printf '%-46s %8.2f %8s %12s\n' "  of which push (difference)" "$lp_push" "" ""
o_push=$(echo "$o_wall - $e_wall" | bc -l)
printf '%-46s %8.2f %8.2f %12.1f\n' "lambdapack container EMPTY --base oci:A" "$e_wall" "$e_cpu" "$(mib "$e_rss")"
printf '%-46s %8.2f %8.2f %12.1f\n' "lambdapack container EMPTY --base oci:A --push" "$o_wall" "$o_cpu" "$(mib "$o_rss")"
printf '%-46s %8.2f %8s %12s\n' "  of which push (difference)" "$o_push" "" ""
printf '%-46s %8.2f %8.2f %12.1f\n' "skopeo copy oci:A docker:// (push only)" "$s_wall" "$s_cpu" "$(mib "$s_rss")"
printf '\nratios (below 1 = lambdapack faster):\n'
printf '  push (build+push minus build): lambdapack %.2f s / skopeo %.2f s = %.2f\n' "$lp_push" "$s_wall" "$(echo "$lp_push/$s_wall" | bc -l)"
printf '  push (layout as base, with push minus without): lambdapack %.2f s / skopeo %.2f s = %.2f\n' "$o_push" "$s_wall" "$(echo "$o_push/$s_wall" | bc -l)"
printf '  end to end: container --push %.2f s / (container + skopeo copy) %.2f s = %.2f\n' \
	"$p_wall" "$(echo "$b_wall+$s_wall" | bc -l)" "$(echo "$p_wall/($b_wall+$s_wall)" | bc -l)"
printf '\nre-push after a code-only change (bytes in upload request bodies, counted by the proxy):\n'
printf '  lambdapack: %d bytes in %d blob uploads; code layer %d + config %d = %d\n' \
	"$lp_sent" "$lp_up" "$code_bytes" "$cfg_bytes" "$((code_bytes + cfg_bytes))"
printf '  skopeo copy of the same changed image: %d bytes\n' "$sk_sent"
grep -o '[0-9.:]*/bench/lp@sha256:[0-9a-f]*' "$work/repush.out" "$work/push.out" 2>/dev/null | head -2 || true
[ "$same" = yes ] || echo "FLOOR MISSED: pushed build differs from the build-only run"
if [ "$lp_sent" -gt $((code_bytes + cfg_bytes)) ]; then echo "FLOOR MISSED: re-push sent more than the code layer and config"; fi
if [ "$(echo "$lp_push > $s_wall" | bc -l)" = 1 ]; then echo "FLOOR MISSED: push (build+push minus build) slower than skopeo copy"; fi
if [ "$(echo "$o_push > $s_wall" | bc -l)" = 1 ]; then echo "FLOOR MISSED: push (layout as base) slower than skopeo copy"; fi
