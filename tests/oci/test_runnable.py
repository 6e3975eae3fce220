"""Runnable images: the runtime -> base image table, --base auto|scratch, and the
runnability check (image-not-runnable) of `container`, pack's fallback image and `analyze`.

Images are built here: a busybox base from Debian's busybox-static written as an OCI
layout by this script, a C bootstrap compiled static and dynamic. podman (runc, vfs,
no network) runs the busybox image; skopeo turns layouts into oci-archive and
docker-archive tars for analyze. A missing tool fails its test loudly.

usage: test_runnable.py LAMBDAPACK
"""
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tarfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import lptest  # noqa: E402
from lptest import Skip, main, run  # noqa: E402

LP = os.path.abspath(sys.argv[1])
DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "runtimes.md")
BUSYBOX = "/bin/busybox"
LIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]
_made = []


def tmpdir(tag):
    # podman names an oci:DIR image after its path, which must be a valid reference: no random
    # mkdtemp letters (a trailing '_' is not), only the tag, the pid and a counter.
    base = os.environ.get("TMPDIR", "/tmp")
    d = os.path.join(base, "lambdapack-it-run-%s-%d-%d" % (tag, os.getpid(), len(_made)))
    os.makedirs(d)
    _made.append(d)
    return d


def _cleanup():
    if not os.environ.get("LP_KEEP"):
        for d in _made:
            shutil.rmtree(d, ignore_errors=True)


def need(*tools):
    for t in tools:
        if not shutil.which(t) and not os.path.exists(t):
            raise Skip("REQUIRED TOOL MISSING: %s (apt-get install it); this test did NOT run" % t)


def lp(*args, check=False):
    e = dict(os.environ)
    e.pop("SOURCE_DATE_EPOCH", None)
    return run([LP, *map(str, args)], check=check, env=e)


def errlines(p):
    return [l for l in p.stderr.splitlines() if l.strip()]


def make_layout(d, name, layers, config, tag="latest", arch="amd64"):
    """An OCI layout written here: layers are lists of (name, kind, data|linkname, mode)
    members, kind one of "file", "dir", "symlink", "hardlink"; whiteouts are files named .wh.X."""
    layout = os.path.join(d, name)
    os.makedirs(os.path.join(layout, "blobs", "sha256"))

    def put(data):
        h = hashlib.sha256(data).hexdigest()
        with open(os.path.join(layout, "blobs", "sha256", h), "wb") as f:
            f.write(data)
        return "sha256:" + h, len(data)

    descs, diff_ids = [], []
    for members in layers:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
            for mname, kind, val, mode in members:
                ti = tarfile.TarInfo(mname)
                ti.mode = mode
                if kind == "dir":
                    ti.type = tarfile.DIRTYPE
                    t.addfile(ti)
                elif kind in ("symlink", "hardlink"):
                    ti.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
                    ti.linkname = val
                    t.addfile(ti)
                else:
                    ti.size = len(val)
                    t.addfile(ti, io.BytesIO(val))
        tar = raw.getvalue()
        dig, size = put(gzip.compress(tar, mtime=0))
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": dig, "size": size})
        diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
    cfg = json.dumps({"architecture": arch, "os": "linux", "config": config,
                      "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    cdig, csize = put(cfg)
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdig,
                                 "size": csize}, "layers": descs}).encode()
    mdig, msize = put(man)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "digest": mdig, "size": msize,
                   "annotations": {"org.opencontainers.image.ref.name": tag}}]}, f)
    return layout


def busybox_layer():
    need(BUSYBOX)
    data = open(BUSYBOX, "rb").read()
    return [("bin", "dir", None, 0o755), ("bin/busybox", "file", data, 0o755),
            ("bin/sh", "symlink", "busybox", 0o777), ("bin/cat", "symlink", "/bin/busybox", 0o777),
            ("tmp", "dir", None, 0o1777)]


def busybox_base(d, name="busybox", config=None, extra_layers=()):
    cfg = {"Env": ["PATH=/bin", "BASE_VAR=1"]} if config is None else config
    return make_layout(d, name, [busybox_layer(), *extra_layers], cfg, tag="bb")


def image_config(layout, tag="latest"):
    idx = json.load(open(os.path.join(layout, "index.json")))
    m = [x for x in idx["manifests"] if x.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag][0]
    blob = lambda dig: json.load(open(os.path.join(layout, "blobs", "sha256", dig.split(":")[1])))  # noqa: E731
    return blob(blob(m["digest"])["config"]["digest"])["config"]


def runnable_findings(target, *extra):
    """analyze's image-not-runnable findings of target, as (severity, path, message)."""
    p = lp("analyze", target, "--json", "-", "-q", *extra)
    assert p.returncode in (0, 1), (p.returncode, p.stderr)
    doc = json.loads(p.stdout)
    return [(f["severity"], f.get("path"), f["message"]) for f in doc["findings"]
            if f["code"] == "image-not-runnable"]


BOOTSTRAP_C = r"""
#include <stdio.h>
int main(int argc, char **argv) { printf("bootstrap %s\n", argc > 1 ? argv[1] : "-"); return 0; }
"""


def bootstrap_fn(d, static):
    need("cc")
    src = os.path.join(d, "fn-static" if static else "fn-dynamic")
    os.makedirs(src)
    c = os.path.join(d, "b.c")
    with open(c, "w") as f:
        f.write(BOOTSTRAP_C)
    run(["cc", *(["-static"] if static else []), "-O2", "-o", os.path.join(src, "bootstrap"), c])
    return src


def podman(root, *args, check=True):
    need("podman", "runc")
    return run(["podman", "--root", os.path.join(root, "root"), "--runroot", os.path.join(root, "runroot"),
                "--storage-driver=vfs", "--runtime", "runc", "--cgroup-manager=cgroupfs",
                "--events-backend=file", *args], check=check)


# ---- the runtime table ------------------------------------------------------

def doc_rows():
    rows = []
    for line in open(DOCS):
        m = re.match(r"\| `([^`]+)` \| (al2|al2023) \| (\d+\.\d+) \| (?:`([^`]+)`|none: give `--base`) \|$",
                     line.rstrip("\n"))
        if m:
            rows.append((m.group(1), m.group(4)))
        else:
            assert not line.startswith("| `"), "a runtimes.md row this test cannot read: %r" % line
    return rows


def test_runtime_table_matches_docs_and_auto_is_the_default_with_runtime():
    """Every row of docs/runtimes.md is what the binary does: with --runtime and no --base the base
    is the row's image (named in the offline error), or a 'none' row asks for --base."""
    rows = doc_rows()
    assert len(rows) >= 20, rows
    assert ("python3.12", "public.ecr.aws/lambda/python:3.12") in rows
    assert ("nodejs20.x", "public.ecr.aws/lambda/nodejs:20") in rows
    assert ("provided.al2023", "public.ecr.aws/lambda/provided:al2023") in rows
    d = tmpdir("table")
    src = os.path.join(d, "src")
    os.makedirs(src)
    open(os.path.join(src, "app.py"), "w").write("x = 1\n")
    for name, image in rows:
        out = os.path.join(d, "img-" + name)
        p = lp("container", src, "-o", out, "--runtime", name)
        lines = errlines(p)
        assert p.returncode == 1 and len(lines) == 1, (name, p.returncode, p.stderr)
        if image:
            assert "cannot obtain base image %s:" % image in lines[0], (name, lines)
        else:
            assert "no AWS base image is known for %s" % name in lines[0], (name, lines)
        assert "--base scratch" in lines[0], lines
        assert not os.path.exists(out), name
    # A runtime the table does not know is a usage error, as before.
    p = lp("container", src, "-o", os.path.join(d, "x"), "--runtime", "cobol1")
    assert p.returncode == 2, p.stderr


def test_base_auto_offline_fails_in_one_line_naming_the_reference():
    d = tmpdir("auto")
    src = os.path.join(d, "src")
    os.makedirs(src)
    open(os.path.join(src, "app.py"), "w").write("def handler(e, c):\n    return 1\n")
    out = os.path.join(d, "img")
    j = os.path.join(d, "r.json")
    for extra in (["--base", "auto"], []):
        p = lp("container", src, "-o", out, "--runtime", "python3.12", "--handler", "app.handler",
               "--json", j, *extra)
        lines = errlines(p)
        assert p.returncode == 1 and len(lines) == 1, (extra, p.returncode, p.stderr)
        line = lines[0]
        assert "public.ecr.aws/lambda/python:3.12" in line, line
        for alt in ("--base oci:DIR", "--base docker-archive:FILE", "--base scratch"):
            assert alt in line, (alt, line)
        assert not os.path.exists(out), os.listdir(d)
        # The JSON report is written on every exit: exit 1 and the same one line.
        rep = json.load(open(j))
        assert rep["exit_code"] == 1 and "public.ecr.aws/lambda/python:3.12" in rep["error"]["message"], rep
        assert rep["artifact"]["written"] is False, rep
        os.unlink(j)
        assert sorted(os.listdir(d)) == ["src"], os.listdir(d)
    # auto needs a runtime to pick from.
    p = lp("container", src, "-o", out, "--base", "auto")
    assert p.returncode == 2 and "--runtime" in p.stderr, p.stderr
    # An unknown transport is a usage error naming the forms.
    p = lp("container", src, "-o", out, "--base", "ftp://x")
    assert p.returncode == 2 and "docker://REF" in p.stderr and "scratch" in p.stderr, p.stderr
    # pack: the base only matters for the over-the-limit image; a function that fits still zips.
    p = lp("pack", src, "-o", os.path.join(d, "f.zip"), "--runtime", "python3.12", "-q")
    assert p.returncode == 0, p.stderr
    p = lp("pack", src, "-o", os.path.join(d, "f.zip"), "--base", "auto")
    assert p.returncode == 2, p.stderr


# ---- scratch images ---------------------------------------------------------

def test_scratch_dynamic_bootstrap_is_not_runnable():
    d = tmpdir("dyn")
    src = bootstrap_fn(d, static=False)
    interp = run(["readelf", "-l", os.path.join(src, "bootstrap")]).stdout
    loader = re.search(r"Requesting program interpreter: ([^\]]+)\]", interp).group(1)
    out = os.path.join(d, "img")
    for extra in ([], ["--runtime", "provided.al2023", "--base", "scratch"]):
        p = lp("container", src, "-o", out, *extra)
        assert p.returncode == 4, (extra, p.returncode, p.stderr)
        assert not os.path.exists(out), extra
        assert "would not start" in p.stderr and "[image-not-runnable]" in p.stderr, p.stderr
        assert "loader %s is not in the image" % loader in p.stderr, p.stderr
        assert "needs libc.so.6" in p.stderr, p.stderr
        assert "--no-check" in p.stderr, p.stderr
    # --no-check writes it, the findings as warnings; analyze then reports them as errors.
    p = lp("container", src, "-o", out, "--no-check")
    assert p.returncode == 0, p.stderr
    assert "warning" in p.stderr and "needs libc.so.6" in p.stderr, p.stderr
    found = runnable_findings(out)
    assert len(found) == 2 and all(s == "error" and path == "/var/task/bootstrap" for s, path, _ in found), found
    assert any(loader in m for _, _, m in found) and any("libc.so.6" in m for _, _, m in found), found
    # The libraries in the task root's lib/ are found there; the loader must still be at its path.
    shutil.rmtree(out)
    libc = run(["cc", "-print-file-name=libc.so.6"]).stdout.strip()
    os.makedirs(os.path.join(src, "lib"))
    shutil.copy(os.path.realpath(libc), os.path.join(src, "lib", "libc.so.6"))
    p = lp("container", src, "-o", out)
    assert p.returncode == 4, p.stderr
    assert loader in p.stderr and "libc.so.6, not found" not in p.stderr, p.stderr


def test_scratch_static_bootstrap_is_runnable():
    d = tmpdir("static")
    src = bootstrap_fn(d, static=True)
    for n, extra in enumerate(([], ["--runtime", "provided.al2023", "--base", "scratch"],
                               ["--runtime", "provided.al2", "--base", "scratch", "--handler", "x.y"])):
        out = os.path.join(d, "img%d" % n)
        p = lp("container", src, "-o", out, *extra)
        assert p.returncode == 0, (extra, p.stderr)
        assert "image-not-runnable" not in p.stderr, p.stderr
        assert runnable_findings(out) == [], out
    # provided.*: the bootstrap must be where the runtime looks, not only the entrypoint.
    os.rename(os.path.join(src, "bootstrap"), os.path.join(src, "main"))
    out = os.path.join(d, "img-main")
    p = lp("container", src, "-o", out, "--runtime", "provided.al2023", "--base", "scratch", "--entrypoint", "main")
    assert p.returncode == 4 and "no executable bootstrap in /var/task or /var/runtime" in p.stderr, p.stderr
    p = lp("container", src, "-o", out, "--entrypoint", "main")
    assert p.returncode == 0, p.stderr


def test_no_entrypoint_and_no_cmd_is_not_runnable():
    d = tmpdir("noep")
    src = os.path.join(d, "src")
    os.makedirs(src)
    open(os.path.join(src, "app.py"), "w").write("x = 1\n")
    out = os.path.join(d, "img")
    p = lp("container", src, "-o", out)
    assert p.returncode == 4 and not os.path.exists(out), (p.returncode, p.stderr)
    assert "no Entrypoint and no Cmd" in p.stderr, p.stderr
    # A base without one does not help; analyze says the same of the base itself.
    base = busybox_base(d)
    p = lp("container", src, "-o", out, "--base", "oci:%s:bb" % base)
    assert p.returncode == 4 and not os.path.exists(out) and "no Entrypoint and no Cmd" in p.stderr, p.stderr
    found = runnable_findings(base)
    assert len(found) == 1 and found[0][0] == "error" and "no Entrypoint and no Cmd" in found[0][2], found
    # A Cmd alone is enough (docker run semantics): the busybox shell is found through PATH and the symlink.
    base2 = busybox_base(d, "busybox-cmd", {"Env": ["PATH=/bin"], "Cmd": ["sh"]})
    assert runnable_findings(base2) == []
    p = lp("container", src, "-o", out, "--base", "oci:%s:bb" % base2)
    assert p.returncode == 0, p.stderr
    # Not on PATH: an error naming the PATH searched.
    base3 = busybox_base(d, "busybox-nopath", {"Env": ["PATH=/usr/bin"], "Cmd": ["sh"]})
    found = runnable_findings(base3)
    assert len(found) == 1 and "not found on the image's PATH (/usr/bin)" in found[0][2], found


# ---- a busybox base ---------------------------------------------------------

HANDLER_SH = b"""#!/bin/sh
echo "handled $1 in $(pwd) base=$BASE_VAR root=$LAMBDA_TASK_ROOT"
cat /var/task/msg.txt
"""


def test_busybox_base_with_a_handler_script_runs():
    d = tmpdir("bb")
    base = busybox_base(d)
    src = os.path.join(d, "fn")
    os.makedirs(src)
    with open(os.path.join(src, "handler.sh"), "wb") as f:
        f.write(HANDLER_SH)
    os.chmod(os.path.join(src, "handler.sh"), 0o755)
    open(os.path.join(src, "msg.txt"), "w").write("from-the-task-root\n")
    out = os.path.join(d, "img")
    p = lp("container", src, "-o", out, "--base", "oci:%s:bb" % base, "--entrypoint", "handler.sh",
           "--handler", "my.handler")
    assert p.returncode == 0, p.stderr
    cfg = image_config(out)
    assert cfg["Entrypoint"] == ["/var/task/handler.sh"] and cfg["Cmd"] == ["my.handler"], cfg
    assert "PATH=/bin" in cfg["Env"] and "BASE_VAR=1" in cfg["Env"], cfg
    assert runnable_findings(out) == []
    # The same check on the oci-archive and docker-archive forms of the image.
    need("skopeo")
    oa, da = os.path.join(d, "img-oci.tar"), os.path.join(d, "img-docker.tar")
    run(["skopeo", "copy", "oci:%s:latest" % out, "oci-archive:%s" % oa])
    run(["skopeo", "copy", "oci:%s:latest" % out, "docker-archive:%s:fn:latest" % da])
    assert runnable_findings(oa) == [] and runnable_findings(da) == []
    # It really starts: podman runs the layout (runc, vfs, no network).
    r = podman(d, "run", "--rm", "--network=none", *LIMITS, "oci:%s:latest" % out)
    assert "handled my.handler in /var/task base=1 root=/var/task" in r.stdout, (r.stdout, r.stderr)
    assert "from-the-task-root" in r.stdout, r.stdout
    # A script whose interpreter the image lacks is caught before anything is written.
    with open(os.path.join(src, "py.sh"), "wb") as f:
        f.write(b"#!/usr/bin/python3\nprint(1)\n")
    os.chmod(os.path.join(src, "py.sh"), 0o755)
    p = lp("container", src, "-o", os.path.join(d, "img2"), "--base", "oci:%s:bb" % base, "--entrypoint", "py.sh")
    assert p.returncode == 4 and "#! interpreter of /var/task/py.sh is not in the image" in p.stderr, p.stderr
    assert not os.path.exists(os.path.join(d, "img2"))


def test_base_entrypoint_cmd_workdir_env_kept_unless_overridden():
    d = tmpdir("keep")
    base = busybox_base(d, "bb2", {"Env": ["PATH=/bin", "BASE_VAR=1"], "Entrypoint": ["/bin/sh", "-c"],
                                   "Cmd": ["echo from-base-cmd"], "WorkingDir": "/tmp"})
    src = os.path.join(d, "fn")
    os.makedirs(src)
    open(os.path.join(src, "app.py"), "w").write("x = 1\n")
    out = os.path.join(d, "img")
    p = lp("container", src, "-o", out, "--base", "oci:%s:bb" % base)
    assert p.returncode == 0, p.stderr
    cfg = image_config(out)
    assert cfg["Entrypoint"] == ["/bin/sh", "-c"] and cfg["Cmd"] == ["echo from-base-cmd"], cfg
    assert cfg["WorkingDir"] == "/tmp" and cfg["Env"][:2] == ["PATH=/bin", "BASE_VAR=1"], cfg
    assert "LAMBDA_TASK_ROOT=/var/task" in cfg["Env"], cfg
    r = podman(d, "run", "--rm", "--network=none", *LIMITS, "oci:%s:latest" % out)
    assert r.stdout.strip() == "from-base-cmd", (r.stdout, r.stderr)
    # Each one overridden on its own; the rest stay the base's.
    out2 = os.path.join(d, "img2")
    p = lp("container", src, "-o", out2, "--base", "oci:%s:bb" % base, "--handler", "echo handler-cmd",
           "--env", "BASE_VAR=2", "--workdir", "/var/task", "--tag", "t2")
    assert p.returncode == 0, p.stderr
    cfg = image_config(out2, "t2")
    assert cfg["Entrypoint"] == ["/bin/sh", "-c"] and cfg["Cmd"] == ["echo handler-cmd"], cfg
    assert cfg["WorkingDir"] == "/var/task" and "BASE_VAR=2" in cfg["Env"] and "BASE_VAR=1" not in cfg["Env"], cfg
    r = podman(d, "run", "--rm", "--network=none", *LIMITS, "oci:%s:t2" % out2)
    assert r.stdout.strip() == "handler-cmd", (r.stdout, r.stderr)


def test_whiteouts_hide_the_entry_program():
    d = tmpdir("wh")
    cfg = {"Env": ["PATH=/bin"], "Entrypoint": ["/bin/sh"]}
    cases = {
        "whiteout": [("bin/.wh.busybox", "file", b"", 0o644)],
        "opaque": [("bin", "dir", None, 0o755), ("bin/.wh..wh..opq", "file", b"", 0o644),
                   ("bin/true", "file", b"x", 0o755)],
        "dir-whiteout": [(".wh.bin", "file", b"", 0o644)],
    }
    src = os.path.join(d, "fn")
    os.makedirs(src)
    open(os.path.join(src, "app.py"), "w").write("x = 1\n")
    for name, layer in cases.items():
        base = busybox_base(d, name, cfg, extra_layers=[layer])
        found = runnable_findings(base)
        assert len(found) == 1 and found[0][1] == "/bin/sh" and "not in the image" in found[0][2], (name, found)
        out = os.path.join(d, "img-" + name)
        p = lp("container", src, "-o", out, "--base", "oci:%s:bb" % base)
        assert p.returncode == 4 and not os.path.exists(out), (name, p.returncode, p.stderr)
        assert "/bin/sh: the entry program is not in the image" in p.stderr, (name, p.stderr)
    # The same image in the tar forms: analyze reads it through the same reader.
    need("skopeo")
    base = os.path.join(d, "whiteout")
    da, oa = os.path.join(d, "wh-docker.tar"), os.path.join(d, "wh-oci.tar")
    run(["skopeo", "copy", "oci:%s:bb" % base, "docker-archive:%s:wh:latest" % da])
    run(["skopeo", "copy", "oci:%s:bb" % base, "oci-archive:%s" % oa])
    for t in (da, oa):
        found = runnable_findings(t)
        assert len(found) == 1 and "not in the image" in found[0][2], (t, found)
    # A later layer bringing it back makes it runnable again, as the merged rootfs says.
    back = busybox_base(d, "back", cfg, extra_layers=[cases["whiteout"], [("bin/busybox", "file",
                                                                           open(BUSYBOX, "rb").read(), 0o755)]])
    assert runnable_findings(back) == []
    # Not executable: the mode is named.
    noexec = busybox_base(d, "noexec", cfg, extra_layers=[[("bin/busybox", "file", open(BUSYBOX, "rb").read(),
                                                            0o644)]])
    found = runnable_findings(noexec)
    assert len(found) == 1 and "(/bin/busybox) is not executable (mode 0644)" in found[0][2], found


def test_links_and_directories_resolved_inside_the_image():
    """Symbolic links (relative with .., absolute, through a linked directory) and hard links are
    followed inside the image's root, never the host's."""
    d = tmpdir("links")
    bb = open(BUSYBOX, "rb").read()
    layer = [("bin", "dir", None, 0o755), ("bin/busybox", "file", bb, 0o755),
             ("bin/sh", "hardlink", "bin/busybox", 0o755),
             ("usr", "dir", None, 0o755), ("usr/bin", "dir", None, 0o755),
             ("usr/bin/env", "symlink", "../../bin/busybox", 0o777),
             ("sbin", "symlink", "/bin", 0o777),
             ("loop", "symlink", "loop", 0o777),
             ("etc", "dir", None, 0o755), ("etc/passwd", "file", b"root:x:0:0::/:/bin/sh\n", 0o644)]
    ok = {"hardlink": ["/bin/sh"], "dotdot": ["/usr/bin/env"], "linked-dir": ["/sbin/busybox"],
          "path": ["env"]}
    for name, ep in ok.items():
        img = make_layout(d, name, [layer], {"Env": ["PATH=/nope:/usr/bin"], "Entrypoint": ep}, tag="bb")
        assert runnable_findings(img) == [], (name, runnable_findings(img))
    bad = {"loop": (["/loop"], "symbolic links"), "not-a-dir": (["/etc/passwd/x"], "not a directory"),
           "a-dir": (["/usr/bin"], "is a directory"), "host-only": (["/usr/bin/python3"], "not in the image")}
    for name, (ep, why) in bad.items():
        img = make_layout(d, name, [layer], {"Entrypoint": ep}, tag="bb")
        found = runnable_findings(img)
        assert len(found) == 1 and why in found[0][2], (name, found)


# ---- pack's over-the-limit image --------------------------------------------

def test_pack_fallback_image_takes_base_and_handler_and_is_checked():
    d = tmpdir("packfb")
    base = busybox_base(d)
    src = os.path.join(d, "src")
    os.makedirs(os.path.join(src, "data"))
    with open(os.path.join(src, "data", "blob.bin"), "wb") as f:
        f.truncate(262_144_000)
    with open(os.path.join(src, "handler.sh"), "wb") as f:
        f.write(HANDLER_SH)
    os.chmod(os.path.join(src, "handler.sh"), 0o755)
    out = os.path.join(d, "f.zip")
    # Scratch, nothing to start: exit 4 like any compatibility error, nothing written.
    p = lp("pack", src, "-o", out)
    assert p.returncode == 4, (p.returncode, p.stderr)
    assert "would not start" in p.stderr and "no Entrypoint and no Cmd" in p.stderr, p.stderr
    assert sorted(os.listdir(d)) == ["busybox", "src"], os.listdir(d)
    # --base, --entrypoint and --handler mean what they mean on container.
    p = lp("pack", src, "-o", out, "--base", "oci:%s:bb" % base, "--entrypoint", "handler.sh",
           "--handler", "fb.handler")
    assert p.returncode == 6, (p.returncode, p.stderr)
    layout = os.path.join(d, "f.oci")
    cfg = image_config(layout)
    assert cfg["Entrypoint"] == ["/var/task/handler.sh"] and cfg["Cmd"] == ["fb.handler"], cfg
    assert "BASE_VAR=1" in cfg["Env"], cfg
    assert runnable_findings(layout) == []


# ---- the libraries' own libraries, the machine --------------------------------

FOO_C = b'int bar(void);\nint foo(void) { return bar() + 1; }\n'
BAR_C = b'int bar(void) { return 41; }\n'
MAIN_C = b'#include <stdio.h>\nint foo(void);\nint main(void) { printf("foo=%d\\n", foo()); return 0; }\n'


def host_loader_libc(prog):
    """The host's loader (the program's PT_INTERP) and libc, as (image path, bytes) pairs."""
    interp = run(["readelf", "-l", prog]).stdout
    loader = re.search(r"Requesting program interpreter: ([^\]]+)\]", interp).group(1)
    libc = os.path.realpath(run(["cc", "-print-file-name=libc.so.6"]).stdout.strip())
    return loader, [(loader.lstrip("/"), open(os.path.realpath(loader), "rb").read()),
                    ("lib/x86_64-linux-gnu/libc.so.6", open(libc, "rb").read())]


def amd64_host_tmpdir(tag):
    """A scratch dir for a test that builds an amd64 image from the host's cc, loader and libc."""
    need("cc", "readelf")
    if os.uname().machine != "x86_64":
        raise Skip("builds an amd64 image from the host's loader and libc")
    return tmpdir(tag)


def dirs_of(paths):
    out = set()
    for p in paths:
        parts = p.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            out.add("/".join(parts[:i]))
    return [(x, "dir", None, 0o755) for x in sorted(out)]


def test_libraries_needed_by_libraries_are_found_or_named():
    """A bootstrap linked against libfoo.so, which itself needs libbar.so: libfoo.so is in the task
    root's lib/ (found), libbar.so is looked up through libfoo's own RUNPATH ($ORIGIN/../vendor, i.e.
    relative to the library, not the program), then the system directories."""
    d = amd64_host_tmpdir("closure")
    b = os.path.join(d, "build")
    os.makedirs(b)
    for n, c in (("foo.c", FOO_C), ("bar.c", BAR_C), ("main.c", MAIN_C)):
        open(os.path.join(b, n), "wb").write(c)
    run(["cc", "-shared", "-fPIC", "-o", os.path.join(b, "libbar.so"), "-Wl,-soname,libbar.so",
         os.path.join(b, "bar.c")])
    run(["cc", "-shared", "-fPIC", "-o", os.path.join(b, "libfoo.so"), "-Wl,-soname,libfoo.so",
         "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../vendor", os.path.join(b, "foo.c"), "-L" + b, "-lbar"])
    src = os.path.join(d, "fn")
    os.makedirs(os.path.join(src, "lib"))
    run(["cc", "-o", os.path.join(src, "bootstrap"), os.path.join(b, "main.c"), "-L" + b, "-lfoo",
         "-Wl,-rpath-link," + b])
    shutil.copy(os.path.join(b, "libfoo.so"), os.path.join(src, "lib", "libfoo.so"))
    assert "libbar.so" in run(["readelf", "-d", os.path.join(src, "lib", "libfoo.so")]).stdout
    assert "libbar.so" not in run(["readelf", "-d", os.path.join(src, "bootstrap")]).stdout
    loader, files = host_loader_libc(os.path.join(src, "bootstrap"))
    members = dirs_of([f for f, _ in files]) + [(f, "file", data, 0o755) for f, data in files]
    base = make_layout(d, "base", [members], {"Env": ["PATH=/var/task", "LD_LIBRARY_PATH=/var/task/lib"]}, tag="bb")
    out = os.path.join(d, "img")
    # libbar.so nowhere: exit 4, naming the library missing and the one that needs it.
    p = lp("container", src, "-o", out, "--base", "oci:%s:bb" % base, "--entrypoint", "bootstrap")
    assert p.returncode == 4, (p.returncode, p.stderr)
    assert "libbar.so (needed by /var/task/lib/libfoo.so)" in p.stderr, p.stderr
    assert "[image-not-runnable]" in p.stderr and not os.path.exists(out), p.stderr
    # Neither libc.so.6 (in the base) nor the loader (libc's own DT_NEEDED, loaded already) is missing.
    assert "libc.so.6" not in p.stderr and "ld-linux" not in p.stderr, p.stderr
    # analyze of the same image written anyway says the same.
    p = lp("container", src, "-o", out, "--base", "oci:%s:bb" % base, "--entrypoint", "bootstrap", "--no-check")
    assert p.returncode == 0, p.stderr
    found = runnable_findings(out)
    assert len(found) == 1 and "libbar.so (needed by /var/task/lib/libfoo.so)" in found[0][2], found
    shutil.rmtree(out)
    # Where the program's $ORIGIN would put it (/var/task/../vendor = /vendor) does not count.
    os.makedirs(os.path.join(src, "x"))
    p = lp("container", src, "-o", out, "--base", "oci:%s:bb" % base, "--entrypoint", "bootstrap")
    assert p.returncode == 4 and "libbar.so (needed by" in p.stderr, p.stderr
    shutil.rmtree(os.path.join(src, "x"))
    # Through libfoo's $ORIGIN: /var/task/lib/../vendor/libbar.so. Runnable, and it really runs.
    os.makedirs(os.path.join(src, "vendor"))
    shutil.copy(os.path.join(b, "libbar.so"), os.path.join(src, "vendor", "libbar.so"))
    p = lp("container", src, "-o", out, "--base", "oci:%s:bb" % base, "--entrypoint", "bootstrap")
    assert p.returncode == 0, p.stderr
    assert runnable_findings(out) == []
    r = podman(d, "run", "--rm", "--network=none", *LIMITS, "oci:%s:latest" % out)
    assert "foo=42" in r.stdout, (r.stdout, r.stderr)
    shutil.rmtree(out)
    # In a system directory of the base: found there too.
    shutil.rmtree(os.path.join(src, "vendor"))
    base2 = make_layout(d, "base2", [members, [("usr", "dir", None, 0o755), ("usr/lib", "dir", None, 0o755),
                                               ("usr/lib/libbar.so", "file",
                                                open(os.path.join(b, "libbar.so"), "rb").read(), 0o755)]],
                        {"Env": ["PATH=/var/task", "LD_LIBRARY_PATH=/var/task/lib"]}, tag="bb")
    p = lp("container", src, "-o", out, "--base", "oci:%s:bb" % base2, "--entrypoint", "bootstrap")
    assert p.returncode == 0, p.stderr
    # A whiteout of it in a later layer: missing again.
    base3 = make_layout(d, "base3", [members, [("usr", "dir", None, 0o755), ("usr/lib", "dir", None, 0o755),
                                               ("usr/lib/libbar.so", "file",
                                                open(os.path.join(b, "libbar.so"), "rb").read(), 0o755)],
                                     [("usr/lib/.wh.libbar.so", "file", b"", 0o644)]],
                        {"Env": ["PATH=/var/task", "LD_LIBRARY_PATH=/var/task/lib"]}, tag="bb")
    p = lp("container", src, "-o", os.path.join(d, "img3"), "--base", "oci:%s:bb" % base3,
           "--entrypoint", "bootstrap")
    assert p.returncode == 4 and "libbar.so (needed by /var/task/lib/libfoo.so)" in p.stderr, p.stderr
    # The program's DT_RPATH also serves its libraries' lookups; its DT_RUNPATH does not (ld.so's rule,
    # which podman's run confirms): libfoo.so without a RUNPATH of its own, libbar.so in /opt/deps.
    run(["cc", "-shared", "-fPIC", "-o", os.path.join(src, "lib", "libfoo.so"), "-Wl,-soname,libfoo.so",
         os.path.join(b, "foo.c"), "-L" + b, "-lbar"])
    deps = [("opt", "dir", None, 0o755), ("opt/deps", "dir", None, 0o755),
            ("opt/deps/libbar.so", "file", open(os.path.join(b, "libbar.so"), "rb").read(), 0o755)]
    base4 = make_layout(d, "base4", [members, deps], {"Env": ["PATH=/var/task", "LD_LIBRARY_PATH=/var/task/lib"]},
                        tag="bb")
    for tags, ok in (("--disable-new-dtags", True), ("--enable-new-dtags", False)):
        run(["cc", "-o", os.path.join(src, "bootstrap"), os.path.join(b, "main.c"), "-L" + b, "-lfoo",
             "-Wl,-rpath-link," + b, "-Wl,%s,-rpath,/opt/deps" % tags])
        out4 = os.path.join(d, "img4" + tags)
        p = lp("container", src, "-o", out4, "--base", "oci:%s:bb" % base4, "--entrypoint", "bootstrap", "--no-check")
        assert p.returncode == 0, p.stderr
        found = runnable_findings(out4)
        r = podman(d, "run", "--rm", "--network=none", *LIMITS, "oci:%s:latest" % out4, check=False)
        if ok:
            assert found == [] and "foo=42" in r.stdout, (tags, found, r.stdout, r.stderr)
        else:
            assert len(found) == 1 and "libbar.so (needed by /var/task/lib/libfoo.so)" in found[0][2], found
            assert r.returncode != 0 and "libbar.so" in r.stderr, (r.returncode, r.stderr)


def test_other_machine_entry_program_is_not_runnable():
    """An arm64 bootstrap in an amd64 image fails with "exec format error" on start: caught."""
    need("aarch64-linux-gnu-gcc")
    d = tmpdir("arch")
    c = os.path.join(d, "b.c")
    open(c, "w").write(BOOTSTRAP_C)
    arm = os.path.join(d, "bootstrap")
    run(["aarch64-linux-gnu-gcc", "-static", "-O2", "-o", arm, c])
    data = open(arm, "rb").read()
    layer = [("var", "dir", None, 0o755), ("var/task", "dir", None, 0o755),
             ("var/task/bootstrap", "file", data, 0o755)]
    img = make_layout(d, "amd64", [layer], {"Entrypoint": ["/var/task/bootstrap"]}, tag="bb")
    found = runnable_findings(img)
    assert len(found) == 1, found
    assert "is arm64 machine code in an amd64 image" in found[0][2] and "exec format error" in found[0][2], found
    # The same bytes in an arm64 image are fine (static: nothing else to find).
    arm_img = make_layout(d, "arm64", [layer], {"Entrypoint": ["/var/task/bootstrap"]}, tag="bb", arch="arm64")
    assert runnable_findings(arm_img) == []
    # container --arch x86_64 (wrong-arch refuses it first; --no-check writes it): the check names it too.
    src = os.path.join(d, "fn")
    os.makedirs(src)
    shutil.copy(arm, os.path.join(src, "bootstrap"))
    out = os.path.join(d, "img")
    p = lp("container", src, "-o", out, "--arch", "x86_64", "--no-check")
    assert p.returncode == 0, (p.returncode, p.stderr)
    assert "is arm64 machine code in an amd64 image" in p.stderr and "[image-not-runnable]" in p.stderr, p.stderr
    found = runnable_findings(out)
    assert len(found) == 1 and found[0][0] == "error" and "exec format error" in found[0][2], found


def test_script_interpreters_followed_as_the_kernel_does():
    """A #! interpreter that is a script itself is followed (its interpreter must be there too), up to
    the kernel's limit: 5 scripts then a binary run; a 6th level fails (ELOOP), as a self-naming script."""
    d = tmpdir("chain")
    base = busybox_base(d)
    src = os.path.join(d, "fn")
    os.makedirs(src)

    def script(name, interp):
        with open(os.path.join(src, name), "w") as f:
            f.write("#!%s\necho %s\n" % (interp, name))
        os.chmod(os.path.join(src, name), 0o755)

    script("s0", "/bin/sh")
    for i in range(1, 6):
        script("s%d" % i, "/var/task/s%d" % (i - 1))
    script("self", "/var/task/self")
    script("py", "/usr/bin/python3")
    script("via-py", "/var/task/py")
    out = os.path.join(d, "img")
    for ep in ("s0", "s1", "s4"):
        p = lp("container", src, "-o", out, "--base", "oci:%s:bb" % base, "--entrypoint", ep)
        assert p.returncode == 0, (ep, p.stderr)
        shutil.rmtree(out)
    for ep, why in (("s5", "nest more than 5 deep"), ("self", "nest more than 5 deep"),
                    ("via-py", "the #! interpreter of /var/task/py is not in the image")):
        p = lp("container", src, "-o", out, "--base", "oci:%s:bb" % base, "--entrypoint", ep)
        assert p.returncode == 4 and why in p.stderr and not os.path.exists(out), (ep, p.returncode, p.stderr)
    # The kernel agrees: s4 runs, s5 does not (podman runs the image written anyway).
    p = lp("container", src, "-o", out, "--base", "oci:%s:bb" % base, "--entrypoint", "s5", "--no-check")
    assert p.returncode == 0, p.stderr
    r = podman(d, "run", "--rm", "--network=none", *LIMITS, "--entrypoint", "/var/task/s4",
               "oci:%s:latest" % out)
    assert "s0" in r.stdout, (r.stdout, r.stderr)
    r = podman(d, "run", "--rm", "--network=none", *LIMITS, "oci:%s:latest" % out, check=False)
    assert r.returncode != 0 and "too many levels of symbolic links" in r.stderr.lower(), (r.returncode, r.stderr)


def test_warm_check_reads_no_base_layer_and_decides_the_same():
    """The check's view of a base (its members, and the bytes of the program, loader and libraries
    it reads) is kept in the build cache by layer digest: a warm build reads no base layer, and
    still finds what is missing and what is there, exactly as a cold one."""
    d = amd64_host_tmpdir("warmcheck")
    src = os.path.join(d, "fn")
    os.makedirs(src)
    c = os.path.join(d, "main.c")
    open(c, "wb").write(b"int main(void) { return 0; }\n")
    prog = os.path.join(d, "prog")
    run(["cc", "-O2", "-o", prog, c])
    loader, files = host_loader_libc(prog)
    files.append(("usr/bin/prog", open(prog, "rb").read()))
    members = dirs_of([f for f, _ in files]) + [(f, "file", data, 0o755) for f, data in files]
    base = make_layout(d, "base", [members], {"Entrypoint": ["/usr/bin/prog"]}, tag="wc")
    open(os.path.join(src, "app.py"), "w").write("def handler(e, c):\n    return 1\n")
    cache = os.path.join(d, "cache")
    time.sleep(2.1)		# let the stat index trust the base's blobs
    stats = []
    for i in range(3):
        with open(os.path.join(src, "app.py"), "a") as f:
            f.write("# %d\n" % i)
        p = lp("container", src, "-o", os.path.join(d, "img%d" % i), "--base", "oci:%s:wc" % base,
               "--cache-dir", cache, "-v")
        assert p.returncode == 0, p.stderr
        m = re.search(r"cache\s+(\d+) reused, (\d+) computed", p.stderr)
        assert m, p.stderr
        stats.append((int(m.group(1)), int(m.group(2))))
    # Cold: nothing reused. Warm: the base layer, its listing and the bytes of the program and of
    # libc (the loader is only looked up) come from the cache, only the code layer is built.
    assert stats[0][0] == 0, stats
    assert stats[1][0] == 4 and stats[1][1] == 1 and stats[2] == stats[1], stats
    # The same image as an uncached build.
    lp("container", src, "-o", os.path.join(d, "ref"), "--base", "oci:%s:wc" % base, "--no-cache",
       check=True)
    for sub, _, names in os.walk(os.path.join(d, "ref")):
        for n in names:
            a = os.path.join(sub, n)
            b = os.path.join(d, "img2", os.path.relpath(a, os.path.join(d, "ref")))
            assert open(a, "rb").read() == open(b, "rb").read(), a
    # A base whose program lost its loader: the warm check still says so, naming it.
    base2 = make_layout(d, "base2", [dirs_of(["usr/bin/prog"]) + [("usr/bin/prog", "file", files[-1][1], 0o755)]],
                        {"Entrypoint": ["/usr/bin/prog"]}, tag="wc")
    time.sleep(2.1)
    for i in range(2):
        p = lp("container", src, "-o", os.path.join(d, "bad%d" % i), "--base", "oci:%s:wc" % base2,
               "--cache-dir", cache, "-v")
        assert p.returncode == 4, (i, p.returncode, p.stderr)
        assert loader in p.stderr and "[image-not-runnable]" in p.stderr, p.stderr


if __name__ == "__main__":
    import atexit
    atexit.register(_cleanup)
    main(globals())
