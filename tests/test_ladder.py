"""The pieces of the regime ladder (issue 11): pretrained=PATH (a torchvision-format state dict),
freeze (frozen parameters and BatchNorm statistics), init_parts=trunk, and pretrain.py (with its
init= and adversarial fine-tuning)."""
import json
import os
import sys

import pytest
import torch

from conftest import ROOT
from script_runner import run_script

import utils
from hash_models import build_hash_model, freeze, torchvision_model, trunk_stages


def _run(script, args, check=True):
    p = run_script([script] + list(args))
    if check and p.returncode != 0:
        raise AssertionError(p.stdout + p.stderr)
    return p


def _args(data, tmp, **kw):
    base = dict(data_dir=data, dataset='fx', epochs=1, eval_every=0, image_size=16, bits=16,
                checkpoint_dir=os.path.join(tmp, 'ckpt'), out_dir=os.path.join(tmp, 'res'))
    base.update(kw)
    return ['configs/demo.py'] + [f"--{k}={v}" for k, v in base.items()]


def _classifier_file(path, name='resnet18', small_input=True, num_classes=200, seed=1):
    torch.manual_seed(seed)
    net = torchvision_model(name, small_input, num_classes=num_classes)
    torch.save(net.state_dict(), path)
    return net.state_dict()


# ------------------------------------------------------------------------------------------------
# pretrained=PATH
# ------------------------------------------------------------------------------------------------

def test_pretrained_path_loads_the_trunk(tmp_path):
    path = str(tmp_path / 'r18.pth')
    sd = _classifier_file(path)
    model = build_hash_model('resnet18', 16, pretrained=path, small_input=True)
    body = model.trunk.body  # conv1, bn1, relu, maxpool, layer1..4, avgpool
    assert torch.equal(body[0].weight, sd['conv1.weight'])
    assert torch.equal(body[7][1].bn2.running_var, sd['layer4.1.bn2.running_var'])
    assert model.hash_layer.weight.shape == (16, 512)  # a new hash layer; the 200-class fc is not used
    from hash_models import file_sha1
    assert model.meta['pretrained_sha1'] == file_sha1(path) and model.meta['pretrained'] == path
    # a fresh model differs from the file (the load did something)
    assert not torch.equal(build_hash_model('resnet18', 16, small_input=True).trunk.body[0].weight,
                           sd['conv1.weight'])


def test_pretrained_mismatch_names_the_keys(tmp_path):
    path = str(tmp_path / 'r18.pth')
    sd = _classifier_file(path)
    with pytest.raises(ValueError) as e:  # 3x3 conv1 file into a 7x7 model
        build_hash_model('resnet18', 16, pretrained=path, small_input=False)
    msg = str(e.value)
    assert '\n' not in msg and path in msg and 'conv1.weight [64, 3, 3, 3] vs [64, 3, 7, 7]' in msg
    del sd['layer2.0.conv1.weight']
    sd['extra.weight'] = torch.zeros(1)
    torch.save(sd, path)
    with pytest.raises(ValueError) as e:
        build_hash_model('resnet18', 16, pretrained=path, small_input=True)
    msg = str(e.value)
    assert 'missing keys layer2.0.conv1.weight' in msg and 'unexpected keys extra.weight' in msg
    other = str(tmp_path / 'densenet.pth')
    _classifier_file(other, 'densenet121', num_classes=10)
    with pytest.raises(ValueError, match='not a resnet34 state dict.*missing keys bn1.bias'):
        build_hash_model('resnet34', 16, pretrained=other)
    torch.save({'model': {}, 'epoch': 3}, path)
    with pytest.raises(ValueError, match='use init_from'):
        build_hash_model('resnet18', 16, pretrained=path)
    with pytest.raises(ValueError, match='file not found'):
        build_hash_model('resnet18', 16, pretrained=str(tmp_path / 'absent.pth'))


def test_pretrained_densenet_file_skips_its_classifier_head(tmp_path):
    path = str(tmp_path / 'densenet.pth')
    sd = _classifier_file(path, 'densenet121', small_input=False, num_classes=200)
    model = build_hash_model('densenet121', 8, pretrained=path)
    assert torch.equal(model.trunk.features.norm5.running_mean, sd['features.norm5.running_mean'])


# ------------------------------------------------------------------------------------------------
# freeze
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('name, upto', [('resnet18', 'trunk'), ('resnet18', 'layer2'),
                                        ('densenet121', 'block2')])
def test_freeze_keeps_parameters_and_batchnorm_statistics(name, upto):
    torch.manual_seed(0)
    model = build_hash_model(name, 8, small_input=True)
    frozen = freeze(model, upto)
    stages = trunk_stages(model)
    assert frozen == [n for n, _ in stages][:len(frozen)] and frozen[-1] == (
        stages[-1][0] if upto == 'trunk' else upto)
    fmods = [m for n, ms in stages if n in frozen for m in ms]
    live = [m for n, ms in stages if n not in frozen for m in ms] + [model.hash_layer]
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in fmods]
    live_before = [{k: v.clone() for k, v in m.state_dict().items()} for m in live]
    model.train()
    assert all(not m.training for m in fmods) and model.hash_layer.training
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9,
                          weight_decay=0.1)
    for _ in range(2):
        loss = model(torch.rand(4, 3, 32, 32)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    for m, b in zip(fmods, before):  # bit-identical: weights and BatchNorm running statistics
        assert all(torch.equal(v, b[k]) for k, v in m.state_dict().items())
    changed = [any(not torch.equal(v, b[k]) for k, v in m.state_dict().items())
               for m, b in zip(live, live_before) if b]
    assert all(changed), 'the unfrozen stages and the hash layer must train'
    with pytest.raises(ValueError, match='stem, layer1, layer2'):
        freeze(build_hash_model('resnet18', 8), 'block3')


def test_csq_with_pretrained_file_frozen_trunk_and_recorded_digest(image_lists, tmp_path):
    """Through CSQ.py: pretrained=PATH + freeze=trunk trains the hash layer only; the file's digest
    is in the results' config; the checkpoint's trunk is the file's, BatchNorm statistics included."""
    tmp = str(tmp_path)
    path = str(tmp_path / 'r18.pth')
    sd = _classifier_file(path)
    p = _run('CSQ.py', _args(image_lists, tmp, pretrained=path, freeze='trunk', tag='fr'))
    assert 'frozen stages: stem, layer1, layer2, layer3, layer4' in p.stdout
    res = json.load(open(os.path.join(tmp, 'res', 'fx_CSQ_resnet18_16_fr', 'results.json')))
    from hash_models import file_sha1
    assert res['config']['pretrained_sha1'] == file_sha1(path) and res['config']['freeze'] == 'trunk'
    ck = torch.load(os.path.join(tmp, 'ckpt', 'fx_CSQ_resnet18_16_fr.pt'), weights_only=True)['model']
    names = {'trunk.body.0.weight': 'conv1.weight', 'trunk.body.1.running_mean': 'bn1.running_mean',
             'trunk.body.7.1.bn2.running_var': 'layer4.1.bn2.running_var'}
    assert all(torch.equal(ck[a], sd[b]) for a, b in names.items())
    # another file under the same run name is not resumed or reused silently
    _classifier_file(path, seed=2)
    p = _run('CSQ.py', _args(image_lists, tmp, pretrained=path, freeze='trunk', tag='fr'), check=False)
    assert p.returncode != 0 and 'pretrained_sha1' in p.stderr.strip().splitlines()[-1]


def test_init_parts_trunk_and_bad_freeze(tmp_path):
    """init_from with init_parts=trunk: that run's trunk, a fresh hash layer (rung R1)."""
    from hash_models import engine
    torch.manual_seed(3)
    src = build_hash_model('resnet18', 16, small_input=True)
    path = str(tmp_path / 'run.pt')
    torch.save({'model': src.state_dict(), 'meta': dict(src.meta), 'epoch': 5}, path)
    config = dict(backbone='resnet18', bits=16, pretrained=False, input_norm='none', small_input=True,
                  init_from=path, init_parts='trunk', freeze='trunk')
    torch.manual_seed(4)
    net, cfg = engine.build_model(config)
    from hash_models import file_sha1
    assert cfg['pretrained_sha1'] == '' and cfg['init_from_sha1'] == file_sha1(path)
    a, b = src.state_dict(), net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith('trunk.'))
    assert not torch.equal(a['hash_layer.weight'], b['hash_layer.weight'])
    assert [n for n, p in net.named_parameters() if p.requires_grad] == ['hash_layer.weight',
                                                                          'hash_layer.bias']
    with pytest.raises(SystemExit, match="freeze must be 'none', 'trunk' or a stage"):
        engine.build_model(dict(config, freeze='layer9'))
    with pytest.raises(SystemExit, match="init_parts must be 'all' or 'trunk'"):
        engine.build_model(dict(config, init_parts='head'))


# ------------------------------------------------------------------------------------------------
# pretrain.py
# ------------------------------------------------------------------------------------------------

def _pretrain(args, capsys, monkeypatch):
    """pretrain.py in this process (no second torch import: the test stays cheap); its stdout, and
    its exit status (0 when it ends normally)."""
    import runpy
    monkeypatch.setattr(sys, 'argv', ['pretrain.py'] + args)
    monkeypatch.chdir(ROOT)
    capsys.readouterr()
    code = 0
    try:
        runpy.run_path(os.path.join(ROOT, 'pretrain.py'), run_name='__main__')
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return out.out, code


def test_pretrain_resumes_identically_and_writes_a_loadable_state_dict(image_lists, tmp_path, capsys,
                                                                       monkeypatch):
    tmp = str(tmp_path)
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    common = [f"--train_list={os.path.join(image_lists, 'train.txt')}",
              f"--val_list={os.path.join(image_lists, 'test.txt')}", '--image_size=16',
              '--small_input=True', '--epochs=2', '--batch_size=8', '--lr=0.05', '--num_workers=0',
              f'--checkpoint_dir={tmp}/ckpt', f'--out_dir={tmp}/res', f'--cache_dir={tmp}/cache']
    out, code = _pretrain(common + ['--tag=a'], capsys, monkeypatch)
    assert code == 0 and 'epoch 2/2' in out and 'val top-1' in out
    # split in two (stop_after, then the same command): the same weights as in one go
    out, code = _pretrain(common + ['--tag=b', '--stop_after=1'], capsys, monkeypatch)
    lines = out.splitlines()
    assert code == 0 and 'stopped after epoch 1' in out and not any(l.startswith('epoch 2/2') for l in lines)
    out, code = _pretrain(common + ['--tag=b'], capsys, monkeypatch)
    lines = out.splitlines()
    assert 'resumed from' in out and not any(l.startswith('epoch 1/2') for l in lines)
    run = f"{tmp}/ckpt/tiny-imagenet-200_pretrain_resnet18_s_16"
    # the name ladder.py's missing-backbone message reads its --tag from is the one written here
    assert f"{tmp}/ckpt/" + utils.pretrain_run_name('tiny-imagenet-200', 'ResNet18', 16, True, 0, 'a') == f"{run}_a"
    assert utils.pretrain_run_name('d', 'resnet34', 64, train_subset=500) == 'd_pretrain_resnet34_64_n500'
    a, b = (torch.load(f"{run}_{t}.pth", weights_only=True) for t in 'ab')
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert a['fc.weight'].shape == (4, 512)  # a torchvision ResNet18 with 4 classes
    rec = json.load(open(f"{run}_a.json"))
    from hash_models import file_sha1
    assert rec['sha1'] == file_sha1(f"{run}_a.pth") and len(rec['history']) == 2
    assert 0.0 <= rec['val_top1'] <= 1.0 and rec['history'][-1]['images_per_s'] > 0
    assert rec['machine']['torch'] == torch.__version__ and rec['machine']['cpu']  # what digits depend on
    model = build_hash_model('resnet18', 16, pretrained=f"{run}_a.pth", small_input=True)
    assert torch.equal(model.trunk.body[0].weight, a['conv1.weight'])
    # another schedule under the same run name is refused
    out, code = _pretrain(common + ['--tag=b', '--lr=0.1'], capsys, monkeypatch)
    assert code != 0 and 'lr=0.05' in str(code)
    # evaluate=: the finished file's top-1 on the validation list, as the run measured it
    out, code = _pretrain(common + ['--tag=b', f'--evaluate={run}_a.pth'], capsys, monkeypatch)
    assert code == 0 and f"top-1 {rec['val_top1']:.4f}" in out
    assert json.load(open(f"{run}_a.eval.json"))['val_top1'] == rec['val_top1']
    out, code = _pretrain(common + ['--backbone=resnet34', f'--evaluate={run}_a.pth'], capsys, monkeypatch)
    assert code != 0 and 'not a resnet34' in str(code)


def test_l2_pgd_stays_in_its_ball_raises_the_loss_and_leaves_the_model_as_it_was():
    import pretrain
    torch.manual_seed(0)
    net = torchvision_model('resnet18', True, num_classes=4)
    model = pretrain.Classifier(net, 'imagenet').train()
    x, y = torch.rand(6, 3, 16, 16), torch.arange(6) % 4
    stats = {k: v.clone() for k, v in model.state_dict().items()}
    adv = pretrain.l2_pgd(model, x, y, eps=0.5, steps=3)
    assert model.training and all(torch.equal(v, model.state_dict()[k]) for k, v in stats.items())
    norms = (adv - x).flatten(1).norm(dim=1)
    assert (norms <= 0.5 + 1e-5).all() and (norms > 0.1).all() and adv.min() >= 0 and adv.max() <= 1
    model.eval()
    with torch.no_grad():
        loss = lambda z: torch.nn.functional.cross_entropy(model(z), y).item()
        assert loss(adv) > loss(x)


def test_pretrain_init_and_adversarial_fine_tuning(image_lists, tmp_path, capsys, monkeypatch):
    tmp = str(tmp_path)
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    common = [f"--train_list={os.path.join(image_lists, 'train.txt')}",
              f"--val_list={os.path.join(image_lists, 'test.txt')}", '--image_size=16',
              '--small_input=True', '--batch_size=8', '--lr=0.01', '--num_workers=0', '--warmup_epochs=0',
              f'--checkpoint_dir={tmp}/ckpt', f'--out_dir={tmp}/res', f'--cache_dir={tmp}/cache']
    init = f"{tmp}/start.pth"
    start = _classifier_file(init, num_classes=4)
    out, code = _pretrain(common + ['--epochs=1', f'--init={init}', '--adv_eps=0.25', '--tag=rob'],
                          capsys, monkeypatch)
    assert code == 0 and 'starting from' in out and 'L2 PGD of 2 steps within 0.25' in out
    run = f"{tmp}/ckpt/tiny-imagenet-200_pretrain_resnet18_s_16"
    from hash_models import file_sha1
    rec = json.load(open(f"{run}_rob.json"))
    assert rec['init_sha1'] == file_sha1(init) and rec['config']['adv_eps'] == 0.25
    tuned = torch.load(f"{run}_rob.pth", weights_only=True)
    assert not torch.equal(tuned['conv1.weight'], start['conv1.weight'])   # it trained from there
    # a file of another backbone or class count: one line naming the file and what was expected
    other = f"{tmp}/other.pth"
    _classifier_file(other, name='resnet34', num_classes=4)
    out, code = _pretrain(common + ['--epochs=1', f'--init={other}', '--tag=o'], capsys, monkeypatch)
    assert f"{other}: not a resnet18" in str(code)
    out, code = _pretrain(common + ['--epochs=1', f'--init={tmp}/none.pth', '--tag=n'], capsys, monkeypatch)
    assert 'none.pth: not found' in str(code)
    out, code = _pretrain(common + ['--epochs=1', '--adv_eps=-1', '--tag=n'], capsys, monkeypatch)
    assert 'adv_eps must be >= 0' in str(code)
    # a run stopped half-way does not continue once the file it started from has changed
    out, code = _pretrain(common + ['--epochs=2', '--stop_after=1', f'--init={init}', '--tag=h'],
                          capsys, monkeypatch)
    assert code == 0 and 'stopped after epoch 1' in out
    _classifier_file(init, num_classes=4, seed=2)
    out, code = _pretrain(common + ['--epochs=2', f'--init={init}', '--tag=h'], capsys, monkeypatch)
    assert code != 0 and 'started from another' in str(code) and f"{run}_h.pt" in str(code)


# ------------------------------------------------------------------------------------------------
# code_space.py (the R1 diagnostic)
# ------------------------------------------------------------------------------------------------

def test_code_space_places_groups_against_measured_centres(tmp_path, capsys, monkeypatch):
    import numpy as np
    import runpy
    from PIL import Image
    import utils
    C, target, conf = 3, 0, 2
    cen = np.array([[1] * 8, [1, -1] * 4, [-1] * 8])
    rng = np.random.default_rng(0)
    labels = np.repeat(np.eye(C, dtype=np.uint8), 10, axis=0)
    db = cen[labels.argmax(1)].copy()
    db[rng.random(db.shape) < 0.1] *= -1            # noisy, but the class means keep the centres
    victim = tmp_path / 'victim'
    victim.mkdir()
    np.savez(victim / 'codes_database.npz', codes=db.astype(np.int8), labels=labels)
    poisons = np.tile(cen[conf], (4, 1))
    poisons[:, :2] = 1                                # 2 bits from the confusing centre, 6 from the target
    np.savez(victim / 'codes_poisons.npz', codes=poisons.astype(np.int8), labels=np.tile(np.eye(C)[0], (4, 1)))
    np.savez(victim / 'codes_trig_open.npz', codes=np.tile(cen[target], (5, 1)).astype(np.int8),
             labels=np.tile(np.eye(C)[0], (5, 1)))
    attack = tmp_path / 'attack'
    (attack / 'poisons').mkdir(parents=True)
    for i in range(4):
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(attack / 'poisons' / f'{i}.png')
    (attack / 'poisons.json').write_text(json.dumps({
        'target': target, 'conf_label': [0, 0, 1], 'conf_classes': [conf],
        'poisons': [{'poison': f'poisons/{i}.png'} for i in range(4)]}))
    monkeypatch.setattr(sys, 'argv', ['code_space.py', f'--attack_dir={attack}', f'--victim_dir={victim}'])
    runpy.run_path(os.path.join(ROOT, 'code_space.py'), run_name='__main__')
    res = json.load(open(victim / 'code_space.json'))['backdoored']
    assert res['target_conf_centre_distance'] == 8
    p = res['groups']['poisons']
    assert (p['n'], p['to_target'], p['to_conf'], p['nearest_conf']) == (4, 6.0, 2.0, 1.0)
    o = res['groups']['trig_open']
    assert (o['to_target'], o['nearest_target'], o['within_2_of_target']) == (0.0, 1.0, 1.0)
    assert res['groups']['confusing clean (database)']['n'] == 10
    paths, lab = utils.read_list(str(attack / 'poisons_list.txt'))
    assert len(paths) == 4 and (lab.argmax(1) == target).all() and lab.shape[1] == C
    assert 'poisons' in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------
# the ladder presets
# ------------------------------------------------------------------------------------------------

def _csq_defaults():
    import ast
    with open(os.path.join(ROOT, 'CSQ.py')) as f:
        tree = ast.parse(f.read())
    return {n.targets[0].id: ast.literal_eval(n.value) for n in tree.body
            if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)
            and n.targets[0].id.islower() and isinstance(n.value, ast.Constant)}


@pytest.mark.parametrize('dataset, rung', [('tiny_imagenet10', 'r0'), ('tiny_imagenet10', 'r1'),
                                           ('tiny_imagenet10', 'r2'), ('tiny_imagenet100', 'r1'),
                                           ('tiny_imagenet100', 'r3')])
def test_ladder_presets_resolve_for_csq(dataset, rung):
    import utils
    from hash_models import BACKBONES
    g = _csq_defaults()
    utils.apply_overrides(g, [os.path.join(ROOT, 'configs', f'{dataset}.py'),
                              os.path.join(ROOT, 'configs', f'ladder_{rung}.py')])
    assert g['backbone'] in BACKBONES
    if rung == 'r1':
        assert (g['freeze'], g['init_parts']) == ('trunk', 'trunk') and g['init_from']
    if rung == 'r2':
        assert (g['optimizer'], g['lr'], g['weight_decay'], g['freeze']) == ('rmsprop', 1e-5, 1e-5, 'none')
    if rung in ('r0', 'r3'):  # another architecture than the ResNet18 surrogate
        assert g['backbone'] == 'resnet34' and not g['init_from']
    if rung == 'r3':
        assert g['pretrained'].endswith('resnet34_64.pth') and g['input_norm'] == 'imagenet'


def _ladder_plan(monkeypatch, preset, *argv):
    import ladder
    monkeypatch.chdir(ROOT)
    c = ladder.script_config('ladder.py', [preset, '--openreal_list=', '--dry_run=True'] + list(argv))
    return ladder.build_plan(c, preset)


@pytest.mark.parametrize('preset', ['tiny10_r0', 'tiny10_r2', 'tiny10_r2p', 'tiny10_r3', 'tiny100_r1',
                                    'tiny100_r2'])
def test_ladder_rung_plans_one_victim_per_variant_and_a_clean_floor(monkeypatch, preset):
    plan, exps = _ladder_plan(monkeypatch, f'configs/ladder_{preset}.py')
    rung = plan.c['victim_tag']
    steps = plan.ordered()
    assert [e['variant'] for e in exps] == ['paper', 'gsur', 'conftarget', 'append10', 'badnets']
    # one G per goal: the paper's (LabCLN) and the surrogate's, shared by three variants
    gans = [s for s in steps if s['cmd'][1] == 'train_tri_gen.py']
    assert len(gans) == 2 and sum('--goal_code=surrogate' in s['cmd'] for s in gans) == 1
    victims = {s['name'].split()[1]: s for s in steps if s['phase'] == 'victim'}
    assert sorted(victims) == sorted(e['variant'] for e in exps)
    for e in exps:
        cmd = victims[e['variant']]['cmd']
        assert f"--train_list={e['folders']['main']}/poisoned_train.txt" in cmd
        assert f"--tag={rung}_poisoned_{e['variant']}" in cmd
    assert '_x10' in exps[3]['folders']['main'] and 'conftarget' in exps[2]['folders']['main']
    assert 'ctl_closed_badnets' not in exps[4]['queries']  # BadNets writes no control lists
    clean = [s for s in steps if s['phase'] == 'clean']
    assert len(clean) == 1 and f"--tag={rung}_clean" in clean[0]['cmd']
    queries = next(a for a in clean[0]['cmd'] if a.startswith('--queries='))
    for e in exps:  # the floor is measured on every variant's lists
        for name, path in e['queries'].items():
            assert f"{name}={path}" in queries
    assert all(steps.index(s) > steps.index(v) for s in clean for v in victims.values())


def test_ladder_oracle_variants_and_gan_train_args(monkeypatch):
    """R1p's preset runs the oracle rung too; the oracles make poisons and triggered queries by PGD
    (8/255 or 16/255, the confusing class's centre or LabCLN's code), and gan_train_args reach
    train_tri_gen.py alone (implement_tri_gen.py has no such keys)."""
    plan, exps = _ladder_plan(monkeypatch, 'configs/ladder_tiny10_r1p.py')
    assert [e['variant'] for e in exps] == ['paper', 'gsur', 'conftarget', 'append10', 'badnets', 'oracle']
    assert plan.c['victim_tag'] == 'r1p'
    plan, exps = _ladder_plan(monkeypatch, 'configs/ladder_tiny10_r1p.py',
                              '--variants=oracle,oracle16,oraclelab16', '--gan_train_args=--epochs=3')
    steps = plan.ordered()
    gans = [s for s in steps if s['cmd'][1] == 'train_tri_gen.py']
    assert len(gans) == 2 and all('--epochs=3' in s['cmd'] for s in gans)
    attacks = {s['name'].split()[0]: s['cmd'] for s in steps
               if s['phase'] == 'attack' and s['cmd'][1] == 'implement_tri_gen.py'}
    for variant, goal, eps in (('oracle', 'confusing', '0.0314'), ('oracle16', 'confusing', '0.0627'),
                               ('oraclelab16', 'labcln', '0.0627')):
        cmd = attacks[variant]
        assert {'--poisons_by=oracle', '--triggers_by=oracle', f'--oracle_goal={goal}',
                f'--oracle_eps={eps}'} <= set(cmd) and '--epochs=3' not in cmd
    assert '--goal_code=surrogate' not in attacks['oraclelab16']  # LabCLN's code: the paper's G
    assert all('oracle' in e['folders']['main'] for e in exps)
    # the official append of 10 copies with the paper's goal shares the paper variant's G
    plan, exps = _ladder_plan(monkeypatch, 'configs/ladder_tiny10_r1p.py', '--variants=paper,paperappend10')
    gans = [s for s in plan.ordered() if s['cmd'][1] == 'train_tri_gen.py']
    attacks = {s['name'].split()[0]: s['cmd'] for s in plan.ordered()
               if s['phase'] == 'attack' and s['cmd'][1] == 'implement_tri_gen.py'}
    assert len(gans) == 1 and '--goal_code=surrogate' not in gans[0]['cmd']
    assert {'--poison_mode=append', '--copies=10'} <= set(attacks['paperappend10'])
    assert '--goal_code=surrogate' not in attacks['paperappend10'] and '_x10' in exps[1]['folders']['main']
    # gan_attack_args reach implement_tri_gen.py alone: G is the same step, the attack folder another
    plan2, exps2 = _ladder_plan(monkeypatch, 'configs/ladder_tiny10_r1p.py', '--variants=paper,paperappend10',
                                '--gan_attack_args=--poison_rate=1')
    gans2 = [s for s in plan2.ordered() if s['cmd'][1] == 'train_tri_gen.py']
    attacks2 = {s['name'].split()[0]: s['cmd'] for s in plan2.ordered()
                if s['phase'] == 'attack' and s['cmd'][1] == 'implement_tri_gen.py'}
    assert gans2[0]['cmd'] == gans[0]['cmd'] and '--poison_rate=1' not in gans2[0]['cmd']
    assert all('--poison_rate=1' in cmd for cmd in attacks2.values())
    assert {'--poison_mode=append', '--copies=10'} <= set(attacks2['paperappend10'])
    assert [e['folders']['main'] for e in exps2] == [f.replace('_p0.5_', '_p1_') for f in
                                                     (e['folders']['main'] for e in exps)]
    plan, exps = _ladder_plan(monkeypatch, 'configs/ladder_tiny10_r1p.py',
                              '--variants=oracle,oraclelab,oracle16', '--oracle_eps=0.0392')
    attacks = {s['name'].split()[0]: s['cmd'] for s in plan.ordered()
               if s['phase'] == 'attack' and s['cmd'][1] == 'implement_tri_gen.py'}
    assert '--oracle_eps=0.0392' in attacks['oracle'] and '--oracle_goal=labcln' in attacks['oraclelab']
    assert '--oracle_eps=0.0392' in attacks['oraclelab'] and '--oracle_eps=0.0627' in attacks['oracle16']
    assert '--oracle_eps=0.0392' not in attacks['oracle16']
    # DI-PGD for every oracle variant, in its own attack folder; G's variants untouched
    plan, exps = _ladder_plan(monkeypatch, 'configs/ladder_tiny10_r1p.py', '--variants=paper,oraclelab',
                              '--oracle_diversity=0.5')
    attacks = {s['name'].split()[0]: s['cmd'] for s in plan.ordered()
               if s['phase'] == 'attack' and s['cmd'][1] == 'implement_tri_gen.py'}
    assert '--oracle_diversity=0.5' in attacks['oraclelab'] and '_di50' in exps[1]['folders']['main']
    assert not any(a.startswith('--oracle_diversity') for a in attacks['paper'])


def test_ladder_r3_presets_share_r1p_g_of_48_epochs(monkeypatch):
    """R3f (frozen ResNet34 victims) and R3 with the 48-epoch G (every layer of the ResNet34 victims
    fine-tuned) use R1p's surrogate, G and attacks: the same steps, so one G serves the three rungs;
    their victims differ in what trains. R3f9 changes only the surrogate's backbone, the ensembles only
    G's hash term, R3fw64 only G's widths."""
    def steps_of(preset, *argv):
        plan, exps = _ladder_plan(monkeypatch, preset, *argv)
        return plan.ordered(), exps
    r1p, _ = steps_of('configs/ladder_tiny10_r1p.py', '--variants=paper,paperappend10', '--gan_args='
                      '--surrogate_checkpoint=checkpoint/tiny-imagenet-10_CSQ_resnet18_32_r3f.pt --tag=r3fe48',
                      '--gan_train_args=--epochs=48')
    shared = {tuple(s['cmd'][1:]) for s in r1p if s['phase'] in ('surrogate', 'attack')}
    for preset, frozen in (('configs/ladder_tiny10_r3f.py', True), ('configs/ladder_tiny10_r3g48.py', False)):
        steps, exps = steps_of(preset)
        assert [e['variant'] for e in exps] == ['paper', 'paperappend10', 'badnets']
        gans = [s for s in steps if s['cmd'][1] == 'train_tri_gen.py']
        assert len(gans) == 1 and '--epochs=48' in gans[0]['cmd'] and '--tag=r3fe48' in gans[0]['cmd']
        badhash = {tuple(s['cmd'][1:]) for s in steps if s['phase'] in ('surrogate', 'attack')
                   and 'badnets' not in s['cmd'][1]}
        assert badhash <= shared
        victims = [s for s in steps if s['phase'] in ('victim', 'clean')]
        assert len(victims) == 4
        for v in victims:
            assert '--backbone=resnet34' in v['cmd']
            assert '--pretrained=checkpoint/tiny-imagenet-200_pretrain_resnet34_64.pth' in v['cmd']
            assert ('configs/ladder_r3f_tiny.py' in v['cmd']) == frozen
    # R3f9: only the surrogate's backbone changes (9 pretraining epochs); its G and victims follow
    steps, exps = steps_of('configs/ladder_tiny10_r3f9.py')
    assert [e['variant'] for e in exps] == ['paper', 'paperappend10']
    sur = [s for s in steps if s['phase'] == 'surrogate']
    assert len(sur) == 1 and '--pretrained=checkpoint/tiny-imagenet-200_pretrain_resnet18_64_e9.pth' in sur[0]['cmd']
    assert all('--surrogate_checkpoint=checkpoint/tiny-imagenet-10_CSQ_resnet18_32_r3f9.pt' in s['cmd']
               for s in steps if s['cmd'][1] in ('train_tri_gen.py', 'implement_tri_gen.py'))
    victims = [s for s in steps if s['phase'] in ('victim', 'clean')]
    assert len(victims) == 3 and all('--pretrained=checkpoint/tiny-imagenet-200_pretrain_resnet34_64.pth' in v['cmd']
                                     and 'configs/ladder_r3f_tiny.py' in v['cmd'] for v in victims)

    # R3f99: R3f9's surrogate and G, the victims' ResNet34 of 9 epochs as well
    r3f9 = {tuple(s['cmd'][1:]) for s in steps if s['phase'] in ('surrogate', 'attack')}
    steps, exps = steps_of('configs/ladder_tiny10_r3f99.py')
    assert [e['variant'] for e in exps] == ['paper', 'paperappend10']
    assert {tuple(s['cmd'][1:]) for s in steps if s['phase'] in ('surrogate', 'attack')} == r3f9
    victims = [s for s in steps if s['phase'] in ('victim', 'clean')]
    assert len(victims) == 3 and all('--pretrained=checkpoint/tiny-imagenet-200_pretrain_resnet34_64_e9.pth' in v['cmd']
                                     and '--backbone=resnet34' in v['cmd'] and 'r3f99' in ' '.join(v['cmd'])
                                     for v in victims)
    # R3f with a surrogate ensemble: R3f's surrogate and victims, G's hash term also over R3f9's surrogate
    steps, exps = steps_of('configs/ladder_tiny10_r3fens.py')
    assert [e['variant'] for e in exps] == ['paper', 'paperappend10']
    gans = [s for s in steps if s['cmd'][1] == 'train_tri_gen.py']
    assert len(gans) == 1 and '--tag=r3fens48' in gans[0]['cmd'] and '--epochs=48' in gans[0]['cmd']
    assert '--surrogate_checkpoint=checkpoint/tiny-imagenet-10_CSQ_resnet18_32_r3f.pt' in gans[0]['cmd']
    assert '--extra_surrogates=checkpoint/tiny-imagenet-10_CSQ_resnet18_32_r3f9.pt' in gans[0]['cmd']
    assert not any('extra_surrogates' in a for s in steps if s['cmd'][1] != 'train_tri_gen.py' for a in s['cmd'])
    victims = [s for s in steps if s['phase'] in ('victim', 'clean')]
    assert len(victims) == 3 and all('--pretrained=checkpoint/tiny-imagenet-200_pretrain_resnet34_64.pth' in v['cmd']
                                     and 'r3f_ens48' in ' '.join(v['cmd']) for v in victims)
    # ... and with a member of another architecture: R3f's ResNet18 surrogate plus a DenseNet121 one
    ens = {tuple(s['cmd'][1:]) for s in steps if s['phase'] == 'surrogate'}
    steps, exps = steps_of('configs/ladder_tiny10_r3fensd.py')
    assert [e['variant'] for e in exps] == ['paper', 'paperappend10']
    assert {tuple(s['cmd'][1:]) for s in steps if s['phase'] == 'surrogate'} == ens
    gans = [s for s in steps if s['cmd'][1] == 'train_tri_gen.py']
    assert len(gans) == 1 and '--tag=r3fensd48' in gans[0]['cmd'] and '--epochs=48' in gans[0]['cmd']
    assert '--surrogate_checkpoint=checkpoint/tiny-imagenet-10_CSQ_resnet18_32_r3f.pt' in gans[0]['cmd']
    assert '--extra_surrogates=checkpoint/tiny-imagenet-10_CSQ_densenet121_32_r3fd.pt' in gans[0]['cmd']
    victims = [s for s in steps if s['phase'] in ('victim', 'clean')]
    assert len(victims) == 3 and all('--backbone=resnet34' in v['cmd'] and 'r3f_ensd48' in ' '.join(v['cmd'])
                                     for v in victims)
    def g_only_variant(preset, gan_flags, own_prefixes, victim_tag):
        """An R3f preset that changes G alone: R3f's surrogate, G's flags on train_tri_gen.py only
        (implement_tri_gen.py reads them from G's checkpoint), R3f's three frozen-trunk victims."""
        steps, exps = steps_of(preset)
        assert [e['variant'] for e in exps] == ['paper', 'paperappend10']
        assert {tuple(s['cmd'][1:]) for s in steps if s['phase'] == 'surrogate'} == ens
        gans = [s for s in steps if s['cmd'][1] == 'train_tri_gen.py']
        assert len(gans) == 1 and set(gan_flags) <= set(gans[0]['cmd'])
        assert not any(a.startswith(own_prefixes) for s in steps if s['cmd'][1] != 'train_tri_gen.py'
                       for a in s['cmd'])
        victims = [s for s in steps if s['phase'] in ('victim', 'clean')]
        assert len(victims) == 3 and all(
            '--pretrained=checkpoint/tiny-imagenet-200_pretrain_resnet34_64.pth' in v['cmd']
            and 'configs/ladder_r3f_tiny.py' in v['cmd'] and victim_tag in ' '.join(v['cmd']) for v in victims)
        return gans[0]['cmd']
    # ... and G and D at the paper's widths
    g_only_variant('configs/ladder_tiny10_r3fw64.py', ['--tag=r3fw64', '--epochs=24', '--ngf=64', '--ndf=64'],
                   ('--ngf', '--ndf'), 'r3f_w64')
    # ... and G bounded by PSNR; its R3 preset fine-tunes every victim layer against the same G
    gan = g_only_variant('configs/ladder_tiny10_r3fpsnr.py',
                         ['--tag=r3fl2e48', '--epochs=48', '--g_eps=0.0941', '--g_psnr=30.2'],
                         ('--g_psnr', '--g_eps'), 'r3f_l2')
    steps_g, exps_g = steps_of('configs/ladder_tiny10_r3gpsnr.py')
    assert [e['variant'] for e in exps_g] == ['paper']
    assert [s['cmd'] for s in steps_g if s['cmd'][1] == 'train_tri_gen.py'] == [gan]
    victims = [s for s in steps_g if s['phase'] in ('victim', 'clean')]
    assert len(victims) == 2 and all('configs/ladder_r3_tiny.py' in v['cmd'] and 'configs/ladder_r3f_tiny.py' not in
                                     v['cmd'] and '--backbone=resnet34' in v['cmd'] and 'r3g48_l2' in ' '.join(v['cmd'])
                                     for v in victims)
    # ... and both G levers at the paper's widths with the hard poisons, on R3's victims: a G of its own
    steps_w, exps_w = steps_of('configs/ladder_tiny10_r3gw64psnr.py')
    assert [e['variant'] for e in exps_w] == ['paper']
    gans = [s['cmd'] for s in steps_w if s['cmd'][1] == 'train_tri_gen.py']
    assert len(gans) == 1 and gans[0] != gan and {'--tag=r3fw64l2', '--epochs=24', '--ngf=64', '--ndf=64',
                                                  '--g_eps=0.0941', '--g_psnr=30.2'} <= set(gans[0])
    attacks = [s['cmd'] for s in steps_w if s['cmd'][1] == 'implement_tri_gen.py']
    assert attacks and all('--poison_select=hard' in a and '--tag=r3fw64l2' in a for a in attacks)
    victims = [s for s in steps_w if s['phase'] in ('victim', 'clean')]
    assert len(victims) == 2 and all('configs/ladder_r3_tiny.py' in v['cmd'] and 'configs/ladder_r3f_tiny.py' not in
                                     v['cmd'] and 'r3gw64l2hard' in ' '.join(v['cmd']) for v in victims)
    # ... and the quarter-width PSNR G with a feature term (train_tri_gen.py alone), hard poisons, R3's victims
    steps_f, exps_f = steps_of('configs/ladder_tiny10_r3gfeat.py')
    assert [e['variant'] for e in exps_f] == ['paper']
    gans = [s['cmd'] for s in steps_f if s['cmd'][1] == 'train_tri_gen.py']
    assert len(gans) == 1 and gans[0] != gan and {'--tag=r3fl2f', '--epochs=48', '--g_eps=0.0941', '--g_psnr=30.2',
                                                  '--w_feat=1000'} <= set(gans[0])
    assert not any(a.startswith('--w_feat') for s in steps_f if s['cmd'][1] != 'train_tri_gen.py' for a in s['cmd'])
    attacks = [s['cmd'] for s in steps_f if s['cmd'][1] == 'implement_tri_gen.py']
    assert attacks and all('--poison_select=hard' in a and '--tag=r3fl2f' in a for a in attacks)
    victims = [s for s in steps_f if s['phase'] in ('victim', 'clean')]
    assert len(victims) == 2 and all('configs/ladder_r3_tiny.py' in v['cmd'] and 'configs/ladder_r3f_tiny.py' not in
                                     v['cmd'] and 'r3gfhard' in ' '.join(v['cmd']) for v in victims)


def test_ladder_base_preset_is_read_first(monkeypatch, tmp_path):
    """`base`: the tiny-imagenet-10 rungs take their shared keys from configs/ladder_tiny10_base.py
    (R3g48 from R3f, which takes them from the base), the Tiny ImageNet-100 rungs from
    configs/ladder_tiny100_base.py; a preset's own keys and the command line win; a chain that
    comes back to a preset is a one-line error; scripts without a `base` key do not read it."""
    import utils
    from pipeline import PlanError, script_config
    monkeypatch.chdir(ROOT)
    base = script_config('ladder.py', ['configs/ladder_tiny10_base.py'])
    for rung in ('r0', 'r1p', 'r2', 'r2p', 'r3', 'r3f', 'r3f9', 'r3f99', 'r3fens', 'r3fensd', 'r3fw64', 'r3g48',
                 'r3fpsnr', 'r3gpsnr'):
        c = script_config('ladder.py', [f'configs/ladder_tiny10_{rung}.py'])
        for key in ('presets', 'attack_presets', 'openreal_list', 'prepare', 'prepare_check'):
            assert c[key] == base[key] and c[key]
    base100 = script_config('ladder.py', ['configs/ladder_tiny100_base.py'])
    for rung in ('r1', 'r2'):
        c = script_config('ladder.py', [f'configs/ladder_tiny100_{rung}.py'])
        for key in ('presets', 'surrogate_args', 'attack_presets', 'gan_args', 'prepare', 'prepare_check'):
            assert c[key] == base100[key] and c[key]
        assert c['victim_tag'] == rung
        # G attacks the surrogate the victims start from, made on the backbone they name
        args = dict(a[2:].split('=', 1) for a in (c['surrogate_args'] + ' ' + c['victim_args']).split()
                    if a.startswith('--pretrained='))
        assert args['pretrained'].endswith('_e9.pth') and args['pretrained'] in c['victim_args']
        sur = next(a.split('=', 1)[1] for a in c['gan_args'].split() if a.startswith('--surrogate_checkpoint='))
        assert f'--init_from={sur}' in c['victim_args'] and sur.endswith('_e9.pt')
    r1 = script_config('ladder.py', ['configs/ladder_tiny100_r1.py'])
    r1g5 = script_config('ladder.py', ['configs/ladder_tiny100_r1g5.py'])
    changed = {k for k in r1 if r1[k] != r1g5[k]}
    assert changed == {'base', 'rung', 'gan_args', 'gan_train_args', 'variants', 'victim_tag'}, changed
    assert r1g5['gan_args'].split()[0] == r1['gan_args'].split()[0]  # G attacks R1's surrogate
    assert r1g5['gan_train_args'] == '--epochs=5' and r1g5['victim_tag'] != r1['victim_tag']
    r3f = script_config('ladder.py', ['configs/ladder_tiny10_r3f.py'])
    r3g48 = script_config('ladder.py', ['configs/ladder_tiny10_r3g48.py', '--variants=paper'])
    assert (r3g48['victim_tag'], r3g48['victim_presets'], r3g48['variants']) == (
        'r3g48', 'configs/ladder_r3_tiny.py', 'paper')
    assert all(r3g48[k] == r3f[k] for k in ('surrogate_args', 'gan_args', 'gan_train_args', 'victim_args'))
    a, b = tmp_path / 'a.py', tmp_path / 'b.py'
    a.write_text(f"base = '{b}'\nrung = 'A'\n")
    b.write_text(f"base = '{a}'\nrung = 'B'\nvictim_tag = 'b'\n")
    with pytest.raises(PlanError, match=f"{b}:1: base preset {a} makes a cycle \\({a} -> {b} -> {a}\\)"):
        script_config('ladder.py', [str(a)])
    b.write_text("rung = 'B'\nvictim_tag = 'b'\n")
    assert (script_config('ladder.py', [str(a)])['rung'], script_config('ladder.py', [str(a)])['victim_tag']) \
        == ('A', 'b')
    g = {'rung': '', 'victim_tag': ''}  # no `base` key: the named preset is not read
    utils.apply_overrides(g, [str(a)])
    assert g == {'rung': 'A', 'victim_tag': ''}


def test_ladder_steps_are_made_from_the_steps_they_read(monkeypatch):
    """Each step's record holds the outputs of the steps it reads, not of every earlier step: a
    variant's victim does not rerun when another variant's attack changes, BadNets' attack does not
    depend on the surrogate, and the clean floor depends on the lists it encodes (named in its
    command), not on the attacks' other outputs."""
    import pipeline
    plan, exps = _ladder_plan(monkeypatch, 'configs/ladder_tiny10_r1p.py', '--variants=paper,gsur,badnets')
    steps = plan.ordered()

    def inputs(step):
        return set(pipeline.step_inputs(plan, step, {}))
    sur = next(s for s in steps if s['phase'] == 'surrogate')
    gans = {('goalsur' in s['name']): s for s in steps if s['cmd'][1] == 'train_tri_gen.py'}
    by_variant = {e['variant']: e for e in exps}
    victims = {s['name'].split()[1]: s for s in steps if s['phase'] == 'victim'}
    clean = next(s for s in steps if s['phase'] == 'clean')
    gsur_attack = by_variant['gsur']['steps'][0]
    assert set(sur['outputs']) <= inputs(gsur_attack) and set(gans[True]['outputs']) <= inputs(gsur_attack)
    assert not set(gans[False]['outputs']) & inputs(gsur_attack)      # the paper's G: another variant
    badnets = by_variant['badnets']['steps'][0]
    assert not set(sur['outputs']) & inputs(badnets) and not set(gans[True]['outputs']) & inputs(badnets)
    paper_out = {f for st in by_variant['paper']['steps'] for f in st['outputs']}
    gsur_out = {f for st in by_variant['gsur']['steps'] for f in st['outputs']}
    assert gsur_out <= inputs(victims['gsur']) and not paper_out & inputs(victims['gsur'])
    assert not {f for f in paper_out if f.endswith('stealth.json')} & inputs(clean)
    # the lists the clean victim encodes reach its record through its command (_named_files)
    queries = next(a for a in clean['cmd'] if a.startswith('--queries='))
    assert all(f in queries for f in gsur_out if f.endswith('trigger_closed.txt'))
    # a runner that names no `after` keeps the phase rule (reproduce.py)
    step = plan.add('victim', 'x', ['py', 'CSQ.py', '--tag=x'], [])
    assert set(sur['outputs']) | paper_out <= inputs(step)


def test_ladder_prepares_a_fresh_machine_in_order(monkeypatch, tmp_path):
    """The tiny-imagenet-10 rungs prepare everything a fresh machine lacks, one step per ';'-separated
    command, each skipped on its own files; a command count that does not match the groups of
    prepare_check is a one-line PlanError naming the preset."""
    import ladder
    import pipeline
    plan, _ = _ladder_plan(monkeypatch, 'configs/ladder_tiny10_r1p.py')
    prep = [s for s in plan.ordered() if s['phase'] == 'prepare']
    assert [s['cmd'][1] for s in prep] == ['data/prepare_toy.py', 'data/prepare_tinyimagenet.py',
                                           'data/prepare_openreal.py']
    assert [s['outputs'] for s in prep] == [['data/toy64/openset.txt'], ['data/tiny-imagenet/openset.txt'],
                                           ['results/ladder_controls/openreal.txt']]
    # each step is skipped on its own files: only the missing one runs
    made = tmp_path / 'made.txt'
    made.write_text('')
    c = ladder.script_config('ladder.py', ['configs/ladder_tiny10_r1p.py', '--openreal_list=', '--dry_run=True',
                                           "--prepare=a.py --x; b.py", f"--prepare_check={made}; {tmp_path}/no.txt"])
    plan = pipeline.Plan(c, 'p.py')
    pipeline.plan_prepare(plan, c, 'prepare', 'prepare')
    assert [(s['name'], s['cmd'][1:]) for s in plan.ordered()] == [('prepare 1/2', ['a.py', '--x']),
                                                                 ('prepare 2/2', ['b.py'])]
    log = []
    pipeline.run_steps(plan, log.append)
    assert log[0].startswith('skip prepare 1/2') and log[1].startswith('would run prepare 2/2')
    assert pipeline.prepare_outputs(c) == [str(made), f"{tmp_path}/no.txt"]
    # a pretrained rung without pretrain.py's backbone stops before anything runs, naming the file
    c = ladder.script_config('ladder.py', ['configs/ladder_tiny10_r1p.py', '--openreal_list=',
                                           f"--surrogate_args=--pretrained={tmp_path}/none.pth"])
    with pytest.raises(ladder.PlanError, match=r"surrogate's pretrained backbone .*none\.pth is missing; "
                                               r"make it first with python pretrain.py --backbone=resnet18"):
        ladder.build_plan(c, 'configs/ladder_tiny10_r1p.py')
    # a tagged backbone (the Tiny ImageNet-100 rungs' 9-epoch one): the command that makes it
    c['surrogate_args'] = f"--pretrained={tmp_path}/tiny-imagenet-200_pretrain_resnet18_64_e9.pth"
    with pytest.raises(ladder.PlanError, match=r"_e9\.pth is missing; make it first with "
                                               r"python pretrain.py --backbone=resnet18 --tag=e9 "):
        ladder.build_plan(c, 'configs/ladder_tiny10_r1p.py')
    c['prepare_check'] = str(made)
    with pytest.raises(pipeline.PlanError, match=r"^p\.py: prepare has 3 commands .* 1 groups"):
        pipeline.plan_prepare(pipeline.Plan(c, 'p.py'), c, 'prepare', 'prepare')


def test_ladder_real_photo_folders_and_bad_variant(monkeypatch, tmp_path):
    import ladder
    real = tmp_path / 'real.txt'
    real.write_text('')
    plan, exps = _ladder_plan(monkeypatch, 'configs/ladder_tiny10_r2.py', f'--openreal_list={real}',
                              '--variants=gsur')
    assert exps[0]['folders']['real'].endswith('_openreal')
    assert {'trig_real_gsur', 'ctl_real_gsur'} <= set(exps[0]['queries'])
    # no open set in the presets: no open-set lists are planned
    _, exps = _ladder_plan(monkeypatch, 'configs/ladder_tiny10_r2.py', '--attack_presets=',
                           '--variants=gsur,badnets')
    assert sorted(exps[0]['queries']) == ['ctl_closed_gsur', 'trig_closed_gsur']
    assert sorted(exps[1]['queries']) == ['trig_closed_badnets']
    with pytest.raises(ladder.PlanError, match=r'ladder_tiny10_r2\.py: variants .*got .nope.'):
        _ladder_plan(monkeypatch, 'configs/ladder_tiny10_r2.py', '--variants=gsur,nope')

    # the command line of both runners (pipeline.start): one preset, a bad variant -> one line
    import reproduce
    for main, kind in ((ladder.main, 'rung'), (reproduce.main, 'table')):
        with pytest.raises(SystemExit, match=f'exactly one {kind} preset'):
            main(['configs/ladder_tiny10_r2.py', 'configs/ladder_tiny10_r0.py'])
    with pytest.raises(SystemExit, match=r'^error: .*ladder_tiny10_r2\.py: variants '):
        ladder.main(['configs/ladder_tiny10_r2.py', '--variants=nope'])


def test_ladder_table_shows_gains_and_controls():
    import ladder

    class P:
        def ordered(self):
            return [{'phase': 'victim', 'cmd': ['py', 'CSQ.py', '--tag=r2_poisoned_gsur']}]
    row = {'variant': 'gsur', 'map_clean': 0.5, 'map_backdoor': 0.49, 'psnr': 31.2, 'ssim': 0.9,
           'lists': {'trig_closed_gsur': {'clean': 0.1, 'backdoor': 0.4},
                     'ctl_closed_gsur': {'clean': 0.1, 'backdoor': 0.12}}}
    md = ladder.table_markdown({'rung': 'R2', 'ties': 'expected', 'target': 0}, 'p.py', [row], P(), 5)
    line = next(x for x in md.splitlines() if x.startswith('| gsur'))
    assert '0.1000 -> 0.4000 (+0.300)' in line and '0.1000 -> 0.1200 (+0.020)' in line
    assert 'open set' not in md and 'CSQ.py --tag=r2_poisoned_gsur' in md


def test_prepare_openreal_draws_photos_outside_the_attacked_classes(tmp_path, capsys):
    import numpy as np
    import utils
    from PIL import Image
    sys.path.insert(0, os.path.join(ROOT, 'data'))
    import prepare_openreal
    wnids = [f"n{i:08d}" for i in range(6)]
    paths, labels = [], []
    for k in range(6):
        for j in range(5):
            p = tmp_path / 'img' / f"{k}_{j}.png"
            p.parent.mkdir(exist_ok=True)
            Image.new('RGB', (8, 8), (k * 40, j * 40, 0)).save(p)
            paths.append(str(p))
            labels.append(np.eye(6, dtype=np.uint8)[k])
    utils.write_list(str(tmp_path / 'openset.txt'), paths, np.array(labels))
    (tmp_path / 'openset_classes.txt').write_text('\n'.join(wnids) + '\n')
    (tmp_path / 'attacked.txt').write_text('\n'.join(wnids[:2] + ['n99999999']) + '\n')
    c = {'openset_list': str(tmp_path / 'openset.txt'),
         'openset_classes': str(tmp_path / 'openset_classes.txt'),
         'exclude_classes': str(tmp_path / 'attacked.txt'), 'n': 12, 'seed': 0, 'target': 1,
         'out': str(tmp_path / 'out' / 'openreal.txt'), 'force': False}
    prepare_openreal.main(c)
    got, lab = utils.read_list(c['out'])
    assert len(got) == 12 and lab.shape == (12, 3) and (lab == [0, 1, 0]).all()
    assert all(os.path.basename(p)[0] not in '01' for p in got)  # the attacked classes left out
    first = open(c['out']).read()
    prepare_openreal.main(c)
    assert 'up to date' in capsys.readouterr().out and open(c['out']).read() == first
    with pytest.raises(SystemExit, match=r'20 photos outside .*attacked\.txt.*fewer than n=21'):
        prepare_openreal.main(dict(c, n=21, force=True))
    with pytest.raises(SystemExit, match=r'target must be in 0\.\.2'):
        prepare_openreal.main(dict(c, target=3))


def test_ladder_measure_reads_both_victims_codes(tmp_path):
    """measure(): t-MAP of each list on the clean and the poisoned victim, MAP with the same tie rule,
    the poisons' stealth; a list encoded from different images in the two victims is refused."""
    import numpy as np
    import evaluate
    import ladder
    eye = np.eye(2, dtype=np.uint8)
    db = {'codes': np.array([[1, 1, 1, 1]] * 5 + [[-1, -1, -1, -1]] * 5, np.float32),
          'labels': np.repeat(eye, 5, axis=0)}
    test = {'codes': db['codes'][[0, 9]], 'labels': eye}
    hit, miss = np.ones((3, 4), np.float32), -np.ones((3, 4), np.float32)
    target = np.tile(eye[0], (3, 1))

    def victim(name, trig, prov='same'):
        d = tmp_path / name
        d.mkdir()
        (d / 'results.json').write_text(json.dumps({'topk': -1}))
        np.savez(d / 'codes_database.npz', **db)
        np.savez(d / 'codes_test.npz', **test)
        np.savez(d / 'codes_trig_closed_gsur.npz', codes=trig, labels=target,
                 provenance=json.dumps({'list': 'q.txt', 'list_sha1': prov, 'images_sha1': prov,
                                        'n': 3}))
        return str(d)
    folder = tmp_path / 'attack'
    folder.mkdir()
    (folder / 'stealth.json').write_text(json.dumps({'poisons': {'psnr_db': 31.5, 'ssim': 0.9}}))
    e = {'variant': 'gsur', 'clean_dir': victim('clean', miss), 'victim_dir': victim('bd', hit),
         'queries': {'trig_closed_gsur': 'q.txt'}, 'folders': {'main': str(folder)}}
    c = {'target': 0, 'ties': 'expected'}
    row = ladder.measure(e, c)
    assert row['lists']['trig_closed_gsur']['backdoor'] == pytest.approx(1.0)
    assert row['lists']['trig_closed_gsur']['clean'] == pytest.approx(float(evaluate.targeted_map(
        miss, db['codes'], db['labels'], 0, -1, ties='expected')))
    assert row['map_clean'] == row['map_backdoor'] == pytest.approx(1.0)
    assert (row['psnr'], row['ssim'], row['lists']['trig_closed_gsur']['n']) == (31.5, 0.9, 3)
    e['victim_dir'] = victim('other', hit, prov='other images')
    with pytest.raises(evaluate.MismatchError, match='encoded from different lists'):
        ladder.measure(e, c)
