"""Seeds for fuzz/fuzz_registry.c: references and WWW-Authenticate values as registries send them.

usage: make-fuzz-seeds.py DIR
"""
import os
import sys

D64 = "0123456789abcdef" * 4
SEEDS = [
    "docker://127.0.0.1:5000/fn:v1", "docker://busybox", "docker://busybox:1.36",
    "docker://public.ecr.aws/lambda/python:3.12", "docker://[::1]:5000/fn",
    "docker://123456789012.dkr.ecr.us-east-1.amazonaws.com/fn@sha256:" + D64,
    "docker://h.io/a__b/c-d--e/f.g:t@sha256:" + D64, "docker://user:x@h.io/y", "docker:h.io/x",
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
    'scope="repository:library/busybox:pull"',
    'Basic realm="Registry Realm"', 'Negotiate abc==, Bearer realm="x\\"y", error=insufficient_scope',
    'Bearer realm="https://public.ecr.aws/token/",service="public.ecr.aws",scope="aws"',
]
os.makedirs(sys.argv[1], exist_ok=True)
for i, s in enumerate(SEEDS):
    with open(os.path.join(sys.argv[1], "seed-%02d" % i), "w") as f:
        f.write(s)
