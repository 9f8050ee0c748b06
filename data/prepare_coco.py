"""MS-COCO lists (DeepHash protocol, SPEC §5.2 and D24) rewritten to your COCO-2014 copy.

Inputs (from lists_dir, or downloaded into <out_dir>/source with --download=True):
    train.txt, test.txt   DeepHash-pytorch data/coco (10,000 / 5,000 images, 80 classes, multi-hot)
    database.txt          optional: DeepHash's copy is missing, so by default (D24) the database is
                          rebuilt from the COCO-2014 annotations (annotations_dir): every train2014 or
                          val2014 image with at least one object, minus the queries (122,218 - 5,000
                          = 117,218), labels multi-hot over the 80 categories in alphabetical order.
Only the file name of a listed path is used: COCO_train2014_*.jpg -> <coco_root>/<train_dir>/<name>,
COCO_val2014_*.jpg -> <coco_root>/<val_dir>/<name>.

    python data/prepare_coco.py --coco_root=/data/coco2014 --lists_dir=/data/lists \
        --annotations_dir=/data/coco2014/annotations
    python data/prepare_coco.py --coco_root=/data/coco2014 --download=True \
        --annotations_dir=/data/coco2014/annotations

Checks: counts 10,000 / 5,000 / 117,218 and C=80, no all-zero label, database contains train (same
labels), test disjoint from database, every image exists. A failed check is an error naming the
file (--warn_only=True prints it and goes on). Writes train.txt, test.txt, database.txt, classes.txt
and prepare.json to out_dir; paths are relative to out_dir.
"""
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import utils  # noqa: E402
from data import common  # noqa: E402

# ------------------------------------------------------------------------------------------------
# config (override with preset files or --key=value)
coco_root = ''                # your COCO-2014 folder (required)
out_dir = 'data/coco'         # the lists go here (the folder the training scripts read)
lists_dir = ''                # folder with train.txt, test.txt (and database.txt if you have one);
                              # '' = <out_dir>/source (where --download=True puts them)
download = False              # fetch DeepHash's train.txt / test.txt from GitHub first (needs internet)
annotations_dir = ''          # folder with instances_train2014.json + instances_val2014.json: rebuild
                              # database.txt from them (D24); '' = use <lists_dir>/database.txt
train_dir = 'train2014'       # folder of COCO_train2014_*.jpg inside coco_root
val_dir = 'val2014'           # folder of COCO_val2014_*.jpg inside coco_root
relative_paths = True         # paths in the lists relative to out_dir (False: absolute paths)
check_counts = True           # require the protocol's counts (SPEC §5.2); False for small copies
check_files = True            # every image must exist under coco_root
warn_only = False             # report failed checks as warnings instead of stopping
force = False                 # rebuild even if prepare.json says the lists are up to date
# ------------------------------------------------------------------------------------------------

FORMAT_VERSION = 1
EXPECTED = {'train': 10000, 'test': 5000, 'database': 117218, 'classes': 80}  # SPEC §5.2
URLS = {
    'train.txt': 'https://raw.githubusercontent.com/swuxyj/DeepHash-pytorch/master/data/coco/train.txt',
    'test.txt': 'https://raw.githubusercontent.com/swuxyj/DeepHash-pytorch/master/data/coco/test.txt',
}
# the 80 COCO categories in alphabetical order = the label order of the lists (SPEC §5.3)
COCO_CLASSES = sorted([
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
    'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog',
    'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella',
    'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite',
    'baseball bat', 'baseball glove', 'skateboard', 'surfboard', 'tennis racket', 'bottle',
    'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange',
    'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant',
    'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone',
    'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors',
    'teddy bear', 'hair drier', 'toothbrush'])
NAME = re.compile(r'^COCO_(train|val)2014_\d+\.jpg$', re.IGNORECASE)


def database_from_annotations(folder):
    """[(where, file name, multi-hot label)] for every annotated train2014/val2014 image; class names."""
    rows, names = [], None
    for split in ('train2014', 'val2014'):
        path = os.path.join(folder, f'instances_{split}.json')
        if not os.path.isfile(path):
            sys.exit(f"error: {path}: annotation file not found (annotations_dir)")
        with open(path) as f:
            ann = json.load(f)
        cats = sorted(ann['categories'], key=lambda c: c['name'])
        these = [c['name'] for c in cats]
        if names is not None and these != names:
            sys.exit(f"error: {path}: categories differ from instances_train2014.json")
        names = these
        column = {c['id']: i for i, c in enumerate(cats)}
        file_of = {im['id']: im['file_name'] for im in ann['images']}
        labels = {}
        for a in ann['annotations']:  # crowd annotations count too: any object gives the label
            labels.setdefault(a['image_id'], np.zeros(len(cats), np.uint8))[column[a['category_id']]] = 1
        for image_id in sorted(labels, key=lambda i: file_of[i]):
            rows.append((f"{path} (image id {image_id})", file_of[image_id], labels[image_id]))
    return rows, names


def find_inputs():
    """Download the lists if asked, then find them -> [train, test, database or the two
    annotation files]."""
    if not coco_root:
        sys.exit("error: set --coco_root=<your COCO-2014 folder with train2014/ and val2014/>")
    src = lists_dir or os.path.join(out_dir, 'source')
    if download:
        common.download_lists(URLS, src)
    inputs = [os.path.join(src, 'train.txt'), os.path.join(src, 'test.txt')]
    if annotations_dir:
        inputs += [os.path.join(annotations_dir, f'instances_{s}.json') for s in ('train2014', 'val2014')]
    else:
        inputs.append(os.path.join(src, 'database.txt'))
    for p in inputs:
        if not os.path.isfile(p):
            hint = ('' if annotations_dir or not p.endswith('database.txt') else
                    '; DeepHash has no COCO database.txt: give --annotations_dir to rebuild it (D24)')
            sys.exit(f"error: {p}: file not found{hint}")
    return inputs


def read_lists(inputs):
    """The train and test lists, and the database from its list or rebuilt from the annotations
    (every annotated image that is not a query, D24) -> (raw rows per split, class names, files_of)."""
    raw = {'train': common.read_source_list(inputs[0]), 'test': common.read_source_list(inputs[1])}
    C = len(raw['train'][0][2])
    classes = COCO_CLASSES if C == len(COCO_CLASSES) else [f'class{c:02d}' for c in range(C)]
    if annotations_dir:
        test_names = {os.path.basename(p) for _, p, _ in raw['test']}
        rows, ann_classes = database_from_annotations(annotations_dir)
        if len(ann_classes) != C:
            sys.exit(f"error: {inputs[2]}: {len(ann_classes)} categories, train.txt has {C} label columns")
        classes = ann_classes
        raw['database'] = [r for r in rows if r[1] not in test_names]
        db_source = ', '.join(inputs[2:])
    else:
        raw['database'] = common.read_source_list(inputs[2])
        db_source = inputs[2]
    return raw, classes, {'train': inputs[0], 'test': inputs[1], 'database': db_source}


def local_lists(raw, num_classes):
    """Each listed file -> its path under coco_root; labels checked -> {split: (paths, labels, wheres)}."""
    lists = {}
    for split, rows in raw.items():
        paths = []
        for where, listed, label in rows:
            if len(label) != num_classes:
                sys.exit(f"error: {where}: label has {len(label)} values, train.txt has {num_classes}")
            if label.sum() == 0:
                common.problem(f"{where}: all-zero label (every COCO image in the protocol has an object)",
                               warn_only)
            name = os.path.basename(listed)
            m = NAME.match(name)
            if not m:
                sys.exit(f"error: {where}: {listed!r} is not a COCO-2014 file name "
                         f"(COCO_train2014_<n>.jpg or COCO_val2014_<n>.jpg)")
            sub = train_dir if m.group(1).lower() == 'train' else val_dir
            paths.append(os.path.join(os.path.abspath(coco_root), sub, name))
        lists[split] = (paths, np.stack([lab for _, _, lab in rows]), [w for w, _, _ in rows])
    return lists


def main():
    config = utils.configure(globals())
    inputs = find_inputs()
    # skip if the same config already converted the same inputs
    recipe = {k: v for k, v in config.items() if k not in ('force', 'download', 'warn_only')}
    recipe.update(coco_root=os.path.abspath(coco_root), format_version=FORMAT_VERSION,
                  inputs={os.path.abspath(p): common.file_sha1(p) for p in inputs})
    names = ['train.txt', 'test.txt', 'database.txt', 'classes.txt']
    if not force and common.manifest_up_to_date(out_dir, recipe, names, same='config and inputs'):
        sys.exit(0)
    raw, classes, files_of = read_lists(inputs)
    lists = local_lists(raw, len(classes))
    if check_counts:
        common.check_counts(lists, len(classes), EXPECTED, files_of, 'MS-COCO', warn_only)
    common.check_splits(lists, files_of, warn_only, label_hint=' (class order not alphabetical?)')
    if check_files:
        common.check_files_exist(lists, warn_only, options='train_dir/val_dir')
    counts = common.write_converted(out_dir, lists, classes, relative_paths)
    common.write_manifest(out_dir, 'data/prepare_coco.py', recipe, counts)
    print(f"{out_dir}: MS-COCO lists for {coco_root} ({len(classes)} classes; database "
          f"{'rebuilt from annotations' if annotations_dir else 'from ' + inputs[2]})")
    print(f"  train {counts['train']}  database {counts['database']} (contains train)  "
          f"test {counts['test']} (queries, disjoint from database)")


if __name__ == '__main__':
    main()
