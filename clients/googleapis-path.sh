#!/usr/bin/env bash
# Prints the folder that holds google/api/{annotations,http,httpbody}.proto, which the contract imports for its
# HTTP/JSON routes: $SLIDEPLUGIN_GOOGLEAPIS when set, else the copy `dotnet restore` of this repository put in the
# NuGet cache (package Google.Api.CommonProtos, at the version Directory.Packages.props names).
set -euo pipefail
if [ -n "${SLIDEPLUGIN_GOOGLEAPIS:-}" ]; then
    echo "$SLIDEPLUGIN_GOOGLEAPIS"
    exit 0
fi
repo="$(cd "$(dirname "$0")/.." && pwd)"
version="$(sed -n 's/.*Include="Google.Api.CommonProtos" Version="\([^"]*\)".*/\1/p' "$repo/Directory.Packages.props")"
packages="${NUGET_PACKAGES:-$HOME/.nuget/packages}"
folder="$packages/google.api.commonprotos/$version/content/protos"
if [ ! -f "$folder/google/api/annotations.proto" ]; then
    echo "googleapis-path: $folder/google/api/annotations.proto is missing: run 'dotnet restore' in $repo, or set SLIDEPLUGIN_GOOGLEAPIS to a googleapis checkout" >&2
    exit 1
fi
echo "$folder"
