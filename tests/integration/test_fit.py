#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Fit real projects (issue 11): single-file sources, provided.* bootstraps,
findings that point at the fix, the Python ABI check, SAM-style Python at the
zip root, npm devDependencies and pnpm layouts.

usage: test_fit.py LAMBDAPACK
"""
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile

sys.path.insert(0, os.path.dirname(__file__))
from lptest import main, run, tmpdir  # noqa: E402

LP = os.path.abspath(sys.argv[1])
DIST = "/usr/lib/python3/dist-packages"


def pack(*args, check=True):
    return run([LP, "pack", *map(str, args)], check=check)


def lines_with(text, *needles):
    """The stderr lines holding every needle (one finding is one line)."""
    return [ln for ln in text.splitlines() if all(n in ln for n in needles)]


def write(path, data, mode=None):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    if mode is not None:
        os.chmod(path, mode)
    return path


def cc(out, src, *flags, compiler="cc"):
    c = out + ".c"
    write(c, src)
    run([compiler, "-O1", "-o", out, c, *flags])
    return out


HELLO = '#include <stdio.h>\nint main(void) { puts("hello from bootstrap"); return 0; }\n'


def pe_file(path):
    """A real PE executable: the one MinGW would write is not at hand, so take
    a Windows launcher the machine has (pip's vendored distlib), else build the
    smallest valid PE32+ header by hand."""
    for root in ("/usr/lib/python3/dist-packages/pip/_vendor/distlib",
                 "/usr/share/python-wheels"):
        if os.path.isdir(root):
            for n in sorted(os.listdir(root)):
                if n.endswith(".exe"):
                    shutil.copy(os.path.join(root, n), path)
                    return path
    mz = bytearray(0x200)
    mz[0:2] = b"MZ"
    mz[0x3c:0x40] = (0x80).to_bytes(4, "little")
    mz[0x80:0x84] = b"PE\0\0"
    mz[0x84:0x86] = (0x8664).to_bytes(2, "little")   # x86_64
    mz[0x94:0x96] = (0xf0).to_bytes(2, "little")     # optional header size
    mz[0x98:0x9a] = (0x20b).to_bytes(2, "little")    # PE32+
    return write(path, bytes(mz))


# ---- 4. single files and provided.* ---------------------------------------

def test_single_file_bootstrap_static_and_dynamic():
    d = tmpdir("fit-boot")
    out_dir = os.path.join(d, "target", "lambda")
    os.makedirs(out_dir)
    static = cc(os.path.join(out_dir, "bootstrap"), HELLO, "-static")
    z = os.path.join(d, "s.zip")
    p = pack(static, "-o", z, "--runtime", "provided.al2023")
    assert p.returncode == 0, p.stderr
    with zipfile.ZipFile(z) as zf:
        assert zf.namelist() == ["bootstrap"], zf.namelist()
        assert stat.S_IMODE(zf.getinfo("bootstrap").external_attr >> 16) == 0o755
    task = os.path.join(d, "task")
    run(["unzip", "-q", z, "-d", task])
    assert run([os.path.join(task, "bootstrap")]).stdout == "hello from bootstrap\n"
    # FILE=NAME renames, FILE=DIR/ places it under DIR by its name, =./ is the root.
    main_bin = shutil.copy(static, os.path.join(d, "main"))
    pack(main_bin + "=bootstrap", static + "=bin/", "-o", z, "--runtime", "provided.al2023")
    assert sorted(zipfile.ZipFile(z).namelist()) == ["bin/", "bin/bootstrap", "bootstrap"]
    pack(static + "=./", "-o", z, "--runtime", "provided.al2023")
    assert zipfile.ZipFile(z).namelist() == ["bootstrap"]
    # Dynamic: glibc checked against the runtime; a library Amazon Linux lacks is a warning.
    dyn = cc(os.path.join(d, "dyn", "bootstrap"),
             '#include <curl/curl.h>\nint main(void) { return curl_global_init(0) ? 1 : 0; }\n', "-lcurl")
    p = pack(dyn, "-o", z, "--runtime", "provided.al2023")
    assert p.returncode == 0, p.stderr
    miss = lines_with(p.stderr, "bootstrap", "libcurl.so.4", "[missing-library]")
    assert len(miss) == 1 and "provided.al2023" in miss[0], p.stderr
    # Debian's libc start-up already needs GLIBC_2.34: too new for Amazon Linux 2, and the
    # message names the runtime that has it.
    p = pack(dyn, "-o", z + "2", "--runtime", "provided.al2", check=False)
    assert p.returncode == 4 and not os.path.exists(z + "2"), p.stderr
    bad = lines_with(p.stderr, "bootstrap", "GLIBC_2.34", "[glibc-too-new]")
    assert len(bad) == 1 and "--runtime provided.al2023" in bad[0], p.stderr
    # A corrupt file named like an archive stays an archive error, not a file called x.zip.
    junk = write(os.path.join(d, "broken.zip"), "not a zip\n")
    p = pack(junk, "-o", os.path.join(d, "j.zip"), check=False)
    assert p.returncode == 1 and "broken.zip" in p.stderr, p.stderr


def test_bootstrap_missing_and_not_executable():
    d = tmpdir("fit-nob")
    src = os.path.join(d, "src")
    write(os.path.join(src, "handler.sh"), "#!/bin/sh\necho hi\n", 0o755)
    z = os.path.join(d, "f.zip")
    p = pack(src, "-o", z, "--runtime", "provided.al2023", check=False)
    assert p.returncode == 4 and not os.path.exists(z), p.stderr
    line = lines_with(p.stderr, "bootstrap", "[bootstrap-missing]")
    assert len(line) == 1 and "provided.al2023" in line[0] and "SOURCE" in line[0], p.stderr
    # Not executable (no x bit, not ELF, no #!): "permission denied" on Lambda.
    write(os.path.join(src, "bootstrap"), "echo hi\n", 0o644)
    p = pack(src, "-o", z, "--runtime", "provided.al2", check=False)
    line = lines_with(p.stderr, "bootstrap", "not executable", "chmod +x", "[bootstrap-missing]")
    assert p.returncode == 4 and len(line) == 1, p.stderr
    os.chmod(os.path.join(src, "bootstrap"), 0o755)
    pack(src, "-o", z, "--runtime", "provided.al2")
    # Other runtimes need no bootstrap.
    os.unlink(os.path.join(src, "bootstrap"))
    pack(src, "-o", z, "--runtime", "python3.12")


def test_musl_interpreter_is_reported():
    d = tmpdir("fit-interp")
    b = cc(os.path.join(d, "src", "bootstrap"), HELLO, "-Wl,--dynamic-linker=/lib/ld-musl-x86_64.so.1")
    p = pack(os.path.dirname(b), "-o", os.path.join(d, "f.zip"), "--runtime", "provided.al2023", check=False)
    line = lines_with(p.stderr, "bootstrap", "/lib/ld-musl-x86_64.so.1", "statically", "[interpreter-missing]")
    assert p.returncode == 4 and len(line) == 1, p.stderr


# ---- 5. findings that point at the fix -------------------------------------

def test_pe_in_dependency_warns_and_in_own_root_fails():
    d = tmpdir("fit-pe")
    src = os.path.join(d, "src")
    write(os.path.join(src, "app.py"), "def handler(e, c):\n    return 1\n")
    pe_file(write(os.path.join(src, "pip", "_vendor", "distlib", "t64.exe"), b""))
    write(os.path.join(src, "pip-23.0.1.dist-info", "top_level.txt"), "pip\n")
    z = os.path.join(d, "f.zip")
    p = pack(src, "-o", z, "--runtime", "python3.12")
    warn = lines_with(p.stderr, "pip/_vendor/distlib/t64.exe", "-O or --prune-foreign", "[foreign-binary]")
    assert p.returncode == 0 and len(warn) == 1 and "warning" in warn[0], p.stderr
    assert "pip/_vendor/distlib/t64.exe" in zipfile.ZipFile(z).namelist()
    # -O drops it, and with it the directories it emptied.
    p = pack(src, "-o", z, "--runtime", "python3.12", "-O")
    names = zipfile.ZipFile(z).namelist()
    assert "[foreign-binary]" not in p.stderr and not any(n.startswith("pip/") for n in names), names
    # The function's own Windows binary: an error that --prune-foreign does not "fix" by deleting it.
    pe_file(os.path.join(src, "tool.exe"))
    p = pack(src, "-o", z + "2", "--runtime", "python3.12", "--prune-foreign", check=False)
    err = lines_with(p.stderr, "tool.exe", "own file", "--exclude", "[foreign-binary]")
    assert p.returncode == 4 and len(err) == 1 and "error" in err[0], p.stderr
    assert not os.path.exists(z + "2")


def android_elf(path, d):
    """A real ELF shared object carrying Android's .note.android.ident note."""
    note = os.path.join(d, "android.note")
    # namesz 8 ("Android\0"), descsz 4 (API level), type 1, then the level.
    write(note, (8).to_bytes(4, "little") + (4).to_bytes(4, "little") + (1).to_bytes(4, "little") +
          b"Android\0" + (30).to_bytes(4, "little"))
    so = cc(os.path.join(d, "libplain.so"), "int bare_answer(void) { return 42; }\n", "-shared", "-fPIC")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    run(["objcopy", "--add-section", ".note.android.ident=" + note,
         "--set-section-flags", ".note.android.ident=readonly", so, path])
    return path


def test_android_elf_is_foreign():
    d = tmpdir("fit-android")
    src = os.path.join(d, "src")
    write(os.path.join(src, "index.js"), "exports.handler = async () => 1;\n")
    rel = "node_modules/bare-fs/prebuilds/android-x64/bare-fs.bare"
    android_elf(os.path.join(src, rel), d)
    out = run(["readelf", "-SW", os.path.join(src, rel)]).stdout
    assert ".note.android.ident" in out and "NOTE" in out, out
    z = os.path.join(d, "f.zip")
    p = pack(src, "-o", z, "--runtime", "nodejs20.x")
    warn = lines_with(p.stderr, rel, "Android", "-O or --prune-foreign", "[foreign-binary]")
    assert p.returncode == 0 and len(warn) == 1, p.stderr
    p = pack(src, "-o", z, "--runtime", "nodejs20.x", "-O", "-v")
    assert "[missing-library]" not in p.stderr and "[foreign-binary]" not in p.stderr, p.stderr
    assert lines_with(p.stderr, "prune-foreign", rel, "Android"), p.stderr
    names = zipfile.ZipFile(z).namelist()
    assert not any(n.startswith("node_modules/bare-fs/prebuilds") for n in names), names


def test_prune_foreign_keeps_the_functions_own_wrong_arch_binary():
    d = tmpdir("fit-own")
    src = os.path.join(d, "src")
    cc(os.path.join(src, "bootstrap"), HELLO)
    cc(os.path.join(src, "helper-arm64"), HELLO, compiler="aarch64-linux-gnu-gcc")
    cc(os.path.join(src, "vendor", "tool", "tool-arm64"), HELLO, compiler="aarch64-linux-gnu-gcc")
    z = os.path.join(d, "f.zip")
    p = pack(src, "-o", z, "--runtime", "provided.al2023", "--arch", "x86_64", "--prune-foreign", "-v",
             check=False)
    err = lines_with(p.stderr, "helper-arm64", "own file", "--arch arm64", "[wrong-arch]")
    assert p.returncode == 4 and len(err) == 1, p.stderr
    assert os.path.exists(os.path.join(src, "helper-arm64"))
    # The dependency's copy was pruned (no finding for it).
    assert not lines_with(p.stderr, "vendor/tool/tool-arm64", "[wrong-arch]"), p.stderr


def test_pruning_leaves_no_empty_directories():
    d = tmpdir("fit-empty")
    src = os.path.join(d, "src")
    write(os.path.join(src, "index.js"), "exports.handler = async () => 1;\n")
    write(os.path.join(src, "node_modules/left/index.js"), "module.exports = 1;\n")
    write(os.path.join(src, "node_modules/left/test/deep/t.js"), "// test\n")
    write(os.path.join(src, "node_modules/left/docs/api.md"), "# api\n")
    write(os.path.join(src, "node_modules/only-docs/docs/README.md"), "# docs\n")
    write(os.path.join(src, "node_modules/only-docs/index.js"), "module.exports = 2;\n")
    os.makedirs(os.path.join(src, "tmp-empty"))           # empty in the input: kept
    z = os.path.join(d, "f.zip")
    pack(src, "-o", z, "--prune-junk")
    names = zipfile.ZipFile(z).namelist()
    assert "tmp-empty/" in names, names
    for gone in ("node_modules/left/test/", "node_modules/left/test/deep/", "node_modules/left/docs/",
                 "node_modules/only-docs/docs/"):
        assert gone not in names, (gone, names)
    dirs = {n for n in names if n.endswith("/")}
    for dname in dirs - {"tmp-empty/"}:
        assert any(n != dname and n.startswith(dname) for n in names), (dname, names)


def test_quiet_keeps_warnings_and_summary_names_the_target():
    d = tmpdir("fit-q")
    src = os.path.join(d, "src")
    write(os.path.join(src, "app.py"), "def handler(e, c):\n    return 1\n")
    pe_file(write(os.path.join(src, "python", "setuptools", "cli-64.exe"), b""))
    z = os.path.join(d, "f.zip")
    p = pack(src, "-o", z, "--runtime", "python3.12", "-q")
    assert p.returncode == 0 and "wrote" not in p.stderr and "target" not in p.stderr, p.stderr
    assert len(lines_with(p.stderr, "python/setuptools/cli-64.exe", "--prune-foreign", "[foreign-binary]")) == 1
    p = pack(src, "-o", z, "--runtime", "python3.12")
    t = lines_with(p.stderr, "target")
    assert t == ["  target      python3.12 (Amazon Linux 2023, glibc 2.34), x86_64 (default)"], p.stderr
    p = pack(src, "-o", z, "--runtime", "python3.11", "--arch", "arm64", "--json", os.path.join(d, "r.json"))
    assert lines_with(p.stderr, "target", "python3.11 (Amazon Linux 2, glibc 2.26), arm64 (given)"), p.stderr
    rep = json.load(open(os.path.join(d, "r.json")))
    assert rep["target"]["arch_source"] == "given" and rep["target"]["glibc"] == "2.26", rep["target"]
    cc(os.path.join(src, "bin", "tool"), HELLO, compiler="aarch64-linux-gnu-gcc")
    p = pack(src, "-o", z)
    assert lines_with(p.stderr, "target", "no --runtime", "arm64 (detected from binaries)"), p.stderr


def test_one_run_reports_compatibility_and_size_with_their_fixes():
    d = tmpdir("fit-both")
    src = os.path.join(d, "src")
    write(os.path.join(src, "index.js"), "exports.handler = async () => 1;\n")
    # A macOS build of a native module (real Mach-O header) and 270 MB of model data
    # in a dependency's test fixtures (sparse: no disk is spent).
    mod = os.path.join(src, "node_modules/onnx/bin/napi-v3/darwin/arm64/onnxruntime_binding.node")
    write(mod, bytes.fromhex("cffaedfe0c000001") + b"\0" * 1024)
    big = os.path.join(src, "node_modules/onnx/test/fixtures/model.onnx")
    write(big, b"")
    os.truncate(big, 270 * 1000 * 1000)
    z = os.path.join(d, "f.zip")
    p = pack(src, "-o", z, "--runtime", "nodejs20.x", check=False)
    assert p.returncode == 4 and not os.path.exists(z), p.stderr
    err = lines_with(p.stderr, "onnxruntime_binding.node", "-O or --prune-foreign", "[foreign-binary]")
    assert len(err) == 1, p.stderr
    size = lines_with(p.stderr, "unzipped size", "over Lambda's limit", "--fallback")
    assert len(size) == 1, p.stderr
    hint = lines_with(p.stderr, "hint: -O would remove 1 foreign binary", "under the limit", "0 compatibility errors",
                      "-O fixes this")
    assert len(hint) == 1, p.stderr
    p = pack(src, "-o", z, "--runtime", "nodejs20.x", "-O")
    assert p.returncode == 0, p.stderr


def test_zip_over_50_mb_names_s3_even_with_q():
    d = tmpdir("fit-s3")
    src = os.path.join(d, "src")
    write(os.path.join(src, "data.bin"), os.urandom(53 * 1024 * 1024))
    p = pack(src, "-o", os.path.join(d, "f.zip"), "-q", "-l", "1")
    assert p.returncode == 0 and len(lines_with(p.stderr, "f.zip", "through S3", "warning")) == 1, p.stderr


# ---- 3. Python --------------------------------------------------------------

def sam_tree(d):
    """SAM-style Python: the function and Debian's PyYAML (cpython-311 extension,
    __pycache__, dist-info) side by side at the zip root."""
    src = os.path.join(d, "src")
    os.makedirs(src)
    for n in ("yaml", "_yaml", "PyYAML-6.0.dist-info"):
        shutil.copytree(os.path.join(DIST, n), os.path.join(src, n))
    write(os.path.join(src, "app.py"), "import yaml\n\ndef handler(e, c):\n    return yaml.safe_dump(e)\n")
    write(os.path.join(src, "__pycache__", "app.cpython-311.pyc"), b"own")
    write(os.path.join(src, "tests", "test_app.py"), "def test():\n    pass\n")
    return src


def test_python_abi_cpython_tags_and_abi3():
    d = tmpdir("fit-abi")
    src = sam_tree(d)
    ext = "yaml/_yaml.cpython-311-x86_64-linux-gnu.so"
    assert os.path.exists(os.path.join(src, ext))
    z = os.path.join(d, "f.zip")
    p = pack(src, "-o", z, "--runtime", "python3.12", check=False)
    assert p.returncode == 4 and not os.path.exists(z), p.stderr
    err = lines_with(p.stderr, ext, "Python 3.11", "python3.12", "Python 3.12", "--runtime python3.11", "[python-abi]")
    assert len(err) == 1 and "error" in err[0], p.stderr
    # Debian's __pycache__ is for 3.11: never loaded by 3.12, one warning for all of them.
    stale = lines_with(p.stderr, "__pycache__", "[python-abi]", "--prune-junk")
    assert len(stale) == 1 and "warning" in stale[0], p.stderr
    # The same tree is right for python3.11.
    p = pack(src, "-o", z, "--runtime", "python3.11")
    assert "[python-abi]" not in p.stderr, p.stderr
    # analyze shares the check.
    a = run([LP, "analyze", src, "--runtime", "python3.12", "--json", "-"], check=False)
    codes = [(f["code"], f["path"]) for f in json.loads(a.stdout)["findings"] if f["severity"] == "error"]
    assert ("python-abi", ext) in codes, codes
    # abi3 modules (the stable ABI) load on any later Python.
    abi3 = os.path.join(d, "abi3")
    shutil.copytree(os.path.join(DIST, "cryptography", "hazmat", "bindings"), os.path.join(abi3, "bindings"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    assert [n for n in os.listdir(os.path.join(abi3, "bindings")) if ".abi3." in n]
    p = pack(abi3, "-o", z, "--runtime", "python3.12")
    assert "[python-abi]" not in p.stderr, p.stderr


def test_python_abi_sourceless_pyc():
    d = tmpdir("fit-pyc")
    src = os.path.join(d, "src")
    os.makedirs(src)
    write(os.path.join(d, "mod.py"), "X = 1\n")
    # A sourceless module compiled by this machine's Python 3.11 (Debian's).
    run(["/usr/bin/python3", "-c", "import py_compile,sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2])",
         os.path.join(d, "mod.py"), os.path.join(src, "mod.pyc")])
    z = os.path.join(d, "f.zip")
    p = pack(src, "-o", z, "--runtime", "python3.12", check=False)
    err = lines_with(p.stderr, "mod.pyc", "Python 3.11", "python3.12", "bad magic number", "[python-abi]")
    assert p.returncode == 4 and len(err) == 1, p.stderr
    pack(src, "-o", z, "--runtime", "python3.11")


def test_sam_style_root_dependencies_are_pruned_by_prune_junk():
    d = tmpdir("fit-sam")
    src = sam_tree(d)
    z = os.path.join(d, "f.zip")
    p = pack(src, "-o", z, "--runtime", "python3.11", "--prune-junk", "-v", "--json", os.path.join(d, "r.json"))
    names = zipfile.ZipFile(z).namelist()
    # The dependencies' bytecode caches go; the dist-info stays (importlib.metadata reads it).
    assert not any(n.startswith(("yaml/__pycache__", "_yaml/__pycache__")) for n in names), names
    assert "yaml/__init__.py" in names and "PyYAML-6.0.dist-info/RECORD" in names, names
    # The function's own files are never junk.
    assert "__pycache__/app.cpython-311.pyc" in names and "tests/test_app.py" in names, names
    assert lines_with(p.stderr, "prune-junk", "yaml", "__pycache__"), p.stderr
    rep = json.load(open(os.path.join(d, "r.json")))
    assert rep["sizes"]["saved_by"]["prune_junk"] > 0, rep["sizes"]
    # analyze's package report names the distribution at the root.
    a = json.loads(run([LP, "analyze", src, "--json", "-"]).stdout)
    pk = [c for c in a["contributors"]["packages"] if c.get("kind") == "python"]
    assert any(c["name"] in ("PyYAML", "pyyaml", "yaml") for c in pk), a["contributors"]["packages"]


# ---- 2. Node ------------------------------------------------------------------

def npm_tree(d, hidden=True):
    """What npm 7+ installs for {"dependencies": {"ms"}, "devDependencies": {"left-pad"},
    "optionalDependencies": {"fsevents", "@esbuild/linux-x64", "@esbuild/linux-arm64"}}."""
    src = os.path.join(d, "src")
    write(os.path.join(src, "index.js"), "const ms = require('ms');\nexports.handler = async () => ms(60000);\n")
    write(os.path.join(src, "package.json"), json.dumps({
        "name": "fn", "version": "1.0.0", "dependencies": {"ms": "^2.1.3"},
        "devDependencies": {"left-pad": "^1.3.0"},
        "optionalDependencies": {"fsevents": "^2.3.3", "@esbuild/linux-x64": "0.19.0",
                                 "@esbuild/linux-arm64": "0.19.0"}}))
    write(os.path.join(src, "node_modules/ms/package.json"), '{"name": "ms", "version": "2.1.3", "main": "index.js"}')
    write(os.path.join(src, "node_modules/ms/index.js"), "module.exports = (n) => n / 1000 + 's';\n")
    write(os.path.join(src, "node_modules/left-pad/package.json"), '{"name": "left-pad", "version": "1.3.0"}')
    write(os.path.join(src, "node_modules/left-pad/index.js"), "module.exports = (s) => s;\n")
    write(os.path.join(src, "node_modules/left-pad/cli.js"), "#!/usr/bin/env node\n", 0o755)
    write(os.path.join(src, "node_modules/left-pad/test/test.js"), "require('..');\n" * 200)
    os.makedirs(os.path.join(src, "node_modules/.bin"))
    os.symlink("../left-pad/cli.js", os.path.join(src, "node_modules/.bin/left-pad"))
    write(os.path.join(src, "node_modules/fsevents/package.json"), '{"name": "fsevents", "os": ["darwin"]}')
    write(os.path.join(src, "node_modules/fsevents/fsevents.node"), bytes.fromhex("cffaedfe0c000001") + b"\0" * 4000)
    for cpu in ("x64", "arm64"):
        write(os.path.join(src, "node_modules/@esbuild/linux-%s/package.json" % cpu),
              json.dumps({"name": "@esbuild/linux-" + cpu, "os": ["linux"], "cpu": [cpu]}))
        write(os.path.join(src, "node_modules/@esbuild/linux-%s/bin/esbuild" % cpu), "#!/bin/sh\n" + cpu * 500, 0o755)
    lock = {"name": "fn", "version": "1.0.0", "lockfileVersion": 3, "requires": True, "packages": {
        "node_modules/ms": {"version": "2.1.3"},
        "node_modules/left-pad": {"version": "1.3.0", "dev": True, "bin": {"left-pad": "cli.js"}},
        "node_modules/fsevents": {"version": "2.3.3", "optional": True, "os": ["darwin"], "hasInstallScript": True},
        "node_modules/@esbuild/linux-x64": {"version": "0.19.0", "optional": True, "os": ["linux"], "cpu": ["x64"]},
        "node_modules/@esbuild/linux-arm64": {"version": "0.19.0", "optional": True, "os": ["linux"],
                                              "cpu": ["arm64"]},
    }}
    if hidden:
        write(os.path.join(src, "node_modules/.package-lock.json"), json.dumps(lock))
    else:
        lock["packages"][""] = {"name": "fn", "version": "1.0.0"}
        write(os.path.join(src, "package-lock.json"), json.dumps(lock))
    return src


def test_npm_dev_and_other_platform_optional_packages_are_left_out():
    d = tmpdir("fit-npm")
    src = npm_tree(d)
    z = os.path.join(d, "f.zip")
    p = pack(src, "-o", z, "--runtime", "nodejs20.x", "--arch", "x86_64", "--json", os.path.join(d, "r.json"))
    names = zipfile.ZipFile(z).namelist()
    for gone in ("node_modules/left-pad/", "node_modules/fsevents/", "node_modules/@esbuild/linux-arm64/",
                 "node_modules/.bin/left-pad"):
        assert not any(n.startswith(gone) for n in names), (gone, names)
    for kept in ("node_modules/ms/index.js", "node_modules/@esbuild/linux-x64/bin/esbuild", "index.js"):
        assert kept in names, (kept, names)
    line = lines_with(p.stderr, "left out", "3 npm packages", "--include-dev")
    assert p.returncode == 0 and len(line) == 1, p.stderr
    # The Mach-O of the darwin-only package went with it: nothing to warn about.
    assert "[foreign-binary]" not in p.stderr, p.stderr
    rep = json.load(open(os.path.join(d, "r.json")))
    assert rep["sizes"]["saved_by"]["prune_dev"] > 4000, rep["sizes"]
    dev = [c for c in rep["changes"] if c["action"] == "prune-dev"]
    assert sorted(c["path"] for c in dev) == ["node_modules/@esbuild/linux-arm64", "node_modules/fsevents",
                                             "node_modules/left-pad"], dev
    # The function still runs from the unzipped artifact.
    task = os.path.join(d, "task")
    run(["unzip", "-q", z, "-d", task])
    out = run(["node", "-e", "require(process.argv[1]).handler().then(v => console.log(v))",
               os.path.join(task, "index.js")]).stdout
    assert out.strip() == "60s", out
    # On arm64 the other esbuild goes.
    pack(src, "-o", z, "--arch", "arm64")
    names = zipfile.ZipFile(z).namelist()
    assert "node_modules/@esbuild/linux-arm64/bin/esbuild" in names and \
        not any(n.startswith("node_modules/@esbuild/linux-x64/") for n in names), names
    # --include-dev keeps everything (and the darwin binary is then a finding again).
    p = pack(src, "-o", z + "2", "--include-dev", check=False)
    assert p.returncode == 4 and not os.path.exists(z + "2"), p.stderr
    assert len(lines_with(p.stderr, "fsevents.node", "-O or --prune-foreign", "[foreign-binary]")) == 1, p.stderr
    p = pack(src, "-o", z, "--include-dev", "--no-check")
    names = zipfile.ZipFile(z).namelist()
    assert "node_modules/left-pad/test/test.js" in names and "node_modules/.bin/left-pad" in names, names
    assert "left out" not in p.stderr, p.stderr


def test_npm_package_lock_v3_without_hidden_lockfile():
    d = tmpdir("fit-npm3")
    src = npm_tree(d, hidden=False)
    z = os.path.join(d, "f.zip")
    p = pack(src, "-o", z, "--arch", "x86_64")
    names = zipfile.ZipFile(z).namelist()
    assert not any(n.startswith("node_modules/left-pad") for n in names), names
    assert lines_with(p.stderr, "left out", "3 npm packages"), p.stderr


def test_pnpm_layout_packs_and_its_links_resolve():
    d = tmpdir("fit-pnpm")
    src = os.path.join(d, "src")
    store = os.path.join(src, "node_modules", ".pnpm")
    write(os.path.join(store, "ms@2.1.3/node_modules/ms/index.js"), "module.exports = (n) => n / 1000 + 's';\n")
    write(os.path.join(store, "ms@2.1.3/node_modules/ms/package.json"), '{"name": "ms", "main": "index.js"}')
    write(os.path.join(store, "debug@4.3.4/node_modules/debug/index.js"),
          "const ms = require('ms');\nmodule.exports = (n) => 'debug ' + ms(n);\n")
    write(os.path.join(store, "debug@4.3.4/node_modules/debug/package.json"), '{"name": "debug", "main": "index.js"}')
    # pnpm's links: a package's dependencies beside it in the virtual store, the direct ones at the top.
    os.symlink("../../ms@2.1.3/node_modules/ms", os.path.join(store, "debug@4.3.4/node_modules/ms"))
    os.symlink(".pnpm/debug@4.3.4/node_modules/debug", os.path.join(src, "node_modules/debug"))
    write(os.path.join(src, "node_modules/.modules.yaml"), "layoutVersion: 5\nnodeLinker: isolated\n")
    write(os.path.join(src, "index.js"), "const debug = require('debug');\nexports.handler = async () => debug(2000);\n")
    for opt in ([], ["-O"]):
        z = os.path.join(d, "f%d.zip" % len(opt))
        pack(src, "-o", z, *opt)
        with zipfile.ZipFile(z) as zf:
            info = zf.getinfo("node_modules/debug")
            assert stat.S_ISLNK(info.external_attr >> 16), info
            assert zf.read(info) == b".pnpm/debug@4.3.4/node_modules/debug"
        task = os.path.join(d, "task%d" % len(opt))
        run(["unzip", "-q", z, "-d", task])
        assert os.path.realpath(os.path.join(task, "node_modules/.pnpm/debug@4.3.4/node_modules/ms")) == \
            os.path.join(os.path.realpath(task), "node_modules/.pnpm/ms@2.1.3/node_modules/ms")
        out = run(["node", "-e", "require(process.argv[1]).handler().then(v => console.log(v))",
                   os.path.join(task, "index.js")]).stdout
        assert out.strip() == "debug 2s", out


if __name__ == "__main__":
    main(globals())
