#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Small seed inputs for fuzz_analyze (first byte: 0 = target file, 1 = layout index.json)."""
import gzip, hashlib, io, json, os, sys, tarfile, zipfile

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def tar(entries, fmt=tarfile.PAX_FORMAT):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=fmt) as t:
        for name, data in entries:
            ti = tarfile.TarInfo(name)
            if data is None:
                ti.type = tarfile.DIRTYPE
                t.addfile(ti)
            else:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
    return b.getvalue()


def seed(name, data, mode=0):
    with open(os.path.join(out, name), "wb") as f:
        f.write(bytes([mode]) + data)


b = io.BytesIO()
with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("index.js", "exports.h=1\n" * 20)
    z.writestr("node_modules/a/x.js", "x" * 300)
    z.writestr("node_modules/a/README.md", "doc")
    z.writestr("p-1.0.dist-info/RECORD", "p/__init__.py,,\n")
    z.writestr("lib/x.so", b"\x7fELF\x02\x01\x01" + b"\0" * 57)
seed("zip", b.getvalue())
layer0 = tar([("a/", None), ("a/f", b"x" * 100), ("k", b"k")])
layer1 = tar([("a/.wh..wh..opq", b""), ("a/g", b"y" * 10), (".wh.k", b"")])
seed("tar", layer0)
seed("tgz", gzip.compress(layer0, mtime=0))
cfg = json.dumps({"architecture": "amd64", "os": "linux", "history": [{"created_by": "x"}]}).encode()
blobs = [gzip.compress(layer0, mtime=0), layer1]
d = io.BytesIO()
with tarfile.open(fileobj=d, mode="w") as t:
    def add(n, data):
        ti = tarfile.TarInfo(n)
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    for i, bl in enumerate(blobs):
        add(f"l{i}/layer.tar", bl)
    add("c.json", cfg)
    add("manifest.json", json.dumps([{"Config": "c.json", "Layers": ["l0/layer.tar", "l1/layer.tar"]}]).encode())
seed("docker", d.getvalue())
sha = lambda x: hashlib.sha256(x).hexdigest()
man = json.dumps({"schemaVersion": 2, "config": {"digest": "sha256:" + sha(cfg), "size": len(cfg)},
                  "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + sha(b),
                              "size": len(b)} for b in blobs]}).encode()
idx = json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                     "digest": "sha256:" + sha(man), "size": len(man)}]}).encode()
o = io.BytesIO()
with tarfile.open(fileobj=o, mode="w") as t:
    def add(n, data):
        ti = tarfile.TarInfo(n)
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    add("index.json", idx)
    for x in blobs + [cfg, man]:
        add("blobs/sha256/" + sha(x), x)
seed("oci", o.getvalue())
seed("index", idx, 1)
seed("index-nested", json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
                                  "digest": "sha256:" + "0" * 64}]}).encode(), 1)
