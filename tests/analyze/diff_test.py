#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""analyze --diff (issue 12): content digests, renames, modes, the task root
of an image, zipped deltas, and the HTML view of a diff in headless Chromium.

usage: diff_test.py LAMBDAPACK ARTIFACT_DIR
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

BIN = ART = None
CHROME = shutil.which("chromium") or shutil.which("chromium-browser")
passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {name}: {detail}", file=sys.stderr)


def lp(*args):
    p = subprocess.run([BIN, *args], capture_output=True, timeout=300)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def diff(old, new, *extra):
    rc, out, err = lp("analyze", "--diff", old, new, "--json", "-", "-q", "--top", "0", *extra)
    try:
        return rc, json.loads(out), err
    except ValueError:
        return rc, {}, err + out[:500]


def write(root, rel, data, mode=0o644):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
    os.chmod(p, mode)


def make_fn(root):
    write(root, "index.js", b"exports.handler = async () => 'v1';\n" * 20)
    write(root, "lib/util.js", b"module.exports = (x) => x + 1;\n" * 40)
    write(root, "lib/tool.sh", b"#!/bin/sh\necho hi\n", 0o755)
    # A script without its x bit: pack and container store it 0755, which is no change.
    write(root, "lib/hook.sh", b"#!/bin/sh\necho hook\n", 0o644)
    write(root, "node_modules/left-pad/index.js", b"module.exports = function leftPad() {};\n" * 30)
    write(root, "node_modules/left-pad/package.json", b'{"name":"left-pad","version":"1.3.0"}\n')
    write(root, "node_modules/chalk/index.js", bytes(range(256)) * 40)
    write(root, "data/model.bin", bytes((i * 7) % 251 for i in range(60000)))
    # container places opt/ at /opt: still the function's, compared as opt/.
    write(root, "opt/extensions/watch", b"#!/bin/sh\nexec true\n", 0o755)


def files_by(d, status):
    return [f for f in d.get("files", []) if f["status"] == status]


def test_same_size_edit(tmp, a):
    b = os.path.join(tmp, "same-size")
    shutil.copytree(a, b, symlinks=True)
    p = os.path.join(b, "lib", "util.js")
    data = bytearray(open(p, "rb").read())
    data[5] ^= 0x20  # one byte, same size
    open(p, "wb").write(bytes(data))
    rc, d, err = diff(a, b)
    check("same-size edit: rc", rc == 0, err)
    ch = files_by(d, "changed")
    check("same-size edit: the file is changed", [f["name"] for f in ch] == ["lib/util.js"] and ch[0]["delta"] == 0, d.get("files"))
    check("same-size edit: nothing else", len(d.get("files", [])) == 1 and d["counts"]["changed"] == 1, d.get("counts"))
    check("same-size edit: its package too", any(p["name"] == "lib" and p["status"] == "changed" for p in d.get("packages", [])),
          d.get("packages"))
    check("same-size edit: unzipped delta 0", d.get("delta_bytes") == 0, d.get("delta_bytes"))
    rc, out, err = lp("analyze", "--diff", a, b)
    check("same-size edit: text", rc == 0 and "changed  lib/util.js" in out and "1 changed" in out, out)


def test_rename_and_mode(tmp, a):
    b = os.path.join(tmp, "renamed")
    shutil.copytree(a, b, symlinks=True)
    os.rename(os.path.join(b, "data", "model.bin"), os.path.join(b, "data", "model-v1.bin"))
    os.chmod(os.path.join(b, "index.js"), 0o755)
    rc, d, err = diff(a, b)
    check("rename: rc", rc == 0, err)
    rn = files_by(d, "renamed")
    check("rename: one rename with its old name", len(rn) == 1 and rn[0]["name"] == "data/model-v1.bin" and
          rn[0].get("old_name") == "data/model.bin" and rn[0]["delta"] == 0, d.get("files"))
    check("rename: not added and removed", not files_by(d, "added") and not files_by(d, "removed"), d.get("files"))
    md = files_by(d, "mode")
    check("mode change", len(md) == 1 and md[0]["name"] == "index.js" and md[0].get("old_mode") == "0644" and
          md[0].get("new_mode") == "0755", d.get("files"))
    check("rename/mode: counts", d.get("counts") == {"added": 0, "removed": 0, "changed": 0, "renamed": 1, "mode": 1},
          d.get("counts"))
    rc, out, err = lp("analyze", "--diff", a, b)
    check("rename: text", "(was data/model.bin)" in out and "(mode 0644 -> 0755)" in out, out)


def test_zip_dir_image(tmp, a):
    z = os.path.join(tmp, "fn.zip")
    rc, out, err = lp("pack", a, "-o", z)
    check("pack the function", rc == 0, err)
    img = os.path.join(tmp, "fn-image")
    rc, out, err = lp("container", a, "-o", img, "--no-check")
    check("build its image", rc == 0, err)
    for old, new, what in ((a, z, "dir vs zip"), (z, img, "zip vs image"), (img, z, "image vs zip"), (a, img, "dir vs image")):
        rc, d, err = diff(old, new)
        check(f"{what}: rc", rc == 0, err)
        check(f"{what}: no spurious change", d.get("files") == [] and d.get("packages") == [] and d.get("delta_bytes") == 0,
              (d.get("files") or [])[:3])
    rc, d, err = diff(z, img)
    check("zip vs image: compared the task root", d.get("compared_root", {}).get("new") == "var/task" and
          d["compared_root"]["old"] == "", d.get("compared_root"))
    check("zip vs image: no zipped delta between a zip and an image", d.get("zipped", {}).get("delta_bytes") is None, d.get("zipped"))
    # An edit inside the image's function shows under its task-root-free name.
    b = os.path.join(tmp, "fn-edit")
    shutil.copytree(a, b, symlinks=True)
    write(b, "lib/util.js", b"module.exports = (x) => x + 2;\n" * 40)
    img2 = os.path.join(tmp, "fn-image2")
    rc, out, err = lp("container", b, "-o", img2, "--no-check")
    rc, d, err = diff(z, img2)
    check("zip vs edited image: the edit, by its function path",
          [(f["name"], f["status"]) for f in d.get("files", [])] == [("lib/util.js", "changed")], d.get("files"))
    rc, d, err = diff(img, img2)
    check("image vs image: the edit, whole paths",
          [(f["name"], f["status"]) for f in d.get("files", [])] == [("var/task/lib/util.js", "changed")], d.get("files"))
    check("image vs image: compressed delta", d.get("zipped", {}).get("measure") == "image-compressed", d.get("zipped"))


def test_zipped_delta(tmp, a):
    b = os.path.join(tmp, "bigger")
    shutil.copytree(a, b, symlinks=True)
    write(b, "data/extra.bin", bytes((i * 13) % 241 for i in range(40000)))
    za, zb = os.path.join(tmp, "a.zip"), os.path.join(tmp, "b.zip")
    lp("pack", a, "-o", za)
    lp("pack", b, "-o", zb)
    rc, d, err = diff(za, zb)
    z = d.get("zipped", {})
    check("zipped delta: rc", rc == 0, err)
    check("zipped delta: the zips' sizes", z.get("measure") == "zip" and z.get("old_bytes") == os.path.getsize(za) and
          z.get("new_bytes") == os.path.getsize(zb) and z.get("delta_bytes") == os.path.getsize(zb) - os.path.getsize(za)
          and z.get("estimated") is False, z)
    check("zipped delta: unzipped delta", d.get("delta_bytes") == 40000, d.get("delta_bytes"))
    rc, d, err = diff(a, b)
    check("zipped delta: estimated for directories", d.get("zipped", {}).get("estimated") is True and
          d["zipped"]["delta_bytes"] > 0, d.get("zipped"))
    rc, out, err = lp("analyze", "--diff", za, zb)
    check("zipped delta: text", re.search(r"zipped: \+[0-9.]+ (B|KiB)", out) is not None, out)


def chromium(html, tmp, what):
    prof = tempfile.mkdtemp(dir=tmp)
    p = subprocess.run([CHROME, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={prof}", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000",
                        "--window-size=1400,1000", what, "file://" + html], capture_output=True, timeout=180)
    return p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def test_html_view(tmp, a):
    b = os.path.join(tmp, "html-new")
    shutil.copytree(a, b, symlinks=True)
    write(b, "node_modules/chalk/index.js", bytes(range(256)) * 80)  # grew
    write(b, "node_modules/sharp/lib/sharp.node", b"\x7fELF" + bytes(9000))  # added
    os.remove(os.path.join(b, "node_modules", "left-pad", "package.json"))  # removed
    data = bytearray(open(os.path.join(b, "lib", "util.js"), "rb").read())
    data[0] ^= 1
    write(b, "lib/util.js", bytes(data))  # same size
    html = os.path.join(tmp, "diff.html")
    rc, out, err = lp("analyze", "--diff", a, b, "-q", "--html", html)
    check("diff html: written", rc == 0 and os.path.exists(html), err)
    if not CHROME:
        print("SKIP diff html in chromium: no chromium", file=sys.stderr)
        return
    dom, log = chromium(html, tmp, "--dump-dom")
    errs = [l for l in log.splitlines() if "Uncaught" in l or ("CONSOLE" in l and "ERROR" in l)]
    check("diff html: rendered", "data-biggest-package" in dom, dom[-300:] + log[-800:])
    check("diff html: no script error", 'id="lp-error"' not in dom and not errs, errs[:3])
    marks = {}
    for m in re.finditer(r'<div class="t[^"]*"([^>]*)>', dom):
        p, c = re.search(r'data-path="([^"]*)"', m.group(1)), re.search(r'data-change="(\w+)"', m.group(1))
        if p:
            marks[p.group(1)] = c.group(1) if c else None
    check("diff html: changed boxes highlighted by status", marks.get("node_modules/chalk/index.js") == "grew" and
          marks.get("node_modules/sharp/lib/sharp.node") == "added" and
          (marks.get("lib/util.js") or marks.get("lib")) == "changed", marks)
    check("diff html: unchanged box not highlighted", "data/model.bin" in marks and marks["data/model.bin"] is None, marks)
    check("diff html: unchanged boxes grey", 'class="t u"' in dom, dom[:300])
    check("diff html: removed file listed", "node_modules/left-pad/package.json" in dom and "line-through" in dom)
    png = os.path.join(ART, "diff.png")
    if os.path.exists(png):
        os.remove(png)
    chromium(html, tmp, f"--screenshot={png}")
    check("diff html: screenshot", os.path.exists(png) and os.path.getsize(png) > 10000)


def main():
    global BIN, ART
    BIN, ART = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    os.makedirs(ART, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="lp-diff-")
    try:
        a = os.path.join(tmp, "fn")
        make_fn(a)
        test_same_size_edit(tmp, a)
        test_rename_and_mode(tmp, a)
        test_zip_dir_image(tmp, a)
        test_zipped_delta(tmp, a)
        test_html_view(tmp, a)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed; screenshot in {ART}")
    return 1 if failed else 0


sys.exit(main())
