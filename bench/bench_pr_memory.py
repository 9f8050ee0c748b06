"""Peak memory of evaluate.pr_curve at paper scale (5,000 queries x 128,503 database, 64 bits).

    .venv/bin/python bench/bench_pr_memory.py
    .venv/bin/python bench/bench_pr_memory.py --multi_label=True   # ~half the database relevant

Peak is measured with tracemalloc (NumPy reports its buffers to it) around the call, and compared
with the 2 x queries x database float64 matrices of DeepHash's CalcTopMapWithPR (about 10.3 GB).
"""
import os
import sys
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import evaluate  # noqa: E402
import utils  # noqa: E402

n_query = 5000        # DeepHash ImageNet-100 queries
n_db = 128503         # ImageNet-100 database (thuml/HashNet lists)
bits = 64
classes = 100
multi_label = False   # True: 2 random positive labels of 4 classes, so about half the pairs relevant
topk = 1000
seed = 0

if __name__ == '__main__':
    utils.configure(globals())
    rng = np.random.default_rng(seed)
    q = rng.choice(np.array([-1, 1], dtype=np.int8), (n_query, bits))
    db = rng.choice(np.array([-1, 1], dtype=np.int8), (n_db, bits))
    if multi_label:
        def labels(n):
            out = np.zeros((n, 4), dtype=np.uint8)
            for _ in range(2):
                out[np.arange(n), rng.integers(0, 4, n)] = 1
            return out
        ql, dbl = labels(n_query), labels(n_db)
    else:
        ql = np.eye(classes, dtype=np.uint8)[rng.integers(0, classes, n_query)]
        dbl = np.eye(classes, dtype=np.uint8)[rng.integers(0, classes, n_db)]
    tracemalloc.start()
    t0 = time.time()
    curve = evaluate.pr_curve(q, db, ql, dbl, topk)
    seconds = time.time() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    naive = 2 * n_query * n_db * 8
    print(f"pr_curve {n_query} x {n_db} x {bits} bits ({'multi' if multi_label else 'single'}-label): "
          f"peak {peak / 2**20:.0f} MiB in {seconds:.1f} s, {curve['n_used']} queries used; "
          f"DeepHash's two float64 matrices: {naive / 2**30:.1f} GiB (ratio x{naive / peak:.0f})")
