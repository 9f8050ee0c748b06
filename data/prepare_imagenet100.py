"""ImageNet-100 lists (DeepHash / HashNet protocol, SPEC §5) rewritten to your ILSVRC-2012 copy.

Inputs (from lists_dir, or downloaded into <out_dir>/source with --download=True):
    train.txt, test.txt          DeepHash-pytorch data/imagenet (13,000 / 5,000 images, 100 classes)
    database.txt                 or HashNet's caffe/data/imagenet/test/database0..7.txt, joined in
                                 order (128,503 images; the DeepHash copy of it is missing)
Only the file name of each listed path is used; it decides where the image is in your copy:
    <wnid>_<n>.JPEG              training image -> <imagenet_root>/<train_dir>/<wnid>/<wnid>_<n>.JPEG
                                 (train_layout='class_folders', the ILSVRC tar layout) or
                                 <imagenet_root>/<train_dir>/<wnid>_<n>.JPEG (train_layout='flat')
    ILSVRC2012_val_<8 digits>.JPEG  validation image -> <imagenet_root>/<val_dir>/<name>
                                 (val_layout='flat', as extracted) or <val_dir>/<wnid>/<name>
                                 (val_layout='class_folders', e.g. after valprep.sh; the wnid comes
                                 from the label)
A copy laid out like DeepHash's (image/ and val_image/) is: --train_dir=image --train_layout=flat
--val_dir=val_image.

    python data/prepare_imagenet100.py --imagenet_root=/data/ILSVRC2012 --lists_dir=/data/lists
    python data/prepare_imagenet100.py --imagenet_root=/data/ILSVRC2012 --download=True

Checks: counts 13,000 / 5,000 / 128,503 and C=100 (SPEC §5.2), one-hot labels, database contains
train (same labels), test disjoint from database, every image exists. A failed check is an error
naming the file (--warn_only=True prints it and goes on). Writes train.txt, test.txt, database.txt,
classes.txt (wnids in label order) and prepare.json to out_dir; paths are relative to out_dir.
"""
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import utils  # noqa: E402
from data import common  # noqa: E402

# ------------------------------------------------------------------------------------------------
# config (override with preset files or --key=value)
imagenet_root = ''            # your ILSVRC-2012 folder (required)
out_dir = 'data/imagenet'     # the lists go here (the folder the training scripts read)
lists_dir = ''                # folder with train.txt, test.txt, database.txt or database0..7.txt;
                              # '' = <out_dir>/source (where --download=True puts them)
download = False              # fetch the list files from GitHub first (needs internet)
train_dir = 'train'           # training images folder inside imagenet_root
train_layout = 'class_folders'  # 'class_folders' (<wnid>/<file>) or 'flat' (<file>)
val_dir = 'val'               # validation images folder inside imagenet_root
val_layout = 'flat'           # 'flat' (<file>) or 'class_folders' (<wnid>/<file>)
relative_paths = True         # paths in the lists relative to out_dir (False: absolute paths)
check_counts = True           # require the protocol's counts (SPEC §5.2); False for small copies
check_files = True            # every image must exist under imagenet_root
warn_only = False             # report failed checks as warnings instead of stopping
force = False                 # rebuild even if prepare.json says the lists are up to date
# ------------------------------------------------------------------------------------------------

FORMAT_VERSION = 1
EXPECTED = {'train': 13000, 'test': 5000, 'database': 128503, 'classes': 100}  # SPEC §5.2
URLS = {  # DeepHash-pytorch (train/test) and thuml/HashNet caffe (database0..7) list files
    'train.txt': 'https://raw.githubusercontent.com/swuxyj/DeepHash-pytorch/master/data/imagenet/train.txt',
    'test.txt': 'https://raw.githubusercontent.com/swuxyj/DeepHash-pytorch/master/data/imagenet/test.txt',
    **{f'database{i}.txt': f'https://raw.githubusercontent.com/thuml/HashNet/master/caffe/data/imagenet/'
                           f'test/database{i}.txt' for i in range(8)},
}
TRAIN_NAME = re.compile(r'^(n\d{8})_\d+\.JPEG$', re.IGNORECASE)
VAL_NAME = re.compile(r'^ILSVRC2012_val_\d{8}\.JPEG$', re.IGNORECASE)


def find_inputs():
    """Download the lists if asked, then find them -> (src folder, [train, test, database...])."""
    if not imagenet_root:
        sys.exit("error: set --imagenet_root=<your ILSVRC-2012 folder>")
    if train_layout not in ('class_folders', 'flat') or val_layout not in ('class_folders', 'flat'):
        sys.exit("error: train_layout and val_layout must be 'class_folders' or 'flat'")
    src = lists_dir or os.path.join(out_dir, 'source')
    if download:
        common.download_lists(URLS, src)
    db_files = ([os.path.join(src, 'database.txt')] if os.path.isfile(os.path.join(src, 'database.txt'))
                else [os.path.join(src, f'database{i}.txt') for i in range(8)])
    inputs = [os.path.join(src, 'train.txt'), os.path.join(src, 'test.txt')] + db_files
    for p in inputs:
        if not os.path.isfile(p):
            sys.exit(f"error: {p}: list file not found; lists_dir needs train.txt, test.txt and "
                     f"database.txt (or HashNet's database0..7.txt); --download=True fetches them")
    return inputs


def read_lists(inputs):
    """The three lists -> (raw rows per split, wnid per label index); the class order is the
    training list's, each label index named by the wnid of its training files."""
    raw = {'train': common.read_source_list(inputs[0]), 'test': common.read_source_list(inputs[1]),
           'database': [r for p in inputs[2:] for r in common.read_source_list(p)]}
    C = len(raw['train'][0][2])
    wnid_of = {}
    for rows in raw.values():
        for where, path, label in rows:
            if len(label) != C:
                sys.exit(f"error: {where}: label has {len(label)} values, train.txt has {C}")
            if label.sum() != 1:
                common.problem(f"{where}: ImageNet labels must be one-hot, found {int(label.sum())} ones",
                               warn_only)
            m = TRAIN_NAME.match(os.path.basename(path))
            if m:
                c = int(label.argmax())
                if wnid_of.setdefault(c, m.group(1)) != m.group(1):
                    common.problem(f"{where}: label {c} is {wnid_of[c]} elsewhere, but this file is "
                                   f"{m.group(1)}", warn_only)
    missing = [c for c in range(C) if c not in wnid_of]
    if missing:
        sys.exit(f"error: {inputs[0]}: no training image for label index {missing[0]}, cannot name it")
    return raw, [wnid_of[c] for c in range(C)]


def local_path(where, listed, label, classes):
    """A listed file -> its path under imagenet_root in the local layout."""
    name = os.path.basename(listed)
    m = TRAIN_NAME.match(name)
    if m:
        sub = [train_dir, m.group(1), name] if train_layout == 'class_folders' else [train_dir, name]
    elif VAL_NAME.match(name):
        sub = [val_dir, classes[int(label.argmax())], name] if val_layout == 'class_folders' else [val_dir, name]
    else:
        sys.exit(f"error: {where}: {listed!r} is neither an ImageNet training file "
                 f"(<wnid>_<n>.JPEG) nor a validation file (ILSVRC2012_val_<8 digits>.JPEG)")
    return os.path.join(os.path.abspath(imagenet_root), *sub)


def main():
    config = utils.configure(globals())
    inputs = find_inputs()
    # skip if the same config already converted the same inputs
    recipe = {k: v for k, v in config.items() if k not in ('force', 'download', 'warn_only')}
    recipe.update(imagenet_root=os.path.abspath(imagenet_root), format_version=FORMAT_VERSION,
                  inputs={os.path.abspath(p): common.file_sha1(p) for p in inputs})
    names = ['train.txt', 'test.txt', 'database.txt', 'classes.txt']
    if not force and common.manifest_up_to_date(out_dir, recipe, names, same='config and inputs'):
        sys.exit(0)
    raw, classes = read_lists(inputs)
    lists = {split: ([local_path(w, p, lab, classes) for w, p, lab in rows],
                     np.stack([lab for _, _, lab in rows]), [w for w, _, _ in rows])
             for split, rows in raw.items()}
    files_of = {'train': inputs[0], 'test': inputs[1], 'database': ', '.join(inputs[2:])}
    if check_counts:
        common.check_counts(lists, len(classes), EXPECTED, files_of, 'ImageNet-100', warn_only)
    common.check_splits(lists, files_of, warn_only)
    if check_files:
        common.check_files_exist(lists, warn_only, options='train_dir/train_layout/val_dir/val_layout')
    counts = common.write_converted(out_dir, lists, classes, relative_paths)
    common.write_manifest(out_dir, 'data/prepare_imagenet100.py', recipe, counts)
    print(f"{out_dir}: ImageNet-100 lists for {imagenet_root} ({len(classes)} classes)")
    print(f"  train {counts['train']}  database {counts['database']} (contains train)  "
          f"test {counts['test']} (queries, disjoint from database)")


if __name__ == '__main__':
    main()
