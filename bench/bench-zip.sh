#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Zip writer benchmark: lambdapack's writer vs `zip -qr -X` vs Python's
# zipfile with ZIP_DEFLATED (what SAM CLI does), on the same tree, in the
# same run. Reports wall time, CPU time, peak RSS (/usr/bin/time -v) and
# output size, the best of BENCH_REPS interleaved runs (the machine may be
# shared, and the minimum is the least disturbed figure), then the ratios
# against the floors: >= 3x faster than zip, size <= zip + 0.5%, RSS < 256 MiB.
#
#   bench/bench-zip.sh [TREE]
#
# Environment:
#   LP_ZIP_CMD   command for lambdapack; {src} and {out} are substituted
#                (default: BUILD_DIR/tests/zip/zipwrite {src} {out}), e.g.
#                LP_ZIP_CMD='build/cli/lambdapack pack {src} -o {out}'
#   BUILD_DIR    meson build dir (default: ./build)
#   BENCH_OUT    where the tree and the zips go (default: bench/out)
#   BENCH_REPS   runs per tool (default 3)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
out=${BENCH_OUT:-$root/bench/out}
tree=${1:-$out/tree}
reps=${BENCH_REPS:-3}
build=${BUILD_DIR:-$root/build}
lp_cmd=${LP_ZIP_CMD:-"$build/tests/zip/zipwrite {src} {out}"}
TIME=/usr/bin/time

[ -x "$TIME" ] || { echo "bench-zip: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
command -v zip >/dev/null || { echo "bench-zip: needs zip" >&2; exit 2; }
mkdir -p "$out"
tree=$(cd "$(dirname "$tree")" && pwd)/$(basename "$tree")
[ -d "$tree" ] || python3 "$here/gen-tree.py" "$tree"

cat > "$out/sam_zip.py" <<'PY'
# What SAM CLI's make_zip does: walk (following links), read, writestr deflated.
import os, sys, zipfile
src, dst = sys.argv[1], sys.argv[2]
with open(dst, "wb") as f, zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as zf:
    for root, dirs, files in os.walk(src, followlinks=True):
        for name in files:
            full = os.path.join(root, name)
            rel = os.path.relpath(full, src)
            with open(full, "rb") as data:
                zf.writestr(zipfile.ZipInfo(rel), data.read(), compress_type=zipfile.ZIP_DEFLATED)
PY

# Page cache warm for everyone; no one pays for reading the disk.
find "$tree" -type f -exec cat {} + > /dev/null
unz=$(du -sb --apparent-size "$tree" | cut -f1)
nfiles=$(find "$tree" -type f | wc -l)

# run TAG OUTFILE CMD...: appends "tag wall user sys rss_kb size" to results
run() {
	tag=$1 zipf=$2
	shift 2
	rm -f "$zipf"
	sync
	"$TIME" -v -o "$out/time.$tag" "$@" > /dev/null
	awk -v tag="$tag" -v size="$(stat -c %s "$zipf")" '
		/Elapsed \(wall clock\)/ { n = split($NF, a, ":"); w = 0; for (i = 1; i <= n; i++) w = w * 60 + a[i] }
		/User time/ { u = $NF } /System time/ { s = $NF }
		/Maximum resident set size/ { m = $NF }
		END { printf "%s %.2f %.2f %.2f %d %d\n", tag, w, u, s, m, size }' "$out/time.$tag" >> "$out/results"
}

lp_run=$(printf '%s' "$lp_cmd" | sed "s|{src}|$tree|g; s|{out}|$out/lp.zip|g")
case $lp_cmd in *"{src}"*) ;; *) lp_run="$lp_cmd $tree $out/lp.zip" ;; esac

: > "$out/results"
echo "tree: $tree ($nfiles files, $unz bytes); $(nproc) CPUs; load: $(cut -d' ' -f1-3 /proc/loadavg)"
i=0
while [ "$i" -lt "$reps" ]; do
	# shellcheck disable=SC2086
	run lambdapack "$out/lp.zip" $lp_run
	run zip "$out/zip.zip" sh -c "cd '$tree' && exec zip -qr -X '$out/zip.zip' ."
	run zipfile "$out/py.zip" python3 "$out/sam_zip.py" "$tree" "$out/py.zip"
	i=$((i + 1))
done
unzip -tqq "$out/lp.zip" > /dev/null && echo "lambdapack zip passes unzip -t"

awk -v unz="$unz" '
	{ t = $1; if (!(t in best) || $2 < best[t]) { best[t] = $2; u[t] = $3; s[t] = $4; sz[t] = $6 }
	  if ($5 > rss[t]) rss[t] = $5; runs[t] = runs[t] " " $2 }
	END {
		printf "\n| tool | wall s (best) | user s | sys s | peak RSS MiB | zip bytes | ratio | runs |\n"
		printf "|---|---|---|---|---|---|---|---|\n"
		n = split("lambdapack zip zipfile", order, " ")
		for (i = 1; i <= n; i++) {
			t = order[i]
			printf "| %s | %.2f | %.2f | %.2f | %.1f | %d | %.2f%% | %s |\n", t, best[t], u[t], s[t],
				rss[t] / 1024, sz[t], 100 * sz[t] / unz, runs[t]
		}
		sp = best["zip"] / best["lambdapack"]
		dz = 100 * (sz["lambdapack"] / sz["zip"] - 1)
		printf "\nspeed vs zip:      %.2fx  (floor >= 3x)      %s\n", sp, (sp >= 3 ? "PASS" : "FAIL")
		printf "speed vs zipfile:  %.2fx\n", best["zipfile"] / best["lambdapack"]
		printf "size vs zip:       %+.2f%% (floor <= +0.5%%)   %s\n", dz, (dz <= 0.5 ? "PASS" : "FAIL")
		printf "size vs zipfile:   %+.2f%%\n", 100 * (sz["lambdapack"] / sz["zipfile"] - 1)
		printf "peak RSS:          %.1f MiB (floor < 256)  %s\n", rss["lambdapack"] / 1024,
			(rss["lambdapack"] < 256 * 1024 ? "PASS" : "FAIL")
	}' "$out/results"
