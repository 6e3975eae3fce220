"""End-to-end tests of `lambdapack container`, checked with independent tools.

Readers used (none of them shares code with lambdapack): python's tarfile,
hashlib and jsonschema with the image-spec schemas Debian ships, umoci,
skopeo, oci-image-tool, podman (runc, vfs), Debian's dockerd (vfs) and
Debian's docker-registry.
A tool that cannot run here makes its test FAIL with a loud reason; nothing
is skipped silently.

usage: test_container.py LAMBDAPACK [OCI_FIXTURE]
"""
import glob
import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tarfile
import time
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import lptest  # noqa: E402
from lptest import Skip, main, run  # noqa: E402
from lptest import interrupt as _interrupt  # noqa: E402

_made = []


def tmpdir(tag):
    # Removed at exit (podman's vfs storage alone is tens of MB); LP_KEEP=1 keeps them.
    d = lptest.tmpdir("oci-" + tag)
    _made.append(d)
    return d


def _cleanup():
    if not os.environ.get("LP_KEEP"):
        for d in _made:
            shutil.rmtree(d, ignore_errors=True)

LP = os.path.abspath(sys.argv[1])
FIXTURE = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None
EPOCH = 315532800  # 1980-01-01, the default
SCHEMA_DIR = "/usr/share/gocode/src/github.com/opencontainers/image-spec/schema"

warnings.simplefilter("ignore", DeprecationWarning)  # jsonschema.RefResolver, still fine here

LIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]


def need(*tools):
    for t in tools:
        if not shutil.which(t):
            raise Skip("REQUIRED TOOL MISSING: %s (apt-get install it); this test did NOT run" % t)


def container(*args, check=True, env=None, cwd=None, runnable_check=False):
    """These tests pin the image format, not what it runs: most of their images have no
    Entrypoint, so the runnability check (tests/oci/test_runnable.py) is a warning here."""
    e = dict(os.environ)
    e.pop("SOURCE_DATE_EPOCH", None)
    if env:
        e.update(env)
    extra = [] if runnable_check else ["--no-check"]
    return run([LP, "container", *map(str, args), *extra], check=check, env=e, cwd=cwd)


def make_tree(root):
    """A function with code, node and python dependencies, /opt content, links and modes."""
    files = {
        "app.py": b"def handler(e, c):\n    return 'hi'\n",
        "index.js": b"exports.handler = async () => 'hi';\n",
        "data/big.bin": os.urandom(300_000),
        "data/empty": b"",
        "bin/tool": b"#!/bin/sh\necho tool\n",
        "node_modules/left-pad/index.js": b"module.exports = 1;\n",
        "node_modules/left-pad/package.json": b'{"name":"left-pad"}\n',
        "node_modules/@aws/sdk/index.js": b"module.exports = 2;\n",
        "requests/__init__.py": b"# requests\n",
        "requests/api.py": b"def get(): pass\n",
        "requests-2.31.0.dist-info/RECORD": b"requests/__init__.py,sha256=x,11\nrequests/api.py,sha256=y,16\n",
        "requests-2.31.0.dist-info/METADATA": b"Name: requests\n",
        "opt/extensions/ext": b"#!/bin/sh\necho ext\n",
        "a" * 120 + "/" + "b" * 120 + ".txt": b"long name\n",
        "unicode-\u00e9t\u00e9.txt": "caf\u00e9\n".encode(),
    }
    for rel, data in files.items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
    for rel in ("bin/tool", "opt/extensions/ext"):
        os.chmod(os.path.join(root, rel), 0o755)
    os.chmod(os.path.join(root, "app.py"), 0o600)
    os.makedirs(os.path.join(root, "empty-dir"))
    os.symlink("app.py", os.path.join(root, "link-to-app.py"))
    os.symlink("../left-pad", os.path.join(root, "node_modules/@aws/lp"))
    return root


def tree_of(root):
    """path -> (kind, mode, bytes or link target, inode) for every entry below root."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", None, os.readlink(p), None)
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode), None, None)
            else:
                with open(p, "rb") as f:
                    out[rel] = ("file", stat.S_IMODE(st.st_mode), f.read(), (st.st_dev, st.st_ino))
    return out


def expected_mode(src, rel):
    st = os.lstat(os.path.join(src, rel))
    if stat.S_ISDIR(st.st_mode):
        return 0o755
    with open(os.path.join(src, rel), "rb") as f:
        head = f.read(4)
    return 0o755 if (st.st_mode & 0o111) or head[:2] == b"#!" or head == b"\x7fELF" else 0o644


def blob(layout, digest):
    return os.path.join(layout, "blobs", *digest.split(":", 1))


def load_json(path):
    with open(path) as f:
        return json.load(f)


def image_parts(layout):
    index = load_json(os.path.join(layout, "index.json"))
    mdesc = index["manifests"][0]
    manifest = load_json(blob(layout, mdesc["digest"]))
    config = load_json(blob(layout, manifest["config"]["digest"]))
    return index, mdesc, manifest, config


def schema_validator():
    try:
        import jsonschema
    except ImportError:
        raise Skip("python3-jsonschema is not installed; schema validation did NOT run")
    if not os.path.isdir(SCHEMA_DIR):
        raise Skip("image-spec schemas not found at %s (golang-github-opencontainers-image-spec-dev)" % SCHEMA_DIR)
    store = {}
    for p in glob.glob(os.path.join(SCHEMA_DIR, "*.json")):
        s = load_json(p)
        name = os.path.basename(p)
        # Register under the file name, the id and the aliases schema.go maps.
        store[name] = s
        store["https://opencontainers.org/schema/" + name] = s
        if "id" in s:
            store[s["id"]] = s
    aliases = {
        "https://opencontainers.org/schema/image/descriptor": "content-descriptor.json",
        "https://opencontainers.org/schema/image/index": "image-index-schema.json",
        "https://opencontainers.org/schema/image/manifest": "image-manifest-schema.json",
        "https://opencontainers.org/schema/image/config": "config-schema.json",
        "https://opencontainers.org/schema/image/layout": "image-layout-schema.json",
        "https://opencontainers.org/schema/image/defs.json": "defs.json",
        "https://opencontainers.org/schema/image/defs-descriptor.json": "defs-descriptor.json",
        "https://opencontainers.org/schema/image/content-descriptor.json": "content-descriptor.json",
    }
    for k, v in aliases.items():
        store[k] = store[v]

    def by_basename(uri):
        # Every $ref names a file of the same directory; never go to the network.
        return store[uri.rstrip("/").rsplit("/", 1)[-1]]

    def validate(name, doc):
        s = store[name]
        resolver = jsonschema.RefResolver(base_uri=s.get("id", ""), referrer=s, store=store,
                                          handlers={"https": by_basename, "http": by_basename})
        jsonschema.Draft4Validator(s, resolver=resolver).validate(doc)
    return validate


def check_layout(layout, n_base=0):
    """Schemas, digests, sizes, diff_ids: everything a strict registry would check."""
    validate = schema_validator()
    validate("image-layout-schema.json", load_json(os.path.join(layout, "oci-layout")))
    index, mdesc, manifest, config = image_parts(layout)
    validate("image-index-schema.json", index)
    validate("image-manifest-schema.json", manifest)
    validate("config-schema.json", config)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert len(index["manifests"]) == 1, "Lambda wants exactly one single-platform manifest"
    assert mdesc["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert mdesc["platform"]["os"] == "linux"
    assert mdesc["platform"]["architecture"] == config["architecture"]
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    descs = [mdesc, manifest["config"]] + manifest["layers"]
    for d in descs:
        data = open(blob(layout, d["digest"]), "rb").read()
        assert len(data) == d["size"], d
        assert "sha256:" + hashlib.sha256(data).hexdigest() == d["digest"], d
    assert len(config["rootfs"]["diff_ids"]) == len(manifest["layers"])
    assert len([h for h in config["history"] if not h.get("empty_layer")]) == len(manifest["layers"])
    for i, (d, diff) in enumerate(zip(manifest["layers"], config["rootfs"]["diff_ids"])):
        mt = d["mediaType"]
        raw = open(blob(layout, d["digest"]), "rb").read()
        if mt.endswith("+gzip"):
            import gzip
            assert raw[:2] == b"\x1f\x8b"
            # Single member, no name, no time: FLG 0, MTIME 0.
            if i >= n_base:  # the base's layers are reused as they are
                assert raw[3] == 0 and raw[4:8] == b"\0\0\0\0", raw[:10]
            tar = gzip.decompress(raw)
        elif mt.endswith("+zstd"):
            tar = subprocess.run(["zstd", "-dc"], input=raw, capture_output=True, check=True).stdout
        else:
            tar = raw
        assert "sha256:" + hashlib.sha256(tar).hexdigest() == diff, "diff_id mismatch"
    return index, manifest, config


def check_layer_tars(layout, epoch=EPOCH):
    """Tar headers as python's tarfile reads them: sorted, parents first, normalized."""
    _, manifest, _ = check_layout(layout)
    for d in manifest["layers"]:
        with tarfile.open(blob(layout, d["digest"])) as t:
            names = []
            for m in t.getmembers():
                names.append(m.name)
                assert m.uid == 0 and m.gid == 0, m.name
                assert m.uname == "" and m.gname == "", (m.name, m.uname, m.gname)
                assert m.mtime == epoch, (m.name, m.mtime)
                assert set(m.pax_headers) <= {"path", "linkpath"}, (m.name, m.pax_headers)
                if m.isdir():
                    assert m.mode == 0o755, m.name
                elif m.isfile():
                    assert m.mode in (0o644, 0o755), (m.name, oct(m.mode))
                parent = os.path.dirname(m.name)
                if parent:
                    assert parent in names, ("parent after child", m.name)
            assert names == sorted(names, key=lambda s: s.encode()), names
            assert len(names) == len(set(names)), "duplicate paths"


def umoci_unpack(layout, tag, bundle):
    need("umoci")
    run(["umoci", "unpack", "--rootless", "--image", "%s:%s" % (layout, tag), bundle])
    return os.path.join(bundle, "rootfs")


def compare_rootfs(src, rootfs, prefix="var/task", opt=True):
    want = tree_of(src)
    got_task = tree_of(os.path.join(rootfs, prefix))
    for rel, (kind, mode, data, _) in want.items():
        target = rel
        if opt and (rel == "opt" or rel.startswith("opt/")):
            g = tree_of(os.path.join(rootfs, "opt")).get(os.path.relpath(rel, "opt")) if rel != "opt" else ("dir",)
        else:
            g = got_task.get(target)
        assert g is not None, "missing in image: " + rel
        assert g[0] == kind, (rel, g[0], kind)
        if kind == "file":
            assert g[2] == data, "content differs: " + rel
            assert g[1] == expected_mode(src, rel), (rel, oct(g[1]))
        elif kind == "link":
            assert g[2] == data, (rel, g[2], data)
    extra = set(got_task) - set(want)
    assert not extra, ("extra in image", extra)


# ---------------------------------------------------------------- tests

def test_schemas_digests_and_tar_headers():
    d = tmpdir("schema")
    src = make_tree(os.path.join(d, "src"))
    out = os.path.join(d, "img")
    j = os.path.join(d, "r.json")
    container(src, "-o", out, "--handler", "app.handler", "--env", "A=1", "--json", j)
    check_layer_tars(out)
    index, manifest, config = check_layout(out)
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "latest"
    cfg = config["config"]
    assert cfg["Cmd"] == ["app.handler"], cfg
    assert "A=1" in cfg["Env"] and "LAMBDA_TASK_ROOT=/var/task" in cfg["Env"], cfg
    assert cfg["WorkingDir"] == "/var/task"
    assert config["created"] == "1980-01-01T00:00:00Z"
    assert config["architecture"] == "amd64" and config["os"] == "linux"
    assert all(l["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip" for l in manifest["layers"])
    # Layering: /opt, dependencies, code; in that order.
    hist = [h["created_by"] for h in config["history"]]
    assert "/opt content" in hist[0] and "dependencies" in hist[1] and "function code" in hist[-1], hist
    layer_names = []
    for l in manifest["layers"]:
        with tarfile.open(blob(out, l["digest"])) as t:
            layer_names.append(set(t.getnames()))
    assert "opt/extensions/ext" in layer_names[0]
    deps, code = layer_names[1], layer_names[-1]
    for p in ("var/task/node_modules/left-pad/index.js", "var/task/requests/api.py",
              "var/task/requests-2.31.0.dist-info/RECORD", "var/task/node_modules/@aws/sdk/index.js"):
        assert p in deps and p not in code, p
    for p in ("var/task/app.py", "var/task/index.js", "var/task/data/big.bin", "var/task/empty-dir"):
        assert p in code and p not in deps, p
    rep = load_json(j)
    assert rep["artifact"]["manifest_digest"] == index["manifests"][0]["digest"]
    assert rep["artifact"]["type"] == "oci-layout" and rep["artifact"]["written"] is True


def test_code_change_reuses_dependency_layer():
    d = tmpdir("reuse")
    src = make_tree(os.path.join(d, "src"))
    a, b = os.path.join(d, "a"), os.path.join(d, "b")
    container(src, "-o", a, "-q")
    with open(os.path.join(src, "app.py"), "ab") as f:
        f.write(b"# changed\n")
    container(src, "-o", b, "-q")
    la = image_parts(a)[2]["layers"]
    lb = image_parts(b)[2]["layers"]
    assert [x["digest"] for x in la[:-1]] == [x["digest"] for x in lb[:-1]], "dependency layers changed"
    assert la[-1]["digest"] != lb[-1]["digest"]


def test_umoci_unpack_matches_input_tree():
    d = tmpdir("umoci")
    src = make_tree(os.path.join(d, "src"))
    out = os.path.join(d, "img")
    container(src, "-o", out, "--tag", "v1")
    rootfs = umoci_unpack(out, "v1", os.path.join(d, "bundle"))
    compare_rootfs(src, rootfs)
    assert stat.S_IMODE(os.stat(os.path.join(rootfs, "var/task")).st_mode) == 0o755


def test_hard_links_survive_umoci_unpack():
    if not FIXTURE:
        raise Skip("oci_fixture helper not given; hard-link test did NOT run")
    d = tmpdir("hl")
    src = os.path.join(d, "src")
    os.makedirs(os.path.join(src, "node_modules/x"))
    os.makedirs(os.path.join(src, "node_modules/y"))
    payload = os.urandom(50_000)
    for p in ("node_modules/x/lib.so", "node_modules/y/lib.so", "copy.so"):
        with open(os.path.join(src, p), "wb") as f:
            f.write(payload)
    out = os.path.join(d, "img")
    run([FIXTURE, "--dedupe", src, out])
    check_layer_tars(out)
    rootfs = umoci_unpack(out, "latest", os.path.join(d, "bundle"))
    t = tree_of(os.path.join(rootfs, "var/task"))
    for p in ("node_modules/x/lib.so", "node_modules/y/lib.so", "copy.so"):
        assert t[p][2] == payload, p
    # Within the dependency layer the two copies are one inode; the code layer has its own copy.
    assert t["node_modules/x/lib.so"][3] == t["node_modules/y/lib.so"][3]
    manifest = image_parts(out)[2]
    links = []
    for l in manifest["layers"]:
        with tarfile.open(blob(out, l["digest"])) as tf:
            links += [(m.name, m.linkname) for m in tf.getmembers() if m.islnk()]
    assert links == [("var/task/node_modules/y/lib.so", "var/task/node_modules/x/lib.so")], links


def test_skopeo_inspect_and_copy():
    need("skopeo")
    d = tmpdir("skopeo")
    src = make_tree(os.path.join(d, "src"))
    out = os.path.join(d, "img")
    container(src, "-o", out, "--tag", "v2")
    info = json.loads(run(["skopeo", "inspect", "oci:%s:v2" % out]).stdout)
    assert info["Architecture"] == "amd64" and info["Os"] == "linux"
    assert info["Digest"] == image_parts(out)[0]["manifests"][0]["digest"]
    run(["skopeo", "copy", "oci:%s:v2" % out, "docker-archive:%s:fn:v2" % os.path.join(d, "d.tar")])
    run(["skopeo", "copy", "oci:%s:v2" % out, "oci-archive:%s" % os.path.join(d, "o.tar")])
    run(["skopeo", "inspect", "docker-archive:%s" % os.path.join(d, "d.tar")])
    run(["skopeo", "inspect", "oci-archive:%s" % os.path.join(d, "o.tar")])


def test_oci_archive_tar_read_by_skopeo_and_docker_manifest():
    need("skopeo")
    d = tmpdir("tar")
    src = make_tree(os.path.join(d, "src"))
    out = os.path.join(d, "img.tar")
    container(src, "-o", out, "--tag", "v3")
    with tarfile.open(out) as t:
        names = t.getnames()
        assert {"oci-layout", "index.json", "manifest.json"} <= set(names), names
        dm = json.load(t.extractfile("manifest.json"))
        t.extractall(os.path.join(d, "x"))
    check_layout(os.path.join(d, "x"))
    _, manifest, _ = check_layout(os.path.join(d, "x"))
    assert dm[0]["Config"] == "blobs/sha256/" + manifest["config"]["digest"][7:]
    assert dm[0]["Layers"] == ["blobs/sha256/" + l["digest"][7:] for l in manifest["layers"]]
    assert dm[0]["RepoTags"] == ["lambda-function:v3"]
    run(["skopeo", "inspect", "oci-archive:%s" % out])
    run(["skopeo", "inspect", "docker-archive:%s" % out])


def test_oci_image_tool_validate():
    need("oci-image-tool")
    d = tmpdir("oit")
    src = make_tree(os.path.join(d, "src"))
    out = os.path.join(d, "img")
    container(src, "-o", out)
    run(["oci-image-tool", "validate", "--type", "image", "--ref", "name=latest", out])
    p = run(["oci-image-tool", "validate", "--type", "image", "--ref", "name=nope", out], check=False)
    assert p.returncode != 0, "oci-image-tool accepted a missing ref: it is not really checking"


def podman(root, *args, check=True):
    need("podman", "runc")
    return run(["podman", "--root", os.path.join(root, "root"), "--runroot", os.path.join(root, "runroot"),
                "--storage-driver=vfs", "--runtime", "runc", "--cgroup-manager=cgroupfs",
                "--events-backend=file", *args], check=check)


BOOTSTRAP_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	char cwd[256], buf[64] = "";
	FILE *f = fopen("/var/task/data/msg.txt", "r");
	if (f) { if (!fgets(buf, sizeof buf, f)) buf[0] = 0; fclose(f); }
	if (!getcwd(cwd, sizeof cwd)) cwd[0] = 0;
	printf("bootstrap ok handler=%s root=%s cwd=%s msg=%s ext=%s\n", argc > 1 ? argv[1] : "-",
	       getenv("LAMBDA_TASK_ROOT"), cwd, buf, access("/opt/extensions/ext.sh", X_OK) == 0 ? "yes" : "no");
	return 0;
}
"""


def build_bootstrap(d):
    need("cc")
    c = os.path.join(d, "bootstrap.c")
    with open(c, "w") as f:
        f.write(BOOTSTRAP_C)
    src = os.path.join(d, "fn")
    os.makedirs(os.path.join(src, "data"))
    os.makedirs(os.path.join(src, "opt/extensions"))
    run(["cc", "-static", "-O2", "-o", os.path.join(src, "bootstrap"), c])
    with open(os.path.join(src, "data/msg.txt"), "w") as f:
        f.write("from-the-task-root")
    with open(os.path.join(src, "opt/extensions/ext.sh"), "w") as f:
        f.write("#!/bin/sh\n")
    os.chmod(os.path.join(src, "opt/extensions/ext.sh"), 0o755)
    return src


def test_podman_load_and_run_bootstrap():
    d = tmpdir("podman")
    src = build_bootstrap(d)
    out = os.path.join(d, "img.tar")
    container(src, "-o", out, "--handler", "my.handler", "--tag", "run1")
    p = podman(d, "load", "-i", out)
    loaded = [l.split(":", 1)[1].strip() for l in p.stdout.splitlines() if l.startswith("Loaded image")]
    assert loaded, p.stdout + p.stderr
    r = podman(d, "run", "--rm", "--network=none", *LIMITS, loaded[0])
    want = "bootstrap ok handler=my.handler root=/var/task cwd=/var/task msg=from-the-task-root ext=yes"
    assert r.stdout.strip() == want, (r.stdout, r.stderr)
    # The directory layout runs too, straight from oci:DIR:TAG (podman 4.3 names the
    # image after the path, so keep it to characters a reference allows).
    safe = "/tmp/lpoci-podman-%d" % os.getpid()
    shutil.rmtree(safe, ignore_errors=True)
    os.makedirs(safe)
    out2 = os.path.join(safe, "img")
    container(src, "-o", out2, "--handler", "my.handler", "--tag", "run2")
    try:
        r = podman(d, "run", "--rm", "--network=none", *LIMITS, "oci:%s:run2" % out2)
        assert r.stdout.strip() == want, (r.stdout, r.stderr)
    finally:
        shutil.rmtree(safe, ignore_errors=True)



def test_docker_load_and_run_bootstrap():
    """Debian's dockerd (vfs, no bridge/iptables, private data and exec roots) loads the tar,
    names the image by its config digest with our diff_ids, and runs the C bootstrap."""
    need("dockerd", "containerd", "runc")
    cli = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else shutil.which("docker")
    if not cli:
        raise Skip("REQUIRED TOOL MISSING: docker (apt-get install docker.io); this test did NOT run")
    d = tmpdir("docker")
    src = build_bootstrap(d)
    out = os.path.join(d, "img.tar")
    container(src, "-o", out, "--handler", "my.handler", "--tag", "dk1")
    with tarfile.open(out) as t:
        t.extractall(os.path.join(d, "x"))
    _, manifest, config = check_layout(os.path.join(d, "x"))
    # A unix socket path must stay short: keep the daemon's roots under /tmp.
    root = "/tmp/lpdk-%d" % os.getpid()
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    sock = "unix://%s/d.sock" % root
    log = open(os.path.join(root, "log"), "w")
    daemon = subprocess.Popen(["dockerd", "--data-root", root + "/data", "--exec-root", root + "/exec", "-H", sock,
                               "--pidfile", root + "/pid", "--storage-driver", "vfs", "--iptables=false",
                               "--ip-masq=false", "--bridge=none"], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(60):
            if os.path.exists(root + "/d.sock") and run([cli, "-H", sock, "info"], check=False).returncode == 0:
                break
            time.sleep(1)
        else:
            raise AssertionError("dockerd did not start: " + open(root + "/log").read()[-2000:])
        p = run([cli, "-H", sock, "load", "-i", out])
        assert "Loaded image: lambda-function:dk1" in p.stdout, p.stdout + p.stderr
        p = run([cli, "-H", sock, "image", "inspect", "lambda-function:dk1"])
        info = json.loads(p.stdout)[0]
        # docker's image ID is the config digest; its layers are our diff_ids.
        assert info["Id"] == manifest["config"]["digest"], (info["Id"], manifest["config"]["digest"])
        assert info["RootFS"]["Layers"] == config["rootfs"]["diff_ids"]
        assert info["Config"]["Cmd"] == ["my.handler"] and info["Architecture"] == "amd64", info["Config"]
        r = run([cli, "-H", sock, "run", "--rm", "--network=none", "lambda-function:dk1"])
        want = "bootstrap ok handler=my.handler root=/var/task cwd=/var/task msg=from-the-task-root ext=yes"
        assert r.stdout.strip() == want, (r.stdout, r.stderr)
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()
        # dockerd bind-mounts its data root and unmounts it on exit; make sure before removing.
        with open("/proc/mounts") as m:
            for line in reversed(m.read().splitlines()):
                mp = line.split()[1]
                if mp.startswith(root):
                    subprocess.run(["umount", "-l", mp], check=False)
        shutil.rmtree(root, ignore_errors=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_registry_push_and_pull_keep_digests():
    need("skopeo", "docker-registry")
    d = tmpdir("reg")
    src = make_tree(os.path.join(d, "src"))
    out = os.path.join(d, "img")
    container(src, "-o", out, "--tag", "v1")
    port = free_port()
    cfg = os.path.join(d, "registry.yml")
    with open(cfg, "w") as f:
        f.write("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\n"
                "http:\n  addr: 127.0.0.1:%d\n" % (os.path.join(d, "storage"), port))
    proc = subprocess.Popen(["docker-registry", "serve", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None:
                    raise AssertionError("docker-registry exited: %s" % proc.stderr.read().decode())
                time.sleep(0.1)
        ref = "docker://127.0.0.1:%d/fn:v1" % port
        run(["skopeo", "copy", "--dest-tls-verify=false", "oci:%s:v1" % out, ref])
        info = json.loads(run(["skopeo", "inspect", "--tls-verify=false", ref]).stdout)
        _, mdesc, manifest, _ = image_parts(out)
        assert info["Digest"] == mdesc["digest"], (info["Digest"], mdesc["digest"])
        assert info["Layers"] == [l["digest"] for l in manifest["layers"]]
        back = os.path.join(d, "back")
        run(["skopeo", "copy", "--src-tls-verify=false", ref, "oci:%s:v1" % back])
        _, mdesc2, manifest2, _ = image_parts(back)
        assert mdesc2["digest"] == mdesc["digest"]
        assert [l["digest"] for l in manifest2["layers"]] == [l["digest"] for l in manifest["layers"]]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _touch_all(root, t):
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            os.utime(os.path.join(dirpath, n), (t, t), follow_symlinks=False)


def test_reproducible_across_mtimes_and_threads():
    d = tmpdir("repro")
    a = make_tree(os.path.join(d, "a"))
    b = os.path.join(d, "b")
    shutil.copytree(a, b, symlinks=True)
    _touch_all(a, 1_000_000_000)
    _touch_all(b, 1_700_000_000)
    digests = set()
    tars = set()
    for src, j, comp in ((a, 1, "gzip"), (b, 2, "gzip"), (b, 4, "gzip")):
        out = os.path.join(d, "o%d" % j)
        container(src, "-o", out, "-j", j, "--layer-max", "1K", "--compression", comp, "-q")
        digests.add(image_parts(out)[0]["manifests"][0]["digest"])
        container(src, "-o", out + ".tar", "-j", j, "--layer-max", "1K", "-q")
        tars.add(hashlib.sha256(open(out + ".tar", "rb").read()).hexdigest())
    assert len(digests) == 1, digests
    assert len(tars) == 1, tars
    zd = set()
    for j in (1, 2):
        out = os.path.join(d, "z%d" % j)
        container(b, "-o", out, "-j", j, "--compression", "zstd", "-q")
        zd.add(image_parts(out)[0]["manifests"][0]["digest"])
        check_layout(out)
    assert len(zd) == 1, zd
    # SOURCE_DATE_EPOCH moves every timestamp.
    out = os.path.join(d, "sde")
    container(a, "-o", out, "-q", env={"SOURCE_DATE_EPOCH": "1700000000"})
    assert image_parts(out)[3]["created"] == "2023-11-14T22:13:20Z"
    check_layer_tars(out, epoch=1700000000)


def make_busybox_base(d, tag="bb"):
    """An OCI base image built with umoci from a busybox-static root."""
    need("umoci", "busybox")
    bb = "/bin/busybox"
    layout = os.path.join(d, "base")
    run(["umoci", "init", "--layout", layout])
    run(["umoci", "new", "--image", "%s:%s" % (layout, tag)])
    bundle = os.path.join(d, "base-bundle")
    run(["umoci", "unpack", "--rootless", "--image", "%s:%s" % (layout, tag), bundle])
    rootfs = os.path.join(bundle, "rootfs")
    os.makedirs(os.path.join(rootfs, "bin"), exist_ok=True)
    shutil.copy(bb, os.path.join(rootfs, "bin/busybox"))
    for tool in ("sh", "cat", "ls", "env"):
        os.symlink("busybox", os.path.join(rootfs, "bin", tool))
    os.makedirs(os.path.join(rootfs, "var"), exist_ok=True)
    run(["umoci", "repack", "--image", "%s:%s" % (layout, tag), bundle])
    run(["umoci", "config", "--image", "%s:%s" % (layout, tag), "--config.env", "PATH=/bin",
         "--config.env", "BASE_VAR=1", "--config.entrypoint", "/bin/sh", "--config.cmd", "-c",
         "--config.workingdir", "/", "--architecture", "amd64", "--os", "linux"])
    run(["umoci", "gc", "--layout", layout])
    return layout


def test_base_oci_layout():
    d = tmpdir("base")
    base = make_busybox_base(d)
    src = make_tree(os.path.join(d, "src"))
    out = os.path.join(d, "img")
    container(src, "-o", out, "--base", "oci:%s:bb" % base, "--env", "BASE_VAR=2", "--env", "X=y")
    _, bmdesc, bman, bcfg = image_parts(base)
    n = len(bman["layers"])
    index, manifest, config = check_layout(out, n_base=n)
    assert [l["digest"] for l in manifest["layers"][:n]] == [l["digest"] for l in bman["layers"]], \
        "base layers must be reused byte for byte"
    assert config["rootfs"]["diff_ids"][:n] == bcfg["rootfs"]["diff_ids"]
    cfg = config["config"]
    assert cfg["Env"][:2] == ["PATH=/bin", "BASE_VAR=2"], cfg["Env"]
    assert "X=y" in cfg["Env"] and "LAMBDA_TASK_ROOT=/var/task" in cfg["Env"]
    assert cfg["Entrypoint"] == ["/bin/sh"] and cfg["WorkingDir"] == "/", cfg
    assert len(config["history"]) == len(bcfg.get("history", [])) + len(manifest["layers"]) - n
    rootfs = umoci_unpack(out, "latest", os.path.join(d, "bundle"))
    assert os.path.isfile(os.path.join(rootfs, "bin/busybox"))
    assert os.readlink(os.path.join(rootfs, "bin/sh")) == "busybox"
    compare_rootfs(src, rootfs)
    # And it runs: the base's shell sees our files and the merged environment.
    outtar = os.path.join(d, "img.tar")
    container(src, "-o", outtar, "--base", "oci:%s:bb" % base, "--env", "BASE_VAR=2", "--tag", "b1", "-q")
    p = podman(d, "load", "-i", outtar)
    loaded = [l.split(":", 1)[1].strip() for l in p.stdout.splitlines() if l.startswith("Loaded image")]
    assert loaded, p.stdout
    r = podman(d, "run", "--rm", "--network=none", *LIMITS, loaded[0], "-c",
               "cat /var/task/requests/api.py; echo $BASE_VAR")
    assert r.stdout == "def get(): pass\n2\n", (r.stdout, r.stderr)


def test_base_docker_archive():
    need("skopeo")
    d = tmpdir("dbase")
    base = make_busybox_base(d)
    darch = os.path.join(d, "base.tar")
    run(["skopeo", "copy", "oci:%s:bb" % base, "docker-archive:%s:base:bb" % darch])
    src = make_tree(os.path.join(d, "src"))
    out = os.path.join(d, "img")
    container(src, "-o", out, "--base", "docker-archive:%s" % darch)
    bcfg = image_parts(base)[3]
    n = len(bcfg["rootfs"]["diff_ids"])
    index, manifest, config = check_layout(out, n_base=n)
    assert config["rootfs"]["diff_ids"][:n] == bcfg["rootfs"]["diff_ids"]
    rootfs = umoci_unpack(out, "latest", os.path.join(d, "bundle"))
    assert os.path.isfile(os.path.join(rootfs, "bin/busybox"))
    compare_rootfs(src, rootfs)
    run(["skopeo", "inspect", "oci:%s:latest" % out])


def test_base_oci_archive_and_corrupt_blob():
    """--base oci-archive:FILE[:TAG] reuses the base layers byte for byte; a
    base whose layer blob does not match its digest is refused (exit 1, one
    line naming the blob), nothing written, the base left as it was."""
    need("skopeo", "umoci")
    d = tmpdir("abase")
    base = make_busybox_base(d)
    oarch = os.path.join(d, "base-oci.tar")
    run(["skopeo", "copy", "oci:%s:bb" % base, "oci-archive:%s:bb" % oarch])
    src = make_tree(os.path.join(d, "src"))
    out = os.path.join(d, "img")
    container(src, "-o", out, "--base", "oci-archive:%s:bb" % oarch, "-q")
    _, _, bman, bcfg = image_parts(base)
    n = len(bman["layers"])
    index, manifest, config = check_layout(out, n_base=n)
    assert config["rootfs"]["diff_ids"][:n] == bcfg["rootfs"]["diff_ids"]
    rootfs = umoci_unpack(out, "latest", os.path.join(d, "bundle"))
    assert os.path.isfile(os.path.join(rootfs, "bin/busybox"))
    compare_rootfs(src, rootfs)
    # One flipped byte in the base's layer blob: refused before it is used.
    bad = os.path.join(d, "bad")
    shutil.copytree(base, bad)
    ldig = bman["layers"][0]["digest"]
    lpath = blob(bad, ldig)
    data = bytearray(open(lpath, "rb").read())
    data[len(data) // 2] ^= 0xFF
    with open(lpath, "wb") as f:
        f.write(data)
    before = snapshot(bad)
    out2 = os.path.join(d, "img2")
    p = container(src, "-o", out2, "--base", "oci:%s:bb" % bad, check=False)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert p.returncode == 1 and len(lines) == 1, (p.returncode, p.stderr)
    assert ldig.split(":")[1][:12] in lines[0] and "digest" in lines[0], lines
    assert not os.path.exists(out2) and snapshot(bad) == before
    assert not [f for f in os.listdir(d) if f.startswith(".img2")], os.listdir(d)


def test_arch_conflict_with_base_and_arm64():
    d = tmpdir("arch")
    base = make_busybox_base(d)
    src = make_tree(os.path.join(d, "src"))
    out = os.path.join(d, "img")
    p = container(src, "-o", out, "--base", "oci:%s:bb" % base, "--arch", "arm64", check=False)
    assert p.returncode == 4, (p.returncode, p.stderr)
    assert "amd64" in p.stderr and "arm64" in p.stderr, p.stderr
    assert not os.path.exists(out)
    container(src, "-o", out, "--arch", "arm64")
    index, manifest, config = check_layout(out)
    assert config["architecture"] == "arm64" and index["manifests"][0]["platform"]["architecture"] == "arm64"


def test_failures_leave_nothing_behind():
    d = tmpdir("fail")
    src = make_tree(os.path.join(d, "src"))
    out = os.path.join(d, "img")
    p = container(src, "-o", out, "--base", "oci:%s/nope:x" % d, check=False)
    assert p.returncode != 0
    assert os.listdir(d) == ["src"], os.listdir(d)
    p = container(src, "-o", out + ".tar", "--tag", "bad tag!", check=False)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert os.listdir(d) == ["src"], os.listdir(d)
    # A previous good image survives a failed rebuild.
    container(src, "-o", out, "-q")
    before = image_parts(out)[0]
    p = container(src, "-o", out, "--base", "docker-archive:%s/none.tar" % d, check=False)
    assert p.returncode != 0 and image_parts(out)[0] == before
    assert sorted(os.listdir(d)) == ["img", "src"], os.listdir(d)


def snapshot(root):
    """Every path under root with its type and bytes (links: their target), for byte-for-byte checks."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = ("dir", stat.S_IMODE(os.lstat(p).st_mode))
            else:
                out[rel] = ("file", open(p, "rb").read())
    return out


def siblings(path):
    """Temporaries beside an output (.NAME.XXXXXX)."""
    base = os.path.basename(path.rstrip("/"))
    return [f for f in os.listdir(os.path.dirname(path.rstrip("/"))) if f.startswith("." + base + ".")]


def test_output_directory_with_other_content_is_refused_untouched():
    d = tmpdir("keep")
    src = make_tree(os.path.join(d, "src"))
    src_before = snapshot(src)
    out = os.path.join(d, "out")
    os.makedirs(os.path.join(out, "notes"))
    with open(os.path.join(out, "notes", "precious.txt"), "w") as f:
        f.write("do not lose me\n")
    before = snapshot(out)
    for o in (out, out + "/"):
        p = container(src, "-o", o, check=False)
        assert p.returncode == 1, (p.returncode, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and o in lines[0] and "empty or new directory" in lines[0], p.stderr
        assert snapshot(out) == before
        assert siblings(out) == [], siblings(out)
    # A file, a symlink to a directory, a dangling symlink: never written through or replaced.
    f = os.path.join(d, "afile")
    open(f, "w").write("mine\n")
    link = os.path.join(d, "link")
    os.symlink("out", link)
    dangling = os.path.join(d, "dangling")
    os.symlink("nowhere", dangling)
    for o, why in ((f, "not a directory"), (link, "symbolic link"), (link + "/", "symbolic link"),
                   (dangling, "symbolic link")):
        p = container(src, "-o", o, check=False)
        assert p.returncode == 1 and why in p.stderr and o in p.stderr, (o, p.returncode, p.stderr)
    assert open(f).read() == "mine\n" and os.readlink(link) == "out" and os.readlink(dangling) == "nowhere"
    assert snapshot(out) == before
    # FILE.tar: a directory there is refused; a regular file is replaced (a build artifact).
    tdir = os.path.join(d, "img.tar")
    os.mkdir(tdir)
    open(os.path.join(tdir, "keep"), "w").write("x")
    p = container(src, "-o", tdir, check=False)
    assert p.returncode == 1 and "directory" in p.stderr and tdir in p.stderr, p.stderr
    assert os.listdir(tdir) == ["keep"]
    tfile = os.path.join(d, "old.tar")
    open(tfile, "w").write("stale")
    container(src, "-o", tfile, "-q")
    with tarfile.open(tfile) as t:
        assert "index.json" in t.getnames()
    # An empty directory is used as it is.
    empty = os.path.join(d, "empty")
    os.mkdir(empty)
    container(src, "-o", empty, "-q")
    check_layout(empty)
    assert snapshot(src) == src_before
    assert sorted(os.listdir(d)) == ["afile", "dangling", "empty", "img.tar", "link", "old.tar", "out", "src"]


def test_existing_layout_gains_the_image_and_the_tag_moves():
    need("umoci", "skopeo")
    d = tmpdir("merge")
    layout = os.path.join(d, "layout")
    # Another tool's image in the layout, and files that are not the layout's.
    run(["umoci", "init", "--layout", layout])
    run(["umoci", "new", "--image", layout + ":foreign"])
    os.makedirs(os.path.join(layout, "notes"))
    open(os.path.join(layout, "notes", "precious.txt"), "w").write("keep\n")
    open(os.path.join(layout, "README"), "w").write("mine\n")
    before = snapshot(layout)
    old_index = load_json(os.path.join(layout, "index.json"))
    src1 = make_tree(os.path.join(d, "src1"))
    p = container(src1, "-o", layout, "--tag", "fn")
    assert "added to the existing OCI image layout" in p.stderr, p.stderr
    after = snapshot(layout)
    # Everything that was there is still there byte for byte, except index.json.
    for rel, v in before.items():
        if rel != "index.json":
            assert after[rel] == v, rel
    index = load_json(os.path.join(layout, "index.json"))
    assert index["manifests"][0] == old_index["manifests"][0]
    tags = [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]]
    assert tags == ["foreign", "fn"], tags
    assert siblings(layout) == [] and not [f for f in os.listdir(layout) if f.startswith(".")]
    fn1 = index["manifests"][1]["digest"]
    # Both images read back with two independent tools.
    out = run(["umoci", "ls", "--layout", layout]).stdout.split()
    assert sorted(out) == ["fn", "foreign"], out
    for tag in ("foreign", "fn"):
        run(["skopeo", "inspect", "oci:%s:%s" % (layout, tag)])
        run(["skopeo", "copy", "oci:%s:%s" % (layout, tag), "oci-archive:%s/%s.tar" % (d, tag)])
    rootfs = umoci_unpack(layout, "fn", os.path.join(d, "b1"))
    compare_rootfs(src1, rootfs)
    umoci_unpack(layout, "foreign", os.path.join(d, "b0"))
    # Same tag, new content: the tag moves; the other image and the old blobs stay.
    src2 = make_tree(os.path.join(d, "src2"))
    with open(os.path.join(src2, "app.py"), "w") as f:
        f.write("def handler(e, c):\n    return 'v2'\n")
    mid = snapshot(layout)
    container(src2, "-o", layout, "--tag", "fn", "-q")
    index = load_json(os.path.join(layout, "index.json"))
    tags = [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]]
    assert tags == ["foreign", "fn"], tags
    assert index["manifests"][1]["digest"] != fn1
    now = snapshot(layout)
    for rel, v in mid.items():
        if rel != "index.json":
            assert now[rel] == v, rel
    rootfs = umoci_unpack(layout, "fn", os.path.join(d, "b2"))
    assert open(os.path.join(rootfs, "var/task/app.py")).read().endswith("'v2'\n")
    run(["skopeo", "inspect", "oci:%s:foreign" % layout])
    # The same image again under a second tag: its blobs are already there and kept.
    container(src2, "-o", layout, "--tag", "fn2", "-q")
    index = load_json(os.path.join(layout, "index.json"))
    assert [m["digest"] for m in index["manifests"]][1:] == [index["manifests"][1]["digest"]] * 2
    # A layout whose index cannot be read is not overwritten either.
    bad = os.path.join(d, "bad")
    run(["umoci", "init", "--layout", bad])
    open(os.path.join(bad, "index.json"), "w").write("{not json")
    p = container(src2, "-o", bad, check=False)
    assert p.returncode == 1 and "index.json" in p.stderr, p.stderr
    assert open(os.path.join(bad, "index.json")).read() == "{not json"


def test_output_inside_the_source_is_left_out():
    d = tmpdir("self")
    src = make_tree(os.path.join(d, "src"))
    digests = []
    for _ in range(2):
        p = container(".", "-o", "out/", "-v", cwd=src)
        index = load_json(os.path.join(src, "out", "index.json"))
        assert len(index["manifests"]) == 1, index
        digests.append(index["manifests"][0]["digest"])
    assert "left out ./out from the sources: the output" in p.stderr, p.stderr
    assert digests[0] == digests[1], "the second image took in the first"
    _, manifest, _ = check_layout(os.path.join(src, "out"))
    for l in manifest["layers"]:
        with tarfile.open(blob(os.path.join(src, "out"), l["digest"])) as t:
            assert not [n for n in t.getnames() if n.startswith("var/task/out")], t.getnames()
    # An oci-archive written into the source: the same.
    tars = []
    for _ in range(2):
        container(".", "-o", "img.tar", "-q", cwd=src)
        tars.append(open(os.path.join(src, "img.tar"), "rb").read())
    assert tars[0] == tars[1]


def test_sigterm_and_sigint_stop_staging_and_layer_writing():
    import signal
    import zipfile
    d = tmpdir("sig")
    many = os.path.join(d, "many.zip")
    with zipfile.ZipFile(many, "w", zipfile.ZIP_STORED) as zf:
        for i in range(200_000):
            zf.writestr("pkg%03d/f%06d.txt" % (i % 500, i), b"x")
    big = os.path.join(d, "big")
    os.makedirs(os.path.join(big, "node_modules", "a"))
    for i in range(4):
        with open(os.path.join(big, "node_modules", "a", "r%d.bin" % i), "wb") as f:
            f.write(os.urandom(48 << 20))
    with open(os.path.join(big, "app.py"), "w") as f:
        f.write("def handler(e, c): return 1\n")
    out = os.path.join(d, "out")
    os.mkdir(out)
    tmp = os.path.join(d, "tmp")
    os.mkdir(tmp)

    def staged():
        for s in os.listdir(tmp):
            try:
                if len(os.listdir(os.path.join(tmp, s, "in"))) >= 2000:
                    return True
            except OSError:
                pass
        return False

    def layer_started():
        for s in os.listdir(out):
            if glob.glob(os.path.join(out, s, "blobs", "sha256", ".layer-*")):
                return True
        return False

    # Staging the members of a 200,000-member zip.
    for sig in (signal.SIGTERM, signal.SIGINT):
        _interrupt([LP, "container", "--no-check", many, "-o", os.path.join(out, "img")], sig, staged, tmp, out)
    # Writing layers, into a layout and into an oci-archive.
    for sig, o in ((signal.SIGINT, "img"), (signal.SIGTERM, "img.tar")):
        _interrupt([LP, "container", "--no-check", big, "-o", os.path.join(out, o), "--level", "9", "-j", "1"], sig,
                   layer_started, tmp, out)
    # Adding to an existing layout: interrupted, the layout is left as it was.
    small = os.path.join(d, "small")
    os.mkdir(small)
    shutil.copy(os.path.join(big, "app.py"), small)
    layout = os.path.join(d, "layout")
    container(small, "-o", layout, "-q")
    before = snapshot(layout)
    keep = os.path.join(d, "keep")
    os.mkdir(keep)
    os.rename(layout, os.path.join(keep, "layout"))
    layout = os.path.join(keep, "layout")

    def layout_layer_started():
        return any(glob.glob(os.path.join(keep, ".layout.*", "blobs", "sha256", ".layer-*")))
    p = subprocess.Popen([LP, "container", "--no-check", big, "-o", layout, "--tag", "v2", "--level", "9", "-j", "1"],
                         stderr=subprocess.PIPE, text=True, env=dict(os.environ, TMPDIR=tmp))
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None and not layout_layer_started():
        time.sleep(0.005)
    assert p.poll() is None
    p.send_signal(signal.SIGTERM)
    err = p.communicate(timeout=5)[1]
    assert p.returncode == 130, (p.returncode, err)
    assert os.listdir(keep) == ["layout"] and os.listdir(tmp) == [], (os.listdir(keep), os.listdir(tmp))
    assert snapshot(layout) == before
    shutil.rmtree(d)


def test_member_2040_directories_deep():
    # One member 10,000 directories deep took minutes in the layer's parent
    # pass (each entry rescanned every prefix); now linear in the path length.
    # 10,000 levels (a 20,005-byte name) is refused by the reader: no Linux
    # program could open it (PATH_MAX). The deepest name that fits, in
    # /var/task, is 2,040 levels.
    d = tmpdir("deep")
    src = os.path.join(d, "deep.zip")
    name = "d/" * 2040 + "f.txt"
    import zipfile
    with zipfile.ZipFile(src, "w") as zf:
        zf.writestr(name, b"deep\n")
    out = os.path.join(d, "img")
    container(src, "-o", out, "-q")
    index, manifest, config = check_layout(out)
    assert len(manifest["layers"]) == 1
    layer = blob(out, manifest["layers"][0]["digest"])
    with tarfile.open(layer) as t:
        members = t.getmembers()
    names = [m.name for m in members]
    assert len(set(names)) == len(names), "duplicate members"
    dirs = [m.name for m in members if m.isdir()]
    files = [m for m in members if m.isfile()]
    assert [f.name for f in files] == ["var/task/" + name]
    # var, var/task, then every one of the 2,040 directories, each once.
    assert len(dirs) == 2042, len(dirs)
    want = {"var", "var/task"} | {"var/task/" + "/".join(["d"] * (i + 1)) for i in range(2040)}
    assert set(dirs) == want
    # bsdtar (libarchive-tools) reads the same member list.
    need("bsdtar")
    p = run(["bsdtar", "-tf", layer])
    listed = [n.rstrip("/") for n in p.stdout.splitlines()]
    assert sorted(listed) == sorted(names), (len(listed), len(names))
    shutil.rmtree(d)


def make_hostile_base(d, members, name="hbase"):
    """An OCI layout written by hand whose one gzip layer holds the given
    (name, type, data_or_linkname) members: no tool would write these."""
    import gzip as _gzip
    import io as _io
    layout = os.path.join(d, name)
    os.makedirs(os.path.join(layout, "blobs", "sha256"))
    raw = _io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        for mname, typ, val in members:
            ti = tarfile.TarInfo(mname)
            ti.mode = 0o644
            if typ == tarfile.LNKTYPE or typ == tarfile.SYMTYPE:
                ti.type = typ
                ti.linkname = val
                t.addfile(ti)
            else:
                ti.size = len(val)
                t.addfile(ti, _io.BytesIO(val))
    tar = raw.getvalue()
    gz = _gzip.compress(tar, mtime=0)

    def put(data):
        h = hashlib.sha256(data).hexdigest()
        with open(os.path.join(layout, "blobs", "sha256", h), "wb") as f:
            f.write(data)
        return "sha256:" + h, len(data)

    ldig, lsize = put(gz)
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/bin"]},
                      "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()]}}).encode()
    cdig, csize = put(cfg)
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdig, "size": csize},
                      "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                  "digest": ldig, "size": lsize}]}).encode()
    mdig, msize = put(man)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "digest": mdig, "size": msize, "annotations": {"org.opencontainers.image.ref.name": "h"}}]}, f)
    return layout, ldig


def _snapshot(root):
    out = {}
    for dp, dn, fn in os.walk(root):
        for n in fn:
            p = os.path.join(dp, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def test_hostile_base_layers_refused():
    """A base layer with '../' members, or a hard link to ../../../etc/shadow or
    /etc/shadow, is refused (exit 1, one line naming the image, the layer and
    the member); nothing is written; analyze lists the same problem."""
    d = tmpdir("hbase")
    src = make_tree(os.path.join(d, "src"))
    cases = [
        ("dotdot", [("bin/ok", tarfile.REGTYPE, b"ok"), ("../evil", tarfile.REGTYPE, b"x")], "../evil",
         "unsafe-name"),
        ("hlrel", [("etc/ok", tarfile.REGTYPE, b"ok"), ("etc/shadow", tarfile.LNKTYPE, "../../../etc/shadow")],
         "etc/shadow", "hardlink-outside"),
        ("hlabs", [("etc/ok", tarfile.REGTYPE, b"ok"), ("etc/pw", tarfile.LNKTYPE, "/etc/shadow")],
         "etc/pw", "hardlink-outside"),
        ("symesc", [("lib/up", tarfile.SYMTYPE, "../../../../root/.ssh")], "lib/up", "link-outside"),
    ]
    for name, members, member, code in cases:
        layout, ldig = make_hostile_base(d, members, name)
        before = _snapshot(layout)
        out = os.path.join(d, "img-" + name)
        p = container(src, "-o", out, "--base", "oci:%s:h" % layout, check=False)
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        assert p.returncode == 1, (name, p.returncode, p.stderr)
        assert len(lines) == 1, (name, p.stderr)
        assert layout in lines[0] and ldig in lines[0] and ("'%s'" % member) in lines[0], (name, lines)
        assert not os.path.exists(out), name
        assert _snapshot(layout) == before, name
        # analyze reads the same layer through the same reader: an error finding, exit 1.
        a = subprocess.run([LP, "analyze", "-q", layout,
                            "--json", "-"], capture_output=True, text=True)
        assert a.returncode == 1, (name, a.returncode, a.stderr)
        doc = json.loads(a.stdout)
        codes = [f["code"] for f in doc.get("findings", []) if f.get("severity") == "error"]
        assert code in codes, (name, codes, a.stderr)
        assert ("'%s'" % member) in a.stderr, (name, a.stderr)
    # The same base without the hostile member is accepted.
    layout, _ = make_hostile_base(d, [("bin/ok", tarfile.REGTYPE, b"ok"), ("bin/ok2", tarfile.LNKTYPE, "bin/ok")],
                                  "fine")
    container(src, "-o", os.path.join(d, "img-fine"), "--base", "oci:%s:h" % layout, "-q")


def test_hostile_archive_source_refused():
    """container reads archive sources through the same reader as pack."""
    import zipfile
    d = tmpdir("hsrc")
    z = os.path.join(d, "src.zip")
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("app.py", "x = 1\n")
        zi = zipfile.ZipInfo("data.txt/")
        zi.external_attr = 0o100644 << 16
        zf.writestr(zi, b"important bytes")
    before = open(z, "rb").read()
    out = os.path.join(d, "img")
    p = container(z, "-o", out, check=False)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert p.returncode == 1 and len(lines) == 1, (p.returncode, p.stderr)
    assert "src.zip: member 'data.txt/'" in lines[0] and "[bad-name]" in lines[0], lines
    assert not os.path.exists(out) and open(z, "rb").read() == before


if __name__ == "__main__":
    import atexit
    atexit.register(_cleanup)
    main(globals())
