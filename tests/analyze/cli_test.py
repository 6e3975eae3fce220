#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""End-to-end tests of `lambdapack analyze`: golden JSON, directory vs zip,
hostile inputs, CI gates, --diff, and the HTML report in headless Chromium.

usage: cli_test.py LAMBDAPACK [--update-golden]
"""
import gzip
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "golden", "sample.json")
BIN = None
passed = failed = 0


def run(*args, cwd=None, env=None, timeout=60):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([BIN, "analyze", *args], capture_output=True, cwd=cwd, env=e, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {name}: {detail}", file=sys.stderr)


def elf_header(machine):
    """A minimal little-endian ELF64 header (enough for the magic and e_machine)."""
    h = bytearray(64)
    h[0:4] = b"\x7fELF"
    h[4], h[5], h[6] = 2, 1, 1
    struct.pack_into("<HHI", h, 16, 3, machine, 1)
    return bytes(h)


def make_sample(root):
    """A deterministic function tree: node packages, a Python dist, duplicates, junk, binaries."""
    files = {
        "index.js": b"exports.handler = async () => 42;\n",
        "node_modules/lodash/lodash.js": b"".join(b"function f%d(){return %d}\n" % (i, i) for i in range(4000)),
        "node_modules/lodash/README.md": b"# lodash\n" * 50,
        "node_modules/@aws-sdk/client-s3/dist/index.js": b"module.exports={};\n" * 2000,
        "node_modules/@aws-sdk/client-s3/dist/index.js.map": b"{}" * 3000,
        "node_modules/sharp/build/Release/sharp.node": b"\xcf\xfa\xed\xfe" + b"\x07" * 6000,
        "node_modules/sharp/test/fixture.bin": bytes(range(256)) * 10,
        "data/model-a.bin": bytes((i * 7) % 251 for i in range(150000)),
        "data/model-b.bin": bytes((i * 7) % 251 for i in range(150000)),
        "PyYAML-6.0.dist-info/METADATA": b"Name: PyYAML\n",
        "yaml/__init__.py": b"# yaml\n" * 300,
        "lib/libarm.so": elf_header(183) + b"\0" * 3000,
        "app/__pycache__/h.cpython-312.pyc": b"\x00" * 900,
    }
    rec = "".join(f"{p},sha256=x,{len(d)}\n" for p, d in files.items() if p.startswith(("yaml/", "PyYAML")))
    files["PyYAML-6.0.dist-info/RECORD"] = (rec + "PyYAML-6.0.dist-info/RECORD,,\n").encode()
    for p, d in files.items():
        fp = os.path.join(root, p)
        os.makedirs(os.path.dirname(fp), exist_ok=True)
        with open(fp, "wb") as f:
            f.write(d)
    return files


def zip_tree(root, out):
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for dp, dn, fn in sorted(os.walk(root)):
            dn.sort()
            for f in sorted(fn):
                p = os.path.join(dp, f)
                z.write(p, os.path.relpath(p, root))


def stable(doc):
    """The fields that must not change between runs or machines."""
    t = dict(doc["totals"])
    t.pop("zipped_bytes")
    return {
        "schema": doc["schema"],
        "totals": t,
        "arch": doc["target"]["arch"],
        "contributors": doc["contributors"],
        "savings": doc["savings"],
        "duplicates": doc["duplicates"],
        "findings": doc["findings"],
        "limits": {name: b["limit"] for name, b in doc["limits"].items()},
    }


def test_golden_and_zip(tmp, update):
    root = os.path.join(tmp, "fn")
    make_sample(root)
    rc, out, err = run(root, "--json", "-", "-q", "--top", "0", "--runtime", "nodejs20.x", "--arch", "x86_64")
    check("golden rc", rc == 0, err)
    doc = json.loads(out)
    got = stable(doc)
    if update:
        os.makedirs(os.path.dirname(GOLDEN), exist_ok=True)
        with open(GOLDEN, "w") as f:
            json.dump(got, f, indent=1, sort_keys=True)
            f.write("\n")
    with open(GOLDEN) as f:
        want = json.load(f)
    check("golden json", got == want, json.dumps(got, sort_keys=True)[:2000])
    check("biggest package", doc["contributors"]["packages"][0]["name"] == "data", doc["contributors"]["packages"][0])
    # The zip estimate for a directory is close to the real zip.
    zp = os.path.join(tmp, "fn.zip")
    zip_tree(root, zp)
    real = os.path.getsize(zp)
    est = doc["totals"]["zipped_bytes"]
    check("zip estimate within 15%", abs(est - real) <= 0.15 * real, f"est {est} real {real}")
    rc, out, err = run(zp, "--json", "-", "-q", "--top", "0", "--arch", "x86_64")
    check("zip rc", rc == 0, err)
    zdoc = json.loads(out)
    check("zip real size", zdoc["totals"]["zipped_bytes"] == real and not zdoc["totals"]["zipped_estimated"])
    fl = lambda d: [(c["name"], c["bytes"]) for c in d["contributors"]["files"]]
    check("dir vs zip file contributors", fl(doc) == fl(zdoc), f"{fl(doc)[:5]} vs {fl(zdoc)[:5]}")
    check("dir vs zip packages", doc["contributors"]["packages"] == zdoc["contributors"]["packages"])
    # The zip `lambdapack pack` makes: same files, and the estimate is about its size.
    pz = os.path.join(tmp, "fn-pack.zip")
    p = subprocess.run([BIN, "pack", root, "-o", pz, "-q", "--no-check"], capture_output=True)
    if p.returncode != 0:
        p = subprocess.run([BIN, "pack", root, "-o", pz, "-q"], capture_output=True)
    if os.path.exists(pz):
        rc, out, err = run(pz, "--json", "-", "-q", "--top", "0", "--arch", "x86_64")
        check("pack zip rc", rc == 0, err)
        pdoc = json.loads(out)
        check("dir vs pack zip file contributors", fl(doc) == fl(pdoc), f"{fl(doc)[:5]} vs {fl(pdoc)[:5]}")
        check("estimate vs pack zip within 10%", abs(est - os.path.getsize(pz)) <= 0.10 * os.path.getsize(pz),
              f"est {est} pack {os.path.getsize(pz)}")
    else:
        check("pack zip built", False, p.stderr.decode()[:300])
    # Also as a tar.gz and as a single-layer docker image: the same files.
    tgz = os.path.join(tmp, "fn.tgz")
    with tarfile.open(tgz, "w:gz") as t:
        t.add(root, arcname=".")
    rc, out, err = run(tgz, "--json", "-", "-q", "--top", "0")
    check("tgz rc", rc == 0, err)
    check("dir vs tgz", rc == 0 and fl(json.loads(out)) == fl(doc))
    img = make_image(tmp, [tar_of_dir(root)], "img.tar")
    rc, out, err = run(img, "--json", "-", "-q", "--top", "0")
    check("image rc", rc == 0, err)
    check("dir vs image", rc == 0 and fl(json.loads(out)) == fl(doc))
    # The image `lambdapack container` makes from the tree: the same files, under /var/task.
    cimg = os.path.join(tmp, "fn.oci")
    p = subprocess.run([BIN, "container", root, "-o", cimg, "-q", "--no-check"], capture_output=True)
    check("container of the sample", p.returncode == 0, p.stderr.decode()[:300])
    rc, out, err = run(cimg, "--json", "-", "-q", "--top", "0")
    check("container image rc", rc == 0, err)
    task = [(n[len("var/task/"):], b) for n, b in fl(json.loads(out))] if rc == 0 else []
    check("dir vs container image file contributors", task == fl(doc), f"{task[:5]} vs {fl(doc)[:5]}")
    # Text output: no colour escapes when not a TTY; bars and human sizes present.
    rc, out, err = run(root, "--top", "3")
    check("text", rc == 0 and "\x1b[" not in out and "Largest packages" in out and "#" in out, out[:500])
    return root, doc


def tar_of_dir(root):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w") as t:
        for dp, dn, fn in sorted(os.walk(root)):
            for f in sorted(fn):
                p = os.path.join(dp, f)
                t.add(p, arcname=os.path.relpath(p, root))
    return b.getvalue()


def tar_entries(entries):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 0
            if data is None:
                ti.type = tarfile.DIRTYPE
                t.addfile(ti)
            else:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
    return b.getvalue()


def make_image(tmp, layers, name):
    """docker-archive tar (legacy layout) with gzip layers."""
    path = os.path.join(tmp, name)
    blobs = [gzip.compress(l, mtime=0) for l in layers]
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [
        "sha256:" + hashlib.sha256(l).hexdigest() for l in layers]}}).encode()
    with tarfile.open(path, "w") as t:
        def add(n, d):
            ti = tarfile.TarInfo(n)
            ti.size = len(d)
            t.addfile(ti, io.BytesIO(d))
        for i, b in enumerate(blobs):
            add(f"l{i}/layer.tar", b)
        add("cfg.json", cfg)
        add("manifest.json", json.dumps([{"Config": "cfg.json", "Layers": [f"l{i}/layer.tar" for i in range(len(blobs))]}]).encode())
    return path


def test_hostile(tmp, root):
    zp = os.path.join(tmp, "fn.zip")
    data = open(zp, "rb").read()
    cases = {}
    cases["trunc.zip"] = data[: len(data) // 2]
    lying = bytearray(data)
    i = lying.find(b"PK\x01\x02")
    struct.pack_into("<I", lying, i + 24, 7)
    cases["lying.zip"] = bytes(lying)
    cases["garbage.bin"] = bytes((i * 131 + 7) % 256 for i in range(5000))
    cases["empty.zip"] = b""
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w") as t:
        ti = tarfile.TarInfo("../../escape.txt")
        ti.size = 3
        t.addfile(ti, io.BytesIO(b"abc"))
    cases["dotdot.tar"] = b.getvalue()
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("zeros", "w", force_zip64=True) as f:
            for _ in range(300):
                f.write(b"\0" * (1 << 20))
    cases["bomb.zip"] = b.getvalue()
    # An image whose layer tar hides a '..' path.
    cases["evil-image.tar"] = open(make_image(tmp, [tar_entries([("../../x", b"x")])], "evil.tar"), "rb").read()
    work = os.path.join(tmp, "hostile")
    os.makedirs(work)
    for name, content in cases.items():
        with open(os.path.join(work, name), "wb") as f:
            f.write(content)
    # A layout with a missing blob.
    lay = os.path.join(work, "layout")
    os.makedirs(os.path.join(lay, "blobs", "sha256"))
    with open(os.path.join(lay, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(lay, "index.json"), "w") as f:
        f.write(json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": "sha256:" + "a" * 64, "size": 10}]}))
    before = sorted(os.listdir(work))
    for name in list(cases) + ["layout"]:
        rc, out, err = run(name, cwd=work, timeout=60)
        lines = [l for l in err.splitlines() if l.strip()]
        check(f"hostile {name} exit 1", rc == 1, f"rc={rc} err={err!r}")
        check(f"hostile {name} one line naming the file", len(lines) == 1 and name in lines[0], err)
    check("hostile: nothing written", sorted(os.listdir(work)) == before, os.listdir(work))
    check("hostile: no escape", not os.path.exists(os.path.join(tmp, "escape.txt")))


def test_dir_problems_match_pack(tmp):
    """analyze on a tree pack refuses: the same problems as error findings, exit 0, names escaped."""
    d = os.path.join(tmp, "links")
    repo = os.path.join(d, "repo")
    fn = os.path.join(repo, "packages", "fn")
    store = os.path.join(repo, "node_modules", ".pnpm", "x@1", "node_modules", "x")
    aws = os.path.join(d, "home", ".aws")
    for p in (fn, store, aws, os.path.join(fn, "node_modules")):
        os.makedirs(p)
    for p, text in ((os.path.join(repo, "package.json"), "{}"), (os.path.join(fn, "app.js"), "exports.h = 1;\n"),
                    (os.path.join(store, "index.js"), "module.exports = 42;\n"), (os.path.join(aws, "credentials"), "SECRET")):
        with open(p, "w") as f:
            f.write(text)
    os.symlink("../../../node_modules/.pnpm/x@1/node_modules/x", os.path.join(fn, "node_modules", "x"))
    os.symlink("/etc", os.path.join(fn, "conf"))
    os.symlink("../../../home/.aws", os.path.join(fn, "creds"))
    os.mkfifo(os.path.join(fn, "pipe"))
    with open(os.path.join(fn, "evil\x1b[2J.txt"), "w") as f:
        f.write("x")
    os.symlink("nowhere", os.path.join(fn, "dangling"))
    p = subprocess.run([BIN, "pack", fn, "-o", os.path.join(d, "out.zip")], capture_output=True)
    pack_errors = [l for l in p.stderr.decode().splitlines() if ": error: " in l]
    check("links: pack refuses", p.returncode == 1 and len(pack_errors) == 4, p.stderr.decode())
    rc, out, err = run(fn, "--json", "-", "-q")
    # The whole report is written, then exit 1: the input has what pack refuses.
    doc = json.loads(out) if out.strip() else {"findings": []}
    errors = {(f["code"], f["path"]) for f in doc["findings"] if f["severity"] == "error"}
    want = {("link-outside-repository", "conf"), ("link-outside-repository", "creds"),
            ("special-file", "pipe"), ("unsafe-name", "evil\x1b[2J.txt")}
    check("links: analyze reports pack's refusals as errors", rc == 1 and errors == want, f"rc {rc} {errors} {err}")
    check("links: analyze names each on stderr, escaped", len([l for l in err.splitlines() if ": error: " in l]) == 4
          and "\x1b" not in err, err)
    check("links: each analyze error is one of pack's lines",
          all(any(f["message"].replace("\x1b", "\\x1b") in l for l in pack_errors)
              for f in doc["findings"] if f["severity"] == "error"), pack_errors)
    warn = [f for f in doc["findings"] if f["severity"] == "warning" and f["code"] == "dangling-link"]
    check("links: dangling is a warning", len(warn) == 1 and warn[0]["path"] == "dangling", doc["findings"])
    files = {f["name"] for f in doc["contributors"]["files"]} if "contributors" in doc else set()
    check("links: pnpm link materialized, nothing of /etc or .aws", "node_modules/x/index.js" in files and
          not any(n.startswith(("conf/", "creds/")) for n in files), files)
    p = subprocess.run([BIN, "analyze", fn], capture_output=True)
    check("links: text report escaped", p.returncode == 1 and b"\x1b" not in p.stdout + p.stderr
          and b"evil\\x1b[2J.txt" in p.stdout and b"4 errors" in p.stdout, p.stdout[-1500:])


def test_gates_and_diff(tmp, root):
    rc, out, err = run(root, "-q", "--max-unzipped", "100K", "--max-zipped", "10M")
    check("gate max-unzipped", rc == 5 and err.count("gate failed") == 1 and "--max-unzipped" in err, err)
    rc, out, err = run(root, "-q", "--fail-on", "error", "--arch", "x86_64")
    check("gate fail-on error", rc == 5 and "gate failed" in err, err)
    rc, out, err = run(os.path.join(root, "yaml"), "-q", "--fail-on", "warning", "--max-unzipped", "1M")
    check("gates pass", rc == 0 and err == "", err)
    # Dive efficiency gate on an image with an overwritten file.
    img = make_image(tmp, [tar_entries([("f", b"a" * 1000)]), tar_entries([("f", b"b" * 1000)])], "eff.tar")
    rc, out, err = run(img, "-q", "--min-efficiency", "0.9", "--json", "-")
    doc = json.loads(out) if out else {}
    check("gate min-efficiency", rc == 5 and "efficiency" in err, err)
    check("dive numbers", doc.get("image", {}).get("efficiency") == 0.5 and doc["image"]["wasted_bytes"] == 2000, out[:300])
    check("gates in json", any(g["gate"] == "min-efficiency" and not g["passed"] for g in doc.get("gates", [])))
    rc, out, err = run(img, "-q", "--min-efficiency", "0.4")
    check("gate min-efficiency pass", rc == 0, err)
    # --diff: grew/shrank by package and file, sorted by |delta|.
    new = os.path.join(tmp, "fn2")
    shutil.copytree(root, new)
    os.remove(os.path.join(new, "data", "model-b.bin"))
    with open(os.path.join(new, "node_modules", "lodash", "lodash.js"), "ab") as f:
        f.write(b"x" * 5000)
    rc, out, err = run("--diff", root, new, "--json", "-", "-q", "--top", "0")
    check("diff rc", rc == 0, err)
    d = json.loads(out)
    check("diff order", [p["name"] for p in d["packages"]] == ["data", "node_modules/lodash"], d["packages"])
    check("diff files", d["files"][0]["name"] == "data/model-b.bin" and d["files"][0]["status"] == "removed")
    check("diff total", d["delta_bytes"] == 5000 - 150000)
    rc, out, err = run("--diff", root)
    check("diff usage", rc == 2, err)
    rc, out, err = run(root, "--bogus")
    check("usage error", rc == 2 and len(err.splitlines()) == 1, err)


def test_html(tmp, root):
    html = os.path.join(tmp, "report.html")
    rc, out, err = run(root, "-q", "--html", html, "--top", "0")
    check("html rc", rc == 0, err)
    page = open(html).read()
    check("html self-contained", "http://" not in page and "https://" not in page and "<link" not in page)
    chrome = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chrome:
        print("SKIP html in chromium: no chromium", file=sys.stderr)
        return
    prof = tempfile.mkdtemp(dir=tmp)
    p = subprocess.run([chrome, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={prof}", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000",
                        "--dump-dom", "file://" + html], capture_output=True, timeout=120)
    dom = p.stdout.decode(errors="replace")
    log = p.stderr.decode(errors="replace")
    check("html rendered", 'id="lp-rendered"' in dom, dom[-500:] + log[-2000:])
    check("html biggest package", 'data-biggest-package="data"' in dom and '<span class="l">data<' in dom, dom[:300])
    check("html treemap boxes", dom.count('class="t') >= 3)
    check("html no JS error", 'id="lp-error"' not in dom and "Uncaught" not in log and ":ERROR:CONSOLE" not in log,
          [l for l in log.splitlines() if "CONSOLE" in l or "Uncaught" in l][:5])


def make_opt_tree(tmp):
    """A tree with something for every optimizer: a -g library (and a copy), junk, foreign binaries."""
    root = os.path.join(tmp, "opt")
    os.makedirs(os.path.join(root, "lib"))
    csrc = os.path.join(tmp, "demo.c")
    with open(csrc, "w") as f:
        f.write("".join(f"int demo{i}(int x) {{ return x * {i} + {i}; }}\n" for i in range(300)))
    cc = shutil.which("cc") or shutil.which("gcc")
    check("C compiler present", cc is not None)
    if cc:
        subprocess.run([cc, "-g", "-O1", "-shared", "-fPIC", "-o", os.path.join(root, "lib", "libdemo.so"), csrc],
                       check=True)
        os.makedirs(os.path.join(root, "vendor", "demo"))
        shutil.copy(os.path.join(root, "lib", "libdemo.so"), os.path.join(root, "vendor", "demo", "libdemo.so"))
    rnd = hashlib.sha256(b"seed").digest() * 4096  # 128 KiB, compresses poorly: dedupe candidate
    files = {
        "index.js": b"exports.handler = async () => 1;\n",
        "data/a.bin": rnd,
        "data/copy/a.bin": rnd,
        "node_modules/pkg/index.js": b"module.exports = 1;\n" * 50,
        "node_modules/pkg/README.md": b"# pkg\n" * 400,
        "node_modules/pkg/test/t.js": b"test();\n" * 300,
        "node_modules/pkg/index.js.map": b"{}" * 2000,
        "node_modules/pkg/prebuilds/darwin-x64/pkg.node": b"\xcf\xfa\xed\xfe" + b"\x07" * 9000,
        "python/lib/__pycache__/m.cpython-312.pyc": b"\x00" * 1500,
        "bin/tool-arm64": elf_header(183) + b"\x00" * 7000,
    }
    for rel, data in files.items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
    return root


def test_savings_match_pack(tmp):
    """analyze's "what -O would save" is pack -O's own pipeline run dry: the same figures, from a
    directory, from the zip pack makes without -O, and from the image container makes."""
    root = make_opt_tree(tmp)
    cats = ["prune_foreign", "prune_junk", "strip", "dedupe"]
    pj = os.path.join(tmp, "opt-pack.json")
    p = subprocess.run([BIN, "pack", root, "-O", "--arch", "x86_64", "--no-check", "-q", "-o",
                        os.path.join(tmp, "opt.zip"), "--json", pj], capture_output=True)
    check("pack -O rc", p.returncode == 0, p.stderr.decode()[:300])
    if p.returncode != 0:
        return
    with open(pj) as f:
        sizes = json.load(f)["sizes"]
    want = {c: sizes["saved_by"][c] for c in cats}
    check("pack -O saved every kind", all(want[c] > 0 for c in cats), want)
    check("pack saved = sum of steps", sizes["saved"] == sum(want.values()), sizes)
    plain = os.path.join(tmp, "opt-plain.zip")
    p = subprocess.run([BIN, "pack", root, "--no-check", "-q", "-o", plain], capture_output=True)
    check("pack plain rc", p.returncode == 0, p.stderr.decode()[:300])
    img = os.path.join(tmp, "opt.oci")
    p = subprocess.run([BIN, "container", root, "--arch", "x86_64", "--no-check", "-q", "-o", img], capture_output=True)
    check("container rc", p.returncode == 0, p.stderr.decode()[:300])
    # An image whose function lives elsewhere: analyze follows the config's LAMBDA_TASK_ROOT.
    img2 = os.path.join(tmp, "opt-srv.oci")
    p = subprocess.run([BIN, "container", root, "--arch", "x86_64", "--no-check", "--task-root", "/srv/fn", "-q",
                        "-o", img2], capture_output=True)
    check("container --task-root rc", p.returncode == 0, p.stderr.decode()[:300])
    for what, target in (("directory", root), ("zip", plain), ("image", img), ("image /srv/fn", img2)):
        rc, out, err = run(target, "--json", "-", "-q", "--top", "0", "--arch", "x86_64")
        check(f"savings {what} rc", rc in (0, 5), err[:300])
        if rc not in (0, 5):
            continue
        sv = json.loads(out)["savings"]
        got = {c: sv[c]["bytes"] for c in cats}
        check(f"savings {what} == pack -O saved_by", got == want, f"analyze {got} pack {want}")
        check(f"savings {what} total == pack -O saved", sv["total"] == sizes["saved"], f"{sv['total']} vs {sizes['saved']}")
        # Items name paths as they are in the artifact (the image's task root included).
        prefix = {"image": "var/task/", "image /srv/fn": "srv/fn/"}.get(what, "")
        check(f"savings {what} item paths", sv["items"] and all(i["path"].startswith(prefix) and
                                                                not i["path"].startswith("/") for i in sv["items"]),
              [i["path"] for i in sv["items"]][:5])


def test_several_images(tmp):
    """`docker save a b` writes one archive with two images: --image picks one by tag or @N."""
    la = tar_entries([("var/", None), ("var/task/", None), ("var/task/a.txt", b"a" * 100)])
    lb = tar_entries([("var/", None), ("var/task/", None), ("var/task/b.txt", b"b" * 200)])
    path = os.path.join(tmp, "two.tar")
    with tarfile.open(path, "w") as t:
        def add(n, d):
            ti = tarfile.TarInfo(n)
            ti.size = len(d)
            t.addfile(ti, io.BytesIO(d))
        man = []
        for i, (layer, tag) in enumerate(((la, "fn-a:1"), (lb, "registry.example/fn-b:latest"))):
            add(f"l{i}/layer.tar", gzip.compress(layer, mtime=0))
            add(f"cfg{i}.json", json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
                "type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}}).encode())
            man.append({"Config": f"cfg{i}.json", "RepoTags": [tag], "Layers": [f"l{i}/layer.tar"]})
        add("manifest.json", json.dumps(man).encode())
    files = lambda out: sorted(c["name"] for c in json.loads(out)["contributors"]["files"])
    rc, out, err = run(path, "--json", "-", "-q", "--top", "0")
    doc = json.loads(out) if rc == 0 else {}
    check("several images: first by default", rc == 0 and files(out) == ["var/task/a.txt"], err or out[:300])
    check("several images: says so", any(f["code"] == "several-images" and "fn-a:1" in f["message"] and
                                         "fn-b" in f["message"] for f in doc.get("findings", [])), doc.get("findings"))
    for ref in ("registry.example/fn-b:latest", "registry.example/fn-b", "@1"):
        rc, out, err = run(path, "--image", ref, "--json", "-", "-q", "--top", "0")
        check(f"--image {ref}", rc == 0 and files(out) == ["var/task/b.txt"], err or out[:300])
    # An OCI layout whose index names two images (ref.name), as `skopeo copy ... oci:DIR:TAG` makes.
    lay = os.path.join(tmp, "two.oci")
    idx = None
    for name, content in (("one", b"1" * 300), ("two", b"2" * 400)):
        src = os.path.join(tmp, "img-src-" + name)
        os.makedirs(src)
        with open(os.path.join(src, name + ".txt"), "wb") as f:
            f.write(content)
        out_dir = os.path.join(tmp, "img-" + name)
        p = subprocess.run([BIN, "container", src, "-o", out_dir, "--tag", name, "-q", "--no-check"], capture_output=True)
        check(f"container --tag {name}", p.returncode == 0, p.stderr.decode()[:300])
        shutil.copytree(out_dir, lay, dirs_exist_ok=True)
        with open(os.path.join(out_dir, "index.json")) as f:
            this = json.load(f)
        if idx is None:
            idx = this
        else:
            idx["manifests"] += this["manifests"]
    with open(os.path.join(lay, "index.json"), "w") as f:
        json.dump(idx, f)
    for ref, want in (("two", ["var/task/two.txt"]), ("one", ["var/task/one.txt"]), ("@1", ["var/task/two.txt"])):
        rc, out, err = run(lay, "--image", ref, "--json", "-", "-q", "--top", "0")
        check(f"layout --image {ref}", rc == 0 and files(out) == want, err or out[:300])
    rc, out, err = run(path, "--image", "nope:2", "-q")
    check("--image unknown: one-line error naming both", rc == 1 and "nope:2" in err and "fn-a:1" in err
          and err.count("\n") == 1, f"rc {rc} {err!r}")


def test_colliding_members(tmp):
    """Regression (analyze fuzzer): a zip whose members collide by name after
    a directory merged ("a/" + "a/1", then "b" and "b/c") aborted with a
    double free in lp_entries_free. Now: exit 1, one line naming the zip and
    the member, the finding in the JSON, and the same problem pack reports."""
    work = os.path.join(tmp, "collide")
    os.makedirs(work)
    zp = os.path.join(work, "coll.zip")
    with zipfile.ZipFile(zp, "w") as z:
        z.writestr("a/", b"")
        z.writestr("a/1", b"hello")
        z.writestr("b", b"world!")
        z.writestr("b/c", b"x")
        z.writestr("d.txt", b"1")
        z.writestr("./d.txt", b"2")
    before = open(zp, "rb").read()
    rc, out, err = run(zp, "-q", "--json", "-")
    lines = [l for l in err.splitlines() if l.strip()]
    check("collide: exit 1, no abort", rc == 1, f"rc={rc} {err!r}")
    check("collide: one line per problem naming zip and member",
          len(lines) == 2 and all("coll.zip: member '" in l for l in lines)
          and "'b/c'" in lines[0] and "'./d.txt'" in lines[1], err)
    doc = json.loads(out) if out.strip().startswith("{") else {}
    codes = [f["code"] for f in doc.get("findings", []) if f["severity"] == "error"]
    check("collide: findings", codes == ["duplicate-member", "duplicate-member"], codes)
    p = subprocess.run([BIN, "pack", zp, "-o", os.path.join(work, "o.zip")], capture_output=True, text=True)
    plines = [l for l in p.stderr.splitlines() if "[duplicate-member]" in l]
    check("collide: pack reports the same", p.returncode == 1 and
          [l.split("error: ", 1)[1] for l in plines] == [l.split("error: ", 1)[1] for l in lines], p.stderr)
    check("collide: input unchanged, nothing written", open(zp, "rb").read() == before
          and sorted(os.listdir(work)) == ["coll.zip"], os.listdir(work))


def main():
    global BIN
    BIN = os.path.abspath(sys.argv[1])
    update = "--update-golden" in sys.argv
    tmp = tempfile.mkdtemp(prefix="lp-ana-cli-")
    try:
        root, doc = test_golden_and_zip(tmp, update)
        test_hostile(tmp, root)
        test_dir_problems_match_pack(tmp)
        test_gates_and_diff(tmp, root)
        test_html(tmp, root)
        test_savings_match_pack(tmp)
        test_several_images(tmp)
        test_colliding_members(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
