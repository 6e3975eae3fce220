#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The HTML report (issue 12) in headless Chromium: the first view of the
treemap on the bundled samples, on a tree shaped like a Puppeteer function
and on an image; labelled tiles counted from the DOM after the script ran,
console errors, a screenshot kept in the build directory, and the diff view.

usage: html_test.py LAMBDAPACK SAMPLES_DIR ARTIFACT_DIR
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

BIN = SAMPLES = ART = None
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


def elf(size, machine=62):
    """An x86-64 ELF shared object header followed by filler (a native binary to the sniffer)."""
    h = bytearray(64)
    h[0:4] = b"\x7fELF"
    h[4], h[5], h[6] = 2, 1, 1
    h[16:18] = (3).to_bytes(2, "little")
    h[18:20] = machine.to_bytes(2, "little")
    h[20:24] = (1).to_bytes(4, "little")
    return bytes(h) + filler(size - 64)


def filler(n, seed=b"x"):
    """Deterministic bytes that deflate about as badly as real binaries."""
    block = b"".join(hashlib.sha256(seed + bytes([i])).digest() for i in range(256))
    return (block * (n // len(block) + 1))[:n]


def write(root, rel, data):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)


def make_puppeteer(root, mb=1):
    """A Lambda function rendering pages with Puppeteer: own code, ~60 packages, a Chromium build."""
    js = lambda n, s: b"".join(b"function f%d_%s(){return %d}\n" % (i, s.encode(), i) for i in range(n // 30))[:n]
    write(root, "index.js", js(3000, "index"))
    write(root, "package.json", b'{"name":"render","dependencies":{"puppeteer":"19"}}\n')
    for i, name in enumerate(["render", "pdf", "screenshot", "queue", "s3"]):
        write(root, f"lib/{name}.js", js(6000 + 1500 * i, name))
    write(root, "lib/templates/invoice.html", b"<html>" + b"x" * 9000 + b"</html>")
    chrome = "node_modules/puppeteer/.local-chromium/linux-1045629/chrome-linux"
    write(root, chrome + "/chrome", elf((42 << 20) // mb))
    write(root, chrome + "/libEGL.so", elf(300 << 10))
    write(root, chrome + "/libGLESv2.so", elf((6 << 20) // mb))
    write(root, chrome + "/libvk_swiftshader.so", elf((4 << 20) // mb))
    write(root, chrome + "/resources.pak", filler((5 << 20) // mb, b"pak"))
    write(root, chrome + "/icudtl.dat", filler((10 << 20) // mb, b"icu"))
    write(root, chrome + "/v8_context_snapshot.bin", filler(3 << 20, b"v8"))
    for loc in ["am", "ar", "bg", "bn", "ca", "cs", "da", "de", "el", "en-GB", "en-US", "es", "fa", "fi", "fr",
                "he", "hi", "hr", "hu", "id", "it", "ja", "ko", "lt", "lv", "ml", "nl", "pl", "pt-BR", "ru"]:
        write(root, f"{chrome}/locales/{loc}.pak", filler(400 << 10, loc.encode()))
    write(root, "node_modules/puppeteer/package.json", b'{"name":"puppeteer"}\n')
    write(root, "node_modules/puppeteer/lib/cjs/puppeteer/node.js", js(40000, "pn"))
    for d in ["cjs", "esm"]:
        for i in range(40):
            write(root, f"node_modules/puppeteer-core/lib/{d}/puppeteer/common/m{i}.js", js(20000 + 700 * i, f"pc{i}"))
            write(root, f"node_modules/puppeteer-core/lib/{d}/puppeteer/common/m{i}.js.map", b"{}" * 9000)
    write(root, "node_modules/puppeteer-core/README.md", b"# puppeteer\n" * 3000)
    write(root, "node_modules/devtools-protocol/json/browser_protocol.json", b'{"domains":[]}' * 60000)
    write(root, "node_modules/typescript/lib/typescript.js", js((9 << 20) // mb, "ts"))
    write(root, "node_modules/typescript/lib/tsserver.js", js((8 << 20) // mb, "tss"))
    write(root, "node_modules/@aws-sdk/client-s3/dist-cjs/index.js", js(2 << 20, "s3"))
    write(root, "node_modules/@aws-sdk/client-s3/dist-es/index.js", js(1800 << 10, "s3e"))
    for i in range(55):
        name = f"dep-{i:02d}" if i % 3 else f"@scope{i % 4}/lib-{i:02d}"
        size = 40000 + (i * 7919 % 97) * 9000
        write(root, f"node_modules/{name}/index.js", js(size, f"d{i}"))
        write(root, f"node_modules/{name}/package.json", b'{"name":"%s"}\n' % name.encode())
        if i % 4 == 0:
            write(root, f"node_modules/{name}/test/test.js", js(size // 3, f"t{i}"))
            write(root, f"node_modules/{name}/README.md", b"docs\n" * (size // 50))


def chromium(html, tmp, what, extra=()):
    prof = tempfile.mkdtemp(dir=tmp)
    args = [CHROME, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={prof}", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000",
            "--window-size=1400,1100", *extra, what, "file://" + html]
    p = subprocess.run(args, capture_output=True, timeout=180)
    return p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def console_errors(log):
    return [l for l in log.splitlines() if "Uncaught" in l or ("CONSOLE" in l and "ERROR" in l)]


def tiles(dom):
    """The treemap's boxes as (attributes, labelled) from the DOM after the script ran."""
    out = []
    m = re.search(r'<div id="tm"[^>]*>(.*?)</div><div id="note"', dom, re.S)
    if not m:
        return out
    for t in re.finditer(r'<div class="t[^"]*"([^>]*)>(.*?)</div>', m.group(1), re.S):
        out.append((t.group(1), '<span class="l">' in t.group(2)))
    return out


def render(name, html, tmp, min_labelled, code_tile=True):
    """Dump the DOM and take a screenshot; returns the DOM."""
    dom, log = chromium(html, tmp, "--dump-dom")
    check(f"{name}: rendered", 'data-biggest-package' in dom, dom[-400:] + log[-1500:])
    check(f"{name}: no script error", 'id="lp-error"' not in dom and not console_errors(log), console_errors(log)[:5])
    t = tiles(dom)
    labelled = sum(1 for _, l in t if l)
    print(f"{name}: {len(t)} tiles, {labelled} labelled, page {os.path.getsize(html)} bytes")
    check(f"{name}: labelled tiles >= {min_labelled}", labelled >= min_labelled, f"{labelled} of {len(t)}")
    if code_tile:
        check(f"{name}: the function code has a labelled tile",
              any('data-kind="c"' in a and 'data-group' in a and l for a, l in t), t[:5])
    png = os.path.join(ART, name + ".png")
    if os.path.exists(png):
        os.remove(png)
    _, log = chromium(html, tmp, f"--screenshot={png}")
    check(f"{name}: screenshot", os.path.exists(png) and os.path.getsize(png) > 10000, log[-500:])
    return dom, t


def test_samples(tmp):
    for s in sorted(os.listdir(SAMPLES)):
        src = os.path.join(SAMPLES, s)
        if not os.path.isdir(src):
            continue
        html = os.path.join(tmp, s + ".html")
        rc, out, err = lp("analyze", src, "-q", "--html", html)
        check(f"sample {s}: rc", rc == 0, err)
        n = int(json.loads(lp("analyze", src, "-q", "--json", "-")[1])["totals"]["files"])
        # A sample smaller than 15 files shows every file with a label.
        dom, t = render("sample-" + s, html, tmp, min(15, n))
        page = open(html).read()
        check(f"sample {s}: self-contained", not re.search(r"(src|href)=|https?:|@import|url\(", page.split("<script")[0])
              and "<link" not in page)
        check(f"sample {s}: no empty findings table", "<table" not in dom.split('id="findings"')[1].split("</aside>")[0])


def test_puppeteer(tmp):
    root = os.path.join(tmp, "puppeteer-fn")
    # The shape of a real one at a quarter of its size (the test writes it to disk).
    make_puppeteer(root, mb=4)
    html = os.path.join(tmp, "puppeteer.html")
    rc, out, err = lp("analyze", root, "-q", "--html", html, "--top", "0")
    check("puppeteer: rc", rc == 0, err)
    dom, t = render("puppeteer", html, tmp, 15)
    groups = [a for a, l in t if "data-group" in a]
    check("puppeteer: first level split into packages", len(groups) >= 10, len(groups))
    check("puppeteer: no single node_modules box", not re.search(r'<span class="l">node_modules<', dom))
    kinds = {re.search(r'data-kind="(.)"', a).group(1) for a, _ in t}
    check("puppeteer: colours by kind (code, node, native, data, junk)", {"c", "n", "x", "d", "j"} <= kinds, kinds)
    for name in ("function code", "puppeteer", "typescript"):
        check(f"puppeteer: {name} labelled", f'<span class="l">{name}<' in dom)
    check("puppeteer: legend", "native binary" in dom and "prunable junk" in dom and "function code" in dom)
    check("puppeteer: savings linked", 'id="savings"' in dom and "What can go" in dom)
    # Zoom (what a click on a box does), reached through a link to the box.
    chrome = "node_modules/puppeteer/.local-chromium/linux-1045629/chrome-linux"
    dom, log = chromium(html + "#path=" + chrome + "/locales", tmp, "--dump-dom")
    crumbs = re.search(r'<div id="crumbs">(.*?)</div>', dom, re.S)
    crumbs = re.sub(r"<[^>]+>", "|", crumbs.group(1)) if crumbs else ""
    check("puppeteer: zoomed with a breadcrumb", "|everything|" in crumbs and "|puppeteer|" in crumbs and
          "|locales|" in crumbs, crumbs)
    t = tiles(dom)
    check("puppeteer: zoomed view shows the files", any(f'data-path="{chrome}/locales/de.pak"' in a
                                                        for a, _ in t), t[:3])


def test_bounded(tmp):
    """Thousands of files in hundreds of directories: the page stays small, the tail is grouped."""
    root = os.path.join(tmp, "many")
    for d in range(300):
        for f in range(100):
            write(root, f"node_modules/p{d % 30}/d{d}/f{f}.js", b"x" * (50 + (d * f) % 700))
    html = os.path.join(tmp, "many.html")
    rc, out, err = lp("analyze", root, "-q", "--html", html, "--top", "0")
    size = os.path.getsize(html) if rc == 0 else 0
    print(f"bounded: 30000 files -> {size} bytes of HTML")
    check("bounded: rc", rc == 0, err)
    check("bounded: page under 1.5 MB", 0 < size < 1500000, size)
    check("bounded: tail grouped", "more)" in open(html).read())
    render("bounded", html, tmp, 15, code_tile=False)


def test_image(tmp):
    fn = os.path.join(tmp, "imgfn")
    make_puppeteer(fn, mb=8)
    lay = os.path.join(tmp, "img-layout")
    # The fake Chromium is an ELF header and filler: not loadable, which is what --no-check is for.
    rc, out, err = lp("container", fn, "-o", lay, "--no-check")
    check("image: built", rc == 0, err)
    if rc:
        return
    html = os.path.join(tmp, "image.html")
    rc, out, err = lp("analyze", lay, "-q", "--html", html)
    check("image: rc", rc == 0, err)
    dom, t = render("image", html, tmp, 15)
    check("image: per-layer view", 'id="layers" style=""' in dom or ('id="layers"' in dom and 'class="seg' in dom), dom[:200])
    check("image: a tree per layer", '"layers":[{' in open(html).read())


def docker_archive(path, layers):
    """A docker-archive tar (docker save) of tar layers given as {path: bytes}."""
    import gzip, io, tarfile

    def tar(files):
        b = io.BytesIO()
        with tarfile.open(fileobj=b, mode="w", format=tarfile.PAX_FORMAT) as t:
            for name, data in sorted(files.items()):
                ti = tarfile.TarInfo(name)
                ti.size, ti.mode = len(data), 0o755
                t.addfile(ti, io.BytesIO(data))
        return b.getvalue()
    raw = [tar(l) for l in layers]
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Env": ["LAMBDA_TASK_ROOT=/var/task"]},
                      "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(r).hexdigest() for r in raw]},
                      "history": [{"created_by": "base"}, {"created_by": "COPY . /var/task"}]}).encode()
    with tarfile.open(path, "w") as t:
        def add(n, d):
            ti = tarfile.TarInfo(n)
            ti.size = len(d)
            t.addfile(ti, io.BytesIO(d))
        for i, r in enumerate(raw):
            add(f"l{i}/layer.tar", gzip.compress(r, mtime=0))
        add("cfg.json", cfg)
        add("manifest.json", json.dumps([{"Config": "cfg.json", "Layers": [f"l{i}/layer.tar" for i in range(len(raw))]}]).encode())


def test_image_on_base(tmp):
    """A function on a runtime base image: the base is grey boxes by directory, the function's part split up."""
    img = os.path.join(tmp, "on-base.tar")
    docker_archive(img, [
        {"var/lang/bin/node": elf(12 << 20), "var/lang/lib/node_modules/npm/index.js": b"n" * 900000,
         "usr/lib64/libc.so.6": elf(2 << 20), "usr/lib64/libstdc++.so.6": elf(2 << 20), "etc/ssl/certs/ca.pem": b"c" * 200000},
        {"var/task/index.js": b"exports.handler = 1;\n" * 300, "var/task/lib/a.js": b"a" * 20000,
         "var/task/node_modules/sharp/build/Release/sharp.node": elf(3 << 20),
         "var/task/node_modules/lodash/lodash.js": b"l" * 500000},
    ])
    html = os.path.join(tmp, "on-base.html")
    rc, out, err = lp("analyze", img, "-q", "--html", html)
    check("image on a base: rc", rc == 0, err)
    dom, t = render("image-on-base", html, tmp, 10)
    groups = {re.search(r'data-kind="(.)"', a).group(1) + ":" + (re.search(r'data-path="([^"]*)"', a) or [0, ""])[1]
              for a, _ in t if "data-group" in a}
    check("image on a base: base directories are base groups", {"b:var/lang", "b:usr/lib64"} <= groups, groups)
    check("image on a base: the function's packages are split", "n:var/task/node_modules/sharp/build/Release" in groups or
          any(g.startswith("n:var/task/node_modules/sharp") for g in groups), groups)
    check("image on a base: the runtime's npm is not a function package",
          not any("var/lang/lib/node_modules" in g and g.startswith("n:") for g in groups), groups)
    check("image on a base: two layers in the strip", dom.count('class="seg') == 2, dom.count('class="seg'))


def main():
    global BIN, SAMPLES, ART
    BIN, SAMPLES, ART = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])
    os.makedirs(ART, exist_ok=True)
    if not CHROME:
        print("SKIP: no chromium (scripts/install-deps.sh --test installs it)", file=sys.stderr)
        return 77
    tmp = tempfile.mkdtemp(prefix="lp-html-")
    try:
        test_samples(tmp)
        test_puppeteer(tmp)
        test_bounded(tmp)
        test_image(tmp)
        test_image_on_base(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed; screenshots in {ART}")
    return 1 if failed else 0


sys.exit(main())
