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
import hashlib
import json
import os
import re
import sys
import urllib.request

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import utils  # noqa: E402

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


def file_sha1(path):
    h = hashlib.sha1()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def problem(message):
    if warn_only:
        print(f"warning: {message}")
    else:
        sys.exit(f"error: {message}")


def read_raw(path):
    """A source list as [(file:line, listed path, label row)], labels checked to be 0/1."""
    rows, width = [], None
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            where = f"{path}:{lineno}"
            if width is None:
                width = len(fields) - 1
            if len(fields) - 1 != width or width == 0:
                sys.exit(f"error: {where}: label has {len(fields) - 1} values, expected {width}")
            if any(v not in ('0', '1') for v in fields[1:]):
                sys.exit(f"error: {where}: label values must be 0 or 1")
            rows.append((where, fields[0], np.array(fields[1:], dtype=np.uint8)))
    if not rows:
        sys.exit(f"error: {path}: list is empty")
    return rows


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


if __name__ == '__main__':
    config = utils.configure(globals())
    if not coco_root:
        sys.exit("error: set --coco_root=<your COCO-2014 folder with train2014/ and val2014/>")
    src = lists_dir or os.path.join(out_dir, 'source')

    # ---- inputs ------------------------------------------------------------------------------
    if download:
        os.makedirs(src, exist_ok=True)
        for name, url in URLS.items():
            dest = os.path.join(src, name)
            if os.path.isfile(dest):
                continue
            try:
                urllib.request.urlretrieve(url, dest + '.part')
                os.replace(dest + '.part', dest)
            except Exception as e:  # offline, moved file
                sys.exit(f"error: download of {url} failed ({type(e).__name__}: {e}); put the list "
                         f"files in a folder by hand and pass it as --lists_dir")
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

    # ---- skip if the same config already converted the same inputs ---------------------------
    recipe = {k: v for k, v in config.items() if k not in ('force', 'download', 'warn_only')}
    recipe.update(coco_root=os.path.abspath(coco_root), format_version=FORMAT_VERSION,
                  inputs={os.path.abspath(p): file_sha1(p) for p in inputs})
    manifest_path = os.path.join(out_dir, 'prepare.json')
    names = ['train.txt', 'test.txt', 'database.txt', 'classes.txt']
    if not force and os.path.isfile(manifest_path):
        with open(manifest_path) as f:
            old = json.load(f)
        if old.get('recipe') == recipe and all(os.path.isfile(os.path.join(out_dir, n)) for n in names):
            print(f"{out_dir}: up to date (same config and inputs in prepare.json), skipped; "
                  f"counts {json.dumps(old['counts'])}; use --force=True to rebuild")
            sys.exit(0)

    # ---- read ----------------------------------------------------------------------------------
    raw = {'train': read_raw(inputs[0]), 'test': read_raw(inputs[1])}
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
        raw['database'] = read_raw(inputs[2])
        db_source = inputs[2]
    files_of = {'train': inputs[0], 'test': inputs[1], 'database': db_source}

    # ---- rewrite paths to the local layout -------------------------------------------------------
    lists = {}
    for split, rows in raw.items():
        paths = []
        for where, listed, label in rows:
            if len(label) != C:
                sys.exit(f"error: {where}: label has {len(label)} values, train.txt has {C}")
            if label.sum() == 0:
                problem(f"{where}: all-zero label (every COCO image in the protocol has an object)")
            name = os.path.basename(listed)
            m = NAME.match(name)
            if not m:
                sys.exit(f"error: {where}: {listed!r} is not a COCO-2014 file name "
                         f"(COCO_train2014_<n>.jpg or COCO_val2014_<n>.jpg)")
            sub = train_dir if m.group(1).lower() == 'train' else val_dir
            paths.append(os.path.join(os.path.abspath(coco_root), sub, name))
        lists[split] = (paths, np.stack([lab for _, _, lab in rows]), [w for w, _, _ in rows])

    # ---- checks ------------------------------------------------------------------------------
    if check_counts:
        for split in ('train', 'test', 'database'):
            if len(lists[split][0]) != EXPECTED[split]:
                problem(f"{files_of[split]}: {len(lists[split][0])} images, expected "
                        f"{EXPECTED[split]:,} for MS-COCO (SPEC §5.2; --check_counts=False to skip)")
        if C != EXPECTED['classes']:
            problem(f"{inputs[0]}: {C} classes, expected {EXPECTED['classes']}")
    index = {}
    for split, (paths, labels, wheres) in lists.items():
        seen = {}
        for p, w in zip(paths, wheres):
            if p in seen:
                problem(f"{w}: {os.path.basename(p)} is listed twice (first at {seen[p]})")
            seen[p] = w
        index[split] = dict(zip(paths, labels))
    db = index['database']
    for p, w in zip(lists['train'][0], lists['train'][2]):
        if p not in db:
            problem(f"{w}: training image {os.path.basename(p)} is not in the database ({files_of['database']})")
            break
        if not np.array_equal(db[p], index['train'][p]):
            problem(f"{w}: training image {os.path.basename(p)} has another label in the database "
                    f"(class order not alphabetical?)")
            break
    for p, w in zip(lists['test'][0], lists['test'][2]):
        if p in db:
            problem(f"{w}: query {os.path.basename(p)} is also in the database ({files_of['database']})")
            break
    if check_files:
        for split, (paths, _, wheres) in lists.items():
            absent = [(p, w) for p, w in zip(paths, wheres) if not os.path.isfile(p)]
            if absent:
                problem(f"{absent[0][1]}: image not found: {absent[0][0]} ({len(absent)} of "
                        f"{len(paths)} in {split} missing; see train_dir/val_dir)")

    # ---- write -------------------------------------------------------------------------------
    os.makedirs(out_dir, exist_ok=True)
    out_abs = os.path.abspath(out_dir)
    for split, (paths, labels, _) in lists.items():
        shown = [os.path.relpath(p, out_abs).replace(os.sep, '/') if relative_paths else p for p in paths]
        utils.write_list(os.path.join(out_dir, split + '.txt'), shown, labels)
    utils.atomic_write_text(os.path.join(out_dir, 'classes.txt'), ''.join(c + '\n' for c in classes))
    counts = {split: len(lists[split][0]) for split in lists}
    counts['classes'] = C
    utils.write_json(manifest_path, {'script': 'data/prepare_coco.py', 'recipe': recipe, 'counts': counts})
    print(f"{out_dir}: MS-COCO lists for {coco_root} ({C} classes; database "
          f"{'rebuilt from annotations' if annotations_dir else 'from ' + inputs[2]})")
    print(f"  train {counts['train']}  database {counts['database']} (contains train)  "
          f"test {counts['test']} (queries, disjoint from database)")
