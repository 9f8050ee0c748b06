"""data/prepare_tinyimagenet.py on a small zip in the official layout built here, and (read only,
no extraction) on ../shared/data/tiny-imagenet-200.zip when it is there."""
import os
import sys
import zipfile

import numpy as np
import pytest
from script_runner import run_script
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import utils  # noqa: E402

SHARED_ZIP = os.path.join(ROOT, '..', 'shared', 'data', 'tiny-imagenet-200.zip')
WNIDS = ['n00000005', 'n00000001', 'n00000004', 'n00000002', 'n00000006', 'n00000003']  # not sorted
TRAIN, VAL = 5, 2   # per class
SMALL = ['--num_classes=6', '--hash_classes=3', '--train_per_class=2', f'--val_per_class={VAL}']


def run(*args, ok=True):
    r = run_script(['data/prepare_tinyimagenet.py', *args], timeout=120)
    assert (r.returncode == 0) == ok, r.stdout + r.stderr
    return r


def jpeg_bytes(value):
    import io
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(buf, format='JPEG')
    return buf.getvalue()


def make_zip(path, annotations=None):
    """The official layout at small size; val image k belongs to class (7 * k) % 6 (shuffled order).
    Every image's grey value encodes its class so that labels can be checked from the pixels."""
    top = 'tiny-imagenet-200/'
    val_class = {f'val_{k}.JPEG': WNIDS[(7 * k + k // 6) % 6] for k in range(6 * VAL)}
    lines = annotations or [f'{name}\t{w}\t0\t1\t7\t7' for name, w in val_class.items()]
    with zipfile.ZipFile(path, 'w') as z:
        z.writestr(top + 'wnids.txt', ''.join(w + '\n' for w in WNIDS))
        z.writestr(top + 'words.txt', ''.join(f'{w}\tthing {w[-1]}, other name\n' for w in WNIDS)
                   + 'n09999999\tnot used\n')
        for c, w in enumerate(WNIDS):
            z.writestr(f'{top}train/{w}/{w}_boxes.txt', '')
            for i in range(TRAIN):
                z.writestr(f'{top}train/{w}/images/{w}_{i}.JPEG', jpeg_bytes(40 * c))
        z.writestr(top + 'val/val_annotations.txt', '\n'.join(lines) + '\n')
        for name, w in val_class.items():
            z.writestr(f'{top}val/images/{name}', jpeg_bytes(40 * WNIDS.index(w)))
        z.writestr(top + 'test/images/test_0.JPEG', jpeg_bytes(0))  # unlabelled, not read
    return val_class


def read(out, name, C):
    return utils.read_list(str(out / name), num_classes=C)


def test_zip_lists_counts_labels_and_seeded_classes(tmp_path):
    val_class = make_zip(tmp_path / 'tiny.zip')
    out = tmp_path / 'out'
    r = run(f'--src={tmp_path / "tiny.zip"}', f'--out_dir={out}', *SMALL)
    assert 'train 30  val 12' in r.stdout and 'train 6  database 15' in r.stdout, r.stdout
    assert 'test 6' in r.stdout and 'open set: 6' in r.stdout

    # pretraining: every image, labels in wnids.txt order; the validation labels come from
    # val_annotations.txt (each image's grey value is 40 * its class index)
    assert (out / 'pretrain_classes.txt').read_text().split() == WNIDS
    for name, n in (('pretrain_train.txt', 30), ('pretrain_val.txt', 12)):
        paths, labels = read(out, name, 6)
        assert len(paths) == n and (labels.sum(1) == 1).all()
        for p, lab in zip(paths, labels):
            grey = np.asarray(Image.open(p).convert('L')).mean()
            assert abs(grey - 40 * lab.argmax()) < 6, (p, grey)
    val_paths, val_labels = read(out, 'pretrain_val.txt', 6)
    for p, lab in zip(val_paths, val_labels):
        assert WNIDS[lab.argmax()] == val_class[os.path.basename(p)]
    assert not os.path.exists(out / 'tiny-imagenet-200' / 'test')  # unlabelled test/ is not extracted

    # the hashing classes: a seeded choice, kept in wnids.txt order, named from words.txt
    chosen = [WNIDS[i] for i in np.sort(np.random.default_rng(0).choice(6, 3, replace=False))]
    assert (out / 'classes.txt').read_text().split() == chosen
    assert (out / 'class_names.txt').read_text().splitlines()[0] == f'{chosen[0]}\tthing {chosen[0][-1]}'
    others = [w for w in WNIDS if w not in chosen]
    assert (out / 'openset_classes.txt').read_text().split() == others
    tr, db, te = (read(out, n, 3) for n in ('train.txt', 'database.txt', 'test.txt'))
    assert (tr[1].sum(0) == 2).all() and (db[1].sum(0) == TRAIN).all() and (te[1].sum(0) == VAL).all()
    dbl = dict(zip(db[0], map(tuple, db[1])))
    assert all(p in dbl and dbl[p] == tuple(lab) for p, lab in zip(*tr))  # train inside the database
    assert not set(te[0]) & set(db[0])
    for p, lab in zip(*te):
        assert val_class[os.path.basename(p)] == chosen[lab.argmax()]
    op = read(out, 'openset.txt', 3)
    assert len(op[0]) == 6 and all(val_class[os.path.basename(p)] in others for p in op[0])

    # same config and zip: skipped; another seed: another choice of classes (some seed differs)
    assert 'skipped' in run(f'--src={tmp_path / "tiny.zip"}', f'--out_dir={out}', *SMALL).stdout
    picks = {tuple(np.sort(np.random.default_rng(s).choice(6, 3, replace=False))) for s in range(1, 4)}
    assert len(picks) > 1
    run(f'--src={tmp_path / "tiny.zip"}', f'--out_dir={tmp_path / "s1"}', '--seed=1', *SMALL)
    assert (tmp_path / 's1' / 'classes.txt').read_text().split() == [
        WNIDS[i] for i in np.sort(np.random.default_rng(1).choice(6, 3, replace=False))]


def test_extracted_folder_gives_the_same_lists(tmp_path):
    make_zip(tmp_path / 'tiny.zip')
    with zipfile.ZipFile(tmp_path / 'tiny.zip') as z:
        z.extractall(tmp_path / 'download')
    a, b = tmp_path / 'a', tmp_path / 'b'
    run(f'--src={tmp_path / "tiny.zip"}', f'--out_dir={a}', *SMALL)
    run(f'--src={tmp_path / "download"}', f'--out_dir={b}', *SMALL)  # the folder above tiny-imagenet-200/
    for name in ('pretrain_train.txt', 'pretrain_val.txt', 'train.txt', 'test.txt', 'database.txt',
                 'openset.txt'):
        la, lb = (p.joinpath(name).read_text().splitlines() for p in (a, b))
        assert [l.replace('tiny-imagenet-200/', '') for l in la] == \
               [l.replace('../download/tiny-imagenet-200/', '') for l in lb]
    assert read(b, 'train.txt', 3)[0][0].startswith(str(b / '..' / 'download'))


@pytest.mark.parametrize('bad, message', [
    ('val_3.JPEG\tn00000004\t0\t1\t7', 'expected'),            # a field missing
    ('val_3.JPEG\tn00000009\t0\t1\t7\t7', 'not in wnids.txt'),  # unknown class
    ('val_99.JPEG\tn00000004\t0\t1\t7\t7', 'not found'),        # no such image
])
def test_malformed_annotation_is_a_one_line_error(tmp_path, bad, message):
    val_class = make_zip(tmp_path / 'ok.zip')
    lines = [f'{name}\t{w}\t0\t1\t7\t7' for name, w in val_class.items()]
    lines[4] = bad
    make_zip(tmp_path / 'bad.zip', annotations=lines)
    out = tmp_path / 'out'
    r = run(f'--src={tmp_path / "bad.zip"}', f'--out_dir={out}', *SMALL, ok=False)
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and 'Traceback' not in err, err
    assert 'tiny-imagenet-200/val/val_annotations.txt:5' in err and message in err, err
    assert not os.path.exists(out / 'prepare.json')


def test_counts_are_checked(tmp_path):
    make_zip(tmp_path / 'tiny.zip')
    r = run(f'--src={tmp_path / "tiny.zip"}', f'--out_dir={tmp_path / "o"}', '--hash_classes=3',
            ok=False)  # the defaults expect 200 classes
    assert 'wnids.txt: 6 classes, expected 200' in r.stderr
    r = run(f'--src={tmp_path / "tiny.zip"}', f'--out_dir={tmp_path / "o"}', *SMALL,
            '--val_per_class=3', ok=False)
    assert 'has 2 validation images, expected 3' in r.stderr
    r = run(f'--src={tmp_path / "tiny.zip"}', f'--out_dir={tmp_path / "o"}', *SMALL,
            '--train_per_class=6', ok=False)
    assert '5 training images, need at least train_per_class=6' in r.stderr


@pytest.mark.skipif(not os.path.isfile(SHARED_ZIP), reason='../shared/data/tiny-imagenet-200.zip absent')
def test_shared_zip_layout_and_counts():
    """The real download's files are read as the script reads them (no extraction: fast)."""
    sys.path.insert(0, os.path.join(ROOT, 'data'))
    from data import prepare_tinyimagenet as p
    source = p.common.TinyImageNetSource(SHARED_ZIP)
    files = set(source.names)
    wnids = p.read_wnids(source)
    val = p.read_val(source, wnids, files)
    train = p.read_train(source, wnids, files)
    assert len(wnids) == 200 and all(len(v) == 50 for v in val.values())
    assert {len(v) for v in train.values()} in ({300}, {500})
    ten = os.path.join(ROOT, '..', 'shared', 'data', 'tiny-imagenet-10', 'classes.txt')
    if os.path.isfile(ten):
        with open(ten) as f:
            assert set(f.read().split()) <= set(wnids)


def test_tiny200_surrogate_from_zip_or_folder(tmp_path):
    """data/prepare_tiny200.py (DarkHash's surrogate) reads the download through the same reader:
    the excluded classes are left out, per_class seeded images of every other class, and the zip
    and its extracted folder give the same list."""
    src = tmp_path / 'tiny-imagenet-200.zip'
    make_zip(src)
    (tmp_path / 'exclude.txt').write_text(WNIDS[0] + '\n')
    outs = []
    for name, path in (('zip', src), ('folder', tmp_path / 'x')):
        if name == 'folder':
            with zipfile.ZipFile(src) as z:
                z.extractall(path)
        out = tmp_path / f'sur_{name}'
        r = run_script(['data/prepare_tiny200.py', f'--zip_path={path}',
                        f'--exclude_classes={tmp_path / "exclude.txt"}', '--per_class=2',
                        f'--out_dir={out}'], timeout=120, threads=None)
        assert r.returncode == 0, r.stdout + r.stderr
        outs.append(out)
    rows = [(out / 'database.txt').read_text() for out in outs]
    assert rows[0] == rows[1] and len(rows[0].splitlines()) == 2 * (len(WNIDS) - 1)
    assert (outs[0] / 'classes.txt').read_text().split() == sorted(WNIDS[1:])
    paths, labels = utils.read_list(str(outs[0] / 'database.txt'), num_classes=len(WNIDS) - 1)
    for p, lab in zip(paths, labels):   # the grey value encodes the class (make_zip)
        w = sorted(WNIDS[1:])[int(lab.argmax())]
        assert f'/{w}/' in p and int(np.asarray(Image.open(p)).mean() / 40 + 0.5) == WNIDS.index(w)
