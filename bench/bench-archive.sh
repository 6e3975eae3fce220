#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Bench `lambdapack pack` from a 100,000-member zip against the same tree on
# disk (issue 9: archives are staged one file per member).
# usage: bench/bench-archive.sh [LAMBDAPACK] [WORKDIR] [OTHER_LAMBDAPACK]
# Warm page cache: each command runs once untimed, then best of 3.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
lp=${1:-$src/build/cli/lambdapack}
work=${2:-$src/bench/out/archive}
other=${3:-}
mkdir -p "$work"

if [ ! -f "$work/.done" ]; then
	rm -rf "$work/tree" "$work/tree.zip"
	python3 - "$work/tree" "$work/tree.zip" <<'PY'
import os, random, sys, zipfile
root, zpath = sys.argv[1], sys.argv[2]
rnd = random.Random(9)
words = [b"import", b"def", b"return", b"self", b"value", b"data", b"None", b"class"]
with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as z:
    for i in range(100000):
        rel = "pkg%03d/mod%02d/f%05d.py" % (i % 500, (i // 500) % 20, i)
        data = b" ".join(rnd.choice(words) for _ in range(rnd.randint(20, 400))) + b"\n"
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        z.writestr(rel, data)
PY
	touch "$work/.done"
fi

best() {
	local b="" t0 t1 t
	"$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; return 1; }
	for _ in 1 2 3; do
		t0=$(date +%s.%N)
		"$@" >/dev/null 2>&1
		t1=$(date +%s.%N)
		t=$(echo "$t1 - $t0" | bc)
		if [ -z "$b" ] || [ "$(echo "$t < $b" | bc)" = 1 ]; then b=$t; fi
	done
	printf '%.2f' "$b"
}

for bin in "$lp" $other; do
	echo "$bin"
	echo "  pack from the tree:  $(best "$bin" pack -q "$work/tree" -o "$work/out-dir.zip") s"
	echo "  pack from the zip:   $(best "$bin" pack -q "$work/tree.zip" -o "$work/out-zip.zip") s"
	echo "  analyze the zip:     $(best "$bin" analyze -q "$work/tree.zip") s"
done
