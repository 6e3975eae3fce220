#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Seeds for fuzz/fuzz_zipnames.c: entry lists in its byte format (kind, name,
then content or link target), with the names that have broken zip writers.

usage: make-fuzz-seeds.py DIR
"""
import os
import sys

FILE, DIR, LINK, EXE = 0, 1, 2, 3


def s(x):
    x = x.encode() if isinstance(x, str) else x
    return bytes([len(x)]) + x


def entries(*es):
    out = bytearray()
    for kind, name, *rest in es:
        out += bytes([kind]) + s(name)
        if kind != DIR:
            out += s(rest[0])
    return bytes(out)


SEEDS = {
    "basic": entries((FILE, "index.js", "exports.h=1"), (DIR, "lib"), (FILE, "lib/a.py", "x=1"),
                     (LINK, "lib/b.py", "a.py"), (EXE, "bootstrap", "#!/bin/sh\n")),
    "utf8": entries((FILE, "caf\u00e9.txt", "x"), (FILE, "\u65e5\u672c.txt", "y")),
    "bad-utf8": entries((FILE, b"\xff\xfe.txt", "x"), (FILE, b"caf\xc3", "y"), (FILE, b"\xed\xa0\x80", "z")),
    "dotdot": entries((FILE, "../evil", "x"), (FILE, "a/../../b", "y"), (FILE, "./c", "z")),
    "abs": entries((FILE, "/etc/passwd", "x"), (DIR, "/"), (FILE, "", "e")),
    "slashes": entries((FILE, "data.txt/", "bytes"), (FILE, "a//b", "x"), (DIR, "d/")),
    "collide": entries((FILE, "a", "1"), (FILE, "a", "2"), (DIR, "a"), (FILE, "a/b", "3")),
    "through-link": entries((LINK, "l", "/etc"), (FILE, "l/passwd", "root"), (LINK, "m", "."),
                            (FILE, "m/x", "y")),
    "control": entries((FILE, "\x1b]0;title\x07", "x"), (FILE, "tab\there", "y"), (FILE, "back\\slash", "z")),
}


def main():
    d = sys.argv[1]
    os.makedirs(d, exist_ok=True)
    for k, v in SEEDS.items():
        with open(os.path.join(d, k), "wb") as f:
            f.write(v)


if __name__ == "__main__":
    main()
