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
