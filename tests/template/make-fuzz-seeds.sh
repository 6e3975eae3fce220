#!/bin/sh
# SPDX-License-Identifier: MIT
# Seeds for fuzz_template: the samples' templates and a few shapes they lack
# (long-form intrinsics, merge keys, include/exclude, an alias bomb, flow style).
#   tests/template/make-fuzz-seeds.sh OUT_DIR
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: make-fuzz-seeds.sh OUT_DIR}
mkdir -p "$out"
cp "$src/samples/sam-app/template.yaml" "$out/sam-app.yaml"
cp "$src/samples/serverless-app/serverless.yml" "$out/serverless-app.yml"
cat >"$out/long-form.json" <<'EOT'
{"Resources": {"F": {"Type": "AWS::Lambda::Function", "Properties": {"Code": {"Fn::Sub": "${D}/x"},
 "Handler": "a.b.c", "Runtime": "python3.12", "Architectures": ["arm64"],
 "Layers": [{"Ref": "L"}, "arn:aws:lambda:us-east-1:1:layer:x:1"]}},
 "L": {"Type": "AWS::Lambda::LayerVersion", "Properties": {"Content": "layer/", "CompatibleRuntimes": ["python3.12"]}},
 "G": {"Type": "AWS::Lambda::Function", "Properties": {"Code": {"ZipFile": "def h(e,c): pass"}}},
 "S3": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": {"Bucket": "b", "Key": "k"}}}}}
EOT
cat >"$out/merge-keys.yaml" <<'EOT'
x-base: &base {runtime: python3.11, architecture: arm64}
service: m
provider: {name: aws, <<: *base}
package: {include: [keep/**], exclude: ["**/*.md", tests/**], individually: yes}
functions:
  a: {handler: pkg/mod.fn, package: {patterns: ["!x/**", "x/y/z.py"]}, layers: [{Ref: DepsLambdaLayer}, "${self:custom.l}"]}
  b: {<<: *base, handler: "index.handler", runtime: nodejs20.x, image: false}
  "../evil": {handler: a.b}
layers:
  deps: {path: ./deps/, compatibleRuntimes: [python3.11], package: {patterns: ["!**/__pycache__/**"]}}
EOT
cat >"$out/globals.yaml" <<'EOT'
Transform: AWS::Serverless-2016-10-31
Globals:
  Function: {Runtime: nodejs20.x, Handler: index.handler, CodeUri: src/, Layers: [!Ref Shared]}
Conditions: {C: !Equals [a, !Select [0, !Split [",", !ImportValue v]]]}
Resources:
  A: {Type: AWS::Serverless::Function, Properties: {Architectures: !If [C, [arm64], [x86_64]]}}
  B: {Type: AWS::Serverless::Function, Properties: {Handler: !Sub "${AWS::Region}.h", Runtime: python9}}
  Img: {Type: AWS::Serverless::Function, Properties: {PackageType: Image}, Metadata: {DockerContext: ., Dockerfile: Dockerfile}}
  Shared: {Type: AWS::Serverless::LayerVersion, Properties: {ContentUri: !GetAtt X.Y, CompatibleArchitectures: [arm64]}}
EOT
printf 'a: &a [x,x,x,x]\nb: &b [*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b]\nResources: *c\n' >"$out/aliases.yaml"
printf 'Resources: {F: {Type: AWS::Serverless::Function, Properties: {CodeUri: "a\\0b", Handler: !!str x.y, Runtime: java21}}}\n' >"$out/nul.yaml"
