"""The reuse rule (README "Reuse rule"): an output is reused only when the record of what it was
made from matches the inputs as they are now; a rewritten list or image is made again."""
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from conftest import ROOT
from script_runner import run_script

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
        return z['codes'], utils.read_provenance(z)


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
    assert 'but encoding codes_trig.npz (list file content differs)' in out
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
    assert 'but encoding codes_trig.npz (images differ)' in out
    _, rec2 = _npz(os.path.join(run_dir, 'codes_trig.npz'))
    assert rec2['images_sha1'] != rec['images_sha1']
    assert rec2['images_sha1'] == utils.list_record(q, utils.read_list(q)[0])['images_sha1']

    # 3. nothing changed: nothing is encoded, the results are reused
    res, out = _csq(data, tmp, capsys, queries=f"trig={q}")
    assert 'nothing to train' in out and 'encoding codes_' not in out and 'reusing' not in out

    # 4. the training list made again under the same path (a poisoned list with other poisons):
    # the finished checkpoint is not what this command would train; refused in one line
    train = os.path.join(data, 'train.txt')
    _repaint(os.path.join(data, open(train).readline().split()[0]), 30)
    with pytest.raises(SystemExit) as e:
        _csq(data, tmp, capsys, queries=f"trig={q}")
    ckpt = os.path.join(tmp, 'ckpt', 'fx_CSQ_resnet18_16.pt')
    assert str(e.value) == (f"error: {ckpt}: trained on {train} as it was before (images differ); "
                            f"set tag=... for a new run or delete the checkpoint")


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
    p = run_script(['evaluate.py', f"--clean_dir={tmp_path / 'clean'}",
                    f"--backdoor_dir={tmp_path / 'bd'}", '--target=1', '--topk=-1',
                    f"--out_dir={tmp_path}"], threads=None)
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


# ------------------------------------------------------------------------------------------------
# the other reuse paths: a changed input remakes the output, an unchanged one reuses it
# ------------------------------------------------------------------------------------------------

def test_image_cache_follows_image_content_and_list_bytes(image_lists, tmp_path, capsys,
                                                          monkeypatch):
    tf = utils.build_transform(16, 0, 'none')
    lst = os.path.join(image_lists, 'test.txt')
    cache = str(tmp_path / 'cache')
    utils.ImageList(lst, transform=tf, cache_dir=cache)
    capsys.readouterr()
    ds = utils.ImageList(lst, transform=tf, cache_dir=cache)
    assert 'cache: reusing' in capsys.readouterr().out
    _repaint(ds.paths[2], 250)  # same path and mtime, new content
    ds = utils.ImageList(lst, transform=tf, cache_dir=cache)
    assert 'is stale' in capsys.readouterr().out and (ds[2][0][:, :6, :6] * 255).round().eq(250).all()
    # the list rewritten within the same clock tick (two lines swapped): its bytes tell
    st = os.stat(lst)
    lines = open(lst).readlines()
    with open(lst, 'w') as f:
        f.write(''.join([lines[1], lines[0]] + lines[2:]))
    os.utime(lst, ns=(st.st_atime_ns, st.st_mtime_ns))
    utils.ImageList(lst, transform=tf, cache_dir=cache)
    assert 'is stale' in capsys.readouterr().out
    # a list too large to read every image at each start: path, size and mtime_ns stand for them
    monkeypatch.setattr(utils, 'CONTENT_HASH_MAX_BYTES', 0)
    ds = utils.ImageList(lst, transform=tf, cache_dir=cache)
    assert ds.record()['images_by'] == 'stat' and 'is stale' in capsys.readouterr().out
    utils.ImageList(lst, transform=tf, cache_dir=cache)
    assert 'cache: reusing' in capsys.readouterr().out
    st = os.stat(ds.paths[0])
    os.utime(ds.paths[0], ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # one nanosecond later
    utils.ImageList(lst, transform=tf, cache_dir=cache)
    assert 'is stale' in capsys.readouterr().out


def test_baseline_parts_follow_their_source_lists(image_lists, tmp_path, capsys):
    """baselines/common.py produce() (AttackParts, shared with implement_tri_gen.py): a part is
    remade when its source list or one of its images changed under the same path."""
    from baselines import badnets
    data = image_lists
    openset = os.path.join(data, 'open.txt')
    shutil.copyfile(os.path.join(data, 'database.txt'), openset)
    g = dict(vars(badnets))
    c = utils.configure(g, [f"--{k}={v}" for k, v in dict(
        data_dir=data, dataset='fx', image_size=16, resize_size=0, num_workers=0, target=1,
        poison_rate=0.1, openset_list=openset, n_openset=4, out_dir=str(tmp_path / 'res')).items()],
        show=False)
    out = badnets.main(c)
    capsys.readouterr()
    badnets.main(c)  # nothing changed: every part reused
    assert capsys.readouterr().out.count('skipped') == 3
    # the open-set list rewritten under the same path (same length, other images)
    lines = open(openset).readlines()
    with open(openset, 'w') as f:
        f.write(''.join(lines[::-1]))
    sources = json.load(open(os.path.join(out, 'stealth.json')))['trigger_open']['sources']
    badnets.main(c)
    text = capsys.readouterr().out
    assert json.load(open(os.path.join(out, 'stealth.json')))['trigger_open']['sources'] != sources
    assert text.count('skipped') == 2 and 'making trigger_open again: its source list file ' \
                                              'content differs' in text
    idx = json.load(open(os.path.join(out, 'attack_state.json')))['trigger_open']['indices']
    new_paths = utils.read_list(openset)[0]
    assert json.load(open(os.path.join(out, 'stealth.json')))['trigger_open']['sources'] == [
        new_paths[i] for i in idx]  # the images of the new list
    # one training image of a poison with new content: the poisons are remade
    info = json.load(open(os.path.join(out, 'poisons.json')))
    _repaint(info['poisons'][0]['source'], 240)
    badnets.main(c)
    text = capsys.readouterr().out
    assert 'making poisons again: its train images differ' in text and text.count('skipped') == 1
    from PIL import Image
    with Image.open(os.path.join(out, info['poisons'][0]['poison'])) as im:
        assert (np.asarray(im)[:6, :6] == 240).all()  # the poison of the new image
    # a poison PNG deleted: remade
    os.remove(os.path.join(out, info['poisons'][0]['poison']))
    badnets.main(c)
    assert 'making poisons again: some of its files are missing' in capsys.readouterr().out


def test_labcln_cache_follows_its_label_pool(tmp_path, capsys):
    """train_tri_gen.py's LabCLN file is named by the digest of its config and label pool, which it
    also records: a new pool trains a new one, the same pool reuses it, a mismatch is refused."""
    import torch
    import train_tri_gen
    c = dict(vars(train_tri_gen))
    c = utils.configure(c, ['--dataset=fx', f"--checkpoint_dir={tmp_path}", '--surrogate_bits=16',
                            '--labcln_steps=4', '--labcln_batch=4', '--labcln_hidden=32',
                            '--labcln_feat=16'], show=False)
    pool = torch.eye(4)
    _, info = train_tri_gen.get_labcln(c, pool, 'cpu')
    assert 'LabCLN: training' in capsys.readouterr().out
    _, again = train_tri_gen.get_labcln(c, pool, 'cpu')
    assert 'LabCLN: reusing' in capsys.readouterr().out and again['path'] == info['path']
    _, other = train_tri_gen.get_labcln(c, torch.eye(4)[:3], 'cpu')  # another label pool
    assert 'LabCLN: training' in capsys.readouterr().out and other['path'] != info['path']
    shutil.copyfile(other['path'], info['path'])  # a file that is not what its name says
    with pytest.raises(SystemExit) as e:
        train_tri_gen.get_labcln(c, pool, 'cpu')
    assert str(e.value) == f"error: {info['path']}: LabCLN config differs from this run's; delete the file"


def test_runner_skips_a_step_only_when_its_inputs_are_unchanged(tmp_path, monkeypatch):
    """reproduce.py: a step is skipped when its outputs exist and what it was made from (the lists
    and images it reads, the earlier steps' outputs it depends on) is as recorded; else it runs."""
    import itertools
    import pipeline
    import reproduce
    from conftest import make_image_lists
    from test_reproduce import TABLE5, _plan, _setup
    data = make_image_lists(str(tmp_path / 'data'), size=8)
    shutil.copyfile(os.path.join(data, 'database.txt'), os.path.join(data, 'openset.txt'))
    c, plan = _plan(_setup(tmp_path, TABLE5))
    steps = {' '.join(s['cmd']): s for s in plan.ordered()}
    count, calls = itertools.count(), []

    def fake(cmd, **kw):  # every run writes new output content, as a real rerun that remade them
        calls.append(steps[' '.join(cmd)]['name'].split()[0])
        for f in steps[' '.join(cmd)]['outputs']:
            os.makedirs(os.path.dirname(f), exist_ok=True)
            with open(f, 'w') as fh:
                fh.write(str(next(count)))
        return 0
    monkeypatch.setattr(subprocess, 'call', fake)
    pipeline.run_steps(plan, lambda m: None)
    assert len(calls) == 6
    calls.clear()
    log = []
    pipeline.run_steps(plan, log.append)  # nothing changed: nothing runs
    assert calls == [] and all(line.endswith('made from the same inputs') for line in log)
    # the open-set list rewritten under the same path and mtime: the attack and what follows run
    openset = os.path.join(data, 'openset.txt')
    st = os.stat(openset)
    lines = open(openset).readlines()
    with open(openset, 'w') as f:
        f.write(''.join(lines[::-1]))
    os.utime(openset, ns=(st.st_atime_ns, st.st_mtime_ns))
    log.clear()
    pipeline.run_steps(plan, log.append)
    assert calls == ['implement_tri_gen', 'backdoored', 'clean', 'report']
    assert f"run implement_tri_gen toy_badhash_CSQ_resnet18_32_t3_p0.5_replace_conf2 ({openset} " \
           f"changed since it ran)" in '\n'.join(log)
    calls.clear()
    # one training image with new content (same path and mtime): every step runs again
    _repaint(os.path.join(data, open(os.path.join(data, 'train.txt')).readline().split()[0]))
    pipeline.run_steps(plan, lambda m: None)
    assert calls == ['surrogate', 'train_tri_gen', 'implement_tri_gen', 'backdoored', 'clean',
                     'report']
    calls.clear()
    # an output edited since its step ran: that step runs again, and the steps that read it
    report = plan.ordered()[-1]['outputs'][0]
    with open(report, 'w') as f:
        f.write('edited')
    pipeline.run_steps(plan, lambda m: None)
    assert calls == ['report']


def test_issba_encoder_follows_its_training_list(image_lists, tmp_path, capsys):
    """baselines/issba.py's encoder checkpoint records its training list: reused while the list
    and its images are unchanged, refused in one line once one image changed under its path."""
    from baselines import issba
    keys = dict(data_dir=image_lists, dataset='fx', image_size=16, resize_size=0, num_workers=0,
                checkpoint_dir=str(tmp_path / 'ck'), issba_steps=2, issba_batch=4,
                issba_secret_bits=4, issba_width=4, issba_depth=1, issba_lpips='none',
                issba_save_every=1)
    c = utils.configure(dict(vars(issba)), [f"--{k}={v}" for k, v in keys.items()], show=False)
    paths = utils.read_list(os.path.join(image_lists, 'train.txt'))[0]
    _, _, first = issba.train_or_load(c, paths, 'cpu')
    capsys.readouterr()
    _, _, again = issba.train_or_load(c, paths, 'cpu')
    assert 'ISSBA encoder: reusing' in capsys.readouterr().out and again == first
    _repaint(paths[5], 20)
    with pytest.raises(SystemExit) as e:
        issba.train_or_load(c, paths, 'cpu')
    assert str(e.value) == (f"error: {first['checkpoint']}: trained on "
                            f"{os.path.join(image_lists, 'train.txt')} as it was before (images "
                            f"differ); delete it to retrain")


def test_query_and_database_codes_of_different_checkpoints_are_refused(image_lists, tmp_path):
    lists = {s: os.path.join(image_lists, f"{s}.txt") for s in ('database', 'test')}
    for run, stamp in (('a', '1:1'), ('b', '1:2')):
        os.makedirs(tmp_path / run)
        for split, list_file in lists.items():
            paths, labels = utils.read_list(list_file)
            engine.save_codes(str(tmp_path / run / f"codes_{split}.npz"),
                              np.ones((len(paths), 8), np.int8), labels,
                              dict(utils.list_record(list_file, paths), checkpoint='m.pt',
                                   checkpoint_stamp=stamp))
    ok = run_script(['evaluate.py', f"--query={tmp_path / 'a' / 'codes_test.npz'}",
                     f"--database={tmp_path / 'a' / 'codes_database.npz'}", '--topk=-1'], threads=None)
    assert ok.returncode == 0 and 'MAP@-1 = ' in ok.stdout
    p = run_script(['evaluate.py', f"--query={tmp_path / 'a' / 'codes_test.npz'}",
                    f"--database={tmp_path / 'b' / 'codes_database.npz'}"], threads=None)
    assert p.returncode != 0 and p.stderr == (
        f"error: {tmp_path / 'a' / 'codes_test.npz'} and {tmp_path / 'b' / 'codes_database.npz'} "
        f"were encoded by different checkpoints (m.pt 1:1 vs m.pt 1:2)\n")


def test_figures_leave_out_panels_of_mismatched_codes(tmp_path, capsys):
    """figures.py: the clean and backdoored t-SNE panels must show the same triggered queries, and a
    run's query and database codes must come from one checkpoint; otherwise that figure is left out
    with a line naming both files."""
    pytest.importorskip('sklearn')
    from types import SimpleNamespace
    import figures
    from test_figures import _attack_folder, _synthetic_run
    victim = _synthetic_run(str(tmp_path / 'victim'))
    clean = _synthetic_run(str(tmp_path / 'clean'), seed=1)
    trig = os.path.join(clean, 'codes_trig_x_closed.npz')
    with np.load(trig) as z:  # the clean run's closed-set queries: 15 of another list
        codes, labels = z['codes'][:15], z['labels'][:15]
    np.savez_compressed(trig, codes=codes, labels=labels)
    with np.load(os.path.join(victim, 'codes_trig_x_open.npz')) as z:  # another model's codes
        engine.save_codes(os.path.join(victim, 'codes_trig_x_open.npz'), z['codes'], z['labels'],
                          {'checkpoint': 'other.pt', 'checkpoint_stamp': '1:1'})
    with np.load(os.path.join(victim, 'codes_database.npz')) as z:
        engine.save_codes(os.path.join(victim, 'codes_database.npz'), z['codes'], z['labels'],
                          {'checkpoint': 'victim.pt', 'checkpoint_stamp': '1:2'})
    attack = {'method': 'badhash', 'folder': _attack_folder(str(tmp_path / 'attack')),
              'splits': {'trigger_closed': 'trig_x_closed', 'trigger_open': 'trig_x_open'},
              'geometry': (12, 0), 'victim_dir': victim, 'clean_dir': clean, 'topk': -1,
              'tm': 'CSQ', 'vb': 'resnet34', 'bits': '16'}
    plan = SimpleNamespace(attacks=[attack], c={'target': 1})
    paths = figures.plan_figures(plan, str(tmp_path / 'tables'), 'fake', {'tsne_points': 20})
    out = capsys.readouterr().out
    assert [os.path.basename(p) for p in paths] == ['fake_figure5.png']
    assert (f"figure 4: BadHash left out: {trig} (15 rows) and "
            f"{os.path.join(victim, 'codes_trig_x_closed.npz')} (20 rows) were encoded from "
            f"different lists") in out
    assert (f"figure 6: BadHash left out: {os.path.join(victim, 'codes_trig_x_open.npz')} and "
            f"{os.path.join(victim, 'codes_database.npz')} were encoded by different checkpoints") in out


def test_runner_redraws_figures_only_when_their_inputs_changed(tmp_path, monkeypatch):
    """reproduce.py's Figures 4-6: drawn again when a step's output changed since they were drawn
    (or a PNG is missing), skipped otherwise."""
    import reproduce
    from test_reproduce import TABLE5, _plan, _setup
    path = _setup(tmp_path, TABLE5)
    c, plan = _plan(path)
    for step in plan.ordered():  # every step finished
        for f in step['outputs']:
            os.makedirs(os.path.dirname(f), exist_ok=True)
            with open(f, 'w') as fh:
                fh.write(step['name'])
    drawn = []

    def fake_figures(cmd, **kw):  # figures.py's subprocess: writes the three PNGs
        drawn.append(cmd)
        for k in (4, 5, 6):
            with open(os.path.join(c['tables_dir'], f"table5_fake_figure{k}.png"), 'w') as fh:
                fh.write(str(len(drawn)))
        return subprocess.CompletedProcess(cmd, 0, 'figure: ok\n', '')
    monkeypatch.setattr(subprocess, 'run', fake_figures)
    os.makedirs(c['tables_dir'], exist_ok=True)
    log = []
    reproduce.draw_figures(plan, path, [], log.append)
    assert len(drawn) == 1 and log[0] == 'figures (not drawn yet)'
    reproduce.draw_figures(plan, path, [], log.append)  # nothing changed: skipped
    assert len(drawn) == 1 and log[-1].startswith('skip figures: ')
    report = plan.ordered()[-1]['outputs'][0]
    with open(report, 'w') as fh:  # a report written again with other figures
        fh.write('{"report": {}}')
    reproduce.draw_figures(plan, path, [], log.append)
    assert len(drawn) == 2 and log[-2] == f"figures ({report} changed since it ran)"
    os.remove(os.path.join(c['tables_dir'], 'table5_fake_figure5.png'))
    reproduce.draw_figures(plan, path, [], log.append)
    assert len(drawn) == 3
