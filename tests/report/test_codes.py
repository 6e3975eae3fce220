#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Every finding code the C sources can emit is documented in docs/findings.md.

usage: test_codes.py SOURCE_ROOT

A finding code is the first kebab-case string literal passed to one of the
functions that record findings (lp_report_finding, lp_report_problem and the
readers' wrappers around them), or one of the codes listed in
lp_input_problem(). The test fails on a code the docs do not list, and on a
scan that finds too few codes to be believed (a renamed function would
otherwise make it pass on nothing).
"""
import os
import re
import sys

CALLS = ("lp_report_finding", "lp_report_problem", "problem", "note", "zname_problem")
CODE = r'"([a-z0-9]+(?:-[a-z0-9]+)*)"'
CALL_RE = re.compile(r"\b(" + "|".join(CALLS) + r")\s*\(")
LIST_RE = re.compile(r"bool lp_input_problem\(.*?\{(.*?)\};", re.S)


def call_args(text, start):
    """The text of a call's arguments, from just after its '(' to the matching ')'."""
    depth, i, quote = 1, start, None
    while i < len(text) and depth:
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        i += 1
    return text[start:i - 1]


def emitted(root):
    codes = {}
    for sub in ("core", "input", "pack", "analyze", "container", "cli", "cache", "registry", "template"):
        d = os.path.join(root, sub)
        if not os.path.isdir(d):
            continue
        for dp, _, fns in os.walk(d):
            for fn in sorted(fns):
                if not fn.endswith(".c"):
                    continue
                path = os.path.join(dp, fn)
                text = open(path, encoding="utf-8", errors="replace").read()
                for m in CALL_RE.finditer(text):
                    # Definitions and prototypes name a parameter, not a literal code.
                    args = call_args(text, m.end())
                    lit = re.match(r"[^\"]*?" + CODE, args.replace("\n", " "))
                    if lit:
                        codes.setdefault(lit.group(1), f"{os.path.relpath(path, root)}")
                m = LIST_RE.search(text)
                if m:
                    for c in re.findall(CODE, m.group(1)):
                        codes.setdefault(c, os.path.relpath(path, root))
    return codes


def documented(root):
    text = open(os.path.join(root, "docs", "findings.md"), encoding="utf-8").read()
    return set(re.findall(r"^\| `([a-z0-9-]+)` \|", text, re.M))


def main():
    root = sys.argv[1]
    codes = emitted(root)
    docs = documented(root)
    missing = sorted(c for c in codes if c not in docs)
    for c in missing:
        print(f"FAIL: finding code '{c}' ({codes[c]}) is not documented in docs/findings.md")
    # The scan must see the codes it is known to: a broken scan must not pass quietly.
    for c in ("glibc-too-new", "bad-source", "hardlink-missing", "several-images", "duplicates",
              "over-unzipped-limit", "image-too-big", "materialized-link"):
        if c not in codes:
            print(f"FAIL: the scan did not find '{c}' in the sources")
            missing.append(c)
    stale = sorted(docs - set(codes))
    for c in stale:
        print(f"note: docs/findings.md lists '{c}', which no source emits with a literal")
    print(f"{len(codes)} codes in the sources, {len(docs)} documented, {len(missing)} problems")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
