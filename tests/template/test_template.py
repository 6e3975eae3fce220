#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""pack --template: SAM/CloudFormation templates and serverless.yml, end to end.

usage: test_template.py LAMBDAPACK

Every artifact is read back with python's zipfile and unzip, and the sample
handlers are imported from the extracted zips and called.
"""
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import lptest  # noqa: E402

LP = os.path.abspath(sys.argv[1])
SRC = os.environ.get("LP_SOURCE_ROOT") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def schema_valid(j):
    """The template run's report is the common envelope (docs/report.schema.json), command "template"."""
    import jsonschema
    schema = json.load(open(os.path.join(SRC, "docs", "report.schema.json")))
    errors = [e.message for e in jsonschema.validators.validator_for(schema)(schema).iter_errors(j)]
    assert not errors, errors[:5]
    assert j["command"] == "template" and j["exit_code"] == 0 and j["error"] is None, j


def lp(*args, cwd=None):
    return subprocess.run([LP, *args], capture_output=True, text=True, cwd=cwd)


def copy_sample(name):
    d = lptest.tmpdir("tpl")
    dst = os.path.join(d, name)
    shutil.copytree(os.path.join(SRC, "samples", name), dst, symlinks=True,
                    ignore=shutil.ignore_patterns(".lambdapack"))
    return dst


def members(path):
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None, path
        return sorted(z.namelist())


def unzip_list(path):
    if not lptest.which("unzip"):
        return None
    p = lptest.run(["unzip", "-Z1", path])
    return sorted(p.stdout.split())


def code_sha256(path):
    with open(path, "rb") as f:
        return base64.b64encode(hashlib.sha256(f.read()).digest()).decode()


def write(path, text, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    if mode:
        os.chmod(path, mode)


def one_error(p, *needles, code=1):
    """The run failed with exit code, one stderr line naming each needle."""
    assert p.returncode == code, (p.returncode, p.stderr)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, p.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


# ---- SAM ------------------------------------------------------------------


def test_sam_sample_globals_shared_codeuri_layer_image():
    app = copy_sample("sam-app")
    out = os.path.join(app, ".lambdapack")
    rep = os.path.join(app, "..", "report.json")
    p = lp("pack", "--template", os.path.join(app, "template.yaml"), "--json", rep)
    assert p.returncode == 0, p.stderr
    zips = sorted(f for f in os.listdir(out) if f.endswith(".zip"))
    assert zips == ["CommonLayer.zip", "GetOrder.zip", "ListOrders.zip"], zips
    # Two functions with one CodeUri: packed once, the same bytes under both names.
    a, b = (open(os.path.join(out, f), "rb").read() for f in ("ListOrders.zip", "GetOrder.zip"))
    assert a == b
    assert members(os.path.join(out, "ListOrders.zip")) == ["app.py"]
    assert unzip_list(os.path.join(out, "ListOrders.zip")) in (None, ["app.py"])
    assert members(os.path.join(out, "CommonLayer.zip")) == [
        "python/", "python/orders_common/", "python/orders_common/__init__.py", "python/orders_common/money.py"]
    with open(rep) as f:
        j = json.load(f)
    arts = {x["id"]: x for x in j["artifacts"]}
    assert set(arts) == {"ListOrders", "GetOrder", "CommonLayer", "Thumbnailer"}
    for i in ("ListOrders", "GetOrder", "CommonLayer"):
        assert arts[i]["code_sha256"] == code_sha256(arts[i]["path"]), i
        assert os.path.samefile(arts[i]["path"], os.path.join(out, i + ".zip"))
        assert isinstance(arts[i]["findings"], list)
    # Globals.Function: runtime and architecture inherited.
    assert arts["ListOrders"]["target"]["runtime"] == "python3.12"
    assert arts["ListOrders"]["target"]["arch"] == "arm64"
    assert arts["ListOrders"]["arch_from"] == "Globals.Function.Architectures"
    assert arts["GetOrder"]["reused_from"] == "ListOrders"
    assert arts["ListOrders"]["reused_from"] is None
    assert arts["CommonLayer"]["kind"] == "layer"
    # The layer counts against the function's unzipped budget.
    assert arts["ListOrders"]["sizes"]["layers_unzipped"] == arts["CommonLayer"]["sizes"]["unzipped"] > 0
    # The image function: an info finding, no artifact.
    assert arts["Thumbnailer"]["kind"] == "image" and arts["Thumbnailer"]["path"] is None
    assert not os.path.exists(os.path.join(out, "Thumbnailer.zip"))
    codes = [f["code"] for f in j["findings"]]
    assert "image-function" in codes, j["findings"]
    # One summary line per artifact.
    wrote = [l for l in p.stderr.splitlines() if ": wrote " in l]
    assert len(wrote) == 3, p.stderr
    assert "packed once" in [l for l in wrote if "GetOrder.zip" in l][0]
    # The handlers run from the extracted artifacts, the layer's python/ on the path.
    ex = os.path.join(app, "..", "x")
    for z, d in (("ListOrders.zip", "fn"), ("CommonLayer.zip", "layer")):
        with zipfile.ZipFile(os.path.join(out, z)) as zf:
            zf.extractall(os.path.join(ex, d))
    code = ("import sys, json; sys.path[:0] = [%r, %r]; import app; "
            "r = app.list_orders({}, None); print(r['statusCode'], json.loads(r['body'])['orders'][0]['price'])"
            % (os.path.join(ex, "fn"), os.path.join(ex, "layer", "python")))
    r = lptest.run([sys.executable, "-c", code])
    assert r.stdout.split() == ["200", "$14.50"], r.stdout
    # A second run into its own output directory is fine and gives the same bytes.
    p2 = lp("pack", "--template", os.path.join(app, "template.yaml"), "-q")
    assert p2.returncode == 0 and p2.stderr == "", p2.stderr
    assert open(os.path.join(out, "ListOrders.zip"), "rb").read() == a


def test_sam_function_selection_takes_its_layers():
    app = copy_sample("sam-app")
    out = os.path.join(app, "..", "out")
    p = lp("pack", "--template", os.path.join(app, "template.yaml"), "--function", "GetOrder", "--out-dir", out)
    assert p.returncode == 0, p.stderr
    assert sorted(f for f in os.listdir(out) if not f.startswith(".")) == ["CommonLayer.zip", "GetOrder.zip"]
    assert not os.path.exists(os.path.join(app, ".lambdapack"))


def test_sam_intrinsic_tags_parse_and_lambda_function():
    d = lptest.tmpdir("tpl")
    write(os.path.join(d, "fn", "index.mjs"), "export const handler = async () => ({ statusCode: 200 });\n")
    write(os.path.join(d, "py", "pkg", "mod.py"), "from json import dumps as handler\n")
    write(os.path.join(d, "template.yaml"), """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: [AWS::Serverless-2016-10-31]
Parameters:
  Env: {Type: String, AllowedValues: [dev, prod]}
Mappings:
  Sizes: {dev: {mem: 128}, prod: {mem: 1024}}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  NotProd: !Not [!Condition IsProd]
  Both: !And [!Condition IsProd, !Or [!Condition NotProd, !Condition IsProd]]
Resources:
  Web:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: ./fn
      Handler: index.handler
      Runtime: nodejs20.x
      MemorySize: !FindInMap [Sizes, !Ref Env, mem]
      Environment:
        Variables:
          A: !Sub "${AWS::StackName}-${Env}"
          B: !Join [",", !GetAZs ""]
          C: !Select [0, !Split [",", "a,b"]]
          D: !ImportValue shared-table
          E: !Base64 "hello"
          F: !If [IsProd, !GetAtt Web.Arn, !Ref "AWS::NoValue"]
          G: !Select [0, !Cidr ["10.0.0.0/16", 4, 8]]
      Layers:
        - arn:aws:lambda:us-east-1:123456789012:layer:shared:3
      Tags: !Transform {Name: "AWS::Include", Parameters: {Location: s3://b/k}}
  Plain:
    Type: AWS::Lambda::Function
    Properties:
      Code: py
      Handler: pkg.mod.handler
      Runtime: python3.11
      Architectures: [x86_64]
      Role: !GetAtt Role.Arn
  Role:
    Type: AWS::IAM::Role
    Properties: {AssumeRolePolicyDocument: {}}
  Uploaded:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: {Bucket: !Ref ArtifactBucket, Key: fn.zip}, Handler: a.b, Runtime: python3.12}
""")
    p = lp("pack", "--template", os.path.join(d, "template.yaml"), "--json", os.path.join(d, "r.json"), "-v")
    assert p.returncode == 0, p.stderr
    assert members(os.path.join(d, ".lambdapack", "Web.zip")) == ["index.mjs"]
    assert members(os.path.join(d, ".lambdapack", "Plain.zip")) == ["pkg/", "pkg/mod.py"]
    j = json.load(open(os.path.join(d, "r.json")))
    assert sorted(f["code"] for f in j["findings"]) == ["layer-external", "prebuilt-artifact"], j["findings"]
    assert j["artifact"]["format"] == "sam"
    schema_valid(j)
    kinds = {a["id"]: (a["kind"], a["path"]) for a in j["artifacts"]}
    assert kinds["Uploaded"] == ("prebuilt", None) and kinds["Web"][0] == "function", kinds
    assert not os.path.exists(os.path.join(d, ".lambdapack", "Uploaded.zip"))


def test_codeuri_in_repository_but_outside_template_dir():
    d = lptest.tmpdir("tpl")
    os.makedirs(os.path.join(d, "repo", ".git"))
    write(os.path.join(d, "repo", "shared", "lib", "h.py"), "def go(e, c):\n    return 1\n")
    write(os.path.join(d, "repo", "svc", "template.yaml"), """\
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: ../shared/lib, Handler: h.go, Runtime: python3.12}
""")
    p = lp("pack", "--template", os.path.join(d, "repo", "svc", "template.yaml"))
    assert p.returncode == 0, p.stderr
    assert members(os.path.join(d, "repo", "svc", ".lambdapack", "Fn.zip")) == ["h.py"]


def test_compatibility_error_exits_4():
    if not lptest.which("cc"):
        raise lptest.Skip("no C compiler to build a native binary")
    d = lptest.tmpdir("tpl")
    write(os.path.join(d, "b.c"), "int main(void) { return 0; }\n")
    os.makedirs(os.path.join(d, "fn"))
    lptest.run(["cc", "-o", os.path.join(d, "fn", "helper"), os.path.join(d, "b.c")])
    write(os.path.join(d, "fn", "app.py"), "def h(e, c):\n    return 0\n")
    # The template says arm64; the helper is built for this (x86_64) machine.
    write(os.path.join(d, "template.yaml"), """\
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: fn, Handler: app.h, Runtime: python3.12, Architectures: [arm64]}
""")
    p = lp("pack", "--template", os.path.join(d, "template.yaml"))
    if os.uname().machine != "x86_64":
        raise lptest.Skip("the test binary is native; this check wants an x86_64 host")
    assert p.returncode == 4, p.stderr
    assert "wrong-arch" in p.stderr and "Fn" in p.stderr
    assert not os.path.exists(os.path.join(d, ".lambdapack"))


# ---- serverless.yml -----------------------------------------------------------


def test_serverless_sample_patterns_individually_layers():
    app = copy_sample("serverless-app")
    out = os.path.join(app, ".lambdapack")
    p = lp("pack", "--template", os.path.join(app, "serverless.yml"), "--json", "-")
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    assert j["artifact"]["format"] == "serverless"
    schema_valid(j)
    arts = {x["id"]: x for x in j["artifacts"]}
    assert set(arts) == {"hello", "admin", "greetings"}
    # Individually: each function's own patterns apply; tests, scripts, docs, layer and config stay out.
    assert members(os.path.join(out, "hello.zip")) == ["package.json", "src/", "src/hello.js"]
    assert members(os.path.join(out, "admin.zip")) == ["package.json", "src/", "src/admin.mjs"]
    assert unzip_list(os.path.join(out, "admin.zip")) in (None, ["package.json", "src/", "src/admin.mjs"])
    assert members(os.path.join(out, "greetings.zip")) == [
        "nodejs/", "nodejs/node_modules/", "nodejs/node_modules/greetings/",
        "nodejs/node_modules/greetings/index.js", "nodejs/node_modules/greetings/package.json"]
    assert arts["hello"]["target"]["arch"] == "arm64" and arts["hello"]["target"]["runtime"] == "nodejs20.x"
    assert arts["admin"]["target"]["arch"] == "x86_64" and arts["admin"]["target"]["runtime"] == "nodejs18.x"
    assert arts["hello"]["sizes"]["layers_unzipped"] == arts["greetings"]["sizes"]["unzipped"]
    assert arts["admin"]["sizes"]["layers_unzipped"] == 0
    for a in arts.values():
        assert a["code_sha256"] == code_sha256(a["path"])
    if lptest.which("node"):
        ex = os.path.join(app, "..", "x")
        with zipfile.ZipFile(os.path.join(out, "admin.zip")) as zf:
            zf.extractall(ex)
        r = lptest.run(["node", "--input-type=module", "-e",
                        "const m = await import(%s); const r = await m.handler({body: '{\"command\":\"rotate\"}'});"
                        "console.log(r.statusCode, r.body)" % json.dumps(os.path.join(ex, "src", "admin.mjs"))])
        assert r.stdout.strip() == '202 {"accepted":"rotate"}', r.stdout


def test_serverless_service_package_is_one_artifact():
    d = lptest.tmpdir("tpl")
    write(os.path.join(d, "handler.py"), "def hello(e, c):\n    return 1\n\n\ndef bye(e, c):\n    return 2\n")
    write(os.path.join(d, "lib", "util.py"), "X = 1\n")
    write(os.path.join(d, "notes", "todo.txt"), "later\n")
    write(os.path.join(d, "keep", "deep", "a.txt"), "a\n")
    write(os.path.join(d, "keep", "deep", "b.txt"), "b\n")
    write(os.path.join(d, "serverless.yml"), """\
service: svc
provider: {name: aws, runtime: python3.12}
package:
  include: [keep/deep/a.txt]
  exclude: [notes/**, keep/**]
functions:
  hello: {handler: handler.hello, package: {patterns: ["!lib/**"]}}
  bye: {handler: handler.bye}
""")
    p = lp("pack", "--template", os.path.join(d, "serverless.yml"), "--json", os.path.join(d, "r.json"))
    assert p.returncode == 0, p.stderr
    out = os.path.join(d, ".lambdapack")
    # Not individually: one service package (function patterns do not apply), packed once.
    want = ["handler.py", "keep/", "keep/deep/", "keep/deep/a.txt", "lib/", "lib/util.py"]
    assert members(os.path.join(out, "hello.zip")) == want
    assert open(os.path.join(out, "hello.zip"), "rb").read() == open(os.path.join(out, "bye.zip"), "rb").read()
    j = json.load(open(os.path.join(d, "r.json")))
    assert {a["id"]: a["reused_from"] for a in j["artifacts"]} == {"hello": None, "bye": "hello"}
    assert {a["id"]: a["arch_from"] for a in j["artifacts"]}["hello"] == "the framework's default"


# ---- bad inputs: one line naming the file and the key, exit 1, nothing written --------


def sam(d, props, extra=""):
    write(os.path.join(d, "template.yaml"), """\
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
%s
%s""" % ("\n".join("      %s: %s" % kv for kv in props), extra))
    return os.path.join(d, "template.yaml")


def nothing_written(d):
    assert not os.path.exists(os.path.join(d, ".lambdapack")), os.listdir(d)


def test_bad_yaml_syntax_names_line():
    d = lptest.tmpdir("tpl")
    write(os.path.join(d, "app", "main.py"), "def h(e, c):\n    return 1\n")
    write(os.path.join(d, "template.yaml"), """\
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: app
      Handler: main.h
     Runtime: python3.12
""")
    one_error(lp("pack", "--template", os.path.join(d, "template.yaml")), "template.yaml:7:", "YAML syntax error",
              "[template-invalid]")
    nothing_written(d)


def test_unknown_function_id():
    d = lptest.tmpdir("tpl")
    write(os.path.join(d, "app", "main.py"), "def h(e, c):\n    return 1\n")
    t = sam(d, [("CodeUri", "app"), ("Handler", "main.h"), ("Runtime", "python3.12")])
    one_error(lp("pack", "--template", t, "--function", "Nope"), "template.yaml", "--function Nope", "it has: Fn",
              "[function-unknown]")
    nothing_written(d)


def test_codeuri_missing():
    d = lptest.tmpdir("tpl")
    t = sam(d, [("CodeUri", "src/gone/"), ("Handler", "main.h"), ("Runtime", "python3.12")])
    one_error(lp("pack", "--template", t), "template.yaml", "Resources.Fn.Properties.CodeUri", "'src/gone/' does not exist",
              "[codeuri-missing]")
    nothing_written(d)
    t = sam(d, [("Handler", "main.h"), ("Runtime", "python3.12")])
    one_error(lp("pack", "--template", t), "template.yaml:3:", "Resources.Fn.Properties.CodeUri", "[template-missing]")
    nothing_written(d)


def test_codeuri_unresolvable_intrinsic():
    d = lptest.tmpdir("tpl")
    t = sam(d, [("CodeUri", "!Ref CodeDir"), ("Handler", "main.h"), ("Runtime", "python3.12")])
    one_error(lp("pack", "--template", t), "template.yaml:5:", "Resources.Fn.Properties.CodeUri", "!Ref CodeDir",
              "[template-unresolved]")
    nothing_written(d)
    # What the template says about a function left out by --function is not this run's problem.
    write(os.path.join(d, "ok", "main.py"), "def h(e, c):\n    return 1\n")
    t = sam(d, [("CodeUri", "!Ref CodeDir"), ("Handler", "main.h"), ("Runtime", "python3.12")], """\
  Good:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: ok, Handler: main.h, Runtime: python3.12}
""")
    p = lp("pack", "--template", t, "--function", "Good")
    assert p.returncode == 0 and "error" not in p.stderr, p.stderr
    assert os.listdir(os.path.join(d, ".lambdapack")) in ([".lambdapack-out", "Good.zip"], ["Good.zip", ".lambdapack-out"])


def test_handler_missing_python_and_node():
    d = lptest.tmpdir("tpl")
    write(os.path.join(d, "app", "main.py"), "import json\n\n\ndef other(e, c):\n    return 1\n")
    t = sam(d, [("CodeUri", "app"), ("Handler", "main.handler"), ("Runtime", "python3.12")])
    one_error(lp("pack", "--template", t), "template.yaml", "Resources.Fn.Properties.Handler",
              "main.py defines no top-level 'handler'", "[handler-missing]")
    nothing_written(d)
    t = sam(d, [("CodeUri", "app"), ("Handler", "pkg.mod.handler"), ("Runtime", "python3.12")])
    one_error(lp("pack", "--template", t), "Resources.Fn.Properties.Handler", "pkg/mod.py is not in the artifact",
              "[handler-missing]")
    t = sam(d, [("CodeUri", "app"), ("Handler", "index.handler"), ("Runtime", "nodejs20.x")])
    one_error(lp("pack", "--template", t), "Resources.Fn.Properties.Handler", "index.js", "index.mjs", "index.cjs",
              "[handler-missing]")
    nothing_written(d)
    # Java is not checked: an info finding, and the zip is written.
    t = sam(d, [("CodeUri", "app"), ("Handler", "com.example.App::handle"), ("Runtime", "java21")])
    p = lp("pack", "--template", t, "--json", "-")
    assert p.returncode == 0, p.stderr
    f = json.loads(p.stdout)["artifacts"][0]["findings"]
    assert [x["code"] for x in f] == ["handler-not-checked"], f


def test_codeuri_outside_repository():
    d = lptest.tmpdir("tpl")
    write(os.path.join(d, "secret", "id_rsa.py"), "def h(e, c):\n    return 'key'\n")
    os.makedirs(os.path.join(d, "repo", ".git"))
    t = sam(os.path.join(d, "repo"), [("CodeUri", "../secret"), ("Handler", "id_rsa.h"), ("Runtime", "python3.12")])
    one_error(lp("pack", "--template", t), "template.yaml", "Resources.Fn.Properties.CodeUri", "outside the template's",
              "[codeuri-outside]")
    nothing_written(os.path.join(d, "repo"))
    # Through a symlink inside the repository: the real path decides.
    os.symlink(os.path.join(d, "secret"), os.path.join(d, "repo", "innocent"))
    t = sam(os.path.join(d, "repo"), [("CodeUri", "innocent"), ("Handler", "id_rsa.h"), ("Runtime", "python3.12")])
    one_error(lp("pack", "--template", t), "Resources.Fn.Properties.CodeUri", "[codeuri-outside]")
    nothing_written(os.path.join(d, "repo"))


def test_billion_laughs_is_refused_quickly():
    d = lptest.tmpdir("tpl")
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi"):
        lines.append("%s: &%s [%s]" % (cur, cur, ",".join(["*" + prev] * 9)))
    lines.append("Resources: *i")
    write(os.path.join(d, "template.yaml"), "\n".join(lines) + "\n")
    one_error(lp("pack", "--template", os.path.join(d, "template.yaml")), "template.yaml:", "aliases are expanded",
              "[template-invalid]")
    nothing_written(d)
    # Deep nesting and a self-referencing anchor are refused as well, not followed.
    write(os.path.join(d, "template.yaml"), "Resources: " + "[" * 5000 + "]" * 5000 + "\n")
    one_error(lp("pack", "--template", os.path.join(d, "template.yaml")), "nested deeper than 64", "[template-invalid]")
    write(os.path.join(d, "template.yaml"), "Resources: &r {Fn: *r}\n")
    one_error(lp("pack", "--template", os.path.join(d, "template.yaml")), "template.yaml:1:", "[template-invalid]")
    nothing_written(d)


def test_serverless_variable_is_not_guessed():
    d = lptest.tmpdir("tpl")
    write(os.path.join(d, "h.py"), "def go(e, c):\n    return 1\n")
    write(os.path.join(d, "serverless.yml"), """\
service: s
provider:
  name: aws
  runtime: ${self:custom.runtime}
functions:
  go: {handler: h.go}
""")
    one_error(lp("pack", "--template", os.path.join(d, "serverless.yml")), "serverless.yml:4:", "provider.runtime",
              "Serverless variable", "[template-unresolved]")
    nothing_written(d)


def test_out_dir_trust_rules():
    d = lptest.tmpdir("tpl")
    write(os.path.join(d, "app", "main.py"), "def h(e, c):\n    return 1\n")
    t = sam(d, [("CodeUri", "app"), ("Handler", "main.h"), ("Runtime", "python3.12")])
    foreign = os.path.join(d, "docs")
    write(os.path.join(foreign, "index.html"), "<p>mine</p>\n")
    p = lp("pack", "--template", t, "--out-dir", foreign)
    assert p.returncode == 1 and "not a lambdapack output directory" in p.stderr, p.stderr
    assert os.listdir(foreign) == ["index.html"]
    # A symlink is never an output directory, even to an empty one.
    e = lptest.tmpdir("tpl")
    os.makedirs(os.path.join(e, "empty"))
    os.symlink(os.path.join(e, "empty"), os.path.join(e, "link"))
    p = lp("pack", "--template", t, "--out-dir", os.path.join(e, "link"))
    assert p.returncode == 1 and "is not a directory" in p.stderr, p.stderr
    assert os.listdir(os.path.join(e, "empty")) == []
    # The default output directory sits inside the CodeUri "."; it is left out of the zip.
    t = sam(d, [("CodeUri", "."), ("Handler", "app.main.h"), ("Runtime", "python3.12")])
    for _ in range(2):
        p = lp("pack", "--template", t, "--exclude", "docs/")
        assert p.returncode == 0, p.stderr
        assert members(os.path.join(d, ".lambdapack", "Fn.zip")) == ["app/", "app/main.py", "template.yaml"]
    p = lp("pack", "--template", t, "-o", "x.zip")
    assert p.returncode == 2 and "drop -o" in p.stderr, p.stderr


def test_build_method_warning_survives_quiet():
    d = lptest.tmpdir("tpl")
    write(os.path.join(d, "src", "index.js"), "exports.handler = async () => 1;\n")
    write(os.path.join(d, "template.yaml"), """\
Resources:
  Ts:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: src, Handler: index.handler, Runtime: nodejs20.x}
    Metadata:
      BuildMethod: esbuild
""")
    p = lp("pack", "--template", os.path.join(d, "template.yaml"), "-q")
    assert p.returncode == 0, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and "warning:" in lines[0] and "template.yaml:6:" in lines[0] \
        and "[build-method]" in lines[0], p.stderr
    assert members(os.path.join(d, ".lambdapack", "Ts.zip")) == ["index.js"]


def test_json_template_with_tabs():
    d = lptest.tmpdir("tpl")
    write(os.path.join(d, "app", "main.py"), "def h(e, c):\n    return 1\n")
    write(os.path.join(d, "stack.json"), '{\n\t"Resources": {\n\t\t"Fn": {\n\t\t\t"Type": "AWS::Lambda::Function",\n'
          '\t\t\t"Properties": {"Code": "app", "Handler": "main.h", "Runtime": "python3.12",\n'
          '\t\t\t\t"Role": {"Fn::GetAtt": ["Role", "Arn"]}}}}}\n')
    p = lp("pack", "--template", os.path.join(d, "stack.json"))
    assert p.returncode == 0, p.stderr
    assert members(os.path.join(d, ".lambdapack", "Fn.zip")) == ["main.py"]


def test_single_file_codeuri_keeps_its_name():
    """A Go/Rust function: CodeUri is the built bootstrap itself; it lands at the root, executable."""
    d = lptest.tmpdir("tpl")
    write(os.path.join(d, "target", "bootstrap"), "#!/bin/sh\necho hi\n", mode=0o755)
    write(os.path.join(d, "template.yaml"), "Transform: AWS::Serverless-2016-10-31\nResources:\n  GoFn:\n"
          "    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: target/bootstrap\n"
          "      Handler: bootstrap\n      Runtime: provided.al2023\n")
    p = lp("pack", "--template", os.path.join(d, "template.yaml"))
    assert p.returncode == 0, p.stderr
    z = os.path.join(d, ".lambdapack", "GoFn.zip")
    assert members(z) == ["bootstrap"]
    with zipfile.ZipFile(z) as zf:
        assert (zf.getinfo("bootstrap").external_attr >> 16) & 0o777 == 0o755


def test_local_layer_counts_against_the_limit():
    d = lptest.tmpdir("tpl")
    write(os.path.join(d, "fn", "main.py"), "def h(e, c):\n    return 1\n")
    # Sparse: 140,000,000 bytes each, under the limit alone, over it together.
    for sub in ("fn", "layer/python"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
        with open(os.path.join(d, sub, "blob.bin"), "wb") as f:
            f.truncate(140000000)
    t = sam(d, [("CodeUri", "fn"), ("Handler", "main.h"), ("Runtime", "python3.12"), ("Layers", "[!Ref Big]")], """\
  Big:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: layer}
""")
    one_error(lp("pack", "--template", t), "template.yaml", "Resources.Fn.Properties.CodeUri: Fn:",
              "over Lambda's limit (minus its layers)", "[too-big]", code=3)
    nothing_written(d)


if __name__ == "__main__":
    lptest.main(globals())
