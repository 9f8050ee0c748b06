"""Tests for the two attack steps: train_tri_gen.py (loss presets, GAN loop, resume) and
implement_tri_gen.py (poisons, lists, stealth figures, reruns, errors). CPU, under two minutes."""
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

import attack_common  # noqa: E402
import generator  # noqa: E402
import labcln  # noqa: E402
import train_tri_gen as ttg  # noqa: E402
import utils  # noqa: E402
from discriminator import discriminator_targets  # noqa: E402

PY = sys.executable


# ------------------------------------------------------------------------------------------------
# loss presets against hand-written formulas (SPEC D1)
# ------------------------------------------------------------------------------------------------

@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    b, c, s, k, n = 3, 3, 4, 8, 5
    x = torch.rand(b, c, s, s, generator=g)
    x_b = torch.rand(b, c, s, s, generator=g) * 2 - 1           # raw tanh output
    hash_out = torch.randn(b, k, generator=g) * 2
    h_c = torch.where(torch.rand(b, k, generator=g) > 0.5, 1.0, -1.0)
    d_fake = torch.randn(b, n + 1, generator=g)
    d_real = torch.randn(b, n + 1, generator=g)
    y = torch.eye(n)[[0, 2, 4]]
    y_s = torch.eye(n)[[1, 1, 3]]
    lp = torch.tensor(0.37)
    return dict(x=x, x_b=x_b, hash_out=hash_out, h_c=h_c, d_fake=d_fake, d_real=d_real, y=y,
                y_s=y_s, lp=lp, k=k, b=b)


def _sig(v):
    return 1 / (1 + math.exp(-v))


def test_g_loss_paper_matches_formula(batch):
    t = batch
    w = (80.0, 5.0, 200.0)
    total, parts = ttg.g_loss_paper(t['x_b'], t['x'], t['hash_out'], t['h_c'], t['d_fake'],
                                    t['y_s'], t['lp'], w)
    l_h = l_r = l_bd = 0.0
    for i in range(t['b']):
        dot = sum(math.tanh(t['hash_out'][i, j].item()) * t['h_c'][i, j].item() for j in range(t['k']))
        l_h += (t['k'] - dot) / 2
        diff = (t['x_b'][i] - t['x'][i]).flatten().tolist()
        l_r += math.sqrt(sum(v * v for v in diff))
        tgt = t['y_s'][i].tolist() + [0.0]
        l_bd += math.sqrt(sum((_sig(t['d_fake'][i, j].item()) - tgt[j]) ** 2 for j in range(len(tgt))))
    l_h, l_r, l_bd = l_h / t['b'], l_r / t['b'] + 0.37, l_bd / t['b']
    assert parts['hash'].item() == pytest.approx(l_h, rel=1e-5)
    assert parts['rec'].item() == pytest.approx(l_r, rel=1e-5)
    assert parts['bd'].item() == pytest.approx(l_bd, rel=1e-5)
    assert total.item() == pytest.approx(80 * l_h + 5 * l_r + 200 * l_bd, rel=1e-5)


def test_g_losses_average_the_hash_term_over_an_ensemble(batch):
    """extra_surrogates: a list of hash outputs gives the mean of each one's hash term, in both
    presets; the other terms are unchanged."""
    t = batch
    other = t['hash_out'].flip(0) * 0.5
    for fn in (ttg.g_loss_paper, ttg.g_loss_code):
        args = (t['x_b'], t['x'])
        rest = (t['h_c'], t['d_fake'], t['y_s'], t['lp'], (80.0, 5.0, 200.0))
        _, one = fn(*args, t['hash_out'], *rest)
        _, two = fn(*args, other, *rest)
        _, both = fn(*args, [t['hash_out'], other], *rest)
        assert both['hash'].item() == pytest.approx((one['hash'].item() + two['hash'].item()) / 2, rel=1e-6)
        assert both['rec'].item() == one['rec'].item() and both['bd'].item() == one['bd'].item()
        _, same = fn(*args, [t['hash_out'], t['hash_out']], *rest)
        assert same['hash'].item() == one['hash'].item()


def test_d_loss_paper_matches_formula(batch):
    t = batch
    got = ttg.d_loss_paper(t['d_real'], t['y'], t['d_fake'], t['y_s']).item()
    real = fake = 0.0
    for i in range(t['b']):
        tr = t['y'][i].tolist() + [0.0]   # real: [y, 0]
        tf = t['y_s'][i].tolist() + [1.0]  # fake: [y_s, 1]
        real += math.sqrt(sum((_sig(t['d_real'][i, j].item()) - tr[j]) ** 2 for j in range(len(tr))))
        fake += math.sqrt(sum((_sig(t['d_fake'][i, j].item()) - tf[j]) ** 2 for j in range(len(tf))))
    assert got == pytest.approx(0.5 * (real / t['b'] + fake / t['b']), rel=1e-5)


def test_g_loss_code_matches_formula(batch):
    t = batch
    w = (10.0, 200.0, 1.0)
    total, parts = ttg.g_loss_code(t['x_b'], t['x'], t['hash_out'], t['h_c'], t['d_fake'],
                                   t['y_s'], t['lp'], w)
    xb, x = t['x_b'].flatten().tolist(), t['x'].flatten().tolist()
    mse = sum((a - b) ** 2 for a, b in zip(xb, x)) / len(x)
    prod = [a * b for a, b in zip(t['hash_out'].flatten().tolist(), t['h_c'].flatten().tolist())]
    l_h = 1 - sum(prod) / len(prod)  # raw outputs, no tanh: unbounded (official code)
    tgt = torch.cat([t['y_s'], torch.zeros(t['b'], 1)], 1).flatten().tolist()
    l_bd = sum((a - b) ** 2 for a, b in zip(t['d_fake'].flatten().tolist(), tgt)) / len(tgt)
    assert parts['rec'].item() == pytest.approx(mse + 0.37, rel=1e-5)
    assert parts['hash'].item() == pytest.approx(l_h, rel=1e-5)
    assert parts['bd'].item() == pytest.approx(l_bd, rel=1e-5)
    assert total.item() == pytest.approx(10 * l_h + 200 * (mse + 0.37) + 1 * l_bd, rel=1e-5)


def test_d_loss_code_matches_formula(batch):
    t = batch
    got = ttg.d_loss_code(t['d_real'], t['y'], t['d_fake'], t['y_s']).item()
    tr = torch.cat([t['y'], torch.zeros(t['b'], 1)], 1).flatten().tolist()
    tf = torch.cat([t['y_s'], torch.ones(t['b'], 1)], 1).flatten().tolist()
    mr = sum((a - b) ** 2 for a, b in zip(t['d_real'].flatten().tolist(), tr)) / len(tr)
    mf = sum((a - b) ** 2 for a, b in zip(t['d_fake'].flatten().tolist(), tf)) / len(tf)
    assert got == pytest.approx(0.5 * (mr + mf), rel=1e-5)


def test_discriminator_targets_as_used_by_the_loop():
    y = torch.tensor([[0., 1., 0.], [1., 0., 1.]])  # one-hot and multi-hot
    real = discriminator_targets(y, fake=False)
    fake = discriminator_targets(y, fake=True)
    assert real.tolist() == [[0, 1, 0, 0], [1, 0, 1, 0]]  # real -> [y, 0]
    assert fake.tolist() == [[0, 1, 0, 1], [1, 0, 1, 1]]  # fake -> [y_s, 1]
    # the G backdoor term asks D to call the fake real and of class y_s: zero loss at that target
    logits = torch.where(real > 0.5, 50.0, -50.0)
    _, parts = ttg.g_loss_paper(torch.zeros(2, 3, 2, 2), torch.zeros(2, 3, 2, 2), torch.zeros(2, 4),
                                torch.ones(2, 4), logits, y, torch.tensor(0.0), (1, 1, 1))
    assert parts['bd'].item() == pytest.approx(0.0, abs=1e-6)


def test_preset_weights_and_lr_rule():
    assert ttg.default_weights('paper', 'imagenet', 'resnet50') == (80.0, 5.0, 200.0)
    assert ttg.default_weights('paper', 'coco', 'resnet50') == (100.0, 5.0, 200.0)
    assert ttg.default_weights('code', 'imagenet', 'resnet50') == (10.0, 200.0, 1.0)
    assert ttg.default_weights('code', 'imagenet', 'vgg11') == (5.0, 200.0, 1.0)
    rule = ttg.lr_rule('linear', 100)
    assert [rule(e) for e in (0, 49)] == [1.0, 1.0]
    assert rule(50) == pytest.approx(1 - 1 / 51)
    assert rule(99) == pytest.approx(1 / 51)  # official: 1e-4 -> 1.96e-6 at epoch 100


# ------------------------------------------------------------------------------------------------
# end to end on a tiny dataset: surrogate -> train_tri_gen -> implement_tri_gen
# ------------------------------------------------------------------------------------------------

def _run(args, env=None):
    return run_script(args, env=env)


@pytest.fixture(scope='module')
def mini(tmp_path_factory):
    base = tmp_path_factory.mktemp('attack')
    data = make_image_lists(str(base / 'data'), classes=4, per_class=(6, 3, 8), size=32)
    ck, res = str(base / 'ckpt'), str(base / 'res')
    r = _run(['CSQ.py', 'configs/demo.py', f'--data_dir={data}', '--dataset=fx', '--epochs=1',
              '--bits=16', '--image_size=32', f'--checkpoint_dir={ck}', f'--out_dir={res}',
              '--eval_every=0'])
    assert r.returncode == 0, r.stderr[-2000:]
    common = [f'--data_dir={data}', '--dataset=fx', '--image_size=32', '--resize_size=0',
              '--surrogate_backbone=resnet18', '--surrogate_bits=16', f'--checkpoint_dir={ck}',
              f'--out_dir={res}', '--num_workers=0']
    gan = ['configs/demo.py', '--ngf=8', '--ndf=8', '--labcln_hidden=64', '--labcln_feat=32',
           '--labcln_steps=20', '--labcln_batch=16', '--lpips=none', '--batch_size=8',
           '--log_every=1', '--sample_every=2'] + common
    r = _run(['train_tri_gen.py'] + gan + ['--epochs=1'])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return dict(base=base, data=data, ck=ck, res=res, common=common, gan=gan, first=r)


def test_gan_training_outputs_and_resume(mini):
    run = 'fx_badhash_CSQ_resnet18_16'
    out = os.path.join(mini['res'], run)
    ckpt = utils.load_checkpoint(os.path.join(mini['ck'], run + '.pt'))
    assert ckpt['epoch'] == 1 and ckpt['step'] == 3  # 24 images / batch 8
    assert {'G', 'D', 'opt_G', 'opt_D', 'sched_G', 'sched_D', 'labcln', 'config', 'format'} <= set(ckpt)
    assert os.path.isfile(ckpt['labcln']['path'])
    assert os.path.isfile(os.path.join(out, 'samples', 'latest.png'))
    assert os.path.isfile(os.path.join(out, 'samples', 'epoch001_step000002.png'))
    from PIL import Image
    with Image.open(os.path.join(out, 'samples', 'latest.png')) as im:
        # rows clean | poisoned | residual; 32 px images enlarged 4x (nearest) to 128 px, padding 2
        assert im.size == (8 * (128 + 2) + 2, 3 * (128 + 2) + 2)
        px = np.asarray(im)[2:130, 2:130]
        assert (px[::4, ::4].repeat(4, 0).repeat(4, 1) == px).all()  # square 4 x 4 pixels
    summary = json.load(open(os.path.join(out, 'train_summary.json')))
    assert summary['lpips'] == 'none' and math.isfinite(summary['debug_psnr_db'])
    assert summary['machine']['torch'] == torch.__version__
    assert 'codes over the pool' in mini['first'].stdout
    # same command: finished, exits quickly
    r = _run(['train_tri_gen.py'] + mini['gan'] + ['--epochs=1'])
    assert r.returncode == 0 and 'already finished' in r.stdout
    assert 'LabCLN' not in r.stdout  # nothing rebuilt
    # longer run continues from the checkpoint at epoch 2, reusing LabCLN
    r = _run(['train_tri_gen.py'] + mini['gan'] + ['--epochs=2'])
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'resumed from' in r.stdout and 'at epoch 1/2' in r.stdout
    assert 'LabCLN: reusing' in r.stdout
    ckpt = utils.load_checkpoint(os.path.join(mini['ck'], run + '.pt'))
    assert ckpt['epoch'] == 2 and ckpt['step'] == 6
    assert [h['epoch'] for h in ckpt['history']] == [1, 2]
    lines = [json.loads(l) for l in open(os.path.join(out, 'log.jsonl'))]
    assert [l['epoch'] for l in lines if l.get('kind') == 'epoch'] == [1, 2]
    # a G trained longer than asked is not reused as the shorter one (nor shortened): one line
    r = _run(['train_tri_gen.py'] + mini['gan'] + ['--epochs=1'])
    assert r.returncode != 0 and 'trained for 2 epochs, this run asks for 1' in r.stderr, r.stderr
    assert utils.load_checkpoint(os.path.join(mini['ck'], run + '.pt'))['epoch'] == 2


def test_implement_outputs(mini):
    gen = ['configs/demo.py', f"--openset_list={os.path.join(mini['data'], 'database.txt')}",
           '--n_openset=5', '--target=1'] + mini['common']
    r = _run(['implement_tri_gen.py'] + gen)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    out = os.path.join(mini['res'], 'fx_badhash_CSQ_resnet18_16_t1_p0.5_replace')
    clean_paths, clean_labels = utils.read_list(os.path.join(mini['data'], 'train.txt'))
    paths, labels = utils.read_list(os.path.join(out, 'poisoned_train.txt'))  # paths resolve
    assert len(paths) == len(clean_paths)
    assert (labels == clean_labels).all()  # clean label
    info = json.load(open(os.path.join(out, 'poisons.json')))
    n_class = int(clean_labels[:, 1].sum())
    assert info['n_poisons'] == round(0.5 * n_class) == len(info['poisons'])
    assert sum('poisons/' in p for p in paths) == info['n_poisons']
    assert all(clean_labels[e['index'], 1] == 1 for e in info['poisons'])
    assert info['conf_classes'] != [1]  # 'other': a non-target class
    # PNGs are 8-bit and the recorded PSNR is 10 log10(255^2 / mean MSE) of the files
    from PIL import Image
    tf = utils.build_transform(32, 0, 'none')
    mses = []
    for e in info['poisons']:
        with Image.open(os.path.join(out, e['poison'])) as im:
            assert im.mode == 'RGB' and im.format == 'PNG'
            p = np.asarray(im).astype(np.float64)
        with Image.open(e['source']) as im:
            cl = np.round(tf(im.convert('RGB')).permute(1, 2, 0).numpy() * 255).astype(np.float64)
        mses.append(((p - cl) ** 2).mean())
    st = json.load(open(os.path.join(out, 'stealth.json')))
    assert st['poisons']['mse'] == pytest.approx(np.mean(mses), rel=1e-9)
    assert st['poisons']['psnr_db'] == pytest.approx(10 * math.log10(255 ** 2 / np.mean(mses)), rel=1e-9)
    assert -1 <= st['poisons']['ssim'] <= 1
    # triggered queries: labelled with the target, target-class test images excluded
    q_paths, q_labels = utils.read_list(os.path.join(out, 'trigger_closed.txt'))
    _, test_labels = utils.read_list(os.path.join(mini['data'], 'test.txt'))
    assert len(q_paths) == int((test_labels[:, 1] == 0).sum())
    assert (q_labels.argmax(1) == 1).all() and (q_labels.sum(1) == 1).all()
    # the untriggered control: the same source images, the same target labels
    c_paths, c_labels = utils.read_list(os.path.join(out, 'control_closed.txt'))
    same = [os.path.realpath(a) == os.path.realpath(b) for a, b in zip(c_paths, st['trigger_closed']['sources'])]
    assert (c_labels == q_labels).all() and len(c_paths) == len(q_paths) and all(same)
    o_paths, _ = utils.read_list(os.path.join(out, 'trigger_open.txt'))
    assert len(o_paths) == 5 and st['trigger_open']['n'] == 5
    # rerun reuses everything
    r = _run(['implement_tri_gen.py'] + gen)
    assert r.returncode == 0 and r.stdout.count('skipped') == 3, r.stdout


def test_implement_append_mode(mini):
    r = _run(['implement_tri_gen.py', 'configs/demo.py', '--poison_mode=append', '--copies=2',
              '--target=0', '--poison_rate=0.34'] + mini['common'])
    assert r.returncode == 0, r.stderr[-2000:]
    out = os.path.join(mini['res'], 'fx_badhash_CSQ_resnet18_16_t0_p0.34_append_x2')
    paths, labels = utils.read_list(os.path.join(out, 'poisoned_train.txt'))
    _, clean_labels = utils.read_list(os.path.join(mini['data'], 'train.txt'))
    assert len(paths) == len(clean_labels) + 2 * 2  # round(0.34 * 6) = 2 poisons, 2 copies each
    assert (labels[:len(clean_labels)] == clean_labels).all() and (labels[-4:, 0] == 1).all()


def test_oracle_poisons_move_towards_the_goal_within_the_budget(mini):
    """poisons_by=oracle (issue 11's oracle rung): PGD through the surrogate, bounded by oracle_eps,
    in its own attack folder; more steps bring the poisons' codes closer to the goal code."""
    base = ['implement_tri_gen.py', 'configs/demo.py', '--target=1', '--poisons_by=oracle',
            '--oracle_goal=labcln', '--oracle_eps=0.1', '--oracle_step_size=0.02'] + mini['common']
    ham = {}
    for steps in (0, 6):
        r = _run(base + [f'--oracle_steps={steps}', f'--attack_tag=s{steps}'])
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        out = os.path.join(mini['res'], f'fx_badhash_CSQ_resnet18_16_t1_p0.5_replace_oracle-labcln26_s{steps}')
        info = json.load(open(os.path.join(out, 'poisons.json')))
        assert info['poisons_by'] == 'oracle' and info['oracle']['goal'] == 'labcln'
        assert len(info['oracle']['hamming_to_goal']) == info['n_poisons']
        assert len(info['oracle']['goal_code']) == 16
        ham[steps] = info['oracle']['mean_hamming']
        from PIL import Image
        tf = utils.build_transform(32, 0, 'none')
        for e in info['poisons']:   # within the budget (26/255, plus the PNG's rounding)
            with Image.open(os.path.join(out, e['poison'])) as im:
                p = np.asarray(im).astype(np.float64)
            with Image.open(e['source']) as im:
                cl = np.round(tf(im.convert('RGB')).permute(1, 2, 0).numpy() * 255)
            assert np.abs(p - cl).max() <= 0.1 * 255 + 1 and (steps or np.abs(p - cl).max() == 0)
    assert ham[6] < ham[0]


def test_oracle_triggers_aim_at_the_confusing_class_code(mini):
    """triggers_by=oracle: the triggered queries are per-image PGD towards the goal code as well
    (an upper bound on G), here the surrogate's mean code of the confusing class; its reach is
    recorded per set; triggers_by=oracle with G's own triggered code as the goal is refused."""
    base = ['implement_tri_gen.py', 'configs/demo.py', '--target=1', '--conf_label=2',
            '--poisons_by=oracle', '--triggers_by=oracle', '--oracle_eps=0.1', '--oracle_step_size=0.02',
            '--oracle_steps=4'] + mini['common']
    r = _run(base + ['--oracle_goal=trigger'])
    assert _err(r)[0] and 'triggers_by=oracle' in r.stderr, r.stderr
    r = _run(base + ['--oracle_goal=confusing'])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    out = os.path.join(mini['res'], 'fx_badhash_CSQ_resnet18_16_t1_p0.5_replace_oracle-confusing26'
                                    '_trig-confusing26_conf2')
    st = json.load(open(os.path.join(out, 'stealth.json')))
    info = json.load(open(os.path.join(out, 'poisons.json')))
    # the goal: sign of the surrogate's summed code over the confusing class's training images
    model, _ = attack_common.load_hash_model(os.path.join(mini['ck'], 'fx_CSQ_resnet18_16.pt'),
                                             'resnet18', 16)
    paths, labels = utils.read_list(os.path.join(mini['data'], 'train.txt'))
    ds = attack_common.PathImages([p for p, l in zip(paths, labels) if l.argmax() == 2],
                                  utils.build_transform(32, 0, 'none'))
    with torch.no_grad():
        total = model(torch.stack([ds[i][0] for i in range(len(ds))])).sum(0)
    goal = torch.where(total >= 0, 1.0, -1.0).tolist()
    assert info['oracle']['goal_code'] == goal and st['trigger_closed']['oracle']['goal_code'] == goal
    q_paths, _ = utils.read_list(os.path.join(out, 'trigger_closed.txt'))
    assert len(st['trigger_closed']['oracle']['hamming_to_goal']) == len(q_paths)
    assert st['trigger_closed']['oracle']['eps'] == 0.1 and 0 < st['trigger_closed']['psnr_db'] < 60


def test_poison_select_hard_takes_the_least_typical_target_images(mini):
    """poison_select=hard (our option): the poisons are the target images whose surrogate codes agree
    least with their class centre, recomputed here; the confusing label is the random mode's; its own
    folder; an unknown value is a one-line error."""
    base = ['implement_tri_gen.py', 'configs/demo.py', '--target=1', '--poison_rate=0.5'] + mini['common']
    for extra in ([], ['--poison_select=hard']):
        r = _run(base + extra)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert 'poison_select=hard: surrogate typicality' in r.stdout
    rand = json.load(open(os.path.join(mini['res'], 'fx_badhash_CSQ_resnet18_16_t1_p0.5_replace', 'poisons.json')))
    hard = json.load(open(os.path.join(mini['res'], 'fx_badhash_CSQ_resnet18_16_t1_p0.5_replace_hard',
                                       'poisons.json')))
    assert hard['conf_label'] == rand['conf_label'] and hard['config']['poison_select'] == 'hard'
    paths, labels = utils.read_list(os.path.join(mini['data'], 'train.txt'))
    members = [i for i, l in enumerate(labels) if l[1] == 1]
    model, _ = attack_common.load_hash_model(os.path.join(mini['ck'], 'fx_CSQ_resnet18_16.pt'), 'resnet18', 16)
    ds = attack_common.PathImages([paths[i] for i in members], utils.build_transform(32, 0, 'none'))
    with torch.no_grad():
        codes = torch.tanh(model(torch.stack([ds[k][0] for k in range(len(ds))])))
    score = (codes * torch.where(codes.sum(0) >= 0, 1.0, -1.0)).mean(1).numpy()
    chosen = sorted(e['index'] for e in hard['poisons'])
    assert len(chosen) == round(0.5 * len(members))
    picked = np.array([score[members.index(i)] for i in chosen])
    others = np.array([score[k] for k, i in enumerate(members) if i not in chosen])
    assert picked.max() <= others.min() + 1e-6  # the least typical ones
    r = _run(base + ['--poison_select=worst'])
    assert _err(r)[0] and 'poison_select must be one of random, hard' in r.stderr, r.stderr


def test_goal_reach_bounds_and_errors(mini):
    """goal_reach.py: at budget 0 per-image PGD leaves the codes where they are (the clean
    distance); a larger budget gets no farther from the goal; bad goals are one-line errors."""
    lab = utils.load_checkpoint(os.path.join(mini['ck'], 'fx_badhash_CSQ_resnet18_16.pt'))['labcln']['path']
    base = ['goal_reach.py', 'configs/demo.py', '--target=1', '--conf_label=2', '--n_images=4',
            '--steps=4', '--eps=0,40', '--universal_epochs=1', '--universal_images=6',
            f"--out_dir={mini['res']}"] + [a for a in mini['common'] if not a.startswith('--num_workers')]
    r = _run(base + ['--goals=nearest'])
    assert _err(r)[0] and 'nearest' in r.stderr, r.stderr
    r = _run(base + ['--goals=labcln'])
    assert _err(r)[0] and 'labcln_checkpoint' in r.stderr, r.stderr
    # trained Gs beside PGD: the official full-image G and a residual G bounded by 8/255
    r = _run(['train_tri_gen.py'] + mini['gan'] + ['--tag=reach', '--epochs=1', '--g_output=residual',
                                                    '--g_eps=0.0313'])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    gans = [os.path.join(mini['ck'], f'fx_badhash_CSQ_resnet18_16{t}.pt') for t in ('', '_reach')]
    r = _run(base + [f'--labcln_checkpoint={lab}', f'--gans={mini["ck"]}/none.pt'])
    assert _err(r)[0] and 'none.pt not found' in r.stderr, r.stderr
    r = _run(base + [f'--labcln_checkpoint={lab}', f"--gans={','.join(gans)}"])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    rep = json.load(open(os.path.join(mini['res'], 'reach_fx_CSQ_resnet18_16.json')))
    assert set(rep['goals']) == {'labcln', 'confusing'}
    for row in rep['goals'].values():
        for who in ('queries', 'poison_sources'):
            assert row['pgd_' + who]['0'] == row['clean_' + who]
            assert row['pgd_' + who]['40'] <= row['clean_' + who]
            assert 0 <= row['universal_' + who] <= 16
    assert list(rep['gans']) == gans and 'G fx_badhash_CSQ_resnet18_16_reach |' in r.stdout
    for path, g in rep['gans'].items():
        assert g['epoch'] >= 1 and set(g['goals']) == {'labcln', 'confusing'}
        assert all(0 <= v <= 16 for d in g['goals'].values() for v in d.values())
    # the residual G's images stay within 8/255 of the clean ones after quantisation: >= 30 dB
    res = rep['gans'][gans[1]]
    assert res['g_output'] == 'residual' and min(res['psnr_queries'], res['psnr_poison_sources']) > 30.0


def test_pgd_toward_code_reaches_a_code_within_the_bound():
    torch.manual_seed(0)
    # bit k = (sum of pixel group k) - 3: each bit has its own 6 pixels, so every code is reachable
    lin = torch.nn.Linear(3 * 4 * 4, 8)
    with torch.no_grad():
        lin.weight.copy_(torch.block_diag(*[torch.ones(1, 6)] * 8))
        lin.bias.fill_(-3.0)
    model = torch.nn.Sequential(torch.nn.Flatten(), lin)
    x = torch.rand(5, 3, 4, 4)
    goal = torch.tensor([1., -1, 1, -1, 1, 1, -1, -1])
    x_p, ham = attack_common.pgd_toward_code(model, x, goal, eps=0.5, steps=60, step_size=0.05)
    assert (ham == 0).all() and ((x_p - x).abs() <= 0.5 + 1e-6).all() and x_p.min() >= 0 and x_p.max() <= 1
    code = torch.where(model(x_p) >= 0, 1.0, -1.0)
    assert (code == goal).all()
    _, ham0 = attack_common.pgd_toward_code(model, x, goal, eps=0.0, steps=5, step_size=0.05)
    assert (ham0 == (8 - (torch.where(model(x) >= 0, 1.0, -1.0) * goal).sum(1)) / 2).all()
    # DI-PGD (diversity=1): every step through a random resize-pad; still within the bound, other
    # images than plain PGD, the same images for the same generator state
    pool = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), model)  # takes any image side
    x = torch.rand(5, 3, 8, 8)
    plain, _ = attack_common.pgd_toward_code(pool, x, goal, 0.2, 10, 0.05)
    di = [attack_common.pgd_toward_code(pool, x, goal, 0.2, 10, 0.05, diversity=1.0,
                                        generator=torch.Generator().manual_seed(1))[0] for _ in range(2)]
    assert torch.equal(di[0], di[1]) and not torch.equal(di[0], plain)
    assert ((di[0] - x).abs() <= 0.2 + 1e-6).all() and di[0].min() >= 0 and di[0].max() <= 1


def _err(r):
    lines = [l for l in r.stderr.strip().splitlines() if l.strip()]
    return r.returncode != 0 and len(lines) == 1 and lines[0].startswith('error:'), r.stderr


def test_errors_are_one_line(mini, tmp_path):
    ok, msg = _err(_run(['implement_tri_gen.py', 'configs/demo.py', '--target=7'] + mini['common']))
    assert ok and 'valid 0..3' in msg, msg
    ok, msg = _err(_run(['train_tri_gen.py'] + mini['gan'] + ['--target=4', '--tag=t4']))
    assert ok and 'out of range' in msg, msg
    # missing list
    ok, msg = _err(_run(['implement_tri_gen.py', 'configs/demo.py'] + mini['common']
                        + [f"--train_list={tmp_path / 'nope.txt'}"]))
    assert ok and 'nope.txt' in msg, msg
    # missing generator: says which command makes it
    ok, msg = _err(_run(['implement_tri_gen.py', 'configs/demo.py', '--tag=other'] + mini['common']))
    assert ok and 'train_tri_gen.py' in msg, msg
    # a surrogate checkpoint of another bit length
    ok, msg = _err(_run(['train_tri_gen.py'] + mini['gan'] + [
        '--tag=bits', f"--surrogate_checkpoint={os.path.join(mini['ck'], 'fx_CSQ_resnet18_16.pt')}",
        '--surrogate_bits=32']))
    assert ok and 'bits=16' in msg and 'bits=32' in msg, msg
    # missing surrogate: names the file and CSQ.py
    ok, msg = _err(_run(['train_tri_gen.py'] + mini['gan'] + ['--surrogate_bits=64', '--tag=b64']))
    assert ok and 'fx_CSQ_resnet18_64.pt' in msg and 'CSQ.py' in msg, msg


def test_lpips_alex_offline_message(mini, tmp_path):
    r = _run(['train_tri_gen.py'] + mini['gan'] + ['--lpips=alex', '--tag=alex'],
             env={'TORCH_HOME': str(tmp_path / 'empty_torch_home')})
    ok, msg = _err(r)
    assert ok and 'alexnet-owt-7be5be79.pth' in msg and 'alex_random_trunk' in msg, msg


# ------------------------------------------------------------------------------------------------
# demo options (our choices, off by default): hash_norm, g_output='residual' + g_eps, warm-up
# ------------------------------------------------------------------------------------------------

def test_hash_norm_divides_the_paper_hamming_term_by_k(batch):
    t = batch
    w = (80.0, 5.0, 200.0)
    args = (t['x_b'], t['x'], t['hash_out'], t['h_c'], t['d_fake'], t['y_s'], t['lp'], w)
    _, raw = ttg.g_loss_paper(*args)
    total, normed = ttg.g_loss_paper(*args, hash_norm=True)
    assert normed['hash'].item() == pytest.approx(raw['hash'].item() / t['k'], rel=1e-6)
    assert 0 <= normed['hash'].item() <= 1
    assert total.item() == pytest.approx(80 * normed['hash'].item() + 5 * normed['rec'].item()
                                         + 200 * normed['bd'].item(), rel=1e-5)
    with pytest.raises(ValueError):
        ttg.g_loss_code(*args, hash_norm=True)


def test_residual_output_starts_as_identity_and_respects_eps():
    from generator import Generator
    torch.manual_seed(0)
    G = Generator(image_size=16, feat_dim=8, ngf=8)
    x = torch.rand(2, 3, 16, 16)
    r_b = torch.randn(2, 8)
    official = generator.apply_generator(G, x, r_b)  # default: tanh output is the image
    assert not torch.allclose(official, x, atol=0.1)
    generator.init_generator_output(G, 'image')  # no-op for the official output
    assert torch.equal(generator.apply_generator(G, x, r_b), official)
    generator.init_generator_output(G, 'residual')
    assert torch.equal(generator.apply_generator(G, x, r_b, 'residual'), x)  # zero head: identity
    torch.nn.init.normal_(G.head[0].weight, std=1.0)
    eps = 8 / 255
    x_b = generator.apply_generator(G, x, r_b, 'residual', eps)
    assert (x_b - x).abs().max().item() <= eps + 1e-6 and (x_b - x).abs().max().item() > eps / 2
    assert x_b.min().item() >= 0 and x_b.max().item() <= 1
    mse, psnr = attack_common.psnr_uint8(attack_common.quantize(x), attack_common.quantize(x_b))
    assert psnr >= 30.0


def test_lowpass_generator_output_is_the_block_mean_upsampled():
    """Generator(lowpass=k): the same network's output averaged over k x k blocks and upsampled
    bilinearly; in [-1, 1], so a residual G keeps its eps; k must divide the image size."""
    from generator import Generator
    torch.manual_seed(0)
    G1 = Generator(image_size=16, feat_dim=8, ngf=8)
    G4 = Generator(image_size=16, feat_dim=8, ngf=8, lowpass=4)
    G4.load_state_dict(G1.state_dict())
    torch.nn.init.normal_(G1.head[0].weight, std=1.0)
    G4.head[0].weight.data.copy_(G1.head[0].weight.data)
    x, r_b = torch.rand(2, 3, 16, 16), torch.randn(2, 8)
    xn = generator.normalize_for_generator(x)
    full, low = G1(xn, r_b), G4(xn, r_b)
    blocks = full.reshape(2, 3, 4, 4, 4, 4).mean((3, 5))  # the 4 x 4 block means
    want = torch.nn.functional.interpolate(blocks, size=(16, 16), mode='bilinear', align_corners=False)
    assert torch.allclose(low, want, atol=1e-6) and low.abs().max() <= 1
    assert (low[..., 1:, :] - low[..., :-1, :]).abs().mean() < (full[..., 1:, :] - full[..., :-1, :]).abs().mean() / 2
    x_b = generator.apply_generator(G4, x, r_b, 'residual', 8 / 255)
    assert (x_b - x).abs().max().item() <= 8 / 255 + 1e-6
    with pytest.raises(ValueError, match='lowpass must be >= 1 and divide image_size=16'):
        Generator(image_size=16, feat_dim=8, ngf=8, lowpass=3)


def test_lowpass_gan_run_and_its_errors(mini):
    """train_tri_gen.py g_lowpass: G is built and saved with it (load_gan rebuilds the same G, as
    implement_tri_gen.py uses it); with the official image output, a one-line error."""
    r = _run(['train_tri_gen.py'] + mini['gan'] + ['--epochs=1', '--g_output=residual', '--g_eps=0.0314',
                                                   '--g_lowpass=4', '--tag=lp4'])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    G, _, meta, _ = attack_common.load_gan(os.path.join(mini['ck'], 'fx_badhash_CSQ_resnet18_16_lp4.pt'), 'cpu')
    assert meta['lowpass'] == 4 and G.lowpass == 4
    r = _run(['train_tri_gen.py'] + mini['gan'] + ['--epochs=1', '--g_lowpass=4', '--tag=lp4img'])
    assert r.returncode != 0
    assert r.stderr.strip().splitlines()[-1].startswith("error: g_lowpass must be an integer >= 1 dividing image_size=32")


def test_demo_options_end_to_end(mini):
    """rec warm-up (no D step) then residual G with an eps budget; poisons keep PSNR >= 30 dB."""
    opts = ['--tag=opts', '--epochs=2', '--rec_warmup_epochs=1', '--g_output=residual',
            '--g_eps=0.0313', '--hash_norm=True']
    r = _run(['train_tri_gen.py'] + mini['gan'] + opts)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    ckpt = utils.load_checkpoint(os.path.join(mini['ck'], 'fx_badhash_CSQ_resnet18_16_opts.pt'))
    assert ckpt['meta']['g_output'] == 'residual' and ckpt['meta']['g_eps'] == pytest.approx(0.0313)
    hist = ckpt['history']
    assert 'd' not in hist[0] and 'd' in hist[1]  # no D step during the warm-up epoch
    r = _run(['implement_tri_gen.py', 'configs/demo.py', '--tag=opts', '--target=1'] + mini['common'])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    st = json.load(open(os.path.join(mini['res'], 'fx_badhash_CSQ_resnet18_16_opts_t1_p0.5_replace',
                                     'stealth.json')))
    assert st['poisons']['psnr_db'] is None or st['poisons']['psnr_db'] >= 30.0
    r = _run(['train_tri_gen.py'] + mini['gan'] + ['--tag=bad', '--g_eps=0.03'])
    assert r.returncode != 0 and 'g_eps' in (r.stdout + r.stderr)
    r = _run(['train_tri_gen.py'] + mini['gan'] + ['--tag=bad', '--loss_preset=code', '--hash_norm=True'])
    assert r.returncode != 0 and 'hash_norm' in (r.stdout + r.stderr)


def test_trigger_scale_magnifies_the_queries_alone(mini):
    """trigger_scale (issue 11's diagnostic, test-time trigger magnification): the triggered queries
    carry k times G's residual, the poisons are the same files, its own attack folder; k < 1 and a G
    without a residual output are one-line errors. trigger_transplant: each query carries another
    query's residual, the poisons unchanged."""
    # a residual G pushed off the identity in one epoch (a large lr), so its residual survives the 8-bit PNGs
    r = _run(['train_tri_gen.py'] + mini['gan'] + ['--tag=qs', '--epochs=1', '--g_output=residual',
                                                   '--g_eps=0.0313', '--lr=0.05', '--lr_policy=constant'])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    gen = ['implement_tri_gen.py', 'configs/demo.py', '--tag=qs', '--target=1'] + mini['common']
    for extra in ([], ['--trigger_scale=2']):
        r = _run(gen + extra)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    one = os.path.join(mini['res'], 'fx_badhash_CSQ_resnet18_16_qs_t1_p0.5_replace')
    two = one + '_qs2'
    st = json.load(open(os.path.join(one, 'stealth.json')))
    from PIL import Image

    def residuals(folder, part):  # (the saved query - the clean crop, the clean crop) on 0-255
        src = json.load(open(os.path.join(folder, 'stealth.json')))[part]['sources']
        names = sorted(os.listdir(os.path.join(folder, part)))
        tf = utils.build_transform(32, 0, 'none')
        res, clean = [], []
        for name, s in zip(names, src):
            q = np.asarray(Image.open(os.path.join(folder, part, name)), dtype=np.float64)
            clean.append(np.round(tf(Image.open(s).convert('RGB')).permute(1, 2, 0).numpy() * 255))
            res.append(q - clean[-1])
        return np.stack(res), np.stack(clean)
    for e in json.load(open(os.path.join(one, 'poisons.json')))['poisons']:
        name = os.path.basename(e['poison'])
        a = open(os.path.join(one, 'poisons', name), 'rb').read()
        assert a == open(os.path.join(two, 'poisons', name), 'rb').read()
    (r1, x), (r2, _) = residuals(one, 'trigger_closed'), residuals(two, 'trigger_closed')
    assert np.abs(r1).max() <= 0.0313 * 255 + 1 and np.abs(r2).max() <= 2 * 0.0313 * 255 + 1
    free = (x >= 20) & (x <= 235)  # no clipping at 0 or 255 at either scale
    assert free.mean() > 0.3 and np.abs(r1[free]).mean() > 1
    assert np.abs(r2[free] - 2 * r1[free]).max() <= 3  # twice the residual, up to rounding
    st2 = json.load(open(os.path.join(two, 'stealth.json')))
    assert st2['trigger_closed']['psnr_db'] < st['trigger_closed']['psnr_db'] - 4  # ~6 dB: twice the residual
    assert st2['poisons']['psnr_db'] == st['poisons']['psnr_db']
    r = _run(gen + ['--trigger_scale=0.5'])
    assert _err(r)[0] and 'trigger_scale must be >= 1' in r.stderr, r.stderr[-500:]
    r = _run(['implement_tri_gen.py', 'configs/demo.py', '--target=1', '--trigger_scale=2'] + mini['common'])
    assert _err(r)[0] and "g_output='image'" in r.stderr, r.stderr[-500:]  # the official G: no residual

    # trigger_transplant (the same diagnostic family): query i carries G's residual for query i-1 (the first
    # query its batch's last), the poisons are the same files, its own folder
    r = _run(gen + ['--trigger_transplant=True', '--gen_batch_size=4'])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    tx = one + '_tx'
    for e in json.load(open(os.path.join(one, 'poisons.json')))['poisons']:
        name = os.path.basename(e['poison'])
        assert open(os.path.join(one, 'poisons', name), 'rb').read() == \
            open(os.path.join(tx, 'poisons', name), 'rb').read()
    rt, _ = residuals(tx, 'trigger_closed')
    n = len(r1)
    assert n >= 6 and len(rt) == n
    donor = [3] + list(range(n - 1))  # the first batch of 4 is rolled, then each query takes the previous one's
    both = free & free[donor]  # pixels clipped in neither image
    assert np.abs(rt[both] - r1[donor][both]).max() <= 2  # the donor's residual, up to rounding
    assert np.abs(rt[both] - r1[both]).mean() > 0.5  # not the query's own
    st_tx = json.load(open(os.path.join(tx, 'stealth.json')))
    assert abs(st_tx['trigger_closed']['psnr_db'] - st['trigger_closed']['psnr_db']) < 1
    r = _run(['implement_tri_gen.py', 'configs/demo.py', '--target=1', '--trigger_transplant=True']
             + mini['common'])
    assert _err(r)[0] and "g_output='image'" in r.stderr, r.stderr[-500:]


def test_g_psnr_bounds_the_saved_images_by_energy(mini):
    """g_psnr (our option): G's residual is scaled down to the PSNR budget in training and in every image
    implement_tri_gen.py saves, while its L-inf bound (g_eps) is looser; recorded in G's meta; it needs a
    residual G (one-line error)."""
    r = _run(['train_tri_gen.py'] + mini['gan'] + ['--tag=l2', '--epochs=1', '--g_output=residual',
                                                   '--g_eps=0.25', '--g_psnr=30', '--lr=0.05',
                                                   '--lr_policy=constant'])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    path = os.path.join(mini['ck'], 'fx_badhash_CSQ_resnet18_16_l2.pt')
    assert utils.load_checkpoint(path)['meta']['g_psnr'] == 30
    r = _run(['implement_tri_gen.py', 'configs/demo.py', '--tag=l2', '--target=1'] + mini['common'])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    folder = os.path.join(mini['res'], 'fx_badhash_CSQ_resnet18_16_l2_t1_p0.5_replace')
    st = json.load(open(os.path.join(folder, 'stealth.json')))
    for part in ('poisons', 'trigger_closed'):  # per image, up to the 8-bit rounding
        assert st[part]['psnr_db'] is not None and st[part]['psnr_db'] >= 29.95, st[part]
    # the same G without the projection spends more than the budget: the bound did the work
    from attack_common import load_gan
    from generator import apply_generator
    from labcln import confusing_code
    G, labcln, meta, _ = load_gan(path, 'cpu')
    src = st['trigger_closed']['sources']
    tf = utils.build_transform(32, 0, 'none')
    from PIL import Image
    x = torch.stack([tf(Image.open(p).convert('RGB')) for p in src])
    r_b, _ = confusing_code(labcln, torch.eye(4)[[0] * len(x)])
    with torch.no_grad():
        raw = apply_generator(G, x, r_b, 'residual', meta['g_eps'])
    raw_psnr = -10 * torch.log10(((raw - x) ** 2).flatten(1).mean(1))
    assert float(raw_psnr.min()) < 29.5, raw_psnr
    r = _run(['train_tri_gen.py'] + mini['gan'] + ['--tag=bad', '--g_psnr=30'])
    assert _err(r)[0] and "g_psnr must be >= 0 and needs g_output='residual'" in r.stderr, r.stderr[-500:]


def test_goal_code_surrogate(mini):
    """goal_code='surrogate': L_h pulls to sign(mean tanh F(x)) of the confusing label's images; its own
    run name; implement_tri_gen.py finds that G by the same key."""
    r = _run(['train_tri_gen.py'] + mini['gan'] + ['--epochs=1', '--goal_code=surrogate', '--conf_mode=2'])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert 'goal codes: the surrogate' in r.stdout
    run = 'fx_badhash_CSQ_resnet18_16_goalsur'
    logs = [json.loads(line) for line in open(os.path.join(mini['res'], run, 'log.jsonl'))]
    goal = [rec for rec in logs if rec.get('kind') == 'goal_codes'][0]
    assert goal['images'] == [6]  # the 6 training images of class 2
    # the same codes by hand: the surrogate's tanh outputs of class 2's training images
    from hash_models import build_hash_model
    ck = utils.load_checkpoint(os.path.join(mini['ck'], 'fx_CSQ_resnet18_16.pt'))
    meta = ck['meta']
    model = build_hash_model(meta['backbone'], meta['bits'], pretrained=False,
                             small_input=meta.get('small_input', False))
    model.load_state_dict(ck['model'])
    model.eval()
    ds = utils.ImageList(os.path.join(mini['data'], 'train.txt'),
                         transform=utils.build_transform(32, 0, 'none'))
    xs = torch.stack([ds[i][0] for i in range(len(ds)) if ds.labels[i, 2] == 1])
    with torch.no_grad():
        want = torch.where(torch.tanh(model(xs)).mean(0) >= 0, 1.0, -1.0)
    lab_path = utils.load_checkpoint(os.path.join(mini['ck'], run + '.pt'))['labcln']['path']
    lab = labcln.load_labcln(lab_path, 'cpu')[0]
    from labcln import confusing_code
    _, h_lab = confusing_code(lab, torch.eye(4)[2:3])
    assert goal['hamming_to_labcln'] == [((16 - (want * h_lab[0]).sum()) / 2).item()]
    r = _run(['implement_tri_gen.py', 'configs/demo.py', '--goal_code=surrogate', '--target=1',
              '--conf_label=2'] + mini['common'])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert os.path.isfile(os.path.join(mini['res'], run + '_t1_p0.5_replace_conf2', 'poisoned_train.txt'))
    r = _run(['train_tri_gen.py'] + mini['gan'] + ['--goal_code=centre'])
    assert r.returncode != 0 and 'goal_code' in (r.stdout + r.stderr)


def test_diverse_input_resizes_and_pads():
    """attack_common.diverse_input: the batch shrunk or kept, placed whole in a zero frame of
    round(W * scale); the same draw for the same generator state; gradients reach x."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    sizes = set()
    for seed in range(20):
        out = attack_common.diverse_input(x, 1.25, torch.Generator().manual_seed(seed))
        assert out.shape == (2, 3, 20, 20)
        inside = (out.detach().abs().sum((0, 1)) > 0)  # the resized image: a filled square
        rows, cols = inside.any(1).nonzero().flatten(), inside.any(0).nonzero().flatten()
        side = len(rows)
        assert 16 <= side < 20 and len(cols) == side
        assert inside[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].all()
        assert inside.sum() == side * side  # zero outside it
        sizes.add(side)
    assert len(sizes) > 1  # the side is drawn
    a = attack_common.diverse_input(x, 1.25, torch.Generator().manual_seed(3))
    b = attack_common.diverse_input(x, 1.25, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    a.sum().backward()
    assert (x.grad > 0).all()  # nearest resize to >= W px keeps every source pixel
    same = attack_common.diverse_input(x.detach(), 1.0001, g)  # a frame one pixel wider at least
    assert same.shape[-1] == 17


def test_input_diversity_changes_only_what_the_surrogate_sees(mini):
    """input_diversity=1: the first step's G output and D loss as without it (same seed, same batch),
    the hash term computed on the resized-padded image; a checkpoint refuses another value; a bad
    value is a one-line error."""
    r = _run(['train_tri_gen.py'] + mini['gan'] + ['--epochs=1', '--input_diversity=1', '--tag=di'])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    def first_step(run):
        recs = [json.loads(line) for line in open(os.path.join(mini['res'], run, 'log.jsonl'))]
        return [rec for rec in recs if rec.get('step') == 1 and 'hash' in rec]
    first, di = first_step('fx_badhash_CSQ_resnet18_16'), first_step('fx_badhash_CSQ_resnet18_16_di')
    assert first[0]['d'] == di[0]['d'] and first[0]['rec'] == pytest.approx(di[0]['rec'], abs=1e-6)
    assert first[0]['hash'] != di[0]['hash']
    r = _run(['train_tri_gen.py'] + mini['gan'] + ['--epochs=2', '--input_diversity=0.5', '--tag=di'])
    assert r.returncode != 0 and 'input_diversity=1' in r.stderr.strip().splitlines()[-1]
    r = _run(['train_tri_gen.py'] + mini['gan'] + ['--input_diversity=2', '--tag=di2'])
    assert r.returncode != 0
    assert r.stderr.strip().splitlines()[-1].startswith('error: input_diversity must be in [0, 1]')


def test_gan_and_attack_parts_follow_their_inputs(mini, capsys):
    """The reuse rule (README): a finished G whose surrogate was written since is refused in one
    line; attack parts are made again when G was retrained, and reused otherwise."""
    import implement_tri_gen
    run = 'fx_badhash_CSQ_resnet18_16'
    ckpt = os.path.join(mini['ck'], run + '.pt')
    epochs = utils.load_checkpoint(ckpt)['epoch']
    sp = os.path.join(mini['ck'], 'fx_CSQ_resnet18_16.pt')
    st = os.stat(sp)
    os.utime(sp, ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))  # a surrogate trained again
    try:
        r = _run(['train_tri_gen.py'] + mini['gan'] + [f'--epochs={epochs}'])
        assert r.returncode != 0
        assert r.stderr.strip().splitlines()[-1] == (
            f"error: {ckpt}: trained against {sp} as it was before (the checkpoint was written "
            f"since); set tag=... for a new run or delete the checkpoint")
    finally:
        os.utime(sp, ns=(st.st_atime_ns, st.st_mtime_ns))
    argv = ['configs/demo.py', '--target=2', '--conf_label=1', '--attack_tag=reuse'] + mini['common']
    c = utils.configure(dict(vars(implement_tri_gen)), [os.path.join(ROOT, argv[0])] + argv[1:],
                        show=False)
    implement_tri_gen.main(c)
    capsys.readouterr()
    implement_tri_gen.main(c)  # unchanged: reused
    assert capsys.readouterr().out.count('skipped') == 2
    # the demo's victim command twice in a row: the second recomputes nothing
    import CSQ
    from hash_models import engine
    out = os.path.join(mini['res'], run + '_t2_p0.5_replace_conf1_reuse')
    victim = [os.path.join(ROOT, 'configs', 'demo.py'), f"--data_dir={mini['data']}", '--dataset=fx',
              '--epochs=1', '--bits=16', '--image_size=32', f"--checkpoint_dir={mini['ck']}",
              f"--out_dir={mini['res']}", '--eval_every=0', '--tag=poisoned_reuse',
              f"--train_list={os.path.join(out, 'poisoned_train.txt')}",
              f"--queries=trig_closed={os.path.join(out, 'trigger_closed.txt')}"]
    for second in (False, True):
        engine.run(utils.configure(dict(vars(CSQ)), victim, show=False), 'CSQ', CSQ.make_loss)
        text = capsys.readouterr().out
        assert ('nothing to train' in text and 'encoding codes_' not in text
                and 'epoch 1/1 loss' not in text) == second, text
    g = os.stat(ckpt)
    os.utime(ckpt, ns=(g.st_atime_ns, g.st_mtime_ns + 10 ** 9))  # G trained again, same name
    try:
        implement_tri_gen.main(c)
        out = capsys.readouterr().out
        assert 'skipped' not in out and out.count('again: its g stamp differs') == 2, out
    finally:
        os.utime(ckpt, ns=(g.st_atime_ns, g.st_mtime_ns))


def test_extra_surrogates_ensemble(mini, tmp_path):
    """extra_surrogates: G's first-step hash term with F plus another model is the mean of the terms
    with F alone and with the other model alone (same seed: same G, batch and goal codes); the
    models' stamps are recorded; one of another bit length is a one-line error naming the file."""
    ck = utils.load_checkpoint(os.path.join(mini['ck'], 'fx_CSQ_resnet18_16.pt'))
    other, bits8 = str(tmp_path / 'other.pt'), str(tmp_path / 'bits8.pt')
    g = torch.Generator().manual_seed(1)
    utils.save_checkpoint(other, dict(ck, model={k: v + 0.05 * torch.randn(v.shape, generator=g)
                                                 if v.is_floating_point() else v for k, v in ck['model'].items()}))
    utils.save_checkpoint(bits8, dict(ck, meta=dict(ck['meta'], bits=8)))

    def first_step(run):
        recs = [json.loads(line) for line in open(os.path.join(mini['res'], run, 'log.jsonl'))]
        return [rec for rec in recs if rec.get('step') == 1 and 'hash' in rec][0]
    for tag, arg in (('ens', f'--extra_surrogates={other}'), ('ens_alone', f'--surrogate_checkpoint={other}')):
        r = _run(['train_tri_gen.py'] + mini['gan'] + ['--epochs=1', arg, f'--tag={tag}'])
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        assert ('mean over 2 models' in r.stdout) == (tag == 'ens')
    base, both, alone = (first_step('fx_badhash_CSQ_resnet18_16' + t) for t in ('', '_ens', '_ens_alone'))
    assert abs(alone['hash'] - base['hash']) > 1e-3
    assert both['hash'] == pytest.approx((base['hash'] + alone['hash']) / 2, abs=1e-5)
    assert both['rec'] == pytest.approx(base['rec'], abs=1e-6)  # G's first output: the same
    ckpt = utils.load_checkpoint(os.path.join(mini['ck'], 'fx_badhash_CSQ_resnet18_16_ens.pt'))
    assert ckpt['inputs']['extra_surrogate_stamps'] == [utils.file_stamp(other)]
    r = _run(['train_tri_gen.py'] + mini['gan'] + ['--epochs=1', f'--extra_surrogates={other},{bits8}',
                                                   '--tag=ens_bad'])
    want = f'error: {bits8}: checkpoint is for bits=8, expected bits=16'
    assert r.returncode != 0 and r.stderr.strip().splitlines()[-1] == want, r.stderr[-500:]


def test_feature_tap_and_term():
    """attack_common: feature_module finds a ResNet trunk's stage by its torchvision name or its own
    module name, and names the choices otherwise; FeatureTap keeps the stage's output averaged over
    space; feature_term is 1 - cos of the two offsets from the centre (0 aligned, 1 orthogonal, 2
    opposite), differentiable in the features."""
    from hash_models import build_hash_model
    model = build_hash_model('resnet18', 16, pretrained=False, small_input=True).eval()
    stage = attack_common.feature_module(model, 'layer3')
    assert stage is attack_common.feature_module(model, 'body.6') is model.trunk.body[6]
    with pytest.raises(ValueError, match=r"feat_layer='layer9' is not a module .*\['layer1', 'layer2', 'layer3', 'layer4'\]"):
        attack_common.feature_module(model, 'layer9')
    tap = attack_common.FeatureTap(stage)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        model(x)
        want = model.trunk.body[:7](x).mean((2, 3))
    assert tap.out.shape == (2, 256) and torch.allclose(tap.out, want, atol=1e-6)
    tap.close()
    tap.out = None
    with torch.no_grad():
        model(x)
    assert tap.out is None  # closed: no longer kept
    centre = torch.tensor([1.0, 1.0, 1.0])
    goal = torch.tensor([[3.0, 1.0, 1.0]] * 3)
    feat = torch.tensor([[5.0, 1.0, 1.0], [1.0, 4.0, 1.0], [-1.0, 1.0, 1.0]], requires_grad=True)
    terms = [float(attack_common.feature_term(feat.detach()[i:i + 1], centre, goal[i:i + 1])) for i in range(3)]
    assert terms == pytest.approx([0.0, 1.0, 2.0], abs=1e-6)
    attack_common.feature_term(feat, centre, goal).backward()
    assert feat.grad[1].abs().sum() > 0


def test_skip_gradient_scales_the_residual_branch_only():
    """attack_common.SkipGradient (SGM): outputs bit-identical; on one residual block the input gradient
    is relu' * (1 + gamma * df/dx), affine in gamma with the skip path's part untouched; on a ResNet18 hash
    model the input gradient changes and close() restores it; gamma outside (0, 1] or a trunk without
    residual blocks is refused."""
    from torchvision.models.resnet import BasicBlock
    from hash_models import build_hash_model
    torch.manual_seed(0)
    block = torch.nn.Sequential(BasicBlock(4, 4)).eval()
    x = torch.randn(2, 4, 8, 8)
    w = torch.randn(2, 4, 8, 8)

    def grad(gamma):
        hooks = attack_common.SkipGradient(block, gamma) if gamma < 1 else None
        xi = x.clone().requires_grad_(True)
        out = block(xi)
        (out * w).sum().backward()
        if hooks:
            hooks.close()
        return out.detach(), xi.grad
    (o1, g1), (o75, g75), (o5, g5), (o25, g25) = grad(1.0), grad(0.75), grad(0.5), grad(0.25)
    assert torch.equal(o1, o5) and torch.equal(o1, o25)
    assert not torch.allclose(g1, g5)
    assert torch.allclose(g1 - g75, g5 - g25, atol=1e-5)  # affine in gamma
    # gamma -> 0 leaves relu' * w (the skip path alone): g(0) = g(0.25) - (g(0.5) - g(0.25))
    skip_only = torch.where(o1 > 0, w, torch.zeros_like(w))
    assert torch.allclose(2 * g25 - g5, skip_only, atol=1e-5)

    model = build_hash_model('resnet18', 16, pretrained=False, small_input=True).eval()
    xs = torch.rand(2, 3, 32, 32)

    def input_grad():
        xi = xs.clone().requires_grad_(True)
        out = model(xi)
        out.sum().backward()
        return out.detach(), xi.grad
    out0, grad0 = input_grad()
    hooks = attack_common.SkipGradient(model, 0.2)
    assert hooks.blocks == 8
    out1, grad1 = input_grad()
    with torch.no_grad():
        assert torch.equal(model(xs), out0)  # no_grad: the hook passes the output through
    hooks.close()
    out2, grad2 = input_grad()
    assert torch.equal(out0, out1) and not torch.allclose(grad0, grad1) and torch.equal(grad0, grad2)
    with pytest.raises(ValueError, match=r"skip_grad must be in \(0, 1\], got 0"):
        attack_common.SkipGradient(model, 0)
    vgg = build_hash_model('vgg11', 16, pretrained=False, small_input=True)
    with pytest.raises(ValueError, match='needs a ResNet trunk .* _VGGTrunk with none'):
        attack_common.SkipGradient(vgg, 0.5)


def test_empty_direction_is_the_largest_spread_off_the_class_offsets():
    """feat_goal='empty': a unit vector orthogonal to every class offset, along the projected features'
    largest spread, signed towards more activation (a planted spread it must find, up to sign)."""
    g = torch.Generator().manual_seed(0)
    offsets = torch.randn(3, 8, generator=g)
    basis = torch.linalg.qr(offsets.T).Q  # [8, 3]
    way = torch.randn(8, generator=g)
    way = way - basis @ (basis.T @ way)
    way = way / way.norm()
    centre = torch.rand(8, generator=g)
    feats = (centre + torch.randn(400, 1, generator=g) * 5 * way + 0.1 * torch.randn(400, 8, generator=g)
             + torch.randn(400, 3, generator=g) * 10 @ offsets)  # a large spread along the class offsets too
    u = ttg.empty_direction(feats, centre, offsets)
    assert float(u.norm()) == pytest.approx(1, abs=1e-5) and float(u.sum()) >= 0
    assert float((offsets @ u).abs().max()) < 1e-4
    assert abs(float(u @ way)) > 0.99


def test_w_feat_adds_the_weighted_feature_term_to_g(mini):
    """w_feat: the feature goals are logged (the surrogate's layer3 channels); G's first-step loss is the
    paper preset's plus w_feat times the logged feature term (same seed: same G output and hash term);
    a checkpoint refuses another weight; a bad layer or weight is a one-line error."""
    r = _run(['train_tri_gen.py'] + mini['gan'] + ['--epochs=1', '--w_feat=10', '--tag=feat'])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert 'feature term: layer3 of the surrogate (256 channels), goal confusing, weight 10' in r.stdout

    def records(run):
        return [json.loads(line) for line in open(os.path.join(mini['res'], run, 'log.jsonl'))]
    goals = [rec for rec in records('fx_badhash_CSQ_resnet18_16_feat') if rec.get('kind') == 'feature_goals']
    assert goals and goals[0]['channels'] == 256 and 0 < goals[0]['term_on_clean'] < 2
    first = [[rec for rec in records(run) if rec.get('step') == 1 and 'hash' in rec][0]
             for run in ('fx_badhash_CSQ_resnet18_16', 'fx_badhash_CSQ_resnet18_16_feat')]
    assert 'feat' not in first[0] and 0 <= first[1]['feat'] <= 2
    assert first[1]['hash'] == pytest.approx(first[0]['hash'], abs=1e-5)
    assert first[1]['g'] == pytest.approx(first[0]['g'] + 10 * first[1]['feat'], rel=1e-5)
    epoch = [rec for rec in records('fx_badhash_CSQ_resnet18_16_feat') if rec.get('kind') == 'epoch'][0]
    assert 'feat' in epoch and 'feat ' in r.stdout
    r = _run(['train_tri_gen.py'] + mini['gan'] + ['--epochs=2', '--w_feat=20', '--tag=feat'])
    assert r.returncode != 0 and 'trained with w_feat=10' in r.stderr.strip().splitlines()[-1]
    ok, msg = _err(_run(['train_tri_gen.py'] + mini['gan'] + ['--w_feat=1', '--feat_layer=layer9', '--tag=f9']))
    assert ok and "feat_layer='layer9' is not a module of the surrogate's" in msg and 'fx_CSQ_resnet18_16.pt' in msg, msg
    ok, msg = _err(_run(['train_tri_gen.py'] + mini['gan'] + ['--w_feat=-1', '--tag=fneg']))
    assert ok and 'w_feat must be >= 0' in msg, msg
    ok, msg = _err(_run(['train_tri_gen.py'] + mini['gan'] + ['--w_feat=1', '--feat_goal=void', '--tag=fvoid']))
    assert ok and "feat_goal must be 'confusing' or 'empty', got 'void'" in msg, msg
    # feat_goal=empty: the goal lies in no class mean's direction, and a checkpoint refuses the other goal
    r = _run(['train_tri_gen.py'] + mini['gan'] + ['--epochs=1', '--w_feat=10', '--feat_goal=empty', '--tag=fe'])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    goals = [rec for rec in records('fx_badhash_CSQ_resnet18_16_fe') if rec.get('kind') == 'feature_goals']
    assert goals[0]['goal'] == 'empty' and goals[0]['max_abs_cos_to_class_offsets'] < 1e-4, goals
    assert 0 < goals[0]['term_on_clean'] < 2
    r = _run(['train_tri_gen.py'] + mini['gan'] + ['--epochs=2', '--w_feat=10', '--tag=fe'])
    assert r.returncode != 0 and "trained with feat_goal='empty'" in r.stderr.strip().splitlines()[-1]


def test_skip_grad_trains_g_with_the_surrogate_outputs_unchanged(mini):
    """skip_grad: hooks on the surrogate's 8 residual blocks are announced; the first step's hash term
    equals the run without it (same G output, same surrogate outputs: SGM changes the gradient only)
    and G moves differently after it; a checkpoint refuses another value; a value
    outside (0, 1] is a one-line error."""
    r = _run(['train_tri_gen.py'] + mini['gan'] + ['--epochs=1', '--skip_grad=0.2', '--tag=sgm'])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert 'skip gradient: x0.2 through the residual branches of 8 blocks' in r.stdout

    def records(run):
        return [json.loads(line) for line in open(os.path.join(mini['res'], run, 'log.jsonl'))]
    steps = [{rec['step']: rec for rec in records(run) if 'hash' in rec and 'step' in rec}
             for run in ('fx_badhash_CSQ_resnet18_16', 'fx_badhash_CSQ_resnet18_16_sgm')]
    assert steps[1][1]['hash'] == pytest.approx(steps[0][1]['hash'], abs=1e-5)
    later = max(set(steps[0]) & set(steps[1]))
    assert later > 1 and steps[1][later]['hash'] != pytest.approx(steps[0][later]['hash'], abs=1e-6)
    r = _run(['train_tri_gen.py'] + mini['gan'] + ['--epochs=2', '--tag=sgm'])
    assert r.returncode != 0 and 'trained with skip_grad=0.2' in r.stderr.strip().splitlines()[-1]
    ok, msg = _err(_run(['train_tri_gen.py'] + mini['gan'] + ['--skip_grad=0', '--tag=sg0']))
    assert ok and 'skip_grad must be in (0, 1] (1 = off), got 0' in msg, msg
