#!/usr/bin/env bash
# Installs from Debian what SlidePlugin needs, and nothing twice.
#   packaging/install-deps.sh          run-time libraries: OpenSlide, libvips, OpenBLAS, TurboJPEG, libpng; and
#                                      Node.js and npm, which the build uses once to install the viewer's OpenSeadragon
#   packaging/install-deps.sh --test   also the test references: python3-torch, python3-openslide, TIFF tools,
#                                      python3-grpcio (Debian's /usr/bin/python3), protoc with the gRPC plugins (the
#                                      Python client's stubs), Chromium (gRPC-Web from a browser, the viewer's tests),
#                                      slurm-wlm and munge (the cohort tests start a one-node Slurm cluster)
#   packaging/install-deps.sh --bench  the test references and OpenCV (python3-opencv), which the analysis
#                                      benchmark's reference pipeline uses for CLAM's tissue step
# Idempotent: `apt-get update` runs only when a package is missing. Needs root or sudo for installs.
set -euo pipefail

with_tests=false
with_bench=false
for arg in "$@"; do
    case "$arg" in
        --test) with_tests=true ;;
        --bench) with_tests=true; with_bench=true ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "install-deps: unknown argument '$arg' (use --test, --bench or --help)" >&2; exit 2 ;;
    esac
done

runtime_packages=(libopenslide0 libvips42 libopenblas0 libturbojpeg0 libpng16-16)
# python3-tifffile, libtiff-tools (tiffcp) and libopenjp2-tools (opj_compress) make the TIFF and Aperio JPEG 2000 test slides.
test_packages=(python3-openslide python3-grpcio python3-numpy python3-tifffile libtiff-tools libopenjp2-tools protobuf-compiler protobuf-compiler-grpc)
# torch pulls in a compiler tool chain and CUDA stubs through its recommends, chromium a desktop, slurm-wlm a
# database server for accounting: install them lean.
test_packages_lean=(python3-torch chromium slurm-wlm munge)

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
    sudo_cmd=(sudo)
fi

is_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing_of() {
    local pkg
    for pkg in "$@"; do is_installed "$pkg" || printf '%s\n' "$pkg"; done
}

updated=false
apt_install() {  # apt_install [apt options...] -- packages...
    local options=() packages=()
    while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do options+=("$1"); shift; done
    shift
    mapfile -t packages < <(missing_of "$@")
    [ "${#packages[@]}" -eq 0 ] && return 0
    if [ "$updated" = false ]; then
        echo "install-deps: apt-get update (missing: ${packages[*]})"
        "${sudo_cmd[@]}" apt-get update -qq
        updated=true
    fi
    echo "install-deps: installing ${packages[*]}"
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${options[@]}" "${packages[@]}" >/dev/null
}

command -v dotnet >/dev/null || echo "install-deps: warning: the .NET 10 SDK (dotnet) is not on PATH; see README" >&2

apt_install -- "${runtime_packages[@]}"
# The build embeds the viewer (viewer/), whose OpenSeadragon npm installs from viewer/package-lock.json.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt_install -- nodejs npm
fi
if [ "$with_tests" = true ]; then
    apt_install -- "${test_packages[@]}"
    apt_install --no-install-recommends -- "${test_packages_lean[@]}"
fi
if [ "$with_bench" = true ]; then
    apt_install --no-install-recommends -- python3-opencv
fi
echo "install-deps: ok"
