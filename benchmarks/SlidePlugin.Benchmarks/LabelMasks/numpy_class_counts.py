"""numpy's side of the class-statistics benchmark: np.bincount over a SIZE x SIZE uint8 mask (the same bytes as the
C# side: code = (x // 64 + y // 64) % 22), median of REPEATS. Prints JSON: counts, milliseconds."""
import json
import sys
import time

import numpy as np

size, repeats = int(sys.argv[1]), int(sys.argv[2])
y, x = np.indices((size, size), dtype=np.int32)
mask = ((x // 64 + y // 64) % 22).astype(np.uint8)
del x, y
times = []
for _ in range(repeats):
    start = time.perf_counter()
    counts = np.bincount(mask.ravel(), minlength=256)
    times.append((time.perf_counter() - start) * 1000)
print(json.dumps({"counts": counts[:22].tolist(), "ms": sorted(times)[len(times) // 2]}))
