#!/usr/bin/env python3
"""PyTorch side of the A-MIL benchmark: the same workload as AttentionMilBenchmark's worker, same model definition as
the reference tests (torch_reference.AttentionMil, Ilse et al.'s code).

Usage: torch_amil.py WORKLOAD THREADS ITERATIONS   (WORKLOAD: patches | features)
Prints JSON: inference_ms, train_ms (one value per iteration), peak_rss_mib, blas_core.
"""
import json
import resource
import sys
import time

import torch

from torch_reference import AttentionMil

WORKLOADS = {
    # Ilse et al.'s gated model on a bag of 400 RGB 28x28 patches (the BreakHis bags of the seed paper).
    "patches": ({"attention": "gated", "input": "patches", "channels": 3, "patch_size": 28, "embedding_size": 500,
                 "attention_size": 128, "head": "binary", "class_count": 2}, (400, 3, 28, 28)),
    # CLAM-sized gated head on 10,000 feature vectors of 1024.
    "features": ({"attention": "gated", "input": "features", "feature_size": 1024, "embedding_size": 512,
                  "attention_size": 256, "head": "binary", "class_count": 2}, (10000, 1024)),
}


def main():
    workload, threads, iterations = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    spec, shape = WORKLOADS[workload]
    model = AttentionMil(spec)
    bag = torch.rand(shape)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4, betas=(0.9, 0.999), weight_decay=1e-4)

    def infer():
        model.eval()
        with torch.no_grad():
            model(bag)

    def train():
        model.train()
        optimizer.zero_grad()
        model.objective(bag, 1)[0].backward()
        optimizer.step()

    def timed(step):
        for _ in range(3):
            step()
        times = []
        for _ in range(iterations):
            start = time.perf_counter()
            step()
            times.append((time.perf_counter() - start) * 1000)
        return times

    inference, training = timed(infer), timed(train)
    core = "unknown"
    try:
        import ctypes
        blas = ctypes.CDLL("libopenblas.so.0")
        blas.openblas_get_corename.restype = ctypes.c_char_p
        core = blas.openblas_get_corename().decode()
    except OSError:
        pass
    print(json.dumps({"inference_ms": inference, "train_ms": training,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "blas_core": core}))


if __name__ == "__main__":
    main()
