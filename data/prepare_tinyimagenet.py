"""Tiny ImageNet-200 as the ImageNet stand-in: 200-class pretraining lists and an ImageNet-100-shaped
hashing protocol on 100 of its classes (issue 11).

Input: the official download, as the zip (tiny-imagenet-200.zip) or its extracted folder, i.e.
    tiny-imagenet-200/wnids.txt                      the 200 class ids (label order)
    tiny-imagenet-200/words.txt                      names of WordNet ids
    tiny-imagenet-200/train/<wnid>/images/*.JPEG     training images (500 per class officially;
                                                     300 in the reduced copy of ../shared/data)
    tiny-imagenet-200/val/images/*.JPEG              validation images, 50 per class
    tiny-imagenet-200/val/val_annotations.txt        <file> <wnid> <x0> <y0> <x1> <y1>, tab-separated
(test/ has no labels and is not read). A zip is extracted once into out_dir (the images only);
a folder is used in place.

    python data/prepare_tinyimagenet.py --src=../shared/data/tiny-imagenet-200.zip
    python data/prepare_tinyimagenet.py --src=/data/tiny-imagenet-200

Writes into out_dir (paths relative to it, labels one-hot):
    pretrain_train.txt, pretrain_val.txt   all training / validation images of the 200 classes,
                                           labels in wnids.txt order (pretrain.py); pretrain_classes.txt
    train.txt, test.txt, database.txt      the hashing protocol (shaped like ImageNet-100, SPEC §5.2):
                                           `hash_classes` classes drawn with `seed` (kept in wnids.txt
                                           order); train = train_per_class seeded training images per
                                           class; database = every training image of those classes
                                           (contains train); test = their validation images (queries)
    classes.txt, class_names.txt           the hashing classes' wnids, and wnid<TAB>name (words.txt)
    openset.txt, openset_classes.txt       the validation images of the other classes (open-set
                                           source, D18 stand-in), labels over those classes
    prepare.json                           the recipe (config + input digest) and the counts
Checks: num_classes = 200 classes (check_counts), every validation annotation well formed with a known wnid and an
existing image, val_per_class validation images per class, the same number of training images in
every class (at least train_per_class). A failed check is a one-line error naming the file and line.
"""
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import utils  # noqa: E402
from data import common  # noqa: E402

# ------------------------------------------------------------------------------------------------
# config (override with preset files or --key=value)
src = ''                      # tiny-imagenet-200.zip or its extracted folder (required)
out_dir = 'data/tiny-imagenet'  # the lists go here (a zip's images too)
seed = 0                      # seed of the hashing classes and of the training subset
hash_classes = 100            # classes of the hashing protocol (ImageNet-100 has 100)
train_per_class = 100         # hashing training images per class (ImageNet-100: 130; 100 here, issue 11)
num_classes = 200             # classes in wnids.txt (Tiny ImageNet-200)
val_per_class = 50            # validation images per class in the official download
check_counts = True           # require num_classes classes, val_per_class validation images per class
                              # and as many training images in every class
force = False                 # rebuild even if prepare.json says the lists are up to date
# ------------------------------------------------------------------------------------------------

FORMAT_VERSION = 1


def read_wnids(source):
    wnids = [w.strip() for w in source.text('wnids.txt').splitlines() if w.strip()]
    if len(set(wnids)) != len(wnids):
        sys.exit(f"error: {source.where('wnids.txt')}: a class id is listed twice")
    if check_counts and len(wnids) != num_classes:
        sys.exit(f"error: {source.where('wnids.txt')}: {len(wnids)} classes, expected {num_classes} "
                 f"(--check_counts=False for a partial copy)")
    return wnids


def read_words(source, wnids):
    words = {}
    for line in source.text('words.txt').splitlines():
        if '\t' in line:
            w, name = line.split('\t', 1)
            words[w.strip()] = name.strip()
    return {w: words.get(w, w).split(',')[0].strip() for w in wnids}


def read_val(source, wnids, files):
    """{wnid: sorted val image names} from val_annotations.txt, every line checked."""
    name = 'val/val_annotations.txt'
    known, per_class, seen = set(wnids), {w: [] for w in wnids}, {}
    for lineno, line in enumerate(source.text(name).splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split('\t')
        where = f"{source.where(name)}:{lineno}"
        if len(fields) != 6 or not all(f.strip().lstrip('-').isdigit() for f in fields[2:]):
            sys.exit(f"error: {where}: expected '<file> <wnid> <x0> <y0> <x1> <y1>' (tab-separated), "
                     f"found {line.strip()[:60]!r}")
        img, wnid = fields[0].strip(), fields[1].strip()
        if wnid not in known:
            sys.exit(f"error: {where}: class {wnid!r} is not in wnids.txt")
        if img in seen:
            sys.exit(f"error: {where}: {img} is annotated twice (first at line {seen[img]})")
        seen[img] = lineno
        if f"val/images/{img}" not in files:
            sys.exit(f"error: {where}: image {source.where('val/images/' + img)} not found")
        per_class[wnid].append(f"val/images/{img}")
    for w in wnids:
        if check_counts and len(per_class[w]) != val_per_class:
            sys.exit(f"error: {source.where(name)}: class {w} has {len(per_class[w])} validation "
                     f"images, expected {val_per_class} (--check_counts=False for a partial copy)")
        per_class[w].sort(key=common.natural_key)
    return per_class


def read_train(source, wnids, files):
    per_class = {w: [] for w in wnids}
    for n in files:
        parts = n.split('/')
        if len(parts) == 4 and parts[0] == 'train' and parts[2] == 'images' and parts[1] in per_class:
            per_class[parts[1]].append(n)
    counts = {len(v) for v in per_class.values()}
    for w in wnids:
        per_class[w].sort(key=common.natural_key)
        if len(per_class[w]) < train_per_class:
            sys.exit(f"error: {source.where('train/' + w + '/images')}: {len(per_class[w])} training "
                     f"images, need at least train_per_class={train_per_class}")
    if check_counts and len(counts) > 1:
        sys.exit(f"error: {source.where('train')}: classes have different numbers of training images "
                 f"({min(counts)} to {max(counts)}); --check_counts=False for a partial copy")
    return per_class


def extract(source, names, dest):
    """The listed members of a zip into dest (skipping those already there with the same size)."""
    from tqdm import tqdm
    infos = {i.filename: i for i in source.zip.infolist()}
    for n in tqdm(names, desc='extract', leave=False, disable=len(names) < 5000):
        info = infos[source.prefix + n]
        out = os.path.join(dest, *n.split('/'))
        if os.path.isfile(out) and os.path.getsize(out) == info.file_size:
            continue
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with source.zip.open(info) as fin, open(out + '.part', 'wb') as fout:
            shutil.copyfileobj(fin, fout)
        os.replace(out + '.part', out)


def write(out, name, paths, label_idx, C):
    eye = np.eye(C, dtype=np.uint8)
    utils.write_list(os.path.join(out, name), paths, eye[np.asarray(label_idx, dtype=np.int64)])


def image_prefix(source, used):
    """Where the lists' paths point, relative to out_dir: a zip's images are extracted once under
    out_dir, a folder's are pointed into."""
    os.makedirs(out_dir, exist_ok=True)
    if source.zip:
        top = source.prefix.rstrip('/') or 'tiny-imagenet-200'
        extract(source, used, os.path.join(out_dir, top))
        prefix = top
    else:
        prefix = os.path.relpath(os.path.abspath(source.root), os.path.abspath(out_dir))
    return prefix.replace(os.sep, '/')


def write_pretrain_lists(wnids, train, val, rel):
    """The 200-class pretraining lists (every training and validation image)."""
    C = len(wnids)
    write(out_dir, 'pretrain_train.txt', [rel(n) for w in wnids for n in train[w]],
          [c for c, w in enumerate(wnids) for _ in train[w]], C)
    write(out_dir, 'pretrain_val.txt', [rel(n) for w in wnids for n in val[w]],
          [c for c, w in enumerate(wnids) for _ in val[w]], C)
    utils.atomic_write_text(os.path.join(out_dir, 'pretrain_classes.txt'), ''.join(w + '\n' for w in wnids))
    return {'pretrain_train': sum(len(train[w]) for w in wnids),
            'pretrain_val': sum(len(val[w]) for w in wnids), 'pretrain_classes': C}


def write_hashing_lists(wnids, words, train, val, rel):
    """The hashing protocol on a seeded choice of classes (D26: seeded, recorded): train (a seeded
    subset per class), database (every training image), test (the validation images) and the open
    set (the other classes' validation images)."""
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(wnids), hash_classes, replace=False))   # kept in wnids.txt order
    hashing = [wnids[i] for i in chosen]
    others = [w for w in wnids if w not in set(hashing)]
    tr, db, te = ([], []), ([], []), ([], [])
    for c, w in enumerate(hashing):
        pick = np.sort(rng.permutation(len(train[w]))[:train_per_class])
        tr[0].extend(rel(train[w][i]) for i in pick)
        tr[1].extend([c] * len(pick))
        db[0].extend(rel(n) for n in train[w])
        db[1].extend([c] * len(train[w]))
        te[0].extend(rel(n) for n in val[w])
        te[1].extend([c] * len(val[w]))
    H = len(hashing)
    for name, (paths, idx) in (('train.txt', tr), ('database.txt', db), ('test.txt', te)):
        write(out_dir, name, paths, idx, H)
    utils.atomic_write_text(os.path.join(out_dir, 'classes.txt'), ''.join(w + '\n' for w in hashing))
    utils.atomic_write_text(os.path.join(out_dir, 'class_names.txt'),
                            ''.join(f"{w}\t{words[w]}\n" for w in hashing))
    write(out_dir, 'openset.txt', [rel(n) for w in others for n in val[w]],
          [c for c, w in enumerate(others) for _ in val[w]], len(others))
    utils.atomic_write_text(os.path.join(out_dir, 'openset_classes.txt'), ''.join(w + '\n' for w in others))
    return {'train': len(tr[0]), 'test': len(te[0]), 'database': len(db[0]), 'classes': H,
            'openset': sum(len(val[w]) for w in others), 'openset_classes': len(others)}


if __name__ == '__main__':
    config = utils.configure(globals())
    if not src:
        sys.exit("error: set --src=<tiny-imagenet-200.zip or its extracted folder>")
    if not os.path.exists(src):
        sys.exit(f"error: src {src}: not found")
    if train_per_class < 1 or val_per_class < 1:
        sys.exit("error: train_per_class and val_per_class must be >= 1")
    source = common.TinyImageNetSource(src)

    # skip if the same config already listed the same download
    recipe = {k: v for k, v in config.items() if k != 'force'}
    recipe.update(src=os.path.abspath(src), src_sha1=source.digest(), format_version=FORMAT_VERSION)
    names = ['pretrain_train.txt', 'pretrain_val.txt', 'pretrain_classes.txt', 'train.txt',
             'test.txt', 'database.txt', 'classes.txt', 'class_names.txt', 'openset.txt',
             'openset_classes.txt']
    if not force and common.manifest_up_to_date(out_dir, recipe, names, same='config and download'):
        sys.exit(0)

    files = set(source.names)
    wnids = read_wnids(source)
    if not 0 < hash_classes < len(wnids):
        sys.exit(f"error: hash_classes must be in 1..{len(wnids) - 1}, got {hash_classes}")
    words = read_words(source, wnids)
    val = read_val(source, wnids, files)
    train = read_train(source, wnids, files)
    prefix = image_prefix(source, [n for w in wnids for n in train[w] + val[w]])

    def rel(n):
        return f"{prefix}/{n}"

    counts = write_pretrain_lists(wnids, train, val, rel)
    counts.update(write_hashing_lists(wnids, words, train, val, rel))
    common.write_manifest(out_dir, 'data/prepare_tinyimagenet.py', recipe, counts)
    print(f"{out_dir}: Tiny ImageNet lists from {src}")
    print(f"  pretraining: {counts['pretrain_classes']} classes, train {counts['pretrain_train']}  "
          f"val {counts['pretrain_val']}")
    print(f"  hashing: {counts['classes']} classes (seed {seed}), train {counts['train']}  database "
          f"{counts['database']} (contains train)  test {counts['test']} (queries, disjoint from database)")
    print(f"  open set: {counts['openset']} validation images of the other {counts['openset_classes']} classes")
