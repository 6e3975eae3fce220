# SPDX-License-Identifier: MIT
"""Registry fixtures for the registry client tests and benchmark.

Everything runs on 127.0.0.1 on random free ports with state in a temporary
directory, and is stopped by Fixture.close() (or the with-block):

- Registry: Debian's docker-registry (distribution v2.8) over plain HTTP or
  TLS (a CA and a server certificate made with openssl here), with no auth,
  htpasswd Basic auth, or token auth backed by TokenServer.
- TokenServer: the Bearer flow of the distribution token spec. It signs
  RS256 JWTs whose `x5c` header carries its self-signed certificate, the
  registry's `rootcertbundle`. Anonymous requests get pull only; a right
  user/password (Basic, or the OAuth2 password / refresh_token POST) gets
  what it asks for; a wrong password gets 401.
- CountingProxy: a plain HTTP reverse proxy in front of a registry that
  records every request's method, path and body bytes, so a test can count
  blob uploads and the bytes they carried.
- FaultyRegistry: a small read-only registry in Python serving one OCI
  layout, whose `mode` makes it misbehave: baddigest (layer bytes do not
  match the digest), auth (401 Basic without the right credentials),
  notfound (404 for every manifest), flaky (500 on the first request for
  each path, then right), down (500 always), stallbody (headers and half a
  blob, then silence).
- StallServer: accepts connections and never answers; closed_port(): a port
  nobody listens on.

Image helpers write OCI layouts without any container tool: a busybox base
from Debian's busybox-static, and a two-platform index (amd64 + arm64).

Only the standard library and python3-cryptography are used.
`python3 regfix.py selftest` checks every fixture with skopeo (and Python's
http.client where skopeo cannot show the fault) before lambdapack relies on it;
`python3 regfix.py serve N LOG` runs N plain registries and a counting proxy for
scripts (bench/bench-registry.sh).
"""
import base64
import gzip
import hashlib
import http.client
import http.server
import io
import json
import os
import shutil
import socket
import ssl
import subprocess
import tarfile
import tempfile
import threading
import time
import traceback
import urllib.parse
import uuid

SERVICE = "lambdapack-test-registry"
ISSUER = "lambdapack-test-token-issuer"

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


class FixtureError(Exception):
    pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def closed_port():
    """A port nothing listens on (bound once, released, never listened on)."""
    return free_port()


def _wait_port(port, proc=None, what="server", errfile=None, limit=30.0):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if proc is not None and proc.poll() is not None:
                msg = ""
                if errfile:
                    with open(errfile, errors="replace") as f:
                        msg = f.read()[-3000:]
                raise FixtureError("%s exited (%s): %s" % (what, proc.returncode, msg))
            time.sleep(0.05)
    raise FixtureError("%s did not listen on 127.0.0.1:%d" % (what, port))


def _run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise FixtureError("%s failed (%d): %s%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
    return p


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class CA:
    """A test CA and a server certificate for 127.0.0.1/localhost, made with openssl.

    cert_dir holds only ca.crt: what skopeo/podman --cert-dir and
    SSL_CERT_FILE want.
    """

    def __init__(self, d):
        self.dir = d
        os.makedirs(d, exist_ok=True)
        self.ca_key = os.path.join(d, "ca.key")
        self.ca_crt = os.path.join(d, "ca.crt")
        self.key = os.path.join(d, "server.key")
        self.crt = os.path.join(d, "server.crt")
        self.cert_dir = os.path.join(d, "certs.d")
        os.makedirs(self.cert_dir, exist_ok=True)
        _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
              "-keyout", self.ca_key, "-out", self.ca_crt, "-subj", "/CN=lambdapack test CA",
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        csr = os.path.join(d, "server.csr")
        _run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-keyout", self.key,
              "-out", csr, "-subj", "/CN=127.0.0.1"])
        ext = os.path.join(d, "server.ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                    "basicConstraints=CA:FALSE\n"
                    "keyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth\n")
        _run(["openssl", "x509", "-req", "-in", csr, "-CA", self.ca_crt, "-CAkey", self.ca_key,
              "-CAcreateserial", "-sha256", "-days", "2", "-out", self.crt, "-extfile", ext])
        shutil.copy(self.ca_crt, os.path.join(self.cert_dir, "ca.crt"))

    def server_context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.crt, self.key)
        return ctx

    def client_context(self):
        return ssl.create_default_context(cafile=self.ca_crt)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # the fixtures keep their own logs
        pass

    def _send(self, code, body=b"", headers=None, head=False):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and not head:
            self.wfile.write(body)

    def _body(self):
        """Read the request body (Content-Length or chunked); returns bytes."""
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            out = bytearray()
            while True:
                line = self.rfile.readline()
                n = int(line.split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(n)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""


def _serve(server, tls_ctx=None):
    if tls_ctx is not None:
        server.socket = tls_ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    return t


class TokenServer:
    """Distribution token server: GET /token?service=&scope= (Basic optional), POST /token (OAuth2)."""

    def __init__(self, d, users, tls_ctx=None):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding

        self.dir = d
        os.makedirs(d, exist_ok=True)
        self.users = dict(users)
        self.key_path = os.path.join(d, "token.key")
        self.crt_path = os.path.join(d, "token.crt")
        _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
              "-keyout", self.key_path, "-out", self.crt_path, "-subj", "/CN=lambdapack token signer"])
        with open(self.key_path, "rb") as f:
            self._key = serialization.load_pem_private_key(f.read(), password=None)
        with open(self.crt_path, "rb") as f:
            der = x509.load_pem_x509_certificate(f.read()).public_bytes(serialization.Encoding.DER)
        self._x5c = base64.b64encode(der).decode()
        self._sign = lambda data: self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        self.grants = []  # (account or None, [scope strings granted]) per token issued
        self.refused = 0
        self.lock = threading.Lock()
        self.port = free_port()
        self.scheme = "https" if tls_ctx is not None else "http"
        self.realm = "%s://127.0.0.1:%d/token" % (self.scheme, self.port)
        fx = self

        class H(_Quiet):
            def do_GET(self):
                u = urllib.parse.urlparse(self.path)
                q = urllib.parse.parse_qs(u.query)
                if u.path != "/token":
                    return self._send(404)
                account = None
                auth = self.headers.get("Authorization", "")
                if auth:
                    account = fx._check_basic(auth)
                    if account is None:
                        return fx._deny(self)
                fx._issue(self, account, q.get("service", [""])[0], q.get("scope", []))

            def do_POST(self):
                u = urllib.parse.urlparse(self.path)
                if u.path != "/token":
                    return self._send(404)
                form = urllib.parse.parse_qs(self._body().decode("utf-8", "replace"))
                g = form.get("grant_type", [""])[0]
                account = None
                if g == "password":
                    user, pw = form.get("username", [""])[0], form.get("password", [""])[0]
                    if fx.users.get(user) != pw:
                        return fx._deny(self)
                    account = user
                elif g == "refresh_token":
                    rt = form.get("refresh_token", [""])[0]
                    account = fx._refresh.get(rt)
                    if account is None:
                        return fx._deny(self)
                else:
                    return fx._deny(self)
                scopes = []
                for s in form.get("scope", []):
                    scopes += s.split(" ")
                fx._issue(self, account, form.get("service", [""])[0], scopes)

        self._refresh = {}
        self.server = _Server(("127.0.0.1", self.port), H)
        _serve(self.server, tls_ctx)

    def add_refresh_token(self, user):
        """An identity token (docker config `identitytoken`) that stands for user."""
        rt = "lp-refresh-" + uuid.uuid4().hex
        self._refresh[rt] = user
        return rt

    def _check_basic(self, auth):
        if not auth.startswith("Basic "):
            return None
        try:
            user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
        except Exception:  # noqa: BLE001
            return None
        if user in self.users and self.users[user] == pw:
            return user
        if pw in self._refresh and self._refresh[pw] == user:
            return user
        return None

    def _deny(self, h):
        with self.lock:
            self.refused += 1
        h._send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}',
                {"Content-Type": "application/json", "WWW-Authenticate": 'Basic realm="token"'})

    def _issue(self, h, account, service, scopes):
        access = []
        granted = []
        for s in scopes:
            parts = s.split(":")
            if len(parts) < 3:
                continue
            typ, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1].split(",")
            if typ != "repository":
                continue
            ok = [a for a in actions if a == "pull" or (account is not None and a in ("push", "delete", "*"))]
            if ok:
                access.append({"type": typ, "name": name, "actions": ok})
                granted.append("%s:%s:%s" % (typ, name, ",".join(ok)))
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        claims = {"iss": ISSUER, "sub": account or "", "aud": service, "exp": now + 600,
                  "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        token = signing + "." + b64url(self._sign(signing.encode()))
        with self.lock:
            self.grants.append((account, granted))
        body = {"token": token, "access_token": token, "expires_in": 600,
                "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}
        h._send(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Registry:
    """Debian's docker-registry: tls (bool), auth None|'htpasswd'|'token'."""

    def __init__(self, fx, name, tls=False, auth=None, users=None):
        self.fx = fx
        self.dir = os.path.join(fx.dir, name)
        os.makedirs(self.dir)
        self.tls = tls
        self.auth = auth
        self.users = dict(users or {})
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        self.token = None
        cfg = ["version: 0.1",
               "log:", "  level: info", "  formatter: text",
               "storage:", "  filesystem:", "    rootdirectory: %s" % os.path.join(self.dir, "storage"),
               "  delete:", "    enabled: true",
               "http:", "  addr: 127.0.0.1:%d" % self.port, "  secret: %s" % uuid.uuid4().hex]
        if tls:
            ca = fx.ca()
            cfg += ["  tls:", "    certificate: %s" % ca.crt, "    key: %s" % ca.key]
        if auth == "htpasswd":
            hp = os.path.join(self.dir, "htpasswd")
            with open(hp, "w") as f:
                for u, pw in self.users.items():
                    f.write(_run(["htpasswd", "-Bbn", u, pw]).stdout.strip() + "\n")
            cfg += ["auth:", "  htpasswd:", "    realm: lambdapack-test", "    path: %s" % hp]
        elif auth == "token":
            self.token = TokenServer(os.path.join(self.dir, "token"), self.users,
                                     fx.ca().server_context() if tls else None)
            cfg += ["auth:", "  token:", "    realm: %s" % self.token.realm, "    service: %s" % SERVICE,
                    "    issuer: %s" % ISSUER, "    rootcertbundle: %s" % self.token.crt_path]
        elif auth is not None:
            raise FixtureError("unknown auth %r" % auth)
        self.config = os.path.join(self.dir, "config.yml")
        with open(self.config, "w") as f:
            f.write("\n".join(cfg) + "\n")
        self.access_path = os.path.join(self.dir, "access.log")
        self.err_path = os.path.join(self.dir, "registry.log")
        self._out = open(self.access_path, "wb")
        self._err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(["docker-registry", "serve", self.config], stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._err)
        _wait_port(self.port, self.proc, "docker-registry", self.err_path)

    @property
    def scheme(self):
        return "https" if self.tls else "http"

    def ref(self, repo):
        """docker://HOST:PORT/REPO[:TAG|@DIGEST] as skopeo and lambdapack spell it."""
        return "docker://%s/%s" % (self.host, repo)

    def access_log(self):
        """Access log lines (Apache combined format) written so far."""
        self._out.flush()
        with open(self.access_path, errors="replace") as f:
            return f.read().splitlines()

    def requests(self):
        """(method, path, status) per access-log line."""
        out = []
        for line in self.access_log():
            try:
                req = line.split('"')[1]
                method, path, _ = req.split(" ")
                status = int(line.split('"')[2].split()[0])
            except (IndexError, ValueError):
                continue
            out.append((method, path, status))
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        self._err.close()
        if self.token:
            self.token.stop()


class CountingProxy:
    """Plain HTTP reverse proxy in front of a registry that counts requests and body bytes.

    The Host header is passed through, so the registry's upload Location URLs
    point back at the proxy. With tls_backend, it speaks TLS to the registry
    (trusting the fixture CA)."""

    def __init__(self, backend_port, backend_ctx=None):
        self.backend_port = backend_port
        self.backend_ctx = backend_ctx
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        self.log = []  # (method, path, request body bytes, status)
        self.mirror = None  # a file each request is also written to, one line each
        self.fail_blob_puts = False  # answer 500 to every PUT completing a blob upload
        self.lock = threading.Lock()
        px = self

        class H(_Quiet):
            def _proxy(self):
                body = self._body()
                if px.fail_blob_puts and self.command == "PUT" and "/blobs/uploads/" in self.path:
                    with px.lock:
                        px.log.append((self.command, self.path, len(body), 500))
                    return self._send(500, b'{"errors":[{"code":"UNKNOWN","message":"failing for the test"}]}',
                                      {"Content-Type": "application/json"})
                if px.backend_ctx is not None:
                    c = http.client.HTTPSConnection("127.0.0.1", px.backend_port, context=px.backend_ctx,
                                                    timeout=300)
                else:
                    c = http.client.HTTPConnection("127.0.0.1", px.backend_port, timeout=300)
                hdrs = {k: v for k, v in self.headers.items()
                        if k.lower() not in ("transfer-encoding", "content-length", "connection",
                                             "expect")}
                if body or self.command in ("PUT", "PATCH", "POST"):
                    hdrs["Content-Length"] = str(len(body))
                c.request(self.command, self.path, body=body, headers=hdrs)
                r = c.getresponse()
                data = r.read()
                with px.lock:
                    px.log.append((self.command, self.path, len(body), r.status))
                    if px.mirror is not None:
                        px.mirror.write("%s %s %d %d\n" % px.log[-1])
                        px.mirror.flush()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() in ("transfer-encoding", "content-length", "connection"):
                        continue
                    self.send_header(k, v)
                if self.command == "HEAD":
                    self.send_header("Content-Length", r.getheader("Content-Length") or "0")
                else:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                c.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _proxy

        self.server = _Server(("127.0.0.1", self.port), H)
        _serve(self.server)

    def reset(self):
        with self.lock:
            self.log.clear()

    def uploads(self):
        """(method, path, bytes) of every request under /blobs/uploads/."""
        with self.lock:
            return [(m, p, n) for m, p, n, _ in self.log if "/blobs/uploads/" in p]

    def upload_bytes(self):
        return sum(n for m, p, n in self.uploads() if m in ("PATCH", "PUT", "POST"))

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def read_layout(layout, tag=None):
    """(manifest bytes, manifest descriptor, {digest: path}) for the image tagged `tag` (or the first)."""
    with open(os.path.join(layout, "index.json")) as f:
        idx = json.load(f)
    desc = idx["manifests"][0]
    if tag is not None:
        desc = [m for m in idx["manifests"]
                if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag][0]
    blobs = {}
    bdir = os.path.join(layout, "blobs", "sha256")
    for n in os.listdir(bdir):
        blobs["sha256:" + n] = os.path.join(bdir, n)
    with open(blobs[desc["digest"]], "rb") as f:
        return f.read(), desc, blobs


class FaultyRegistry:
    """A read-only registry serving one OCI layout image under any repository and tag.

    mode (settable at any time):
      ok        serve correctly
      baddigest layer blobs have one byte flipped (same size, wrong digest)
      auth      401 + Basic challenge unless Authorization matches users
      notfound  404 MANIFEST_UNKNOWN for every manifest
      flaky     500 on the first request of each (method, path), then the right answer
      down      500 on everything under /v2/<repo>/
      drop      the first request of each (method, path) gets its connection closed, no answer
      ratelimit 429 TOOMANYREQUESTS on everything under /v2/<repo>/
      ratelimit1 429 with Retry-After: 1 on the first request of each (method, path), then the right answer
      forbidden 403 DENIED on everything under /v2/<repo>/
      stallbody blobs: headers and half the bytes, then nothing until stopped
    """

    def __init__(self, layout, tag=None, users=None, tls_ctx=None):
        self.mode = "ok"
        self.users = dict(users or {})
        self.manifest, self.desc, self.blobs = read_layout(layout, tag)
        self.layers = [l["digest"] for l in json.loads(self.manifest)["layers"]]
        self.log = []  # (method, path, status, had_authorization)
        self.seen = set()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        fx = self

        class H(_Quiet):
            def _reply(self, code, body=b"", headers=None):
                with fx.lock:
                    fx.log.append((self.command, self.path, code, bool(self.headers.get("Authorization"))))
                self._send(code, body, headers, head=self.command == "HEAD")

            def _err(self, code, ecode, msg):
                body = json.dumps({"errors": [{"code": ecode, "message": msg}]}).encode()
                self._reply(code, body, {"Content-Type": "application/json"})

            def _get(self):
                path = urllib.parse.urlparse(self.path).path
                mode = fx.mode
                if mode == "auth" and not fx._authorized(self.headers.get("Authorization", "")):
                    body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
                    return self._reply(401, body, {"Content-Type": "application/json",
                                                   "WWW-Authenticate": 'Basic realm="faulty"'})
                if path in ("/v2/", "/v2"):
                    return self._reply(200, b"{}", {"Content-Type": "application/json",
                                                     "Docker-Distribution-API-Version": "registry/2.0"})
                if mode == "down":
                    return self._err(500, "UNKNOWN", "down for the test")
                if mode == "ratelimit":
                    return self._err(429, "TOOMANYREQUESTS", "slow down")
                if mode == "ratelimit1":
                    first = fx.first_time(self.command, path)
                    if first:
                        body = b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}'
                        return self._reply(429, body, {"Content-Type": "application/json", "Retry-After": "1"})
                if mode == "forbidden":
                    return self._err(403, "DENIED", "requested access to the resource is denied")
                if mode == "drop":
                    first = fx.first_time(self.command, path)
                    if first:
                        with fx.lock:
                            fx.log.append((self.command, self.path, 0, bool(self.headers.get("Authorization"))))
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                if mode == "flaky":
                    first = fx.first_time(self.command, path)
                    if first:
                        return self._err(500, "UNKNOWN", "transient failure for the test")
                parts = path.split("/")
                # /v2/<name...>/manifests/<ref> or /v2/<name...>/blobs/<digest>
                if len(parts) < 5 or parts[-2] not in ("manifests", "blobs"):
                    return self._err(404, "NAME_UNKNOWN", "no such route")
                kind, ref = parts[-2], parts[-1]
                if kind == "manifests":
                    if mode == "notfound" or (ref.startswith("sha256:") and ref != fx.desc["digest"]):
                        return self._err(404, "MANIFEST_UNKNOWN", "manifest unknown")
                    return self._reply(200, fx.manifest, {"Content-Type": fx.desc["mediaType"],
                                                          "Docker-Content-Digest": fx.desc["digest"]})
                if ref not in fx.blobs:
                    return self._err(404, "BLOB_UNKNOWN", "blob unknown")
                with open(fx.blobs[ref], "rb") as f:
                    data = f.read()
                if mode == "baddigest" and ref in fx.layers:
                    data = fx.corrupt(data)
                if mode == "stallbody" and self.command == "GET":
                    with fx.lock:
                        fx.log.append((self.command, self.path, 200, bool(self.headers.get("Authorization"))))
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("Content-Type", "application/octet-stream")
                    self.end_headers()
                    self.wfile.write(data[:len(data) // 2])
                    self.wfile.flush()
                    fx.stopping.wait()
                    self.close_connection = True
                    return
                self._reply(200, data, {"Content-Type": "application/octet-stream",
                                        "Docker-Content-Digest": ref})

            do_GET = do_HEAD = _get

            def _nope(self):
                self._body()
                self._err(405, "UNSUPPORTED", "read-only test registry")

            do_PUT = do_POST = do_PATCH = do_DELETE = _nope

        self.server = _Server(("127.0.0.1", self.port), H)
        _serve(self.server, tls_ctx)

    @staticmethod
    def corrupt(data):
        b = bytearray(data)
        b[len(b) // 2] ^= 0xFF
        return bytes(b)

    def _authorized(self, auth):
        if not auth.startswith("Basic "):
            return False
        try:
            user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
        except Exception:  # noqa: BLE001
            return False
        return user in self.users and self.users[user] == pw

    def ref(self, repo):
        return "docker://%s/%s" % (self.host, repo)

    def statuses(self):
        with self.lock:
            return [s for _, _, s, _ in self.log]

    def first_time(self, method, path):
        """Is this the first request of (method, path) since the last reset?"""
        with self.lock:
            first = (method, path) not in self.seen
            self.seen.add((method, path))
        return first

    def reset(self, mode="ok"):
        with self.lock:
            self.mode = mode
            self.log.clear()
            self.seen.clear()

    def stop(self):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


class StallServer:
    """Accepts TCP connections and never answers (the peer sees a timeout)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.host = "127.0.0.1:%d" % self.port
        self.conns = []
        self._stop = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        self.sock.settimeout(0.1)
        while not self._stop:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except OSError:
                continue

    def stop(self):
        self._stop = True
        self.thread.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()


class Fixture:
    """Owns a temp dir, a CA (made on first use) and every server started through it."""

    def __init__(self, tag="reg"):
        self.dir = tempfile.mkdtemp(prefix="lambdapack-%s-" % tag)
        self._ca = None
        self._things = []

    def ca(self):
        if self._ca is None:
            self._ca = CA(os.path.join(self.dir, "ca"))
        return self._ca

    def registry(self, tls=False, auth=None, users=None):
        r = Registry(self, "registry-%d" % len(self._things), tls=tls, auth=auth, users=users)
        self._things.append(r)
        return r

    def proxy(self, reg):
        p = CountingProxy(reg.port, self.ca().client_context() if reg.tls else None)
        self._things.append(p)
        return p

    def faulty(self, layout, tag=None, users=None, tls=False):
        f = FaultyRegistry(layout, tag, users, self.ca().server_context() if tls else None)
        self._things.append(f)
        return f

    def stall(self):
        s = StallServer()
        self._things.append(s)
        return s

    def close(self, keep=False):
        for t in reversed(self._things):
            try:
                t.stop()
            except Exception:  # noqa: BLE001 - stop everything we can
                pass
        self._things.clear()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close(keep=bool(os.environ.get("LP_KEEP")))


# ---------------------------------------------------------------- credentials

def docker_config(d, entries):
    """Write d/config.json; entries maps registry host to (user, password) or a dict used as is."""
    os.makedirs(d, exist_ok=True)
    auths = {}
    for host, v in entries.items():
        if isinstance(v, tuple):
            auths[host] = {"auth": base64.b64encode(("%s:%s" % v).encode()).decode()}
        else:
            auths[host] = v
    path = os.path.join(d, "config.json")
    with open(path, "w") as f:
        json.dump({"auths": auths}, f)
    return path


# ---------------------------------------------------------------- OCI images

def _blob(layout, data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    bdir = os.path.join(layout, "blobs", "sha256")
    os.makedirs(bdir, exist_ok=True)
    with open(os.path.join(bdir, d[7:]), "wb") as f:
        f.write(data)
    return d


def layer_tar(entries):
    """entries: list of (path, kind, payload, mode): kind 'file' (bytes), 'dir', 'symlink' (target).

    Returns (gzip bytes, diff_id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for path, kind, payload, mode in entries:
            ti = tarfile.TarInfo(path)
            ti.mtime = 315532800
            ti.uid = ti.gid = 0
            ti.mode = mode
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
            elif kind == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = payload
                tf.addfile(ti)
            else:
                ti.size = len(payload)
                tf.addfile(ti, io.BytesIO(payload))
    raw = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, compresslevel=6) as g:
        g.write(raw)
    return gz.getvalue(), "sha256:" + hashlib.sha256(raw).hexdigest()


def write_image(layout, layers, arch="amd64", config_extra=None):
    """Write blobs for one image; returns its manifest descriptor (not yet in index.json)."""
    os.makedirs(layout, exist_ok=True)
    descs, diff_ids = [], []
    for entries in layers:
        gz, diff = layer_tar(entries)
        descs.append({"mediaType": MT_LAYER, "digest": _blob(layout, gz), "size": len(gz)})
        diff_ids.append(diff)
    cfg = {"architecture": arch, "os": "linux", "created": "1980-01-01T00:00:00Z",
           "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                      "Cmd": ["/bin/sh"]},
           "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": []}
    if config_extra:
        cfg["config"].update(config_extra)
    cb = json.dumps(cfg, sort_keys=True).encode()
    man = {"schemaVersion": 2, "mediaType": MT_MANIFEST,
           "config": {"mediaType": MT_CONFIG, "digest": _blob(layout, cb), "size": len(cb)},
           "layers": descs}
    mb = json.dumps(man, sort_keys=True).encode()
    return {"mediaType": MT_MANIFEST, "digest": _blob(layout, mb), "size": len(mb),
            "platform": {"architecture": arch, "os": "linux"}}


def write_index(layout, tagged):
    """tagged: list of (tag, descriptor). Writes oci-layout and index.json."""
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    ms = []
    for tag, desc in tagged:
        d = dict(desc)
        d["annotations"] = {"org.opencontainers.image.ref.name": tag}
        ms.append(d)
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": ms}, f)


BUSYBOX = "/bin/busybox"
APPLETS = ["sh", "echo", "cat", "ls", "env", "true", "false", "test", "printf", "id", "uname", "sleep"]


def busybox_layer(marker=None):
    """Root file system entries: /bin/busybox (static) and applet links, /tmp, /var/task, /etc/passwd."""
    with open(BUSYBOX, "rb") as f:
        bb = f.read()
    e = [("bin", "dir", None, 0o755), ("bin/busybox", "file", bb, 0o755)]
    e += [("bin/" + a, "symlink", "busybox", 0o777) for a in APPLETS]
    e += [("etc", "dir", None, 0o755),
          ("etc/passwd", "file", b"root:x:0:0:root:/root:/bin/sh\n", 0o644),
          ("etc/group", "file", b"root:x:0:\n", 0o644),
          ("tmp", "dir", None, 0o1777), ("var", "dir", None, 0o755), ("var/task", "dir", None, 0o755)]
    if marker:
        e.append(("etc/lp-marker", "file", marker.encode(), 0o644))
    return e


def busybox_layout(layout, tag="busybox"):
    """An amd64 busybox image (Cmd /bin/sh) tagged `tag`; returns its manifest descriptor."""
    desc = write_image(layout, [busybox_layer()], "amd64")
    write_index(layout, [(tag, desc)])
    return desc


def multiarch_layout(layout, tag="multi"):
    """An OCI index (amd64 busybox + arm64 stand-in with /etc/lp-marker 'arm64') under one tag.

    Returns (index descriptor, {arch: manifest descriptor})."""
    amd = write_image(layout, [busybox_layer(marker="amd64")], "amd64")
    # No arm64 busybox here: the arm64 image carries the same files with its own marker; it is never run.
    arm = write_image(layout, [busybox_layer(marker="arm64")], "arm64")
    idx = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [amd, arm]}
    ib = json.dumps(idx, sort_keys=True).encode()
    idesc = {"mediaType": MT_INDEX, "digest": _blob(layout, ib), "size": len(ib)}
    write_index(layout, [(tag, idesc)])
    return idesc, {"amd64": amd, "arm64": arm}


# ---------------------------------------------------------------- self test

def _skopeo(*args):
    return _run(["skopeo", "--override-os", "linux", *args])


def selftest():
    """Each fixture checked with skopeo (and plain HTTP clients) before lambdapack relies on it."""
    for t in ("docker-registry", "skopeo", "openssl", "htpasswd"):
        if not shutil.which(t):
            print("SKIP: %s is not installed (scripts/install-deps.sh --test); fixture NOT checked" % t)
            return 77
    user, pw = "lpuser", "pw-" + uuid.uuid4().hex
    failures = 0

    def check(name, fn):
        nonlocal failures
        try:
            fn()
            print("ok   %s" % name)
        except Exception as e:  # noqa: BLE001
            failures += 1
            print("FAIL %s: %s" % (name, e))
            traceback.print_exc()

    with Fixture("regfix-selftest") as fx:
        src = os.path.join(fx.dir, "src")
        bdesc = busybox_layout(src, "busybox")
        msrc = os.path.join(fx.dir, "msrc")
        midesc, _ = multiarch_layout(msrc, "multi")
        authfile = os.path.join(fx.dir, "auth.json")
        ca = fx.ca()

        def tls_basic():
            r = fx.registry(tls=True, auth="htpasswd", users={user: pw})
            ref = r.ref("base/busybox:1")
            # refused without credentials, accepted with them
            p = subprocess.run(["skopeo", "copy", "--dest-cert-dir", ca.cert_dir, "oci:%s:busybox" % src, ref],
                               capture_output=True, text=True)
            assert p.returncode != 0 and ("unauthorized" in p.stderr.lower() or "401" in p.stderr), p.stderr
            _skopeo("copy", "--dest-cert-dir", ca.cert_dir, "--dest-creds", "%s:%s" % (user, pw),
                    "oci:%s:busybox" % src, ref)
            info = json.loads(_skopeo("inspect", "--cert-dir", ca.cert_dir, "--creds", "%s:%s" % (user, pw),
                                      ref).stdout)
            assert info["Digest"] == bdesc["digest"], (info["Digest"], bdesc["digest"])
            back = os.path.join(fx.dir, "back-tls")
            _skopeo("copy", "--src-cert-dir", ca.cert_dir, "--src-creds", "%s:%s" % (user, pw), ref,
                    "oci:%s:b" % back)
            assert read_layout(back)[1]["digest"] == bdesc["digest"]
            # the CA is really checked: without it TLS verification fails
            p = subprocess.run(["skopeo", "inspect", "--creds", "%s:%s" % (user, pw), ref],
                               capture_output=True, text=True)
            assert p.returncode != 0 and "certificate" in p.stderr, p.stderr
            # multi-arch index keeps its digest with --all
            _skopeo("copy", "--all", "--dest-cert-dir", ca.cert_dir, "--dest-creds", "%s:%s" % (user, pw),
                    "oci:%s:multi" % msrc, r.ref("base/multi:1"))
            raw = json.loads(_skopeo("inspect", "--raw", "--cert-dir", ca.cert_dir, "--creds",
                                     "%s:%s" % (user, pw), r.ref("base/multi:1")).stdout)
            assert sorted(m["platform"]["architecture"] for m in raw["manifests"]) == ["amd64", "arm64"]
            assert not any(pw in l for l in r.access_log()), "password in the access log"

        def token():
            r = fx.registry(tls=True, auth="token", users={user: pw})
            ref = r.ref("tok/busybox:1")
            p = subprocess.run(["skopeo", "copy", "--dest-cert-dir", ca.cert_dir, "oci:%s:busybox" % src, ref],
                               capture_output=True, text=True)
            assert p.returncode != 0, "anonymous push accepted"
            _skopeo("copy", "--dest-cert-dir", ca.cert_dir, "--dest-creds", "%s:%s" % (user, pw),
                    "oci:%s:busybox" % src, ref)
            assert any(a == user and any(":push" in g or ",push" in g for g in gs) for a, gs in r.token.grants)
            n = len(r.token.grants)
            back = os.path.join(fx.dir, "back-token")
            _skopeo("copy", "--src-cert-dir", ca.cert_dir, ref, "oci:%s:b" % back)  # anonymous pull
            assert read_layout(back)[1]["digest"] == bdesc["digest"]
            anon = [g for a, g in r.token.grants[n:] if a is None]
            assert anon and all(x.endswith(":pull") for gs in anon for x in gs), r.token.grants
            p = subprocess.run(["skopeo", "inspect", "--cert-dir", ca.cert_dir, "--creds", "%s:wrong" % user, ref],
                               capture_output=True, text=True)
            assert p.returncode != 0 and r.token.refused >= 1, p.stderr
            # an identity token stands in for the password (OAuth2 refresh_token POST)
            rt = r.token.add_refresh_token(user)
            with open(authfile, "w") as f:
                json.dump({"auths": {r.host: {"auth": base64.b64encode(b"<token>:").decode(),
                                              "identitytoken": rt}}}, f)
            _skopeo("copy", "--dest-cert-dir", ca.cert_dir, "--authfile", authfile, "oci:%s:busybox" % src,
                    r.ref("tok/idtoken:1"))

        def proxy():
            r = fx.registry()
            px = fx.proxy(r)
            size = sum(os.path.getsize(p) for p in read_layout(src)[2].values())
            _skopeo("copy", "--dest-tls-verify=false", "oci:%s:busybox" % src, "docker://%s/c/bb:1" % px.host)
            sent = px.upload_bytes()
            assert 0.5 * size < sent <= size + 4096, (sent, size)
            assert any(m == "PATCH" or m == "PUT" for m, _, _ in px.uploads())
            assert any("/blobs/uploads/" in p for _, p, _ in r.requests())
            px.reset()
            _skopeo("copy", "--dest-tls-verify=false", "oci:%s:busybox" % src, "docker://%s/c/bb:2" % px.host)
            assert px.upload_bytes() == 0, px.uploads()

        def faulty():
            f = fx.faulty(src, users={user: pw})
            n = [0]

            def pull(*extra):
                # a fresh destination each time: skopeo skips blobs a layout already has
                n[0] += 1
                out = os.path.join(fx.dir, "faulty-out-%d" % n[0])
                return subprocess.run(["skopeo", "copy", "--src-tls-verify=false", *extra,
                                       f.ref("any/repo:tag"), "oci:%s:x" % out],
                                      capture_output=True, text=True)
            p = pull()
            assert p.returncode == 0, p.stderr
            f.reset("baddigest")
            p = pull()
            assert p.returncode != 0 and "digest" in p.stderr.lower(), p.stderr
            f.reset("auth")
            p = pull()
            assert p.returncode != 0 and 401 in f.statuses(), p.stderr
            p = pull("--src-creds", "%s:%s" % (user, pw))
            assert p.returncode == 0, p.stderr
            f.reset("notfound")
            p = pull()
            assert p.returncode != 0 and "manifest unknown" in p.stderr.lower(), p.stderr
            f.reset("down")
            p = pull()
            assert p.returncode != 0, p.stderr
            for mode, code in (("ratelimit", 429), ("forbidden", 403)):
                f.reset(mode)
                p = pull()
                assert p.returncode != 0 and code in f.statuses(), (mode, p.stderr)
            # drop: the first request of a path sees its connection closed, the second is answered
            f.reset("drop")
            path = "/v2/any/repo/manifests/tag"
            c = http.client.HTTPConnection("127.0.0.1", f.port, timeout=10)
            c.request("GET", path)
            try:
                c.getresponse().read()
                raise AssertionError("drop answered the first request")
            except (http.client.RemoteDisconnected, ConnectionResetError, http.client.BadStatusLine):
                pass
            c.close()
            c = http.client.HTTPConnection("127.0.0.1", f.port, timeout=10)
            c.request("GET", path)
            r = c.getresponse()
            assert r.status == 200 and hashlib.sha256(r.read()).hexdigest() == bdesc["digest"][7:]
            c.close()
            # flaky: the first request of each path is a 500, a retry gets the right bytes
            f.reset("flaky")
            url = "http://%s/v2/any/repo/manifests/tag" % f.host
            c = http.client.HTTPConnection("127.0.0.1", f.port, timeout=10)
            c.request("GET", urllib.parse.urlparse(url).path)
            r1 = c.getresponse()
            r1.read()
            c.request("GET", urllib.parse.urlparse(url).path)
            r2 = c.getresponse()
            body = r2.read()
            assert (r1.status, r2.status) == (500, 200), (r1.status, r2.status)
            assert hashlib.sha256(body).hexdigest() == bdesc["digest"][7:]
            # stallbody: half the blob arrives, then nothing
            f.reset("stallbody")
            c = http.client.HTTPConnection("127.0.0.1", f.port, timeout=1.5)
            c.request("GET", "/v2/any/repo/blobs/%s" % f.layers[0])
            r3 = c.getresponse()
            try:
                r3.read()
                raise AssertionError("stallbody returned the whole blob")
            except (socket.timeout, TimeoutError, http.client.IncompleteRead):
                pass
            c.close()

        def stall_and_closed():
            s = fx.stall()
            c = socket.create_connection(("127.0.0.1", s.port), timeout=1)
            c.settimeout(1)
            c.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                got = c.recv(10)
                raise AssertionError("stall server answered %r" % got)
            except (socket.timeout, TimeoutError):
                pass
            c.close()
            port = closed_port()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                raise AssertionError("closed port accepted a connection")
            except ConnectionRefusedError:
                pass

        check("tls_basic_registry_skopeo_roundtrip", tls_basic)
        check("token_registry_anonymous_pull_authenticated_push", token)
        check("counting_proxy_counts_upload_bytes", proxy)
        check("faulty_registry_modes", faulty)
        check("stall_server_and_closed_port", stall_and_closed)
    print("%d failed" % failures)
    return 1 if failures else 0


def serve(n, proxy_log):
    """For scripts (bench/bench-registry.sh): n plain registries, a counting proxy in front of the
    first; prints 'HOST1 ... HOSTn PROXYHOST' and serves until stdin closes. Each proxied
    request is appended to proxy_log as 'METHOD PATH BODY_BYTES STATUS'."""
    import sys
    with Fixture("regfix-serve") as fx:
        regs = [fx.registry() for _ in range(n)]
        px = fx.proxy(regs[0])
        log = open(proxy_log, "a")
        px.mirror = log
        print(" ".join([r.host for r in regs] + [px.host]), flush=True)
        sys.stdin.read()
        log.close()


if __name__ == "__main__":
    import sys
    if len(sys.argv) > 1 and sys.argv[1] == "selftest":
        sys.exit(selftest())
    if len(sys.argv) > 3 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3])
        sys.exit(0)
    print(__doc__)
    sys.exit(2)
