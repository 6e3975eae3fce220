# SPDX-License-Identifier: MIT
"""End-to-end tests of the registry client: `--base docker://...` and `--push`.

Every registry runs here, on 127.0.0.1 (tests/registry/regfix.py): Debian's
docker-registry with TLS from a test CA and htpasswd Basic auth, the same
with the Bearer token flow of a token server in the fixture, a plain one
behind a counting proxy, and a faulty one in Python. What lambdapack pushed
is read back with independent tools: skopeo inspect/copy, podman pull/run.
The password is a unique string; every lambdapack run is checked for it in
stdout, stderr and the --json report, and so are the registry logs.

usage: test_registry.py LAMBDAPACK
Exit 77 (skip) only when docker-registry or skopeo is not installed.
"""
import atexit
import base64
import hashlib
import json
import os
import re
import shutil
import stat
import sys
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import regfix  # noqa: E402
from lptest import main, run  # noqa: E402

LP = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else None
USER = "lp-user"
PASSWORD = "S3cret-%s" % uuid.uuid4().hex      # must never appear in any output
WRONG = "Wr0ng-%s" % uuid.uuid4().hex          # nor a wrong one
LIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]
TIMEOUT = "3"                                   # LAMBDAPACK_REGISTRY_TIMEOUT for the stall cases

_state = {}
SECRETS = [PASSWORD, WRONG] + [base64.b64encode(("%s:%s" % (USER, pw)).encode()).decode() for pw in (PASSWORD, WRONG)]


# ---------------------------------------------------------------- shared fixture

def fx():
    """The registries and base images, made once for the whole run."""
    if _state.get("ready"):
        return _state
    if _state:
        raise AssertionError("the shared fixture failed to start in an earlier test (see there)")
    f = regfix.Fixture("regtest")
    atexit.register(f.close, bool(os.environ.get("LP_KEEP")))
    s = _state
    s["fx"] = f
    s["ca"] = f.ca()
    s["bb"] = os.path.join(f.dir, "busybox")
    s["bb_desc"] = regfix.busybox_layout(s["bb"], "busybox")
    s["multi"] = os.path.join(f.dir, "multi")
    s["multi_idx"], s["multi_descs"] = regfix.multiarch_layout(s["multi"], "multi")
    users = {USER: PASSWORD}
    # TLS + Basic: the bases pushed by skopeo
    s["reg"] = reg = f.registry(tls=True, auth="htpasswd", users=users)
    creds = ["--dest-cert-dir", s["ca"].cert_dir, "--dest-creds", "%s:%s" % (USER, PASSWORD)]
    run(["skopeo", "copy", *creds, "oci:%s:busybox" % s["bb"], reg.ref("base/busybox:1")])
    run(["skopeo", "copy", "--all", *creds, "oci:%s:multi" % s["multi"], reg.ref("base/multi:1")])
    # the same two images as a Docker manifest list of schema 2 manifests
    run(["skopeo", "copy", "--all", "--format", "v2s2", *creds, "oci:%s:multi" % s["multi"],
         reg.ref("base/multi-docker:1")])
    # TLS + token auth (anonymous pull, authenticated push)
    s["tok"] = tok = f.registry(tls=True, auth="token", users=users)
    run(["skopeo", "copy", *creds, "oci:%s:busybox" % s["bb"], tok.ref("pub/busybox:1")])
    # plain HTTP behind the counting proxy
    s["plain"] = plain = f.registry()
    s["px"] = f.proxy(plain)
    run(["skopeo", "copy", "--dest-tls-verify=false", "oci:%s:busybox" % s["bb"], plain.ref("base/busybox:1")])
    s["faulty"] = f.faulty(s["bb"], users=users)
    s["n"] = 0
    s["ready"] = True
    return s


def tmp(tag):
    s = fx()
    s["n"] += 1
    d = os.path.join(s["fx"].dir, "t%02d-%s" % (s["n"], tag))
    os.makedirs(d)
    return d


def lp_env(d, docker_config=None, extra=None):
    """An environment with nothing of the user's: its own HOME, caches, docker config."""
    e = {k: v for k, v in os.environ.items()
         if k not in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "SSL_CERT_FILE", "SSL_CERT_DIR",
                      "XDG_RUNTIME_DIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "SOURCE_DATE_EPOCH",
                      "LAMBDAPACK_REGISTRY_TIMEOUT")}
    home = os.path.join(d, "home")
    os.makedirs(os.path.join(home, "run"), exist_ok=True)
    e.update(HOME=home, XDG_RUNTIME_DIR=os.path.join(home, "run"), XDG_CACHE_HOME=os.path.join(home, "cache"),
             DOCKER_CONFIG=docker_config or os.path.join(home, "docker"),
             SSL_CERT_FILE=fx()["ca"].ca_crt)
    if extra:
        e.update(extra)
    return e


def creds_config(d, host, user=USER, password=PASSWORD):
    return os.path.dirname(regfix.docker_config(os.path.join(d, "docker"), {host: (user, password)}))


def lp(*args, env, check=True, json_path=None):
    """Run lambdapack; assert no secret reached stdout, stderr or the JSON report."""
    p = run([LP, *map(str, args)], check=False, env=env)
    texts = {"stdout": p.stdout, "stderr": p.stderr}
    if json_path and os.path.exists(json_path):
        with open(json_path, errors="replace") as f:
            texts["json"] = f.read()
    # a sanitizer report on an error path must not pass for the expected exit 1
    assert "Sanitizer" not in p.stderr and "runtime error:" not in p.stderr, p.stderr
    for where, t in texts.items():
        for secret in SECRETS + _state.get("extra_secrets", []):
            assert secret not in t, "a credential reached %s of %s" % (where, args)
    if check and p.returncode != 0:
        raise AssertionError("lambdapack failed (%d): %s\nstdout: %s\nstderr: %s"
                             % (p.returncode, " ".join(map(str, args)), p.stdout, p.stderr))
    return p


def make_src(d, msg="hello", deps=True):
    src = os.path.join(d, "src")
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, "handler.sh"), "w") as f:
        f.write('#!/bin/sh\necho "handler ran: $1 $(cat /var/task/msg.txt) root=$LAMBDA_TASK_ROOT"\n')
    os.chmod(os.path.join(src, "handler.sh"), 0o755)
    with open(os.path.join(src, "msg.txt"), "w") as f:
        f.write(msg)
    if deps:
        os.makedirs(os.path.join(src, "node_modules", "dep"), exist_ok=True)
        with open(os.path.join(src, "node_modules", "dep", "blob.bin"), "wb") as f:
            f.write(hashlib.sha256(b"dep").digest() * 8192)  # 256 KiB, same every run
        with open(os.path.join(src, "node_modules", "dep", "index.js"), "w") as f:
            f.write("module.exports = 1;\n")
    return src


def layout_image(layout, tag=None):
    """(manifest descriptor, manifest, config) of the layout's image."""
    mb, desc, blobs = regfix.read_layout(layout, tag)
    man = json.loads(mb)
    with open(blobs[man["config"]["digest"]], "rb") as f:
        cfg = json.loads(f.read())
    return desc, man, cfg


def pushed_ref(p, host, repo, json_path=None):
    """The HOST/REPO@sha256:... lambdapack printed (and put in the JSON report)."""
    pat = re.compile(re.escape("%s/%s@" % (host, repo)) + r"sha256:[0-9a-f]{64}")
    m = pat.search(p.stdout) or pat.search(p.stderr)
    assert m, "no pushed %s/%s@sha256:... printed:\nstdout: %s\nstderr: %s" % (host, repo, p.stdout, p.stderr)
    if json_path:
        with open(json_path) as f:
            j = f.read()
        assert m.group(0) in j, "pushed reference %s not in the JSON report" % m.group(0)
        json.loads(j)
    return m.group(0)


def skopeo_tls(cmd, *args):
    """skopeo inspect|copy against the TLS + Basic registry (the test CA, the password)."""
    c = fx()["ca"].cert_dir
    cred = "%s:%s" % (USER, PASSWORD)
    if cmd == "inspect":
        return run(["skopeo", "inspect", "--cert-dir", c, "--creds", cred, *args])
    return run(["skopeo", "copy", "--src-cert-dir", c, "--src-creds", cred, *args])


def files_under(d):
    for root, _, names in os.walk(d):
        for n in names:
            yield os.path.join(root, n)


def assert_not_cached(cache, digest, data):
    """Nothing of the blob `digest` (whose bytes as served are `data`) is anywhere in the cache."""
    hexd = digest.split(":")[1]
    head = data[:4096]
    for path in files_under(cache):
        assert hexd not in os.path.basename(path), "blob %s was cached: %s" % (digest, path)
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size < 64:
            continue
        with open(path, "rb") as f:
            start = f.read(4096)
        n = min(len(start), len(head))
        assert n < 64 or start[:n] != head[:n], "(part of) blob %s left in the cache as %s" % (digest, path)


def assert_one_line_error(p, host, repo, words, short=True):
    """Exit 1 and a line naming host, repository and the reason. short: nothing else of note was
    printed (a failed pull writes nothing; a failed push may follow the build's summary)."""
    assert p.returncode == 1, "exit %d, want 1\nstdout: %s\nstderr: %s" % (p.returncode, p.stdout, p.stderr)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    hits = [l for l in lines if host in l and repo in l]
    assert hits, "no error line naming %s and %s: %r" % (host, repo, p.stderr)
    def said(l):
        # the reason must be in the words, not in the port, a digest or a path
        l = l.replace(host, " ").replace(repo, " ")
        l = re.sub(r"sha256:[0-9a-f]+|/\S+|[0-9a-f]{12,}", " ", l).lower()
        return any(w in l for w in words)
    assert any(said(l) for l in hits), "the error line does not say %s: %r" % (" or ".join(words), hits)
    if short:
        assert len(lines) <= 3, "more than a short error: %r" % p.stderr


def podman(root, *args):
    # podman refuses a runroot longer than 50 characters: keep that one short
    runroot = "/tmp/lprr-%d" % os.getpid()
    os.makedirs(runroot, exist_ok=True)
    atexit.register(shutil.rmtree, runroot, True)
    return run(["podman", "--root", os.path.join(root, "root"), "--runroot", runroot,
                "--storage-driver=vfs", "--runtime", "runc", "--cgroup-manager=cgroupfs",
                "--events-backend=file", *args])


# ---------------------------------------------------------------- TLS + Basic

def test_tls_basic_pull_push_then_skopeo_and_podman():
    s = fx()
    reg = s["reg"]
    d = tmp("tls")
    src = make_src(d)
    out, cache, j = os.path.join(d, "out"), os.path.join(d, "cache"), os.path.join(d, "r.json")
    env = lp_env(d, creds_config(d, reg.host))
    p = lp("container", src, "-o", out, "--base", reg.ref("base/busybox:1"), "--push", reg.ref("fn/app:v1"),
           "--entrypoint", "handler.sh", "--handler", "my.handler", "--cache-dir", cache, "--json", j, env=env,
           json_path=j)
    ref = pushed_ref(p, reg.host, "fn/app", j)
    desc, man, cfg = layout_image(out)
    assert ref.endswith("@" + desc["digest"]), (ref, desc["digest"])
    # the base came through: its layer is the first layer, byte for byte
    bman = json.loads(regfix.read_layout(s["bb"])[0])
    assert man["layers"][0]["digest"] == bman["layers"][0]["digest"]
    # the pulled blobs are in the cache under the cache root's registry/
    assert os.path.exists(os.path.join(cache, "registry", "blobs", "sha256", bman["layers"][0]["digest"][7:]))
    # skopeo sees the same image, by tag and by the printed digest
    for r in ("docker://" + ref, reg.ref("fn/app:v1")):
        info = json.loads(skopeo_tls("inspect", r).stdout)
        assert info["Digest"] == desc["digest"], (info["Digest"], desc["digest"])
        assert info["Layers"] == [l["digest"] for l in man["layers"]]
    back = os.path.join(d, "back")
    skopeo_tls("copy", "docker://" + ref, "oci:%s:x" % back)
    bdesc, bman2, _ = layout_image(back)
    assert bdesc["digest"] == desc["digest"]
    for l in man["layers"] + [man["config"]]:
        a = os.path.join(out, "blobs", "sha256", l["digest"][7:])
        b = os.path.join(back, "blobs", "sha256", l["digest"][7:])
        with open(a, "rb") as fa, open(b, "rb") as fb:
            assert fa.read() == fb.read(), l["digest"]
    # podman pulls it over TLS with the password and runs the handler script
    pd = os.path.join(d, "podman")
    podman(pd, "pull", "--cert-dir", s["ca"].cert_dir, "--creds", "%s:%s" % (USER, PASSWORD), "docker://" + ref)
    r = podman(pd, "run", "--rm", "--network=none", *LIMITS, ref)
    assert r.stdout.strip() == "handler ran: my.handler hello root=/var/task", (r.stdout, r.stderr)
    for line in reg.access_log():
        assert PASSWORD not in line


def test_tls_second_build_needs_no_network():
    """A digest reference whose blobs are cached is built with the registry unreachable."""
    s = fx()
    d = tmp("cache")
    src = make_src(d, deps=False)
    cache = os.path.join(d, "cache")
    f = s["faulty"]
    f.reset("ok")
    ref = f.ref("cached/busybox@" + s["bb_desc"]["digest"])
    env = lp_env(d)
    lp("container", src, "-o", os.path.join(d, "o1"), "--base", ref, "--tls-verify=false", "--cache-dir", cache,
       env=env)
    assert f.log, "the first build did not ask the registry"
    f.reset("down")
    lp("container", src, "-o", os.path.join(d, "o2"), "--base", ref, "--tls-verify=false", "--cache-dir", cache,
       env=env)
    assert f.log == [], "the second build asked the registry: %r" % f.log
    assert layout_image(os.path.join(d, "o1"))[0] == layout_image(os.path.join(d, "o2"))[0]


def test_no_cache_pulls_into_a_scratch_root_it_removes():
    """--no-cache leaves the cache dir alone for a pulled base too: the base goes to a scratch root
    for the run, removed at the end, so the next --no-cache build pulls again."""
    s = fx()
    d = tmp("nocache")
    src = make_src(d, deps=False)
    cache = os.path.join(d, "cache")
    scratch = os.path.join(d, "tmp")
    os.makedirs(scratch)
    f = s["faulty"]
    ref = f.ref("nocache/busybox@" + s["bb_desc"]["digest"])
    env = lp_env(d, extra={"TMPDIR": scratch})
    outs = []
    for i in range(2):
        f.reset("ok")
        out = os.path.join(d, "o%d" % i)
        lp("container", src, "-o", out, "--base", ref, "--tls-verify=false", "--cache-dir", cache, "--no-cache",
           env=env)
        assert any("/blobs/" in str(x) for x in f.log), "build %d did not pull the base: %r" % (i, f.log)
        outs.append(layout_image(out)[0])
        assert not os.path.exists(cache), "--no-cache created the cache dir"
        assert not os.path.exists(os.path.join(d, "home", "cache", "lambdapack")), "--no-cache used the default root"
        assert os.listdir(scratch) == [], "scratch left behind: %r" % os.listdir(scratch)
    assert outs[0] == outs[1]


def test_tag_build_with_registry_gone_uses_the_cache():
    """A tag pulled once builds again with its registry stopped (the tag's last digest, from the cache)."""
    s = fx()
    d = tmp("gone")
    src = make_src(d, deps=False)
    cache = os.path.join(d, "cache")
    f = s["fx"].faulty(s["bb"])
    ref = f.ref("gone/busybox:1")
    env = lp_env(d)
    lp("container", src, "-o", os.path.join(d, "o1"), "--base", ref, "--tls-verify=false", "--cache-dir", cache,
       env=env)
    f.stop()
    lp("container", src, "-o", os.path.join(d, "o2"), "--base", ref, "--tls-verify=false", "--cache-dir", cache,
       env=env)
    assert layout_image(os.path.join(d, "o1"))[0] == layout_image(os.path.join(d, "o2"))[0]


def test_multiarch_index_selects_arch():
    s = fx()
    reg = s["reg"]
    d = tmp("multi")
    src = make_src(d, deps=False)
    env = lp_env(d, creds_config(d, reg.host))
    raw = json.loads(skopeo_tls("inspect", "--raw", reg.ref("base/multi-docker:1")).stdout)
    assert raw["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json", raw
    for repo, arch, lp_arch in (("base/multi", "arm64", "arm64"), ("base/multi", "amd64", "x86_64"),
                                ("base/multi-docker", "arm64", "arm64"), ("base/multi-docker", "amd64", "x86_64")):
        out = os.path.join(d, "out-%s-%s" % (repo.split("/")[1], arch))
        # The fixture's arm64 image is the amd64 busybox with a marker file: the runnability check
        # rightly calls it "exec format error", which is not what this test is about.
        lp("container", src, "-o", out, "--base", reg.ref(repo + ":1"), "--arch", lp_arch,
           "--cache-dir", os.path.join(d, "cache"), "--no-check", env=env)
        _, man, cfg = layout_image(out)
        assert cfg["architecture"] == arch, (arch, cfg["architecture"])
        want = json.loads(open(os.path.join(s["multi"], "blobs", "sha256",
                                            s["multi_descs"][arch]["digest"][7:]), "rb").read())
        assert man["layers"][0]["digest"] == want["layers"][0]["digest"], (repo, arch)


# ---------------------------------------------------------------- only what is missing

def _uploaded(px):
    """Digests completed by PUT .../blobs/uploads/...?digest=, and all body bytes sent to uploads."""
    digests = []
    for m, path, _ in px.uploads():
        q = urllib.parse.parse_qs(urllib.parse.urlparse(path).query)
        if m in ("PUT", "POST") and "digest" in q:  # POST ?digest= is a one-request monolithic upload
            digests.append(q["digest"][0])
    return digests, px.upload_bytes()


def test_push_uploads_only_missing_blobs():
    s = fx()
    px = s["px"]
    d = tmp("dedupe")
    src = make_src(d)
    env = lp_env(d)
    base = "docker://%s/base/busybox:1" % px.host
    dest = "docker://%s/fn/code:1" % px.host
    bman = json.loads(regfix.read_layout(s["bb"])[0])
    base_layer = bman["layers"][0]["digest"]

    def push(n):
        px.reset()
        out = os.path.join(d, "out%d" % n)
        p = lp("container", src, "-o", out, "--base", base, "--push", dest, "--tls-verify=false",
               "--cache-dir", os.path.join(d, "cache"), env=env)
        pushed_ref(p, px.host, "fn/code")
        return layout_image(out)[1]

    # first push: every blob but the base's (mounted from base/busybox, same registry)
    m1 = push(1)
    up, sent = _uploaded(px)
    mine = {l["digest"]: l["size"] for l in m1["layers"] if l["digest"] != base_layer}
    mine[m1["config"]["digest"]] = m1["config"]["size"]
    assert sorted(up) == sorted(mine), (up, mine)
    assert sent == sum(mine.values()), (sent, mine)
    assert any("mount=" in p_ and base_layer in urllib.parse.unquote(p_) for m, p_, _ in px.uploads()
               if m == "POST"), "base layer not mounted: %r" % px.uploads()
    # the same image again: no blob bytes at all
    push(2)
    assert _uploaded(px) == ([], 0), px.uploads()
    # a code-only change: the code layer and the config, nothing else
    with open(os.path.join(src, "msg.txt"), "w") as f:
        f.write("changed")
    m3 = push(3)
    up, sent = _uploaded(px)
    new = {l["digest"]: l["size"] for l in m3["layers"] if l["digest"] not in [x["digest"] for x in m1["layers"]]}
    assert len(new) == 1, "more than the code layer changed: %r" % new
    code_layer = m3["layers"][-1]
    assert list(new) == [code_layer["digest"]]
    assert sorted(up) == sorted([code_layer["digest"], m3["config"]["digest"]]), up
    assert sent == code_layer["size"] + m3["config"]["size"], (sent, code_layer["size"], m3["config"]["size"])


def test_failed_push_leaves_no_manifest():
    """Blob uploads that keep failing: exit 1, and the tag never appears (manifest goes last)."""
    s = fx()
    px = s["px"]
    d = tmp("fp")
    src = make_src(d, msg="never-pushed")
    px.reset()
    px.fail_blob_puts = True
    try:
        p = lp("container", src, "-o", os.path.join(d, "out"), "--base", "docker://%s/base/busybox:1" % px.host,
               "--push", "docker://%s/fn/broken:1" % px.host, "--tls-verify=false",
               "--cache-dir", os.path.join(d, "cache"), env=lp_env(d), check=False)
    finally:
        px.fail_blob_puts = False
    assert_one_line_error(p, px.host, "fn/broken", ("500", "server error", "internal", "upload"), short=False)
    assert any(m == "PUT" and st == 500 for m, _, _, st in px.log), "no blob upload was attempted"
    assert not any(m == "PUT" and "/manifests/" in path for m, path, _, _ in px.log), \
        "a manifest was PUT although its blobs failed"
    r = run(["skopeo", "inspect", "--tls-verify=false", s["plain"].ref("fn/broken:1")], check=False)
    assert r.returncode != 0, "the registry has a manifest for the failed push"


def _pack_over_limit(tag, *args):
    s = fx()
    d = tmp(tag)
    src = make_src(d, msg="packed", deps=False)
    with open(os.path.join(src, "zeros.bin"), "wb") as f:
        f.truncate(262_200_000)  # over 262,144,000 bytes unzipped; compresses to almost nothing
    j = os.path.join(d, "r.json")
    try:
        p = lp("pack", src, "-o", os.path.join(d, "fn.zip"), "--tls-verify=false",
               "--cache-dir", os.path.join(d, "cache"), "--json", j, "--no-check", *args, env=lp_env(d), check=False, json_path=j)
    finally:
        os.unlink(os.path.join(src, "zeros.bin"))
    assert p.returncode == 6, "exit %d (want 6, the image fallback): %s%s" % (p.returncode, p.stdout, p.stderr)
    return p, os.path.join(d, "fn.oci"), j


def test_pack_fallback_image_is_pushed():
    """pack over the 250 MB unzipped limit falls back to an image; --push sends that image."""
    s = fx()
    px = s["px"]
    p, oci, j = _pack_over_limit("pack", "--push", "docker://%s/fn/packed:1" % px.host)
    ref = pushed_ref(p, px.host, "fn/packed", j)
    desc, man, _ = layout_image(oci)
    assert ref.endswith("@" + desc["digest"]), (ref, desc["digest"])
    info = json.loads(run(["skopeo", "inspect", "--tls-verify=false", s["plain"].ref("fn/packed:1")]).stdout)
    assert info["Digest"] == desc["digest"]
    assert info["Layers"] == [l["digest"] for l in man["layers"]]


def test_pack_fallback_base_from_registry():
    """pack --base docker://...: the fallback image is built on the pulled base."""
    s = fx()
    px = s["px"]
    _, oci, _ = _pack_over_limit("packbase", "--base", "docker://%s/base/busybox:1" % px.host)
    _, man, _ = layout_image(oci)
    bman = json.loads(regfix.read_layout(s["bb"])[0])
    assert man["layers"][0]["digest"] == bman["layers"][0]["digest"], "the busybox base is not under the image"


# ---------------------------------------------------------------- TLS verification

def test_untrusted_certificate_refused_unless_tls_verify_false():
    s = fx()
    reg = s["reg"]
    d = tmp("ut")
    src = make_src(d, deps=False)
    env = lp_env(d, creds_config(d, reg.host))
    env.pop("SSL_CERT_FILE")  # the system CAs only: the test CA is unknown
    p = lp("container", src, "-o", os.path.join(d, "o1"), "--base", reg.ref("base/busybox:1"),
           "--cache-dir", os.path.join(d, "c1"), env=env, check=False)
    assert_one_line_error(p, reg.host, "base/busybox", ("certificate", "tls", "ssl", "verify"))
    lp("container", src, "-o", os.path.join(d, "o2"), "--base", reg.ref("base/busybox:1"), "--tls-verify=false",
       "--cache-dir", os.path.join(d, "c2"), env=env)


def test_plain_http_only_with_tls_verify_false():
    """Without --tls-verify=false nothing falls back to plain HTTP."""
    s = fx()
    plain = s["plain"]
    d = tmp("ph")
    src = make_src(d, deps=False)
    before = len(plain.requests())
    p = lp("container", src, "-o", os.path.join(d, "o"), "--base", plain.ref("base/busybox:1"),
           "--cache-dir", os.path.join(d, "c"), env=lp_env(d), check=False)
    assert_one_line_error(p, plain.host, "base/busybox", ("tls", "ssl", "https", "http", "tls-verify"))
    used = [r for r in plain.requests()[before:] if r[1].startswith("/v2/")]
    assert not used, "plain HTTP was used without --tls-verify=false: %r" % used


# ---------------------------------------------------------------- Bearer token flow

def test_token_anonymous_pull_authenticated_push():
    s = fx()
    tok = s["tok"]
    d = tmp("tk")
    src = make_src(d)
    ts = tok.token
    n0 = len(ts.grants)
    # no credentials: pull works through an anonymous token
    lp("container", src, "-o", os.path.join(d, "o1"), "--base", tok.ref("pub/busybox:1"),
       "--cache-dir", os.path.join(d, "c1"), env=lp_env(d))
    anon = [g for a, g in ts.grants[n0:] if a is None]
    assert anon and any("repository:pub/busybox:pull" in g for g in anon), ts.grants[n0:]
    # no credentials: push is refused, one line naming registry and repository
    p = lp("container", src, "-o", os.path.join(d, "o2"), "--base", tok.ref("pub/busybox:1"),
           "--push", tok.ref("fn/tok:1"), "--cache-dir", os.path.join(d, "c1"), env=lp_env(d), check=False)
    assert_one_line_error(p, tok.host, "fn/tok", ("401", "403", "denied", "unauthorized", "authenticat",
                                                  "credential"), short=False)
    # with the password in the docker config: pushed, through a token that grants push
    n1 = len(ts.grants)
    j = os.path.join(d, "r.json")
    p = lp("container", src, "-o", os.path.join(d, "o3"), "--base", tok.ref("pub/busybox:1"),
           "--push", tok.ref("fn/tok:1"), "--cache-dir", os.path.join(d, "c1"), "--json", j,
           env=lp_env(d, creds_config(d, tok.host)), json_path=j)
    ref = pushed_ref(p, tok.host, "fn/tok", j)
    assert any(a == USER and any(g.startswith("repository:fn/tok:") and "push" in g for g in gs)
               for a, gs in ts.grants[n1:]), ts.grants[n1:]
    info = json.loads(run(["skopeo", "inspect", "--cert-dir", s["ca"].cert_dir, "docker://" + ref]).stdout)
    assert info["Digest"] == layout_image(os.path.join(d, "o3"))[0]["digest"]


def test_token_identity_token_push():
    """`identitytoken` in the docker config goes to the token server as a refresh token."""
    s = fx()
    tok = s["tok"]
    d = tmp("idtoken")
    src = make_src(d, deps=False)
    rt = tok.token.add_refresh_token(USER)
    s.setdefault("extra_secrets", []).append(rt)
    cfg = regfix.docker_config(os.path.join(d, "docker"), {tok.host: {"auth": base64.b64encode(b"<token>:").decode(),
                                                                        "identitytoken": rt}})
    p = lp("container", src, "-o", os.path.join(d, "o"), "--base", tok.ref("pub/busybox:1"),
           "--push", tok.ref("fn/idtok:1"), "--cache-dir", os.path.join(d, "c"),
           env=lp_env(d, os.path.dirname(cfg)))
    pushed_ref(p, tok.host, "fn/idtok")


# ---------------------------------------------------------------- where credentials come from

def test_credential_helper_and_auth_file():
    s = fx()
    reg = s["reg"]
    d = tmp("credhelper")
    src = make_src(d, deps=False)
    bindir = os.path.join(d, "bin")
    os.makedirs(bindir)
    called = os.path.join(d, "helper-called")
    helper = os.path.join(bindir, "docker-credential-lptest")
    with open(helper, "w") as f:
        f.write("#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread -r server\necho \"$server\" >> %s\n"
                "printf '{\"ServerURL\":\"%%s\",\"Username\":\"%s\",\"Secret\":\"%s\"}\\n' \"$server\"\n"
                % (called, USER, PASSWORD))
    os.chmod(helper, 0o755)
    dc = os.path.join(d, "docker")
    os.makedirs(dc)
    with open(os.path.join(dc, "config.json"), "w") as f:
        json.dump({"credHelpers": {reg.host: "lptest"}}, f)
    env = lp_env(d, dc, {"PATH": bindir + os.pathsep + os.environ.get("PATH", "")})
    p = lp("container", src, "-o", os.path.join(d, "o1"), "--base", reg.ref("base/busybox:1"),
           "--push", reg.ref("fn/helper:1"), "--cache-dir", os.path.join(d, "c1"), env=env)
    pushed_ref(p, reg.host, "fn/helper")
    with open(called) as f:
        assert reg.host in f.read()
    # $REGISTRY_AUTH_FILE (containers auth.json) alone is enough too
    af = os.path.join(d, "auth.json")
    with open(af, "w") as f:
        json.dump({"auths": {reg.host: {"auth": base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode())
                                        .decode()}}}, f)
    p = lp("container", src, "-o", os.path.join(d, "o2"), "--base", reg.ref("base/busybox:1"),
           "--push", reg.ref("fn/authfile:1"), "--cache-dir", os.path.join(d, "c2"),
           env=lp_env(d, extra={"REGISTRY_AUTH_FILE": af}))
    pushed_ref(p, reg.host, "fn/authfile")
    # credsStore: the same helper as the default store for every registry
    dc2 = os.path.join(d, "docker2")
    os.makedirs(dc2)
    with open(os.path.join(dc2, "config.json"), "w") as f:
        json.dump({"credsStore": "lptest"}, f)
    os.unlink(called)
    p = lp("container", src, "-o", os.path.join(d, "o3"), "--base", reg.ref("base/busybox:1"),
           "--push", reg.ref("fn/credsstore:1"), "--cache-dir", os.path.join(d, "c3"),
           env=lp_env(d, dc2, {"PATH": bindir + os.pathsep + os.environ.get("PATH", "")}))
    pushed_ref(p, reg.host, "fn/credsstore")
    with open(called) as f:
        assert reg.host in f.read()


def test_wrong_password_and_no_credentials_fail_cleanly():
    s = fx()
    reg = s["reg"]
    d = tmp("pw")
    src = make_src(d, deps=False)
    for name, env in (("nocreds", lp_env(d)), ("wrong", lp_env(d, creds_config(d, reg.host, password=WRONG)))):
        cache = os.path.join(d, "cache-%d" % len(name))
        out = os.path.join(d, "out-%d" % len(name))
        j = os.path.join(d, "r%d.json" % len(name))
        p = lp("container", src, "-o", out, "--base", reg.ref("base/busybox:1"), "--cache-dir", cache,
               "--json", j, "-v", env=env, check=False, json_path=j)
        assert_one_line_error(p, reg.host, "base/busybox", ("401", "unauthorized", "authenticat", "credential",
                                                            "denied"))
        assert not os.path.exists(out) or os.listdir(out) == [], os.listdir(out)


# ---------------------------------------------------------------- bad registries

def _bad(mode, repo, words, extra_env=None, server=None):
    s = fx()
    d = tmp("neg")  # no reason word in any path: the error line must say it itself
    src = make_src(d, deps=False)
    cache = os.path.join(d, "cache")
    out = os.path.join(d, "out")
    host = server.host if server else s["faulty"].host
    if not server:
        s["faulty"].reset(mode)
    p = lp("container", src, "-o", out, "--base", "docker://%s/%s:1" % (host, repo), "--tls-verify=false",
           "--cache-dir", cache, env=lp_env(d, extra=extra_env), check=False)
    assert_one_line_error(p, host, repo, words)
    assert not os.path.exists(out) or os.listdir(out) == [], os.listdir(out)
    # nothing of the base's layer is cached, whole or in part
    mb, _, blobs = regfix.read_layout(s["bb"])
    layer = json.loads(mb)["layers"][0]["digest"]
    with open(blobs[layer], "rb") as f:
        data = f.read()
    assert_not_cached(cache, layer, data)
    assert_not_cached(cache, layer, regfix.FaultyRegistry.corrupt(data))
    return p, cache


def test_bad_blob_digest_is_refused_and_not_cached():
    _bad("baddigest", "neg/a", ("digest", "mismatch", "sha256"))


def test_401_without_credentials():
    _bad("auth", "neg/b", ("401", "unauthorized", "authenticat", "credential"))
    # and the same registry with the right password in the docker config works
    s = fx()
    d = tmp("auth-ok")
    s["faulty"].reset("auth")
    src = make_src(d, deps=False)
    lp("container", src, "-o", os.path.join(d, "o"), "--base", s["faulty"].ref("bad/auth:1"),
       "--tls-verify=false", "--cache-dir", os.path.join(d, "c"), env=lp_env(d, creds_config(d, s["faulty"].host)))
    assert any(a for _, _, st, a in s["faulty"].log if st == 200), "no authorized request"


def test_404_tag():
    _bad("notfound", "neg/c", ("404", "not found", "unknown", "no such"))


def test_500_then_success_is_retried():
    s = fx()
    f = s["faulty"]
    d = tmp("flaky")
    src = make_src(d, deps=False)
    f.reset("flaky")
    out = os.path.join(d, "out")
    lp("container", src, "-o", out, "--base", f.ref("bad/flaky:1"), "--tls-verify=false",
       "--cache-dir", os.path.join(d, "cache"), env=lp_env(d))
    st = f.statuses()
    assert 500 in st and 200 in st, st
    bman = json.loads(regfix.read_layout(s["bb"])[0])
    assert layout_image(out)[1]["layers"][0]["digest"] == bman["layers"][0]["digest"]


def test_429_with_retry_after_is_retried():
    """A rate limit that lifts: each first request gets 429 with Retry-After: 1, and the pull waits and
    asks again instead of failing the build."""
    s = fx()
    d = tmp("429")
    src = make_src(d, deps=False)
    f = s["faulty"]
    f.reset("ratelimit1")
    out = os.path.join(d, "o")
    lp("container", src, "-o", out, "--base", f.ref("rl/busybox:1"), "--tls-verify=false",
       "--cache-dir", os.path.join(d, "cache"), "--no-check", env=lp_env(d))
    limited = [(m, p) for m, p, st, _ in f.log if st == 429]
    assert limited, f.log
    for m, p in limited:
        assert any((m2, p2, 200) == (m, p, st2) for m2, p2, st2, _ in f.log), ("not asked again", m, p, f.log)
    assert os.path.isdir(out)


def test_dropped_connections_are_retried():
    s = fx()
    f = s["faulty"]
    d = tmp("drop")
    src = make_src(d, deps=False)
    f.reset("drop")
    out = os.path.join(d, "out")
    lp("container", src, "-o", out, "--base", f.ref("neg/h:1"), "--tls-verify=false",
       "--cache-dir", os.path.join(d, "cache"), env=lp_env(d))
    assert 0 in f.statuses() and 200 in f.statuses(), f.statuses()
    bman = json.loads(regfix.read_layout(s["bb"])[0])
    assert layout_image(out)[1]["layers"][0]["digest"] == bman["layers"][0]["digest"]


def test_429_and_403_named():
    _bad("ratelimit", "neg/i", ("429", "too many", "rate"))
    _bad("forbidden", "neg/j", ("403", "forbidden", "denied"))


def test_500_forever_fails_after_retries():
    p, _ = _bad("down", "neg/d", ("500", "server error", "internal"))
    assert fx()["faulty"].statuses().count(500) >= 2, "a 5xx was not retried"


def test_connection_refused():
    s = fx()

    class Closed:
        host = "127.0.0.1:%d" % regfix.closed_port()
    _bad("refused", "neg/e", ("refused", "connect"), server=Closed)


def test_stalled_server_times_out():
    s = fx()
    st = s["fx"].stall()
    _bad("stall", "neg/f", ("timeout", "timed out"), {"LAMBDAPACK_REGISTRY_TIMEOUT": TIMEOUT}, server=st)


def test_stall_in_the_middle_of_a_blob_times_out():
    _bad("stallbody", "neg/g", ("timeout", "timed out", "stall"), {"LAMBDAPACK_REGISTRY_TIMEOUT": TIMEOUT})


def test_zz_no_secret_in_registry_logs():
    s = fx()
    for r in (s["reg"], s["tok"], s["plain"]):
        for path in (r.access_path, r.err_path):
            with open(path, errors="replace") as f:
                t = f.read()
            for secret in SECRETS:
                assert secret not in t, "credential in %s" % path


if __name__ == "__main__":
    missing = [t for t in ("docker-registry", "skopeo") if not shutil.which(t)]
    if missing:
        print("SKIP: %s not installed (scripts/install-deps.sh --test installs it); "
              "the registry tests did NOT run" % ", ".join(missing))
        sys.exit(77)
    if not LP:
        print(__doc__)
        sys.exit(2)
    main(globals())
