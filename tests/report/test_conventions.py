#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The CLI conventions of issue 12: --color with NO_COLOR and FORCE_COLOR, the progress line (on
a terminal only; never in a pipe, with -q or with --json -), singular and plural, option names
in messages, a path said once, and --fail-on naming the findings that failed it.

usage: test_conventions.py LAMBDAPACK SOURCE_ROOT

Terminals are real pseudo-terminals (pty). LP_PROGRESS_DELAY=0 shows the progress line from the
start instead of after a second, so no assertion depends on how fast the machine is: the line
ends on the phase's final figures (100%) before it is cleared.
"""
import os
import pty
import re
import shutil
import subprocess
import sys
import tempfile

LP = os.path.abspath(sys.argv[1])
ROOT = os.path.abspath(sys.argv[2])
ESC = b"\x1b["
failures = []
passed = 0


def check(name, cond, detail=""):
    global passed
    if cond:
        passed += 1
    else:
        failures.append(name)
        print(f"FAIL {name}: {detail!r}"[:1500])


def env(**kw):
    e = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "LP_PROGRESS_DELAY")}
    e.update(TERM="xterm", SOURCE_DATE_EPOCH="315532800")
    e.update(kw)
    return e


def on_tty(args, cwd, **kw):
    """Run with stderr (and stdout unless it is --json -) on a pseudo-terminal; (rc, tty bytes, stdout)."""
    m, s = pty.openpty()
    to_pipe = "-" in args
    p = subprocess.Popen([LP] + args, cwd=cwd, env=env(**kw), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE if to_pipe else s, stderr=s)
    os.close(s)
    out = b""
    while True:
        try:
            d = os.read(m, 65536)
        except OSError:
            break
        if not d:
            break
        out += d
    stdout = p.stdout.read() if to_pipe else b""
    p.wait()
    os.close(m)
    return p.returncode, out, stdout


def piped(args, cwd, **kw):
    p = subprocess.run([LP] + args, cwd=cwd, env=env(**kw), capture_output=True)
    return p.returncode, p.stderr, p.stdout


def main():
    tmp = tempfile.mkdtemp(prefix="lp-conv-")
    try:
        cases(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {len(failures)} failed")
    return 1 if failures else 0


def cases(tmp):
    app = os.path.join(tmp, "app")
    shutil.copytree(os.path.join(ROOT, "samples", "python-app"), app)
    bad = ["pack", "nope", "-o", "x.zip"]

    # ---- colour: the option wins, then FORCE_COLOR, then NO_COLOR, then "is it a terminal"
    rc, err, _ = piped(bad, tmp)
    check("pipe: no colour", rc == 1 and ESC not in err, err)
    rc, err, _ = piped(bad + ["--color=always"], tmp)
    check("--color=always in a pipe", ESC + b"1;31merror:" in err, err)
    rc, err, _ = piped(["--color=always"] + bad, tmp, NO_COLOR="1")
    check("--color=always (before the command) beats NO_COLOR", ESC in err, err)
    rc, err, _ = piped(bad, tmp, FORCE_COLOR="1")
    check("FORCE_COLOR in a pipe", ESC in err, err)
    rc, err, _ = piped(bad, tmp, FORCE_COLOR="0")
    check("FORCE_COLOR=0 is not forcing", ESC not in err, err)
    rc, err, _ = piped(bad + ["--color=never"], tmp, FORCE_COLOR="1")
    check("--color=never beats FORCE_COLOR", ESC not in err, err)
    rc, tty, _ = on_tty(bad, tmp)
    check("terminal: colour", ESC + b"1;31merror:" in tty, tty)
    rc, tty, _ = on_tty(bad, tmp, NO_COLOR="1")
    check("terminal with NO_COLOR: none", rc == 1 and b"error:" in tty and ESC + b"1;31m" not in tty, tty)
    rc, tty, _ = on_tty(bad, tmp, TERM="dumb")
    check("TERM=dumb: none", ESC + b"1;31m" not in tty, tty)
    rc, err, _ = piped(["--color=sometimes"] + bad, tmp)
    check("--color=sometimes is a usage error naming the option", rc == 2 and b"--color" in err, err)
    rc, err, out = piped(["analyze", "app", "--color=always"], tmp)
    check("analyze's report coloured with --color=always", ESC + b"1m" in out, out[:200])

    # ---- progress: percentage, rate and time left on a terminal, only there
    rc, tty, _ = on_tty(["pack", "app", "-o", "f.zip"], tmp, LP_PROGRESS_DELAY="0")
    line = re.search(rb"writing zip +100%  [^\r\n]* of [^\r\n]*/s  ETA [^\r\n\x1b]*", tty)
    check("terminal: progress line with %, bytes/s, ETA", rc == 0 and line, tty)
    check("progress line cleared before the summary", re.search(rb"\r\x1b\[Klambdapack: wrote f.zip", tty), tty)
    rc, tty, _ = on_tty(["container", "app", "-o", "img", "--no-check"], tmp, LP_PROGRESS_DELAY="0")
    check("container: progress line", rc == 0 and re.search(rb"writing image +100% ", tty), tty)
    # Reading an image is measured by its blobs' bytes; the line is gone before the report.
    rc, tty, _ = on_tty(["analyze", "img"], tmp, LP_PROGRESS_DELAY="0")
    check("analyze image: progress line", rc == 0 and re.search(rb"analyzing +100% .*ETA", tty) and
          re.search(rb"\r\x1b\[K(\x1b\[1m)?lambdapack analyze", tty), tty[:400])
    rc, tty, _ = on_tty(["pack", "app", "-o", "f.zip", "-q"], tmp, LP_PROGRESS_DELAY="0")
    check("TERM=dumb: no progress line", b"ETA" not in on_tty(["pack", "app", "-o", "f.zip"], tmp,
                                                                 LP_PROGRESS_DELAY="0", TERM="dumb")[1])
    check("-q: no progress line", rc == 0 and b"ETA" not in tty and b"writing" not in tty, tty)
    rc, tty, out = on_tty(["pack", "app", "-o", "f.zip", "--json", "-"], tmp, LP_PROGRESS_DELAY="0")
    check("--json -: no progress line", rc == 0 and b"ETA" not in tty and b"writing zip" not in tty, tty)
    rc, err, _ = piped(["pack", "app", "-o", "f.zip"], tmp, LP_PROGRESS_DELAY="0")
    check("pipe: no progress line", rc == 0 and b"ETA" not in err and b"\r" not in err, err)

    # ---- messages: singular and plural, options named, a path said once
    rc, err, _ = piped(["pack", "app", "-o", "f.zip"], tmp)
    check("pack summary: '1 directory'", b"(4 files, 1 directory, 0 symlinks)" in err, err)
    rc, err, out = piped(["analyze", "app"], tmp)
    check("analyze: '1 directory'", b"4 files, 1 directory, 0 symlinks" in out and
          b"0 errors, 0 warnings" in out, out[:300])
    for opt, words in ((["-j", "0"], b"-j/--threads takes a number from 1 to 64, not '0'"),
                       (["--threads=65"], b"-j/--threads takes"),
                       (["--links=x"], b"--links takes materialize"),
                       (["--arch", "sparc"], b"--arch takes x86_64 or arm64"),
                       (["--max-expand", "lots"], b"--max-expand takes")):
        rc, err, _ = piped(["pack", "app", "-o", "f.zip"] + opt, tmp)
        check(f"{' '.join(opt)}: names the option", rc == 2 and words in err, err)
    rc, err, _ = piped(["pack", "f.zip", "-o", "f.zip"], tmp)
    check("source is the output: path once", rc == 1 and err.count(b"f.zip") == 1, err)
    rc, err, _ = piped(["pack", "app", "-o", "g.zip", "--with-layer", "nolayer.zip"], tmp)
    check("missing layer: path once", rc == 1 and err.count(b"nolayer.zip") == 1 and
          b"No such file" in err, err)

    # ---- --fail-on names the findings that failed it
    chk = os.path.join(tmp, "chk")
    shutil.copytree(app, chk)
    for n in ("a.node", "b.node"):
        with open(os.path.join(chk, n), "wb") as f:
            f.write(bytes.fromhex("cffaedfe0c000001") + b"\0" * 120)
    rc, err, _ = piped(["analyze", "-q", "--fail-on", "error", "chk"], tmp)
    check("--fail-on names the findings", rc == 5 and b"2 findings of severity error or worse: foreign-binary a.node, "
          b"foreign-binary b.node" in err, err)


if __name__ == "__main__":
    sys.exit(main())
