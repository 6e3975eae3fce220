#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Integration check of the zip writer against independent readers.

Usage: check-zip.py ZIPWRITE

Builds trees with text, binaries, random (already compressed) data, empty
files and directories, symlinks (to files and to directories), duplicates
and non-ASCII names; writes zips with the zipwrite driver and checks:
  - unzip -t, 7z t, python3 -m zipfile -t and bsdtar -tvf accept them;
  - extraction (unzip and bsdtar) gives back every file, mode and symlink;
  - zipinfo says "unx" with the normalized modes, Python's ZipInfo agrees,
    there are no extra fields and the timestamp is the fixed epoch;
  - bytes are identical across thread counts, and across rebuilds of the
    tree with other mtimes and another umask;
  - forced zip64 and the streamed large-file path are read correctly;
  - a write failure leaves no output file behind.
Set LP_ZIP_SLOW=1 to also zip a sparse file over 4 GiB and test it.
"""
import hashlib
import os
import random
import resource
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile

ZIPWRITE = os.path.abspath(sys.argv[1])
failures = 0


def check(cond, what):
    global failures
    if cond:
        print(f"ok - {what}")
    else:
        failures += 1
        print(f"not ok - {what}")


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def have(tool):
    return shutil.which(tool) is not None


def make_tree(root, seed=1, umask=0o022, mtime=None):
    """A small Lambda-like tree; the same content for the same seed."""
    old = os.umask(umask)
    rnd = random.Random(seed)
    try:
        os.makedirs(f"{root}/pkg/sub/deeper", exist_ok=True)
        os.makedirs(f"{root}/empty_dir", exist_ok=True)
        os.makedirs(f"{root}/bin", exist_ok=True)
        with open(f"{root}/handler.py", "w") as f:
            f.write("import pkg.mod\n\ndef handler(event, context):\n"
                    "    return {'statusCode': 200, 'body': pkg.mod.answer()}\n")
        with open(f"{root}/pkg/__init__.py", "w") as f:
            f.write("")
        with open(f"{root}/pkg/mod.py", "w") as f:
            f.write("def answer():\n    return 'forty-two'\n")
        words = ["self", "return", "import", "def", "value", "context", "lambda", "event",
                 "for", "in", "range", "if", "else", "None", "True", "print"]
        for i in range(40):
            lines = []
            for _ in range(rnd.randrange(20, 400)):
                lines.append("    " * rnd.randrange(0, 3) +
                             " ".join(rnd.choice(words) for _ in range(rnd.randrange(2, 10))))
            with open(f"{root}/pkg/sub/m{i:02d}.py", "w") as f:
                f.write("\n".join(lines) + "\n")
        with open(f"{root}/pkg/sub/deeper/data.json", "w") as f:
            f.write("[" + ",".join('{"k": %d, "v": "%s"}' % (i, "x" * (i % 17)) for i in range(20000)) + "]")
        # Already compressed: random bytes do not shrink and must be stored.
        with open(f"{root}/pkg/image.png", "wb") as f:
            f.write(rnd.randbytes(300_000))
        with open(f"{root}/pkg/big-random.gz", "wb") as f:
            f.write(rnd.randbytes(2_500_000))
        # A larger compressible file (streamed when the threshold is low).
        with open(f"{root}/pkg/big.txt", "w") as f:
            for i in range(120_000):
                f.write(f"line {i} {words[i % len(words)]} {i * 7919 % 1000}\n")
        shutil.copyfile("/bin/ls", f"{root}/bin/ls")
        os.chmod(f"{root}/bin/ls", 0o755 & ~umask | 0o100)
        with open(f"{root}/bin/run.sh", "w") as f:
            f.write("#!/bin/sh\necho hi\n")
        os.chmod(f"{root}/bin/run.sh", 0o700)
        open(f"{root}/empty.txt", "w").close()
        with open(f"{root}/pkg/caf\u00e9-\u65e5\u672c.txt", "w", encoding="utf-8") as f:
            f.write("non-ascii name\n")
        # Duplicates of an earlier file (zipwrite -d turns them into links).
        shutil.copyfile(f"{root}/pkg/sub/m00.py", f"{root}/pkg/sub/deeper/copy_of_m00.py")
        shutil.copyfile("/bin/ls", f"{root}/pkg/ls-copy")
        os.chmod(f"{root}/pkg/ls-copy", 0o644 & ~umask)
        # Symlinks: to a file, to a directory, dangling-looking relative text.
        os.symlink("mod.py", f"{root}/pkg/mod_link.py")
        os.symlink("pkg/sub", f"{root}/sub_link")
        os.symlink("../handler.py", f"{root}/bin/handler_link")
        if mtime is not None:
            for dp, dns, fns in os.walk(root):
                for n in dns + fns:
                    os.utime(os.path.join(dp, n), (mtime, mtime), follow_symlinks=False)
    finally:
        os.umask(old)


def zipwrite(src, out, *args, **kw):
    r = run([ZIPWRITE, *args, src, out], **kw)
    if r.returncode != 0:
        print(r.stderr, end="")
    return r


def read(path):
    with open(path, "rb") as f:
        return f.read()


def want_mode(path):
    st = os.lstat(path)
    return 0o755 if st.st_mode & 0o111 else 0o644


def readers(z, tag):
    if have("unzip"):
        check(run(["unzip", "-t", z]).returncode == 0, f"{tag}: unzip -t")
    if have("7z"):
        r = run(["7z", "t", z])
        check(r.returncode == 0 and "Everything is Ok" in r.stdout, f"{tag}: 7z t")
    r = run([sys.executable, "-m", "zipfile", "-t", z])
    check(r.returncode == 0, f"{tag}: python3 -m zipfile -t")
    if have("bsdtar"):
        check(run(["bsdtar", "-tvf", z]).returncode == 0, f"{tag}: bsdtar -tvf")


def compare_extracted(src, dst, dedup, tag):
    """Every source entry is in dst with the same bytes, mode and link text."""
    bad = []
    n = 0
    for dp, dns, fns in os.walk(src):
        for name in dns + fns:
            s = os.path.join(dp, name)
            rel = os.path.relpath(s, src)
            d = os.path.join(dst, rel)
            n += 1
            if not os.path.lexists(d):
                bad.append(f"missing {rel}")
                continue
            sst, dstt = os.lstat(s), os.lstat(d)
            if stat.S_ISLNK(sst.st_mode):
                if not stat.S_ISLNK(dstt.st_mode) or os.readlink(s) != os.readlink(d):
                    bad.append(f"symlink {rel}")
            elif stat.S_ISDIR(sst.st_mode):
                if not stat.S_ISDIR(dstt.st_mode) or stat.S_IMODE(dstt.st_mode) != 0o755:
                    bad.append(f"dir {rel} {oct(dstt.st_mode)}")
            elif stat.S_ISLNK(dstt.st_mode):
                # A duplicate: a relative link that resolves to the same bytes.
                if not dedup or read(os.path.realpath(d)) != read(s) or os.readlink(d).startswith("/"):
                    bad.append(f"duplicate {rel}")
            else:
                if read(s) != read(d):
                    bad.append(f"content {rel}")
                if stat.S_IMODE(dstt.st_mode) != want_mode(s):
                    bad.append(f"mode {rel} {oct(dstt.st_mode)}")
    check(not bad, f"{tag}: {n} entries extracted intact" + (f" ({bad[:5]})" if bad else ""))


def check_headers(z, src, epoch_dt, tag):
    with zipfile.ZipFile(z) as zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        check(names == sorted(names, key=lambda s: s.rstrip("/").encode()), f"{tag}: entries sorted by path")
        bad = []
        for i in infos:
            mode = i.external_attr >> 16
            if i.create_system != 3:
                bad.append(f"{i.filename}: create_system {i.create_system}")
            if i.extra:
                bad.append(f"{i.filename}: extra field")
            if i.date_time != epoch_dt:
                bad.append(f"{i.filename}: date {i.date_time}")
            non_ascii = any(ord(c) > 127 for c in i.filename)
            if bool(i.flag_bits & 0x800) != non_ascii or i.flag_bits & ~0x800:
                bad.append(f"{i.filename}: flags {i.flag_bits:#x}")
            if i.filename.endswith("/"):
                if mode != 0o40755:
                    bad.append(f"{i.filename}: dir mode {oct(mode)}")
            elif stat.S_ISLNK(mode):
                if stat.S_IMODE(mode) != 0o777 or i.compress_type != zipfile.ZIP_STORED:
                    bad.append(f"{i.filename}: link {oct(mode)}")
            else:
                p = os.path.join(src, i.filename)
                if mode != (stat.S_IFREG | want_mode(p)):
                    bad.append(f"{i.filename}: mode {oct(mode)}")
                if i.file_size == 0 and i.compress_type != zipfile.ZIP_STORED:
                    bad.append(f"{i.filename}: empty not stored")
                if i.compress_type == zipfile.ZIP_DEFLATED and i.compress_size >= i.file_size:
                    bad.append(f"{i.filename}: deflate did not shrink")
                if i.compress_type == zipfile.ZIP_STORED and i.file_size > 100 and i.filename.endswith(".py"):
                    bad.append(f"{i.filename}: text stored")
            if i.filename.endswith((".png", ".gz")) and i.compress_type != zipfile.ZIP_STORED:
                bad.append(f"{i.filename}: random data not stored")
        check(not bad, f"{tag}: header fields" + (f" ({bad[:5]})" if bad else ""))
    if have("zipinfo"):
        out = run(["zipinfo", z]).stdout.splitlines()
        rows = [ln for ln in out if ln[:1] in "-dl" and " unx " in ln]
        total = len(infos)
        check(len(rows) == total, f"{tag}: zipinfo shows unx for all {total} entries")
        okmodes = all(r.split()[0] in ("-rw-r--r--", "-rwxr-xr-x", "drwxr-xr-x", "lrwxrwxrwx") for r in rows)
        check(okmodes, f"{tag}: zipinfo modes are 0644/0755/dir/link")


def extract_and_compare(z, src, dedup, tag, work):
    for tool in ("unzip", "bsdtar"):
        if not have(tool):
            continue
        d = tempfile.mkdtemp(dir=work)
        old = os.umask(0o022)
        try:
            cmd = ["unzip", "-q", z, "-d", d] if tool == "unzip" else ["bsdtar", "-xpf", z, "-C", d]
            r = run(cmd)
        finally:
            os.umask(old)
        check(r.returncode == 0, f"{tag}: {tool} extracts")
        compare_extracted(src, d, dedup, f"{tag} ({tool})")
        if tool == "unzip":
            # A Lambda-like invocation from the extracted task root.
            r = run([sys.executable, "-c",
                     "import sys; sys.path.insert(0, sys.argv[1]); import handler; "
                     "print(handler.handler({}, None)['body'])", d],
                    env=dict(os.environ, LAMBDA_TASK_ROOT=d))
            check(r.stdout.strip() == "forty-two", f"{tag}: handler runs from the extracted root")
        shutil.rmtree(d)


def main():
    work = tempfile.mkdtemp(prefix="lp-check-zip.")
    try:
        src = f"{work}/src"
        make_tree(src, mtime=1_600_000_000)

        # Identity across thread counts (and through both compression paths).
        blobs = {}
        for t in (1, 2, 4):
            for w in ("", "200000"):
                z = f"{work}/t{t}w{w or 'def'}.zip"
                args = ["-t", str(t), "-d"] + (["-w", w] if w else [])
                r = zipwrite(src, z, *args)
                check(r.returncode == 0, f"zipwrite -t {t} {'-w ' + w if w else ''}")
                blobs.setdefault(w, set()).add(read(z))
        for w, s in blobs.items():
            check(len(s) == 1, f"identical bytes for 1/2/4 threads (whole_max {w or 'default'})")

        main_zip = f"{work}/t2wdef.zip"
        streamed_zip = f"{work}/t2w200000.zip"
        for z, tag in ((main_zip, "default"), (streamed_zip, "streamed")):
            readers(z, tag)
            check_headers(z, src, (1980, 1, 1, 0, 0, 0), tag)
            extract_and_compare(z, src, True, tag, work)

        # Without dedupe every regular file is a regular entry.
        z = f"{work}/nodedup.zip"
        check(zipwrite(src, z, "-t", "2").returncode == 0, "zipwrite without -d")
        readers(z, "nodedup")
        extract_and_compare(z, src, False, "nodedup", work)

        # Same content, other mtimes and umask: same bytes.
        src2 = f"{work}/src2"
        make_tree(src2, umask=0o077, mtime=1_234_567_890)
        z2 = f"{work}/other.zip"
        check(zipwrite(src2, z2, "-t", "2", "-d").returncode == 0, "zipwrite of the rebuilt tree")
        check(read(z2) == read(main_zip), "identical bytes across mtimes and umask")

        # The epoch sets every timestamp (UTC, 2 s resolution).
        z = f"{work}/epoch.zip"
        check(zipwrite(src, z, "-e", "1700000001", "-d").returncode == 0, "zipwrite -e")
        check_headers(z, src, (2023, 11, 14, 22, 13, 20), "epoch")
        check(hashlib.sha256(read(z)).digest() != hashlib.sha256(read(main_zip)).digest(),
              "the epoch is part of the identity")

        # Forced zip64: sizes/offsets above 100000 and more than 10 entries.
        z = f"{work}/zip64.zip"
        r = zipwrite(src, z, "-d", "-w", "200000", "-Z", "100000", "-N", "10")
        check(r.returncode == 0 and "zip64=1" in r.stdout, "zipwrite with forced zip64")
        readers(z, "zip64")
        extract_and_compare(z, src, True, "zip64", work)
        with zipfile.ZipFile(z) as zf:
            big = [i for i in zf.infolist() if i.file_size >= 100000]
            check(big and all(i.create_version == 45 for i in big), "zip64 entries made by 4.5")
            small = [i for i in zf.infolist() if i.file_size < 100000 and i.header_offset < 100000]
            check(small and all(i.create_version == 20 for i in small), "other entries made by 2.0")

        # Without forcing, this tree needs no zip64 at all.
        with zipfile.ZipFile(main_zip) as zf:
            check(all(i.create_version == 20 and i.extract_version == 20 for i in zf.infolist()),
                  "no zip64 when not needed")
        tail = read(main_zip)[-98:]
        check(b"PK\x06\x06" not in tail and b"PK\x06\x07" not in tail, "no zip64 end records when not needed")

        # Write failure (RLIMIT_FSIZE): error, and no output file at all.
        z = f"{work}/limited.zip"

        def limit():
            resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, resource.RLIM_INFINITY))
        r = zipwrite(src, z, preexec_fn=limit)
        check(r.returncode == 1 and "cannot write" in r.stderr, "write failure is reported")
        leftovers = [n for n in os.listdir(work) if "limited" in n]
        check(not leftovers, "no partial output after a write failure")

        if os.environ.get("LP_ZIP_SLOW") == "1":
            big = f"{work}/sparse"
            os.makedirs(big)
            with open(f"{big}/huge.bin", "wb") as f:
                f.truncate((4 << 30) + 4097)
            with open(f"{big}/small.txt", "w") as f:
                f.write("after the big one\n")
            z = f"{work}/huge.zip"
            r = zipwrite(big, z, "-l", "1")
            check(r.returncode == 0 and "zip64=1" in r.stdout, "zipwrite of a >4 GiB file")
            readers(z, "huge")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"# {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
