"""End-to-end tests of `lambdapack pack`, checked with independent readers."""
import base64
import hashlib
import json
import os
import resource
import shutil
import stat
import subprocess
import sys
import warnings
import zipfile

sys.path.insert(0, os.path.dirname(__file__))
from lptest import as_nobody, interrupt as _interrupt, main, run, tmpdir  # noqa: E402

LP = os.path.abspath(sys.argv[1])
SRC = os.environ.get("LP_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
SAMPLES = os.path.join(SRC, "samples")


def pack(*args, check=True, **kw):
    return run([LP, "pack", *map(str, args)], check=check, **kw)


def copy_sample(name, dest):
    shutil.copytree(os.path.join(SAMPLES, name), dest, symlinks=True)
    return dest


def tree_of(root):
    """path -> (kind, mode, bytes or link target) for every entry below root."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", None, os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", None, None)
            else:
                with open(p, "rb") as f:
                    out[rel] = ("file", stat.S_IMODE(st.st_mode), f.read())
    return out


def verify_zip_readers(z):
    run(["unzip", "-tq", z])
    run(["7z", "t", z])
    run([sys.executable, "-m", "zipfile", "-t", z])
    run(["bsdtar", "-tvf", z])


def test_python_sample_verified_by_four_readers_and_extracts_identically():
    d = tmpdir("py")
    src = copy_sample("python-app", os.path.join(d, "src"))
    os.chmod(os.path.join(src, "app.py"), 0o600)  # Lambda needs world-readable
    z = os.path.join(d, "function.zip")
    pack(src, "-o", z)
    verify_zip_readers(z)
    ex = os.path.join(d, "ex")
    run(["unzip", "-q", z, "-d", ex])
    got, want = tree_of(ex), tree_of(src)
    assert set(got) == set(want), (set(got) ^ set(want))
    for rel, (kind, mode, data) in want.items():
        assert got[rel][0] == kind, rel
        if kind == "file":
            assert got[rel][2] == data, rel
            assert got[rel][1] == 0o644, (rel, oct(got[rel][1]))
    with zipfile.ZipFile(z) as zf:
        for info in zf.infolist():
            assert info.create_system == 3, info.filename  # Unix
            mode = info.external_attr >> 16
            if info.is_dir():
                assert stat.S_IMODE(mode) == 0o755 and stat.S_ISDIR(mode), info.filename
            else:
                assert stat.S_IMODE(mode) in (0o644, 0o755), (info.filename, oct(mode))
        names = [i.filename for i in zf.infolist()]
        assert names == sorted(names, key=lambda s: s.rstrip("/").encode()), names


def test_code_sha256_matches_openssl():
    d = tmpdir("sha")
    z = os.path.join(d, "f.zip")
    j = os.path.join(d, "r.json")
    p = pack(os.path.join(SAMPLES, "python-app"), "-o", z, "--json", j)
    dgst = subprocess.run(["openssl", "dgst", "-sha256", "-binary", z], capture_output=True, check=True).stdout
    want = base64.b64encode(dgst).decode()
    assert want == base64.b64encode(hashlib.sha256(open(z, "rb").read()).digest()).decode()
    assert ("CodeSha256  " + want) in p.stderr, p.stderr
    rep = json.load(open(j))
    assert rep["artifact"]["code_sha256"] == want
    assert rep["artifact"]["bytes"] == os.path.getsize(z)
    with zipfile.ZipFile(z) as zf:
        assert rep["sizes"]["unzipped"] == sum(i.file_size for i in zf.infolist())
        assert rep["counts"]["entries"] == len(zf.infolist())
    assert rep["limits"]["unzipped"]["limit"] == 262144000
    assert rep["limits"]["zipped"]["limit"] == 52428800
    assert rep["limits"]["unzipped"]["fits"] is True


def _touch_all(root, t):
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            os.utime(os.path.join(dirpath, n), (t, t), follow_symlinks=False)


def test_deterministic_across_mtimes_umask_threads_and_order():
    d = tmpdir("det")
    a = copy_sample("node-app", os.path.join(d, "a"))
    _touch_all(a, 1_000_000_000)
    old = os.umask(0o077)
    try:
        b = copy_sample("node-app", os.path.join(d, "b"))
    finally:
        os.umask(old)
    _touch_all(b, 1_700_000_000)
    outs = []
    for src, threads in ((a, 1), (b, 2), (b, 4)):
        z = os.path.join(d, "o%d.zip" % len(outs))
        pack(src, "-o", z, "-j", threads)
        outs.append(open(z, "rb").read())
    assert outs[0] == outs[1] == outs[2]
    # SOURCE_DATE_EPOCH changes the timestamps and so the bytes, deterministically.
    env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
    z1, z2 = os.path.join(d, "e1.zip"), os.path.join(d, "e2.zip")
    pack(a, "-o", z1, env=env)
    pack(b, "-o", z2, env=env)
    assert open(z1, "rb").read() == open(z2, "rb").read() != outs[0]


def test_node_sample_symlinks_kept_and_handler_runs():
    d = tmpdir("node")
    z = os.path.join(d, "f.zip")
    pack(os.path.join(SAMPLES, "node-app"), "-o", z)
    verify_zip_readers(z)
    with zipfile.ZipFile(z) as zf:
        info = zf.getinfo("node_modules/is-odd")
        assert stat.S_ISLNK(info.external_attr >> 16)
        assert zf.read(info) == b".pnpm/is-odd@3.0.1/node_modules/is-odd"
        assert stat.S_ISLNK(zf.getinfo("node_modules/.bin/left-pad").external_attr >> 16)
        cli = zf.getinfo("node_modules/left-pad/cli.js")
        assert stat.S_IMODE(cli.external_attr >> 16) == 0o755
    task = os.path.join(d, "task")
    os.mkdir(task)
    run(["unzip", "-q", z, "-d", task])
    if shutil.which("node"):
        p = run(["node", "-e", "require(process.env.LAMBDA_TASK_ROOT + '/index.js').handler({n: 7})"
                 ".then(r => console.log(JSON.stringify(r)))"],
                cwd=task, env=dict(os.environ, LAMBDA_TASK_ROOT=task))
        body = json.loads(json.loads(p.stdout)["body"])
        assert body == {"padded": "00007", "odd": True}, body
    else:
        raise AssertionError("node is not installed (scripts/install-deps.sh --test installs nodejs)")


def test_python_handler_runs_like_the_runtime():
    d = tmpdir("pyrun")
    z = os.path.join(d, "f.zip")
    pack(os.path.join(SAMPLES, "python-app"), "-o", z)
    task = os.path.join(d, "task")
    os.mkdir(task)
    run(["unzip", "-q", z, "-d", task])
    p = run([sys.executable, "-c",
             "import sys, os; sys.path.insert(0, os.environ['LAMBDA_TASK_ROOT']); "
             "import app, json; print(json.dumps(app.handler({'name': 'lambda'}, None)))"],
            cwd="/", env=dict(os.environ, LAMBDA_TASK_ROOT=task))
    assert json.loads(json.loads(p.stdout)["body"]) == {"message": "hello, lambda"}


def test_custom_runtime_bootstrap_is_executable_and_runs():
    d = tmpdir("custom")
    src = os.path.join(d, "src")
    os.mkdir(src)
    run(["cc", "-O2", "-o", os.path.join(src, "bootstrap"), os.path.join(SAMPLES, "custom-runtime", "bootstrap.c")])
    os.chmod(os.path.join(src, "bootstrap"), 0o644)  # lost x bit, as from a Windows checkout
    z = os.path.join(d, "f.zip")
    pack(src, "-o", z)
    with zipfile.ZipFile(z) as zf:
        assert stat.S_IMODE(zf.getinfo("bootstrap").external_attr >> 16) == 0o755
    task = os.path.join(d, "task")
    run(["unzip", "-q", z, "-d", task])
    p = run([os.path.join(task, "bootstrap"), '{"x":1}'])
    assert "bootstrap got 7 bytes" in p.stdout


def test_archive_sources_with_prefix_and_duplicates():
    d = tmpdir("arc")
    deps = os.path.join(d, "deps.zip")
    with zipfile.ZipFile(deps, "w") as zf:
        zf.writestr("requests/__init__.py", "VERSION = 1\n")
        zf.writestr("app.py", "shadow\n")
    whl = os.path.join(d, "x-1.0-py3-none-any.whl")
    with zipfile.ZipFile(whl, "w") as zf:
        zf.writestr("x/__init__.py", "X = 1\n")
    tgz = os.path.join(d, "lib.tar.gz")
    libdir = os.path.join(d, "libsrc")
    os.makedirs(os.path.join(libdir, "lib"))
    with open(os.path.join(libdir, "lib", "data.txt"), "w") as f:
        f.write("data\n")
    run(["tar", "-czf", tgz, "-C", libdir, "lib"])
    z = os.path.join(d, "f.zip")
    pack(os.path.join(SAMPLES, "python-app"), deps + "=python/", whl, tgz, "-o", z)
    with zipfile.ZipFile(z) as zf:
        names = set(zf.namelist())
    assert {"python/requests/__init__.py", "python/app.py", "x/__init__.py", "lib/data.txt", "app.py"} <= names
    # The same path from two sources is an error naming it, unless --overwrite.
    p = pack(os.path.join(SAMPLES, "python-app"), deps, "-o", os.path.join(d, "dup.zip"), check=False)
    assert p.returncode == 1 and "app.py" in p.stderr and "--overwrite" in p.stderr, p.stderr
    assert not os.path.exists(os.path.join(d, "dup.zip"))
    pack(os.path.join(SAMPLES, "python-app"), deps, "-o", os.path.join(d, "dup.zip"), "--overwrite")
    with zipfile.ZipFile(os.path.join(d, "dup.zip")) as zf:
        assert zf.read("app.py") == b"shadow\n"


def test_excludes_and_ignore_file():
    d = tmpdir("ex")
    src = copy_sample("python-app", os.path.join(d, "src"))
    os.makedirs(os.path.join(src, ".git"))
    open(os.path.join(src, ".git", "HEAD"), "w").write("ref: x\n")
    open(os.path.join(src, ".DS_Store"), "w").write("junk")
    open(os.path.join(src, "notes.txt"), "w").write("n")
    open(os.path.join(src, ".lambdapackignore"), "w").write("*.md\n")
    z = os.path.join(d, "f.zip")
    pack(src, "-o", z, "--exclude", "notes.txt")
    names = set(zipfile.ZipFile(z).namelist())
    assert "app.py" in names
    for bad in (".git/HEAD", ".DS_Store", "notes.txt", "README.md", ".lambdapackignore"):
        assert bad not in names, bad


def _expect_error(args, code, *needles, out=None, **kw):
    p = pack(*args, check=False, **kw)
    assert p.returncode == code, (p.returncode, p.stderr)
    line = p.stderr.strip().splitlines()[0] if p.stderr.strip() else ""
    for n in needles:
        assert n in p.stderr, (n, p.stderr)
    if out:
        assert not os.path.exists(out), out
        leftovers = [f for f in os.listdir(os.path.dirname(out)) if f.startswith("." + os.path.basename(out))]
        assert not leftovers, leftovers
    return line


def test_bad_inputs_give_clear_errors_and_no_output():
    d = tmpdir("bad")
    out = os.path.join(d, "out.zip")
    _expect_error([os.path.join(d, "missing"), "-o", out], 1, "missing", out=out)
    src = os.path.join(d, "fifo")
    os.mkdir(src)
    os.mkfifo(os.path.join(src, "pipe"))
    _expect_error([src, "-o", out], 1, "pipe", "FIFO", out=out)
    src = os.path.join(d, "loop")
    os.mkdir(src)
    os.symlink("b", os.path.join(src, "a"))
    os.symlink("a", os.path.join(src, "b"))
    _expect_error([src, "-o", out], 1, "loop", out=out)
    src = os.path.join(d, "escape")
    os.mkdir(src)
    open(os.path.join(d, "secret"), "w").write("s")
    os.symlink("../secret", os.path.join(src, "s"))
    _expect_error([src, "--links=refuse", "-o", out], 1, "outside the package", out=out)
    # No repository encloses the source: by default the link is refused too (issue 9: it used
    # to be materialized); --links=materialize-all stores the target's bytes.
    _expect_error([src, "-o", out], 1, "s: symbolic link leaves", "--links=materialize-all", out=out)
    pack(src, "-o", out, "--links=materialize-all")
    assert zipfile.ZipFile(out).read("s") == b"s"
    os.unlink(out)
    evil = os.path.join(d, "evil.zip")
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../etc/evil", "x")
    _expect_error([evil, "-o", out], 1, "evil.zip", "../../etc/evil", "unsafe", out=out)
    _expect_error([os.path.join(SAMPLES, "python-app"), "-o", os.path.join(d, "nodir", "x.zip")], 1, "nodir")
    _expect_error([os.path.join(SAMPLES, "python-app")], 2, "-o")
    _expect_error([os.path.join(SAMPLES, "python-app"), "-o", out, "--bogus"], 2, "--bogus", out=out)


def _snapshot(root):
    """Every entry below root, links unfollowed, with bytes (FIFOs by kind only): to prove a run changed nothing."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[p] = ("link", os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    out[p] = ("file", stat.S_IMODE(st.st_mode), f.read())
            else:
                out[p] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode))
    return out


def _repo(d):
    """A repository (package.json at its root) with a function at packages/fn."""
    repo = os.path.join(d, "repo")
    fn = os.path.join(repo, "packages", "fn")
    os.makedirs(fn)
    with open(os.path.join(repo, "package.json"), "w") as f:
        f.write("{}\n")
    with open(os.path.join(fn, "app.js"), "w") as f:
        f.write("exports.handler = async () => 1;\n")
    return repo, fn


def test_link_to_etc_refused_naming_link_target_and_option():
    d = tmpdir("etc")
    repo, fn = _repo(d)
    os.symlink("/etc", os.path.join(fn, "conf"))
    out = os.path.join(d, "out.zip")
    before = _snapshot(d)
    line = _expect_error([fn, "-o", out], 1, out=out)
    p = pack(fn, "-o", out, check=False)
    assert "conf: symbolic link leaves the repository" in p.stderr, p.stderr
    assert "-> /etc" in p.stderr and "--links=materialize-all" in p.stderr and "--exclude" in p.stderr, p.stderr
    # One problem is one line: no count line after it.
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "conf" in line, line
    assert not os.path.exists(out)
    assert _snapshot(d) == before


def test_link_to_aws_like_dir_outside_repository_refused_and_not_walked():
    d = tmpdir("aws")
    repo, fn = _repo(d)
    aws = os.path.join(d, "home", ".aws")
    os.makedirs(aws)
    with open(os.path.join(aws, "credentials"), "w") as f:
        f.write("[default]\naws_secret_access_key = SECRET\n")
    os.symlink("../../../home/.aws", os.path.join(fn, "creds"))
    out = os.path.join(d, "out.zip")
    before = _snapshot(d)
    p = pack(fn, "-o", out, "-v", check=False)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "creds: symbolic link leaves the repository" in p.stderr and "../../../home/.aws" in p.stderr, p.stderr
    assert "credentials" not in p.stderr, p.stderr  # refused before it is walked
    assert not os.path.exists(out)
    assert _snapshot(d) == before


def test_pnpm_link_inside_repository_materialized_and_listed():
    d = tmpdir("pnpm")
    repo, fn = _repo(d)
    store = os.path.join(repo, "node_modules", ".pnpm", "x@1", "node_modules", "x")
    os.makedirs(store)
    with open(os.path.join(store, "index.js"), "w") as f:
        f.write("module.exports = 42;\n")
    os.makedirs(os.path.join(fn, "node_modules"))
    os.symlink("../../../node_modules/.pnpm/x@1/node_modules/x", os.path.join(fn, "node_modules", "x"))
    out, rep = os.path.join(d, "out.zip"), os.path.join(d, "r.json")
    p = pack(fn, "-o", out, "--json", rep)
    with zipfile.ZipFile(out) as zf:
        assert zf.read("node_modules/x/index.js") == b"module.exports = 42;\n"
        assert stat.S_ISREG(zf.getinfo("node_modules/x/index.js").external_attr >> 16)
    assert "1 materialized from outside the source (21 B, 21 bytes); -v lists them" in p.stderr, p.stderr
    doc = json.load(open(rep))
    ml = doc["materialized_links"]
    assert ml["count"] == 1 and ml["bytes"] == 21, ml
    assert ml["links"][0]["path"] == "node_modules/x", ml
    os.unlink(out)
    p = pack(fn, "-o", out, "-v")
    assert "node_modules/x: symbolic link outside the source (-> ../../../node_modules/.pnpm/x@1/node_modules/x" in p.stderr, p.stderr


def test_materialize_all_packs_the_outside_file():
    d = tmpdir("all")
    src = os.path.join(d, "src")
    os.mkdir(src)
    with open(os.path.join(d, "shared.txt"), "w") as f:
        f.write("shared bytes")
    os.symlink("../shared.txt", os.path.join(src, "shared.txt"))
    out = os.path.join(d, "out.zip")
    _expect_error([src, "-o", out], 1, "source directory", "--links=materialize-all", out=out)
    pack(src, "-o", out, "--links=materialize-all")
    with zipfile.ZipFile(out) as zf:
        assert zf.read("shared.txt") == b"shared bytes"


def test_dangling_link_kept_as_link_with_warning():
    d = tmpdir("dangle")
    # As in Debian's python3.11: config-3.11-x86_64-linux-gnu/libpython3.11.so points at a
    # library that is not in the tree.
    src = os.path.join(d, "python3.11")
    cfg = os.path.join(src, "config-3.11-x86_64-linux-gnu")
    os.makedirs(cfg)
    with open(os.path.join(src, "os.py"), "w") as f:
        f.write("x = 1\n")
    os.symlink("../../x86_64-linux-gnu/libpython3.11.so.1", os.path.join(cfg, "libpython3.11.so"))
    out = os.path.join(d, "out.zip")
    p = pack(src, "-o", out)
    assert "warning" in p.stderr and "libpython3.11.so: dangling symbolic link" in p.stderr, p.stderr
    with zipfile.ZipFile(out) as zf:
        info = zf.getinfo("config-3.11-x86_64-linux-gnu/libpython3.11.so")
        assert stat.S_ISLNK(info.external_attr >> 16), oct(info.external_attr >> 16)
        assert zf.read(info) == b"../../x86_64-linux-gnu/libpython3.11.so.1"


def _three_problems(d):
    repo, fn = _repo(d)
    os.symlink("/etc/passwd", os.path.join(fn, "passwd"))
    os.mkfifo(os.path.join(fn, "pipe"))
    with open(os.path.join(fn, "evil\x1b]0;pwned\x07\x1b[2J.txt"), "w") as f:
        f.write("x")
    return fn


def test_three_problems_reported_in_one_run_escaped():
    d = tmpdir("three")
    fn = _three_problems(d)
    out = os.path.join(d, "out.zip")
    before = _snapshot(d)
    p = run([LP, "pack", fn, "-o", out], check=False, text=False)
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode == 1, (p.returncode, err)
    assert b"\x1b" not in p.stderr and b"\x07" not in p.stderr, p.stderr
    lines = err.strip().splitlines()
    assert len(lines) == 4, lines
    assert any("passwd: symbolic link leaves the repository" in l and "/etc/passwd" in l for l in lines), lines
    assert any("pipe: unsupported file type (FIFO)" in l for l in lines), lines
    assert any("evil\\x1b]0;pwned\\x07\\x1b[2J.txt: file name contains control characters" in l for l in lines), lines
    assert lines[-1].endswith("3 problems in the input; no artifact written"), lines
    assert not os.path.exists(out)
    assert _snapshot(d) == before
    # container reads the same sources the same way.
    img = os.path.join(d, "img")
    p = run([LP, "container", fn, "-o", img], check=False, text=False)
    assert p.returncode == 1 and b"\x1b" not in p.stderr, p.stderr
    assert p.stderr.decode().strip().splitlines()[-1].endswith("3 problems in the input; no image written"), p.stderr
    assert not os.path.exists(img)


def test_collision_names_both_sources():
    d = tmpdir("coll")
    deps = os.path.join(d, "deps")
    os.mkdir(deps)
    with open(os.path.join(deps, "app.py"), "w") as f:
        f.write("a")
    build = os.path.join(d, "build.zip")
    with zipfile.ZipFile(build, "w") as zf:
        zf.writestr("app.py", "b")
        zf.writestr("lib.py", "c")
    out = os.path.join(d, "out.zip")
    p = pack(deps, build, "-o", out, check=False)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "app.py: given by more than one source (%s/ and %s)" % (deps, build) in p.stderr, p.stderr
    assert "#1" not in p.stderr, p.stderr
    assert not os.path.exists(out)
    # Two members of one archive: named by the archive, refused even with --overwrite
    # (neither is "the later source"), every one in the same run.
    dup = os.path.join(d, "dup.zip")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(dup, "w") as zf:
            for name, data in (("a.py", "1"), ("a.py", "2"), ("b.py", "3"), ("b.py", "4")):
                zf.writestr(name, data)
    p = pack(dup, "-o", out, "--overwrite", check=False)
    assert p.returncode == 1, (p.returncode, p.stderr)
    # The archive reader names the archive and the member once per colliding name.
    for m in ("a.py", "b.py"):
        assert "%s: member '%s': appears more than once in this archive [duplicate-member]" % (dup, m) in p.stderr, \
            p.stderr
    assert "2 problems in the input" in p.stderr, p.stderr
    assert not os.path.exists(out)


def test_unreadable_file_and_readonly_output_dir():
    if os.geteuid() != 0:
        raise AssertionError("needs root to switch to an unprivileged user for this test")
    d = tmpdir("perm")
    os.chmod(d, 0o755)
    src = copy_sample("python-app", os.path.join(d, "src"))
    secret = os.path.join(src, "secret.txt")
    open(secret, "w").write("x")
    os.chmod(secret, 0o000)
    outdir = os.path.join(d, "out")
    os.mkdir(outdir)
    os.chmod(outdir, 0o777)
    out = os.path.join(outdir, "f.zip")
    p = subprocess.run([LP, "pack", src, "-o", out], capture_output=True, text=True, preexec_fn=as_nobody())
    assert p.returncode == 1 and "secret.txt" in p.stderr and "ermission denied" in p.stderr, p.stderr
    assert os.listdir(outdir) == [], os.listdir(outdir)
    os.chmod(secret, 0o644)
    ro = os.path.join(d, "ro")
    os.mkdir(ro)
    os.chmod(ro, 0o555)
    p = subprocess.run([LP, "pack", src, "-o", os.path.join(ro, "f.zip")], capture_output=True, text=True,
                       preexec_fn=as_nobody())
    assert p.returncode == 1 and "ro/f.zip" in p.stderr, p.stderr
    assert os.listdir(ro) == []


def test_write_failing_midway_leaves_nothing():
    d = tmpdir("fsize")
    src = os.path.join(d, "src")
    os.mkdir(src)
    with open(os.path.join(src, "big.bin"), "wb") as f:
        f.write(os.urandom(4 << 20))
    out = os.path.join(d, "f.zip")

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
    p = subprocess.run([LP, "pack", src, "-o", out], capture_output=True, text=True, preexec_fn=limit)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "f.zip" in p.stderr and "too large" in p.stderr.lower(), p.stderr
    assert os.listdir(d) == ["src"], os.listdir(d)


def test_over_the_limit_names_contributors_and_writes_nothing():
    d = tmpdir("big")
    src = os.path.join(d, "src")
    os.makedirs(os.path.join(src, "node_modules", "huge"))
    os.makedirs(os.path.join(src, "node_modules", "small"))
    # Sparse files: real sizes for the limit, cheap on disk, fast to deflate.
    with open(os.path.join(src, "node_modules", "huge", "blob.bin"), "wb") as f:
        f.truncate(200_000_000)
    with open(os.path.join(src, "node_modules", "small", "blob.bin"), "wb") as f:
        f.truncate(62_144_000)
    open(os.path.join(src, "index.js"), "w").write("")
    out = os.path.join(d, "f.zip")
    # Exactly 262,144,000 bytes: Lambda wants "smaller than", so one byte over.
    p = pack(src, "-o", out, "--fallback=none", check=False)
    assert p.returncode == 3, (p.returncode, p.stderr)
    assert "262144000" in p.stderr and "node_modules/huge" in p.stderr and "blob.bin" in p.stderr, p.stderr
    assert "1 B over" in p.stderr, p.stderr
    assert not os.path.exists(out)
    # One byte less fits.
    os.truncate(os.path.join(src, "node_modules", "small", "blob.bin"), 62_143_999)
    pack(src, "-o", out, "--fallback=none", "--json", os.path.join(d, "r.json"))
    rep = json.load(open(os.path.join(d, "r.json")))
    assert rep["sizes"]["unzipped"] == 262_143_999, rep["sizes"]
    assert rep["limits"]["unzipped"]["fits"] is True
    assert rep["limits"]["unzipped"]["headroom"] == 0


def test_over_the_limit_falls_back_to_an_oci_image():
    d = tmpdir("fallback")
    src = os.path.join(d, "src")
    os.makedirs(os.path.join(src, "node_modules", "huge"))
    with open(os.path.join(src, "node_modules", "huge", "blob.bin"), "wb") as f:
        f.truncate(262_144_000)
    open(os.path.join(src, "index.js"), "w").write("exports.handler = async () => 1;\n")
    out = os.path.join(d, "f.zip")
    j = os.path.join(d, "r.json")
    # A scratch image of a Node function does not start: --no-check writes it anyway (exit 4 without
    # it is tests/oci/test_runnable.py's).
    p = pack(src, "-o", out, "--json", j, "--no-check", check=False)
    assert p.returncode == 6, (p.returncode, p.stderr)
    assert "OCI image" in p.stderr and "f.oci" in p.stderr, p.stderr
    assert not os.path.exists(out)
    layout = os.path.join(d, "f.oci")
    idx = json.load(open(os.path.join(layout, "index.json")))
    assert idx["manifests"][0]["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    rep = json.load(open(j))
    assert rep["artifact"]["type"] == "oci-layout" and rep["artifact"]["fallback_reason"], rep["artifact"]
    # An independent reader accepts it.
    run(["skopeo", "inspect", "oci:" + layout + ":latest"])


def _snapshot(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            out[rel] = ("link", os.readlink(p)) if stat.S_ISLNK(st.st_mode) else \
                ("dir",) if stat.S_ISDIR(st.st_mode) else \
                ("file", open(p, "rb").read()) if stat.S_ISREG(st.st_mode) else ("other", st.st_ino)
    return out


def test_outputs_never_destroy():
    d = tmpdir("outs")
    src = os.path.join(d, "src")
    os.mkdir(src)
    open(os.path.join(src, "index.js"), "w").write("exports.handler = async () => 1;\n")
    # -o names a directory, a symlink, a FIFO: refused, nothing changed, nothing beside.
    dout = os.path.join(d, "dir.zip")
    os.makedirs(os.path.join(dout, "notes"))
    open(os.path.join(dout, "notes", "precious.txt"), "w").write("keep\n")
    link = os.path.join(d, "link.zip")
    os.symlink("elsewhere.zip", link)
    fifo = os.path.join(d, "fifo.zip")
    os.mkfifo(fifo)
    before = _snapshot(d)
    for o, why in ((dout, "is a directory"), (link, "symbolic link"), (fifo, "not a regular file")):
        p = pack(src, "-o", o, check=False)
        assert p.returncode == 1, (o, p.returncode, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and o in lines[0] and why in lines[0], p.stderr
        assert _snapshot(d) == before
    # An existing regular file is replaced: that is what a build artifact is for.
    out = os.path.join(d, "f.zip")
    open(out, "w").write("stale")
    pack(src, "-o", out, "-q")
    assert zipfile.ZipFile(out).namelist() == ["index.js"]
    # --image-output naming a directory with other content: refused up front, kept.
    img = os.path.join(d, "img")
    os.makedirs(os.path.join(img, "notes"))
    open(os.path.join(img, "notes", "precious.txt"), "w").write("keep\n")
    before = _snapshot(img)
    p = pack(src, "-o", out, "--image-output", img, check=False)
    assert p.returncode == 1 and img in p.stderr and "empty or new directory" in p.stderr, p.stderr
    assert _snapshot(img) == before


def test_fallback_image_directory_is_never_emptied():
    d = tmpdir("fbkeep")
    src = os.path.join(d, "src")
    os.makedirs(os.path.join(src, "node_modules", "huge"))
    with open(os.path.join(src, "node_modules", "huge", "blob.bin"), "wb") as f:
        f.truncate(262_144_000)
    open(os.path.join(src, "index.js"), "w").write("exports.handler = async () => 1;\n")
    out = os.path.join(d, "f.zip")
    layout = os.path.join(d, "f.oci")
    os.makedirs(os.path.join(layout, "notes"))
    open(os.path.join(layout, "notes", "precious.txt"), "w").write("keep\n")
    before = _snapshot(layout)
    p = pack(src, "-o", out, check=False)
    assert p.returncode == 1 and layout in p.stderr and "empty or new directory" in p.stderr, p.stderr
    assert _snapshot(layout) == before and not os.path.exists(out)
    assert sorted(os.listdir(d)) == ["f.oci", "src"], os.listdir(d)
    # An existing layout is added to: the old image stays readable beside the new one.
    shutil.rmtree(layout)
    p = pack(src, "-o", out, "--image-output", layout, "--no-check", check=False)
    assert p.returncode == 6, (p.returncode, p.stderr)
    open(os.path.join(layout, "README"), "w").write("mine\n")
    old = json.load(open(os.path.join(layout, "index.json")))["manifests"][0]
    open(os.path.join(src, "index.js"), "w").write("exports.handler = async () => 2;\n")
    # Another tag would need container; pack's tag is "latest", so it moves.
    p = pack(src, "-o", out, "--image-output", layout, "--no-check", check=False)
    assert p.returncode == 6, (p.returncode, p.stderr)
    idx = json.load(open(os.path.join(layout, "index.json")))
    assert len(idx["manifests"]) == 1 and idx["manifests"][0]["digest"] != old["digest"]
    assert open(os.path.join(layout, "README")).read() == "mine\n"
    assert os.path.exists(os.path.join(layout, "blobs", "sha256", old["digest"].split(":")[1]))
    run(["skopeo", "inspect", "oci:" + layout + ":latest"])


def test_output_inside_the_source_is_left_out():
    d = tmpdir("self")
    fn = os.path.join(d, "fn")
    os.makedirs(os.path.join(fn, "build"))
    open(os.path.join(fn, "index.js"), "w").write("exports.handler = async () => 1;\n")
    # A temporary a killed run left beside the output, and a fallback image directory.
    open(os.path.join(fn, ".function.zip.Ab12Cd"), "w").write("half a zip")
    os.makedirs(os.path.join(fn, "function.oci", "blobs", "sha256"))
    open(os.path.join(fn, "function.oci", "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
    open(os.path.join(fn, "function.oci", "index.json"), "w").write('{"schemaVersion":2,"manifests":[]}')
    first = None
    for i in range(3):
        p = pack(".", "-o", "function.zip", "-v", cwd=fn)
        names = zipfile.ZipFile(os.path.join(fn, "function.zip")).namelist()
        assert names == ["build/", "index.js"], names
        data = open(os.path.join(fn, "function.zip"), "rb").read()
        assert first is None or data == first, "second pack differs from the first"
        first = data
        if i:
            assert "left out ./function.zip from the sources: the output" in p.stderr, p.stderr
        assert "left out ./.function.zip.Ab12Cd from the sources: a temporary beside the output" in p.stderr, \
            p.stderr
        assert "left out ./function.oci from the sources: the fallback image directory" in p.stderr, p.stderr
    # The JSON report written into the source is left out too.
    zips = []
    for _ in range(2):
        pack(".", "-o", "function.zip", "--json", "report.json", "-q", cwd=fn)
        zips.append(open(os.path.join(fn, "function.zip"), "rb").read())
        assert "report.json" not in zipfile.ZipFile(os.path.join(fn, "function.zip")).namelist()
    assert zips[0] == zips[1] == first
    os.unlink(os.path.join(fn, "report.json"))
    # Into a subdirectory of the source, reached by another spelling of the path.
    first = None
    for _ in range(2):
        pack(fn, "-o", os.path.join(d, "fn", "build", "..", "build", "function.zip"), "-q")
        data = open(os.path.join(fn, "build", "function.zip"), "rb").read()
        assert "build/function.zip" not in zipfile.ZipFile(os.path.join(fn, "build", "function.zip")).namelist()
        assert first is None or data == first
        first = data
    # A source that is the output itself is refused, and left alone.
    before = open(os.path.join(fn, "function.zip"), "rb").read()
    p = pack("function.zip", "-o", "function.zip", check=False, cwd=fn)
    assert p.returncode == 1 and "function.zip" in p.stderr and "output" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert open(os.path.join(fn, "function.zip"), "rb").read() == before


def test_layers_reduce_the_budget():
    d = tmpdir("layers")
    layer = os.path.join(d, "layer.zip")
    with zipfile.ZipFile(layer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("python/big.bin", b"\0" * 10_000_000)
    src = os.path.join(d, "src")
    os.mkdir(src)
    with open(os.path.join(src, "data.bin"), "wb") as f:
        f.truncate(262_144_000 - 10_000_000)
    out = os.path.join(d, "f.zip")
    p = pack(src, "-o", out, "--with-layer", layer, check=False)
    assert p.returncode == 3, (p.returncode, p.stderr)
    assert "252144000" in p.stderr, p.stderr
    assert not os.path.exists(out)


def test_zipped_over_50mb_warns_to_use_s3():
    d = tmpdir("s3")
    src = os.path.join(d, "src")
    os.mkdir(src)
    with open(os.path.join(src, "random.bin"), "wb") as f:
        f.write(os.urandom(53 * 1024 * 1024))
    out = os.path.join(d, "f.zip")
    p = pack(src, "-o", out)
    assert "52,428,800" in p.stderr and "S3" in p.stderr, p.stderr
    with zipfile.ZipFile(out) as zf:
        assert zf.getinfo("random.bin").compress_type == zipfile.ZIP_STORED


def test_interrupted_run_leaves_nothing():
    import signal
    import time
    d = tmpdir("int")
    src = os.path.join(d, "src")
    os.mkdir(src)
    for i in range(6):
        with open(os.path.join(src, "r%d.bin" % i), "wb") as f:
            f.write(os.urandom(32 << 20))
    out = os.path.join(d, "out")
    os.mkdir(out)
    tmp = os.path.join(d, "tmp")
    os.mkdir(tmp)
    p = subprocess.Popen([LP, "pack", src, "-o", os.path.join(out, "f.zip"), "-j", "1"],
                         stderr=subprocess.PIPE, env=dict(os.environ, TMPDIR=tmp))
    # Wait until the temp output exists, then interrupt mid-write.
    deadline = time.time() + 20
    while time.time() < deadline and not os.listdir(out):
        time.sleep(0.01)
    p.send_signal(signal.SIGINT)
    p.wait(timeout=30)
    assert p.returncode != 0
    assert os.listdir(out) == [], os.listdir(out)
    assert os.listdir(tmp) == [], os.listdir(tmp)


def _many_member_zip(path, n=200_000):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for i in range(n):
            zf.writestr("pkg%03d/f%06d.txt" % (i % 500, i), b"x")


def _staged(tmp, at_least):
    def ready():
        for d in os.listdir(tmp):
            try:
                if len(os.listdir(os.path.join(tmp, d, "in"))) >= at_least:
                    return True
            except OSError:
                pass
        return False
    return ready


def test_sigterm_and_sigint_stop_every_phase():
    import signal
    d = tmpdir("sig")
    many = os.path.join(d, "many.zip")
    _many_member_zip(many)
    big = os.path.join(d, "big")
    os.makedirs(os.path.join(big, "lib"))
    for i in range(4):
        with open(os.path.join(big, "lib", "r%d.bin" % i), "wb") as f:
            f.write(os.urandom(48 << 20))
    for i in range(5000):
        with open(os.path.join(big, "f%04d.txt" % i), "w") as f:
            f.write("x" * (i % 300))
    before = (hashlib.sha256(open(many, "rb").read()).hexdigest(), tree_of(big))
    out = os.path.join(d, "out")
    os.mkdir(out)
    tmp = os.path.join(d, "tmp")
    os.mkdir(tmp)
    zout = os.path.join(out, "f.zip")

    def beside_output():
        return bool(os.listdir(out))

    # Staging archive members, both signals.
    for sig in (signal.SIGTERM, signal.SIGINT):
        _interrupt([LP, "pack", many, "-o", zout], sig, _staged(tmp, 2000), tmp, out)
    # Writing the zip (the temporary beside the output exists), one worker and several.
    for sig, j in ((signal.SIGINT, "1"), (signal.SIGTERM, "4")):
        _interrupt([LP, "pack", big, "-o", zout, "-j", j, "--level", "9"], sig, beside_output, tmp, out)
    # Whatever phase a fixed delay lands in (walk, classify, dedupe, writing).
    import time
    for delay in (0.05, 0.3):
        t0 = time.time()
        _interrupt([LP, "pack", big, "-o", zout, "-O", "--dedupe=all", "--level", "9"], signal.SIGTERM,
                   lambda: time.time() - t0 > delay, tmp, out)
    assert (hashlib.sha256(open(many, "rb").read()).hexdigest(), tree_of(big)) == before
    shutil.rmtree(d)


def _digests(root):
    out = {}
    for dirpath, _, filenames in os.walk(root):
        for n in filenames:
            p = os.path.join(dirpath, n)
            if not os.path.islink(p):
                out[p] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


def test_optimize_strips_dedupes_and_keeps_inputs_untouched():
    d = tmpdir("opt")
    src = os.path.join(d, "src")
    os.makedirs(os.path.join(src, "a"))
    os.makedirs(os.path.join(src, "b"))
    c = os.path.join(d, "lib.c")
    with open(c, "w") as f:
        f.write("int lp_answer(void) { return 42; }\n" + "".join(
            "int f%d(int x) { return x * %d + lp_answer(); }\n" % (i, i) for i in range(300)))
    run(["cc", "-g", "-O1", "-shared", "-fPIC", "-o", os.path.join(src, "a", "libx.so"), c])
    shutil.copy(os.path.join(src, "a", "libx.so"), os.path.join(src, "b", "libx.so"))
    open(os.path.join(src, "handler.py"), "w").write("def handler(e, c):\n    return 1\n")
    before = _digests(src)
    z = os.path.join(d, "f.zip")
    j = os.path.join(d, "r.json")
    pack(src, "-O", "-o", z, "--json", j, "--runtime", "python3.12")
    assert _digests(src) == before
    rep = json.load(open(j))
    actions = {ch["action"] for ch in rep["changes"]}
    assert "strip" in actions and "dedupe" in actions, rep["changes"]
    orig = os.path.getsize(os.path.join(src, "a", "libx.so"))
    with zipfile.ZipFile(z) as zf:
        a, b = zf.getinfo("a/libx.so"), zf.getinfo("b/libx.so")
        assert a.file_size < orig, (a.file_size, orig)
        assert stat.S_ISLNK(b.external_attr >> 16) and zf.read(b) == b"../a/libx.so"
    task = os.path.join(d, "task")
    run(["unzip", "-q", z, "-d", task])
    # The stripped library still loads and works, through the dedupe symlink too.
    run([sys.executable, "-c", "import ctypes,sys; l=ctypes.CDLL(sys.argv[1]); assert l.lp_answer()==42; "
         "assert ctypes.CDLL(sys.argv[2]).f3(1)==45", os.path.join(task, "a", "libx.so"),
         os.path.join(task, "b", "libx.so")])
    assert rep["sizes"]["saved"] > 0


def test_runtime_checks_glibc_and_foreign_binaries():
    d = tmpdir("chk")
    src = os.path.join(d, "src")
    os.mkdir(src)
    c = os.path.join(d, "new.c")
    with open(c, "w") as f:
        f.write("#define _GNU_SOURCE\n#include <unistd.h>\n#include <stdio.h>\n"
                "int main(void) { printf(\"%zd\\n\", copy_file_range(0, 0, 1, 0, 0, 0)); return 0; }\n")
    run(["cc", "-O1", "-o", os.path.join(src, "bootstrap"), c])
    out = os.path.join(d, "f.zip")
    p = pack(src, "-o", out, "--runtime", "provided.al2", check=False)
    assert p.returncode == 4, (p.returncode, p.stderr)
    # Debian 12's own libc start-up symbol already needs 2.34, past Amazon Linux 2's 2.26.
    assert "GLIBC_2.34" in p.stderr and "bootstrap" in p.stderr and "2.26" in p.stderr, p.stderr
    assert not os.path.exists(out)
    pack(src, "-o", out, "--runtime", "provided.al2023")
    os.unlink(out)
    p = pack(src, "-o", out, "--runtime", "provided.al2", "--no-check")
    assert p.returncode == 0 and "GLIBC_2.34" in p.stderr
    os.unlink(out)
    # A Mach-O object (a macOS native module) would fail with "invalid ELF header".
    # Inside a dependency --prune-foreign drops it (the function's own files it keeps: test_fit.py).
    rel = "node_modules/sharp/build/Release/sharp.node"
    os.makedirs(os.path.dirname(os.path.join(src, rel)))
    with open(os.path.join(src, rel), "wb") as f:
        f.write(bytes.fromhex("cffaedfe0c000001") + b"\0" * 120)
    p = pack(src, "-o", out, "--runtime", "provided.al2023", check=False)
    assert p.returncode == 4 and "sharp.node" in p.stderr and "invalid ELF header" in p.stderr, p.stderr
    pack(src, "-o", out, "--runtime", "provided.al2023", "--prune-foreign")
    assert rel not in zipfile.ZipFile(out).namelist()


def test_member_10000_directories_deep_is_refused_and_2040_deep_packs():
    # Parent synthesis used to rescan the whole path once per ancestor; the
    # suite's timeout catches a return of that (no timed assertion here).
    d = tmpdir("deep")
    # 10,000 levels make a 20,005-byte name: no Linux program can open it by
    # path (PATH_MAX 4096), so it is refused, at once, in one line.
    src = os.path.join(d, "deep.zip")
    name = "d/" * 10000 + "f.txt"
    with zipfile.ZipFile(src, "w") as zf:
        zf.writestr(name, b"deep\n")
    before = open(src, "rb").read()
    out = os.path.join(d, "out.zip")
    p = pack(src, "-o", out, check=False)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 1 and len(lines) == 1, (p.returncode, p.stderr[:300])
    assert "deep.zip: member 'd/d/" in lines[0] and "..." in lines[0] and "/f.txt'" in lines[0], lines[0][:400]
    assert "20005 bytes" in lines[0] and "PATH_MAX" in lines[0] and len(lines[0]) < 600, lines[0]
    assert not os.path.exists(out) and open(src, "rb").read() == before
    # The deepest name Linux can open (2,040 levels) packs with every parent once.
    deep = os.path.join(d, "deep2.zip")
    name = "d/" * 2040 + "f.txt"
    with zipfile.ZipFile(deep, "w") as zf:
        zf.writestr(name, b"deep\n")
    pack(deep, "-o", out, "-q")
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        assert zf.read(name) == b"deep\n"
    dirs = [n for n in names if n.endswith("/")]
    assert len(dirs) == 2040 and len(set(names)) == len(names) == 2041
    assert sorted(len(n) for n in dirs) == [2 * (i + 1) for i in range(2040)]
    shutil.rmtree(d)


def test_help_and_version():
    p = run([LP, "--version"])
    assert p.stdout.startswith("lambdapack ")
    p = run([LP, "pack", "--help"])
    assert "--with-layer" in p.stdout and "--optimize" in p.stdout
    p = run([LP, "nonsense"], check=False)
    assert p.returncode == 2 and "not a lambdapack command" in p.stderr


# ---- hostile archives: one reader for pack and analyze -------------------

def _zip_bytes(members):
    """members: [(name, data, external_attr or None)] -> zip bytes (stored)."""
    import io
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as zf:
        for name, data, attr in members:
            zi = zipfile.ZipInfo(name)
            if attr is not None:
                zi.external_attr = attr
            zf.writestr(zi, data)
    return b.getvalue()


def _shared_header_zip(n):
    """One 10 MiB member, then n central directory entries all pointing at
    its local header (different names): two readers, two contents."""
    import io
    import struct
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.bin", b"A" * (10 << 20))
    raw = b.getvalue()
    eocd = raw.rfind(b"PK\x05\x06")
    cdsize, cdoff = struct.unpack("<II", raw[eocd + 12:eocd + 20])
    cent = raw[cdoff:cdoff + 46]
    cds = []
    for i in range(n):
        name = b"big%04d.bin" % i
        h = bytearray(cent)
        h[28:34] = struct.pack("<HHH", len(name), 0, 0)
        cds.append(bytes(h) + name)
    cd = b"".join(cds)
    return raw[:cdoff] + cd + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(cd), cdoff, 0)


def _tar_bytes(entries):
    """entries: [(TarInfo kwargs, data or None)] -> tar bytes."""
    import io
    import tarfile
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.PAX_FORMAT) as t:
        for kw, data in entries:
            pax = kw.pop("pax", None)
            ti = tarfile.TarInfo(kw.pop("name"))
            for k, v in kw.items():
                setattr(ti, k, v)
            if pax:
                ti.pax_headers = pax
            if data is not None:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
            else:
                t.addfile(ti)
    return b.getvalue()


def _analyze(target, **kw):
    return subprocess.run([LP, "analyze", "-q", "--json", "-", target], capture_output=True, **kw)


def test_hostile_archives_refused_by_pack_and_listed_by_analyze():
    import tarfile
    d = tmpdir("hostile")
    nul = bytearray(_zip_bytes([("ok.txt", b"ok", None), ("evil.shX.txt", b"#!/bin/sh\n", 0o100755 << 16)]))
    i = nul.find(b"evil.shX.txt")
    while i >= 0:
        nul[i + 7] = 0
        i = nul.find(b"evil.shX.txt", i + 1)
    cases = {
        # name: (bytes, member as printed, finding code, words)
        "nul.zip": (bytes(nul), "evil.sh\\x00.txt", "bad-name", "NUL"),
        "slash.zip": (_zip_bytes([("data.txt/", b"important bytes", 0o100644 << 16)]), "data.txt/", "bad-name",
                      "ends in '/'"),
        "shared.zip": (_shared_header_zip(2000), "big0000.bin", "zip-inconsistent", "2000 central directory entries"),
        "collide.zip": (_zip_bytes([("a.txt", b"one", None), ("./a.txt", b"two", None)]), "./a.txt",
                        "duplicate-member", "more than once"),
        "below.zip": (_zip_bytes([("d/", b"", None), ("d/x", b"1", None), ("b", b"2", None), ("b/c", b"3", None)]),
                      "b/c", "duplicate-member", "'b'"),
        "fifo.tar": (_tar_bytes([({"name": "ok"}, b"ok"), ({"name": "pipe", "type": tarfile.FIFOTYPE}, None)]),
                     "pipe", "bad-type", "FIFO"),
        "ctl.zip": (_zip_bytes([("x\x1b]0;pwned\x07.txt", b"x", None)]), "x\\x1b]0;pwned\\x07.txt", "bad-name",
                    "control"),
        "hlout.tar": (_tar_bytes([({"name": "a"}, b"a"), ({"name": "b", "type": tarfile.LNKTYPE,
                                                          "linkname": "../../etc/shadow"}, None)]),
                      "b", "hardlink-outside", "hard link"),
    }
    for name, (data, member, code, words) in cases.items():
        src = os.path.join(d, name)
        with open(src, "wb") as f:
            f.write(data)
        out = os.path.join(d, "out-" + name + ".zip")
        p = pack(src, "-o", out, check=False)
        assert p.returncode == 1, (name, p.returncode, p.stderr)
        lines = [l for l in p.stderr.splitlines() if "[%s]" % code in l]
        assert len(lines) == 1, (name, p.stderr)
        assert name in lines[0] and ("'%s'" % member) in lines[0] and words in lines[0], (name, lines[0])
        assert "\x1b" not in p.stderr and "\x07" not in p.stderr, name
        assert not os.path.exists(out), name
        with open(src, "rb") as f:
            assert f.read() == data, name
        # analyze reads the same members: the same problem, as an error finding, and exit 1.
        a = _analyze(src)
        assert a.returncode == 1, (name, a.returncode, a.stderr)
        doc = json.loads(a.stdout)
        errs = [f for f in doc["findings"] if f["severity"] == "error" and f["code"] == code]
        assert len(errs) == 1, (name, doc["findings"])
        assert ("'%s'" % member) in a.stderr.decode(), (name, a.stderr)
    assert sorted(os.listdir(d)) == sorted(cases), os.listdir(d)


def test_one_run_reports_every_archive_problem():
    d = tmpdir("many")
    src = os.path.join(d, "three.zip")
    with open(src, "wb") as f:
        f.write(_zip_bytes([("ok.txt", b"ok", None), ("../up", b"x", None), ("a", b"1", None), ("./a", b"2", None),
                            ("dir.txt/", b"bytes", 0o100644 << 16)]))
    out = os.path.join(d, "o.zip")
    p = pack(src, "-o", out, check=False)
    assert p.returncode == 1, p.stderr
    for code in ("unsafe-name", "duplicate-member", "bad-name"):
        assert p.stderr.count("[%s]" % code) == 1, (code, p.stderr)
    assert "3 problems" in p.stderr, p.stderr
    assert not os.path.exists(out)
    a = _analyze(src)
    codes = sorted(f["code"] for f in json.loads(a.stdout)["findings"] if f["severity"] == "error")
    assert codes == ["bad-name", "duplicate-member", "unsafe-name"], codes


def test_tar_hard_links_resolved_and_invalid_utf8_names_readable():
    import tarfile
    d = tmpdir("hl")
    src = os.path.join(d, "hl.tar")
    with open(src, "wb") as f:
        f.write(_tar_bytes([({"name": "bin/tool", "mode": 0o755}, b"#!/bin/sh\necho hi\n"),
                            ({"name": "bin/tool2", "type": tarfile.LNKTYPE, "linkname": "bin/tool"}, None)]))
    out = os.path.join(d, "hl.zip")
    pack(src, "-o", out)
    with zipfile.ZipFile(out) as zf:
        assert zf.read("bin/tool2") == zf.read("bin/tool") == b"#!/bin/sh\necho hi\n"
        assert (zf.getinfo("bin/tool2").external_attr >> 16) & 0o777 == 0o755
    # A name that is not UTF-8 keeps its bytes, without the UTF-8 flag: Python's zipfile opens it.
    raw = bytearray(_zip_bytes([("cafX.txt", b"x", None)]))
    raw = bytes(raw).replace(b"cafX.txt", b"caf\xe9.txt")
    src = os.path.join(d, "latin1.zip")
    with open(src, "wb") as f:
        f.write(raw)
    out = os.path.join(d, "latin1-out.zip")
    pack(src, "-o", out)
    with zipfile.ZipFile(out) as zf:
        (info,) = [i for i in zf.infolist()]
        assert info.flag_bits & 0x800 == 0 and info.filename.encode("cp437") == b"caf\xe9.txt", info
        assert zf.read(info) == b"x"
    # And a UTF-8 name keeps its flag.
    src = os.path.join(d, "utf8.zip")
    with open(src, "wb") as f:
        f.write(_zip_bytes([("caf\u00e9.txt", b"y", None)]))
    out = os.path.join(d, "utf8-out.zip")
    pack(src, "-o", out)
    with zipfile.ZipFile(out) as zf:
        assert zf.getinfo("caf\u00e9.txt").flag_bits & 0x800 and zf.read("caf\u00e9.txt") == b"y"


def test_sparse_tar_bomb_refused_before_staging():
    d = tmpdir("sparse")
    tmp = os.path.join(d, "tmp")
    os.mkdir(tmp)
    real = 20 << 30
    mapblk = (b"1\n%d\n512\n" % (real - 512)).ljust(512, b"\0")
    src = os.path.join(d, "hole.tar")
    with open(src, "wb") as f:
        f.write(_tar_bytes([({"name": "GNUSparseFile.0/hole.bin",
                              "pax": {"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
                                      "GNU.sparse.name": "hole.bin", "GNU.sparse.realsize": str(real)}},
                             mapblk + b"x" * 512)]))
    assert os.path.getsize(src) <= 16 << 10
    out = os.path.join(d, "o.zip")
    env = dict(os.environ, TMPDIR=tmp)
    p = pack(src, "-o", out, check=False, env=env)
    assert p.returncode == 1 and "hole.tar" in p.stderr and "hole.bin" in p.stderr and "--max-expand" in p.stderr, \
        p.stderr
    assert not os.path.exists(out)
    used = sum(os.path.getsize(os.path.join(dp, n)) for dp, _, fn in os.walk(tmp) for n in fn)
    assert used < 1 << 20, used
    a = subprocess.run([LP, "analyze", "-q", src], capture_output=True, env=env)
    assert a.returncode == 1 and b"hole.bin" in a.stderr, a.stderr
    # Below the cap (counted at its logical size) it is refused too when smaller than the member.
    p = pack(src, "-o", out, "--max-expand", "1G", check=False, env=env)
    assert p.returncode == 1 and "hole.bin" in p.stderr, p.stderr


if __name__ == "__main__":
    main(globals())
