#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Every command's --json, on success and on each failure exit it can be driven to, is one
envelope that docs/report.schema.json accepts (python3-jsonschema), with documented finding codes.

usage: test_report.py LAMBDAPACK SOURCE_ROOT

Each case runs the real binary and checks: the exit code; that a report was written (to a file,
or to stdout with --json -) and replaced atomically (no temporaries left beside it); that it
validates against the schema; that report["exit_code"] is the process's exit code; that every
finding code is in docs/findings.md; and facts particular to the case (the finding that explains
the failure, limits that apply to the artifact only).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import jsonschema

LP = os.path.abspath(sys.argv[1])
ROOT = os.path.abspath(sys.argv[2])
SCHEMA = json.load(open(os.path.join(ROOT, "docs", "report.schema.json")))
CODES = set(re.findall(r"^\| `([a-z0-9-]+)` \|", open(os.path.join(ROOT, "docs", "findings.md")).read(), re.M))
# The schema itself is valid against its metaschema (draft 2020-12).
jsonschema.validators.validator_for(SCHEMA).check_schema(SCHEMA)
VALIDATOR = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)
ENV = dict(os.environ, SOURCE_DATE_EPOCH="315532800", NO_COLOR="1")

failures = []
passed = 0
seen = {}


def check(name, cond, detail=""):
    global passed
    if cond:
        passed += 1
    else:
        failures.append(name)
        print(f"FAIL {name}: {detail}"[:2000])


def run(name, args, want_rc, cwd, stdout_json=False):
    """Run lambdapack args; return the report (from stdout or the --json FILE)."""
    p = subprocess.run([LP] + args, cwd=cwd, env=ENV, capture_output=True)
    check(f"{name}: exit {want_rc}", p.returncode == want_rc,
          f"got {p.returncode}: {p.stderr.decode(errors='replace')[-800:]}")
    if stdout_json:
        text = p.stdout.decode()
    else:
        path = os.path.join(cwd, args[args.index("--json") + 1])
        if not os.path.exists(path):
            check(f"{name}: report written", False, path)
            return None
        text = open(path).read()
        left = [f for f in os.listdir(os.path.dirname(path)) if f.startswith("." + os.path.basename(path) + ".")]
        check(f"{name}: no temporaries left", not left, left)
    try:
        rep = json.loads(text)
    except ValueError as e:
        check(f"{name}: report parses", False, f"{e}: {text[:300]}")
        return None
    errors = sorted(VALIDATOR.iter_errors(rep), key=lambda e: list(e.absolute_path))
    check(f"{name}: valid against docs/report.schema.json", not errors,
          "; ".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in errors[:5]))
    check(f"{name}: exit_code member", rep.get("exit_code") == p.returncode, (rep.get("exit_code"), p.returncode))
    undocumented = {f["code"] for f in rep.get("findings", [])} - CODES
    check(f"{name}: finding codes documented", not undocumented, undocumented)
    if want_rc not in (0, 6):
        check(f"{name}: error says why", rep.get("error") and rep["error"].get("message"), rep.get("error"))
    seen.setdefault(rep.get("command"), set()).add(p.returncode)
    return rep


def codes(rep):
    return {f["code"] for f in rep["findings"]} if rep else set()


def macho(path):
    with open(path, "wb") as f:
        f.write(bytes.fromhex("cffaedfe0c000001") + b"\0" * 120)


def sparse(path, size):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(size)


def main():
    tmp = tempfile.mkdtemp(prefix="lp-report-")
    try:
        cases(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    missing = {c: {0, 1, 3, 4, 6} - seen.get(c, set()) for c in ("pack",)}
    missing.update({c: {0, 1, 3, 4} - seen.get(c, set()) for c in ("container",)})
    missing.update({c: {0, 1, 5} - seen.get(c, set()) for c in ("analyze", "diff")})
    check("every command and exit covered", not any(missing.values()), missing)
    print(f"{passed} passed, {len(failures)} failed")
    return 1 if failures else 0


def cases(tmp):
    app = os.path.join(tmp, "app")
    shutil.copytree(os.path.join(ROOT, "samples", "python-app"), app)

    # ---- pack
    rep = run("pack ok", ["pack", "app", "-o", "f.zip", "--json", "r.json", "-q"], 0, tmp)
    if rep:
        a = rep["artifact"]
        check("pack ok: artifact", a["type"] == "zip" and a["written"] and a["bytes"] == os.path.getsize(
            os.path.join(tmp, "f.zip")), a)
        check("pack ok: zip limits", set(rep["limits"]) == {"unzipped", "zipped"}, rep["limits"])
    # The report replaces the earlier one, and works on stdout too.
    rep = run("pack ok, stdout", ["pack", "app", "-o", "f.zip", "--json", "-", "-q"], 0, tmp, stdout_json=True)
    rep = run("pack bad source", ["pack", "nope", "-o", "g.zip", "--json", "r1.json", "-q"], 1, tmp)
    check("pack bad source: finding", "bad-source" in codes(rep), codes(rep))
    check("pack bad source: nothing written", rep and rep["artifact"]["written"] is False, rep and rep["artifact"])
    os.mkdir(os.path.join(tmp, "adir"))
    rep = run("pack output refused", ["pack", "app", "-o", "adir", "--json", "r1b.json", "-q"], 1, tmp)
    check("pack output refused: names the path", rep and "adir" in rep["error"]["message"], rep and rep["error"])
    chk = os.path.join(tmp, "chk")
    shutil.copytree(app, chk)
    macho(os.path.join(chk, "sharp.node"))
    rep = run("pack compatibility", ["pack", "chk", "-o", "g.zip", "--json", "r4.json", "-q"], 4, tmp)
    check("pack compatibility: finding", "foreign-binary" in codes(rep), codes(rep))
    big = os.path.join(tmp, "big")
    sparse(os.path.join(big, "node_modules", "huge", "blob.bin"), 262_144_000)
    open(os.path.join(big, "index.js"), "w").write("exports.handler = async () => 1;\n")
    rep = run("pack over the limit", ["pack", "big", "-o", "g.zip", "--fallback=none", "--json", "r3.json", "-q"], 3, tmp)
    check("pack over the limit: finding and limit", "over-unzipped-limit" in codes(rep) and
          rep["limits"]["unzipped"]["fits"] is False and rep["limits"]["unzipped"]["over_by"] == 34,
          rep and rep["limits"])
    check("pack over the limit: names contributors", rep and rep["largest_groups"][0]["path"] == "node_modules/huge",
          rep and rep.get("largest_groups"))
    rep = run("pack fallback image", ["pack", "big", "-o", "g.zip", "--json", "r6.json", "-q", "--no-check"], 6, tmp)
    if rep:
        a = rep["artifact"]
        idx = json.load(open(os.path.join(tmp, "g.oci", "index.json")))
        check("pack fallback: image artifact", a["type"] == "oci-layout" and
              a["manifest_digest"] == idx["manifests"][0]["digest"] and "sha256" not in a, a)
        check("pack fallback: image limit only", set(rep["limits"]) == {"image"}, rep["limits"])

    # ---- container
    rep = run("container ok", ["container", "app", "-o", "img", "--json", "c0.json", "-q", "--no-check"], 0, tmp)
    if rep:
        idx = json.load(open(os.path.join(tmp, "img", "index.json")))
        check("container ok: artifact", rep["artifact"]["manifest_digest"] == idx["manifests"][0]["digest"] and
              rep["artifact"]["type"] == "oci-layout", rep["artifact"])
    rep = run("container archive", ["container", "app", "-o", "img.tar", "--json", "c0b.json", "-q", "--no-check"], 0, tmp)
    check("container archive: type", rep and rep["artifact"]["type"] == "oci-archive", rep and rep["artifact"])
    run("container bad source", ["container", "nope", "-o", "img2", "--json", "c1.json", "-q"], 1, tmp)
    rep = run("container compatibility", ["container", "chk", "-o", "img2", "--json", "c4.json", "-q"], 4, tmp)
    check("container compatibility: finding", "foreign-binary" in codes(rep), codes(rep))
    # Over 10 GiB: refused on the plan, before a byte is compressed (a sparse file costs nothing).
    huge = os.path.join(tmp, "huge")
    sparse(os.path.join(huge, "blob.bin"), 10_737_418_241)
    rep = run("container over the limit", ["container", "huge", "-o", "img3", "--json", "c3.json", "-q", "--no-check"], 3, tmp)
    check("container over the limit: finding and limit", "image-too-big" in codes(rep) and
          rep["limits"]["image"]["fits"] is False, rep and rep["limits"])
    os.unlink(os.path.join(huge, "blob.bin"))

    # ---- analyze
    rep = run("analyze directory", ["analyze", "app", "--json", "a0.json", "-q"], 0, tmp)
    check("analyze directory: zip limits", rep and set(rep["limits"]) == {"unzipped", "zipped"}, rep and rep["limits"])
    rep = run("analyze zip", ["analyze", "f.zip", "--json", "-", "-q"], 0, tmp, stdout_json=True)
    check("analyze zip: bytes", rep and rep["artifact"]["bytes"] == os.path.getsize(os.path.join(tmp, "f.zip")),
          rep and rep["artifact"])
    for t in ("img", "img.tar"):
        rep = run(f"analyze image {t}", ["analyze", t, "--json", "a0i.json", "-q"], 0, tmp)
        if rep:
            check(f"analyze image {t}: image limit only", set(rep["limits"]) == {"image"}, rep["limits"])
            # The oci-archive container writes also carries a docker manifest.json, so it reads as a
            # docker-archive, which names no manifest digest.
            md = rep["artifact"].get("manifest_digest")
            check(f"analyze image {t}: manifest digest", (md or "").startswith("sha256:") or
                  (md is None and rep["artifact"]["type"] == "docker-archive"), rep["artifact"])
    rep = run("analyze missing", ["analyze", "nope", "--json", "a1.json", "-q"], 1, tmp)
    prob = os.path.join(tmp, "prob")
    shutil.copytree(app, prob)
    os.mkfifo(os.path.join(prob, "fifo"))
    rep = run("analyze input problem", ["analyze", "prob", "--json", "a1b.json", "-q"], 1, tmp)
    check("analyze input problem: finding", "special-file" in codes(rep), codes(rep))
    check("analyze input problem: error", rep and rep["error"]["message"].startswith("1 problem in the input"),
          rep and rep["error"])
    rep = run("analyze gate", ["analyze", "chk", "--fail-on", "error", "--max-unzipped", "10", "--json", "a5.json",
                               "-q"], 5, tmp)
    if rep:
        failed = [g for g in rep["gates"] if not g["passed"]]
        check("analyze gate: both gates", {g["gate"] for g in failed} == {"fail-on", "max-unzipped"}, rep["gates"])
        check("analyze gate: fail-on names the finding", any("foreign-binary" in g["reason"] and "sharp.node" in
                                                             g["reason"] for g in failed), failed)

    # ---- analyze --diff
    rep = run("diff ok", ["analyze", "--diff", "f.zip", "app", "--json", "d0.json", "-q"], 0, tmp)
    check("diff: command", rep and rep["command"] == "diff" and rep["artifact"]["path"] == "app", rep and rep["artifact"])
    rep = run("diff gate", ["analyze", "--diff", "app", "chk", "--max-unzipped", "10", "--json", "d5.json", "-q"], 5, tmp)
    check("diff gate: gates", rep and [g["gate"] for g in rep["gates"]] == ["max-unzipped"], rep and rep.get("gates"))
    run("diff missing", ["analyze", "--diff", "f.zip", "nope", "--json", "d1.json", "-q"], 1, tmp)


if __name__ == "__main__":
    sys.exit(main())
