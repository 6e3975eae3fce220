"""Smoke test of the registry client against Debian's docker-registry (plain
HTTP on 127.0.0.1, a random port, temporary storage): pull a base pushed with
skopeo, build on it, push the result, check with skopeo that the registry
holds exactly the local layout's digests, that a second push sends no blob,
that a digest base builds again from the cache with the registry stopped, and
that a Docker schema 2 base and an image index are understood.

The full fixture (TLS, Basic and Bearer auth, faulty registries) is
tests/registry/test_registry.py.

usage: test_registry_smoke.py LAMBDAPACK
"""
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import lptest  # noqa: E402
from lptest import Skip, main, run  # noqa: E402

LP = os.path.abspath(sys.argv[1])
_made = []


def need(*tools):
    for t in tools:
        if not shutil.which(t):
            raise Skip("REQUIRED TOOL MISSING: %s (apt-get install it); this test did NOT run" % t)


def tmpdir(tag):
    d = lptest.tmpdir("reg-" + tag)
    _made.append(d)
    return d


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Registry:
    """docker-registry on 127.0.0.1:PORT; its access log (stderr) goes to a file we can count in."""

    def __init__(self, d, port=None):
        self.dir = d
        self.port = port or free_port()
        self.log = os.path.join(d, "registry-%d.log" % self.port)
        self.cfg = os.path.join(d, "registry.yml")
        with open(self.cfg, "w") as f:
            f.write("version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n"
                    "storage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n"
                    "http:\n  addr: 127.0.0.1:%d\n" % (os.path.join(d, "storage"), self.port))
        self.proc = None

    def start(self):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(["docker-registry", "serve", self.cfg], stdout=self.logf, stderr=self.logf)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise AssertionError("docker-registry exited: %s" % open(self.log).read())
                time.sleep(0.1)
        raise AssertionError("docker-registry did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.proc = None
        self.logf.close()

    def mark(self):
        return os.path.getsize(self.log)

    def requests_since(self, mark):
        """The access-log request lines ("METHOD /path") written after mark."""
        with open(self.log, "rb") as f:
            f.seek(mark)
            text = f.read().decode("utf-8", "replace")
        return re.findall(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) (/v2/[^ "]*)', text)

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port


def make_busybox_base(d, tag="bb"):
    """An OCI base image built with umoci from a busybox-static root."""
    need("umoci", "busybox")
    layout = os.path.join(d, "base")
    run(["umoci", "init", "--layout", layout])
    run(["umoci", "new", "--image", "%s:%s" % (layout, tag)])
    bundle = os.path.join(d, "base-bundle")
    run(["umoci", "unpack", "--rootless", "--image", "%s:%s" % (layout, tag), bundle])
    rootfs = os.path.join(bundle, "rootfs")
    os.makedirs(os.path.join(rootfs, "bin"), exist_ok=True)
    shutil.copy(shutil.which("busybox"), os.path.join(rootfs, "bin/busybox"))
    for tool in ("sh", "cat", "ls", "env"):
        os.symlink("busybox", os.path.join(rootfs, "bin", tool))
    run(["umoci", "repack", "--image", "%s:%s" % (layout, tag), bundle])
    run(["umoci", "config", "--image", "%s:%s" % (layout, tag), "--config.env", "PATH=/bin",
         "--config.entrypoint", "/bin/sh", "--architecture", "amd64", "--os", "linux"])
    run(["umoci", "gc", "--layout", layout])
    return layout


def make_src(d, text="print('hi')\n"):
    src = os.path.join(d, "src")
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, "app.py"), "w") as f:
        f.write(text)
    with open(os.path.join(src, "data.bin"), "wb") as f:
        f.write(hashlib.sha256(text.encode()).digest() * 4096)
    return src


def lp(*args, check=True, env=None):
    e = dict(os.environ)
    e.pop("SOURCE_DATE_EPOCH", None)
    e["LAMBDAPACK_REGISTRY_TIMEOUT"] = "20"
    if env:
        e.update(env)
    return run([LP, *map(str, args)], check=check, env=e)


def layout_image(out, tag="latest"):
    with open(os.path.join(out, "index.json")) as f:
        idx = json.load(f)
    for m in idx["manifests"]:
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            with open(os.path.join(out, "blobs/sha256", m["digest"][7:])) as f:
                return m["digest"], json.load(f)
    raise AssertionError("no %s in %s" % (tag, out))


def uploads(reqs):
    return [p for m, p in reqs if m in ("PUT", "PATCH") and "/blobs/uploads/" in p]


def test_pull_build_push_cache():
    need("docker-registry", "skopeo")
    d = tmpdir("smoke")
    cache = os.path.join(d, "cache")
    base = make_busybox_base(d)
    reg = Registry(d).start()
    try:
        run(["skopeo", "copy", "--dest-tls-verify=false", "oci:%s:bb" % base, "docker://%s/base/busybox:1" % reg.host])
        bdigest = json.loads(run(["skopeo", "inspect", "--tls-verify=false",
                                  "docker://%s/base/busybox:1" % reg.host]).stdout)["Digest"]
        src = make_src(d)
        out = os.path.join(d, "img")
        mark = reg.mark()
        p = lp("container", src, "-o", out, "--base", "docker://%s/base/busybox:1" % reg.host,
               "--push", "docker://%s/fn:v1" % reg.host, "--tls-verify=false", "--cache-dir", cache,
               "--json", os.path.join(d, "r.json"))
        mdigest, manifest = layout_image(out)
        pushed = p.stdout.strip()
        assert pushed == "%s/fn@%s" % (reg.host, mdigest), (pushed, mdigest)
        rep = json.load(open(os.path.join(d, "r.json")))
        assert rep["push"]["reference"] == pushed and rep["push"]["digest"] == mdigest, rep["push"]
        assert rep["base_image"]["manifest_digest"] == bdigest, rep["base_image"]
        # The base layers were mounted from base/busybox, not sent again.
        n_base = len(json.load(open(os.path.join(base, "blobs/sha256",
                                                 json.load(open(os.path.join(base, "index.json")))
                                                 ["manifests"][0]["digest"][7:])))["layers"])
        assert rep["push"]["blobs_mounted"] == n_base, rep["push"]
        reqs = reg.requests_since(mark)
        assert any(m == "POST" and "mount=" in pth for m, pth in reqs), reqs
        # skopeo sees exactly our digests, and copies the image back byte for byte.
        info = json.loads(run(["skopeo", "inspect", "--tls-verify=false", "docker://" + pushed]).stdout)
        assert info["Digest"] == mdigest
        assert info["Layers"] == [l["digest"] for l in manifest["layers"]]
        tinfo = json.loads(run(["skopeo", "inspect", "--tls-verify=false", "docker://%s/fn:v1" % reg.host]).stdout)
        assert tinfo["Digest"] == mdigest
        back = os.path.join(d, "back")
        run(["skopeo", "copy", "--src-tls-verify=false", "docker://" + pushed, "oci:%s:x" % back])
        bd, bman = layout_image(back, "x")
        assert bd == mdigest and bman == manifest
        for l in manifest["layers"] + [manifest["config"]]:
            a = open(os.path.join(out, "blobs/sha256", l["digest"][7:]), "rb").read()
            assert hashlib.sha256(a).hexdigest() == l["digest"][7:]
            assert open(os.path.join(back, "blobs/sha256", l["digest"][7:]), "rb").read() == a

        # A second push of the same image uploads no blob: HEADs, then the manifest.
        mark = reg.mark()
        p = lp("container", src, "-o", os.path.join(d, "img2"), "--base",
               "docker://%s/base/busybox:1" % reg.host, "--push", "docker://%s/fn:v1" % reg.host,
               "--tls-verify=false", "--cache-dir", cache, "--json", "-")
        rep = json.loads(p.stdout)
        assert rep["push"]["blobs_uploaded"] == 0 and rep["push"]["bytes_uploaded"] == 0, rep["push"]
        assert rep["push"]["blobs_present"] == rep["push"]["blobs"], rep["push"]
        reqs = reg.requests_since(mark)
        assert not uploads(reqs) and not any(m == "POST" for m, _ in reqs), reqs
        assert not any(m == "GET" and "/blobs/" in pth for m, pth in reqs), "base blobs came from the cache"

        # A code-only change uploads the code layer and the config, nothing else.
        src2 = make_src(os.path.join(d, "v2"), "print('v2')\n")
        p = lp("container", src2, "-o", os.path.join(d, "img3"), "--base",
               "docker://%s/base/busybox:1" % reg.host, "--push", "docker://%s/fn:v2" % reg.host,
               "--tls-verify=false", "--cache-dir", cache, "--json", "-")
        rep = json.loads(p.stdout)
        assert rep["push"]["blobs_uploaded"] == 2, rep["push"]
    finally:
        reg.stop()

    # Registry stopped: the digest base still builds, all from the cache.
    out4 = os.path.join(d, "img4")
    p = lp("container", src, "-o", out4, "--base", "docker://%s/base/busybox@%s" % (reg.host, bdigest),
           "--tls-verify=false", "--cache-dir", cache)
    assert layout_image(out4)[0] == mdigest, "same inputs, same image"
    # A tag falls back to what it resolved to before, with a warning.
    p = lp("container", src, "-o", os.path.join(d, "img5"), "--base", "docker://%s/base/busybox:1" % reg.host,
           "--tls-verify=false", "--cache-dir", cache)
    assert "warning: registry unreachable" in p.stderr, p.stderr
    # A tag never seen, with the registry down: one line naming registry and repository, exit 1.
    p = lp("container", src, "-o", os.path.join(d, "img6"), "--base", "docker://%s/base/other:1" % reg.host,
           "--tls-verify=false", "--cache-dir", cache, check=False)
    assert p.returncode == 1, (p.returncode, p.stderr)
    lines = [l for l in p.stderr.splitlines() if "error:" in l]
    assert len(lines) == 1 and reg.host in lines[0] and "base/other" in lines[0], p.stderr
    assert "refused" in lines[0], lines
    assert not os.path.exists(os.path.join(d, "img6"))


def test_docker_schema2_and_index():
    """A base pushed as Docker schema 2, and a two-architecture OCI index picked by --arch."""
    need("docker-registry", "skopeo")
    d = tmpdir("formats")
    cache = os.path.join(d, "cache")
    base = make_busybox_base(d)
    reg = Registry(d).start()
    try:
        ref = "docker://%s/v2s2/busybox:1" % reg.host
        run(["skopeo", "copy", "--dest-tls-verify=false", "--format", "v2s2", "oci:%s:bb" % base, ref])
        raw = json.loads(run(["skopeo", "inspect", "--raw", "--tls-verify=false", ref]).stdout)
        assert raw["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
        src = make_src(d)
        out = os.path.join(d, "img")
        lp("container", src, "-o", out, "--base", ref, "--tls-verify=false", "--cache-dir", cache)
        _, manifest = layout_image(out)
        assert [l["digest"] for l in manifest["layers"][:len(raw["layers"])]] == \
            [l["digest"] for l in raw["layers"]]

        # An index: amd64 is the busybox base, arm64 a second image (its config says arm64).
        arm = os.path.join(d, "arm")
        lp("container", make_src(os.path.join(d, "armsrc"), "arm\n"), "-o", arm, "--arch", "arm64", "-q")
        idx_layout = os.path.join(d, "multi")
        shutil.copytree(base, idx_layout)
        amd_desc = json.load(open(os.path.join(base, "index.json")))["manifests"][0]
        arm_desc = json.load(open(os.path.join(arm, "index.json")))["manifests"][0]
        for blob in os.listdir(os.path.join(arm, "blobs/sha256")):
            shutil.copy(os.path.join(arm, "blobs/sha256", blob), os.path.join(idx_layout, "blobs/sha256", blob))
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
            {"mediaType": amd_desc["mediaType"], "digest": amd_desc["digest"], "size": amd_desc["size"],
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": arm_desc["mediaType"], "digest": arm_desc["digest"], "size": arm_desc["size"],
             "platform": {"architecture": "arm64", "os": "linux"}}]}
        ib = json.dumps(index).encode()
        ih = hashlib.sha256(ib).hexdigest()
        open(os.path.join(idx_layout, "blobs/sha256", ih), "wb").write(ib)
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": index["mediaType"], "digest": "sha256:" + ih,
                   "size": len(ib), "annotations": {"org.opencontainers.image.ref.name": "multi"}}]},
                  open(os.path.join(idx_layout, "index.json"), "w"))
        mref = "docker://%s/multi/base:1" % reg.host
        run(["skopeo", "copy", "--all", "--dest-tls-verify=false", "oci:%s:multi" % idx_layout, mref])
        for arch, want in (("amd64", amd_desc["digest"]), ("arm64", arm_desc["digest"])):
            p = lp("container", src, "-o", os.path.join(d, "m-" + arch), "--arch", arch, "--base", mref,
                   "--tls-verify=false", "--cache-dir", cache, "--json", "-")
            rep = json.loads(p.stdout)
            assert rep["base_image"]["manifest_digest"] == want, (arch, rep["base_image"])
            assert rep["image"]["architecture"] == arch, rep["image"]
    finally:
        reg.stop()


def test_pack_fallback_push():
    """pack over the zip limit writes an image and, with --push, sends it; a zip is not pushed."""
    need("docker-registry", "skopeo")
    d = tmpdir("pack")
    src = os.path.join(d, "src")
    os.makedirs(src)
    with open(os.path.join(src, "app.py"), "w") as f:
        f.write("def handler(e, c):\n    return 1\n")
    with open(os.path.join(src, "big.bin"), "wb") as f:
        f.truncate(262_144_001)  # sparse: over the unzipped limit, cheap on disk
    reg = Registry(d).start()
    try:
        p = lp("pack", src, "-o", os.path.join(d, "fn.zip"), "--push", "docker://%s/packed:1" % reg.host,
               "--tls-verify=false", "--json", os.path.join(d, "r.json"), check=False)
        assert p.returncode == 6, (p.returncode, p.stderr)
        rep = json.load(open(os.path.join(d, "r.json")))
        mdigest, manifest = layout_image(os.path.join(d, "fn.oci"))
        assert p.stdout.strip() == "%s/packed@%s" % (reg.host, mdigest), (p.stdout, mdigest)
        assert rep["push"]["digest"] == mdigest and rep["push"]["blobs_uploaded"] == len(manifest["layers"]) + 1
        info = json.loads(run(["skopeo", "inspect", "--tls-verify=false", "docker://%s/packed:1" % reg.host]).stdout)
        assert info["Digest"] == mdigest and info["Layers"] == [l["digest"] for l in manifest["layers"]]
        # Small enough for a zip: nothing to push, said as a warning.
        os.unlink(os.path.join(src, "big.bin"))
        mark = reg.mark()
        p = lp("pack", src, "-o", os.path.join(d, "small.zip"), "--push", "docker://%s/packed:2" % reg.host,
               "--tls-verify=false")
        assert "no image to push" in p.stderr, p.stderr
        assert not reg.requests_since(mark)
    finally:
        reg.stop()


def test_bad_references():
    d = tmpdir("refs")
    src = make_src(d)
    for ref, word in (("docker://Example.com/Foo", "lowercase"),
                      ("docker://user:secret@example.com/foo", "credentials"),
                      ("docker://example.com/foo@sha256:abc", "digest"),
                      ("docker:example.com/foo", "docker://")):
        p = lp("container", src, "-o", os.path.join(d, "o"), "--base", ref, "--cache-dir", os.path.join(d, "c"),
               check=False)
        assert p.returncode in (1, 2) and word in p.stderr, (ref, p.returncode, p.stderr)
        assert "secret" not in p.stderr + p.stdout


if __name__ == "__main__":
    try:
        main(globals())
    finally:
        if not os.environ.get("LP_KEEP"):
            for t in _made:
                shutil.rmtree(t, ignore_errors=True)
