"""End-to-end: ELF files the kernel or ld.so refuse (truncated, program headers past the end, a
wild DT_STRTAB, nonzero e_ident padding, an unterminated PT_INTERP). pack stops with exit 4 naming each file and why and
writes nothing; --no-check packs them, unstripped, with a warning; analyze reports the same error
findings for the directory and for a zip of it. The crafted bytes are first shown to fail to load
on this machine, so the test pins real loader behaviour, not our own opinion of it.

usage: test_unloadable.py LAMBDAPACK
"""
import hashlib
import json
import os
import struct
import subprocess
import sys
import zipfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from lptest import main, run, tmpdir  # noqa: E402

LP = os.path.abspath(sys.argv[1])

LIB_C = "int ok_answer(void) { return 42; }\n" + "".join(
    "int ok_f%d(int x) { return x * %d + ok_answer(); }\n" % (i, i) for i in range(50))
EXE_C = "#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n"


def phdrs(b):
    """(offset of the entry, p_type, p_offset, p_vaddr, p_filesz) for each program header (ELF64 LE)."""
    assert b[:4] == b"\x7fELF" and b[4] == 2 and b[5] == 1
    phoff, = struct.unpack_from("<Q", b, 0x20)
    phnum, = struct.unpack_from("<H", b, 0x38)
    out = []
    for i in range(phnum):
        o = phoff + i * 56
        t, = struct.unpack_from("<I", b, o)
        off, va, _, fsz = struct.unpack_from("<QQQQ", b, o + 8)
        out.append((o, t, off, va, fsz))
    return out


def dyn_value_at(b, tag):
    _, _, off, _, fsz = next(p for p in phdrs(b) if p[1] == 2)  # PT_DYNAMIC
    for o in range(off, off + fsz, 16):
        if struct.unpack_from("<Q", b, o)[0] == tag:
            return o + 8
    raise AssertionError("no dynamic tag %d" % tag)


def craft(d):
    """Build a healthy library and executable, then the broken variants; returns {name: bytes}."""
    open(os.path.join(d, "lib.c"), "w").write(LIB_C)
    open(os.path.join(d, "exe.c"), "w").write(EXE_C)
    run(["cc", "-g", "-O1", "-shared", "-fPIC", "-Wl,-soname,libok.so", "-o", os.path.join(d, "libok.so"),
         os.path.join(d, "lib.c")])
    run(["cc", "-g", "-O1", "-o", os.path.join(d, "tool"), os.path.join(d, "exe.c")])
    lib = open(os.path.join(d, "libok.so"), "rb").read()
    exe = open(os.path.join(d, "tool"), "rb").read()
    out = {"lib/libok.so": lib}
    last = [p for p in phdrs(lib) if p[1] == 1][-1]  # PT_LOAD
    out["lib/libcut.so"] = lib[:last[2] + last[4] // 2]
    b = bytearray(lib)
    struct.pack_into("<Q", b, 0x20, len(b) - 100)
    out["lib/libphdr.so"] = bytes(b)
    b = bytearray(lib)
    struct.pack_into("<Q", b, dyn_value_at(b, 5), 0x7fff0000)  # DT_STRTAB
    out["lib/libstrtab.so"] = bytes(b)
    b = bytearray(lib)
    b[12] = 1  # e_ident padding
    out["lib/libpad.so"] = bytes(b)
    b = bytearray(exe)
    _, _, off, _, fsz = next(p for p in phdrs(b) if p[1] == 3)  # PT_INTERP
    b[off + fsz - 1] = ord("x")
    out["bin/tool"] = bytes(b)
    return out


WHY = {
    "lib/libcut.so": "runs past the end of the file",
    "lib/libphdr.so": "program header table",
    "lib/libstrtab.so": "DT_STRTAB 0x7fff0000",
    "lib/libpad.so": "nonzero padding in e_ident",
    "bin/tool": "PT_INTERP is not NUL-terminated",
}


def write_tree(root, files):
    for p, data in files.items():
        fp = os.path.join(root, p)
        os.makedirs(os.path.dirname(fp), exist_ok=True)
        with open(fp, "wb") as f:
            f.write(data)
        os.chmod(fp, 0o755)
    with open(os.path.join(root, "handler.py"), "w") as f:
        f.write("def handler(e, c):\n    return 1\n")


def digests(root):
    out = {}
    for dp, _, fs in os.walk(root):
        for n in fs:
            p = os.path.join(dp, n)
            out[p] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


def setup():
    d = tmpdir("unl")
    files = craft(d)
    src = os.path.join(d, "src")
    write_tree(src, files)
    return d, src, files


def test_crafted_files_really_fail_to_load():
    d, src, _ = setup()
    load = "import ctypes, sys; ctypes.CDLL(sys.argv[1]); print('loaded')"
    p = run([sys.executable, "-c", load, os.path.join(src, "lib/libok.so")])
    assert p.stdout.strip() == "loaded"
    for name in ("lib/libcut.so", "lib/libphdr.so", "lib/libstrtab.so", "lib/libpad.so"):
        p = run([sys.executable, "-c", load, os.path.join(src, name)], check=False)
        assert p.returncode != 0 and "loaded" not in p.stdout, (name, p.returncode, p.stdout, p.stderr)
    try:
        subprocess.run([os.path.join(src, "bin/tool")], capture_output=True)
    except OSError:
        pass  # ENOEXEC: the kernel refused the interpreter name
    else:
        raise AssertionError("bin/tool ran")


def test_pack_refuses_with_exit_4_naming_file_and_reason():
    d, src, files = setup()
    before = digests(src)
    out = os.path.join(d, "f.zip")
    p = run([LP, "pack", src, "-o", out, "--runtime", "python3.12"], check=False)
    assert p.returncode == 4, (p.returncode, p.stderr)
    lines = [ln for ln in p.stderr.splitlines() if "[elf-unloadable]" in ln]
    assert len(lines) == len(WHY), p.stderr
    for name, why in WHY.items():
        assert any(name + ":" in ln and why in ln for ln in lines), (name, p.stderr)
    assert "lib/libok.so" not in p.stderr
    assert not os.path.exists(out)
    assert [n for n in os.listdir(d) if n.startswith("f.zip")] == []
    assert digests(src) == before

    # --no-check: packed with a warning each; -O strips the healthy library but
    # ships the refused files byte for byte (strip never rewrites them).
    p = run([LP, "pack", src, "-o", out, "--runtime", "python3.12", "--no-check", "-O"])
    for name, why in WHY.items():
        assert any(name + ":" in ln and why in ln and "warning" in ln for ln in p.stderr.splitlines()), \
            (name, p.stderr)
    with zipfile.ZipFile(out) as z:
        for name in WHY:
            assert z.read(name) == files[name], name
        assert len(z.read("lib/libok.so")) < len(files["lib/libok.so"])
    assert digests(src) == before


def findings(doc):
    return {(f["code"], f["path"]): f for f in doc["findings"]}


def test_analyze_reports_the_same_errors_for_directory_and_zip():
    d, src, files = setup()
    z = os.path.join(d, "t.zip")
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in sorted(files.items()):
            zf.writestr(name, data)
    for target in (src, z):
        p = run([LP, "analyze", target, "--runtime", "python3.12", "--json", "-"])
        fs = findings(json.loads(p.stdout))
        for name, why in WHY.items():
            f = fs.get(("elf-unloadable", name))
            assert f and f["severity"] == "error" and why in f["message"], (target, name, fs)
        assert ("elf-unloadable", "lib/libok.so") not in fs
        p = run([LP, "analyze", target, "--runtime", "python3.12"])
        assert "elf-unloadable" in p.stdout and "lib/libstrtab.so" in p.stdout


if __name__ == "__main__":
    main(globals())
