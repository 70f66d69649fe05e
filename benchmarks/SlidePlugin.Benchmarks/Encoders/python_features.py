"""The reference feature extraction, as a TRIDENT user runs it on CPU: openslide-python read_region, PIL, then
PyTorch 1.13 (Debian) at its best CPU setting (channels-last, frozen TorchScript, inference mode, batches of 32).

Usage: python_features.py SLIDE TILES_CSV WEIGHTS_PT EXPORT_SCRIPT THREADS
TILES_CSV rows: x,y,level,width,height,tile_size (the same tiles as ours). Prints JSON: tiles, seconds, peak_rss_mib.
"""
import csv
import importlib.util
import json
import resource
import sys
import time

import numpy as np
import openslide
import torch
from PIL import Image


def main():
    path, tiles_csv, weights, export_script, threads = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    torch.set_num_threads(threads)
    spec = importlib.util.spec_from_file_location("export_encoder", export_script)
    export = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(export)
    saved = torch.load(weights)
    model, size = export.build(saved["arch"], saved["seed"])
    model.load_state_dict(saved["state"])
    model = model.eval().to(memory_format=torch.channels_last)
    with torch.inference_mode():
        frozen = torch.jit.freeze(torch.jit.trace(model, torch.zeros(32, 3, size, size).to(memory_format=torch.channels_last)))
    mean = torch.tensor(export.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(export.IMAGENET_STD).view(1, 3, 1, 1)
    with open(tiles_csv) as f:
        tiles = [tuple(int(v) for v in row) for row in csv.reader(f)]
    count = 0
    with openslide.OpenSlide(path) as slide, torch.inference_mode():
        start = time.perf_counter()
        for b in range(0, len(tiles), 32):
            batch = []
            for x, y, level, w, h, tile in tiles[b:b + 32]:
                region = slide.read_region((x, y), level, (w, h))
                rgb = Image.new("RGB", region.size, (255, 255, 255))
                rgb.paste(region, None, region)
                if (w, h) != (size, size):
                    rgb = rgb.resize((size, size), Image.LANCZOS)
                batch.append(np.asarray(rgb))
            x = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float().div_(255)
            x = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
            features = frozen(x)
            count += features.shape[0]
        seconds = time.perf_counter() - start
    print(json.dumps({"tiles": count, "seconds": seconds, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
