#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Seeds for fuzz/fuzz_base.c: the first byte is the mode (0 docker-archive tar,
1 index.json, 2 manifest), the rest the input. usage: make-base-seeds.py DIR"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
sha = lambda x: hashlib.sha256(x).hexdigest()


def tar(entries):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 0
            if data is None:
                ti.type = tarfile.DIRTYPE
                t.addfile(ti)
            else:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
    return b.getvalue()


def seed(name, data, mode):
    with open(os.path.join(out, name), "wb") as f:
        f.write(bytes([mode]) + data)


l0 = tar([("bin/", None), ("bin/sh", b"#!/bin/sh\n" * 3)])
l1 = tar([("etc/", None), ("etc/os-release", b"ID=x\n"), ("bin/.wh.sh", b"")])
blobs = [gzip.compress(l0, mtime=0), l1]
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
                  "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha(l) for l in (l0, l1)]},
                  "history": [{"created_by": "a"}, {"created_by": "b"}]}).encode()
d = io.BytesIO()
with tarfile.open(fileobj=d, mode="w") as t:
    def add(n, data):
        ti = tarfile.TarInfo(n)
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    for i, bl in enumerate(blobs):
        add(f"l{i}/layer.tar", bl)
    add("c.json", cfg)
    add("manifest.json", json.dumps([{"Config": "c.json", "RepoTags": ["b:1"],
                                      "Layers": ["l0/layer.tar", "l1/layer.tar"]}]).encode())
seed("docker", d.getvalue(), 0)
# The harness's own layout holds an empty one-layer image; these point into it or nowhere.
seed("index", json.dumps({"schemaVersion": 2, "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "0" * 64, "size": 2,
     "platform": {"architecture": "amd64", "os": "linux"}}]}).encode(), 1)
seed("index-nested", json.dumps({"schemaVersion": 2, "manifests": [
    {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:" + "1" * 64, "size": 2}]}).encode(), 1)
seed("manifest", json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                             "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                        "digest": "sha256:" + sha(cfg), "size": len(cfg)},
                             "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                         "digest": "sha256:" + sha(blobs[0]), "size": len(blobs[0])}]}).encode(), 2)
