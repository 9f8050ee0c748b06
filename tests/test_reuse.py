"""The reuse rule (README "Reuse rule"): an output is reused only when the record of what it was
made from matches the inputs as they are now; a rewritten list or image is made again."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT

import evaluate
import utils
from hash_models import engine


def _csq(data, tmp, capsys, **kw):
    """CSQ.py's run in this process (no interpreter start per call): (results, stdout)."""
    import CSQ
    base = dict(data_dir=data, dataset='fx', epochs=1, eval_every=0, image_size=16, bits=16,
                checkpoint_dir=os.path.join(tmp, 'ckpt'), out_dir=os.path.join(tmp, 'res'))
    base.update(kw)
    argv = [os.path.join(ROOT, 'configs', 'demo.py')] + [f"--{k}={v}" for k, v in base.items()]
    config = utils.configure(dict(vars(CSQ)), argv, show=False)
    capsys.readouterr()
    results = engine.run(config, 'CSQ', CSQ.make_loss)
    return results, capsys.readouterr().out


def _write_queries(data, sources, target=1):
    """q/q{i}.png copies of `sources` and q.txt listing them with the target label."""
    os.makedirs(os.path.join(data, 'q'), exist_ok=True)
    rels = []
    for i, src in enumerate(sources):
        rels.append(f"q/q{i}.png")
        shutil.copyfile(os.path.join(data, src), os.path.join(data, rels[-1]))
    labels = np.tile(np.eye(4, dtype=np.uint8)[target], (len(rels), 1))
    utils.write_list(os.path.join(data, 'q.txt'), rels, labels)
    return os.path.join(data, 'q.txt')


def _repaint(img, value=255):
    """New content for an image under the same path and mtime (a rewrite within one clock tick)."""
    from PIL import Image
    st = os.stat(img)
    with Image.open(img) as im:
        a = np.asarray(im.convert('RGB')).copy()
    a[:6, :6] = value
    Image.fromarray(a).save(img)
    os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns))


def _npz(path):
    with np.load(path) as z:
        return z['codes'], engine.read_provenance(z)


def test_rewritten_query_list_and_image_are_encoded_again(image_lists, tmp_path, capsys):
    """The issue's scenario at small size: a finished victim, its query list rewritten under the
    same path (other lines, other images), the same command again."""
    tmp, data = str(tmp_path), image_lists
    test_rows = [line.split()[0] for line in open(os.path.join(data, 'test.txt'))]
    db_rows = [line.split()[0] for line in open(os.path.join(data, 'database.txt'))]
    q = _write_queries(data, test_rows[:6])
    res, out = _csq(data, tmp, capsys, queries=f"trig={q}")
    run_dir = os.path.join(tmp, 'res', 'fx_CSQ_resnet18_16')
    codes, rec = _npz(os.path.join(run_dir, 'codes_trig.npz'))
    assert codes.shape == (6, 16) and rec['n'] == 6 and rec['images_by'] == 'content'
    assert rec['list_sha1'] == utils.file_sha1(q)

    # 1. the list and its images rewritten under the same paths: 9 other images
    q_mtime = os.stat(q).st_mtime_ns
    _write_queries(data, db_rows[:9])
    os.utime(q, ns=(q_mtime, q_mtime))  # within the same clock tick: the content still tells
    res, out = _csq(data, tmp, capsys, queries=f"trig={q}")
    assert 'nothing to train' not in out
    assert 'encoding again codes_trig.npz (list file content differs)' in out
    assert 'reusing codes_database.npz' in out and 'reusing codes_test.npz' in out
    codes, rec = _npz(os.path.join(run_dir, 'codes_trig.npz'))
    db_codes, _ = _npz(os.path.join(run_dir, 'codes_database.npz'))
    with np.load(os.path.join(run_dir, 'codes_database.npz')) as z:
        db_labels = z['labels']
    assert codes.shape == (9, 16) and rec['n'] == 9
    expect = evaluate.mean_average_precision(codes, db_codes, np.tile(np.eye(4)[1], (9, 1)),
                                             db_labels, -1)
    assert res['final']['trig'] == pytest.approx(expect, abs=1e-12)  # the figure of the new list
    assert json.load(open(os.path.join(run_dir, 'results.json')))['final']['trig'] == res['final']['trig']

    # 2. one image of the list with new content (same path, same mtime): encoded again
    _repaint(os.path.join(data, 'q', 'q3.png'))
    res, out = _csq(data, tmp, capsys, queries=f"trig={q}")
    assert 'encoding again codes_trig.npz (images differ)' in out
    _, rec2 = _npz(os.path.join(run_dir, 'codes_trig.npz'))
    assert rec2['images_sha1'] != rec['images_sha1']
    assert rec2['images_sha1'] == utils.list_record(q, utils.read_list(q)[0])['images_sha1']

    # 3. nothing changed: nothing is encoded, the results are reused
    res, out = _csq(data, tmp, capsys, queries=f"trig={q}")
    assert 'nothing to train' in out and 'encoding again' not in out and 'reusing' not in out


def _codes_run(folder, lists, bits=8, seed=0):
    """A run folder whose codes_{split}.npz carry the provenance of real list files."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder)
    for split, list_file in lists.items():
        paths, labels = utils.read_list(list_file)
        engine.save_codes(os.path.join(folder, f"codes_{split}.npz"),
                          rng.choice([-1, 1], (len(paths), bits)).astype(np.int8), labels,
                          utils.list_record(list_file, paths))


def test_attack_report_refuses_query_codes_of_different_lists(image_lists, tmp_path):
    data = image_lists
    other = os.path.join(data, 'test_other.txt')
    shutil.copyfile(os.path.join(data, 'test.txt'), other)
    lists = {s: os.path.join(data, f"{s}.txt") for s in ('database', 'test')}
    lists['trig_open'] = os.path.join(data, 'test.txt')
    _codes_run(str(tmp_path / 'clean'), lists)
    _codes_run(str(tmp_path / 'bd'), dict(lists, trig_open=other), seed=1)
    # the same lines and images under another name: the same list, compared
    row = evaluate.attack_report(str(tmp_path / 'clean'), str(tmp_path / 'bd'), 1, -1)
    assert row['n_trig_open'] == 12
    # the other copy rewritten with one line fewer, and then an image changed: refused
    lines = open(other).readlines()
    utils.atomic_write_text(other, ''.join(lines[1:]))
    shutil.rmtree(tmp_path / 'bd')
    _codes_run(str(tmp_path / 'bd'), dict(lists, trig_open=other), seed=1)
    a, b = (str(tmp_path / d / 'codes_trig_open.npz') for d in ('clean', 'bd'))
    with pytest.raises(evaluate.MismatchError, match='different lists'):
        evaluate.attack_report(str(tmp_path / 'clean'), str(tmp_path / 'bd'), 1, -1)
    p = subprocess.run([sys.executable, 'evaluate.py', f"--clean_dir={tmp_path / 'clean'}",
                        f"--backdoor_dir={tmp_path / 'bd'}", '--target=1', '--topk=-1',
                        f"--out_dir={tmp_path}"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode != 0 and len(p.stderr.strip().splitlines()) == 1
    assert p.stderr.startswith(f"error: {a} (12 rows) and {b} (11 rows) were encoded from "
                               f"different lists")
    assert not os.path.exists(tmp_path / 'bd.json')  # no report written
    # same length, one image with new content since the clean codes were made
    utils.atomic_write_text(other, ''.join(lines))
    _repaint(os.path.join(data, lines[0].split()[0]))
    shutil.rmtree(tmp_path / 'bd')
    _codes_run(str(tmp_path / 'bd'), dict(lists, trig_open=other), seed=1)
    with pytest.raises(evaluate.MismatchError) as e:
        evaluate.attack_report(str(tmp_path / 'clean'), str(tmp_path / 'bd'), 1, -1)
    ct, bt = (os.path.join(str(tmp_path / d), 'codes_test.npz') for d in ('clean', 'bd'))
    assert str(e.value).startswith(f"{ct} and {bt} were encoded from different lists (images "
                                   f"differ: ")
