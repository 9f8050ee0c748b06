"""figures.py on tiny synthetic codes and images written in tmp_path: non-empty PNGs, right numbers."""
import json
import os
from types import SimpleNamespace

import numpy as np
import pytest

import figures

pytest.importorskip('matplotlib')


def _codes(path, codes, labels):
    np.savez_compressed(path, codes=codes.astype(np.int8), labels=labels.astype(np.uint8))
    return str(path)


def _synthetic_run(folder, target=1, classes=4, bits=16, seed=0):
    """database / test / triggered codes: class c near centre c; triggers near the target's centre."""
    rng = np.random.default_rng(seed)
    centres = rng.choice([-1, 1], (classes, bits))
    os.makedirs(folder, exist_ok=True)

    def draw(cls, flip=0.1):
        c = centres[cls].copy()
        c[rng.random(c.shape) < flip] *= -1
        return c

    db_cls = np.repeat(np.arange(classes), 30)
    te_cls = np.repeat(np.arange(classes), 8)
    _codes(os.path.join(folder, 'codes_database.npz'), draw(db_cls), np.eye(classes)[db_cls])
    _codes(os.path.join(folder, 'codes_test.npz'), draw(te_cls), np.eye(classes)[te_cls])
    trig = draw(np.full(20, target), flip=0.2)
    _codes(os.path.join(folder, 'codes_trig_x_closed.npz'), trig, np.eye(classes)[np.full(20, target)])
    _codes(os.path.join(folder, 'codes_trig_x_open.npz'), trig, np.eye(classes)[np.full(20, target)])
    return folder


def _attack_folder(folder, n=3, size=12):
    from PIL import Image
    rng = np.random.default_rng(1)
    os.makedirs(os.path.join(folder, 'poisons'), exist_ok=True)
    items = []
    for i in range(n):
        clean = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        src = os.path.join(folder, f"src{i}.png")
        Image.fromarray(clean).save(src)
        pois = clean.copy()
        pois[0, 0] = (pois[0, 0].astype(int) + 5).clip(0, 255)
        Image.fromarray(pois).save(os.path.join(folder, 'poisons', f"{i}.png"))
        items.append({'index': i, 'source': src, 'poison': f"poisons/{i}.png"})
    with open(os.path.join(folder, 'poisons.json'), 'w') as f:
        json.dump({'attack': 'fake', 'poisons': items}, f)
    return folder


def test_figure6_curves_and_png(tmp_path):
    run = _synthetic_run(str(tmp_path / 'victim'))
    c = figures.targeted_curves(os.path.join(run, 'codes_trig_x_open.npz'),
                                os.path.join(run, 'codes_database.npz'), target=1, topk=-1, pn_max_n=50)
    assert c['n_used'] == 20 and 0.5 < c['map'] <= 1  # triggers sit near the target's centre
    assert c['N'][-1] == 50 and np.all(np.diff(c['N']) > 0)
    assert c['R'][-1] == pytest.approx(1.0)  # all 30 target items retrieved by the end of the ranking
    bad = figures.targeted_curves(os.path.join(run, 'codes_trig_x_open.npz'),
                                  os.path.join(run, 'codes_database.npz'), target=2, topk=-1)
    assert bad['map'] < c['map']
    out = figures.figure6([('BadHash', c), ('BadNets', bad)], str(tmp_path / 'f6.png'))
    assert os.path.getsize(out) > 1000


def test_figure5_triplets_and_png(tmp_path):
    folder = _attack_folder(str(tmp_path / 'attack'))
    trip = figures.poison_triplets(folder, image_size=12, resize_size=0, n=2, amp=10)
    assert len(trip) == 2
    clean, pois, res = trip[0]
    assert clean.shape == pois.shape == res.shape == (12, 12, 3)
    assert res[0, 0].max() == 50 and res[1:].max() == 0  # |5| x 10 at the changed pixel only
    out = figures.figure5([('BadHash', trip), ('LCBA', trip[:1])], str(tmp_path / 'f5.png'), amp=10)
    assert os.path.getsize(out) > 1000
    assert figures.utils.nearest_factor(12) == 11 and figures.utils.nearest_factor(32) == 4 and figures.utils.nearest_factor(224) == 1
    with pytest.raises(ValueError, match='model geometry 8x8'):
        figures.poison_triplets(folder, image_size=8, resize_size=0)


def test_figure4_tsne_png(tmp_path):
    pytest.importorskip('sklearn')
    run = _synthetic_run(str(tmp_path / 'victim'))
    codes, ids, names = figures.tsne_groups(os.path.join(run, 'codes_database.npz'),
                                            os.path.join(run, 'codes_test.npz'),
                                            os.path.join(run, 'codes_trig_x_closed.npz'), target=1,
                                            n_max=15)
    assert [int((ids == g).sum()) for g in range(3)] == [15, 8, 15]
    assert 'class 0' in names[1]  # the first non-target class
    out = figures.figure4([('clean', codes, ids, names), ('backdoored', codes, ids, names)],
                          str(tmp_path / 'f4.png'))
    assert os.path.getsize(out) > 1000


def test_plan_figures_writes_all_three(tmp_path):
    pytest.importorskip('sklearn')
    victim = _synthetic_run(str(tmp_path / 'victim'))
    clean = _synthetic_run(str(tmp_path / 'clean'), seed=1)
    attack = {'method': 'badhash', 'folder': _attack_folder(str(tmp_path / 'attack')),
              'splits': {'trigger_closed': 'trig_x_closed', 'trigger_open': 'trig_x_open'},
              'geometry': (12, 0), 'victim_dir': victim, 'clean_dir': clean, 'topk': -1,
              'tm': 'CSQ', 'vb': 'resnet34', 'bits': '16'}
    plan = SimpleNamespace(attacks=[attack], c={'target': 1})
    paths = figures.plan_figures(plan, str(tmp_path / 'tables'), 'table5_fake', {'tsne_points': 20})
    assert sorted(os.path.basename(p) for p in paths) == [
        'table5_fake_figure4.png', 'table5_fake_figure5.png', 'table5_fake_figure6.png']
    assert all(os.path.getsize(p) > 1000 for p in paths)
