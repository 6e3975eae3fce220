"""Tiny test harness shared by the integration scripts.

Runs every function named test_* in a module, prints one line per test and
a closing 'N passed, N failed' line, and exits non-zero on any failure.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import traceback


class Skip(Exception):
    """Raised when a test cannot run here; reported loudly and counted as failed."""


def run(cmd, check=True, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    p = subprocess.run(cmd, **kw)
    if check and p.returncode != 0:
        raise AssertionError("command failed (%d): %s\nstdout: %s\nstderr: %s"
                             % (p.returncode, " ".join(map(str, cmd)), p.stdout, p.stderr))
    return p


def as_nobody():
    """A preexec_fn that drops to nobody (root only): to see what an unprivileged user is refused."""
    def pre():
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    return pre


def tmpdir(tag="lp"):
    return tempfile.mkdtemp(prefix="lambdapack-it-%s-" % tag)


def main(module_globals):
    tests = sorted((n, f) for n, f in module_globals.items() if n.startswith("test_") and callable(f))
    only = os.environ.get("LP_ONLY")
    passed = failed = 0
    for name, fn in tests:
        if only and only not in name:
            continue
        try:
            fn()
        except Exception:  # noqa: BLE001 - report every failure kind
            failed += 1
            print("FAIL %s" % name)
            traceback.print_exc()
        else:
            passed += 1
            print("ok   %s" % name)
        sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


def which(tool):
    return shutil.which(tool) is not None


def handles_signals(pid):
    """Has main() blocked SIGINT/SIGTERM yet? (Before that the default action kills, as for any program.)"""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("SigBlk:"):
                    mask = int(line.split()[1], 16)
                    return bool(mask & (1 << 14)) and bool(mask & (1 << 1))
    except OSError:
        pass
    return False


def interrupt(cmd, sig, ready, tmp, outdir, bound=5.0):
    """Start cmd, send sig once ready() holds, and check it stops cleanly.

    The bound catches a hang (the tool ignored the signal); it is not a
    speed assertion: stopping takes milliseconds, then the temporaries are
    removed (unlinks on this disk cost what they cost).
    """
    import signal
    import time
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=dict(os.environ, TMPDIR=tmp))
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None and not (handles_signals(p.pid) and ready()):
        time.sleep(0.005)
    assert p.poll() is None, "finished before it could be interrupted: %s" % p.stderr.read()
    t0 = time.time()
    p.send_signal(sig)
    try:
        err = p.communicate(timeout=bound)[1]
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise AssertionError("%s did not stop within %.0f s of signal %d" % (cmd, bound, sig))
    assert p.returncode == 130, (p.returncode, err)
    assert "interrupted" in err, err
    assert os.listdir(tmp) == [], os.listdir(tmp)
    assert os.listdir(outdir) == [], os.listdir(outdir)
    return time.time() - t0
