"""Pixels as openslide-python (Debian python3-openslide) reads them, written as raw RGBA files.

Usage: openslide_pixels.py SLIDE OUTDIR SPEC [SPEC ...]
SPEC is `region:x,y,level,w,h` (read_region), `associated:NAME` or `thumbnail:SIZE` (get_thumbnail((SIZE, SIZE)),
whose width and height are printed, one `W H` line per thumbnail spec). The i-th SPEC is written to
OUTDIR/<i>.rgba as width*height*4 bytes, straight alpha, rows top to bottom.
"""
import os
import sys

import openslide


def main() -> None:
    path, out = sys.argv[1], sys.argv[2]
    with openslide.OpenSlide(path) as slide:
        for i, spec in enumerate(sys.argv[3:]):
            kind, _, arg = spec.partition(":")
            if kind == "region":
                x, y, level, w, h = (int(v) for v in arg.split(","))
                image = slide.read_region((x, y), level, (w, h))
            elif kind == "thumbnail":
                image = slide.get_thumbnail((int(arg), int(arg)))
                print(image.size[0], image.size[1])
            else:
                image = slide.associated_images[arg]
            with open(os.path.join(out, f"{i}.rgba"), "wb") as f:
                f.write(image.convert("RGBA").tobytes())


if __name__ == "__main__":
    main()
