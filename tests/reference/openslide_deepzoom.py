"""openslide-python's DeepZoomGenerator (Debian python3-openslide) on a slide, as JSON on stdout.

Usage: openslide_deepzoom.py SLIDE TILE_SIZE OVERLAP LIMIT_BOUNDS(0|1) OUTDIR [LEVEL:COL,ROW ...]
Prints the level geometry, the .dzi and, for every tile of every level, the read_region arguments and
the tile size (get_tile_coordinates / get_tile_dimensions). The i-th LEVEL:COL,ROW tile is written to
OUTDIR/<i>.rgb as width*height*3 bytes.
"""
import json
import os
import sys

import openslide
from openslide.deepzoom import DeepZoomGenerator


def main() -> None:
    path, tile_size, overlap, limit_bounds, out = sys.argv[1:6]
    with openslide.OpenSlide(path) as slide:
        dz = DeepZoomGenerator(slide, int(tile_size), int(overlap), limit_bounds == "1")
        tiles = []
        for level in range(dz.level_count):
            columns, rows = dz.level_tiles[level]
            for row in range(rows):
                for column in range(columns):
                    (x, y), slide_level, (w, h) = dz.get_tile_coordinates(level, (column, row))
                    tw, th = dz.get_tile_dimensions(level, (column, row))
                    tiles.append([level, column, row, x, y, slide_level, w, h, tw, th])
        for i, spec in enumerate(sys.argv[6:]):
            level, _, address = spec.partition(":")
            column, row = (int(v) for v in address.split(","))
            image = dz.get_tile(int(level), (column, row))
            with open(os.path.join(out, f"{i}.rgb"), "wb") as f:
                f.write(image.convert("RGB").tobytes())
        print(json.dumps({
            "level_count": dz.level_count,
            "level_dimensions": [list(d) for d in dz.level_dimensions],
            "level_tiles": [list(t) for t in dz.level_tiles],
            "tile_count": dz.tile_count,
            "dzi": dz.get_dzi("jpeg"),
            "tiles": tiles,
        }))


if __name__ == "__main__":
    main()
