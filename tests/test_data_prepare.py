"""data/prepare_*.py: toy generation, class-per-folder split, CIFAR-10 and the ImageNet/COCO converters.

Every script runs as `python data/prepare_X.py --key=value` in a subprocess, on small or fake inputs
under pytest's tmp_path.
"""
import json
import os
import pickle
import sys

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import utils  # noqa: E402
from script_runner import run_script  # noqa: E402

SMALL_TOY = ['--train_per_class=6', '--database_per_class=10', '--test_per_class=4',
             '--openset_per_class=3']


def run(script, *args, ok=True):
    r = run_script([os.path.join('data', script), *args], timeout=120, threads=None)
    if ok:
        assert r.returncode == 0, r.stdout + r.stderr
    else:
        assert r.returncode != 0, r.stdout
    return r


def lines(path):
    with open(path) as f:
        return f.read().splitlines()


def write_png(path, value=0, size=8):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(path)


# ------------------------------------------------------------------------------------------------
# toy
# ------------------------------------------------------------------------------------------------

def test_toy_is_deterministic_and_seeded(tmp_path):
    a, b, c = tmp_path / 'a', tmp_path / 'b', tmp_path / 'c'
    run('prepare_toy.py', f'--out_dir={a}', *SMALL_TOY)
    run('prepare_toy.py', f'--out_dir={b}', *SMALL_TOY)
    run('prepare_toy.py', f'--out_dir={c}', '--seed=1', *SMALL_TOY)
    for name in ('train.txt', 'test.txt', 'database.txt', 'classes.txt', 'openset.txt'):
        assert lines(a / name) == lines(b / name)
    rels = [ln.split()[0] for name in ('database.txt', 'test.txt', 'openset.txt')
            for ln in lines(a / name)]
    assert all((a / r).read_bytes() == (b / r).read_bytes() for r in rels)
    differ = sum((a / r).read_bytes() != (c / r).read_bytes() for r in rels)
    assert differ == len(rels)


def test_toy_splits(tmp_path):
    out = tmp_path / 'toy'
    r = run('prepare_toy.py', f'--out_dir={out}', *SMALL_TOY)
    assert 'train 60' in r.stdout and 'database 100' in r.stdout
    sets = {}
    for name, n in (('train', 60), ('database', 100), ('test', 40)):
        paths, labels = utils.read_list(str(out / f'{name}.txt'), num_classes=10)
        assert len(paths) == n and labels.shape == (n, 10)
        assert (labels.sum(1) == 1).all() and (np.bincount(labels.argmax(1), minlength=10) == n // 10).all()
        sets[name] = set(paths)
    assert sets['train'] <= sets['database']
    assert not sets['test'] & sets['database']
    classes = lines(out / 'classes.txt')
    open_classes = lines(out / 'openset_classes.txt')
    assert len(classes) == 10 and len(open_classes) >= 5 and not set(classes) & set(open_classes)
    paths, labels = utils.read_list(str(out / 'openset.txt'))
    assert labels.shape == (3 * len(open_classes), len(open_classes))
    assert not set(paths) & (sets['database'] | sets['test'])
    im = Image.open(paths[0])
    assert im.size == (32, 32) and im.mode == 'RGB'


def test_toy_skips_when_unchanged_and_rebuilds_on_change(tmp_path):
    out = tmp_path / 'toy'
    run('prepare_toy.py', f'--out_dir={out}', *SMALL_TOY)
    assert 'skipped' in run('prepare_toy.py', f'--out_dir={out}', *SMALL_TOY).stdout
    r = run('prepare_toy.py', f'--out_dir={out}', '--image_size=64', *SMALL_TOY)
    assert 'skipped' not in r.stdout
    assert Image.open(out / lines(out / 'train.txt')[0].split()[0]).size == (64, 64)


def test_toy_rejects_bad_config(tmp_path):
    r = run('prepare_toy.py', f'--out_dir={tmp_path}', '--train_per_class=20',
            '--database_per_class=10', ok=False)
    assert 'database_per_class' in r.stderr
    r = run('prepare_toy.py', f'--out_dir={tmp_path}', '--image_sise=64', ok=False)
    assert 'unknown config key' in r.stderr


# ------------------------------------------------------------------------------------------------
# class-per-folder
# ------------------------------------------------------------------------------------------------

def test_prepare_folder(tmp_path):
    src = tmp_path / 'photos'
    for c in ('zebra', 'apple', 'mango'):
        for i in range(12):
            write_png(str(src / c / f'{i:02d}.png'), value=i)
        (src / c / 'notes.txt').write_text('not an image')
    write_png(str(src / 'apple' / 'sub' / 'deep.jpg'))  # nested files count
    out = tmp_path / 'lists'
    r = run('prepare_folder.py', f'--src_root={src}', f'--out_dir={out}', '--train_per_class=4',
            '--test_per_class=3')
    assert '3 non-image files skipped' in r.stdout
    assert lines(out / 'classes.txt') == ['apple', 'mango', 'zebra']
    sets = {}
    for name, n in (('train', 12), ('test', 9), ('database', 13 - 3 + 2 * (12 - 3))):
        paths, labels = utils.read_list(str(out / f'{name}.txt'), num_classes=3)
        assert len(paths) == n, name
        assert all(os.path.basename(os.path.dirname(p)) == lines(out / 'classes.txt')[l.argmax()]
                   or p.endswith('deep.jpg') for p, l in zip(paths, labels))
        sets[name] = set(paths)
    assert sets['train'] <= sets['database'] and not sets['test'] & sets['database']
    assert 'skipped' in run('prepare_folder.py', f'--src_root={src}', f'--out_dir={out}',
                            '--train_per_class=4', '--test_per_class=3').stdout
    # an empty class folder, or too few images, is an error naming the folder
    r = run('prepare_folder.py', f'--src_root={src}', f'--out_dir={out}', ok=False)
    assert f'{src / "apple"}: 13 images, need 150' in r.stderr
    os.makedirs(src / 'empty')
    r = run('prepare_folder.py', f'--src_root={src}', f'--out_dir={out}', '--train_per_class=4',
            '--test_per_class=3', ok=False)
    assert f'{src / "empty"}: class folder has no images' in r.stderr


# ------------------------------------------------------------------------------------------------
# CIFAR-10 (a fake python-format copy, 10 images per class)
# ------------------------------------------------------------------------------------------------

def test_prepare_cifar10_fake(tmp_path):
    folder = tmp_path / 'raw' / 'cifar-10-batches-py'
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    for b in ['data_batch_1', 'data_batch_2', 'data_batch_3', 'data_batch_4', 'data_batch_5', 'test_batch']:
        with open(folder / b, 'wb') as f:
            pickle.dump({b'data': rng.integers(0, 256, (20, 3072), dtype=np.uint8),
                         b'labels': list(np.arange(20) % 10)}, f)
    with open(folder / 'batches.meta', 'wb') as f:
        pickle.dump({b'label_names': [f'c{i}'.encode() for i in range(10)]}, f)
    out = tmp_path / 'cifar'
    r = run('prepare_cifar10.py', f'--cifar_root={tmp_path / "raw"}', f'--out_dir={out}', ok=False)
    assert 'expected 10 classes x 6,000' in r.stderr
    run('prepare_cifar10.py', f'--cifar_root={tmp_path / "raw"}', f'--out_dir={out}',
        '--check_counts=False', '--train_per_class=5', '--test_per_class=2')
    train, _ = utils.read_list(str(out / 'train.txt'), num_classes=10)
    test, _ = utils.read_list(str(out / 'test.txt'), num_classes=10)
    db, _ = utils.read_list(str(out / 'database.txt'), num_classes=10)
    assert (len(train), len(test), len(db)) == (50, 20, 100)
    assert set(train) <= set(db) and not set(test) & set(db)
    # the PNG holds the batch's pixels exactly (CHW rows -> HWC)
    with open(folder / 'data_batch_1', 'rb') as f:
        first = pickle.load(f, encoding='bytes')[b'data'][0].reshape(3, 32, 32).transpose(1, 2, 0)
    assert (np.asarray(Image.open(out / 'images' / '00_c0' / '00000.png')) == first).all()
    r = run('prepare_cifar10.py', f'--cifar_root={tmp_path / "nowhere"}', f'--out_dir={out}', ok=False)
    assert 'cifar-10-batches-py' in r.stderr


# ------------------------------------------------------------------------------------------------
# ImageNet-100 and COCO converters (fake lists + fake image files)
# ------------------------------------------------------------------------------------------------

def _onehot(c, C):
    return ' '.join('1' if i == c else '0' for i in range(C))


def _fake_imagenet(tmp_path):
    wnids = ['n00000003', 'n00000001', 'n00000002']  # label order is the list's, not sorted
    root, src = tmp_path / 'ILSVRC', tmp_path / 'lists'
    os.makedirs(src)
    train, db, test = [], [], []
    for c, w in enumerate(wnids):
        for i in range(6):
            name = f'{w}_{100 + i}.JPEG'
            write_png(str(root / 'train' / w / name))
            db.append(f'./data/imagenet/image/{name} {_onehot(c, 3)}')
            if i < 3:
                train.append(f'image/{name} {_onehot(c, 3)}')
        for i in range(2):
            name = f'ILSVRC2012_val_{10 * c + i + 1:08d}.JPEG'
            write_png(str(root / 'val' / name))
            test.append(f'val_image/{name} {_onehot(c, 3)}')
    (src / 'train.txt').write_text('\n'.join(train) + '\n')
    (src / 'test.txt').write_text('\n'.join(test) + '\n')
    for k in range(8):  # HashNet's database0..7.txt
        (src / f'database{k}.txt').write_text(''.join(l + '\n' for l in db[k::8]))
    return wnids, root, src


def test_prepare_imagenet100_fake(tmp_path):
    wnids, root, src = _fake_imagenet(tmp_path)
    out = tmp_path / 'imagenet'
    common = [f'--imagenet_root={root}', f'--lists_dir={src}', f'--out_dir={out}']
    r = run('prepare_imagenet100.py', *common, ok=False)  # the protocol counts do not hold
    assert str(src / 'train.txt') in r.stderr and '13,000' in r.stderr
    r = run('prepare_imagenet100.py', *common, '--check_counts=False')
    assert 'train 9  database 18' in r.stdout
    assert lines(out / 'classes.txt') == wnids
    first = lines(out / 'train.txt')[0].split()
    assert first[0] == '../ILSVRC/train/n00000003/n00000003_100.JPEG' and first[1:] == ['1', '0', '0']
    assert lines(out / 'test.txt')[0].startswith('../ILSVRC/val/ILSVRC2012_val_00000001.JPEG ')
    paths = {n: set(utils.read_list(str(out / f'{n}.txt'), num_classes=3)[0])
             for n in ('train', 'test', 'database')}
    assert paths['train'] <= paths['database'] and not paths['test'] & paths['database']
    assert 'skipped' in run('prepare_imagenet100.py', *common, '--check_counts=False').stdout

    # val images sorted into class folders: the wnid comes from the label
    os.makedirs(root / 'val_sorted' / 'n00000001')
    os.replace(root / 'val' / 'ILSVRC2012_val_00000011.JPEG',
               root / 'val_sorted' / 'n00000001' / 'ILSVRC2012_val_00000011.JPEG')
    r = run('prepare_imagenet100.py', *common, '--check_counts=False', '--force=True', ok=False)
    assert 'image not found' in r.stderr and 'ILSVRC2012_val_00000011' in r.stderr
    r = run('prepare_imagenet100.py', *common, '--check_counts=False', '--val_dir=val_sorted',
            '--val_layout=class_folders', '--check_files=False', '--relative_paths=False')
    assert f"{root}/val_sorted/n00000001/ILSVRC2012_val_00000011.JPEG 0 1 0" in lines(out / 'test.txt')

    # a query that is also in the database is named with its file and line
    with open(src / 'database3.txt', 'a') as f:
        f.write(f'val_image/ILSVRC2012_val_00000001.JPEG {_onehot(0, 3)}\n')
    r = run('prepare_imagenet100.py', *common, '--check_counts=False', ok=False)
    assert f'{src / "test.txt"}:1' in r.stderr and 'also in the database' in r.stderr
    r = run('prepare_imagenet100.py', *common, '--check_counts=False', '--warn_only=True')
    assert 'warning:' in r.stdout


def test_prepare_coco_fake(tmp_path):
    rng = np.random.default_rng(0)
    root, src, ann_dir = tmp_path / 'coco2014', tmp_path / 'lists', tmp_path / 'annotations'
    os.makedirs(src)
    os.makedirs(ann_dir)
    cat_names = [f'cat {i:02d}' for i in range(80)]  # sorted order = index order
    cat_ids = [int(i) for i in rng.permutation(np.arange(1, 91))[:80]]
    labels = {}
    for split, n in (('train2014', 12), ('val2014', 8)):
        images, anns = [], []
        for k in range(n + 1):
            name = f'COCO_{split}_{k + 1:012d}.jpg'
            images.append({'id': 1000 * len(split) + k, 'file_name': name})
            if k == n:
                continue  # one image without objects: never in the database
            write_png(str(root / split / name))
            cats = rng.choice(80, size=1 + k % 3, replace=False)
            labels[name] = np.isin(np.arange(80), cats).astype(int)
            anns += [{'image_id': 1000 * len(split) + k, 'category_id': cat_ids[c]} for c in cats]
        order = rng.permutation(80)  # categories listed in id order, not by name
        cats_json = [{'id': cat_ids[c], 'name': cat_names[c]} for c in order]
        with open(ann_dir / f'instances_{split}.json', 'w') as f:
            json.dump({'images': images, 'annotations': anns, 'categories': cats_json}, f)
    names = sorted(labels)
    row = lambda n: f"{n.split('_')[1]}/{n} {' '.join(map(str, labels[n]))}"  # noqa: E731
    train, test = names[0:6] + names[14:16], names[6:10] + names[16:17]
    (src / 'train.txt').write_text(''.join(row(n) + '\n' for n in train))
    (src / 'test.txt').write_text(''.join(row(n) + '\n' for n in test))
    out = tmp_path / 'coco'
    common = [f'--coco_root={root}', f'--lists_dir={src}', f'--out_dir={out}']

    r = run('prepare_coco.py', *common, ok=False)  # no database.txt and no annotations
    assert 'database.txt' in r.stderr and 'annotations_dir' in r.stderr
    common.append(f'--annotations_dir={ann_dir}')
    r = run('prepare_coco.py', *common, ok=False)
    assert str(src / 'train.txt') in r.stderr and '10,000' in r.stderr
    run('prepare_coco.py', *common, '--check_counts=False')
    assert lines(out / 'classes.txt') == cat_names
    tr, _ = utils.read_list(str(out / 'train.txt'), num_classes=80)
    te, _ = utils.read_list(str(out / 'test.txt'), num_classes=80)
    db, db_labels = utils.read_list(str(out / 'database.txt'), num_classes=80)
    assert len(db) == 20 - len(test) and set(tr) <= set(db) and not set(te) & set(db)
    assert lines(out / 'train.txt')[0].startswith('../coco2014/train2014/COCO_train2014_000000000001.jpg ')
    for p, l in zip(db, db_labels):
        assert (l == labels[os.path.basename(p)]).all()

    # a train label that disagrees with the annotations is reported with its file and line
    bad = lines(src / 'train.txt')
    fields = bad[0].split()
    fields[1:] = ['1' if v == '0' else '0' for v in fields[1:]]
    (src / 'train.txt').write_text('\n'.join([' '.join(fields)] + bad[1:]) + '\n')
    r = run('prepare_coco.py', *common, '--check_counts=False', ok=False)
    assert f'{src / "train.txt"}:1' in r.stderr and 'another label' in r.stderr
