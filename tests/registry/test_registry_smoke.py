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
import base64
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
        lp("container", make_src(os.path.join(d, "armsrc"), "arm\n"), "-o", arm, "--arch", "arm64", "-q", "--no-check")
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
                   "--tls-verify=false", "--cache-dir", cache, "--json", "-", "--no-check")
            rep = json.loads(p.stdout)
            assert rep["base_image"]["manifest_digest"] == want, (arch, rep["base_image"])
            assert rep["image"]["architecture"] == arch, rep["image"]
    finally:
        reg.stop()


def test_large_blob_goes_in_chunks():
    """A layer above 32 MiB is sent as PATCH chunks streamed from the file, then one PUT."""
    need("docker-registry", "skopeo")
    d = tmpdir("chunks")
    src = os.path.join(d, "src")
    os.makedirs(src)
    with open(os.path.join(src, "big.bin"), "wb") as f:
        f.write(os.urandom(40 << 20))  # incompressible: the code layer stays above 32 MiB
    reg = Registry(d).start()
    try:
        out = os.path.join(d, "img")
        mark = reg.mark()
        p = lp("container", src, "-o", out, "--push", "docker://%s/big:1" % reg.host, "--tls-verify=false",
               "--compression", "none", "--json", "-", "--no-check")
        rep = json.loads(p.stdout)
        mdigest, manifest = layout_image(out)
        big = [l for l in manifest["layers"] if l["size"] > 32 << 20]
        assert big, manifest
        patches = [pth for m, pth in reg.requests_since(mark) if m == "PATCH"]
        assert len(patches) == 2, patches
        assert rep["push"]["bytes_uploaded"] == sum(l["size"] for l in manifest["layers"]) + manifest["config"]["size"]
        back = os.path.join(d, "back")
        run(["skopeo", "copy", "--preserve-digests", "--src-tls-verify=false", "docker://%s/big@%s" % (reg.host, mdigest), "oci:%s:x" % back])
        for l in big:
            assert open(os.path.join(back, "blobs/sha256", l["digest"][7:]), "rb").read() == \
                open(os.path.join(out, "blobs/sha256", l["digest"][7:]), "rb").read()
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
               "--tls-verify=false", "--json", os.path.join(d, "r.json"), "--no-check", check=False)
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


def make_tls(d):
    """A CA and a server certificate for 127.0.0.1 (IP SAN), made with openssl."""
    need("openssl")
    ca_key, ca, key, csr, crt = (os.path.join(d, n) for n in ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem"))
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2",
         "-subj", "/CN=lambdapack test CA"])
    run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"])
    ext = os.path.join(d, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", crt,
         "-days", "2", "-extfile", ext])
    return ca, crt, key


def test_tls_basic_auth():
    """docker-registry over TLS (a CA of the test's, given with SSL_CERT_FILE) with htpasswd Basic
    auth: credentials from REGISTRY_AUTH_FILE work and never show; none -> 401, one line, exit 1;
    an unknown CA is refused."""
    need("docker-registry", "skopeo", "htpasswd")
    d = tmpdir("tls")
    ca, crt, key = make_tls(d)
    hp = os.path.join(d, "htpasswd")
    with open(hp, "w") as f:
        f.write(run(["htpasswd", "-Bbn", "alice", "pw-Zq81xK"]).stdout)
    reg = Registry(d)
    with open(reg.cfg, "a") as f:
        f.write("  tls:\n    certificate: %s\n    key: %s\nauth:\n  htpasswd:\n    realm: test\n    path: %s\n"
                % (crt, key, hp))
    reg.start()
    auth = os.path.join(d, "auth.json")
    with open(auth, "w") as f:
        json.dump({"auths": {reg.host: {"auth": base64.b64encode(b"alice:pw-Zq81xK").decode()}}}, f)
    env = {"SSL_CERT_FILE": ca, "REGISTRY_AUTH_FILE": auth, "DOCKER_CONFIG": os.path.join(d, "nodocker")}
    try:
        base = make_busybox_base(d)
        run(["skopeo", "copy", "--dest-creds", "alice:pw-Zq81xK", "--dest-tls-verify=false",
             "oci:%s:bb" % base, "docker://%s/base:1" % reg.host])
        src = make_src(d)
        p = lp("container", src, "-o", os.path.join(d, "img"), "--base", "docker://%s/base:1" % reg.host,
               "--push", "docker://%s/fn:1" % reg.host, "--cache-dir", os.path.join(d, "c"), "--json", "-", env=env)
        rep = json.loads(p.stdout)
        assert rep["push"]["blobs_mounted"] >= 1, rep["push"]
        for secret in ("pw-Zq81xK", base64.b64encode(b"alice:pw-Zq81xK").decode()):
            assert secret not in p.stdout + p.stderr
        # No credentials: 401, said once, naming the registry and the repository.
        env2 = dict(env, REGISTRY_AUTH_FILE=os.path.join(d, "none.json"))
        p = lp("container", src, "-o", os.path.join(d, "img2"), "--base", "docker://%s/base:1" % reg.host,
               "--cache-dir", os.path.join(d, "c2"), env=env2, check=False)
        errs = [l for l in p.stderr.splitlines() if "error:" in l]
        assert p.returncode == 1 and len(errs) == 1, p.stderr
        assert "401" in errs[0] and reg.host in errs[0] and "repository base" in errs[0], errs
        # Wrong password: rejected, and the wrong one is not printed either.
        with open(os.path.join(d, "bad.json"), "w") as f:
            json.dump({"auths": {reg.host: {"username": "alice", "password": "nope-7Hq"}}}, f)
        p = lp("container", src, "-o", os.path.join(d, "img3"), "--base", "docker://%s/base:1" % reg.host,
               "--cache-dir", os.path.join(d, "c3"), env=dict(env, REGISTRY_AUTH_FILE=os.path.join(d, "bad.json")),
               check=False)
        assert p.returncode == 1 and "rejected" in p.stderr and "nope-7Hq" not in p.stderr, p.stderr
        # The test CA not given: the certificate is not trusted.
        p = lp("container", src, "-o", os.path.join(d, "img4"), "--base", "docker://%s/base:1" % reg.host,
               "--cache-dir", os.path.join(d, "c4"), env=dict(env, SSL_CERT_FILE="/etc/ssl/certs/ca-certificates.crt"),
               check=False)
        assert p.returncode == 1 and "certificate" in p.stderr, p.stderr
    finally:
        reg.stop()


class BearerProxy:
    """A token server and a registry front that wants its token (the Bearer flow): pulls are
    anonymous, pushes need user/password at the token server. Requests go on to docker-registry."""

    def __init__(self, backend, user, password):
        import http.server
        import threading
        import urllib.parse
        import http.client
        proxy = self
        self.tokens = {}
        self.token_requests = []
        self.forwarded = []

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _send(self, code, body=b"", headers=()):
                self.send_response(code)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def handle_one(self):
                u = urllib.parse.urlsplit(self.path)
                if u.path == "/token":
                    q = urllib.parse.parse_qs(u.query)
                    scopes = q.get("scope", [])
                    proxy.token_requests.append((scopes, self.headers.get("Authorization")))
                    authed = self.headers.get("Authorization") == "Basic " + base64.b64encode(
                        ("%s:%s" % (user, password)).encode()).decode()
                    if any("push" in sc for sc in scopes) and not authed:
                        return self._send(401, b'{"details":"push needs credentials"}')
                    tok = "tok-%d" % len(proxy.tokens)
                    proxy.tokens[tok] = scopes
                    return self._send(200, json.dumps({"token": tok}).encode())
                a = self.headers.get("Authorization", "")
                tok = a[7:] if a.startswith("Bearer ") else None
                if tok not in proxy.tokens:
                    ch = 'Bearer realm="http://127.0.0.1:%d/token",service="test"' % proxy.port
                    return self._send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                                      [("WWW-Authenticate", ch), ("Content-Type", "application/json")])
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                proxy.forwarded.append((self.command, u.path))
                c = http.client.HTTPConnection("127.0.0.1", backend)
                # Host kept: docker-registry's upload Locations then name the front, so they need the token too.
                hdrs = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
                c.request(self.command, self.path, body=body, headers=hdrs)
                r = c.getresponse()
                data = r.read()
                out = [(k, v) for k, v in r.getheaders() if k.lower() not in ("content-length", "connection",
                                                                              "transfer-encoding")]
                self._send(r.status, data, out)
                c.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = handle_one

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


def test_bearer_token_flow():
    """Anonymous pull and authenticated push through WWW-Authenticate: Bearer (token server)."""
    need("docker-registry", "skopeo")
    d = tmpdir("bearer")
    reg = Registry(d).start()
    proxy = BearerProxy(reg.port, "bob", "tok-pass-91")
    host = "127.0.0.1:%d" % proxy.port
    try:
        base = make_busybox_base(d)
        run(["skopeo", "copy", "--dest-tls-verify=false", "oci:%s:bb" % base, "docker://%s/base:1" % reg.host])
        src = make_src(d)
        cfg = os.path.join(d, "docker")
        os.makedirs(cfg)
        env = {"DOCKER_CONFIG": cfg, "REGISTRY_AUTH_FILE": os.path.join(d, "none.json")}
        # Pull anonymously; the push has no credentials: the token server refuses, exit 1.
        p = lp("container", src, "-o", os.path.join(d, "img"), "--base", "docker://%s/base:1" % host,
               "--push", "docker://%s/fn:1" % host, "--tls-verify=false", "--cache-dir", os.path.join(d, "c"),
               env=env, check=False)
        assert p.returncode == 1 and "token server" in p.stderr and "credentials" in p.stderr, p.stderr
        assert any(sc == ["repository:base:pull"] and a is None for sc, a in proxy.token_requests), \
            proxy.token_requests
        # With docker's config.json: the push goes through, the mount too (two scopes in one token).
        with open(os.path.join(cfg, "config.json"), "w") as f:
            json.dump({"auths": {host: {"auth": base64.b64encode(b"bob:tok-pass-91").decode()}}}, f)
        p = lp("container", src, "-o", os.path.join(d, "img2"), "--base", "docker://%s/base:1" % host,
               "--push", "docker://%s/fn:1" % host, "--tls-verify=false", "--cache-dir", os.path.join(d, "c"),
               "--json", "-", env=env)
        rep = json.loads(p.stdout)
        assert rep["push"]["blobs_mounted"] >= 1, rep["push"]
        assert any(sorted(sc) == ["repository:base:pull", "repository:fn:pull,push"] for sc, _ in proxy.token_requests)
        assert "tok-pass-91" not in p.stdout + p.stderr and "tok-" not in p.stderr
        assert any(m == "PUT" and "/blobs/uploads/" in pth for m, pth in proxy.forwarded), proxy.forwarded
        info = json.loads(run(["skopeo", "inspect", "--tls-verify=false", "docker://%s/fn:1" % reg.host]).stdout)
        assert info["Digest"] == rep["push"]["digest"]
    finally:
        proxy.stop()
        reg.stop()


class FaultProxy:
    """A front for docker-registry that misbehaves on blob GETs as self.mode says: "corrupt" (a
    byte flipped), "fail-once" (500, then the real answer), "stall" (headers, then silence)."""

    def __init__(self, backend):
        import http.client
        import http.server
        import threading
        proxy = self
        self.mode = None
        self.failed = 0

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_one(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                blob = self.command == "GET" and "/blobs/sha256:" in self.path
                if blob and proxy.mode == "fail-once" and not proxy.failed:
                    proxy.failed += 1
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                c = http.client.HTTPConnection("127.0.0.1", backend)
                c.request(self.command, self.path, body=body,
                          headers={k: v for k, v in self.headers.items() if k.lower() != "host"})
                r = c.getresponse()
                data = r.read()
                c.close()
                if blob and r.status == 200 and proxy.mode == "corrupt":
                    data = bytes([data[0] ^ 1]) + data[1:]
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if blob and r.status == 200 and proxy.mode == "stall":
                    self.wfile.write(data[:10])
                    self.wfile.flush()
                    time.sleep(30)
                    return
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = handle_one

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


def cached_blobs(cache):
    p = os.path.join(cache, "registry/blobs/sha256")
    return set(os.listdir(p)) if os.path.isdir(p) else set()


def test_faults_digest_retry_stall():
    """A corrupted blob is refused and never cached; a 500 is retried; a stalled transfer
    times out in bounded time (LAMBDAPACK_REGISTRY_TIMEOUT); each a one-line error."""
    need("docker-registry", "skopeo")
    d = tmpdir("faults")
    reg = Registry(d).start()
    fp = FaultProxy(reg.port)
    host = "127.0.0.1:%d" % fp.port
    try:
        base = make_busybox_base(d)
        run(["skopeo", "copy", "--dest-tls-verify=false", "oci:%s:bb" % base, "docker://%s/base:1" % reg.host])
        bman = layout_image(base, "bb")[1]
        src = make_src(d)
        cache = os.path.join(d, "c")
        fp.mode = "corrupt"
        p = lp("container", src, "-o", os.path.join(d, "img"), "--base", "docker://%s/base:1" % host,
               "--tls-verify=false", "--cache-dir", cache, check=False)
        errs = [l for l in p.stderr.splitlines() if "error:" in l]
        assert p.returncode == 1 and len(errs) == 1 and "digest mismatch" in errs[0], p.stderr
        assert host in errs[0] and "repository base" in errs[0], errs
        assert not cached_blobs(cache) & {l["digest"][7:] for l in bman["layers"]} - {bman["config"]["digest"][7:]}
        assert not os.listdir(os.path.join(cache, "registry/tmp")), "no partial blob left"
        assert not os.path.exists(os.path.join(d, "img"))

        fp.mode = "stall"
        p = lp("container", src, "-o", os.path.join(d, "img"), "--base", "docker://%s/base:1" % host,
               "--tls-verify=false", "--cache-dir", cache, check=False, env={"LAMBDAPACK_REGISTRY_TIMEOUT": "2"})
        assert p.returncode == 1 and "timed out" in p.stderr, p.stderr
        # (The stalled server holds the connection 30 s and then closes it: "timed out" means our timeout fired.)
        assert not cached_blobs(cache) & {l["digest"][7:] for l in bman["layers"]}

        fp.mode = "fail-once"
        p = lp("container", src, "-o", os.path.join(d, "img"), "--base", "docker://%s/base:1" % host,
               "--tls-verify=false", "--cache-dir", cache, "--json", "-")
        assert fp.failed == 1
        assert json.loads(p.stdout)["base_image"]["manifest_digest"] == layout_image(base, "bb")[0]
        assert {l["digest"][7:] for l in bman["layers"]} <= cached_blobs(cache)
    finally:
        fp.stop()
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
