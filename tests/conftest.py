"""Shared fixtures: a tiny on-disk image dataset in the DeepHash list format."""
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

TINY_IMAGENET = os.path.join(ROOT, '..', 'shared', 'data', 'tiny-imagenet-10')


def make_image_lists(folder, classes=4, per_class=(6, 3, 10), size=16, seed=0):
    """Write images/ and train/test/database lists: class c is a bright block in quadrant c."""
    from PIL import Image
    import utils
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(folder, 'images'), exist_ok=True)
    rows = {'train': [], 'test': [], 'database': []}
    n_train, n_test, n_db = per_class
    for c in range(classes):
        for i in range(n_test + n_db):
            img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            h = size // 2
            y0, x0 = (c // 2 % 2) * h, (c % 2) * h
            img[y0:y0 + h, x0:x0 + h, c % 3] = 200 + rng.integers(0, 55)
            rel = f"images/c{c}_{i}.png"
            Image.fromarray(img).save(os.path.join(folder, rel))
            label = np.eye(classes, dtype=np.uint8)[c]
            if i < n_test:
                rows['test'].append((rel, label))
            else:
                rows['database'].append((rel, label))
                if i - n_test < n_train:
                    rows['train'].append((rel, label))
    for split, items in rows.items():
        utils.write_list(os.path.join(folder, f"{split}.txt"), [r for r, _ in items],
                         np.array([l for _, l in items]))
    return folder


@pytest.fixture
def image_lists(tmp_path):
    return make_image_lists(str(tmp_path / 'data'))
