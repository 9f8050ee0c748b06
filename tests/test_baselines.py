"""Tests of the Table 5 baselines (baselines/badnets.py, lcba.py, issba.py): each one's defining
property on real files, the shared output format, reruns and one-line errors. CPU, about a minute."""
import json
import math
import os
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT, make_image_lists
from script_runner import run_script

sys.path.insert(0, ROOT)

import utils  # noqa: E402
from baselines import badnets, issba, lcba  # noqa: E402

PY = sys.executable
N_CLASSES, PER_CLASS = 4, (10, 3, 10)  # train 40 (10 per class), test 12, database 40


def _run(args):
    return run_script(args)


def _config(module, **overrides):
    """The script's config with overrides, as its command line would resolve it."""
    g = dict(vars(module))
    return utils.configure(g, [f'--{k}={v}' for k, v in overrides.items()], show=False)


def _crop(path, image_size, resize_size=0):
    """The clean uint8 image at the model's geometry, as the baselines compare against."""
    from PIL import Image
    tf = utils.build_transform(image_size, resize_size, 'none')
    with Image.open(path) as im:
        return np.round(tf(im.convert('RGB')).permute(1, 2, 0).numpy() * 255).astype(np.int64)


def _png(path):
    from PIL import Image
    with Image.open(path) as im:
        assert im.format == 'PNG' and im.mode == 'RGB'
        return np.asarray(im).astype(np.int64)


def _error(excinfo):
    msg = str(excinfo.value)
    assert msg.startswith('error:') and '\n' not in msg, msg
    return msg


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp('baselines')
    folder = make_image_lists(str(base / 'data'), classes=N_CLASSES, per_class=PER_CLASS, size=32)
    common_keys = dict(data_dir=folder, dataset='fx', image_size=32, resize_size=0, num_workers=0,
                       out_dir=str(base / 'res'), checkpoint_dir=str(base / 'ckpt'))
    return dict(base=base, folder=folder, keys=common_keys)


# ------------------------------------------------------------------------------------------------
# BadNets: exactly the patch pixels change, the chosen 5% are relabelled, nothing else
# ------------------------------------------------------------------------------------------------

def test_badnets_patch_and_relabel_via_cli(data):
    folder = data['folder']
    args = ['baselines/badnets.py', 'configs/demo.py', '--target=3',
            f"--openset_list={os.path.join(folder, 'database.txt')}", '--n_openset=5'] + \
        [f'--{k}={v}' for k, v in data['keys'].items()]
    r = _run(args)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    out = os.path.join(data['keys']['out_dir'], 'fx_badnets_t3_p0.05')
    clean_paths, clean_labels = utils.read_list(os.path.join(folder, 'train.txt'))
    paths, labels = utils.read_list(os.path.join(out, 'poisoned_train.txt'))
    info = json.load(open(os.path.join(out, 'poisons.json')))
    chosen = [e['index'] for e in info['poisons']]
    assert info['attack'] == 'badnets' and info['labels_mode'] == 'target'
    assert len(chosen) == info['n_poisons'] == round(0.05 * len(clean_paths)) == 2
    side = info['params']['side_px']
    assert side == max(3, round(18 * 32 / 224)) == 3
    for i, (p, lab) in enumerate(zip(paths, labels)):
        if i in chosen:  # relabelled to the target, drawn from non-target images, in place
            assert clean_labels[i, 3] == 0
            assert lab.tolist() == [0, 0, 0, 1] and p.endswith(info['poisons'][chosen.index(i)]['poison'])
            png, clean = _png(p), _crop(clean_paths[i], 32)
            assert (png[-side:, -side:] == 255).all()  # the white square
            mask = np.zeros(png.shape[:2], bool)
            mask[-side:, -side:] = True
            assert (png[~mask] == clean[~mask]).all()  # every other pixel untouched
            assert (png[mask] != clean[mask]).any()
        else:  # untouched rows
            assert os.path.samefile(p, clean_paths[i]) and (lab == clean_labels[i]).all()
    # triggered queries: non-target test images, the same square, labelled with the target
    q_paths, q_labels = utils.read_list(os.path.join(out, 'trigger_closed.txt'))
    _, test_labels = utils.read_list(os.path.join(folder, 'test.txt'))
    assert len(q_paths) == int((test_labels[:, 3] == 0).sum())
    assert (q_labels == np.eye(N_CLASSES, dtype=np.uint8)[3]).all()
    st = json.load(open(os.path.join(out, 'stealth.json')))
    src = st['trigger_closed']['sources'][0]
    png, clean = _png(q_paths[0]), _crop(src, 32)
    assert (png[-side:, -side:] == 255).all() and (png[:-side] == clean[:-side]).all()
    # stealth figures as implement_tri_gen.py writes them (SPEC D21)
    assert set(st) == {'poisons', 'trigger_closed', 'trigger_open'} and st['trigger_open']['n'] == 5
    mses = [((_png(os.path.join(out, e['poison'])) - _crop(e['source'], 32)) ** 2).mean()
            for e in info['poisons']]
    assert st['poisons']['mse'] == pytest.approx(np.mean(mses), rel=1e-9)
    assert st['poisons']['psnr_db'] == pytest.approx(10 * math.log10(255 ** 2 / np.mean(mses)))
    assert {'n', 'mse', 'psnr_db', 'ssim', 'per_image_mse', 'per_image_ssim'} <= set(st['poisons'])
    # the same command again reuses every part
    r = _run(args)
    assert r.returncode == 0 and r.stdout.count('skipped') == 3, r.stdout[-2000:]


def test_badnets_geometry_resize_crop_and_patch_scaling(data, capsys):
    """resize_size > 0: PNGs at image_size, equal to the resized centre crop outside the patch; the
    side follows round(badnets_patch * image_size / patch_ref_size)."""
    c = _config(badnets, **dict(data['keys'], image_size=24, resize_size=28, target=0,
                                badnets_patch=18, patch_ref_size=72, poison_rate=0.1))
    out = badnets.main(c)
    info = json.load(open(os.path.join(out, 'poisons.json')))
    assert info['params']['side_px'] == 6 and info['n_poisons'] == 4
    for e in info['poisons']:
        png, clean = _png(os.path.join(out, e['poison'])), _crop(e['source'], 24, 28)
        assert png.shape == (24, 24, 3)
        assert (png[-6:, -6:] == 255).all() and (png[:-6] == clean[:-6]).all()
        assert (png[:, :-6] == clean[:, :-6]).all()


# ------------------------------------------------------------------------------------------------
# LCBA: labels kept, |poison - clean| <= eps outside the patch, the checkerboard patch
# ------------------------------------------------------------------------------------------------

def test_pgd_away_is_bounded_and_moves_away_from_own_code():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 6 * 6, 12)).requires_grad_(False)
    x = torch.rand(5, 3, 8, 8)
    x[0] = 0.0  # an image at the border of [0, 1]
    eps = 8 / 255
    x_adv, d_after = lcba.pgd_away(model, x, eps, 2 / 255, 10)
    assert (x_adv - x).abs().max().item() <= eps + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    b = torch.sign(model(x))
    before = lcba.relaxed_hamming(model(x), b)
    after = lcba.relaxed_hamming(model(x_adv), b)
    assert (after > before).all()
    assert d_after.shape == (5,) and (d_after >= 0).all()


@pytest.fixture(scope='module')
def surrogate(data):
    """A small real CSQ surrogate (1 epoch) written by CSQ.py as train_tri_gen.py expects it."""
    k = data['keys']
    r = _run(['CSQ.py', 'configs/demo.py', f"--data_dir={k['data_dir']}", '--dataset=fx',
              '--epochs=1', '--bits=16', '--image_size=32', f"--checkpoint_dir={k['checkpoint_dir']}",
              f"--out_dir={k['out_dir']}", '--eval_every=0'])
    assert r.returncode == 0, r.stderr[-2000:]
    path = os.path.join(k['checkpoint_dir'], 'fx_CSQ_resnet18_16.pt')
    assert os.path.isfile(path)
    return path


def test_lcba_clean_label_eps_bound_and_patch(data, surrogate, capsys):
    c = _config(lcba, **dict(data['keys'], target=1, surrogate_backbone='resnet18', surrogate_bits=16))
    out = lcba.main(c)
    folder = data['folder']
    clean_paths, clean_labels = utils.read_list(os.path.join(folder, 'train.txt'))
    paths, labels = utils.read_list(os.path.join(out, 'poisoned_train.txt'))
    assert (labels == clean_labels).all()  # clean label
    info = json.load(open(os.path.join(out, 'poisons.json')))
    assert info['labels_mode'] == 'keep' and info['n_poisons'] == round(0.5 * 10) == 5
    assert all(clean_labels[e['index'], 1] == 1 for e in info['poisons'])  # target-class images
    assert sum('poisons/' in p for p in paths) == 5
    side = info['params']['side_px']
    assert side == 3
    board = (np.add.outer(np.arange(3), np.arange(3)) % 2 == 0) * 255  # 3x3 checkerboard
    eps255 = c['lcba_eps'] * 255
    changed = 0
    for e in info['poisons']:
        png, clean = _png(os.path.join(out, e['poison'])), _crop(e['source'], 32)
        assert (png[-3:, -3:] == board[:, :, None]).all()
        mask = np.zeros(png.shape[:2], bool)
        mask[-3:, -3:] = True
        diff = np.abs(png - clean)[~mask]
        assert diff.max() <= eps255 + 1  # the L-inf budget, 1 for rounding
        changed += int((diff > 0).sum())
    assert changed > 0  # PGD did perturb
    # queries: the patch alone, no PGD
    st = json.load(open(os.path.join(out, 'stealth.json')))
    q_paths, q_labels = utils.read_list(os.path.join(out, 'trigger_closed.txt'))
    assert (q_labels[:, 1] == 1).all()
    for p, src in zip(q_paths[:3], st['trigger_closed']['sources'][:3]):
        png, clean = _png(p), _crop(src, 32)
        assert (png[-3:, -3:] == board[:, :, None]).all() and (png[:-3] == clean[:-3]).all()
    assert len(info['pgd_hamming_to_own_code']['per_image']) == 5
    # rerun: skipped
    capsys.readouterr()
    lcba.main(c)
    assert capsys.readouterr().out.count('skipped') == 2


def test_lcba_errors(data, surrogate):
    k = data['keys']
    with pytest.raises(SystemExit) as e:  # a surrogate of another bit length
        lcba.main(_config(lcba, **dict(k, surrogate_backbone='resnet18', surrogate_bits=32,
                                       surrogate_checkpoint=surrogate)))
    msg = _error(e)
    assert 'bits=16' in msg and 'bits=32' in msg and 'fx_CSQ_resnet18_16.pt' in msg
    with pytest.raises(SystemExit) as e:  # of another backbone
        lcba.main(_config(lcba, **dict(k, surrogate_backbone='resnet34', surrogate_bits=16,
                                       surrogate_checkpoint=surrogate)))
    assert 'resnet34' in _error(e)
    with pytest.raises(SystemExit) as e:  # missing: names the file and the command
        lcba.main(_config(lcba, **dict(k, surrogate_backbone='resnet18', surrogate_bits=64)))
    msg = _error(e)
    assert 'fx_CSQ_resnet18_64.pt' in msg and 'CSQ.py' in msg


# ------------------------------------------------------------------------------------------------
# ISSBA: the decoder recovers the secret on held-out images; poisons relabelled; reuse
# ------------------------------------------------------------------------------------------------

ISSBA_TINY = dict(issba_secret_bits=8, issba_width=8, issba_depth=2, issba_steps=400,
                  issba_ramp_steps=200, issba_lr=0.003, issba_batch=16, issba_save_every=100,
                  image_size=16, resize_size=16)  # 16 px: about 10 s of CPU
ISSBA_MIN_BIT_ACC = 0.9  # stated acceptance level on held-out (test-list) images


def test_issba_secret_recovered_on_held_out_images(data, capsys):
    c = _config(issba, **dict(data['keys'], **dict(ISSBA_TINY, target=2)))
    out = issba.main(c)
    info = json.load(open(os.path.join(out, 'poisons.json')))
    acc = info['issba_held_out']
    assert acc['n_images'] == N_CLASSES * PER_CLASS[1]  # the test list, never trained on
    assert acc['bit_acc_attack_secret'] >= ISSBA_MIN_BIT_ACC, acc
    assert acc['bit_acc_random_secrets'] >= ISSBA_MIN_BIT_ACC - 0.05, acc
    # the saved PNGs carry the secret too (decode the files themselves)
    ck = utils.load_checkpoint(info['model']['checkpoint'])
    dec = issba.Decoder(8, 8, 2)
    dec.load_state_dict(ck['decoder'])
    dec.eval()
    pngs = torch.stack([torch.from_numpy(_png(os.path.join(out, e['poison']))).permute(2, 0, 1)
                        for e in info['poisons']]).float() / 255
    secret = torch.tensor(info['params']['secret']).float()
    with torch.no_grad():
        assert issba.bit_accuracy(dec(pngs), secret.expand(len(pngs), -1)).mean() >= ISSBA_MIN_BIT_ACC
    # poison label: the chosen non-target images relabelled to the target
    _, clean_labels = utils.read_list(os.path.join(data['folder'], 'train.txt'))
    paths, labels = utils.read_list(os.path.join(out, 'poisoned_train.txt'))
    idx = [e['index'] for e in info['poisons']]
    assert len(idx) == 2 and all(clean_labels[i, 2] == 0 for i in idx)
    assert all(labels[i].tolist() == [0, 0, 1, 0] for i in idx)
    rest = [i for i in range(len(labels)) if i not in idx]
    assert (labels[rest] == clean_labels[rest]).all()
    st = json.load(open(os.path.join(out, 'stealth.json')))
    assert st['poisons']['mse'] > 0 and st['poisons']['psnr_db'] > 15  # invisible-ish, not a no-op
    # rerun: the encoder is reused, every part skipped
    capsys.readouterr()
    issba.main(c)
    text = capsys.readouterr().out
    assert 'reusing' in text and text.count('skipped') == 2 and 'ISSBA step' not in text


def test_issba_resumes_training(data, capsys, tmp_path):
    keys = dict(data['keys'], checkpoint_dir=str(tmp_path / 'ckpt'))
    c = _config(issba, **dict(keys, **dict(ISSBA_TINY, target=2, issba_steps=20, issba_save_every=10)))
    enc, dec, mid = issba.train_or_load(c, utils.read_list(
        os.path.join(data['folder'], 'train.txt'))[0], 'cpu')
    assert mid['step'] == 20
    c2 = dict(c, issba_steps=30)
    _, _, mid2 = issba.train_or_load(c2, utils.read_list(
        os.path.join(data['folder'], 'train.txt'))[0], 'cpu')
    text = capsys.readouterr().out
    assert mid2['checkpoint'] == mid['checkpoint'] and 'resuming' in text and 'at step 20/30' in text
    assert utils.load_checkpoint(mid['checkpoint'])['step'] == 30


# ------------------------------------------------------------------------------------------------
# bad input: one line naming the file and what was expected
# ------------------------------------------------------------------------------------------------

def test_bad_inputs_are_one_line_errors(data, tmp_path):
    k = data['keys']
    with pytest.raises(SystemExit) as e:
        badnets.main(_config(badnets, **dict(k, target=7)))
    msg = _error(e)
    assert 'train.txt' in msg and 'valid 0..3' in msg
    with pytest.raises(SystemExit) as e:
        badnets.main(_config(badnets, **dict(k, train_list=str(tmp_path / 'nope.txt'))))
    assert 'nope.txt' in _error(e)
    for rate in (0.0, 1.5):
        with pytest.raises(SystemExit) as e:
            badnets.main(_config(badnets, **dict(k, poison_rate=rate)))
        assert 'poison_rate must be in (0, 1]' in _error(e)
    with pytest.raises(SystemExit) as e:  # more poisons than non-target images
        badnets.main(_config(badnets, **dict(k, poison_rate=0.9)))
    assert 'not of target class' in _error(e)
    with pytest.raises(SystemExit) as e:  # 1% of 40 images: no poison
        issba.main(_config(issba, **dict(k, poison_rate=0.01, issba_depth=2)))
    assert 'gives no poison' in _error(e)
    with pytest.raises(SystemExit) as e:
        issba.main(_config(issba, **dict(k, image_size=30, issba_depth=2)))
    assert 'divisible' in _error(e)
    # a wrong type or unknown key from the command line (utils.configure)
    r = _run(['baselines/lcba.py', '--lcba_eps=big'])
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1 and 'lcba_eps' in lines[0], r.stderr


def test_shared_keys_have_one_type_across_scripts():
    """A preset serves every script: a baseline key that another script also has must have the same
    type there (and the baseline-only knobs carry their attack's prefix or patch_ref_size)."""
    import ast
    import glob
    types = {}
    for path in glob.glob(os.path.join(ROOT, '*.py')):
        for node in ast.parse(open(path).read()).body:
            if (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                    and isinstance(node.value, ast.Constant)):
                types.setdefault(node.targets[0].id, set()).add(type(node.value.value))
    for module in (badnets, lcba, issba):
        own = utils.config_keys(dict(vars(module)))
        for key in own:
            if key in types:
                assert types[key] == {type(getattr(module, key))}, (module.__name__, key)
            else:
                assert key.split('_')[0] in ('badnets', 'lcba', 'issba') or key == 'patch_ref_size', key
