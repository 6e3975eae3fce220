#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The JSON examples in the docs are the tool's own output.

usage: doc-examples.py LAMBDAPACK SOURCE_ROOT [--check]

Every block in docs/*.md that is introduced by a line

    <!-- example NAME: lambdapack ARGS... -->

and followed by a ```json fence is regenerated: the command runs in a scratch
directory that holds a copy of samples/ (python-app, node-app, custom-runtime)
plus the fixtures below, with SOURCE_DATE_EPOCH fixed, and its --json report
(to stdout) replaces the block; timings become 0 (they are the only thing
that varies between runs). Commands run in file order, so a later example
can read an earlier one's output (f.zip, img).

Without --check the docs are rewritten. With --check nothing is written and
the script fails when a block differs from what the tool prints now (the
docs drifted: run it without --check and review the diff), and when a key the
annotated schema in docs/analyze-json.md names appears in no analyze example.
"""
import difflib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

EX_RE = re.compile(r"(<!-- example ([a-z0-9-]+): lambdapack (.*?) -->\n```json\n)(.*?)(^```)", re.S | re.M)


def fixtures(tmp, root, lp, env):
    for s in ("python-app", "node-app", "custom-runtime"):
        shutil.copytree(os.path.join(root, "samples", s), os.path.join(tmp, s), symlinks=True)
    # A function with a macOS native module: the compatibility check refuses it (exit 4).
    chk = os.path.join(tmp, "mac-module")
    shutil.copytree(os.path.join(root, "samples", "python-app"), chk)
    with open(os.path.join(chk, "sharp.node"), "wb") as f:
        f.write(bytes.fromhex("cffaedfe0c000001") + b"\0" * 120)
    # Two copies of one data file: a duplicates group, and what dedupe would save.
    data = bytes((i * 7) % 251 for i in range(70000))
    for d in ("model", "model-copy"):
        os.makedirs(os.path.join(chk, d))
        with open(os.path.join(chk, d, "weights.bin"), "wb") as f:
            f.write(data)
    # An image on a base image of the same function: files in several layers.
    for args in (["python-app", "-o", "base-img"], ["python-app", "-o", "layered", "--base", "oci:base-img"]):
        subprocess.run([lp, "container", "-q", "--no-check"] + args, cwd=tmp, env=env, check=True)


def normalize(rep):
    if isinstance(rep.get("timing"), dict):
        rep["timing"] = {k: 0 for k in rep["timing"]}
    return rep


def generate(lp, root, docs):
    """{(file, name): text} for every example block in docs."""
    out = {}
    tmp = tempfile.mkdtemp(prefix="lp-doc-examples-")
    env = dict(os.environ, SOURCE_DATE_EPOCH="315532800", NO_COLOR="1", LC_ALL="C")
    try:
        fixtures(tmp, root, lp, env)
        for path in docs:
            for m in EX_RE.finditer(open(path, encoding="utf-8").read()):
                name, args = m.group(2), shlex.split(m.group(3))
                p = subprocess.run([lp] + args, cwd=tmp, env=env, capture_output=True)
                try:
                    rep = json.loads(p.stdout)
                except ValueError:
                    sys.exit(f"{path}: example {name}: no JSON on stdout (exit {p.returncode}): "
                             f"{p.stderr.decode(errors='replace')[-500:]}")
                if rep.get("exit_code") != p.returncode:
                    sys.exit(f"{path}: example {name}: exit_code {rep.get('exit_code')} but the process exited "
                             f"{p.returncode}")
                out[(path, name)] = json.dumps(normalize(rep), indent=2, ensure_ascii=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def keys(obj, acc):
    if isinstance(obj, dict):
        for k, v in obj.items():
            acc.add(k)
            keys(v, acc)
    elif isinstance(obj, list):
        for v in obj:
            keys(v, acc)
    return acc


def main():
    lp, root = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    check = "--check" in sys.argv[3:]
    ddir = os.path.join(root, "docs")
    docs = sorted(os.path.join(ddir, f) for f in os.listdir(ddir) if f.endswith(".md"))
    docs.append(os.path.join(root, "README.md"))
    got = generate(lp, root, docs)
    drift = 0
    for path in docs:
        text = open(path, encoding="utf-8").read()
        new = EX_RE.sub(lambda m: m.group(1) + got[(path, m.group(2))] + "\n" + m.group(5), text)
        if new == text:
            continue
        drift += 1
        if check:
            sys.stdout.writelines(difflib.unified_diff(text.splitlines(True), new.splitlines(True),
                                                       os.path.relpath(path, root), "what the tool prints now"))
        else:
            with open(path + ".tmp", "w", encoding="utf-8") as f:
                f.write(new)
            os.replace(path + ".tmp", path)
            print(f"updated {os.path.relpath(path, root)}")
    # The annotated field reference may not name a key the tool does not write.
    ana = open(os.path.join(ddir, "analyze-json.md"), encoding="utf-8").read()
    ref = re.search(r"```jsonc\n(.*?)```", ana, re.S)
    written = set()
    for (path, name), text in got.items():
        if name.startswith(("analyze", "diff")):
            keys(json.loads(text), written)
    named = set(re.findall(r'"([a-z_]+)":', ref.group(1))) if ref else set()
    unknown = sorted(named - written)
    if unknown:
        print(f"docs/analyze-json.md names keys no analyze example writes: {unknown}")
    print(f"{len(got)} examples, {drift} file(s) {'drifted' if check else 'updated'}")
    if check and (drift or unknown or not got):
        print("FAIL: the docs' examples are not what the tool prints; run scripts/doc-examples.py "
              "LAMBDAPACK . and review the diff")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
