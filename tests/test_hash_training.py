"""CSQ.py / HashNet.py end to end on a tiny on-disk dataset: training, saved codes, resume, errors."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from conftest import ROOT
from script_runner import run_script

import evaluate
from hash_models import BACKBONES, build_hash_model
from hash_models.backbones import PretrainedWeightsMissing


def _args(data, tmp, **kw):
    base = dict(data_dir=data, dataset='fx', epochs=2, eval_every=0, image_size=16, bits=16,
                checkpoint_dir=os.path.join(tmp, 'ckpt'), out_dir=os.path.join(tmp, 'res'))
    base.update(kw)
    return ['configs/demo.py'] + [f"--{k}={v}" for k, v in base.items()]


def _run(script, args, check=True):
    p = run_script([script] + args, threads=None)
    if check and p.returncode != 0:
        raise AssertionError(p.stdout + p.stderr)
    return p


@pytest.mark.parametrize('script, method', [('CSQ.py', 'CSQ'), ('HashNet.py', 'HashNet')])
def test_train_evaluate_and_saved_codes(image_lists, tmp_path, script, method):
    tmp = str(tmp_path)
    queries = os.path.join(image_lists, 'test.txt')
    p = _run(script, _args(image_lists, tmp, queries=f"again={queries}"))
    run = f"fx_{method}_resnet18_16"
    res = json.load(open(os.path.join(tmp, 'res', run, 'results.json')))
    assert res['epoch'] == 2 and res['config']['bits'] == 16 and res['topk'] == -1
    assert res['machine']['threads'] >= 1 and res['machine']['cpu']  # the CPU the digits came from
    assert f"final MAP@all [test] = {res['final']['test']:.4f}" in p.stdout
    assert res['final']['again'] == res['final']['test']  # same list evaluated twice
    q = np.load(os.path.join(tmp, 'res', run, 'codes_test.npz'))
    db = np.load(os.path.join(tmp, 'res', run, 'codes_database.npz'))
    assert q['codes'].shape == (12, 16) and db['codes'].shape == (40, 16)
    assert set(np.unique(q['codes'])) <= {-1, 1} and q['labels'].shape == (12, 4)
    again = evaluate.mean_average_precision(q['codes'], db['codes'], q['labels'], db['labels'], -1)
    assert again == pytest.approx(res['final']['test'], abs=1e-12)
    ckpt = torch.load(os.path.join(tmp, 'ckpt', run + '.pt'), weights_only=True)
    assert ckpt['epoch'] == 2 and ckpt['meta']['bits'] == 16 and ckpt['config']['seed'] == 0
    # the same command again reuses the finished run
    p = _run(script, _args(image_lists, tmp, queries=f"again={queries}"))
    assert 'nothing to train' in p.stdout and 'epoch 1/2' not in p.stdout


def _results(out):
    with open(os.path.join(out, 'results.json')) as f:
        return json.load(f)


def _repaint(img, value=255):
    """New content for an image under the same path and mtime (a rewrite within the same clock
    tick): only a content digest tells it from the old one."""
    from PIL import Image
    st = os.stat(img)
    with Image.open(img) as im:
        a = np.asarray(im.convert('RGB')).copy()
    a[:4, :4] = value
    Image.fromarray(a).save(img)
    os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_new_queries_on_a_finished_run_reuse_the_database_codes(image_lists, tmp_path):
    tmp = str(tmp_path)
    test = os.path.join(image_lists, 'test.txt')
    _run('CSQ.py', _args(image_lists, tmp))
    out = os.path.join(tmp, 'res', 'fx_CSQ_resnet18_16')
    db0 = np.load(os.path.join(out, 'codes_database.npz'))['codes']
    first = _results(out)['final']['test']
    # a clean model evaluated on new (here: triggered-like) queries: only those are encoded
    p = _run('CSQ.py', _args(image_lists, tmp, queries=f"trig={test}"))
    assert 'reusing codes_database.npz' in p.stdout and 'reusing codes_test.npz' in p.stdout
    assert 'reusing codes_trig.npz' not in p.stdout
    res = _results(out)
    assert res['final']['trig'] == pytest.approx(first, abs=1e-12)  # same list, same codes
    assert res['final']['test'] == first
    assert np.array_equal(np.load(os.path.join(out, 'codes_database.npz'))['codes'], db0)
    # an image of the database changed on disk (same path, new content): its codes are encoded
    # again (the last database image, which is not a training image: a changed training image
    # would make the checkpoint itself stale, README "Reuse rule")
    with open(os.path.join(image_lists, 'database.txt')) as f:
        img = os.path.join(image_lists, f.readlines()[-1].split()[0])
    with open(os.path.join(image_lists, 'train.txt')) as f:
        assert os.path.relpath(img, image_lists) not in f.read()
    _repaint(img)
    p = _run('CSQ.py', _args(image_lists, tmp, queries=f"again={test}"))
    assert 'reusing codes_database.npz' not in p.stdout and 'reusing codes_test.npz' in p.stdout
    # MAP@K instead of MAP@all: the codes stay, the figures are computed again
    p = _run('CSQ.py', _args(image_lists, tmp, queries=f"again={test}", topk=3))
    assert 'reusing codes_database.npz' in p.stdout
    assert _results(out)['topk'] == 3
    # a checkpoint written since (another training of the same name): nothing is reused
    ckpt = os.path.join(tmp, 'ckpt', 'fx_CSQ_resnet18_16.pt')
    st = os.stat(ckpt)
    os.utime(ckpt, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    p = _run('CSQ.py', _args(image_lists, tmp, queries=f"trig={test}"))
    assert 'reusing' not in p.stdout


def test_killed_run_resumes_and_matches_uninterrupted(image_lists, tmp_path):
    a = _args(image_lists, str(tmp_path / 'a'), epochs=6, eval_every=0)
    ckpt = os.path.join(str(tmp_path / 'a'), 'ckpt', 'fx_CSQ_resnet18_16.pt')
    proc = subprocess.Popen([sys.executable, 'CSQ.py'] + a, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(ckpt) and torch.load(ckpt, weights_only=True)['epoch'] >= 2:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = torch.load(ckpt, weights_only=True)['epoch']
    assert 2 <= done < 6, 'the run was not interrupted mid-way'
    p = _run('CSQ.py', a)
    assert f"resumed from {ckpt} at epoch {done}/6" in p.stdout
    trained = [line.split()[1] for line in p.stdout.splitlines() if line.startswith('epoch ')]
    assert trained == [f"{e}/6" for e in range(done + 1, 7)]  # only the missing epochs
    b = _args(image_lists, str(tmp_path / 'b'), epochs=6, eval_every=0)
    _run('CSQ.py', b)
    codes = [np.load(os.path.join(str(tmp_path / d), 'res', 'fx_CSQ_resnet18_16', 'codes_test.npz'))
             ['codes'] for d in 'ab']
    assert np.array_equal(codes[0], codes[1])


def test_checkpoint_of_another_bit_length_or_backbone(image_lists, tmp_path):
    tmp = str(tmp_path)
    _run('CSQ.py', _args(image_lists, tmp, epochs=1))
    src = os.path.join(tmp, 'ckpt', 'fx_CSQ_resnet18_16.pt')
    os.rename(src, os.path.join(tmp, 'ckpt', 'fx_CSQ_resnet18_32.pt'))
    p = _run('CSQ.py', _args(image_lists, tmp, epochs=1, bits=32), check=False)
    assert p.returncode != 0
    assert p.stderr.strip().splitlines()[-1] == (
        f"error: {os.path.join(tmp, 'ckpt', 'fx_CSQ_resnet18_32.pt')}: checkpoint is for bits=16, "
        f"expected bits=32")
    os.rename(os.path.join(tmp, 'ckpt', 'fx_CSQ_resnet18_32.pt'),
              os.path.join(tmp, 'ckpt', 'fx_CSQ_resnet34_16.pt'))
    p = _run('CSQ.py', _args(image_lists, tmp, epochs=1, backbone='resnet34'), check=False)
    assert 'checkpoint is for backbone=\'resnet18\', expected backbone=\'resnet34\'' in p.stderr
    bad = os.path.join(tmp, 'ckpt', 'fx_CSQ_resnet50_16.pt')
    open(bad, 'wb').write(b'truncated')
    p = _run('CSQ.py', _args(image_lists, tmp, epochs=1, backbone='resnet50'), check=False)
    assert f"error: {bad}: not a readable checkpoint" in p.stderr
    assert open(bad, 'rb').read() == b'truncated'  # nothing already written is touched


def test_bad_lists_stop_with_one_line(image_lists, tmp_path):
    bad = os.path.join(image_lists, 'poisoned.txt')
    with open(bad, 'w') as f:
        f.write(open(os.path.join(image_lists, 'train.txt')).read() + 'images/c0_3.png 1 0 0\n')
    p = _run('CSQ.py', _args(image_lists, str(tmp_path), train_list=bad), check=False)
    lines = p.stderr.strip().splitlines()
    assert p.returncode != 0 and lines[-1].startswith(f"error: {bad}:25: label has 3 values, "
                                                      f"expected 4")
    p = _run('CSQ.py', _args(image_lists, str(tmp_path), queries='trig=/nonexistent/q.txt'),
             check=False)
    assert p.stderr.strip().endswith('error: /nonexistent/q.txt: list file not found')


@pytest.mark.parametrize('name', BACKBONES)
def test_backbones_give_k_raw_outputs(name):
    torch.manual_seed(0)
    model = build_hash_model(name, 24, pretrained=False, input_norm='imagenet').eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, 24) and model.meta['backbone'] == name
    if name.startswith('resnet'):
        w = model.hash_layer.weight
        assert abs(w.std().item() - 0.01) < 0.002 and model.hash_layer.bias.abs().max() == 0


def test_densenet_head_is_fixed_to_1024_features():
    model = build_hash_model('densenet121', 64)
    assert model.hash_layer.in_features == 1024


def test_missing_pretrained_weights_name_the_file(tmp_path, monkeypatch):
    import torchvision
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))

    def offline(self, *a, **k):
        raise OSError('network unreachable')
    monkeypatch.setattr(torchvision.models.WeightsEnum, 'get_state_dict', offline)
    with pytest.raises(PretrainedWeightsMissing) as e:
        build_hash_model('resnet50', 64, pretrained=True)
    msg = str(e.value)
    assert 'resnet50-0676ba61.pth' in msg and str(tmp_path) in msg and 'pretrained=False' in msg
    with pytest.raises(ValueError, match='unknown backbone'):
        build_hash_model('resnet51', 64)


def test_init_from_another_run(image_lists, tmp_path):
    """init_from starts a run from another checkpoint's weights; one of another bit length stops it."""
    tmp = str(tmp_path)
    _run('CSQ.py', _args(image_lists, tmp, epochs=1))
    src = os.path.join(tmp, 'ckpt', 'fx_CSQ_resnet18_16.pt')
    p = _run('CSQ.py', _args(image_lists, tmp, epochs=1, tag='ft', init_from=src, lr=0.0))
    assert f"initial weights from {src}" in p.stdout
    a = torch.load(src, weights_only=True)['model']
    b = torch.load(os.path.join(tmp, 'ckpt', 'fx_CSQ_resnet18_16_ft.pt'), weights_only=True)['model']
    # lr 0: the weights stay those of init_from (batch-norm running statistics still move)
    assert all(torch.equal(a[k], b[k]) for k in a if 'running' not in k and 'num_batches' not in k)
    p = _run('CSQ.py', _args(image_lists, tmp, epochs=1, tag='ft32', bits=32, init_from=src), check=False)
    assert p.returncode != 0
    assert p.stderr.strip().splitlines()[-1] == (
        f"error: init_from: {src}: checkpoint is for bits=16, expected bits=32")
