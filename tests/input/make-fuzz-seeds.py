#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Seeds for fuzz/fuzz_input.c: archives (mode byte even) and tree descriptions (odd),
hostile ones included (colliding names, '..', NUL, links, devices, hard links).

usage: make-fuzz-seeds.py DIR
"""
import io
import os
import sys
import tarfile
import warnings
import zipfile


def zip_bytes(members, symlinks=()):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            z.writestr(name, data)
        for name, target in symlinks:
            zi = zipfile.ZipInfo(name)
            zi.create_system = 3
            zi.external_attr = (0o120777 << 16)
            z.writestr(zi, target)
    return b.getvalue()


def tar_bytes(members, mode="w"):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode=mode) as t:
        for name, kind, data in members:
            ti = tarfile.TarInfo(name)
            if kind == "file":
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
                continue
            ti.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
                       "chr": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE}[kind]
            if kind in ("sym", "hard"):
                ti.linkname = data
            t.addfile(ti)
    return b.getvalue()


def name(s):
    s = s.encode() if isinstance(s, str) else s
    return bytes([len(s)]) + s


def tree(ops):
    """ops: ('f', name, text) / ('d', name) / ('l', name, target) / ('u',)."""
    out = bytearray()
    for op in ops:
        if op[0] == "f":
            out += b"\x00" + name(op[1]) + name(op[2])
        elif op[0] == "d":
            out += b"\x01" + name(op[1])
        elif op[0] == "l":
            out += b"\x02" + name(op[1]) + name(op[2])
        else:
            out += b"\x03"
    return bytes(out)


def main():
    warnings.simplefilter("ignore")  # duplicate names are the point
    d = sys.argv[1]
    os.makedirs(d, exist_ok=True)
    seeds = {
        "zip-basic": zip_bytes([("index.js", b"exports.h=1\n"), ("lib/a.py", b"x=1\n"), ("lib/", b"")]),
        "zip-collide": zip_bytes([("a.txt", b"1"), ("a.txt", b"2"), ("d/x", b"3"), ("d/x", b"4")]),
        "zip-dotdot": zip_bytes([("../evil", b"x"), ("/abs", b"y"), ("a/./b", b"z")]),
        "zip-nul": zip_bytes([("evil.sh\0.txt", b"#!/bin/sh\n"), ("data.txt/", b"bytes")]),
        "zip-links": zip_bytes([("f", b"x")], [("l1", "f"), ("l2", "../../etc/passwd"), ("l3", "/etc")]),
        "zip-utf8": zip_bytes([("caf\u00e9.txt", b"x"), ("\x1b]0;t\x07", b"y")]),
        "tar-basic": tar_bytes([("a", "dir", None), ("a/b.txt", "file", b"hello"), ("a/l", "sym", "b.txt")]),
        "tar-hard": tar_bytes([("x", "file", b"data"), ("y", "hard", "x"), ("z", "hard", "../../etc/shadow")]),
        "tar-dev": tar_bytes([("dev/null", "chr", None), ("p", "fifo", None)]),
        "tgz": tar_bytes([("m/n.txt", "file", b"n" * 100)], "w:gz"),
    }
    for k, v in seeds.items():
        with open(os.path.join(d, k), "wb") as f:
            f.write(b"\x00" + v)
    trees = {
        "tree-basic": (1, tree([("f", "index.js", "x"), ("d", "lib"), ("f", "a.py", "1"), ("u",),
                                ("l", "link", "lib/a.py")])),
        "tree-escape": (1, tree([("l", "etc", "/etc"), ("l", "up", "../outside"), ("l", "self", "self"),
                                 ("d", "a"), ("l", "loop", ".."), ("u",)])),
        "tree-refuse": (3, tree([("l", "cfg", "/etc/passwd"), ("f", "x.pyc", "c")])),
        "tree-deep": (1, tree([("d", "d%d" % i) for i in range(12)] + [("f", "leaf", "z")])),
        "tree-names": (5, tree([("f", "\x1b[2J", "a"), ("f", b"\xff\xfe", "b"), ("f", ".lambdapackignore", "*.txt"),
                                ("f", "k.txt", "c")])),
    }
    for k, (mode, v) in trees.items():
        with open(os.path.join(d, k), "wb") as f:
            f.write(bytes([mode]) + v)


if __name__ == "__main__":
    main()
