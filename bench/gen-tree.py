#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Generate a realistic ~250 MB Lambda build tree for benchmarks.

Usage: gen-tree.py OUTDIR [TOTAL_MB]

Three kinds of content, in roughly the proportions of a Python/Node
function with native dependencies:
  - source: real .py/.js files copied from /usr (thousands of small,
    redundant text files), repeated under other package names if the
    system has too few;
  - native: real ELF shared libraries from /usr/lib/x86_64-linux-gnu, the
    biggest ones under 32 MiB until ~63% of the budget (a few exceed the
    writer's 16 MiB whole-file threshold, so both paths are exercised);
  - compressed: .png/.gz files of random bytes (~8%), which must be stored.
Selection is deterministic for a given system, so runs are comparable.
"""
import os
import random
import shutil
import sys

LIBDIR = "/usr/lib/x86_64-linux-gnu"
SRC_ROOTS = ["/usr/lib/python3", "/usr/lib/python3.11", "/usr/lib/node_modules", "/usr/share"]


def is_elf(p):
    try:
        with open(p, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def natives(budget):
    cands = []
    for n in sorted(os.listdir(LIBDIR)):
        p = os.path.join(LIBDIR, n)
        if ".so" not in n or os.path.islink(p) or not os.path.isfile(p):
            continue
        sz = os.path.getsize(p)
        if 1 << 20 <= sz <= 32 << 20 and is_elf(p):
            cands.append((sz, n, p))
    cands.sort(key=lambda c: (-c[0], c[1]))
    out, total = [], 0
    for sz, n, p in cands:
        if total + sz > budget:
            continue
        out.append((n, p))
        total += sz
        if total > budget * 0.97:
            break
    return out, total


def sources():
    seen = []
    for root in SRC_ROOTS:
        for dp, dns, fns in os.walk(root):
            dns.sort()
            for n in sorted(fns):
                if not n.endswith((".py", ".js")):
                    continue
                p = os.path.join(dp, n)
                if os.path.islink(p) or not os.path.isfile(p):
                    continue
                sz = os.path.getsize(p)
                if 0 < sz <= 256 << 10:
                    seen.append((p, sz))
    return seen


def main():
    out = sys.argv[1]
    total = int(float(sys.argv[2]) * 1e6) if len(sys.argv) > 2 else 250_000_000
    rnd = random.Random(20240601)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)

    nat, nat_bytes = natives(int(total * 0.63))
    os.makedirs(f"{out}/lib")
    for n, p in nat:
        shutil.copyfile(p, f"{out}/lib/{n}")
        os.chmod(f"{out}/lib/{n}", 0o755)
    # No soname symlinks: zip -r and Python's zipfile would follow them and
    # store copies, and the comparison would no longer be over the same bytes.

    comp_budget = int(total * 0.08)
    os.makedirs(f"{out}/assets")
    os.makedirs(f"{out}/data")
    comp_bytes, i = 0, 0
    while comp_bytes < comp_budget:
        sz = rnd.choice([2_000, 15_000, 60_000, 250_000, 1_500_000])
        sz = min(sz, comp_budget - comp_bytes) or 1
        if i % 3:
            with open(f"{out}/assets/img_{i:04d}.png", "wb") as f:
                f.write(b"\x89PNG\r\n\x1a\n" + rnd.randbytes(sz))
        else:
            with open(f"{out}/data/blob_{i:04d}.gz", "wb") as f:
                f.write(b"\x1f\x8b\x08\x00" + rnd.randbytes(sz))
        comp_bytes += sz + 4
        i += 1
    n_comp = i

    src_budget = total - nat_bytes - comp_bytes
    files = sources()
    src_bytes, n_src, rep = 0, 0, 0
    while src_bytes < src_budget and files:
        prefix = "python" if rep == 0 else f"python/vendored{rep}"
        for p, sz in files:
            if src_bytes >= src_budget:
                break
            rel = p.lstrip("/").replace("usr/lib/", "").replace("usr/share/", "share/")
            dst = os.path.join(out, prefix, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copyfile(p, dst)
            src_bytes += sz
            n_src += 1
        rep += 1
    # A handler and an executable bootstrap, as a real function has.
    with open(f"{out}/handler.py", "w") as f:
        f.write("import json\n\ndef handler(event, context):\n    return {'statusCode': 200}\n")
    with open(f"{out}/bootstrap", "w") as f:
        f.write("#!/bin/sh\nexec python3 -m awslambdaric handler.handler\n")
    os.chmod(f"{out}/bootstrap", 0o755)

    print(f"native: {len(nat)} files, {nat_bytes / 1e6:.1f} MB; "
          f"compressed: {n_comp} files, {comp_bytes / 1e6:.1f} MB; "
          f"source: {n_src} files, {src_bytes / 1e6:.1f} MB; "
          f"total {(nat_bytes + comp_bytes + src_bytes) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
