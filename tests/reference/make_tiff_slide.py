#!/usr/bin/python3
"""Writes a small synthetic whole-slide image as an Aperio SVS or a generic tiled TIFF, with the tiles
compressed as asked, so tests can compare our reads with openslide-python pixel for pixel.

    make_tiff_slide.py OUT.svs --compression {jpeg,jpeg-rgb,lzw,deflate,none,j2k-ycbcr,j2k-rgb}
                       [--width 2000 --height 1500 --tile 256 --levels 2 --format aperio|generic] [--strips]

Run with Debian's /usr/bin/python3. Needs python3-numpy, python3-tifffile, libtiff-tools (tiffcp: JPEG,
LZW, Deflate) and libopenjp2-tools (opj_compress: J2K). Output is deterministic for given arguments.

Layout (as Aperio writes it): page 0 = level 0; for --format aperio page 1 = a stripped thumbnail (1/8
size, never the size of a level); then the tiled levels, each 1/4 of the previous (floor).

Keep every level at least one tile wide and high for lzw, deflate and none: OpenSlide 3.4.1 reads those
through libtiff's TIFFRGBAImage, and with Debian 12's libtiff 4.5 a level smaller than a tile comes back
shifted down by (tile - height) rows under transparent ones (JPEG and J2K take other paths and are fine).
"""
import argparse
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import tifffile

# Aperio's proprietary JPEG 2000 tile codes: one raw J2K codestream per tile, no TIFF codec knows them.
J2K_CODES = {"j2k-ycbcr": 33003, "j2k-rgb": 33005}
# tiffcp's -c argument for the codecs libtiff writes itself. tiffcp -c jpeg turns RGB into
# Photometric YCbCr with 2x2 subsampling and shared JPEGTables, which is how Aperio writes JPEG;
# ":r" keeps Photometric RGB, so the JPEG components are R, G, B (OpenSlide decodes them as JCS_RGB).
TIFFCP_CODECS = {"jpeg": "jpeg:90", "jpeg-rgb": "jpeg:r:90", "lzw": "lzw", "deflate": "zip"}
# The compression word in the Aperio description; OpenSlide does not read it, it is for humans.
APERIO_WORDS = {"jpeg": "JPEG/RGB Q=90", "jpeg-rgb": "JPEG/RGB Q=90", "lzw": "LZW", "deflate": "ZIP",
                "none": "RAW", "j2k-ycbcr": "J2K/YUV16 Q=100", "j2k-rgb": "J2K/KDU Q=100"}
MPP = 0.499


def synthetic_rgb(width, height, seed=1):
    """Pure white glass (exactly 255) with three irregular pink tissue blobs: blocky stain-density
    texture, fine noise and purple nuclei, so tissue detection finds tissue and white stays white."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    tissue = np.zeros((height, width), bool)
    for cx, cy, rx, ry in ((0.30, 0.35, 0.18, 0.22), (0.68, 0.60, 0.20, 0.16), (0.45, 0.85, 0.12, 0.07)):
        angle = np.arctan2(yy - cy * height, xx - cx * width)
        wobble = 1 + 0.12 * np.sin(5 * angle + 10 * cx) + 0.06 * np.sin(11 * angle)  # ragged outline
        tissue |= ((xx - cx * width) / (rx * width)) ** 2 + ((yy - cy * height) / (ry * height)) ** 2 < wobble ** 2
    img = np.empty((height, width, 3), np.float32)
    img[:] = (236, 160, 200)  # eosin pink
    block = 32  # stain density varies in 32 px blocks, plus per-pixel grain
    density = rng.uniform(-30, 30, (height // block + 1, width // block + 1)).astype(np.float32)
    img += np.kron(density, np.ones((block, block), np.float32))[:height, :width, None]
    img += rng.normal(0, 8, (height, width, 3)).astype(np.float32)
    cell = 24  # at most one haematoxylin nucleus (a dark purple disc) per 24 px cell
    rows, cols = height // cell + 1, width // cell + 1
    centre = rng.uniform(6, cell - 6, (rows, cols, 2)).astype(np.float32)
    radius = np.where(rng.random((rows, cols)) < 0.5, rng.uniform(3, 7, (rows, cols)), 0).astype(np.float32)
    iy, ix = yy.astype(int) // cell, xx.astype(int) // cell
    dist = np.hypot(yy - iy * cell - centre[iy, ix, 0], xx - ix * cell - centre[iy, ix, 1])
    img[dist < radius[iy, ix]] = (110, 60, 150)
    img = np.clip(np.rint(img), 0, 254)  # tissue never pure white
    img[~tissue] = 255
    return img.astype(np.uint8)


def downsample(img, factor):
    """Box filter, floor size (white stays exactly 255)."""
    h, w = max(1, img.shape[0] // factor), max(1, img.shape[1] // factor)
    if img.shape[0] < factor or img.shape[1] < factor:
        return img[::factor, ::factor][:h, :w].copy()
    blocks = img[:h * factor, :w * factor].reshape(h, factor, w, factor, 3).astype(np.float32)
    return np.rint(blocks.mean(axis=(1, 3))).astype(np.uint8)


def tiles(img, tile):
    """Row-major tiles, edge tiles padded by repeating the last row/column (like a scanner's overscan)."""
    h, w = img.shape[:2]
    padded = np.pad(img, ((0, -h % tile), (0, -w % tile), (0, 0)), mode="edge")
    for y in range(0, padded.shape[0], tile):
        for x in range(0, padded.shape[1], tile):
            yield padded[y:y + tile, x:x + tile]


def j2k_tile(rgb, code, workdir, index):
    """One raw J2K codestream (no JP2 box), lossless 5/3 wavelet, no multi-component transform.
    33005: components R, G, B. 33003: components Y, Cb, Cr (JPEG/JFIF full-range BT.601) with Cb and
    Cr halved horizontally, as Aperio's encoder writes them and OpenSlide's fast path expects."""
    t = rgb.shape[0]
    if code == 33005:
        planes, layout = [rgb[..., c] for c in range(3)], f"{t},{t},3,8,u@1x1:1x1:1x1"
    else:
        r, g, b = (rgb[..., c].astype(np.float32) for c in range(3))
        y = 0.299 * r + 0.587 * g + 0.114 * b
        cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
        cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
        cb, cr = ((c[:, 0::2] + c[:, 1::2]) / 2 for c in (cb, cr))  # 4:2:2: average horizontal pairs
        planes = [np.clip(np.rint(p), 0, 255).astype(np.uint8) for p in (y, cb, cr)]
        layout = f"{t},{t},3,8,u@1x1:2x1:2x1"
    raw, j2k = os.path.join(workdir, f"{index}.raw"), os.path.join(workdir, f"{index}.j2k")
    with open(raw, "wb") as f:
        for p in planes:
            f.write(np.ascontiguousarray(p).tobytes())
    done = subprocess.run(["opj_compress", "-i", raw, "-o", j2k, "-F", layout, "-mct", "0"], capture_output=True)
    if done.returncode:  # it chats on both streams; show them only when it fails
        sys.exit(f"opj_compress failed:\n{done.stdout.decode()}{done.stderr.decode()}")
    with open(j2k, "rb") as f:
        return f.read()


def move_last_ifd_to_second(path):
    """Relinks a little-endian classic TIFF's directory chain from 0, 1, ..., n to 0, n, 1, ..., n-1."""
    with open(path, "r+b") as f:
        header = f.read(8)
        assert header[:4] == b"II*\0", "expects a little-endian classic TIFF"
        ifds, offset = [], struct.unpack("<I", header[4:])[0]
        while offset:
            ifds.append(offset)
            f.seek(offset)
            f.seek(offset + 2 + 12 * struct.unpack("<H", f.read(2))[0])  # entry count, entries, next
            offset = struct.unpack("<I", f.read(4))[0]
        order = [ifds[0], ifds[-1], *ifds[1:-1]]
        for ifd, nxt in zip(order, order[1:] + [0]):
            f.seek(ifd)
            f.seek(ifd + 2 + 12 * struct.unpack("<H", f.read(2))[0])
            f.write(struct.pack("<I", nxt))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--compression", required=True, choices=sorted(TIFFCP_CODECS.keys() | J2K_CODES.keys() | {"none"}))
    p.add_argument("--width", type=int, default=2000)
    p.add_argument("--height", type=int, default=1500)
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--levels", type=int, default=2)
    p.add_argument("--format", choices=("aperio", "generic"), default="aperio")
    p.add_argument("--strips", action="store_true", help="store pages in strips, not tiles (a TIFF OpenSlide cannot open)")
    a = p.parse_args()
    if a.format == "generic" and a.compression in J2K_CODES:
        p.error("J2K tiles (33003/33005) are Aperio-only: use --format aperio")
    if a.tile % 16:
        p.error("--tile must be a multiple of 16 (TIFF tiles; JPEG MCUs)")

    levels = [synthetic_rgb(a.width, a.height)]
    for _ in range(1, a.levels):
        levels.append(downsample(levels[-1], 4))
    if a.compression in ("lzw", "deflate", "none") and min(levels[-1].shape[:2]) < a.tile:
        print(f"warning: a level is smaller than a {a.tile} px tile; OpenSlide 3.4.1 misreads it (see --help)",
              file=sys.stderr)
    head = f"Aperio Image Library v10.0.50\r\n{a.width}x{a.height} [0,0 {a.width}x{a.height}] ({a.tile}x{a.tile})"
    meta = f"|AppMag = 20|MPP = {MPP}"

    code = J2K_CODES.get(a.compression)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(a.out))) as work:
        # libtiff codecs: write uncompressed here, then let tiffcp (libtiff itself) compress every page.
        first = os.path.join(work, "raw.tif") if a.compression in TIFFCP_CODECS else a.out
        with tifffile.TiffWriter(first) as tw:
            for i, img in enumerate(levels):
                h, w = img.shape[:2]
                kw = dict(rowsperstrip=16) if a.strips else dict(tile=(a.tile, a.tile))
                kw.update(photometric="rgb", metadata=None)
                if a.format == "aperio":
                    kw["description"] = f"{head}{f' -> {w}x{h}' if i else ''} {APERIO_WORDS[a.compression]}{meta}"
                else:  # generic-tiff counts later pages as levels only when marked reduced-resolution
                    kw.update(subfiletype=1 if i else 0, resolution=(1e4 / MPP, 1e4 / MPP), resolutionunit="CENTIMETER")
                if code:  # pre-encoded tiles, written as stored; the Compression tag is patched below
                    data = [j2k_tile(t, code, work, n) for n, t in enumerate(tiles(img, a.tile))]
                    tw.write(iter(data), shape=img.shape, dtype="uint8", **kw)
                else:
                    tw.write(img, **kw)
        if code:  # tifffile cannot encode 33003/33005 without imagecodecs (not in Debian 12)
            with tifffile.TiffFile(a.out, mode="r+b") as tf:
                for page in tf.pages:
                    page.tags["Compression"].overwrite(code)
        elif first != a.out:
            subprocess.run(["tiffcp", "-c", TIFFCP_CODECS[a.compression], first, a.out], check=True)
    if a.format == "aperio":
        # tiffcp tiles every page like the first one, and OpenSlide's aperio driver takes every tiled
        # page for a level, so the (stripped, uncompressed) thumbnail is appended afterwards and then
        # linked in as directory 1, where Aperio puts it and OpenSlide looks for it.
        thumb = downsample(levels[0], 8)
        with tifffile.TiffWriter(a.out, append=True) as tw:
            tw.write(thumb, photometric="rgb", metadata=None, rowsperstrip=16,
                     description=f"{head} -> {thumb.shape[1]}x{thumb.shape[0]} - {meta}")
        move_last_ifd_to_second(a.out)


if __name__ == "__main__":
    main()
