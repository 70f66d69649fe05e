"""Image decoding, encoding and resizing as Pillow (Debian python3-pil) does it, for the codec tests.

Usage:
  pil_images.py decode IMAGE OUT.raw         -> JSON {width, height, bands}; OUT.raw holds the 8-bit pixels
  pil_images.py jpeg IMAGE QUALITY OUT.jpg   -> writes IMAGE (as RGB) re-encoded as JPEG by Pillow
  pil_images.py resize IMAGE W H OUT.raw     -> Lanczos resize of IMAGE (as RGB); JSON as for decode
Bands follow Pillow's mode after conversion: L -> 1, LA -> 2, RGB -> 3, RGBA -> 4 (P and others -> RGB/RGBA).
"""
import json
import sys

from PIL import Image

BANDS = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}


def normalized(image):
    if image.mode in BANDS:
        return image
    return image.convert("RGBA" if "transparency" in image.info or image.mode.endswith("A") else "RGB")


def dump(image, out):
    with open(out, "wb") as f:
        f.write(image.tobytes())
    print(json.dumps({"width": image.width, "height": image.height, "bands": BANDS[image.mode]}))


def main():
    command = sys.argv[1]
    image = Image.open(sys.argv[2])
    if command == "decode":
        dump(normalized(image), sys.argv[3])
    elif command == "jpeg":
        image.convert("RGB").save(sys.argv[4], "JPEG", quality=int(sys.argv[3]))
    elif command == "resize":
        w, h = int(sys.argv[3]), int(sys.argv[4])
        dump(image.convert("RGB").resize((w, h), Image.LANCZOS), sys.argv[5])
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main()
