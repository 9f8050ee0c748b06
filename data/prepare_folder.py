"""Make DeepHash lists for any class-per-folder image dataset (root/<class>/**/<image>).

Classes are the sub-folders of src_root in sorted order (written to classes.txt). Per class, a
seeded permutation picks test_per_class queries and then train_per_class training images; the
database is every non-query image (so it contains the training images, as in ImageNet-100), or
database_per_class of them (train first) when that is set. Files that are not images by their
extension, and hidden files, are skipped.

    python data/prepare_folder.py --src_root=/data/my_photos --out_dir=data/my_photos \
        --train_per_class=100 --test_per_class=50

Writes train.txt, test.txt, database.txt, classes.txt and prepare.json to out_dir (default: into
src_root itself); image paths in the lists are relative to out_dir. A rerun with the same config
and the same files skips.
"""
import hashlib
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import utils  # noqa: E402
from data import common  # noqa: E402

# ------------------------------------------------------------------------------------------------
# config (override with preset files or --key=value)
src_root = ''                 # folder with one sub-folder per class (required)
out_dir = ''                  # where the lists go; '' = src_root (paths relative to this folder)
seed = 0                      # seed of the per-class split
train_per_class = 100         # training images per class (taken from the non-query images)
test_per_class = 50           # query images per class (never in the database)
database_per_class = 0        # database images per class, train included; 0 = all non-query images
extensions = '.jpg,.jpeg,.png,.bmp,.gif,.webp,.tif,.tiff,.ppm'  # what counts as an image (case-insensitive)
force = False                 # rebuild even if prepare.json says the lists are up to date
# ------------------------------------------------------------------------------------------------

FORMAT_VERSION = 1


def scan(root, exts):
    """Sorted class names and, per class, the sorted image paths relative to root."""
    classes = sorted(d for d in os.listdir(root)
                     if os.path.isdir(os.path.join(root, d)) and not d.startswith('.'))
    files, skipped = {}, 0
    for c in classes:
        found = []
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, c)):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith('.'))
            for f in filenames:
                if not f.startswith('.') and os.path.splitext(f)[1].lower() in exts:
                    found.append(os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, '/'))
                else:
                    skipped += 1
        files[c] = sorted(found)
    return classes, files, skipped


def check_config():
    """The settings checked before any file is read -> the image extensions."""
    if not src_root:
        sys.exit("error: set --src_root=<folder with one sub-folder per class>")
    if not os.path.isdir(src_root):
        sys.exit(f"error: src_root {src_root}: folder not found")
    if train_per_class < 1 or test_per_class < 1 or database_per_class < 0:
        sys.exit("error: train_per_class and test_per_class must be >= 1, database_per_class >= 0")
    if database_per_class and database_per_class < train_per_class:
        sys.exit(f"error: database_per_class ({database_per_class}) must be 0 (all) or >= "
                 f"train_per_class ({train_per_class}): the database contains the training images")
    return {e.strip().lower() if e.strip().startswith('.') else '.' + e.strip().lower()
            for e in extensions.split(',') if e.strip()}


def check_files(classes, files):
    """Every class folder holds enough images, none with whitespace in its path; exits naming it."""
    if not classes:
        sys.exit(f"error: {src_root}: no class sub-folders found")
    need = test_per_class + max(train_per_class, database_per_class)
    empty = [c for c in classes if not files[c]]
    if empty:
        sys.exit(f"error: {os.path.join(src_root, empty[0])}: class folder has no images "
                 f"(extensions: {extensions})")
    for c in classes:
        where = os.path.join(src_root, c)
        if len(files[c]) < need:
            sys.exit(f"error: {where}: {len(files[c])} images, need {need} "
                     f"(test_per_class + max(train_per_class, database_per_class))")
        bad = [f for f in files[c] if any(ch.isspace() for ch in f)]
        if bad:
            sys.exit(f"error: {os.path.join(src_root, bad[0])}: whitespace in an image path; "
                     f"the list format cannot hold it (rename the file)")


def split(classes, files, out):
    """Per class a seeded permutation: queries first, then train (and the database) ->
    {split: (paths relative to out, one-hot labels)}."""
    rng = np.random.default_rng(seed)
    splits = {'train': ([], []), 'test': ([], []), 'database': ([], [])}
    eye = np.eye(len(classes), dtype=np.uint8)
    prefix = os.path.relpath(os.path.abspath(src_root), os.path.abspath(out)).replace(os.sep, '/')
    for ci, c in enumerate(classes):
        perm = rng.permutation(len(files[c]))
        test_idx = perm[:test_per_class]
        train_idx = perm[test_per_class:test_per_class + train_per_class]
        if database_per_class:
            db_idx = perm[test_per_class:test_per_class + database_per_class]
        else:
            db_idx = perm[test_per_class:]
        for name, idx in (('train', train_idx), ('test', test_idx), ('database', db_idx)):
            for i in sorted(idx):  # file order inside a class: easier to read and diff
                splits[name][0].append(files[c][i] if prefix == '.' else f'{prefix}/{files[c][i]}')
                splits[name][1].append(eye[ci])
    return splits


def main():
    config = utils.configure(globals())
    exts = check_config()
    out = out_dir or src_root
    classes, files, skipped = scan(src_root, exts)
    check_files(classes, files)
    # skip if the same config already listed the same files
    digest = hashlib.sha1('\n'.join(f for c in classes for f in files[c]).encode()).hexdigest()
    recipe = {k: v for k, v in config.items() if k != 'force'}
    recipe.update(out_dir=out, files_sha1=digest, format_version=FORMAT_VERSION)
    names = ['train.txt', 'test.txt', 'database.txt', 'classes.txt']
    if not force and common.manifest_up_to_date(out, recipe, names, same='config and files'):
        sys.exit(0)
    splits = split(classes, files, out)
    for name, (paths, labels) in splits.items():
        utils.write_list(os.path.join(out, name + '.txt'), paths, labels)
    utils.atomic_write_text(os.path.join(out, 'classes.txt'), ''.join(c + '\n' for c in classes))
    counts = {name: len(paths) for name, (paths, _) in splits.items()}
    counts['classes'] = len(classes)
    common.write_manifest(out, 'data/prepare_folder.py', recipe, counts)
    print(f"{out}: {len(classes)} classes from {src_root} ({skipped} non-image files skipped)")
    print(f"  train {counts['train']}  database {counts['database']} (contains train)  "
          f"test {counts['test']} (queries, disjoint from database)")


if __name__ == '__main__':
    main()
