"""reproduce.py: the commands it chains, skipping finished steps, failing steps, the table writer."""
import json
import os
import re
import subprocess

import pytest

import pipeline
import reproduce

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _setup(tmp_path, table_lines, conf_mode="'2'"):
    """A script preset and a table preset in tmp_path whose outputs all live under tmp_path."""
    base = tmp_path / 'base.py'
    base.write_text(f"dataset = 'toy'\ndata_dir = '{tmp_path}/data'\nimage_size = 32\nresize_size = 0\n"
                    f"out_dir = '{tmp_path}/results'\ncheckpoint_dir = '{tmp_path}/ckpt'\n"
                    f"openset_list = '{tmp_path}/data/openset.txt'\nconf_mode = {conf_mode}\n"
                    f"conf_label = '2'\ntarget = 3\n")
    victim = tmp_path / 'victim.py'
    victim.write_text("backbone = 'resnet34'\n")
    cfgdir = tmp_path / 'configs'
    cfgdir.mkdir()
    preset = cfgdir / 'table5_fake.py'
    preset.write_text(f"presets = '{base}'\nvictim_presets = '{victim}'\n"
                      f"tables_dir = '{tmp_path}/tables'\nconfigs_dir = '{cfgdir}'\n" + table_lines)
    return str(preset)


TABLE5 = ("table = 5\nblock = 'fake'\ndemo_scale = True\nmethods = 'badhash'\npairs = 'CSQ-CSQ'\n"
          "surrogate_backbone = 'resnet18'\nsurrogate_bits = 32\nvictim_backbones = 'resnet34'\n"
          "bits_list = '32'\ntarget = 3\npaper_map_badhash = 0.846\npaper_tmap_badhash = 0.912\n"
          "paper_mse_badhash = 3.486\npaper_psnr_badhash = 42.708\npaper_ssim_badhash = 0.988\n")


def _plan(path, *overrides):
    c = reproduce.load_preset(path, overrides)
    return c, reproduce.build_plan(c, path)


def _arg(cmd, key):
    hits = [a.split('=', 1)[1] for a in cmd if a.startswith(f"--{key}=")]
    assert len(hits) == 1, (key, cmd)
    return hits[0]


def test_badhash_chain_order_and_names(tmp_path):
    c, plan = _plan(_setup(tmp_path, TABLE5))
    steps = plan.ordered()
    scripts = [s['cmd'][1] for s in steps]
    assert scripts == ['CSQ.py', 'train_tri_gen.py', 'implement_tri_gen.py', 'CSQ.py', 'CSQ.py',
                       'evaluate.py']
    surrogate, gan, implement, victim, clean, report = steps
    assert _arg(surrogate['cmd'], 'backbone') == 'resnet18' and _arg(surrogate['cmd'], 'bits') == '32'
    assert surrogate['outputs'][0] == f"{tmp_path}/results/toy_CSQ_resnet18_32/results.json"
    # the GAN finds the surrogate by name; a fixed confusing label keeps the preset's run name
    assert _arg(gan['cmd'], 'surrogate_backbone') == 'resnet18' and _arg(gan['cmd'], 'tag') == ''
    attack = f"{tmp_path}/results/toy_badhash_CSQ_resnet18_32_t3_p0.5_replace_conf2"
    assert f"{attack}/poisoned_train.txt" in implement['outputs']
    assert f"{attack}/trigger_open.txt" in implement['outputs']
    # the victim trains on the poisoned list; the clean victim sees the same triggered queries
    assert _arg(victim['cmd'], 'train_list') == f"{attack}/poisoned_train.txt"
    assert _arg(victim['cmd'], 'backbone') == 'resnet34'
    trig = _arg(victim['cmd'], 'queries')
    assert f"{attack}/trigger_closed.txt" in trig and f"{attack}/trigger_open.txt" in trig
    assert _arg(clean['cmd'], 'tag') == 'clean' and _arg(clean['cmd'], 'queries') == trig
    vdir = f"{tmp_path}/results/toy_CSQ_resnet34_32_poisoned_badhash_CSQ_resnet18_32_t3_p0.5_replace_conf2"
    assert _arg(report['cmd'], 'backdoor_dir') == vdir
    assert _arg(report['cmd'], 'clean_dir') == f"{tmp_path}/results/toy_CSQ_resnet34_32_clean"
    assert _arg(report['cmd'], 'target') == '3' and _arg(report['cmd'], 'topk') == '-1'
    assert _arg(report['cmd'], 'stealth') == f"{attack}/stealth.json"
    assert all(os.path.dirname(o) == vdir for o in victim['outputs'])


def test_sampled_confusing_labels_give_g_a_target_tag(tmp_path):
    _, plan = _plan(_setup(tmp_path, TABLE5, conf_mode="'sample'"))
    gan, implement = [s for s in plan.ordered() if s['cmd'][1].endswith('tri_gen.py')]
    assert _arg(gan['cmd'], 'tag') == 't3' and _arg(implement['cmd'], 'tag') == 't3'
    assert any('toy_badhash_CSQ_resnet18_32_t3_t3_p0.5' in o for o in implement['outputs'])


def test_another_target_than_the_presets_gets_its_own_gan(tmp_path):
    _, plan = _plan(_setup(tmp_path, TABLE5), '--target=4')
    gan = next(s for s in plan.ordered() if s['cmd'][1] == 'train_tri_gen.py')
    assert _arg(gan['cmd'], 'tag') == 't4' and _arg(gan['cmd'], 'target') == '4'


def test_table1_pairs_and_bits(tmp_path):
    lines = TABLE5.replace('table = 5', 'table = 1').replace("pairs = 'CSQ-CSQ'",
                                                              "pairs = 'CSQ-HashNet,HashNet-CSQ'")
    lines = lines.replace("bits_list = '32'", "bits_list = '16,32,64'") + "row = 'S1'\n"
    _, plan = _plan(_setup(tmp_path, lines))
    steps = plan.ordered()
    surrogates = [s for s in steps if s['name'].startswith('surrogate')]
    assert [s['cmd'][1] for s in surrogates] == ['HashNet.py', 'CSQ.py']  # B-methods, once each
    victims = [s for s in steps if s['name'].startswith('backdoored')]
    assert sorted((s['cmd'][1], _arg(s['cmd'], 'bits')) for s in victims) == sorted(
        (m, b) for m in ('CSQ.py', 'HashNet.py') for b in ('16', '32', '64'))
    for s in victims:  # CSQ victims get HashNet poisons and the other way round
        other = 'HashNet' if s['cmd'][1] == 'CSQ.py' else 'CSQ'
        assert f"badhash_{other}_resnet18_32" in _arg(s['cmd'], 'train_list')
    assert len([s for s in steps if s['name'].startswith('clean victim')]) == 6
    assert {cell['paper_key'] for cell in plan.cells} == {
        f"paper_{m}_{p}_{b}" for m in ('map', 'tmap') for p in ('csq_hashnet', 'hashnet_csq')
        for b in (16, 32, 64)}


def test_table4_trains_clean_models_only(tmp_path):
    lines = ("table = 4\nblock = 'fake'\nclean_only = True\npairs = 'HashNet'\n"
             "surrogate_backbone = 'vgg11'\nbits_list = '16,32,64'\n")
    _, plan = _plan(_setup(tmp_path, lines))
    steps = plan.ordered()
    assert [(s['cmd'][1], _arg(s['cmd'], 'bits')) for s in steps] == [
        ('HashNet.py', '16'), ('HashNet.py', '32'), ('HashNet.py', '64')]
    assert [cell['paper_key'] for cell in plan.cells] == ['paper_map_16', 'paper_map_32', 'paper_map_64']


def test_baselines_follow_the_interface(tmp_path):
    lines = TABLE5.replace("methods = 'badhash'", "methods = 'badnets,lcba,badhash'")
    _, plan = _plan(_setup(tmp_path, lines))
    by_script = {s['cmd'][1]: s for s in plan.ordered()}
    bad = by_script[os.path.join('baselines', 'badnets.py')]
    assert _arg(bad['cmd'], 'target') == '3'
    lcba = by_script[os.path.join('baselines', 'lcba.py')]
    assert _arg(lcba['cmd'], 'surrogate_backbone') == 'resnet18'
    if not os.path.isfile(os.path.join(ROOT, 'baselines', 'badnets.py')):  # the interface's defaults
        assert f"{tmp_path}/results/toy_badnets_t3_p0.05/stealth.json" in bad['outputs']
        assert f"{tmp_path}/results/toy_lcba_t3_p0.5/poisons.json" in lcba['outputs']
    clean = [s for s in plan.ordered() if s['name'].startswith('clean victim')]
    assert len(clean) == 1  # one clean victim with every method's triggered queries
    assert _arg(clean[0]['cmd'], 'queries').count('=') == 6
    assert len([s for s in plan.ordered() if s['cmd'][1] == 'evaluate.py']) == 3


def _touch(files):
    for f in files:
        os.makedirs(os.path.dirname(f), exist_ok=True)
        open(f, 'a').close()


def test_dry_run_prints_and_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(subprocess, 'call', lambda *a, **k: pytest.fail('ran a step'))
    c, plan = _plan(_setup(tmp_path, TABLE5), '--dry_run=True')
    log = []
    pipeline.run_steps(plan, log.append)
    assert len(log) == 6 and all(line.startswith('would run ') for line in log)
    assert 'train_tri_gen.py' in log[1]


def test_second_run_skips_every_step(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, 'call', lambda cmd, **k: calls.append(cmd) or 0)
    c, plan = _plan(_setup(tmp_path, TABLE5))
    with pytest.raises(SystemExit, match='finished but .*results.json is missing'):
        pipeline.run_steps(plan, lambda m: None)  # a step that writes nothing is caught
    assert len(calls) == 1
    calls.clear()
    real = [s['outputs'] for s in plan.ordered()]
    monkeypatch.setattr(subprocess, 'call',
                        lambda cmd, **k: calls.append(cmd) or _touch(real[len(calls) - 1]) or 0)
    pipeline.run_steps(plan, lambda m: None)
    assert len(calls) == 6  # nothing existed: every step ran
    calls.clear()
    log = []
    pipeline.run_steps(plan, log.append)
    assert calls == []
    assert len(log) == 6 and all(line.startswith('skip ') and ' exists' in line for line in log)
    # one missing output is enough to run that step again
    victim = plan.ordered()[3]
    os.remove(victim['outputs'][-1])
    monkeypatch.setattr(subprocess, 'call', lambda cmd, **k: calls.append(cmd) or _touch(
        victim['outputs']) or 0)
    pipeline.run_steps(plan, lambda m: None)
    assert calls == [victim['cmd']]


def test_failing_step_stops_with_command_and_exit_code(tmp_path, monkeypatch):
    _, plan = _plan(_setup(tmp_path, TABLE5))
    outs = {' '.join(s['cmd']): s['outputs'] for s in plan.ordered()}
    monkeypatch.setattr(subprocess, 'call', lambda cmd, **k: 3 if cmd[1] == 'train_tri_gen.py'
                        else _touch(outs[' '.join(cmd)]) or 0)
    with pytest.raises(SystemExit, match=r'train_tri_gen.*exit code 3.*train_tri_gen\.py'):
        pipeline.run_steps(plan, lambda m: None)


def test_missing_baseline_script_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(subprocess, 'call', lambda cmd, **k: 0)
    lines = TABLE5.replace("methods = 'badhash'", "methods = 'issba'")
    _, plan = _plan(_setup(tmp_path, lines))
    monkeypatch.setattr(reproduce, 'ROOT', str(tmp_path))  # a checkout without baselines/
    monkeypatch.setattr(pipeline, 'ROOT', str(tmp_path))
    with pytest.raises(reproduce.PlanError, match='baselines/issba.py.*--methods'):
        pipeline.run_steps(plan, lambda m: None)


def test_missing_data_without_prepare_command(tmp_path, monkeypatch):
    monkeypatch.setattr(subprocess, 'call', lambda cmd, **k: 0)
    _, plan = _plan(_setup(tmp_path, TABLE5 + f"prepare_check = '{tmp_path}/data/train.txt'\n"))
    with pytest.raises(reproduce.PlanError, match='data/train.txt is missing'):
        pipeline.run_steps(plan, lambda m: None)
    (tmp_path / 'b').mkdir()
    _, plan = _plan(_setup(tmp_path / 'b', TABLE5 + "prepare = 'data/prepare_toy.py --out_dir=x'\n"
                           f"prepare_check = '{tmp_path}/b/data/train.txt'\n"), )
    first = plan.ordered()[0]
    assert first['name'] == 'prepare' and first['cmd'][1:] == ['data/prepare_toy.py', '--out_dir=x']


def _write_report(plan, values):
    a = plan.attacks[0]
    split = a['splits']['trigger_open']
    rep = {'map_backdoor': values[0], f"tmap_{split}_backdoor": values[1], 'mse': values[2],
           'psnr': values[3], 'ssim': values[4], f"tmap_{split}_clean": 0.1, 'map_clean': 0.8}
    os.makedirs(os.path.dirname(a['report']), exist_ok=True)
    with open(a['report'], 'w') as f:
        json.dump({'report': rep}, f)


def test_table_puts_ours_next_to_the_papers(tmp_path):
    path = _setup(tmp_path, TABLE5)
    c, plan = _plan(path)
    out = reproduce.write_table(5, c['configs_dir'], c['tables_dir'])
    text = open(out).read()
    assert '| BadHash | - / 0.846 | - / 0.912 | - / 3.486 | - / 42.708 | - / 0.988 |' in text
    _write_report(plan, (0.8, 0.5, 20.0, 35.0, 0.95))
    text = open(reproduce.write_table(5, c['configs_dir'], c['tables_dir'])).read()
    assert ('| BadHash | 0.800 / 0.846 (-0.046) | 0.500 / 0.912 (-0.412) | 20.000 / 3.486 (+16.514) '
            '| 35.000 / 42.708 (-7.708) | 0.950 / 0.988 (-0.038) |') in text
    assert "the paper's ImageNet figure" in text  # demo scale is labelled
    assert '| row | MAP | t-MAP | MSE | PSNR | SSIM |' in text
    assert 'clean victim 0.100' in text  # the floor is printed below the table



def test_table_leaves_out_runs_made_with_another_presets_budget(tmp_path):
    """Two presets of a block can share run names (a GPU and a CPU budget): a cell shows a figure
    only when the victims behind it were trained with this preset's settings."""
    path = _setup(tmp_path, TABLE5)
    c, plan = _plan(path)
    _write_report(plan, (0.8, 0.5, 20.0, 35.0, 0.95))
    runs = plan.attacks[0]['runs']
    assert len(runs) == 2  # the backdoored victim and the clean victim
    for results, cfg in runs:  # as CSQ.py stores them (the plan's config)
        os.makedirs(os.path.dirname(results), exist_ok=True)
        with open(results, 'w') as f:
            json.dump({'config': dict(cfg, device='cuda', queries='other=x.txt')}, f)
    text = open(reproduce.write_table(5, c['configs_dir'], c['tables_dir'])).read()
    assert '| BadHash | 0.800 / 0.846 (-0.046) |' in text and 'not shown' not in text
    results, cfg = runs[1]
    with open(results, 'w') as f:  # the clean victim of another budget
        json.dump({'config': dict(cfg, epochs=cfg['epochs'] + 90)}, f)
    text = open(reproduce.write_table(5, c['configs_dir'], c['tables_dir'])).read()
    assert '| BadHash | - / 0.846 | - / 0.912 |' in text and 'clean victim 0.100' not in text
    note = next(x for x in text.splitlines() if 'not shown' in x)
    assert results in note and f"epochs={cfg['epochs'] + 90}" in note and path in note

def test_main_dry_run_on_the_toy_preset(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(subprocess, 'call', lambda *a, **k: pytest.fail('ran a step'))
    plan = reproduce.main(['configs/table5_toy.py', '--dry_run=True', '--methods=badhash'])
    out = capsys.readouterr().out
    assert len(plan.steps) == 7  # prepare, surrogate, GAN, poisons, victim, clean victim, report
    lines = [line for line in out.splitlines() if line.startswith(('skip ', 'would run '))]
    assert len(lines) == 7  # each step either exists already (skip) or would run
    for name in ('prepare', 'surrogate', 'train_tri_gen', 'implement_tri_gen', 'backdoored victim',
                 'clean victim', 'report'):
        assert sum(re.match(r'(skip|would run) (.*?): ', line).group(2).startswith(name)
                   for line in lines) == 1, name
    assert 'toy_badhash_CSQ_resnet18_32_t0_p0.5_replace_conf2' in out  # the demo's attack folder


def test_attack_report_row_reads_per_attack_split_names():
    import evaluate
    row = {'map_clean': 0.7, 'tmap_trig_badhash_x_open_backdoor': 0.25,
           'tmap_trig_badhash_x_closed_backdoor': 0.5}
    line = evaluate.markdown_row('r', row)
    assert line == '| r | 0.7000 |  |  | 0.5000 |  | 0.2500 |  |  |  |'
    row['tmap_trig_lcba_open_backdoor'] = 0.1  # two attacks in one row: ambiguous, left blank
    assert evaluate.markdown_row('r', row).split(' | ')[6] == ''
