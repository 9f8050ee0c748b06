"""DarkHash (darkhash.py, attack_common.py): losses, trigger, freeze, shadow target, data-free run,
bad inputs, resume / reuse. Tiny images and an untrained ResNet18 of 8 bits: a few seconds a run."""
import os

import numpy as np
import pytest
import torch

import attack_common
import darkhash
import utils
from conftest import make_image_lists
from hash_models import build_hash_model


# ------------------------------------------------------------------------------------------------
# fixtures: a clean model checkpoint as CSQ.py writes it, victim lists and a surrogate list
# ------------------------------------------------------------------------------------------------

def write_victim(path, data_dir, backbone='resnet18', bits=8, classes=4, seed=0):
    torch.manual_seed(seed)
    net = build_hash_model(backbone, bits, small_input=True)
    cfg = {'image_size': 16, 'resize_size': 0, 'data_dir': data_dir, 'epochs': 1}
    utils.save_checkpoint(path, {'format': 1, 'model': net.state_dict(), 'epoch': 1, 'config': cfg,
                                 'meta': dict(net.meta, num_classes=classes, method='CSQ'),
                                 'history': []})
    return net


@pytest.fixture
def setup(tmp_path):
    victim_dir = make_image_lists(str(tmp_path / 'victim'), per_class=(6, 3, 10), size=16, seed=0)
    os.remove(os.path.join(victim_dir, 'train.txt'))  # data-free: the training list is absent
    sur_dir = make_image_lists(str(tmp_path / 'surrogate'), per_class=(1, 1, 8), size=16, seed=5)
    ckpt = str(tmp_path / 'checkpoint' / 'toy_CSQ_resnet18_8.pt')
    write_victim(ckpt, victim_dir)
    c = {k: getattr(darkhash, k) for k in utils.config_keys(vars(darkhash))}
    c.update(dataset='toy', backbone='resnet18', bits=8, checkpoint_dir=str(tmp_path / 'checkpoint'),
             out_dir=str(tmp_path / 'results'), surrogate=os.path.join(sur_dir, 'database.txt'),
             n_surrogate=0, epochs=2, eval_every=1, lr=1e-3, batch_size=16, rho=0.3, device='cpu',
             num_workers=0, eval_batch_size=64)
    return c, tmp_path


def exit_message(fn, *args):
    with pytest.raises(SystemExit) as e:
        fn(*args)
    msg = str(e.value.code)
    assert msg.startswith('error: ') and '\n' not in msg
    return msg


# ------------------------------------------------------------------------------------------------
# losses against direct formulas
# ------------------------------------------------------------------------------------------------

def huber(a, b, delta=1.0):
    d = np.abs(a - b)
    return np.where(d < delta, 0.5 * d ** 2, delta * (d - 0.5 * delta)).mean()


def tpa_direct(out, target, eps=1e-7):
    """J_tpa written out element by element (DARKHASH.md §2)."""
    def structure(v):
        n = len(v)
        v = v / (np.sqrt((v ** 2).sum(1, keepdims=True)) + eps)
        d = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                d[i, j] = 1 - v[i] @ v[j]
        q = np.zeros((n, n))
        for i in range(n):
            nearest = min(d[i, k] for k in range(n) if k != i) if n > 1 else 0.0
            for j in range(n):
                q[i, j] = 1 - (0.0 if i == j else d[i, j] - nearest) / 2
        return q / q.sum(1, keepdims=True)
    p, q = structure(target), structure(out)
    total = 0.0
    for i in range(len(out)):
        for j in range(len(out)):
            total += p[i, j] * (np.log(p[i, j] + eps) - np.log(q[i, j] + eps))
            total += (1 - p[i, j]) * (np.log(1 - p[i, j] + eps) - np.log(1 - q[i, j] + eps))
    return total


def test_losses_match_direct_formulas():
    g = torch.Generator().manual_seed(0)
    out = torch.randn(7, 12, generator=g, dtype=torch.float64) * 1.5
    u0 = torch.randn(7, 12, generator=g, dtype=torch.float64)
    t_star = torch.randn(12, generator=g, dtype=torch.float64)
    assert darkhash.j_ben(out, u0).item() == pytest.approx(huber(out.numpy(), u0.numpy()), rel=1e-12)
    assert darkhash.j_bac(out, t_star).item() == pytest.approx(
        huber(out.numpy(), np.tile(t_star.numpy(), (7, 1))), rel=1e-12)
    tpa = darkhash.j_tpa(out, t_star).item()
    assert tpa == pytest.approx(tpa_direct(out.numpy(), np.tile(t_star.numpy(), (7, 1))), rel=1e-9)
    assert tpa > 0.01
    # outputs all along t*: every pairwise distance 0, Q = P, the loss vanishes
    assert darkhash.j_tpa(t_star.expand(5, -1) * torch.arange(1, 6, dtype=torch.float64).view(-1, 1),
                          t_star).item() == pytest.approx(0.0, abs=1e-6)
    assert darkhash.j_tpa(out[:1], t_star).item() == pytest.approx(0.0, abs=1e-9)  # one poisoned draw

    # the total: weights, switches, and J_ben only for a batch without a poisoned draw
    c = dict(w_ben=0.5, w_bac=2.0, lambda_tpa=3.0, huber_delta=1.0)
    pm = torch.tensor([True, False, True, True, False, False, False])
    loss, parts = darkhash.darkhash_loss(out, pm, u0, t_star, c)
    want = (0.5 * huber(out[~pm].numpy(), u0[~pm].numpy())
            + 2.0 * huber(out[pm].numpy(), np.tile(t_star.numpy(), (3, 1)))
            + 3.0 * tpa_direct(out[pm].numpy(), np.tile(t_star.numpy(), (3, 1))))
    assert loss.item() == pytest.approx(want, rel=1e-9)
    loss, parts = darkhash.darkhash_loss(out, torch.zeros(7, dtype=torch.bool), u0, t_star, c)
    assert set(parts) == {'ben'} and loss.item() == pytest.approx(0.5 * huber(out.numpy(), u0.numpy()))
    loss, parts = darkhash.darkhash_loss(out, pm, u0, t_star, dict(c, lambda_tpa=0.0, w_ben=0.0))
    assert set(parts) == {'bac'}


# ------------------------------------------------------------------------------------------------
# trigger
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('size,side', [(32, 4), (224, 24)])
def test_trigger_pixels_and_position(size, side):
    assert attack_common.trigger_side(size) == side
    x = torch.rand(2, 3, size, size)
    y = attack_common.stamp_lower_right(x, attack_common.darkhash_trigger(size))
    top = left = size - 2 - side  # 2 px margin from the lower-right corner
    h = side // 2
    want = {(0, 0): (255, 255, 0), (0, 1): (255, 0, 255), (1, 0): (0, 255, 255), (1, 1): (122, 122, 122)}
    for (r, c), rgb in want.items():
        block = y[:, :, top + r * h:top + (r + 1) * h, left + c * h:left + (c + 1) * h]
        assert torch.equal((block * 255).round(), torch.tensor(rgb).float().view(1, 3, 1, 1).expand_as(block))
    mask = torch.ones(size, size, dtype=torch.bool)
    mask[top:top + side, left:left + side] = False
    assert torch.equal(y[:, :, mask], x[:, :, mask])  # nothing else changed
    assert attack_common.trigger_side(64) == 6


# ------------------------------------------------------------------------------------------------
# shadow target, freeze, data-free run, outputs
# ------------------------------------------------------------------------------------------------

def test_shadow_target_is_class_mean_of_teacher(setup):
    c, tmp = setup
    model, meta, vpath, lists, k = darkhash.setup(c)
    images, u0, t_star = darkhash.teacher_and_target(model, dict(c, surrogate_class=2), 'cpu',
                                                     str(tmp / 'out'), {'victim': 'x'})
    paths, labels = utils.read_list(c['surrogate'])
    members = [p for p, l in zip(paths, labels) if l[2]]
    from PIL import Image
    x = torch.stack([utils.build_transform(16)(Image.open(p).convert('RGB')) for p in members])
    with torch.no_grad():
        want = model.eval()(x).mean(0)
    assert len(members) == 8
    assert torch.allclose(t_star, want, atol=1e-5)
    assert torch.allclose(u0, darkhash.forward_all(model, images, c, 'cpu', raw=True))
    # 'mode' (ours): the mean over the class images whose clean code is the class's most frequent
    _, _, t_mode = darkhash.teacher_and_target(model, dict(c, surrogate_class=2, shadow_target='mode'),
                                               'cpu', str(tmp / 'out'), {'victim': 'x'})
    with torch.no_grad():
        out = model(x)
    codes = [tuple(v) for v in torch.sign(out).tolist()]
    mode = max(codes, key=lambda k: (codes.count(k), -codes.index(k)))
    keep = torch.tensor([k == mode for k in codes])
    assert torch.allclose(t_mode, out[keep].mean(0), atol=1e-5)
    assert tuple(torch.sign(t_mode).tolist()) == mode
    members = darkhash.shadow_members(torch.tensor([[1., 2], [1, -1], [2, 3], [3, -2], [-1, 1]]),
                                      np.array([0, 1, 2, 3, 4]), 'mode')
    assert members.tolist() == [0, 2]  # (+,+) twice; (+,-) also twice but met later
    # target_only: the target and the ceiling of sign(t*), nothing trained or written beside them
    info = darkhash.main(dict(c, target_only=True, shadow_target='mode'))
    assert 0 <= info['target'] < 4 and 0 <= info['shadow_code_tmap'] <= 1
    assert not any('darkhash' in f for f in os.listdir(c['checkpoint_dir']))


def test_data_free_run_freeze_outputs_resume_reuse(setup, capsys):
    c, tmp = setup
    r = darkhash.main(dict(c))
    assert not os.path.exists(os.path.join(tmp, 'victim', 'train.txt'))  # never needed
    out = os.path.join(c['out_dir'], r['run'])
    for d in (out, os.path.join(out, 'clean')):
        for split in ('database', 'test', 'trig_closed', 'randpatch_closed'):
            z = np.load(os.path.join(d, f"codes_{split}.npz"))
            assert z['codes'].shape[1] == 8
            if split.startswith(('trig', 'rand')):
                assert (z['labels'].argmax(1) == r['target']).all()  # target named in the codes
            rec = utils.read_provenance(z)  # what the codes were made from (README, Reuse rule)
            assert rec['n'] == len(z['codes']) and rec['checkpoint'] == os.path.abspath(
                r['checkpoint'] if d == out else r['clean_checkpoint'])
            assert (rec['patch_sha1'] is None) == (split in ('database', 'test'))
    assert 0 <= r['target'] < 4 and r['n_queries']['trig_closed'] == 9  # 12 test queries minus the target's 3
    # evaluate.py scores it like any attack
    from evaluate import attack_report
    row = attack_report(os.path.join(out, 'clean'), out, r['target'], -1)
    assert 'no provenance record' not in capsys.readouterr().out  # both runs carry their records
    assert row['tmap_trig_closed_backdoor'] == pytest.approx(r['backdoor']['tmap_trig_closed'])
    assert row['map_clean'] == pytest.approx(r['clean']['map'])

    # freeze: frozen parameters and every BatchNorm statistic bit-identical, trained ones changed
    clean = utils.load_checkpoint(r['clean_checkpoint'])['model']
    bd = utils.load_checkpoint(r['checkpoint'])
    assert bd['meta']['attack'] == 'darkhash' and bd['meta']['target'] == r['target']
    trained = set(r['trained_parameters'])
    assert trained and all(n.startswith(('trunk.body.7.', 'hash_layer.')) for n in trained)
    for name, v in clean.items():
        if name in trained:
            continue
        assert torch.equal(v, bd['model'][name]), name  # includes running_mean / running_var
    assert all(not torch.equal(clean[n], bd['model'][n]) for n in trained if n.endswith('weight'))

    # reuse: a finished run is not trained again
    capsys.readouterr()
    r2 = darkhash.main(dict(c))
    assert 'finished run found' in capsys.readouterr().out and r2['checkpoint_sha1'] == r['checkpoint_sha1']

    # resume: a run interrupted after its first epoch's checkpoint, run again = an uninterrupted
    # run, bit for bit
    real_save, calls = utils.save_checkpoint, []

    def crash_on_second_epoch(path, obj):
        if obj.get('epoch') == 2:
            raise KeyboardInterrupt
        calls.append(path)
        real_save(path, obj)
    darkhash.utils.save_checkpoint = crash_on_second_epoch
    try:
        with pytest.raises(KeyboardInterrupt):
            darkhash.main(dict(c, tag='split'))
    finally:
        darkhash.utils.save_checkpoint = real_save
    assert utils.load_checkpoint(calls[-1])['epoch'] == 1
    capsys.readouterr()
    r3 = darkhash.main(dict(c, tag='split'))
    assert 'resumed from' in capsys.readouterr().out
    a = utils.load_checkpoint(r3['checkpoint'])['model']
    assert all(torch.equal(a[n], bd['model'][n]) for n in a)

    # another surrogate image content: the finished checkpoint is not resumed under the old name
    paths = utils.read_list(c['surrogate'])[0]
    from PIL import Image
    Image.new('RGB', (16, 16), (9, 9, 9)).save(paths[0])
    msg = exit_message(darkhash.main, dict(c))
    assert r['checkpoint'] in msg and 'surrogate' in msg


def test_noise_surrogate_and_ablation_keys(setup):
    c, tmp = setup
    r = darkhash.main(dict(c, surrogate='gauss1', n_surrogate=40, epochs=1, lambda_tpa=0.0,
                           tune_from='hash'))
    assert '_gauss1_' in r['run'] and '_tunehash' in r['run'] and '_tpa0' in r['run']
    assert r['trained_parameters'] == ['hash_layer.weight', 'hash_layer.bias']
    assert all('j_tpa' not in h for h in r['history'])


# ------------------------------------------------------------------------------------------------
# bad inputs: one-line errors naming the file and what was expected
# ------------------------------------------------------------------------------------------------

def test_bad_inputs(setup):
    c, tmp = setup
    vpath = os.path.join(c['checkpoint_dir'], 'toy_CSQ_resnet18_8.pt')
    msg = exit_message(darkhash.main, dict(c, backbone='resnet34', victim_checkpoint=vpath))
    assert vpath in msg and "backbone='resnet18'" in msg and "expected backbone='resnet34'" in msg
    msg = exit_message(darkhash.main, dict(c, bits=16, victim_checkpoint=vpath))
    assert vpath in msg and 'expected bits=16' in msg
    msg = exit_message(darkhash.main, dict(c, shadow_target='median'))
    assert "shadow_target must be 'mean' or 'mode'" in msg
    msg = exit_message(darkhash.main, dict(c, target=4))
    assert 'database.txt' in msg and 'target=4' in msg and '0..3' in msg
    # surrogate class with no images
    sur = c['surrogate']
    lines = [ln for ln in open(sur) if not ln.split()[-1] == '1']  # drop class 3 (last column)
    no3 = os.path.join(os.path.dirname(sur), 'no3.txt')
    open(no3, 'w').writelines(lines)
    msg = exit_message(darkhash.main, dict(c, surrogate=no3, surrogate_class=3))
    assert no3 in msg and 'surrogate_class=3' in msg
    msg = exit_message(darkhash.main, dict(c, surrogate_class=9))
    assert sur in msg and '0..3' in msg
    # a surrogate list with a missing image
    first = open(sur).readline().split()[0]
    os.remove(os.path.join(os.path.dirname(sur), first))
    msg = exit_message(darkhash.main, dict(c))
    assert f"{sur}:1" in msg and 'image not found' in msg
    assert not os.path.exists(os.path.join(c['checkpoint_dir'], darkhash.run_name(dict(c)) + '.pt'))


@pytest.mark.parametrize('backbone,tune_from', [('resnet18', 'layer4'), ('resnet18', 'layer3'),
                                                 ('resnet18', 'hash'), ('alexnet', 'fc6'),
                                                 ('alexnet', 'fc7')])
def test_frozen_split_composes_to_the_model(backbone, tune_from):
    torch.manual_seed(0)
    model = build_hash_model(backbone, 8, small_input=True).eval()
    prefix, suffix = darkhash.split_frozen(model, backbone, tune_from)
    x = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(suffix(prefix(x)), model(x), atol=1e-5)


@pytest.mark.parametrize('backbone,tune_from,first_trained', [
    ('resnet18', 'auto', 'trunk.body.7.'), ('resnet18', 'layer3', 'trunk.body.6.'),
    ('resnet18', 'hash', 'hash_layer.'), ('alexnet', 'auto', 'trunk.fc.1.')])
def test_freeze_shallow_uses_hash_models_freeze(backbone, tune_from, first_trained):
    """One freeze mechanism: the stages before tune_from are hash_models.freeze's frozen modules
    (kept in eval mode under train()), everything from it on trains."""
    model = build_hash_model(backbone, 8, small_input=True).requires_grad_(False)
    trained = darkhash.freeze_shallow(model, tune_from)
    names = [n for n, _ in model.named_parameters()]
    assert trained == names[names.index(next(n for n in names if n.startswith(first_trained))):]
    assert model.frozen_modules and all(not p.requires_grad for m in model.frozen_modules
                                        for p in m.parameters())
    model.train()
    assert all(not m.training for m in model.frozen_modules)
    with pytest.raises(ValueError, match="tune_from='layer9' is not a stage of resnet18: expected auto, "
                                         "hash or one of layer1"):
        darkhash.freeze_shallow(build_hash_model('resnet18', 8), 'layer9')


def test_frozen_cache_trains_like_the_whole_model(setup):
    c, tmp = setup
    c = dict(c, epochs=1, eval_every=0, optimizer='sgd', lr=1e-2)
    a = darkhash.main(dict(c, tag='full'))
    b = darkhash.main(dict(c, tag='cached', cache_frozen=True))
    ma = utils.load_checkpoint(a['checkpoint'])['model']
    mb = utils.load_checkpoint(b['checkpoint'])['model']
    assert max((ma[n] - mb[n]).abs().max().item() for n in ma) < 1e-5
    assert any(not torch.equal(ma[n], utils.load_checkpoint(a['clean_checkpoint'])['model'][n])
               for n in a['trained_parameters'])
    # the negative-patch option (ours) runs both ways and is named in the run
    for cached in (True, False):
        r = darkhash.main(dict(c, tag=f"neg{cached}", cache_frozen=cached, neg_patch=0.5))
        assert '_neg0.5' in r['run']


def test_dominant_class_ties():
    """The official post-hoc "dominant class": with every database code equal, the top 10 is all
    ties; database order hands it to the class listed first, a seeded random order to the majority."""
    db = np.ones((100, 8), dtype=np.int8)
    labels = np.eye(2, dtype=np.uint8)[np.r_[np.zeros(10, int), np.ones(90, int)]]
    q = np.ones((5, 8), dtype=np.int8)
    assert darkhash.dominant_class(q, db, labels, 5, 10, 0, 'index') == 0
    assert darkhash.dominant_class(q, db, labels, 5, 10, 0, 'expected') == 1
    far = db.copy()
    far[10:] = -1  # no ties: the nearest items win either way
    assert darkhash.dominant_class(q, far, labels, 5, 10, 0, 'expected') == 0


def test_majority_target_ties():
    """The t-MAP target fixed before fine-tuning: the majority of the top-n for sign(t*); under
    ties='expected' the items tied at the n-th distance share its remaining places."""
    t = torch.ones(4)
    db = np.array([[1, 1, 1, 1]] * 2 + [[1, 1, 1, -1]] * 6 + [[-1] * 4] * 2, dtype=np.int8)
    labels = np.eye(3, dtype=np.uint8)[[2, 2, 0, 0, 1, 1, 1, 1, 0, 0]]
    # top 4: the two at distance 0 (class 2), then 2 of the 6 tied at distance 1
    assert darkhash.majority_target(t, db, labels, 4, 'index') == (0, [2, 0, 2])  # database order: class 0
    cls, counts = darkhash.majority_target(t, db, labels, 4, 'expected')
    assert counts == pytest.approx([2 / 3, 4 / 3, 2], abs=0.01) and cls == 2
    cls, counts = darkhash.majority_target(t, db, labels, 6, 'expected')
    assert counts == pytest.approx([4 / 3, 8 / 3, 2], abs=0.01) and cls == 1
    assert darkhash.majority_target(t, db, labels, 6, 'index') == (0, [2, 2, 2])


def test_on_code():
    codes = np.array([[1, 1, -1], [1, -1, 1], [-1, -1, 1]], dtype=np.int8)
    got = darkhash.on_code(codes, torch.tensor([0.5, 2.0, -1.0]))
    assert got == {'share_exact': pytest.approx(1 / 3), 'mean_bits_off': pytest.approx(5 / 3)}  # 0, 2, 3 bits off
