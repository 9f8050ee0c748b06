"""Database encoding throughput (images/s), as engine.encode runs it at every evaluation.

Configurations, each timed in this process (alternating rounds, best round counts):
  reference  float32, every image decoded (official)
  cache      float32, images from the decoded-image cache
  fast       cache + dtype=bfloat16 autocast + channels_last (the speed options together)
The codes of `cache` must equal the reference's (the script stops otherwise); `fast` prints how
many code bits differ from the reference (bfloat16 rounding; expected to be few).

    python bench/bench_encode.py                                                     # toy database
    python bench/bench_encode.py --db_list=../shared/data/tiny-imagenet-10/database.txt --image_size=64
    python bench/bench_encode.py --db_list=data/imagenet/database.txt --image_size=224 \
        --resize_size=256 --backbone=resnet50 --small_input=False --bits=64 --batch_size=256 \
        --num_workers=8 --device=cuda                                                # paper scale, GPU
"""
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import utils  # noqa: E402
from hash_models import build_hash_model, engine  # noqa: E402

# ---- config ------------------------------------------------------------------------------------
db_list = 'data/toy/database.txt'  # list to encode (toy: 2,000 images at 32 px)
image_size = 32           # configs/demo.py (paper 224)
resize_size = 0           # configs/demo.py (paper 256)
backbone = 'resnet18'     # configs/demo.py (paper resnet50)
small_input = True
bits = 32
batch_size = 256          # eval_batch_size of CSQ.py
num_workers = 0
device = 'auto'
rounds = 2
cache_dir = ''            # '' = a temporary folder, removed at the end
threads = 0               # torch threads; 0 = as OMP_NUM_THREADS
seed = 0
# ------------------------------------------------------------------------------------------------

if __name__ == '__main__':
    c = utils.configure(globals(), show=False)
    if c['threads']:
        torch.set_num_threads(c['threads'])
    dev = utils.resolve_device(c['device'])
    folder = c['cache_dir'] or tempfile.mkdtemp(prefix='bench_encode_')
    tf = utils.build_transform(c['image_size'], c['resize_size'], 'none')
    try:
        try:
            plain = utils.ImageList(c['db_list'], transform=tf)
        except utils.ListError as e:
            sys.exit(f"error: {e}")
        cached = utils.ImageList(c['db_list'], transform=tf, cache_dir=folder,
                                 num_workers=c['num_workers'])
        torch.manual_seed(c['seed'])
        net = build_hash_model(c['backbone'], c['bits'], small_input=c['small_input']).to(dev)
        # a trained-looking spread of outputs: a random net's hash outputs are ~0 and sign-fragile
        torch.nn.init.normal_(net.hash_layer.weight, 0.0, 1.0)
        net.eval()
        cfg = {'eval_batch_size': c['batch_size'], 'num_workers': c['num_workers']}
        runs = {'reference': (plain, 'float32', False), 'cache': (cached, 'float32', False),
                'fast': (cached, 'bfloat16', True)}
        loaders = {k: engine.eval_loader(ds, cfg, dev) for k, (ds, _, _) in runs.items()}
        best, codes = {}, {}
        for _ in range(c['rounds']):
            for name, (ds, dtype, cl) in runs.items():
                net.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
                t0 = time.perf_counter()
                codes[name] = engine.encode(net, loaders[name], dev, len(ds), dtype, cl)
                best[name] = max(best.get(name, 0.0), len(ds) / (time.perf_counter() - t0))
        print(f"{c['db_list']}: {len(plain)} images, {c['image_size']} px, {c['backbone']} "
              f"{c['bits']} bits, batch {c['batch_size']}, {c['num_workers']} workers, "
              f"{torch.get_num_threads()} threads, device {dev}")
        if not np.array_equal(codes['cache'], codes['reference']):
            sys.exit("FAIL: cached codes differ from the reference's")
        flips = int((codes['fast'] != codes['reference']).sum())
        r = best['reference']
        print(f"encoding: reference {r:.0f} img/s | cache {best['cache']:.0f} img/s "
              f"(x{best['cache'] / r:.2f}, identical codes) | cache + bfloat16 + channels_last "
              f"{best['fast']:.0f} img/s (x{best['fast'] / r:.2f}, {flips} of "
              f"{codes['fast'].size} bits differ)")
    finally:
        if not c['cache_dir']:
            shutil.rmtree(folder, ignore_errors=True)
