"""The reference loop: openslide-python read_region + PIL JPEG encode over a list of tiles, one thread.

Usage: python_tile_loop.py SLIDE TILES_CSV QUALITY
TILES_CSV rows: x,y,level,width,height,tile_size (read width x height at level, resize to tile_size when
they differ). Prints JSON: tiles, seconds, bytes, peak_rss_mib.
"""
import csv
import io
import json
import resource
import sys
import time

import openslide
from PIL import Image


def main() -> None:
    path, tiles_csv, quality = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(tiles_csv) as f:
        tiles = [tuple(int(v) for v in row) for row in csv.reader(f)]
    total = 0
    with openslide.OpenSlide(path) as slide:
        start = time.perf_counter()
        for x, y, level, w, h, size in tiles:
            region = slide.read_region((x, y), level, (w, h))
            rgb = Image.new("RGB", region.size, (255, 255, 255))
            rgb.paste(region, None, region)
            if (w, h) != (size, size):
                rgb = rgb.resize((size, size), Image.LANCZOS)
            out = io.BytesIO()
            rgb.save(out, format="JPEG", quality=quality)
            total += out.tell()
        seconds = time.perf_counter() - start
    print(json.dumps({
        "tiles": len(tiles),
        "seconds": seconds,
        "bytes": total,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
