"""Training-step throughput: float32 (the reference, official) against bfloat16 autocast + channels_last.

Two steps, each timed in this process for both configurations (rounds alternate between them and
the best round counts, so a busy machine hurts both alike), printing images/s and the ratio:
  - surrogate: one CSQ training step (forward, loss, backward, RMSprop) of a hashing network;
  - GAN: one train_tri_gen.py iteration (G forward, a D step every `d_every` iterations, the G step
    with the frozen surrogate, D and LPIPS), averaged over d_every iterations.
Inputs are random tensors of the right shapes (the input pipeline is bench_cache.py's subject).

    python bench/bench_train_step.py                          # CPU-sized: 32 px, ResNet18, narrow G/D
    python bench/bench_train_step.py --official=True          # paper scale: 224 px, ResNet50 CSQ 64
                                                              # bits batch 128, G/D width 64 batch 32
    python bench/bench_train_step.py --official=True --steps=20 --rounds=3   # on a GPU

On a CPU bfloat16 runs under CPU autocast (faster only with bfloat16 instructions such as
AVX512-BF16); the 2x target is for CUDA.
"""
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import utils  # noqa: E402

# ---- config ------------------------------------------------------------------------------------
official = False          # True: the official configuration below (224 px, ResNet50, batch 128, width 64)
device = 'auto'           # auto | cpu | cuda
image_size = 32           # CPU-sized (official: 224)
backbone = 'resnet18'     # surrogate backbone (official: resnet50)
small_input = True        # 3x3 first conv for small images (official: False)
bits = 32                 # (official: 64)
classes = 10              # (official: 100, ImageNet-100)
batch_size = 32           # surrogate step batch (official: 128)
gan_batch = 8             # GAN batch (official: 32, paper)
ngf = 16                  # G width (official: 64)
ndf = 16                  # D width (official: 64)
d_every = 3               # official code: a D step every 3rd iteration
lpips = 'alex_random_trunk'  # LPIPS network in the G loss (same cost as 'alex'; no weights needed)
fast_dtype = 'bfloat16'   # the fast configuration's dtype
fast_channels_last = True  # and memory layout
fast_cudnn_benchmark = False  # the fast configuration lets cuDNN time its algorithms (CUDA only)
fast_compile = False      # the fast configuration runs G, D and the surrogate through torch.compile
breakdown = False         # also print where a GAN step's time goes, phase by phase, per configuration
steps = 3                 # timed steps per round (the GAN: rounded up to a multiple of d_every)
warmup = 1                # untimed steps before each round
rounds = 2                # alternating rounds per configuration; the best counts
threads = 0               # torch threads; 0 = leave as set by OMP_NUM_THREADS
what = 'both'             # 'surrogate' | 'gan' | 'both'
seed = 0
# ------------------------------------------------------------------------------------------------

OFFICIAL = dict(image_size=224, backbone='resnet50', small_input=False, bits=64, classes=100,
                batch_size=128, gan_batch=32, ngf=64, ndf=64)


def sync(dev):
    if dev.startswith('cuda'):
        torch.cuda.synchronize()


def surrogate_step_fn(c, dev, dtype, cl, comp=False, tick=None):
    from CSQ import CSQLoss
    from hash_models import build_hash_model
    net = build_hash_model(c['backbone'], c['bits'], small_input=c['small_input']).to(dev)
    if cl:
        net.to(memory_format=torch.channels_last)
    if comp:
        net.compile()
    loss_fn = CSQLoss(c['classes'], c['bits'], False, 1e-4, 0).to(dev)
    opt = torch.optim.RMSprop(net.parameters(), lr=1e-5, weight_decay=1e-5)
    x = torch.rand(c['batch_size'], 3, c['image_size'], c['image_size'], device=dev)
    y = torch.eye(c['classes'], device=dev)[torch.randint(c['classes'], (c['batch_size'],))]
    x = utils.to_device(x, dev, cl)
    net.train()

    def step(i):
        with utils.autocast(dev, dtype):
            out = net(x)
        loss = loss_fn(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step, c['batch_size']


def gan_step_fn(c, dev, dtype, cl, comp=False, tick=None):
    from discriminator import Discriminator
    from generator import Generator
    from hash_models import build_hash_model
    from train_tri_gen import (apply_generator, build_lpips, d_loss_paper, g_loss_paper,
                               lpips_term)
    b, s = c['gan_batch'], c['image_size']
    G = Generator(image_size=s, feat_dim=512, ngf=c['ngf']).to(dev)
    D = Discriminator(c['classes'], image_size=s, ndf=c['ndf']).to(dev)
    sur = build_hash_model(c['backbone'], c['bits'], small_input=c['small_input']).to(dev)
    sur.eval().requires_grad_(False)
    if cl:
        for m in (G, D, sur):
            m.to(memory_format=torch.channels_last)
    if comp:  # the modules' forward compiled; parameters, optimisers and losses as they are
        for m in (G, D, sur):
            m.compile()
    lp_net = build_lpips(c['lpips'], dev)
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-4, betas=(0.5, 0.999))
    x = utils.to_device(torch.rand(b, 3, s, s, device=dev), dev, cl)
    y = torch.eye(c['classes'], device=dev)[torch.randint(c['classes'], (b,))]
    y_s = torch.eye(c['classes'], device=dev)[torch.randint(c['classes'], (b,))]
    r_b = torch.randn(b, 512, device=dev)
    h_c = torch.sign(torch.randn(b, c['bits'], device=dev))
    amp = utils.autocast(dev, dtype)
    weights = (80.0, 5.0, 200.0)
    tick = tick or (lambda phase: None)

    def step(i):  # the body of train_tri_gen.py's loop; tick(phase) closes a phase (breakdown)
        with amp:
            x_b = apply_generator(G, x, r_b).float()
        tick('G forward')
        if i % c['d_every'] == 0:
            D.requires_grad_(True)
            with amp:
                d_real, d_fake = D(x), D(x_b.detach())
            d_loss = d_loss_paper(d_real.float(), y, d_fake.float(), y_s)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            tick('D step (every d_every)')
        D.requires_grad_(False)
        lp = lpips_term(lp_net, x_b, x, 'normalized')
        tick('LPIPS forward')
        with amp:
            hash_out, d_fake = sur(x_b), D(x_b)
        tick('surrogate + D forward')
        g_loss, _ = g_loss_paper(x_b, x, hash_out.float(), h_c, d_fake.float(), y_s, lp, weights)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        tick('G loss + backward')
        opt_g.step()
        tick('G optimiser step')
    return step, b


def configurations(c):
    """name -> (dtype, channels_last, cudnn.benchmark, compile): the reference and the fast one."""
    return {'float32': ('float32', False, False, False),
            'fast': (c['fast_dtype'], c['fast_channels_last'], c['fast_cudnn_benchmark'],
                     c['fast_compile'])}


def gan_steps(c):
    """Timed GAN steps: a whole number of d_every cycles, so D steps count at their real rate."""
    return -(-c['steps'] // c['d_every']) * c['d_every']


def measure(make, c, dev):
    """images/s of the reference and the fast configuration, alternating rounds, best round each."""
    steps = gan_steps(c) if make is gan_step_fn else c['steps']
    configs = configurations(c)
    fns = {}
    for name, (dtype, cl, _, comp) in configs.items():
        torch.manual_seed(c['seed'])
        fns[name] = make(c, dev, dtype, cl, comp)
    best = {name: 0.0 for name in fns}
    for _ in range(c['rounds']):
        for name, (step, n) in fns.items():
            torch.backends.cudnn.benchmark = configs[name][2]
            for i in range(c['warmup']):
                step(i)
            sync(dev)
            t0 = time.perf_counter()
            for i in range(steps):
                step(i)
            sync(dev)
            best[name] = max(best[name], steps * n / (time.perf_counter() - t0))
    torch.backends.cudnn.benchmark = False
    return best


class PhaseTally:
    """tick(phase) adds to that phase how much read() has grown since the previous tick (elapsed
    seconds, or operations counted)."""

    def __init__(self, read):
        self.read, self.spent, self.last = read, {}, read()

    def restart(self):
        self.spent, self.last = {}, self.read()

    def __call__(self, phase):
        now = self.read()
        self.spent[phase] = self.spent.get(phase, 0) + now - self.last
        self.last = now


def flops_per_image(c, dev):
    """Floating-point operations per image of each phase of a GAN step (one d_every cycle at batch 1,
    float32; the fast configuration does the same arithmetic)."""
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        tick = PhaseTally(counter.get_total_flops)
        step, _ = gan_step_fn(dict(c, gan_batch=1), dev, 'float32', False, False, tick)
        for i in range(c['d_every']):
            step(i)
    return {k: v / c['d_every'] for k, v in tick.spent.items()}


def phase_breakdown(c, dev):
    """Milliseconds per GAN step spent in each phase, per configuration (synchronising after each
    phase, which itself costs a little; the shares are what matters), with the arithmetic rate each
    phase reaches (from flops_per_image: TFLOP/s = FLOPs per image x batch / time)."""
    steps = gan_steps(c)
    flops = flops_per_image(c, dev)

    def synced_time():
        sync(dev)
        return time.perf_counter()
    print(f"  FLOPs per image: {sum(flops.values()) / 1e9:.4g} G = " + ", ".join(
        f"{k} {v / 1e9:.3g}" for k, v in flops.items()))
    for name, (dtype, cl, bench, comp) in configurations(c).items():
        torch.manual_seed(c['seed'])
        torch.backends.cudnn.benchmark = bench
        clock = PhaseTally(synced_time)
        step, _ = gan_step_fn(c, dev, dtype, cl, comp, clock)
        for i in range(max(c['warmup'], 1) * c['d_every']):
            step(i)
        clock.restart()
        for i in range(steps):
            step(i)
        spent = clock.spent
        total = sum(spent.values())

        def rate(phase_flops, seconds):
            return phase_flops * c['gan_batch'] * steps / max(seconds, 1e-12) / 1e12
        print(f"  {name}: {1000 * total / steps:.1f} ms/step, {rate(sum(flops.values()), total):.2f} "
              f"TFLOP/s = " + ", ".join(
                  f"{k} {1000 * v / steps:.1f} ms ({100 * v / total:.0f}%, {rate(flops.get(k, 0), v):.2f} "
                  f"TFLOP/s)" for k, v in spent.items()))
    torch.backends.cudnn.benchmark = False


if __name__ == '__main__':
    c = utils.configure(globals(), show=False)
    if c['official']:  # the official values, then any --key=value given again on top
        c.update(OFFICIAL)
        utils.apply_overrides(c, [a for a in sys.argv[1:] if a.startswith('--')])
    if c['threads']:
        torch.set_num_threads(c['threads'])
    dev = utils.resolve_device(c['device'])
    name = torch.cuda.get_device_name(0) if dev.startswith('cuda') else f"CPU, {torch.get_num_threads()} threads"
    fast = [c['fast_dtype']] + [label for key, label in (
        ('fast_channels_last', 'channels_last'), ('fast_cudnn_benchmark', 'cudnn.benchmark'),
        ('fast_compile', 'torch.compile')) if c[key]]
    print(f"device {dev} ({name}); {c['image_size']} px; reference float32 vs fast {' + '.join(fast)}")
    if c['what'] in ('surrogate', 'both'):
        r = measure(surrogate_step_fn, c, dev)
        print(f"surrogate step ({c['backbone']} CSQ {c['bits']} bits, batch {c['batch_size']}): "
              f"float32 {r['float32']:.1f} img/s | fast {r['fast']:.1f} img/s | "
              f"ratio x{r['fast'] / r['float32']:.2f}")
    if c['what'] in ('gan', 'both'):
        r = measure(gan_step_fn, c, dev)
        print(f"GAN step (G {c['ngf']} / D {c['ndf']} wide, batch {c['gan_batch']}, surrogate "
              f"{c['backbone']}, LPIPS, D every {c['d_every']}): float32 {r['float32']:.1f} img/s | "
              f"fast {r['fast']:.1f} img/s | ratio x{r['fast'] / r['float32']:.2f}")
        if c['breakdown']:
            print("GAN step, time per phase:")
            phase_breakdown(c, dev)
