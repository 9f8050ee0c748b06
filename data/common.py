"""Pieces shared by the data/prepare_*.py scripts, each written once.

    file_sha1            hash of an input file, recorded so that a changed input forces a rebuild
    problem              a failed check: exit with an error, or only warn with --warn_only=True
    read_source_list     a DeepHash list as rows (file:line, listed path, 0/1 label row)
    download_lists       fetch list files that are not there yet (ImageNet-100, COCO)
    manifest_up_to_date  does out_dir/prepare.json say the lists were built by this very recipe?
    write_manifest       record the recipe and the counts in out_dir/prepare.json
    check_counts, check_splits, check_files_exist, write_converted
                         the protocol checks and the writing of the ImageNet-100 and COCO converters

No configuration lives here: every function gets what it needs as arguments. utils.pipeline_keys()
reads the module-level lowercase constants of data/*.py as config keys, so constants here are
UPPERCASE.
"""
import hashlib
import json
import os
import sys
import urllib.request
import zipfile

import numpy as np

import utils

MANIFEST = 'prepare.json'  # the recipe and counts of the last build, in the output folder


file_sha1 = utils.file_sha1  # SHA-1 of a file's bytes (one implementation, in utils)


def problem(message, warn_only):
    if warn_only:
        print(f"warning: {message}")
    else:
        sys.exit(f"error: {message}")


def read_source_list(path):
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


def download_lists(urls, folder):
    """Fetch each {file name: url} into folder unless the file is already there."""
    os.makedirs(folder, exist_ok=True)
    for name, url in urls.items():
        dest = os.path.join(folder, name)
        if os.path.isfile(dest):
            continue
        try:
            urllib.request.urlretrieve(url, dest + '.part')
            os.replace(dest + '.part', dest)
        except Exception as e:  # offline, moved file
            sys.exit(f"error: download of {url} failed ({type(e).__name__}: {e}); put the list "
                     f"files in a folder by hand and pass it as --lists_dir")


# ------------------------------------------------------------------------------------------------
# prepare.json: a rerun with the same recipe (config + format version + input digests) skips
# ------------------------------------------------------------------------------------------------

def manifest_up_to_date(out_dir, recipe, list_names, same='config'):
    """True, after printing the 'skipped' line, when out_dir/prepare.json holds this recipe and
    every file in list_names exists in out_dir. `same` names what matched in that line."""
    path = os.path.join(out_dir, MANIFEST)
    if not os.path.isfile(path):
        return False
    with open(path) as f:
        old = json.load(f)
    if old.get('recipe') != recipe:
        return False
    if not all(os.path.isfile(os.path.join(out_dir, n)) for n in list_names):
        return False
    print(f"{out_dir}: up to date (same {same} in prepare.json), skipped; "
          f"counts {json.dumps(old['counts'])}; use --force=True to rebuild")
    return True


def write_manifest(out_dir, script, recipe, counts):
    utils.write_json(os.path.join(out_dir, MANIFEST),
                     {'script': script, 'recipe': recipe, 'counts': counts})


# ------------------------------------------------------------------------------------------------
# converters of published lists (prepare_imagenet100.py, prepare_coco.py). `lists` maps
# train/test/database to (absolute image paths, label rows, file:line of each row); `files_of`
# maps them to the source list(s) named in messages.
# ------------------------------------------------------------------------------------------------

def check_counts(lists, num_classes, expected, files_of, dataset, warn_only):
    """The protocol's image counts per split and class count (SPEC §5.2)."""
    for split in ('train', 'test', 'database'):
        if len(lists[split][0]) != expected[split]:
            problem(f"{files_of[split]}: {len(lists[split][0])} images, expected {expected[split]:,} "
                    f"for {dataset} (SPEC §5.2; --check_counts=False to skip)", warn_only)
    if num_classes != expected['classes']:
        problem(f"{files_of['train']}: {num_classes} classes, expected {expected['classes']}", warn_only)


def check_splits(lists, files_of, warn_only, label_hint=''):
    """No image twice in a split; train inside the database with the same labels; test disjoint
    from the database. label_hint ends the message of a train/database label mismatch."""
    index = {}
    for split, (paths, labels, wheres) in lists.items():
        seen = {}
        for p, w in zip(paths, wheres):
            if p in seen:
                problem(f"{w}: {os.path.basename(p)} is listed twice (first at {seen[p]})", warn_only)
            seen[p] = w
        index[split] = dict(zip(paths, labels))
    db = index['database']
    for p, w in zip(lists['train'][0], lists['train'][2]):
        if p not in db:
            problem(f"{w}: training image {os.path.basename(p)} is not in the database "
                    f"({files_of['database']})", warn_only)
            break
        if not np.array_equal(db[p], index['train'][p]):
            problem(f"{w}: training image {os.path.basename(p)} has another label in the database"
                    + label_hint, warn_only)
            break
    for p, w in zip(lists['test'][0], lists['test'][2]):
        if p in db:
            problem(f"{w}: query {os.path.basename(p)} is also in the database ({files_of['database']})",
                    warn_only)
            break


def check_files_exist(lists, warn_only, options):
    """Every listed image exists; `options` names the config keys that decide where they are looked for."""
    for split, (paths, _, wheres) in lists.items():
        absent = [(p, w) for p, w in zip(paths, wheres) if not os.path.isfile(p)]
        if absent:
            problem(f"{absent[0][1]}: image not found: {absent[0][0]} ({len(absent)} of "
                    f"{len(paths)} in {split} missing; see {options})", warn_only)


def write_converted(out_dir, lists, classes, relative_paths):
    """train.txt, test.txt, database.txt (paths relative to out_dir unless relative_paths=False) and
    classes.txt; returns the counts for prepare.json."""
    os.makedirs(out_dir, exist_ok=True)
    out_abs = os.path.abspath(out_dir)
    for split, (paths, labels, _) in lists.items():
        shown = [os.path.relpath(p, out_abs).replace(os.sep, '/') if relative_paths else p for p in paths]
        utils.write_list(os.path.join(out_dir, split + '.txt'), shown, labels)
    utils.atomic_write_text(os.path.join(out_dir, 'classes.txt'), ''.join(c + '\n' for c in classes))
    counts = {split: len(lists[split][0]) for split in lists}
    counts['classes'] = len(classes)
    return counts


# ------------------------------------------------------------------------------------------------
# Tiny ImageNet-200 in the official layout (zip or folder)
# ------------------------------------------------------------------------------------------------

def natural_key(name):
    """val_2 before val_10: sort by the number in the file name."""
    stem = os.path.splitext(os.path.basename(name))[0]
    digits = stem.rsplit('_', 1)[-1]
    return (stem.rsplit('_', 1)[0], int(digits) if digits.isdigit() else -1, stem)


class TinyImageNetSource:
    """Tiny ImageNet-200 as the official zip or its extracted folder: text files, image bytes and
    image names by path inside its top folder (train/<wnid>/images/..., val/images/...). Used by
    data/prepare_tinyimagenet.py, data/prepare_tiny200.py and gpu/pack_tinyimagenet.py."""

    def __init__(self, path):
        self.path = path
        self.zip = zipfile.ZipFile(path) if zipfile.is_zipfile(path) else None
        if self.zip is not None:
            names = self.zip.namelist()
            tops = sorted((n for n in names if n.endswith('wnids.txt') and n.count('/') <= 1),
                          key=len)
            if not tops:
                sys.exit(f"error: {path}: no wnids.txt at the top of the zip (expected "
                         f"tiny-imagenet-200/wnids.txt, the official layout)")
            self.prefix = tops[0][:-len('wnids.txt')]
            self.names = [n[len(self.prefix):] for n in names
                          if n.startswith(self.prefix) and not n.endswith('/')]
        else:
            root = path
            if not os.path.isfile(os.path.join(root, 'wnids.txt')):
                root = os.path.join(path, 'tiny-imagenet-200')
            if not os.path.isfile(os.path.join(root, 'wnids.txt')):
                sys.exit(f"error: {path}: neither a zip nor a folder with wnids.txt (or "
                         f"tiny-imagenet-200/wnids.txt), the official layout")
            self.root = root
            self.names = []
            for sub in ('train', os.path.join('val', 'images')):
                for dirpath, dirnames, filenames in os.walk(os.path.join(root, sub)):
                    dirnames.sort()
                    rel = os.path.relpath(dirpath, root).replace(os.sep, '/')
                    self.names += [f"{rel}/{f}" for f in filenames]

    def where(self, name):
        """How messages name a file of the download."""
        return f"{self.path}:{self.prefix}{name}" if self.zip else os.path.join(self.root, name)

    def text(self, name):
        try:
            if self.zip:
                return self.zip.read(self.prefix + name).decode('utf-8')
            with open(os.path.join(self.root, name), encoding='utf-8') as f:
                return f.read()
        except (KeyError, FileNotFoundError):
            sys.exit(f"error: {self.where(name)}: not found (official layout expected)")

    def read(self, name):
        """The bytes of a file of the download (an image)."""
        if self.zip:
            return self.zip.read(self.prefix + name)
        with open(os.path.join(self.root, name), 'rb') as f:
            return f.read()

    def train_images(self):
        """{wnid: its training image names in natural order} for every class folder present."""
        per_class = {}
        for n in self.names:
            parts = n.split('/')
            if len(parts) == 4 and parts[0] == 'train' and parts[2] == 'images' and parts[3]:
                per_class.setdefault(parts[1], []).append(n)
        return {w: sorted(v, key=natural_key) for w, v in per_class.items()}

    def digest(self):
        """What the lists are made from: the zip's bytes, or the folder's file names and sizes."""
        if self.zip:
            return file_sha1(self.path)
        h = hashlib.sha1()
        for n in sorted(self.names) + ['wnids.txt', 'words.txt', 'val/val_annotations.txt']:
            p = os.path.join(self.root, n)
            h.update(f"{n}\0{os.path.getsize(p) if os.path.isfile(p) else -1}\n".encode())
        return h.hexdigest()
