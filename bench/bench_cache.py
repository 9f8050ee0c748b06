"""Epoch wall time with and without the decoded-image cache (utils.ImageCache), in one process.

The reference decodes every image of the list every epoch (official); the cached run reads the
resized uint8 arrays from a memory-mapped file built once (its one-off build time is printed too).
Both apply the same random flip + crop afterwards, so they feed identical tensors. Two epochs:
  - input-pipeline epoch: one pass of the training DataLoader (what the cache replaces);
  - training epoch: the same pass with a CSQ training step of the hashing network on each batch.
Rounds alternate between the two configurations; the best round of each counts.

    python bench/bench_cache.py                                                   # toy, 32 px
    python bench/bench_cache.py --train_list=../shared/data/tiny-imagenet-10/train.txt --image_size=64
    python bench/bench_cache.py --train_list=data/imagenet/train.txt --image_size=224 --resize_size=256 \
        --backbone=resnet50 --small_input=False --bits=64 --batch_size=128 --num_workers=8 \
        --device=cuda --dtype=bfloat16 --channels_last=True                      # paper scale, GPU
"""
import os
import shutil
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import utils  # noqa: E402

# ---- config ------------------------------------------------------------------------------------
train_list = 'data/toy/train.txt'  # training list (toy: 1,000 images at 32 px; data/prepare_toy.py)
image_size = 32           # crop size (configs/demo.py; paper 224)
resize_size = 0           # Resize before the crop (configs/demo.py; paper 256)
augment = 'deephash'      # the demo presets' flip + random crop, applied after the cache
backbone = 'resnet18'     # the training epoch's network (configs/demo.py)
small_input = True
bits = 32
batch_size = 64           # configs/demo.py
num_workers = 0           # configs/demo.py (paper-scale runs: 4-8)
device = 'auto'
dtype = 'float32'
channels_last = False
rounds = 2                # alternating rounds; the best counts
train = True              # also time the training epoch
cache_dir = ''            # '' = a temporary folder, removed at the end
threads = 0               # torch threads; 0 = as OMP_NUM_THREADS
seed = 0
# ------------------------------------------------------------------------------------------------


def epoch(ds, c, dev, step=None):
    gen = torch.Generator().manual_seed(c['seed'])
    loader = torch.utils.data.DataLoader(ds, batch_size=c['batch_size'], shuffle=True,
                                         num_workers=c['num_workers'], generator=gen,
                                         pin_memory=dev.startswith('cuda'))
    t0 = time.perf_counter()
    for x, y, _ in loader:
        if step is not None:
            step(utils.to_device(x, dev, c['channels_last']), y.to(dev))
    if dev.startswith('cuda'):
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def make_step(c, dev, classes):
    from CSQ import CSQLoss
    from hash_models import build_hash_model
    torch.manual_seed(c['seed'])
    net = build_hash_model(c['backbone'], c['bits'], small_input=c['small_input']).to(dev)
    if c['channels_last']:
        net.to(memory_format=torch.channels_last)
    loss_fn = CSQLoss(classes, c['bits'], False, 1e-4, 0).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()

    def step(x, y):
        with utils.autocast(dev, c['dtype']):
            out = net(x)
        loss = loss_fn(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


if __name__ == '__main__':
    c = utils.configure(globals(), show=False)
    if c['threads']:
        torch.set_num_threads(c['threads'])
    dev = utils.resolve_device(c['device'])
    folder = c['cache_dir'] or tempfile.mkdtemp(prefix='bench_cache_')
    tf = utils.build_transform(c['image_size'], c['resize_size'], c['augment'])
    try:
        try:
            plain = utils.ImageList(c['train_list'], transform=tf)
        except utils.ListError as e:
            sys.exit(f"error: {e}")
        t0 = time.perf_counter()
        cached = utils.ImageList(c['train_list'], transform=tf, cache_dir=folder,
                                 num_workers=c['num_workers'])
        build = time.perf_counter() - t0
        print(f"{c['train_list']}: {len(plain)} images, {c['image_size']} px (resize {c['resize_size']}), "
              f"batch {c['batch_size']}, {c['num_workers']} workers, {torch.get_num_threads()} "
              f"threads, device {dev}; cache built once in {build:.1f} s")
        best = {'pipeline': {}, 'train': {}}
        for _ in range(c['rounds']):
            for name, ds in (('decode', plain), ('cache', cached)):
                t = epoch(ds, c, dev)
                best['pipeline'][name] = min(best['pipeline'].get(name, 1e30), t)
        if c['train']:
            steps = {name: make_step(c, dev, plain.labels.shape[1]) for name in ('decode', 'cache')}
            for _ in range(c['rounds']):
                for name, ds in (('decode', plain), ('cache', cached)):
                    t = epoch(ds, c, dev, steps[name])
                    best['train'][name] = min(best['train'].get(name, 1e30), t)
        for kind, label in (('pipeline', 'input-pipeline epoch'),
                            ('train', f"training epoch ({c['backbone']} CSQ, {c['dtype']})")):
            if best[kind]:
                b = best[kind]
                print(f"{label}: decode {b['decode']:.2f} s | cache {b['cache']:.2f} s | "
                      f"ratio x{b['decode'] / b['cache']:.2f}")
    finally:
        if not c['cache_dir']:
            shutil.rmtree(folder, ignore_errors=True)
