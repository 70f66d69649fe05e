#!/usr/bin/env python3
"""The analysis pipeline as users write it today: openslide-python reads each tissue tile, PIL resizes when needed,
PyTorch (Ilse et al.'s model, torch_reference.AttentionMil) scores batches, softmax and pooling at the end.

Usage: torch_analyze.py SLIDE TILES.csv WEIGHTS.safetensors CARD.json THREADS BATCH [TISSUE_DOWNSAMPLE]

TILES.csv rows: x,y,level,read_width,read_height,patch_size (the same tiles our analyzer scores). The model runs on
the card's normalisation. With TISSUE_DOWNSAMPLE, it first finds tissue as CLAM does, with OpenCV, on a view of
the slide that many level-0 pixels a pixel (the view our detector uses): best level read whole, linear resize, HSV
saturation, median 7, threshold 20, close 4x4, contours. That mask only costs time (its tissue fraction is
reported): the tiles scored are still TILES.csv, so that both sides score the same tiles and the numbers can be
compared. Prints JSON: tiles, seconds (tiles and model), tissue_seconds, tissue_fraction, read_seconds,
model_seconds, tiles_per_second (tiles / (tissue_seconds + seconds)), peak_rss_mib, probabilities, attention
(first 50, for a numbers check).
"""
import json
import resource
import sys
import time

import numpy as np
import openslide
import torch
from PIL import Image

from torch_reference import AttentionMil, load_safetensors


def tissue_fraction(slide, downsample):
    """CLAM's segmentTissue (saturation, median blur 7, threshold 20, close 4x4, contours) with OpenCV, as CLAM runs it."""
    import cv2  # Debian python3-opencv: packaging/install-deps.sh --bench

    level = slide.get_best_level_for_downsample(downsample)
    region = slide.read_region((0, 0), level, slide.level_dimensions[level])
    rgb = Image.new("RGB", region.size, (255, 255, 255))
    rgb.paste(region, mask=region.split()[3])
    image = np.asarray(rgb)
    width, height = slide.dimensions
    size = (max(1, round(width / downsample)), max(1, round(height / downsample)))
    if size[0] < image.shape[1] and size[1] < image.shape[0]:
        image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    saturation = cv2.medianBlur(cv2.cvtColor(image, cv2.COLOR_RGB2HSV)[:, :, 1], 7)
    _, mask = cv2.threshold(saturation, 20, 255, cv2.THRESH_BINARY)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((4, 4), np.uint8))
    cv2.findContours(mask, cv2.RETR_TREE, cv2.CHAIN_APPROX_NONE)
    return float(mask.mean() / 255)


def main():
    slide_path, tiles_csv, weights_path, card_path, threads, batch = sys.argv[1:7]
    tissue_downsample = float(sys.argv[7]) if len(sys.argv) > 7 else None
    threads, batch = int(threads), int(batch)
    torch.set_num_threads(threads)
    card = json.load(open(card_path))
    weights, _ = load_safetensors(weights_path)
    model = AttentionMil(card["spec"])
    model.load_state_dict(weights, strict=True)
    model.eval()
    mean = np.array(card["input_mean"], dtype=np.float32)
    std = np.array(card["input_std"], dtype=np.float32)
    rows = [tuple(int(v) for v in line.split(",")) for line in open(tiles_csv) if line.strip()]

    slide = openslide.OpenSlide(slide_path)
    background = "#" + slide.properties.get(openslide.PROPERTY_NAME_BACKGROUND_COLOR, "ffffff")
    start = time.perf_counter()
    fraction = tissue_fraction(slide, tissue_downsample) if tissue_downsample else None
    tissue_seconds = time.perf_counter() - start
    start = time.perf_counter()
    read_seconds = model_seconds = 0.0
    embeddings, scores = [], []
    with torch.no_grad():
        for first in range(0, len(rows), batch):
            t0 = time.perf_counter()
            patches = []
            for x, y, level, w, h, patch in rows[first:first + batch]:
                region = slide.read_region((x, y), level, (w, h))
                rgb = Image.new("RGB", region.size, background)
                rgb.paste(region, mask=region.split()[3])
                if (w, h) != (patch, patch):
                    rgb = rgb.resize((patch, patch), Image.LANCZOS)
                patches.append(np.asarray(rgb, dtype=np.float32))
            x = (np.stack(patches) / 255.0 - mean) / std
            bag = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32))
            t1 = time.perf_counter()
            H = model.feature_extractor_part2(model.feature_extractor_part1(bag).view(-1, model.flat))
            A = model.attention_weights(model.attention_V(H) * model.attention_U(H)) if model.gated else model.attention(H)
            embeddings.append(H)
            scores.append(A[:, 0])
            t2 = time.perf_counter()
            read_seconds += t1 - t0
            model_seconds += t2 - t1
        t0 = time.perf_counter()
        a = torch.softmax(torch.cat(scores), dim=0)
        M = a[None, :] @ torch.cat(embeddings)
        out = model.classifier(M)
        probabilities = [1 - float(out[0, 0]), float(out[0, 0])] if model.binary else torch.softmax(out, 1)[0].tolist()
        model_seconds += time.perf_counter() - t0
    seconds = time.perf_counter() - start
    print(json.dumps({
        "tiles": len(rows),
        "seconds": seconds,
        "tissue_seconds": tissue_seconds,
        "tissue_fraction": fraction,
        "read_seconds": read_seconds,
        "model_seconds": model_seconds,
        "tiles_per_second": len(rows) / (tissue_seconds + seconds),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "probabilities": probabilities,
        "attention": a[:50].tolist(),
    }))


if __name__ == "__main__":
    main()
