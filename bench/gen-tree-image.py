#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Generate a Lambda-like function tree of about SIZE bytes (default 2 GiB), deterministically.

Dependencies (node_modules/, python/lib/.../site-packages/) with many small and medium
files, a few large native-looking blobs, and a small function code tree. File
contents mix text (compresses well) and random-looking bytes (does not), so gzip
does real work. With --text every byte comes from the text pool instead (the worst
case for lambdapack's stored-segment shortcut: nothing to skip).
usage: gen-tree-image.py DIR [SIZE_MIB] [--text]
"""
import os
import random
import sys

text_only = "--text" in sys.argv
args = [a for a in sys.argv[1:] if a != "--text"]
root = args[0]
target = int(args[1]) * 1024 * 1024 if len(args) > 1 else 2048 * 1024 * 1024
rng = random.Random(42)
words = [("".join(rng.choice("abcdefghijklmnopqrstuvwxyz_") for _ in range(rng.randint(2, 12)))).encode()
         for _ in range(4000)]
text = b" ".join(rng.choice(words) + (b"\n" if rng.random() < 0.1 else b"") for _ in range(1_200_000))
noise = rng.randbytes(16 * 1024 * 1024)
pool = text[:16 * 1024 * 1024] + noise  # 32 MiB, about half compressible
if text_only:
    pool = text[:32 * 1024 * 1024]
    while len(pool) < 32 * 1024 * 1024:
        pool += text[:32 * 1024 * 1024 - len(pool)]


def blob(n):
    off = rng.randrange(0, len(pool) - n) if n < len(pool) else 0
    out = pool[off:off + n]
    while len(out) < n:
        out += pool[:n - len(out)]
    return out


def write(rel, n, mode=0o644):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(blob(n))
    os.chmod(p, mode)
    return n


total = 0
write("index.js", 4000)
write("app.py", 3000)
for i in range(50):
    total += write("src/mod%02d.js" % i, rng.randint(1000, 40000))
pkg = 0
while total < target:
    pkg += 1
    if pkg % 3 == 0:
        base = "python/lib/python3.12/site-packages/pkg%04d" % pkg
    else:
        base = "node_modules/pkg%04d" % pkg
    for j in range(rng.randint(5, 60)):
        total += write("%s/f%03d.%s" % (base, j, rng.choice(["js", "py", "json", "txt"])), rng.randint(200, 200_000))
    if pkg % 25 == 0:
        total += write("%s/native.so" % base, rng.randint(5, 60) * 1024 * 1024, 0o755)
print("generated %d bytes in %d packages under %s" % (total, pkg, root))
