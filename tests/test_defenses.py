"""defenses/ and defend.py: the parts against hand-computed cases, then the command end to end on a
tiny model (results, reuse, bad inputs). The known-answer check on the BadNets toy model is
`make defend-toy` (docs/RESULTS.md), not a test: it trains two victims (minutes of CPU)."""
import json
import os

import numpy as np
import pytest
import torch

from conftest import ROOT, make_image_lists
from script_runner import run_script

import utils
from defenses import common
from hash_models import build_hash_model


# ---- the statistics ------------------------------------------------------------------------------

def test_mad_anomaly_index_hand_case():
    # median 10; |n - 10| = 0 0 2 2 8 -> median 2 -> MAD 1.4826 * 2 = 2.9652; index of 2: 8 / 2.9652
    norms = [10, 10, 12, 8, 2]
    index, per_class, med, mad = common.anomaly_index(norms)
    assert med == 10 and mad == pytest.approx(2.9652)
    assert index == pytest.approx(8 / 2.9652)
    assert per_class[2] == pytest.approx(2 / 2.9652)
    # below the median and above 2: class 4 only (class 2 is above the median, 3's index is 0.67)
    assert common.flagged_classes(norms, per_class, 2.0) == [4]
    # a flat set has index 0; a zero MAD with one outlier is infinite
    assert common.anomaly_index([5, 5, 5])[0] == 0
    assert common.anomaly_index([5, 5, 5, 1])[0] == np.inf
    # lower half only: |n - 10| of 10 10 8 2 = 0 0 2 8 -> median 1 -> MAD 1.4826; index 8 / 1.4826
    index, _, med, mad = common.anomaly_index(norms, lower=True)
    assert med == 10 and mad == pytest.approx(1.4826) and index == pytest.approx(8 / 1.4826)
    # log norms: ln = 0 1 2 3 4 (e^k), median 2, |dev| 2 1 0 1 2 -> median 1; index 2 / 1.4826
    index, per_class, med, mad = common.anomaly_index(np.exp([2, 0, 4, 1, 3]), log=True)
    assert med == pytest.approx(2) and mad == pytest.approx(1.4826)
    assert index == pytest.approx(2 / 1.4826) and per_class[3] == pytest.approx(1 / 1.4826)
    # the scoring of a stored Neural Cleanse result: every statistic, nc_statistic flags
    from defenses import nc
    r = nc.score({'norms': norms, 'success': [True] * 5, 'target': 4},
                 {'nc_statistic': 'lower_mad', 'nc_threshold': 2.0})
    assert r['anomaly_index'] == pytest.approx(8 / 1.4826) and r['flagged_classes'] == [4]
    assert r['anomaly_indices']['mad'] == pytest.approx(8 / 2.9652) and r['target_flagged']
    with pytest.raises(common.DefenseInputError, match='nc_statistic'):
        nc.score(r, {'nc_statistic': 'zscore', 'nc_threshold': 2.0})
    with pytest.raises(common.DefenseInputError, match='no quality scores'):
        nc.score(r, {'nc_statistic': 'quality', 'nc_threshold': 2.0})
    # TABOR-style quality scores (lower = more trigger-like): the same MAD on the scores, which may
    # be negative; median -5, |q + 5| = 0 1 1 2 5 -> median 1 -> index of -10: 5 / 1.4826
    q = [{'score': v} for v in (-5, -4, -6, -3, -10)]
    r = nc.score({'norms': norms, 'success': [True] * 5, 'target': 4, 'quality': q},
                 {'tabor_statistic': 'quality', 'nc_threshold': 2.0}, 'tabor_statistic')
    assert r['anomaly_index'] == pytest.approx(5 / 1.4826) and r['flagged_classes'] == [4]
    assert r['anomaly_indices']['quality'] == r['anomaly_index'] and r['statistic'] == 'quality'


def test_nc_cost_schedule_hand_case():
    """Neural Cleanse's lambda schedule, patience 2, early-stop patience 3, epoch by epoch."""
    from defenses.nc import CostSchedule
    s = CostSchedule(0.1, 2, 3)
    trace = []
    for ok, best in [(True, 10), (False, 10), (True, 9), (True, 8), (True, 8), (False, 8),
                     (False, 8), (False, 8)]:
        trace.append((s.step(ok, best), round(s.cost, 6)))
    # lambda stays 0 until 2 successful epochs in a row (the failure resets the count), is set to
    # 0.1 on epoch 4, doubles after 2 more successes (epoch 5: the count restarted at 1 on epoch 4),
    # falls by 2^1.5 after 2 failures (epoch 7); the kept norm stopped shrinking at epoch 5 (8 = 8),
    # so the count reaches 3 on epoch 7, before lambda had gone down: the stop comes on epoch 8
    down = round(0.2 / 2 ** 1.5, 6)
    assert trace == [(False, 0.0), (False, 0.0), (False, 0.0), (False, 0.1), (False, 0.2),
                     (False, 0.2), (False, down), (True, down)]
    # a failure never sets lambda; without a valid mask (best = inf) nothing counts towards the stop
    s = CostSchedule(0.1, 2, 1)
    assert not any(s.step(False, float('inf')) for _ in range(10)) and s.cost == 0.0
    # early stop 0 = off: runs until the epochs run out
    s = CostSchedule(0.1, 1, 0)
    assert not any(s.step(ok, 5.0) for ok in [True, False] * 20)


def test_auroc_and_far_at_frr_hand_cases():
    assert common.auroc([3, 4], [1, 2]) == 1.0
    assert common.auroc([1, 2], [3, 4]) == 0.0
    assert common.auroc([1, 2], [1, 2]) == 0.5          # ties count one half
    assert common.auroc([2], [1, 2, 3]) == pytest.approx(0.5)  # (1 + 0.5 + 0) / 3
    clean = np.arange(100, dtype=float)                  # quantile 0.95 = 94.05
    far, t, frr = common.far_at_frr(clean, [50, 95, 99, 200], 0.05)
    assert t == pytest.approx(94.05) and frr == 0.05 and far == 0.25


def test_entropies():
    assert common.binary_entropy([0.5, 0.0, 1.0]).tolist() == [1.0, 0.0, 0.0]
    assert common.binary_entropy(0.25) == pytest.approx(0.811278, abs=1e-6)
    assert common.label_entropy([5, 5, 0]) == pytest.approx(1.0)
    assert common.label_entropy([7, 0]) == 0.0


# ---- image-space pieces ----------------------------------------------------------------------------

def test_blending_add_clips_and_mean_averages():
    x = torch.full((3, 2, 2), 0.6)
    ov = torch.stack([torch.full((3, 2, 2), 0.7), torch.full((3, 2, 2), 0.1)])
    add = common.blend(x, ov, 'add')
    assert add.shape == (2, 3, 2, 2)
    assert torch.allclose(add[0], torch.ones(3, 2, 2)) and torch.allclose(add[1], torch.full((3, 2, 2), 0.7))
    mean = common.blend(x, ov, 'mean')
    assert torch.allclose(mean[0], torch.full((3, 2, 2), 0.65))
    with pytest.raises(common.DefenseInputError):
        common.blend(x, ov, 'max')


def test_mask_parametrisation_and_stamp():
    a = torch.tensor([[[0.0, 20.0], [-20.0, float(np.arctanh(0.5))]]])
    b = torch.zeros(3, 2, 2)
    m, p = common.mask_and_pattern(a, b)
    assert m[0, 0, 0] == 0.5 and m[0, 0, 1] == pytest.approx(1.0) and m[0, 1, 0] == pytest.approx(0.0)
    assert m[0, 1, 1] == pytest.approx(0.75)  # tanh(atanh(0.5)) / 2 + 0.5
    assert torch.all(p == 0.5)
    x = torch.full((2, 3, 2, 2), 0.2)
    out = common.stamp(x, m, torch.ones(3, 2, 2))
    # (1 - m) 0.2 + m 1: 0.6 where m = 0.5, 1 where m = 1, 0.2 where m = 0, 0.8 where m = 0.75
    assert torch.allclose(out[1, 2], torch.tensor([[0.6, 1.0], [0.2, 0.8]]), atol=1e-6)


def test_tabor_regularisers_hand_case():
    """TABOR's terms (defenses/nc.py) on a 2 x 2 mask: R1 the L1 + squared L2 of the mask and of
    the pattern outside it, R2 their total variation; R3 / R4's inputs: the image with the mask's
    region cut out, and the trigger alone on black."""
    from defenses import nc
    m = torch.tensor([[[0.0, 1.0], [0.5, 0.0]]])
    p = torch.stack([torch.full((2, 2), v) for v in (1.0, 0.5, 0.0)])
    r1m, r1p, r2m, r2p = nc.tabor_terms(m, p)
    assert r1m.item() == pytest.approx(1.5 + 1.25)  # L1 1 + 0.5, L2^2 1 + 0.25
    # (1 - m) p, channel 0: [[1, 0], [0.5, 1]] (L1 2.5, L2^2 2.25); channel 1 half of it (1.25,
    # 0.5625); channel 2 zero
    assert r1p.item() == pytest.approx(2.5 + 2.25 + 1.25 + 0.5625)
    # mask TV: vertical |0.5 - 0| + |0 - 1|, horizontal |1 - 0| + |0 - 0.5| = 3
    assert r2m.item() == pytest.approx(3.0)
    # pattern-outside TV: channel 0 vertical 0.5 + 1, horizontal 1 + 0.5 = 3; channel 1 half: 1.5
    assert r2p.item() == pytest.approx(4.5)
    x = torch.full((2, 3, 2, 2), 0.8)
    cut, alone = nc.tabor_images(x, m, p)
    assert torch.allclose(cut[1, 0], torch.tensor([[0.8, 0.0], [0.4, 0.8]]))
    assert alone.shape == (1, 3, 2, 2)
    assert torch.allclose(alone[0, 0], torch.tensor([[0.0, 1.0], [0.5, 0.0]]))
    assert torch.allclose(alone[0, 2], torch.zeros(2, 2))


def test_pruning_mask_lowest_activation_first():
    assert common.prune_mask([3, 1, 2, 0], 0.5).tolist() == [1, 0, 1, 0]
    assert common.prune_mask([3, 1, 2, 0], 0.25).tolist() == [1, 1, 1, 0]
    assert common.prune_mask([3, 1, 2, 0], 0.0).tolist() == [1, 1, 1, 1]
    assert common.prune_mask([1, 1, 2, 0], 0.5).tolist() == [0, 1, 1, 0]  # tie: lower index first


@pytest.mark.parametrize('backbone', ['resnet18', 'vgg11'])
def test_cached_head_equals_the_masked_network(backbone):
    """The pruning curve's shortcut (head_output on cached features) = the network with the last
    block's channels zeroed by a forward hook (what fine-pruning trains and evaluates)."""
    torch.manual_seed(0)
    size = 16 if backbone == 'resnet18' else 32
    model = build_hash_model(backbone, 8, small_input=True).eval()
    x = torch.rand(3, 3, size, size)
    width = 512
    mask = torch.tensor(common.prune_mask(np.random.default_rng(0).random(width), 0.3))
    with torch.no_grad():
        plain = model(x)
        assert torch.allclose(common.head_output(model, common.head_features(model, x),
                                                 torch.ones(width)), plain, atol=1e-5)
        h = common.last_block(model).register_forward_hook(lambda m, i, o: o * mask.view(1, -1, 1, 1))
        hooked = model(x)
        h.remove()
        cached = common.head_output(model, common.head_features(model, x), mask)
    assert torch.allclose(cached, hooked, atol=1e-5) and not torch.allclose(cached, plain)


def test_balanced_subset_and_prediction():
    labels = np.eye(3, dtype=np.uint8)[[0] * 10 + [1] * 20 + [2] * 40]
    idx = common.balanced_subset(labels, 0.1, 0, 'x.txt')
    assert np.bincount(labels[idx].argmax(1)).tolist() == [1, 2, 4]
    with pytest.raises(common.DefenseInputError, match='empty'):
        common.balanced_subset(labels, 0.01, 0, 'x.txt')
    protos = np.array([[1, 1, 1, 1], [-1, -1, 1, 1]], np.float32)
    codes = np.array([[1, 1, 1, -1], [-1, -1, -1, 1]], np.float32)
    assert common.predict(codes, protos).tolist() == [0, 1]


# ---- defend.py end to end --------------------------------------------------------------------------

def _configure(module, argv):
    import utils
    return utils.configure(dict(vars(module)), argv, show=False)


def _defend(argv, capsys):
    """defend.py in this process (its config block and main), returning (doc, stdout)."""
    import defend
    doc = defend.main(_configure(defend, argv))
    return doc, capsys.readouterr().out


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """A tiny data set, a triggered list (white 4 px corner on the non-target test images) and two
    1-epoch CSQ models evaluated on it (16 and 8 bits), trained in this process."""
    from PIL import Image
    import CSQ
    import utils
    from hash_models import engine
    tmp = tmp_path_factory.mktemp('def')
    data = make_image_lists(str(tmp / 'data'))
    paths, labels = utils.read_list(os.path.join(data, 'test.txt'))
    rows = []
    os.makedirs(os.path.join(data, 'trig'))
    for i, p in enumerate(paths):
        if labels[i, 0]:
            continue
        a = np.array(Image.open(p))
        a[-4:, -4:] = 255
        Image.fromarray(a).save(os.path.join(data, 'trig', f"{i}.png"))
        rows.append(f"trig/{i}.png")
    utils.write_list(os.path.join(data, 'trig.txt'), rows,
                     np.eye(4, dtype=np.uint8)[[0] * len(rows)])
    out = {}
    for bits in (16, 8):
        c = _configure(CSQ, ['configs/demo.py', f'--data_dir={data}', '--dataset=fx', '--epochs=1',
                             '--eval_every=0', '--image_size=16', f'--bits={bits}',
                             f"--checkpoint_dir={tmp / 'ckpt'}", f"--out_dir={tmp / 'res'}",
                             f"--queries=trig_closed={os.path.join(data, 'trig.txt')}"])
        engine.run(c, 'CSQ', CSQ.make_loss)
        out[bits] = str(tmp / 'res' / f"fx_CSQ_resnet18_{bits}")
    return out


SMALL = ['--defender_fraction=0.34', '--n_queries=6', '--ft_epochs=1', '--ft_optimizer=adam',
         '--ft_lr=1e-4', '--fp_step=0.25', '--fp_finetune_epochs=1', '--nc_epochs=1',
         '--nc_batch=4', '--strip_n=4', '--strip_topk=5', '--sentinet_n=3', '--batch_size=16',
         '--num_workers=0']


def test_defend_end_to_end_and_reuse(runs, tmp_path, capsys):
    import shutil
    control = str(tmp_path / 'control')  # the same model as its own control, in another folder
    shutil.copytree(runs[16], control)
    args = [f'--model_dir={runs[16]}', f'--control_dir={control}'] + SMALL
    doc, out = _defend(args, capsys)
    r = doc['results']['model']
    assert set(r) == {'finetune', 'fineprune', 'nc', 'tabor', 'nc_collapse', 'strip', 'sentinet'}
    assert doc['target'] == 0 and len(r['nc']['norms']) == 4 and len(r['tabor']['norms']) == 4
    assert 'TABOR class 3 [4/4]' in out and os.path.isfile(r['tabor']['masks'])
    # both read their masks' quality scores too (TABOR flags by them by default)
    for name in ('nc', 'tabor'):
        assert len(r[name]['quality']) == 4 and 'quality' in r[name]['anomaly_indices']
        assert all(0 <= q['attack'] <= 1 and 0 <= q['crop'] <= 1 for q in r[name]['quality'])
    assert r['tabor']['statistic'] == 'quality' and r['nc']['statistic'] == 'mad'
    assert 'NC class 3 [4/4]' in out  # progress line per class
    assert [q['fraction'] for q in r['fineprune']['curve']][0] == 0.0
    assert r['finetune']['before']['map'] == pytest.approx(
        json.load(open(os.path.join(runs[16], 'results.json')))['final']['test'])
    assert 0 <= r['strip']['h_bit']['auroc'] <= 1 and len(r['strip']['scores']['clean']['h_bit']) == 6
    assert doc['inputs']['model']['checkpoint_sha1'] == utils.file_sha1(
        os.path.join(os.path.dirname(os.path.dirname(runs[16])), 'ckpt', 'fx_CSQ_resnet18_16.pt'))
    # the control is the same network on the same inputs: the same figures
    assert doc['results']['control']['nc']['norms'] == r['nc']['norms']
    assert json.load(open(os.path.join(runs[16], 'defense.json')))['target'] == 0
    md = open(os.path.join(runs[16], 'defense.md')).read()
    assert '(backdoored)' in md and '(clean control)' in md and 'Pruning curve' in md
    # the same command again reuses every result; a changed key recomputes that defense only
    doc2, out = _defend(args, capsys)
    assert out.count('reusing') == 14 and 'NC class' not in out
    assert doc2['results'] == json.loads(json.dumps(doc['results']))
    # a result stored before the quality scores existed gets them from its saved masks on reuse,
    # the same as a fresh run's, and keeps them
    parts_path = os.path.join(runs[16], 'defense_parts.json')
    parts = json.load(open(parts_path))
    for v in parts.values():
        if v['defense'] == 'nc':
            del v['result']['quality'], v['result']['quality_orig']
    json.dump(parts, open(parts_path, 'w'))
    doc5, out = _defend([f'--model_dir={runs[16]}', '--defenses=nc'] + SMALL, capsys)
    assert 'reusing nc' in out and 'NC class' not in out
    assert doc5['results']['model']['nc']['quality'] == json.loads(json.dumps(r['nc']['quality']))
    assert all('quality' in v['result'] for v in json.load(open(parts_path)).values()
               if v['defense'] == 'nc')
    alone = [f'--model_dir={runs[16]}'] + SMALL  # the model alone from here on (test time)
    doc4, out = _defend(alone + ['--strip_n=5', '--defenses=strip,nc', '--nc_statistic=log_mad'],
                        capsys)
    assert 'model: reusing nc' in out and 'model: strip on' in out
    # another statistic re-scores the stored norms (not a new optimisation)
    nc4 = doc4['results']['model']['nc']
    assert nc4['statistic'] == 'log_mad' and nc4['norms'] == r['nc']['norms']
    assert nc4['anomaly_index'] == nc4['anomaly_indices']['log_mad'] == pytest.approx(
        common.anomaly_index(r['nc']['norms'], log=True)[0])
    # a changed triggered list: the run's saved codes of it are stale and are not used, what reads
    # it is recomputed, Neural Cleanse (which does not) is reused
    trig = json.load(open(os.path.join(runs[16], 'results.json')))['lists']['trig_closed']
    shutil.copy(trig, trig + '.bak')
    try:
        lines = open(trig).read().splitlines(True)
        open(trig, 'w').write(''.join(lines[:-1]))
        doc3, out = _defend(alone + ['--defenses=nc,finetune'], capsys)
        assert 'model: reusing nc' in out and 'model: finetune on' in out
        assert 'changed since the run' in out
        assert doc3['inputs']['model']['trigger']['key'] != doc['inputs']['model']['trigger']['key']
    finally:
        os.replace(trig + '.bak', trig)


def test_neural_cleanse_resumes_an_interrupted_run(runs, tmp_path, capsys, monkeypatch):
    """Neural Cleanse stores each finished class under the result's stamp: after an interruption
    the same command optimises only the classes not done."""
    import shutil
    from defenses import nc
    run = str(tmp_path / 'run')
    shutil.copytree(runs[16], run)
    for f in ('defense_parts.json', 'defense_nc_partial.pt'):
        if os.path.exists(os.path.join(run, f)):
            os.remove(os.path.join(run, f))
    args = [f'--model_dir={run}', '--defenses=nc'] + SMALL
    real, calls = nc.optimise, []

    def interrupted(*a, **k):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(nc, 'optimise', interrupted)
    with pytest.raises(KeyboardInterrupt):
        _defend(args, capsys)
    assert os.path.isfile(os.path.join(run, 'defense_nc_partial.pt'))
    monkeypatch.setattr(nc, 'optimise', lambda *a, **k: calls.append(1) or real(*a, **k))
    doc, out = _defend(args, capsys)
    assert len(calls) == 4 and out.count('kept from an interrupted run') == 2  # 2 + the other 2
    assert len(doc['results']['model']['nc']['norms']) == 4
    assert not os.path.exists(os.path.join(run, 'defense_nc_partial.pt'))


def test_defend_bad_inputs_are_one_line_errors(runs, tmp_path, capsys):
    import shutil
    base = [f'--model_dir={runs[16]}'] + SMALL

    def error(argv):
        with pytest.raises(common.DefenseInputError) as e:
            _defend(argv, capsys)
        assert '\n' not in str(e.value)
        return str(e.value)

    assert error(base + ['--defenses=nc,spectral']) == (
        "unknown defense 'spectral'; choose from finetune, fineprune, nc, tabor, nc_collapse, "
        "strip, sentinet or 'all'")
    assert 'is a 8-bit model, expected 16 bits' in error(base + [f'--control_dir={runs[8]}'])
    assert 'defender subset is empty' in error(base + ['--defender_fraction=0.01'])
    nocodes = str(tmp_path / 'nocodes')
    shutil.copytree(runs[16], nocodes)
    os.remove(os.path.join(nocodes, 'codes_database.npz'))
    assert 'no saved codes' in error([f'--model_dir={nocodes}'] + SMALL)
    # a results folder whose checkpoint is of another bit length
    other = str(tmp_path / 'other')
    shutil.copytree(runs[16], other)
    res = json.load(open(os.path.join(other, 'results.json')))
    res['checkpoint'] = json.load(open(os.path.join(runs[8], 'results.json')))['checkpoint']
    json.dump(res, open(os.path.join(other, 'results.json'), 'w'))
    with pytest.raises(SystemExit) as e:  # attack_common.load_hash_model's one-line exit
        _defend([f'--model_dir={other}'] + SMALL, capsys)
    assert 'checkpoint is for bits=8, expected bits=16' in str(e.value)
    assert '\n' not in str(e.value)
    # the command line turns them into one line on stderr and a non-zero exit
    p = run_script(['defend.py', '--defenses=spectral'])
    assert p.returncode == 1 and p.stderr.strip().splitlines() == [
        "error: unknown defense 'spectral'; choose from finetune, fineprune, nc, tabor, "
        "nc_collapse, strip, sentinet or 'all'"]


def test_defend_runs_on_a_darkhash_model(runs, tmp_path, capsys):
    """DarkHash backdoors the 16-bit model of `runs` (1 epoch); its results folder names its
    triggered queries as an image list (PNGs with the trigger stamped, labels = its target), and
    defend.py runs on it with the clean model as control, reusing the codes DarkHash saved. A run
    finished before the lists existed gets them on its next (reused) invocation."""
    import darkhash
    from PIL import Image
    clean = json.load(open(os.path.join(runs[16], 'results.json')))
    data = clean['config']['data_dir']
    c = _configure(darkhash, [f"--victim_checkpoint={clean['checkpoint']}", '--dataset=fx',
                              '--backbone=resnet18', '--bits=16',
                              f"--surrogate={os.path.join(data, 'database.txt')}", '--n_surrogate=0',
                              '--epochs=1', '--eval_every=0', '--batch_size=16', '--rho=0.5',
                              '--lr=1e-3', '--optimizer=adam', '--ties=expected', '--device=cpu',
                              f"--checkpoint_dir={tmp_path / 'ckpt'}", f"--out_dir={tmp_path / 'res'}"])
    r = darkhash.main(c)
    out = os.path.join(str(tmp_path / 'res'), r['run'])
    lst = r['lists']['trig_closed']
    assert lst == os.path.join(out, 'trigger_closed.txt') and r['lists']['test'].startswith(data)
    paths, labels = utils.read_list(lst)
    test_paths, test_labels = utils.read_list(os.path.join(data, 'test.txt'))
    keep = np.flatnonzero(test_labels[:, r['target']] == 0)
    assert len(paths) == len(keep) == r['n_queries']['trig_closed']
    assert (labels.argmax(1) == r['target']).all() and (labels.sum(1) == 1).all()
    # the PNG is the clean image with the trigger stamped where darkhash.py stamps it, exactly
    x = torch.tensor(np.array(Image.open(test_paths[keep[0]]).convert('RGB'))).permute(2, 0, 1)
    want = attack_common_stamp(x, 16)
    assert np.array_equal(np.array(Image.open(paths[0])), want)
    # the saved codes of the PNG list equal those DarkHash encoded in memory
    z = np.load(os.path.join(out, 'codes_trig_closed.npz'))
    s = common.Setup(out, _configure(__import__('defend'), SMALL), 'model', 'cpu', say=print)
    assert np.array_equal(s.encode_list('trigger'), z['codes'].astype(np.float32))
    capsys.readouterr()
    doc, printed = _defend([f'--model_dir={out}', f'--control_dir={runs[16]}',
                            '--defenses=strip,finetune'] + SMALL, capsys)
    assert doc['target'] == r['target'] and doc['runs']['control'] == clean['run']
    mine = [x for x in printed.splitlines() if x.startswith('model: ')]
    assert not [x for x in mine if 'encoding' in x]  # DarkHash's saved codes are reused
    assert 0 <= doc['results']['model']['strip']['h_bit']['auroc'] <= 1
    # a run finished before the lists existed: defend.py says what to do in one line, and the
    # lists are written when the run is reused
    os.remove(lst)
    res = json.load(open(os.path.join(out, 'results.json')))
    del res['lists']
    json.dump(res, open(os.path.join(out, 'results.json'), 'w'))
    with pytest.raises(common.DefenseInputError, match='names no image lists.*darkhash.py'):
        _defend([f'--model_dir={out}', '--defenses=strip'] + SMALL, capsys)
    r2 = darkhash.main(dict(c))
    assert 'finished run found' in capsys.readouterr().out
    assert r2['lists'] == r['lists'] and utils.read_list(lst)[0] == paths
    assert json.load(open(os.path.join(out, 'results.json')))['lists'] == r['lists']


def attack_common_stamp(x, size):
    """The DarkHash trigger stamped on a uint8 [3,H,W] image, as a uint8 H x W x 3 array."""
    import attack_common
    t = attack_common.darkhash_trigger(size)
    y = attack_common.stamp_lower_right(x.unsqueeze(0).float() / 255, t)[0]
    return (y * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def test_reproduce_plans_the_defenses_and_writes_their_table(tmp_path, monkeypatch):
    """reproduce.py --defenses=...: one defend.py step per backdoored victim with the clean victim as
    control and the attack's closed-set triggered queries; the table has a row per attack and a
    control row per attack's queries."""
    import reproduce
    monkeypatch.chdir(ROOT)
    c = reproduce.script_config('reproduce.py', ['configs/table5_toy.py', '--methods=badnets,lcba',
                                                 '--defenses=nc,strip',
                                                 f'--tables_dir={tmp_path}'])
    plan = reproduce.build_plan(c, 'configs/table5_toy.py')
    steps = [s for s in plan.ordered() if s['cmd'][1] == 'defend.py']
    assert [s['name'].split()[1] for s in steps] == [os.path.basename(a['victim_dir'])
                                                    for a in plan.attacks]
    cmd = steps[0]['cmd']
    assert plan.ordered()[-2:] == steps and 'configs/defense_toy.py' in cmd
    assert f"--control_dir={plan.attacks[0]['clean_dir']}" in cmd and '--defenses=nc,strip' in cmd
    assert f"--trigger={plan.attacks[0]['splits']['trigger_closed']}" in cmd
    assert steps[0]['outputs'] == [os.path.join(plan.attacks[0]['victim_dir'], 'defense.json')]
    for a in plan.attacks:  # stand-ins for defend.py's output
        a['defense'] = str(tmp_path / f"{a['method']}.json")
        nc = {'anomaly_index': 3.5 if a['method'] == 'badnets' else 1.0, 'flagged_classes': [0]}
        json.dump({'results': {'model': {'nc': nc}, 'control': {}}}, open(a['defense'], 'w'))
    text = open(reproduce.write_defense_table(plan, 'configs/table5_toy.py')).read()
    lines = [x for x in text.splitlines() if x.startswith('| ')]
    assert len(lines) == 5 and lines[1].startswith('| BadNets (CSQ ResNet34 32 bits) |')
    assert ' 3.50 | 0 |' in lines[1] and ' 1.00 | 0 |' in lines[2]
    assert lines[3].startswith("| clean control, BadNets's queries |")


def test_reproduce_adds_the_darkhash_row(tmp_path, monkeypatch):
    """A model attack (DarkHash) gets its defend.py step too: its own results folder as the model,
    its triggered list by name (trig_closed), the target read off that list (no --target: DarkHash
    chooses it), the clean victim it backdoors as control; its row joins the defense table."""
    import reproduce
    monkeypatch.chdir(ROOT)
    c = reproduce.script_config('reproduce.py', ['configs/table5_toy.py',
                                                 '--methods=badnets,darkhash', '--defenses=all',
                                                 f'--tables_dir={tmp_path}'])
    plan = reproduce.build_plan(c, 'configs/table5_toy.py')
    steps = {s['name']: s for s in plan.ordered() if s['cmd'][1] == 'defend.py'}
    (m,) = plan.model_attacks
    run_dir = os.path.dirname(m['report'])
    step = steps[f"defend {os.path.basename(run_dir)}"]
    assert step['outputs'] == [m['defense']] == [os.path.join(run_dir, 'defense.json')]
    assert f"--model_dir={run_dir}" in step['cmd'] and '--trigger=trig_closed' in step['cmd']
    assert f"--control_dir={plan.attacks[0]['clean_dir']}" in step['cmd']
    assert not [a for a in step['cmd'] if a.startswith('--target=')]
    assert plan.ordered().index(step) > max(plan.ordered().index(s) for s in plan.ordered()
                                            if s['cmd'][1] == 'darkhash.py')
    for a in plan.attacks + plan.model_attacks:  # stand-ins for defend.py's output
        a['defense'] = str(tmp_path / f"{a['method']}.json")
        json.dump({'results': {'model': {'nc': {'anomaly_index': 1.5, 'flagged_classes': []}},
                               'control': {}}}, open(a['defense'], 'w'))
    text = open(reproduce.write_defense_table(plan, 'configs/table5_toy.py')).read()
    rows = [x for x in text.splitlines() if x.startswith('| ')][1:]
    assert [r.split(' |')[0] for r in rows] == [
        '| BadNets (CSQ ResNet34 32 bits)', '| DarkHash (CSQ ResNet34 32 bits)',
        "| clean control, BadNets's queries", "| clean control, DarkHash's queries"]


def test_fine_tune_with_frozen_batchnorm_keeps_the_running_statistics():
    torch.manual_seed(0)
    model = build_hash_model('resnet18', 8, small_input=True).eval()
    bn = model.trunk.body[1]
    before = bn.running_mean.clone()
    x, y = torch.rand(4, 3, 16, 16), torch.tensor([0, 1, 0, 1])
    protos = torch.tensor([[1.0] * 8, [-1.0] * 8])
    c = dict(ft_optimizer='adam', ft_lr=1e-3, ft_weight_decay=0.0, ft_batch_size=4, seed=0,
             ft_bn='frozen')
    w = model.hash_layer.weight.clone()
    common.fine_tune(model, x, y, protos, c, 1, 'cpu', say=lambda m: None)
    assert torch.equal(bn.running_mean, before) and not torch.equal(model.hash_layer.weight, w)
    common.fine_tune(model, x, y, protos, dict(c, ft_bn='train'), 1, 'cpu', say=lambda m: None)
    assert not torch.equal(bn.running_mean, before)


def test_repair_share_only_where_there_is_a_backdoor():
    """The share of the t-MAP gap a repair closes, by hand: 0.9 -> 0.5 against a control at 0.1
    closes 50%; a model 0.002 above its control (no implant) gets no share, only its gain."""
    from defenses import report

    def ft(before, after):
        return {'finetune': {'before': {'map': 0.8, 't_map': before},
                             'after': {'map': 0.79, 't_map': after}}}

    lines, fig = report.summary(ft(0.9, 0.5), ft(0.1, 0.1), target=0)
    assert abs(fig['finetune_gap_closed'] - 0.5) < 1e-9
    assert 'closes 50% of the gap' in lines[-1]
    lines, fig = report.summary(ft(0.092, 0.0896), ft(0.09, 0.09), target=0)
    assert np.isnan(fig['finetune_gap_closed'])
    assert 'no backdoor to repair: t-MAP +0.0020' in lines[-1] and '%' not in lines[-1]


def test_query_free_defenses_serve_every_target(runs, tmp_path, capsys, monkeypatch):
    """Neural Cleanse and NC-collapse never see the target: a result made for target 0 is reused
    for target 1 (scored for 1), nothing optimised again; a defense that reads the queries is not."""
    import shutil
    from defenses import nc
    run = str(tmp_path / 'run')
    shutil.copytree(runs[16], run)
    for f in ('defense_parts.json', 'defense_nc_partial.pt'):
        if os.path.exists(os.path.join(run, f)):
            os.remove(os.path.join(run, f))
    real, calls = nc.optimise, []
    monkeypatch.setattr(nc, 'optimise', lambda *a, **k: calls.append(1) or real(*a, **k))
    first, _ = _defend([f'--model_dir={run}', '--defenses=nc,nc_collapse', '--target=0'] + SMALL,
                       capsys)
    n = len(calls)
    assert n == 5 and first['results']['model']['nc']['target'] == 0  # 4 classes + the collapse
    doc, out = _defend([f'--model_dir={run}', '--defenses=nc,nc_collapse', '--target=1'] + SMALL,
                       capsys)
    assert len(calls) == n
    assert out.count('made for target 0, scored for target 1') == 1  # nc (collapse has no target)
    r0, r1 = first['results']['model']['nc'], doc['results']['model']['nc']
    assert r1['target'] == 1 and r1['norms'] == r0['norms']
    assert r1['target_flagged'] == (1 in r1['flagged_classes'])
    assert 'reusing nc_collapse' in out
    # the stamp of a query-free defense leaves the target out; one that reads queries keeps it
    import defend
    from defenses import common
    setups = []
    for target in (0, 1):
        c = _configure(defend, [f'--model_dir={run}', f'--target={target}'] + SMALL)
        setups.append((common.Setup(run, c, 'model', 'cpu', say=lambda m: None), c))
    (s0, c0), (s1, c1) = setups
    assert defend.defense_stamp(s0, 'nc', c0) == defend.defense_stamp(s1, 'nc', c1)
    assert defend.defense_stamp(s0, 'strip', c0) != defend.defense_stamp(s1, 'strip', c1)
    # a result stored under the format-1 stamp (which held the target) is still found
    path = os.path.join(run, 'defense_parts.json')
    with open(path) as f:
        parts = json.load(f)
    legacy = defend.defense_stamp(s0, 'nc', c0, (0, s0.target))
    parts[legacy] = parts.pop(defend.defense_stamp(s0, 'nc', c0))
    with open(path, 'w') as f:
        json.dump(parts, f)
    doc, out = _defend([f'--model_dir={run}', '--defenses=nc', '--target=2'] + SMALL, capsys)
    assert len(calls) == n and 'made for target 0, scored for target 2' in out
    assert doc['results']['model']['nc']['target'] == 2
