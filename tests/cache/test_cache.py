#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The build cache: warm == cold byte for byte (pack and container, -j1/-j2),
corrupt entries detected and recomputed, concurrent runs, eviction under the
cap, --no-cache leaving the directory alone, settings that must miss, the
stat index noticing edits, and an unusable cache dir degrading to one warning.

Every run passes --cache-dir under a temporary directory (or sets
XDG_CACHE_HOME there): nothing is written to the user's home.

usage: test_cache.py LAMBDAPACK
"""
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import lptest  # noqa: E402

LP = os.path.abspath(sys.argv[1])
TMP = lptest.tmpdir("cache")
STATS = re.compile(r"cache\s+(\d+) reused, (\d+) computed, (\d+) stored, (\d+) dropped; "
                   r"stat index: (\d+) unchanged, (\d+) hashed; (\d+) evicted")


def tmp(tag):
    d = os.path.join(TMP, tag)
    os.makedirs(d)
    return d


def make_tree(root, big=False, seed=1):
    """Code, node and Python dependencies, incompressible bytes, an empty file, links."""
    rng = random.Random(seed)
    words = ["def ", "return ", "self", ".value", " = ", "import ", "lambda", "(event)", "\n    ", "# x\n"]

    def text(n):
        return "".join(rng.choice(words) for _ in range(n // 5)).encode()

    files = {
        "app.py": text(3000),
        "handler/main.py": text(20000),
        "node_modules/left/index.js": text(40000),
        "node_modules/left/package.json": b'{"name": "left"}\n',
        "node_modules/right/lib/r.js": text(70000),
        "python/lib/python3.12/site-packages/pkg/__init__.py": text(9000),
        "python/lib/python3.12/site-packages/pkg/data.bin": rng.randbytes(150000),
        "assets/logo.png": rng.randbytes(30000),
        "empty.txt": b"",
    }
    if big:
        # Above the zip writer's 32 MiB whole-file threshold: the streamed path.
        files["node_modules/big/blob.dat"] = text(200000) * 170
    for rel, data in files.items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
    os.symlink("main.py", os.path.join(root, "handler", "alias.py"))
    return root


def lp(*args, check=True, env=None):
    return lptest.run([LP, *args], check=check, env=env)


def stats(p):
    m = STATS.search(p.stderr)
    assert m, "no cache line in: %s" % p.stderr
    k = ("reused", "computed", "stored", "dropped", "unchanged", "hashed", "evicted")
    return dict(zip(k, map(int, m.groups())))


def read(p):
    with open(p, "rb") as f:
        return f.read()


def tree_bytes(d):
    """Every file under d with its bytes (an OCI layout compared as a whole)."""
    out = {}
    for base, _, names in os.walk(d):
        for n in names:
            p = os.path.join(base, n)
            out[os.path.relpath(p, d)] = read(p)
    return out


def entry_files(cache, sub):
    """Entry files under cache/sub; "layers/v2/records" is every layer
    record (everything under layers/v2 but the bare blobs)."""
    records = sub.endswith("/records")
    if records:
        sub = os.path.dirname(sub)
    out = []
    for base, dirs, names in os.walk(os.path.join(cache, sub)):
        if records and "blobs" in dirs:
            dirs.remove("blobs")
        out += [os.path.join(base, n) for n in names if not n.startswith(".tmp.")]
    return sorted(out)


def cache_size(cache):
    total = 0
    for sub in ("zip", "layers", "index", "strip-v2"):
        for base, _, names in os.walk(os.path.join(cache, sub)):
            for n in names:
                total += os.lstat(os.path.join(base, n)).st_blocks * 512
    return total


def settle():
    """Let the stat index trust the files: the racy rule distrusts a file
    whose timestamps are not at least a second older than the run."""
    time.sleep(2.1)


def assert_code_sha256(zip_path, rep_path):
    """The writer hashes the zip as it goes out (or the file, after a rewind): either way the file's."""
    import base64
    with open(rep_path) as f:
        got = json.load(f)["artifact"]["code_sha256"]
    want = base64.b64encode(hashlib.sha256(read(zip_path)).digest()).decode()
    assert got == want, (zip_path, got, want)


def snapshot(d):
    out = {}
    for base, dirs, names in os.walk(d):
        for n in dirs + names:
            p = os.path.join(base, n)
            st = os.lstat(p)
            out[os.path.relpath(p, d)] = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return out


# ---- warm == cold ----------------------------------------------------------

def test_pack_warm_equals_cold_across_threads():
    d = tmp("pack-eq")
    src = make_tree(os.path.join(d, "src"), big=True)
    cache = os.path.join(d, "cache")
    ref = os.path.join(d, "ref.zip")
    lp("pack", src, "-o", ref, "-q", "--no-check", "--no-cache", "-j2")
    settle()
    outs = []
    for i, j in enumerate(["1", "2", "1", "2"]):
        out = os.path.join(d, "o%d.zip" % i)
        p = lp("pack", src, "-o", out, "-v", "--no-check", "--cache-dir", cache, "-j", j)
        s = stats(p)
        if i == 0:
            assert s["reused"] == 0 and s["stored"] >= 8, s
        else:
            # Every file's data from the cache, and none of them even re-hashed.
            assert s["computed"] == 0 and s["reused"] >= 8 and s["hashed"] == 0, s
        outs.append(out)
    for o in outs:
        assert read(o) == read(ref), o
    lptest.run(["unzip", "-tq", outs[-1]])


def test_container_warm_equals_cold_across_threads():
    d = tmp("ctr-eq")
    src = make_tree(os.path.join(d, "src"), big=True)
    cache = os.path.join(d, "cache")
    ref = os.path.join(d, "ref")
    lp("container", src, "-o", ref, "-q", "--no-check", "--no-cache", "-j2")
    settle()
    for i, j in enumerate(["1", "2", "1", "2"]):
        out = os.path.join(d, "img%d" % i)
        p = lp("container", src, "-o", out, "-v", "--no-check", "--cache-dir", cache, "-j", j)
        s = stats(p)
        if i == 0:
            assert s["reused"] == 0 and s["stored"] >= 2, s
        else:
            assert s["computed"] == 0 and s["reused"] >= 2 and s["hashed"] == 0, s
        assert tree_bytes(out) == tree_bytes(ref), out
    # The layers are one valid gzip member each.
    for b in os.listdir(os.path.join(ref, "blobs", "sha256")):
        data = read(os.path.join(ref, "blobs", "sha256", b))
        if data[:2] == b"\x1f\x8b":
            lptest.run(["gzip", "-t", os.path.join(ref, "blobs", "sha256", b)])


def test_code_change_reuses_dependency_layers():
    d = tmp("ctr-code")
    src = make_tree(os.path.join(d, "src"))
    cache = os.path.join(d, "cache")
    settle()
    lp("container", src, "-o", os.path.join(d, "a"), "-q", "--no-check", "--cache-dir", cache)
    with open(os.path.join(src, "app.py"), "ab") as f:
        f.write(b"# changed\n")
    p = lp("container", src, "-o", os.path.join(d, "b"), "-v", "--no-check", "--cache-dir", cache)
    s = stats(p)
    # The dependency layer(s) come from the cache; only the code layer is built.
    assert s["reused"] >= 1 and s["computed"] == 1 and s["hashed"] == 1, s
    lp("container", src, "-o", os.path.join(d, "ref"), "-q", "--no-check", "--no-cache")
    assert tree_bytes(os.path.join(d, "b")) == tree_bytes(os.path.join(d, "ref"))


def test_unchanged_base_layers_are_not_read_again():
    """A layout base whose blobs passed the import before and are unchanged
    (stat index) is taken from the cache's own copy; a base blob edited in
    place, even with its mtime put back, is read and refused as before."""
    d = tmp("base-memo")
    btree = make_tree(os.path.join(d, "btree"), big=True, seed=5)
    base = os.path.join(d, "base")
    lp("container", btree, "-o", base, "-q", "--no-check", "--no-cache")
    fn = os.path.join(d, "fn")
    os.makedirs(fn)
    with open(os.path.join(fn, "app.py"), "w") as f:
        f.write("def handler(e, c):\n    return 1\n")
    cache = os.path.join(d, "cache")
    ref = os.path.join(d, "ref")
    lp("container", fn, "-o", ref, "-q", "--base", "oci:" + base, "--no-check", "--no-cache")
    settle()
    args = ["--base", "oci:" + base, "--no-check", "--cache-dir", cache]
    lp("container", fn, "-o", os.path.join(d, "cold"), "-q", *args)
    n_base = len([b for b in os.listdir(os.path.join(base, "blobs", "sha256"))
                  if read(os.path.join(base, "blobs", "sha256", b))[:2] == b"\x1f\x8b"])
    assert n_base >= 2, n_base
    for i in range(2):
        with open(os.path.join(fn, "app.py"), "a") as f:
            f.write("# %d\n" % i)
        p = lp("container", fn, "-o", os.path.join(d, "warm%d" % i), "-v", *args)
        s = stats(p)
        # Every base layer (its blob and its listing for the runnability check) comes from the
        # cache, every time; only the function's layer is built.
        assert s["reused"] == 2 * n_base and s["unchanged"] == n_base and s["computed"] == 1, s
    # The function changed since ref was built: compare the base layers and a fresh uncached build.
    lp("container", fn, "-o", ref + "1", "-q", "--base", "oci:" + base, "--no-check", "--no-cache")
    assert tree_bytes(os.path.join(d, "warm1")) == tree_bytes(ref + "1")
    ref = ref + "1"
    # The cache holds its own copies: never a link to the base's files (a link moves their ctime).
    base_inodes = {os.stat(os.path.join(base, "blobs", "sha256", b)).st_ino
                   for b in os.listdir(os.path.join(base, "blobs", "sha256"))}
    assert not base_inodes & {os.stat(v).st_ino for v in entry_files(cache, "layers/v2/blobs")}
    # That --no-cache build linked the base's blobs into its output, which moved their ctime: the
    # next cached build reads them again (a miss, not an error) and records them anew.
    settle()
    s = stats(lp("container", fn, "-o", os.path.join(d, "prime"), "-v", *args))
    assert s["unchanged"] == 0 and s["dropped"] == 0, s
    settle()
    # The cache's copy of a base blob rots: caught, the base is read and checked again.
    victims = [v for v in entry_files(cache, "layers/v2/blobs")
               if os.path.basename(v) in os.listdir(os.path.join(base, "blobs", "sha256"))]
    assert len(victims) == n_base, victims
    corrupt(victims[0], "flip")
    p = lp("container", fn, "-o", os.path.join(d, "rot"), "-v", *args)
    s = stats(p)
    # The other base layer (blob, listing), the rotten one's listing and the unchanged code layer
    # reused; the rotten blob dropped and its layer read again from the base.
    assert s["dropped"] == 1 and s["reused"] == 2 * n_base and s["computed"] == 1, s
    assert tree_bytes(os.path.join(d, "rot")) == tree_bytes(ref)
    # Someone edits a base blob in place and puts its mtime back: ctime moved, so it is read, and refused.
    big = max((os.path.join(base, "blobs", "sha256", b) for b in os.listdir(os.path.join(base, "blobs", "sha256"))),
              key=os.path.getsize)
    st = os.stat(big)
    with open(big, "r+b") as f:
        f.seek(st.st_size // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 1]))
    os.utime(big, ns=(st.st_atime_ns, st.st_mtime_ns))
    p = lp("container", fn, "-o", os.path.join(d, "tampered"), "-q", *args, check=False)
    assert p.returncode != 0, "a tampered base blob was accepted from the cache"
    assert "sha256" in p.stderr.lower() or "digest" in p.stderr.lower(), p.stderr
    assert not os.path.exists(os.path.join(d, "tampered"))


def test_fresh_checkout_hashes_once_and_reuses():
    """A copy elsewhere (new inodes and timestamps, another stat index): every
    file is hashed once, nothing is compressed again."""
    d = tmp("checkout")
    src = make_tree(os.path.join(d, "src"), big=True)
    cache = os.path.join(d, "cache")
    lp("pack", src, "-o", os.path.join(d, "a.zip"), "-q", "--no-check", "--cache-dir", cache)
    lp("container", src, "-o", os.path.join(d, "a"), "-q", "--no-check", "--cache-dir", cache)
    copy = os.path.join(d, "checkout")
    shutil.copytree(src, copy, symlinks=True)
    p = lp("pack", copy, "-o", os.path.join(d, "b.zip"), "-v", "--no-check", "--cache-dir", cache)
    s = stats(p)
    assert s["unchanged"] == 0 and s["hashed"] >= 9 and s["computed"] == 0 and s["reused"] >= 9, s
    assert read(os.path.join(d, "a.zip")) == read(os.path.join(d, "b.zip"))
    p = lp("container", copy, "-o", os.path.join(d, "b"), "-v", "--no-check", "--cache-dir", cache)
    s = stats(p)
    assert s["computed"] == 0 and s["reused"] >= 2, s
    assert tree_bytes(os.path.join(d, "a")) == tree_bytes(os.path.join(d, "b"))


def test_cache_dir_inside_the_source_is_left_out():
    d = tmp("inside")
    src = make_tree(os.path.join(d, "src"))
    cache = os.path.join(src, ".lpcache")
    lp("pack", src, "-o", os.path.join(d, "a.zip"), "-q", "--no-check", "--cache-dir", cache)
    assert entry_files(cache, "zip")
    lp("pack", src, "-o", os.path.join(d, "b.zip"), "-q", "--no-check", "--cache-dir", cache)
    names = lptest.run(["unzip", "-Z1", os.path.join(d, "b.zip")]).stdout.split()
    assert not [n for n in names if ".lpcache" in n], names
    assert read(os.path.join(d, "a.zip")) == read(os.path.join(d, "b.zip"))


# ---- corrupt entries --------------------------------------------------------

def corrupt(path, how):
    data = read(path)
    if how == "flip":
        i = 144 + (len(data) - 144) // 2
        data = data[:i] + bytes([data[i] ^ 0x40]) + data[i + 1:]
    elif how == "flip-header":
        data = data[:60] + bytes([data[60] ^ 1]) + data[61:]
    elif how == "truncate":
        data = data[:len(data) - 9]
    elif how == "longer":
        data = data + b"\0" * 7
    elif how == "empty":
        data = b""
    if how == "dir":
        os.unlink(path)
        os.mkdir(path)
        with open(os.path.join(path, "x"), "wb") as f:
            f.write(b"x")
        return
    if how == "perm000":
        os.chmod(path, 0)
        return
    with open(path, "wb") as f:
        f.write(data)


def check_recovers(cmd, sub, how):
    d = tmp("corrupt-%s-%s-%s" % (cmd, sub.replace("/", "_"), how))
    src = make_tree(os.path.join(d, "src"), big=(sub == "zip" and how == "flip"))
    cache = os.path.join(d, "cache")
    ext = ".zip" if cmd == "pack" else ""
    ref = os.path.join(d, "ref" + ext)
    lp(cmd, src, "-o", ref, "-q", "--no-check", "--no-cache")
    settle()
    lp(cmd, src, "-o", os.path.join(d, "cold" + ext), "-q", "--no-check", "--cache-dir", cache)
    victims = entry_files(cache, sub)
    if how == "flip":	# a payload to flip a byte in (the empty file's has none)
        victims = [v for v in victims if os.path.getsize(v) > 144]
    assert victims, "nothing cached under %s" % sub
    for v in victims:
        corrupt(v, how)
    out = os.path.join(d, "warm" + ext)
    rep = os.path.join(d, "report.json")
    p = lp(cmd, src, "-o", out, "-v", "--no-check", "--cache-dir", cache, "--json", rep)
    s = stats(p)
    same = read(out) == read(ref) if cmd == "pack" else tree_bytes(out) == tree_bytes(ref)
    assert same, "%s %s: output differs from the uncached one" % (cmd, how)
    if how == "perm000" and os.geteuid() == 0:
        # root reads a mode-000 file like any other: the entry is intact, so it is used.
        assert s["dropped"] == 0 and s["reused"] == len(victims), s
        return
    assert s["dropped"] == len(victims), (how, s, len(victims))
    if cmd == "pack":
        assert_code_sha256(out, rep)
        with open(rep) as f:
            codes = [x["code"] for x in json.load(f)["findings"]]
        assert codes.count("cache-entry-corrupt") == len(victims), codes
    # -v lists info findings.
    assert p.stderr.count("[cache-entry-corrupt]") == len(victims), p.stderr
    # Recomputed and stored again: the next run uses every entry.
    p = lp(cmd, src, "-o", os.path.join(d, "again" + ext), "-v", "--no-check", "--cache-dir", cache)
    s = stats(p)
    assert s["dropped"] == 0 and s["computed"] == 0, s


def test_corrupt_zip_entries():
    for how in ("flip", "flip-header", "truncate", "longer", "empty", "dir", "perm000"):
        check_recovers("pack", "zip", how)


def test_corrupt_layer_blobs():
    for how in ("flip", "truncate", "longer", "empty", "dir"):
        check_recovers("container", "layers/v2/blobs", how)


def test_corrupt_layer_records():
    for how in ("flip", "flip-header", "truncate", "longer", "dir"):
        check_recovers("container", "layers/v2/records", how)


def layer_blobs(layout):
    d = os.path.join(layout, "blobs", "sha256")
    return {n: os.path.join(d, n) for n in os.listdir(d)}


def test_layers_are_shared_with_the_output_by_hard_link():
    """On one file system a cold build links its layers into the cache (not
    written twice) and a warm build links them back out (no layer byte
    written); an output blob edited in place is caught by its SHA-256 on
    the next use and never shipped."""
    d = tmp("ctr-link")
    src = make_tree(os.path.join(d, "src"), big=True)
    cache = os.path.join(d, "cache")
    ref = os.path.join(d, "ref")
    lp("container", src, "-o", ref, "-q", "--no-check", "--no-cache")
    settle()
    lp("container", src, "-o", os.path.join(d, "cold"), "-q", "--no-check", "--cache-dir", cache)
    cached = {os.path.basename(p): os.stat(p) for p in entry_files(cache, "layers/v2/blobs")}
    assert len(cached) >= 2, cached
    cold = layer_blobs(os.path.join(d, "cold"))
    for name, st in cached.items():
        assert name in cold, name
        assert os.stat(cold[name]).st_ino == st.st_ino, "cold layer %s was written twice" % name
    p = lp("container", src, "-o", os.path.join(d, "warm"), "-v", "--no-check", "--cache-dir", cache)
    s = stats(p)
    assert s["computed"] == 0 and s["reused"] == len(cached), s
    warm = layer_blobs(os.path.join(d, "warm"))
    for name, st in cached.items():
        assert os.stat(warm[name]).st_ino == st.st_ino, "warm layer %s is a copy" % name
        assert os.stat(warm[name]).st_nlink == 3
    assert tree_bytes(os.path.join(d, "warm")) == tree_bytes(ref)
    # Someone edits an output blob in place: the cache shares that inode.
    victim = max(cached, key=lambda n: cached[n].st_size)
    with open(warm[victim], "r+b") as f:
        f.seek(cached[victim].st_size // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 1]))
    rep = os.path.join(d, "again.json")
    p = lp("container", src, "-o", os.path.join(d, "again"), "-v", "--no-check", "--cache-dir", cache,
           "--json", rep)
    s = stats(p)
    assert s["dropped"] == 1 and s["computed"] == 1, s
    assert p.stderr.count("[cache-entry-corrupt]") == 1, p.stderr
    assert "SHA-256 mismatch" in p.stderr, p.stderr
    assert tree_bytes(os.path.join(d, "again")) == tree_bytes(ref), "a corrupt cached layer was shipped"
    # The recomputed blob is a new inode: the edited output keeps its own bytes.
    assert os.stat(layer_blobs(os.path.join(d, "again"))[victim]).st_ino != cached[victim].st_ino


def test_cache_on_another_file_system_copies_and_checks():
    d = tmp("ctr-xdev")
    other = "/dev/shm"
    if not os.path.isdir(other) or os.stat(other).st_dev == os.stat(d).st_dev:
        raise lptest.Skip("no second file system at /dev/shm for the cross-device copy path")
    cache = tempfile.mkdtemp(prefix="lp-cache-xdev.", dir=other)
    try:
        src = make_tree(os.path.join(d, "src"), big=True)
        ref = os.path.join(d, "ref")
        lp("container", src, "-o", ref, "-q", "--no-check", "--no-cache")
        settle()
        lp("container", src, "-o", os.path.join(d, "cold"), "-q", "--no-check", "--cache-dir", cache)
        blobs = entry_files(cache, "layers/v2/blobs")
        assert len(blobs) >= 2, blobs
        cold = layer_blobs(os.path.join(d, "cold"))
        for b in blobs:
            assert os.stat(b).st_nlink == 1 and read(b) == read(cold[os.path.basename(b)])
        p = lp("container", src, "-o", os.path.join(d, "warm"), "-v", "--no-check", "--cache-dir", cache)
        s = stats(p)
        assert s["computed"] == 0 and s["reused"] == len(blobs), s
        assert tree_bytes(os.path.join(d, "warm")) == tree_bytes(ref)
        corrupt(blobs[0], "flip")
        p = lp("container", src, "-o", os.path.join(d, "again"), "-v", "--no-check", "--cache-dir", cache)
        s = stats(p)
        assert s["dropped"] == 1 and s["computed"] == 1, s
        assert tree_bytes(os.path.join(d, "again")) == tree_bytes(ref)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def test_corrupt_stat_index():
    d = tmp("corrupt-index")
    src = make_tree(os.path.join(d, "src"))
    cache = os.path.join(d, "cache")
    settle()
    lp("pack", src, "-o", os.path.join(d, "a.zip"), "-q", "--no-check", "--cache-dir", cache)
    (idx,) = entry_files(cache, "index/v1")
    corrupt(idx, "flip-header")
    p = lp("pack", src, "-o", os.path.join(d, "b.zip"), "-v", "--no-check", "--cache-dir", cache)
    s = stats(p)
    assert s["dropped"] == 1 and s["unchanged"] == 0 and s["hashed"] >= 8, s
    assert read(os.path.join(d, "a.zip")) == read(os.path.join(d, "b.zip"))


# ---- concurrency ---------------------------------------------------------------

def test_concurrent_runs_share_one_cache():
    d = tmp("concurrent")
    src = make_tree(os.path.join(d, "src"), big=True)
    cache = os.path.join(d, "cache")
    lp("pack", src, "-o", os.path.join(d, "ref.zip"), "-q", "--no-check", "--no-cache")
    lp("container", src, "-o", os.path.join(d, "ref"), "-q", "--no-check", "--no-cache")
    for rnd in range(2):	# cold, then warm
        procs = []
        for i in range(3):
            procs.append(subprocess.Popen([LP, "pack", src, "-o", os.path.join(d, "p%d%d.zip" % (rnd, i)),
                                           "-q", "--no-check", "--cache-dir", cache, "-j", str(1 + i % 2)],
                                          stderr=subprocess.PIPE))
            procs.append(subprocess.Popen([LP, "container", src, "-o", os.path.join(d, "c%d%d" % (rnd, i)),
                                           "-q", "--no-check", "--cache-dir", cache, "-j", str(1 + i % 2)],
                                          stderr=subprocess.PIPE))
        for p in procs:
            err = p.communicate()[1]
            assert p.returncode == 0, err
            assert b"warning" not in err, err
        for i in range(3):
            assert read(os.path.join(d, "p%d%d.zip" % (rnd, i))) == read(os.path.join(d, "ref.zip"))
            assert tree_bytes(os.path.join(d, "c%d%d" % (rnd, i))) == tree_bytes(os.path.join(d, "ref"))
    # No temporaries left behind.
    for sub in ("zip", "layers", "index"):
        for base, _, names in os.walk(os.path.join(cache, sub)):
            assert not [n for n in names if n.startswith(".tmp.")], (base, names)


# ---- eviction ---------------------------------------------------------------------

def test_eviction_keeps_the_cap_least_recently_used_first():
    d = tmp("evict")
    a = make_tree(os.path.join(d, "a"), seed=1)
    b = make_tree(os.path.join(d, "b"), seed=2)
    cache = os.path.join(d, "cache")
    lp("pack", a, "-o", os.path.join(d, "a.zip"), "-q", "--no-check", "--cache-dir", cache)
    a_entries = set(entry_files(cache, "zip"))
    lp("pack", b, "-o", os.path.join(d, "b.zip"), "-q", "--no-check", "--cache-dir", cache)
    b_entries = set(entry_files(cache, "zip")) - a_entries
    # Age them: a used three hours ago, b two (a hit refreshes an entry at most hourly).
    now = time.time()
    for p, age in [(p, 3 * 3600) for p in a_entries] + [(p, 2 * 3600) for p in b_entries]:
        os.utime(p, (now - age, now - age))
    # Using a again makes its entries the most recent ...
    p = lp("pack", a, "-o", os.path.join(d, "a1.zip"), "-v", "--no-check", "--cache-dir", cache)
    assert stats(p)["computed"] == 0
    a_bytes = sum(os.lstat(p).st_blocks * 512 for p in a_entries)
    cap = a_bytes + 64 * 1024
    # ... so under a cap that holds only them, b's go.
    p = lp("pack", a, "-o", os.path.join(d, "a2.zip"), "-v", "--no-check", "--cache-dir", cache,
           "--cache-max", str(cap))
    assert stats(p)["evicted"] > 0
    assert cache_size(cache) <= cap, (cache_size(cache), cap)
    left = set(entry_files(cache, "zip"))
    assert a_entries <= left, "recently used entries were evicted"
    assert b_entries - left, "nothing of the least recently used was evicted"
    # A tiny cap holds too, and the outputs are still right.
    p = lp("pack", b, "-o", os.path.join(d, "b2.zip"), "-v", "--no-check", "--cache-dir", cache,
           "--cache-max", "20K")
    assert cache_size(cache) <= 20 * 1024, cache_size(cache)
    assert read(os.path.join(d, "b2.zip")) == read(os.path.join(d, "b.zip"))
    assert read(os.path.join(d, "a2.zip")) == read(os.path.join(d, "a.zip"))


# ---- --no-cache ---------------------------------------------------------------------

def test_no_cache_never_touches_the_cache_dir():
    d = tmp("nocache")
    src = make_tree(os.path.join(d, "src"))
    cache = os.path.join(d, "cache")
    lp("pack", src, "-o", os.path.join(d, "warm.zip"), "-q", "--no-check", "--cache-dir", cache)
    lp("container", src, "-o", os.path.join(d, "warm"), "-q", "--no-check", "--cache-dir", cache)
    before = snapshot(cache)
    time.sleep(0.05)
    lp("pack", src, "-o", os.path.join(d, "n.zip"), "-q", "--no-check", "--cache-dir", cache, "--no-cache")
    lp("container", src, "-o", os.path.join(d, "n"), "-q", "--no-check", "--cache-dir", cache, "--no-cache",
       "-O")
    assert snapshot(cache) == before
    # Without --cache-dir the default root is not even created.
    xdg = os.path.join(d, "xdg")
    env = dict(os.environ, XDG_CACHE_HOME=xdg)
    lp("pack", src, "-o", os.path.join(d, "m.zip"), "-q", "--no-check", "--no-cache", "-O", env=env)
    lp("container", src, "-o", os.path.join(d, "m"), "-q", "--no-check", "--no-cache", env=env)
    assert not os.path.exists(xdg)
    # While the default root is used when the cache is on.
    lp("pack", src, "-o", os.path.join(d, "x.zip"), "-q", "--no-check", env=env)
    assert entry_files(os.path.join(xdg, "lambdapack"), "zip")
    assert read(os.path.join(d, "x.zip")) == read(os.path.join(d, "n.zip"))


# ---- settings that must miss -------------------------------------------------------

def test_changed_level_or_method_misses():
    d = tmp("miss")
    src = make_tree(os.path.join(d, "src"))
    cache = os.path.join(d, "cache")
    settle()
    lp("pack", src, "-o", os.path.join(d, "l6.zip"), "-q", "--no-check", "--cache-dir", cache)
    p = lp("pack", src, "-o", os.path.join(d, "l9.zip"), "-v", "--no-check", "--cache-dir", cache, "--level", "9")
    s = stats(p)
    assert s["reused"] == 0 and s["computed"] >= 8, s
    lp("pack", src, "-o", os.path.join(d, "l9ref.zip"), "-q", "--no-check", "--no-cache", "--level", "9")
    assert read(os.path.join(d, "l9.zip")) == read(os.path.join(d, "l9ref.zip"))
    assert read(os.path.join(d, "l9.zip")) != read(os.path.join(d, "l6.zip"))

    lp("container", src, "-o", os.path.join(d, "gz"), "-q", "--no-check", "--cache-dir", cache)
    for extra in (["--compression", "zstd"], ["--compression", "none"], ["--level", "1"]):
        out = os.path.join(d, "c" + "".join(extra))
        p = lp("container", src, "-o", out, "-v", "--no-check", "--cache-dir", cache, *extra)
        s = stats(p)
        assert s["reused"] == 0 and s["computed"] >= 2, (extra, s)
        ref = out + "-ref"
        lp("container", src, "-o", ref, "-q", "--no-check", "--no-cache", *extra)
        assert tree_bytes(out) == tree_bytes(ref), extra


# ---- the stat index ----------------------------------------------------------------

def test_stat_index_sees_same_size_same_mtime_edit():
    d = tmp("index")
    src = make_tree(os.path.join(d, "src"))
    cache = os.path.join(d, "cache")
    settle()
    lp("pack", src, "-o", os.path.join(d, "a.zip"), "-q", "--no-check", "--cache-dir", cache)
    p = lp("pack", src, "-o", os.path.join(d, "b.zip"), "-v", "--no-check", "--cache-dir", cache)
    assert stats(p)["hashed"] == 0, stats(p)
    # Same size, mtime put back to the nanosecond: only ctime (and the bytes) differ.
    victim = os.path.join(src, "handler", "main.py")
    st = os.stat(victim)
    data = bytearray(read(victim))
    data[100] ^= 0x20
    with open(victim, "r+b") as f:
        f.write(data)
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(victim).st_size == st.st_size and os.stat(victim).st_mtime_ns == st.st_mtime_ns
    p = lp("pack", src, "-o", os.path.join(d, "c.zip"), "-v", "--no-check", "--cache-dir", cache)
    s = stats(p)
    assert s["hashed"] == 1, s
    lp("pack", src, "-o", os.path.join(d, "ref.zip"), "-q", "--no-check", "--no-cache")
    assert read(os.path.join(d, "c.zip")) == read(os.path.join(d, "ref.zip"))
    assert read(os.path.join(d, "c.zip")) != read(os.path.join(d, "a.zip"))


def test_stat_index_racy_files_are_rehashed():
    d = tmp("racy")
    src = make_tree(os.path.join(d, "src"))
    cache = os.path.join(d, "cache")
    # Written just now: every file's timestamps fall within the run's own second.
    lp("pack", src, "-o", os.path.join(d, "a.zip"), "-q", "--no-check", "--cache-dir", cache)
    p = lp("pack", src, "-o", os.path.join(d, "b.zip"), "-v", "--no-check", "--cache-dir", cache)
    s = stats(p)
    # Nothing changed, yet a racily clean record is not trusted: hashed again (and still reused).
    assert s["unchanged"] == 0 and s["hashed"] >= 8 and s["computed"] == 0, s
    settle()
    lp("pack", src, "-o", os.path.join(d, "c.zip"), "-q", "--no-check", "--cache-dir", cache)
    p = lp("pack", src, "-o", os.path.join(d, "d.zip"), "-v", "--no-check", "--cache-dir", cache)
    assert stats(p)["hashed"] == 0, stats(p)
    assert read(os.path.join(d, "a.zip")) == read(os.path.join(d, "d.zip"))


# ---- an unusable cache dir ----------------------------------------------------------

def in_mount_ns(setup, argv):
    """Run argv in a private mount namespace after the shell commands in setup (root only)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        raise lptest.Skip("needs root and unshare(1) for a private mount")
    script = "%s && exec \"$@\"" % setup
    return lptest.run(["unshare", "-m", "sh", "-c", script, "sh", *argv], check=False)


def test_read_only_cache_dir_degrades_with_one_warning():
    d = tmp("ro")
    src = make_tree(os.path.join(d, "src"))
    cache = os.path.join(d, "cache")
    lp("pack", src, "-o", os.path.join(d, "ref.zip"), "-q", "--no-check", "--no-cache")
    os.makedirs(cache)
    before = snapshot(cache)
    p = in_mount_ns("mount --bind '%s' '%s' && mount -o remount,bind,ro '%s'" % (cache, cache, cache),
                    [LP, "pack", src, "-o", os.path.join(d, "ro.zip"), "-q", "--no-check", "--cache-dir", cache])
    assert p.returncode == 0, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if "warning" in ln]
    assert len(lines) == 1 and "cache" in lines[0], p.stderr
    assert read(os.path.join(d, "ro.zip")) == read(os.path.join(d, "ref.zip"))
    assert snapshot(cache) == before
    # A cache dir that is a file: the same.
    f = os.path.join(d, "file")
    open(f, "w").close()
    p = lp("container", src, "-o", os.path.join(d, "img"), "-q", "--no-check", "--cache-dir", f)
    assert len([ln for ln in p.stderr.splitlines() if "warning" in ln]) == 1, p.stderr


def test_full_cache_dir_degrades_with_one_warning():
    d = tmp("full")
    src = make_tree(os.path.join(d, "src"), seed=7)
    cache = os.path.join(d, "cache")
    os.makedirs(cache)
    lp("pack", src, "-o", os.path.join(d, "ref.zip"), "-q", "--no-check", "--no-cache")
    lp("container", src, "-o", os.path.join(d, "ref"), "-q", "--no-check", "--no-cache")
    for cmd, out in (("pack", "full.zip"), ("container", "full")):
        p = in_mount_ns("mount -t tmpfs -o size=48k tmpfs '%s'" % cache,
                        [LP, cmd, src, "-o", os.path.join(d, out), "-q", "--no-check", "--cache-dir", cache])
        assert p.returncode == 0, p.stderr
        lines = [ln for ln in p.stderr.splitlines() if "warning" in ln]
        assert len(lines) == 1 and "No space left" in lines[0], p.stderr
    assert read(os.path.join(d, "full.zip")) == read(os.path.join(d, "ref.zip"))
    assert tree_bytes(os.path.join(d, "full")) == tree_bytes(os.path.join(d, "ref"))


# ---- what the walk takes from the stat index -------------------------------------------

def zip_modes(path):
    import zipfile
    with zipfile.ZipFile(path) as z:
        return {i.filename: (i.external_attr >> 16) & 0o777 for i in z.infolist()}


def pack_json(src, out, cache, *extra):
    rep = out + ".json"
    p = lp("pack", src, "-o", out, "-v", "--no-check", "--cache-dir", cache, "--json", rep, *extra)
    with open(rep) as f:
        return p, json.load(f)


def test_index_facts_follow_the_bytes():
    """The walk takes a file's digest and its #!/ELF facts from the index only
    while its stat (ctime included) is unchanged: an edit that keeps size and
    mtime, or a chmod, is seen; an ELF file is still read for its facts."""
    d = tmp("facts")
    src = make_tree(os.path.join(d, "src"))
    # An ELF program without its x bit: 0755 from its bytes, arch from its facts.
    shutil.copy(shutil.which("true"), os.path.join(src, "tool"))
    os.chmod(os.path.join(src, "tool"), 0o644)
    cache = os.path.join(d, "cache")
    settle()
    lp("pack", src, "-o", os.path.join(d, "a.zip"), "-q", "--no-check", "--cache-dir", cache)
    p, rep = pack_json(src, os.path.join(d, "b.zip"), cache)
    assert stats(p)["hashed"] == 0 and stats(p)["computed"] == 0, stats(p)
    assert read(os.path.join(d, "a.zip")) == read(os.path.join(d, "b.zip"))
    assert zip_modes(os.path.join(d, "b.zip"))["tool"] == 0o755
    assert rep["target"]["arch_source"] == "detected from binaries", rep["target"]
    # Same size, mtime put back: app.py now starts with #! (0755), main.py gains its x bit.
    script = os.path.join(src, "app.py")
    st = os.stat(script)
    data = bytearray(read(script))
    data[:2] = b"#!"
    with open(script, "r+b") as f:
        f.write(data)
    os.utime(script, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(script).st_size == st.st_size and os.stat(script).st_mtime_ns == st.st_mtime_ns
    os.chmod(os.path.join(src, "handler", "main.py"), 0o755)
    modes = zip_modes(os.path.join(d, "b.zip"))
    assert modes["app.py"] == 0o644 and modes["handler/main.py"] == 0o644, modes
    p, rep = pack_json(src, os.path.join(d, "c.zip"), cache)
    assert stats(p)["hashed"] == 2, stats(p)
    modes = zip_modes(os.path.join(d, "c.zip"))
    assert modes["app.py"] == 0o755 and modes["handler/main.py"] == 0o755 and modes["tool"] == 0o755, modes
    assert rep["target"]["arch_source"] == "detected from binaries", rep["target"]
    lp("pack", src, "-o", os.path.join(d, "ref.zip"), "-q", "--no-check", "--no-cache")
    assert read(os.path.join(d, "c.zip")) == read(os.path.join(d, "ref.zip"))
    # And once more, now from the index alone (the facts recorded for the new bytes).
    settle()
    lp("pack", src, "-o", os.path.join(d, "d.zip"), "-q", "--no-check", "--cache-dir", cache)
    p, rep = pack_json(src, os.path.join(d, "e.zip"), cache)
    assert stats(p)["hashed"] == 0, stats(p)
    assert_code_sha256(os.path.join(d, "e.zip"), os.path.join(d, "e.zip.json"))
    assert read(os.path.join(d, "e.zip")) == read(os.path.join(d, "ref.zip"))


def test_file_made_unreadable_after_a_cold_run_is_reported():
    """The index lets the walk skip its access check only for a file whose
    stat is unchanged; chmod moves ctime, so the warm run still reports it."""
    if os.geteuid() != 0:
        # root reads a mode-000 file anyway; as another user the test needs root to switch.
        raise lptest.Skip("needs root to run lambdapack as an unprivileged user (nobody)")
    # Outside TMP (mode 0700): nobody has to reach the tree, the cache and the output.
    d = lptest.tmpdir("cache-nobody")
    try:
        _unreadable_as_nobody(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _unreadable_as_nobody(d):
    os.chmod(d, 0o755)
    src = make_tree(os.path.join(d, "src"))
    for base, dirs, names in os.walk(d):
        for n in dirs:
            os.chmod(os.path.join(base, n), 0o755)
    cache = os.path.join(d, "cache")
    os.mkdir(cache)
    os.chmod(cache, 0o777)
    outdir = os.path.join(d, "out")
    os.mkdir(outdir)
    os.chmod(outdir, 0o777)
    settle()

    def run(name):
        return subprocess.run([LP, "pack", src, "-o", os.path.join(outdir, name), "-v", "--no-check",
                               "--cache-dir", cache], capture_output=True, text=True, preexec_fn=lptest.as_nobody())
    p = run("a.zip")
    assert p.returncode == 0, p.stderr
    p = run("b.zip")
    assert p.returncode == 0 and stats(p)["unchanged"] >= 8, p.stderr
    secret = os.path.join(src, "handler", "main.py")
    os.chmod(secret, 0)
    p = run("c.zip")
    assert p.returncode == 1 and "main.py" in p.stderr and "ermission denied" in p.stderr \
        and "[unreadable]" in p.stderr, p.stderr
    assert not os.path.exists(os.path.join(outdir, "c.zip"))


def test_eviction_order_on_a_noatime_cache_dir():
    """Where the file system keeps no access times the hit path stats and
    touches entries as before, so recently used entries still survive."""
    d = tmp("evict-noatime")
    a = make_tree(os.path.join(d, "a"), seed=3)
    b = make_tree(os.path.join(d, "b"), seed=4)
    cache = os.path.join(d, "cache")
    os.makedirs(cache)
    # Everything in one private mount namespace: a noatime tmpfs as the cache dir.
    script = os.path.join(d, "run.py")
    with open(script, "w") as f:
        f.write(r"""
import os, subprocess, sys, time
lp, a, b, cache, d = sys.argv[1:6]
def run(*args):
    p = subprocess.run([lp, *args], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return p
def entries():
    out = set()
    for base, _, names in os.walk(os.path.join(cache, "zip")):
        out |= {os.path.join(base, n) for n in names if not n.startswith(".tmp.")}
    return out
run("pack", a, "-o", os.path.join(d, "a.zip"), "-q", "--no-check", "--cache-dir", cache)
ea = entries()
run("pack", b, "-o", os.path.join(d, "b.zip"), "-q", "--no-check", "--cache-dir", cache)
eb = entries() - ea
now = time.time()
for p, age in [(p, 3 * 3600) for p in ea] + [(p, 2 * 3600) for p in eb]:
    os.utime(p, (now - age, now - age))
p = run("pack", a, "-o", os.path.join(d, "a1.zip"), "-v", "--no-check", "--cache-dir", cache)
assert " 0 computed" in p.stderr, p.stderr
# The hits were touched (mtime), as the file system keeps no atime for them.
assert all(os.stat(p).st_mtime > now - 600 for p in ea), "hits not marked used"
size = sum(os.lstat(p).st_blocks * 512 for p in ea)
run("pack", a, "-o", os.path.join(d, "a2.zip"), "-q", "--no-check", "--cache-dir", cache,
    "--cache-max", str(size + 64 * 1024))
left = entries()
assert ea <= left, "recently used entries were evicted"
assert eb - left, "nothing of the least recently used was evicted"
print("ok")
""")
    p = in_mount_ns("mount -t tmpfs -o noatime,size=64m tmpfs '%s'" % cache,
                    [sys.executable, script, LP, a, b, cache, d])
    assert p.returncode == 0 and "ok" in p.stdout, (p.stdout, p.stderr)


def test_files_hashed_for_dedupe_are_indexed():
    """-O hashes files that share a size (dedupe); the zip writer records them under
    the walk's stat, so the next run takes their digests from the index."""
    d = tmp("dedupe-index")
    src = make_tree(os.path.join(d, "src"))
    for rel in ("dup/a.txt", "dup/b.txt", "dup/c.txt"):
        os.makedirs(os.path.join(src, os.path.dirname(rel)), exist_ok=True)
        with open(os.path.join(src, rel), "wb") as f:
            f.write(b"same bytes\n" * 50 if rel != "dup/c.txt" else b"diff bytes\n" * 50)
    cache = os.path.join(d, "cache")
    settle()
    lp("pack", src, "-O", "-o", os.path.join(d, "a.zip"), "-q", "--no-check", "--cache-dir", cache)
    p = lp("pack", src, "-O", "-o", os.path.join(d, "b.zip"), "-v", "--no-check", "--cache-dir", cache)
    assert stats(p)["hashed"] == 0 and stats(p)["computed"] == 0, stats(p)
    lp("pack", src, "-O", "-o", os.path.join(d, "ref.zip"), "-q", "--no-check", "--no-cache")
    assert read(os.path.join(d, "a.zip")) == read(os.path.join(d, "ref.zip"))
    assert read(os.path.join(d, "b.zip")) == read(os.path.join(d, "ref.zip"))


if __name__ == "__main__":
    try:
        lptest.main(globals())
    finally:
        if not os.environ.get("LP_KEEP"):
            shutil.rmtree(TMP, ignore_errors=True)
