"""CIFAR-10 as PNG files + DeepHash lists, with DeepHash's "cifar10-1" protocol.

The 60,000 images of both CIFAR-10 batches are pooled; per class a seeded draw gives 100 queries
and 500 training images; the database is every image that is not a query (59,000, training images
included). Totals: test 1,000 / train 5,000 / database 59,000, 10 classes.

Reads the python version of CIFAR-10 (`cifar-10-batches-py`, as torchvision and the CIFAR page ship
it) from cifar_root. With --download=True, torchvision fetches it there first (needs internet).

    python data/prepare_cifar10.py --cifar_root=/data/cifar10          # has cifar-10-batches-py/
    python data/prepare_cifar10.py --download=True                      # into data/cifar10/raw

Writes out_dir/images/<cc>_<class>/<nnnnn>.png (lossless; nnnnn = position in the pooled set:
0-49999 the training batches in order, 50000-59999 the test batch), train.txt, test.txt,
database.txt, classes.txt and prepare.json. A rerun with the same config and inputs skips.
"""
import os
import pickle
import shutil
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import utils  # noqa: E402
from data import common  # noqa: E402

# ------------------------------------------------------------------------------------------------
# config (override with preset files or --key=value)
cifar_root = 'data/cifar10/raw'  # folder that holds cifar-10-batches-py/
out_dir = 'data/cifar10'         # images/ and the lists go here
download = False                 # let torchvision download CIFAR-10 into cifar_root (needs internet)
seed = 0                         # seed of the per-class split
train_per_class = 500            # DeepHash cifar10-1: 500 training images per class
test_per_class = 100             # DeepHash cifar10-1: 100 queries per class; database = all the rest
check_counts = True              # require the full 60,000 images (10 x 6,000); False for small copies
force = False                    # rebuild even if prepare.json says the folder is up to date
# ------------------------------------------------------------------------------------------------

FORMAT_VERSION = 1
BATCHES = ['data_batch_1', 'data_batch_2', 'data_batch_3', 'data_batch_4', 'data_batch_5',
           'test_batch']


def load_batch(path):
    """One CIFAR python batch -> (uint8 images [N, 32, 32, 3], int labels [N])."""
    try:
        with open(path, 'rb') as f:
            d = pickle.load(f, encoding='bytes')
        data = np.asarray(d[b'data'], dtype=np.uint8)
        labels = np.asarray(d[b'labels'], dtype=np.int64)
    except Exception as e:  # truncated file, wrong format
        sys.exit(f"error: {path}: not a CIFAR-10 python batch ({type(e).__name__}: {e})")
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        sys.exit(f"error: {path}: expected data [N, 3072] and N labels, got {data.shape} and {len(labels)}")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def find_input():
    """The cifar-10-batches-py folder under cifar_root, downloaded first when asked; exits naming
    the first missing file."""
    folder = os.path.join(cifar_root, 'cifar-10-batches-py')
    if download and not os.path.isdir(folder):
        try:
            import torchvision
            torchvision.datasets.CIFAR10(cifar_root, train=True, download=True)
        except Exception as e:  # offline, proxy, disk full
            sys.exit(f"error: downloading CIFAR-10 into {cifar_root} failed ({type(e).__name__}: {e}); "
                     f"put cifar-10-batches-py/ there by hand and run without --download=True")
    missing = [b for b in BATCHES + ['batches.meta'] if not os.path.isfile(os.path.join(folder, b))]
    if missing:
        sys.exit(f"error: CIFAR-10 not found: {os.path.join(folder, missing[0])} is missing; put the "
                 f"extracted cifar-10-batches-py/ folder under cifar_root={cifar_root} "
                 f"(or run with --download=True when online)")
    if train_per_class < 1 or test_per_class < 1:
        sys.exit("error: train_per_class and test_per_class must be >= 1")
    return folder


def read_all(folder):
    """Every image of the six batches, pooled in order -> (classes, images, labels), counts checked."""
    with open(os.path.join(folder, 'batches.meta'), 'rb') as f:
        meta = pickle.load(f, encoding='bytes')
    classes = [n.decode() if isinstance(n, bytes) else str(n) for n in meta[b'label_names']]
    parts = [load_batch(os.path.join(folder, b)) for b in BATCHES]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    C = len(classes)
    if labels.min() < 0 or labels.max() >= C:
        sys.exit(f"error: {folder}: labels outside 0..{C - 1}")
    per_class = np.bincount(labels, minlength=C)
    if check_counts and (C != 10 or len(images) != 60000 or (per_class != 6000).any()):
        sys.exit(f"error: {folder}: expected 10 classes x 6,000 images, got {C} classes, "
                 f"{len(images)} images, per class {per_class.tolist()} "
                 f"(--check_counts=False to accept a partial copy)")
    if (per_class < train_per_class + test_per_class).any():
        c = int(np.argmin(per_class))
        sys.exit(f"error: {folder}: class {classes[c]} has {per_class[c]} images, need "
                 f"train_per_class + test_per_class = {train_per_class + test_per_class}")
    return classes, images, labels


def split(labels, num_classes):
    """Per class a seeded permutation: queries first, then train -> (is_train, is_test, is_db)."""
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(labels), bool)
    is_train = np.zeros(len(labels), bool)
    for c in range(num_classes):
        idx = rng.permutation(np.flatnonzero(labels == c))
        is_test[idx[:test_per_class]] = True
        is_train[idx[test_per_class:test_per_class + train_per_class]] = True
    return is_train, is_test, ~is_test


def write_output(classes, images, labels, masks):
    """The PNGs (the old images/ folder replaced), the three lists and classes.txt -> counts."""
    C = len(classes)
    shutil.rmtree(os.path.join(out_dir, 'images'), ignore_errors=True)
    folders = [f'images/{c:02d}_{name}' for c, name in enumerate(classes)]
    for f in folders:
        os.makedirs(os.path.join(out_dir, f), exist_ok=True)
    rel = [f'{folders[c]}/{i:05d}.png' for i, c in enumerate(labels)]
    for i, im in enumerate(images):
        Image.fromarray(im).save(os.path.join(out_dir, rel[i]), format='PNG')
    onehot = np.eye(C, dtype=np.uint8)[labels]
    for name, mask in zip(('train', 'test', 'database'), masks):
        sel = np.flatnonzero(mask)
        sel = sel[np.argsort(labels[sel], kind='stable')]  # grouped by class, then by position
        utils.write_list(os.path.join(out_dir, name + '.txt'), [rel[i] for i in sel], onehot[sel])
    utils.atomic_write_text(os.path.join(out_dir, 'classes.txt'), ''.join(c + '\n' for c in classes))
    return {'train': int(masks[0].sum()), 'test': int(masks[1].sum()), 'database': int(masks[2].sum()),
            'classes': C}


def main():
    config = utils.configure(globals())
    folder = find_input()
    # skip if this config already built the folder from the same files
    inputs = {b: common.file_sha1(os.path.join(folder, b)) for b in BATCHES + ['batches.meta']}
    recipe = {k: v for k, v in config.items() if k not in ('force', 'download', 'out_dir')}
    recipe.update(cifar_root=os.path.abspath(cifar_root), input_sha1=inputs, format_version=FORMAT_VERSION)
    if not force and common.manifest_up_to_date(out_dir, recipe, ['train.txt', 'test.txt', 'database.txt',
                                                                  'classes.txt'], same='config and inputs'):
        sys.exit(0)
    classes, images, labels = read_all(folder)
    counts = write_output(classes, images, labels, split(labels, len(classes)))
    common.write_manifest(out_dir, 'data/prepare_cifar10.py', recipe, counts)
    print(f"{out_dir}: CIFAR-10 ({len(classes)} classes), {len(images)} PNG images")
    print(f"  train {counts['train']}  database {counts['database']} (contains train)  "
          f"test {counts['test']} (queries, disjoint from database)")


if __name__ == '__main__':
    main()
