#!/usr/bin/env bash
# Generates the Python stubs of the contract into OUT (default clients/python/generated) with Debian's protoc 3.21
# and gRPC plugin (packages protobuf-compiler, protobuf-compiler-grpc). Debian 12's python3-grpc-tools (1.14) cannot
# be used: it rejects proto3 `optional`, which the contract uses.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${1:-$here/generated}"
googleapis="$("$repo/clients/googleapis-path.sh")"
command -v protoc >/dev/null || { echo "generate: protoc is missing: apt install protobuf-compiler protobuf-compiler-grpc" >&2; exit 1; }
plugin="$(command -v grpc_python_plugin || true)"
[ -n "$plugin" ] || { echo "generate: grpc_python_plugin is missing: apt install protobuf-compiler-grpc" >&2; exit 1; }
mkdir -p "$out"
protoc -I "$repo/proto" -I "$googleapis" --python_out="$out" --grpc_python_out="$out" --plugin=protoc-gen-grpc_python="$plugin" \
    "$repo"/proto/slideplugin/v1/*.proto google/api/annotations.proto google/api/http.proto google/api/httpbody.proto
echo "$out"
