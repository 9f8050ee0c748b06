"""Benchmark: evaluate.mean_average_precision against a plain per-query DeepHash-style loop.

    .venv/bin/python bench/bench_map.py                               # 5,000 x 100,000 x 64 bits
    .venv/bin/python bench/bench_map.py --n_query=200 --n_db=20000    # quick check

Random +1/-1 codes and single-label one-hot labels (seeded). Prints both times, both MAP@topk
values and the speed-up; exits non-zero if the two values differ by 1e-9 or more.
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import evaluate  # noqa: E402
import utils  # noqa: E402

# ---- config ------------------------------------------------------------------------------------
n_query = 5000       # queries (DeepHash ImageNet-100 test split size)
n_db = 100000        # database items (ImageNet-100 database: 128,503)
bits = 64            # code length
classes = 100        # single-label classes
topk = 1000          # MAP@1000 (SPEC D19)
seed = 0
# ------------------------------------------------------------------------------------------------


def reference_map(q_codes, db_codes, q_labels, db_labels, k):
    """One query at a time, as DeepHash CalcTopMap, with a stable argsort."""
    n_bits = q_codes.shape[1]
    total = 0.0
    for i in range(len(q_codes)):
        gnd = (q_labels[i] @ db_labels.T > 0).astype(np.float64)
        hamm = 0.5 * (n_bits - q_codes[i] @ db_codes.T)
        tgnd = gnd[np.argsort(hamm, kind='stable')][:k]
        r = int(tgnd.sum())
        if r == 0:
            continue
        rank = np.flatnonzero(tgnd) + 1.0
        total += np.mean(np.arange(1, r + 1) / rank)
    return total / len(q_codes)


if __name__ == '__main__':
    utils.configure(globals(), show=False)
    rng = np.random.default_rng(seed)
    q_codes = rng.choice(np.array([-1, 1], np.int8), size=(n_query, bits))
    db_codes = rng.choice(np.array([-1, 1], np.int8), size=(n_db, bits))
    eye = np.eye(classes, dtype=np.uint8)
    q_labels = eye[rng.integers(0, classes, n_query)]
    db_labels = eye[rng.integers(0, classes, n_db)]
    print(f"{n_query} queries x {n_db} database x {bits} bits, {classes} classes, MAP@{topk}")

    t0 = time.perf_counter()
    fast = evaluate.mean_average_precision(q_codes, db_codes, q_labels, db_labels, topk)
    t_fast = time.perf_counter() - t0

    t0 = time.perf_counter()
    # the loop gets the float arrays DeepHash would have (codes from torch.sign, labels from the lists)
    slow = reference_map(q_codes.astype(np.float32), db_codes.astype(np.float32),
                         q_labels.astype(np.float32), db_labels.astype(np.float32), topk)
    t_slow = time.perf_counter() - t0

    diff = abs(fast - slow)
    print(f"evaluate: {t_fast:.2f} s  MAP={fast:.12f} | loop: {t_slow:.2f} s  MAP={slow:.12f} | "
          f"speed-up x{t_slow / t_fast:.1f} | |diff|={diff:.1e}")
    if not diff < 1e-9:
        sys.exit("FAIL: values differ")
