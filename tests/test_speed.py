"""Speed options that must not change results (README "Speed and scale"): the transform split, the
decoded-image cache, sharded encoding and torchrun DDP on CPU (gloo), the dtype key."""
import json
import os
import sys

import numpy as np
import pytest
import torch

from script_runner import run_script

import utils
from hash_models import build_hash_model, engine


def _args(data, tmp, **kw):
    base = dict(data_dir=data, dataset='fx', epochs=2, eval_every=0, image_size=16, bits=16,
                checkpoint_dir=os.path.join(tmp, 'ckpt'), out_dir=os.path.join(tmp, 'res'))
    base.update(kw)
    return ['configs/demo.py'] + [f"--{k}={v}" for k, v in base.items()]


def _run(cmd, check=True):
    p = run_script(cmd[1:])  # torchrun (`-m torch.distributed.run`) runs as a plain subprocess
    if check and p.returncode != 0:
        raise AssertionError(p.stdout + p.stderr)
    return p


def _codes(tmp, split, run='fx_CSQ_resnet18_16'):
    return np.load(os.path.join(tmp, 'res', run, f"codes_{split}.npz"))['codes']


@pytest.mark.parametrize('resize, augment', [(0, 'none'), (0, 'deephash'), (20, 'none'),
                                             (20, 'deephash')])
def test_transform_equals_the_torchvision_pil_pipeline(resize, augment):
    """The split transform (PIL geometry -> uint8 -> tensor augmentation) gives the very tensors of
    torchvision's Resize -> flip -> RandomCrop / CenterCrop -> ToTensor on the PIL image."""
    import torchvision.transforms as T
    from PIL import Image
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (18, 23, 3), dtype=np.uint8))  # not square
    ops = [T.Resize(resize)] if resize else []
    if augment == 'none':
        ops.append(T.CenterCrop(16))
    else:
        ops += [T.RandomHorizontalFlip(), T.RandomCrop(16, padding=0 if resize else 2)]
    reference = T.Compose(ops + [T.ToTensor()])
    ours = utils.build_transform(16, resize, augment)
    for seed in range(6):
        torch.manual_seed(seed)
        want = reference(img)
        torch.manual_seed(seed)
        got = ours(img)
        assert got.dtype == torch.float32 and torch.equal(got, want)


def test_cache_gives_the_same_codes_as_decoding(image_lists, tmp_path):
    """Acceptance 1: a seeded training with flip + crop augmentation gives identical codes with and
    without the decoded-image cache; the second cached run reuses the files."""
    a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
    cache = str(tmp_path / 'cache')
    _run([sys.executable, 'CSQ.py'] + _args(image_lists, a))
    p = _run([sys.executable, 'CSQ.py'] + _args(image_lists, b, cache='disk', cache_dir=cache))
    assert p.stdout.count('cache: building') == 3  # train, test, database
    for split in ('test', 'database'):
        assert np.array_equal(_codes(a, split), _codes(b, split))
    res = json.load(open(os.path.join(b, 'res', 'fx_CSQ_resnet18_16', 'results.json')))
    assert res['config']['cache'] == 'disk'
    # the cache is not part of the run: the uncached run's results are reused with the cache on,
    # and its files are reused, not rebuilt
    p = _run([sys.executable, 'CSQ.py'] + _args(image_lists, a, cache='disk', cache_dir=cache))
    assert p.stdout.count('cache: reusing') == 3 and 'cache: building' not in p.stdout
    assert 'nothing to train' in p.stdout


def test_stale_or_corrupt_cache_is_rebuilt(image_lists, tmp_path, capsys):
    from PIL import Image
    tf = utils.build_transform(16, 0, 'none')
    lst = os.path.join(image_lists, 'test.txt')
    cache = str(tmp_path / 'cache')
    ds = utils.ImageList(lst, transform=tf, cache_dir=cache)
    plain = utils.ImageList(lst, transform=tf)
    assert all(torch.equal(ds[i][0], plain[i][0]) for i in range(len(ds)))
    stem = utils.ImageCache.stem_for(cache, lst, tf)
    assert sorted(os.listdir(cache)) == sorted(os.path.basename(stem) + e for e in ('.bin', '.json'))
    # an image changes: its size / mtime change the key, the cache is rebuilt with a note
    path = ds.paths[3]
    Image.fromarray(np.full((16, 16, 3), 7, np.uint8)).save(path)
    os.utime(path, ns=(1, 1))
    capsys.readouterr()
    ds = utils.ImageList(lst, transform=tf, cache_dir=cache)
    assert 'is stale' in capsys.readouterr().out
    assert (ds[3][0] * 255).round().eq(7).all()
    # a truncated data file is found and rebuilt
    with open(stem + '.bin', 'r+b') as f:
        f.truncate(100)
    ds = utils.ImageList(lst, transform=tf, cache_dir=cache)
    assert 'is corrupt' in capsys.readouterr().out
    assert os.path.getsize(stem + '.bin') == len(ds) * 16 * 16 * 3
    # another geometry is another cache; nothing temporary is left behind
    utils.ImageList(lst, transform=utils.build_transform(8, 0, 'none'), cache_dir=cache)
    assert len(os.listdir(cache)) == 4 and not any(f.startswith('.tmp') for f in os.listdir(cache))


def test_shard_covers_the_list_in_order():
    for n in (1, 5, 24, 25):
        for world in (1, 2, 3, 4):
            shards = [engine.shard(n, r, world) for r in range(world)]
            assert len({len(s) for s in shards}) == 1  # equal sizes for all_gather
            flat = [i for s in shards for i in s]
            assert flat[:n] == list(range(n)) and all(i == n - 1 for i in flat[n:])


def test_torchrun_two_processes_encode_like_one(image_lists, tmp_path):
    """Acceptance 1: `torchrun --nproc_per_node=2 CSQ.py` (gloo on CPU) trains with DDP and writes
    database codes, sharded over the two processes, equal to one process encoding the same
    checkpoint. Rank 0 alone prints."""
    tmp = str(tmp_path)
    p = _run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
              'CSQ.py'] + _args(image_lists, tmp, epochs=1, eval_batch_size=7))
    assert 'processes 2 (DistributedDataParallel)' in p.stdout
    assert p.stdout.count('epoch 1/1') == 1 and p.stdout.count('config: ') == 1
    ckpt = utils.load_checkpoint(os.path.join(tmp, 'ckpt', 'fx_CSQ_resnet18_16.pt'))
    net = build_hash_model('resnet18', 16, small_input=True)
    net.load_state_dict(ckpt['model'])
    for split in ('database', 'test'):  # 40 and 12 images: uneven batches, shards padded
        ds = utils.ImageList(os.path.join(image_lists, f"{split}.txt"),
                             transform=utils.build_transform(16, 0, 'none'))
        loader = engine.eval_loader(ds, {'eval_batch_size': 16, 'num_workers': 0}, 'cpu')
        one = engine.encode(net, loader, 'cpu', len(ds))
        assert np.array_equal(one, _codes(tmp, split))
    res = json.load(open(os.path.join(tmp, 'res', 'fx_CSQ_resnet18_16', 'results.json')))
    assert res['processes'] == 2


def test_torchrun_hashnet_memory_bank_sees_every_image(image_lists, tmp_path):
    """HashNet's memory bank is indexed by dataset position: under DDP each process writes the
    gathered global batch, so after one epoch every training image's code is in rank 0's bank."""
    tmp = str(tmp_path)
    _run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
          'HashNet.py'] + _args(image_lists, tmp, epochs=1, batch_size=8))
    ckpt = utils.load_checkpoint(os.path.join(tmp, 'ckpt', 'fx_HashNet_resnet18_16.pt'))
    assert ckpt['loss']['U'].shape[0] == 24
    assert (ckpt['loss']['U'].abs().sum(1) > 0).all() and (ckpt['loss']['Y'].sum(1) == 1).all()


def test_dtype_key(image_lists, tmp_path):
    """bfloat16 runs on the CPU under autocast (with a note); a bfloat16 run is a different run
    from a float32 one: not reused, not resumed; bad values stop with one line."""
    tmp = str(tmp_path)
    p = _run([sys.executable, 'CSQ.py'] + _args(image_lists, tmp, epochs=1, dtype='bfloat16',
                                                channels_last=True))
    assert 'note: dtype=bfloat16 on the CPU runs under CPU autocast' in p.stdout
    assert set(np.unique(_codes(tmp, 'database'))) <= {-1, 1}
    p = _run([sys.executable, 'CSQ.py'] + _args(image_lists, tmp, epochs=1), check=False)
    assert p.returncode != 0 and "trained with dtype='bfloat16', this run has dtype='float32'" \
        in p.stderr.strip().splitlines()[-1]
    for key, value, msg in (('dtype', 'float16', "dtype must be 'float32' or 'bfloat16'"),
                            ('cache', 'ram', "cache must be 'none' or 'disk'")):
        p = _run([sys.executable, 'CSQ.py'] + _args(image_lists, tmp, **{key: value}), check=False)
        assert p.returncode != 0 and p.stderr.strip().splitlines()[-1].startswith(f"error: {msg}")
