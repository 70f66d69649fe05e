"""What openslide-python (Debian python3-openslide) reports about a slide, as JSON on stdout.

Usage: openslide_metadata.py SLIDE
On a slide OpenSlide cannot open, prints {"error": "<OpenSlide's message>"} and exits 0, so the
caller can compare error messages too.
"""
import json
import sys

import openslide
from openslide import lowlevel


def main() -> None:
    path = sys.argv[1]
    try:
        slide = openslide.OpenSlide(path)
    except (openslide.OpenSlideError, openslide.OpenSlideUnsupportedFormatError) as e:
        print(json.dumps({"error": str(e)}))
        return
    with slide:
        print(json.dumps({
            "vendor": openslide.OpenSlide.detect_format(path),
            "level_count": slide.level_count,
            "level_dimensions": [list(d) for d in slide.level_dimensions],
            "level_downsamples": list(slide.level_downsamples),
            "properties": dict(slide.properties),
            # Sizes from the low-level call: reading the pixels would fail on slides whose image data is corrupt.
            "associated_images": {
                name: list(lowlevel.get_associated_image_dimensions(slide._osr, name))
                for name in lowlevel.get_associated_image_names(slide._osr)
            },
            "best_level_for_downsample": {str(d): slide.get_best_level_for_downsample(d) for d in (1, 2, 3.9, 4, 8, 100)},
        }))


if __name__ == "__main__":
    main()
