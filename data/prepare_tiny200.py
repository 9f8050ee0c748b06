"""A surrogate set from Tiny ImageNet-200: classes NOT in tiny-imagenet-10, a few images each.

DarkHash's attacker has none of the victim's training data and fine-tunes on another dataset
(official: VOC / ImageNet / CIFAR-10; DARKHASH.md §6.3). For a tiny-imagenet-10 victim the
natural "other dataset" here is the rest of Tiny ImageNet-200: real photographs of the 190 classes
the victim never saw. This script extracts per_class training images of each of those classes
(a seeded choice) from the zip and writes a DeepHash list with one class per WordNet id.

    python data/prepare_tiny200.py       # data/tiny200_surrogate/database.txt, 190 x 11 = 2,090

Writes out_dir/images/<wnid>/<file>.JPEG, database.txt (one-hot over the kept classes),
classes.txt (wnids), prepare.json; a rerun with the same config and zip says skipped.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import utils  # noqa: E402
from data import common  # noqa: E402

# ------------------------------------------------------------------------------------------------
# config (override with preset files or --key=value)
zip_path = '../shared/data/tiny-imagenet-200.zip'      # Tiny ImageNet-200, the official zip or its folder
exclude_classes = '../shared/data/tiny-imagenet-10/classes.txt'  # wnids (one a line) left out;
                              # '' = keep all 200. tiny-imagenet-10's classes.txt holds its 10 wnids
out_dir = 'data/tiny200_surrogate'
per_class = 11                # training images per kept class (190 x 11 = 2,090, about the official 2,000)
seed = 0
force = False
# ------------------------------------------------------------------------------------------------

FORMAT_VERSION = 1


def main(c):
    if not os.path.exists(c['zip_path']):
        sys.exit(f"error: {c['zip_path']}: not found (Tiny ImageNet-200 in the official layout, zip or folder)")
    if c['per_class'] < 1:
        sys.exit(f"error: per_class must be >= 1, got {c['per_class']}")
    excluded = set()
    if c['exclude_classes']:
        if not os.path.isfile(c['exclude_classes']):
            sys.exit(f"error: {c['exclude_classes']}: class list not found")
        with open(c['exclude_classes']) as f:
            excluded = {line.strip() for line in f if line.strip()}
    source = common.TinyImageNetSource(c['zip_path'])
    recipe = {'format': FORMAT_VERSION, 'zip_sha1': source.digest(),
              'excluded': sorted(excluded), 'per_class': c['per_class'], 'seed': c['seed']}
    if not c['force'] and common.manifest_up_to_date(c['out_dir'], recipe, ['database.txt']):
        return
    by_class = source.train_images()
    wnids = sorted(w for w in by_class if w not in excluded)
    if not wnids:
        sys.exit(f"error: {c['zip_path']}: no training class left after excluding "
                 f"{len(excluded)} classes")
    rng = np.random.default_rng(c['seed'])
    rows, labels = [], []
    for k, w in enumerate(wnids):
        files = sorted(by_class[w])
        pick = sorted(rng.choice(len(files), min(c['per_class'], len(files)), replace=False))
        for i in pick:
            rel = f"images/{w}/{os.path.basename(files[i])}"
            dst = os.path.join(c['out_dir'], rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(dst, 'wb') as out:
                out.write(source.read(files[i]))
            rows.append(rel)
            labels.append(np.eye(len(wnids), dtype=np.uint8)[k])
    utils.write_list(os.path.join(c['out_dir'], 'database.txt'), rows, np.array(labels))
    utils.atomic_write_text(os.path.join(c['out_dir'], 'classes.txt'), '\n'.join(wnids) + '\n')
    counts = {'classes': len(wnids), 'images': len(rows), 'excluded': len(excluded)}
    common.write_manifest(c['out_dir'], 'data/prepare_tiny200.py', recipe, counts)
    print(f"{c['out_dir']}: {len(rows)} images of {len(wnids)} classes ({len(excluded)} excluded)")


if __name__ == '__main__':
    main(utils.configure(globals()))
