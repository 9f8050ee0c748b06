"""ISSBA baseline (Li et al. 2021, invisible sample-specific triggers; BadHash §5.4, Table 5).

    python baselines/issba.py                                     # paper scale (224 px, 100 bits)
    python baselines/issba.py configs/demo.py --issba_secret_bits=16 --issba_width=16 \
        --issba_depth=2 --issba_steps=600 --issba_ramp_steps=200 --issba_lr=0.001  # toy, ~2 min CPU

ISSBA hides a secret bit string in the image with a StegaStamp-style encoder/decoder (Tancik et al.)
trained beforehand; the encoder's residual depends on the image, so the trigger is sample-specific
and invisible. The original encoder is not available here (SPEC D25), so this script trains one:
  1. encoder/decoder on the training-list images at the model's geometry: the encoder (a small
     U-Net) takes the image and the secret (bits -> a Linear map to a 3-channel grid at a quarter of
     the image size, upsampled, concatenated with the image and again before the 1x1 output conv;
     3x3 convs with LeakyReLU(0.2)) and returns a residual bounded by issba_residual_max by tanh;
     x_b = clamp(x + residual, 0, 1). The decoder (strided convs, 4x4 pooling, two Linear layers)
     reads the bits back. Loss, per batch of random secrets (as
     StegaStamp): BCE(decoder(x_b + rounding noise), secret) + w(step) * MSE(x_b, x)
     [+ w_lpips(step) * LPIPS when issba_lpips='alex' and its weights are cached; never downloaded],
     with w = 0 for the first issba_ramp_steps steps, then linear up to 1 over as many steps
     (StegaStamp also ramps its image losses in so the secret is learnt first; without the pause
     the image loss wins at once and the residual collapses to zero, measured on the toy data).
     The second secret input and LeakyReLU are our choices: with plain ReLU and the secret only at
     the input, 2 of 3 seeds stayed at chance (BCE 0.693) on the test data; with them 10 of 10 learnt.
     Uniform noise of +-0.5/255 before decoding mimics the PNG rounding.
     Checkpoint {checkpoint_dir}/{dataset}_issba_{image_size}px_{bits}b_{digest}.pt, the digest of
     the training settings; written every issba_save_every steps, resumed or reused on a rerun.
     The decoder's bit accuracy on held-out images (the test list), with the attack secret, with
     random secrets and on clean images, is printed and recorded in poisons.json.
  2. attack, poison label: poison_rate (5%, paper) of the whole training set, drawn (seeded) from
     images without the target class, encoded with ONE fixed secret (seeded bits), relabelled to the
     target; the triggered queries are encoded with the same secret. Outputs: baselines/common.py.

Geometry and MSE: encoding happens on the image at the model's input geometry (after Resize and
CentreCrop), and stealth.json compares that crop with the saved PNG; no patch, so nothing is cropped
away. The residual budget and image-loss weight set the MSE (the paper reports 115 on ImageNet).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import utils  # noqa: E402
from baselines import common  # noqa: E402

# ---- config ------------------------------------------------------------------------------------
# data and geometry: the same keys and meanings as implement_tri_gen.py
dataset = 'imagenet'          # name used in run names and in the encoder's checkpoint name
data_dir = 'data/imagenet'    # folder with train.txt, test.txt, classes.txt (optional)
train_list = ''               # '' = {data_dir}/train.txt: poisoned, and the encoder's training images
test_list = ''                # '' = {data_dir}/test.txt: triggered queries and held-out bit accuracy
image_size = 224              # model geometry: centre crop (paper scale, SPEC D14)
resize_size = 256             # Resize before the crop (D14); 0 = none
# attack
target = 0                    # target class index (paper Table 2; SPEC D23)
poison_rate = 0.05            # paper §5.4: 5%, a fraction of the whole training set (non-target images)
openset_list = ''             # another dataset's list: open-set triggered queries (D18); '' = none
n_openset = 0                 # open-set queries, seeded subset; 0 = all
n_closed = 0                  # closed-set triggered queries, seeded subset; 0 = all
attack_tag = ''               # suffix of the run name
gen_batch_size = 64           # images per batch while writing PNGs (as implement_tri_gen.py)
# encoder / decoder (StegaStamp-style, trained here)
issba_secret_bits = 100       # secret length (StegaStamp and ISSBA: 100 bits); toy: 16
issba_width = 32              # channels of the first conv (our choice; toy: 16); doubled at each level
issba_depth = 3               # down/up levels of the U-Net and decoder (our choice; toy: 2); image_size
                              # must be divisible by 2**depth (224 px: 28 px at the bottom)
issba_residual_max = 0.1      # tanh bound of the residual in [0,1] units (our choice: ~25/255; the
                              # image loss keeps it well below)
issba_w_image = 30.0          # weight of MSE(x_b, x) after the ramp (our choice, trades PSNR for bit acc.)
issba_lpips = 'none'          # 'none' | 'alex' (needs torchvision's AlexNet weights cached; no download)
issba_w_lpips = 1.0           # weight of LPIPS after the ramp, when issba_lpips='alex' (our choice)
issba_ramp_steps = 2000       # image-loss weights are 0 for this many steps, then rise linearly to full
                              # weight over as many again (our choice; toy: 200)
issba_steps = 20000           # training steps (our choice for 224 px on a GPU); toy: 600
issba_batch = 32              # images per step (our choice)
issba_lr = 0.0001             # Adam learning rate (StegaStamp: 1e-4); toy: 1e-3
issba_save_every = 500        # steps between checkpoints (resume point) and log lines
issba_eval_images = 256       # held-out test images for the bit-accuracy figures; 0 = all
# run
out_dir = 'results'
checkpoint_dir = 'checkpoint'
seed = 0                      # secret, poison subset, query subsets, network init, batches
device = 'auto'               # auto | cpu | cuda
num_workers = 4               # DataLoader workers
# ------------------------------------------------------------------------------------------------

CHECKPOINT_FORMAT = 1
# training settings that define the encoder (its checkpoint digest); steps may grow (resume)
TRAIN_KEYS = ('dataset', 'image_size', 'resize_size', 'issba_secret_bits', 'issba_width',
              'issba_depth', 'issba_residual_max', 'issba_w_image', 'issba_lpips', 'issba_w_lpips',
              'issba_ramp_steps', 'issba_batch', 'issba_lr', 'seed')
ALEXNET_FILE = 'alexnet-owt-7be5be79.pth'


# ================================================================================================
# networks
# ================================================================================================

def _conv(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.LeakyReLU(0.2, inplace=True))


class Encoder(nn.Module):
    """(image [B,3,H,W] in [0,1], secret bits [B,L] in {0,1}) -> x_b = clamp(x + residual, 0, 1)."""

    def __init__(self, bits, image_size, width=32, depth=3, residual_max=0.1):
        super().__init__()
        self.grid = max(1, image_size // 4)
        self.residual_max = residual_max
        self.secret = nn.Linear(bits, 3 * self.grid * self.grid)
        self.inp = _conv(6, width)
        ch = [width * 2 ** i for i in range(depth + 1)]
        self.down = nn.ModuleList([_conv(ch[i], ch[i + 1], 2) for i in range(depth)])
        self.up = nn.ModuleList([_conv(ch[i + 1] + ch[i], ch[i]) for i in reversed(range(depth))])
        self.head = nn.Conv2d(width + 3, 3, 1)  # sees the secret map again (a short path)

    def residual(self, x, s):
        m = self.secret(2 * s - 1).view(-1, 3, self.grid, self.grid)
        m = F.interpolate(m, size=x.shape[-2:], mode='nearest')
        h = self.inp(torch.cat([x - 0.5, m], 1))
        skips = [h]
        for down in self.down:
            h = down(h)
            skips.append(h)
        skips.pop()
        for up in self.up:
            h = F.interpolate(h, scale_factor=2, mode='nearest')
            h = up(torch.cat([h, skips.pop()], 1))
        return self.residual_max * torch.tanh(self.head(torch.cat([h, m], 1)))

    def forward(self, x, s):
        return (x + self.residual(x, s)).clamp(0, 1)


class Decoder(nn.Module):
    """image [B,3,H,W] in [0,1] -> secret logits [B,L]."""

    def __init__(self, bits, width=32, depth=3):
        super().__init__()
        layers = [_conv(3, width)] + [_conv(width * 2 ** i, width * 2 ** (i + 1), 2)
                                      for i in range(depth)]
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(width * 2 ** depth * 16, 256),
                                  nn.ReLU(inplace=True), nn.Linear(256, bits))

    def forward(self, x):
        return self.head(self.features(x - 0.5))


def secret_bits(bits, seed):
    """The attack's one fixed secret: seeded 0/1 float vector [bits]."""
    return torch.from_numpy(np.random.default_rng([seed, 7]).integers(0, 2, bits).astype(np.float32))


def bit_accuracy(logits, s):
    return ((logits > 0).float() == s).float().mean(1)


def to_uint8_grid(x):
    """[0,1] batch -> the values a saved PNG gives back: round(255 x) / 255."""
    return (x.clamp(0, 1) * 255).round() / 255


# ================================================================================================
# training (resumable) and held-out evaluation
# ================================================================================================

class _StepBatches:
    """Index batches for steps [start, steps): batch of step t drawn with rng([seed, t]) (so a
    resumed run draws what an uninterrupted one would)."""

    def __init__(self, n, batch, start, steps, seed):
        self.n, self.batch, self.start, self.steps, self.seed = n, min(batch, n), start, steps, seed

    def __len__(self):
        return max(0, self.steps - self.start)

    def __iter__(self):
        for t in range(self.start, self.steps):
            yield np.random.default_rng([self.seed, t]).choice(self.n, self.batch, replace=False).tolist()


def checkpoint_path(c):
    digest = common.config_digest({k: c[k] for k in TRAIN_KEYS} | {'train': os.path.abspath(
        c['train_list'] or os.path.join(c['data_dir'], 'train.txt'))})
    return os.path.join(c['checkpoint_dir'], f"{c['dataset']}_issba_{c['image_size']}px_"
                                             f"{c['issba_secret_bits']}b_{digest}.pt")


def build_nets(c):
    enc = Encoder(c['issba_secret_bits'], c['image_size'], c['issba_width'], c['issba_depth'],
                  c['issba_residual_max'])
    dec = Decoder(c['issba_secret_bits'], c['issba_width'], c['issba_depth'])
    return enc, dec


def build_lpips(c, device):
    if c['issba_lpips'] == 'none':
        return None
    cached = os.path.join(torch.hub.get_dir(), 'checkpoints', ALEXNET_FILE)
    if not os.path.isfile(cached):
        common.fail(f"issba_lpips='alex' needs AlexNet weights: put {ALEXNET_FILE} into "
                    f"{os.path.dirname(cached)}/ (nothing is downloaded), or set issba_lpips='none'")
    import warnings
    import lpips as lpips_pkg
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        net = lpips_pkg.LPIPS(net='alex', verbose=False)
    return net.to(device).eval().requires_grad_(False)


def train_or_load(c, train_paths, device):
    """Encoder/decoder trained to issba_steps (resumed from, or reused as, its checkpoint)."""
    path = checkpoint_path(c)
    list_path = c['train_list'] or os.path.join(c['data_dir'], 'train.txt')
    record = utils.list_record(list_path, train_paths)  # what it is trained on (README "Reuse rule")
    enc, dec = build_nets(c)
    opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=c['issba_lr'])
    start, history = _resume(c, path, list_path, record, enc, dec, opt)
    enc.to(device)
    dec.to(device)
    if start < c['issba_steps']:
        _train(c, train_paths, device, enc, dec, opt, start, history, path, record)
        start = c['issba_steps']
    enc.eval()
    dec.eval()
    return enc, dec, {'checkpoint': path, 'step': start}


def _resume(c, path, list_path, record, enc, dec, opt):
    """(steps done, history) of the checkpoint at path, loaded into the nets and opt; (0, [])
    without one. One-line exit for an unreadable one or one trained on another list."""
    if not os.path.isfile(path):
        return 0, []
    try:
        ck = utils.load_checkpoint(path)
        enc.load_state_dict(ck['encoder'])
        dec.load_state_dict(ck['decoder'])
        opt.load_state_dict(ck['opt'])
    except (ValueError, KeyError, RuntimeError) as e:
        common.fail(f"{path}: cannot reuse ({str(e).splitlines()[0]}); delete it to retrain")
    old = ck.get('train_record')
    if old is None:  # written before these records: it cannot tell
        print(f"note: {path} has no record of its training list; assuming it is unchanged")
    elif utils.record_difference(old, record, ('list_sha1', 'images_sha1', 'n')):
        common.fail(f"{path}: trained on {list_path} as it was before ("
                    f"{utils.record_difference(old, record, ('list_sha1', 'images_sha1', 'n'))})"
                    f"; delete it to retrain")
    print(f"ISSBA encoder: {'reusing' if ck['step'] >= c['issba_steps'] else 'resuming'} {path} "
          f"at step {ck['step']}/{c['issba_steps']}")
    return ck['step'], ck['history']


def _step_losses(c, enc, dec, lp, x, step, device):
    """One step's (loss, [secret BCE, image MSE, LPIPS, bit accuracy], image-loss weight): a seeded
    secret and dequantisation noise per step, so a resumed run repeats an uninterrupted one."""
    g = torch.Generator().manual_seed(c['seed'] * 1000003 + step)
    s = torch.randint(0, 2, (len(x), c['issba_secret_bits']), generator=g).float().to(device)
    noise = (torch.rand(x.shape, generator=g) - 0.5).to(device) / 255
    x_b = enc(x, s)
    logits = dec(x_b + noise)
    l_secret = F.binary_cross_entropy_with_logits(logits, s)
    l_image = F.mse_loss(x_b, x)
    w = min(1.0, max(0.0, step / max(1, c['issba_ramp_steps']) - 1.0))
    loss = l_secret + w * c['issba_w_image'] * l_image
    l_lpips = torch.zeros(())
    if lp is not None:
        l_lpips = lp(x_b, x, normalize=True).mean()
        loss = loss + w * c['issba_w_lpips'] * l_lpips
    return loss, [l_secret.item(), l_image.item(), l_lpips.item(),
                  bit_accuracy(logits.detach(), s).mean().item()], w


def _train(c, train_paths, device, enc, dec, opt, start, history, path, record):
    """Steps start+1 .. issba_steps, a checkpoint every issba_save_every steps and at the end."""
    lp = build_lpips(c, device)
    ds = common.PathImages(train_paths, utils.build_transform(c['image_size'], c['resize_size'],
                                                              'none'))
    loader = torch.utils.data.DataLoader(
        ds, batch_sampler=_StepBatches(len(ds), c['issba_batch'], start, c['issba_steps'],
                                       c['seed']), num_workers=c['num_workers'])
    enc.train()
    dec.train()
    t0, run = utils.Timer(), []
    for step, (x, _) in enumerate(loader, start + 1):
        loss, parts, w = _step_losses(c, enc, dec, lp, x.to(device), step, device)
        if not torch.isfinite(loss):
            common.fail(f"non-finite ISSBA loss at step {step} (last checkpoint kept in {path})")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        run.append(parts)
        if step % c['issba_save_every'] == 0 or step == c['issba_steps']:
            m = [float(v) for v in np.mean(run, 0)]
            rec = {'step': step, 'secret_bce': m[0], 'mse': m[1], 'lpips': m[2],
                   'bit_acc': m[3], 'psnr_db': float(10 * np.log10(1 / max(m[1], 1e-12))),
                   'w': w, 'time_s': round(t0(), 1)}
            history.append(rec)
            run = []
            print(f"ISSBA step {step}/{c['issba_steps']}: secret BCE {m[0]:.4f}, bit acc "
                  f"{m[3]:.3f}, MSE {m[1]:.5f} ({rec['psnr_db']:.1f} dB), w {w:.2f}, "
                  f"{t0():.0f} s")
            utils.save_checkpoint(path, {
                'format': CHECKPOINT_FORMAT, 'encoder': enc.state_dict(),
                'decoder': dec.state_dict(), 'opt': opt.state_dict(), 'step': step,
                'history': history, 'config': {k: c[k] for k in TRAIN_KEYS},
                'train_record': record,
                'git_commit': utils.git_commit()})


@torch.no_grad()
def held_out_accuracy(enc, dec, paths, secret, c, device):
    """Bit accuracy on PNG-rounded encoded held-out images: with the attack secret, with random
    secrets (seeded), and on the clean images (against the attack secret: should be near chance)."""
    acc_secret, acc_random, acc_clean = [], [], []
    g = torch.Generator().manual_seed(c['seed'] + 1)
    for x, _ in common.batches(paths, c, c['gen_batch_size']):
        x = x.to(device)
        s = secret.to(device).expand(len(x), -1)
        acc_secret += bit_accuracy(dec(to_uint8_grid(enc(x, s))), s).tolist()
        r = torch.randint(0, 2, s.shape, generator=g).float().to(device)
        acc_random += bit_accuracy(dec(to_uint8_grid(enc(x, r))), r).tolist()
        acc_clean += bit_accuracy(dec(x), s).tolist()
    return {'n_images': len(acc_secret), 'source': 'test list',
            'bit_acc_attack_secret': float(np.mean(acc_secret)),
            'bit_acc_random_secrets': float(np.mean(acc_random)),
            'bit_acc_clean_vs_secret': float(np.mean(acc_clean)),
            'exact_secret_recovered': float(np.mean(np.array(acc_secret) == 1.0))}


def main(c):
    if c['issba_secret_bits'] < 1 or c['issba_steps'] < 1 or c['issba_batch'] < 1:
        common.fail(f"issba_secret_bits, issba_steps and issba_batch must be >= 1, got "
                    f"{c['issba_secret_bits']}, {c['issba_steps']}, {c['issba_batch']}")
    if c['issba_depth'] < 1 or c['image_size'] % 2 ** c['issba_depth']:
        common.fail(f"image_size={c['image_size']} must be divisible by 2**issba_depth "
                    f"(issba_depth={c['issba_depth']} >= 1)")
    if c['issba_lpips'] not in ('none', 'alex'):
        common.fail(f"issba_lpips must be 'none' or 'alex', got {c['issba_lpips']!r}")
    d = common.load_inputs(c)
    chosen, pool = common.choose_poisons(d, c, 'others')
    device = utils.resolve_device(c['device'])
    utils.seed_everything(c['seed'])
    enc, dec, model_id = train_or_load(c, d['train_paths'], device)
    secret = secret_bits(c['issba_secret_bits'], c['seed'])
    rng = np.random.default_rng([c['seed'], 3])
    held = d['test_paths']
    if c['issba_eval_images'] and c['issba_eval_images'] < len(held):
        held = [held[i] for i in np.sort(rng.choice(len(held), c['issba_eval_images'], replace=False))]
    acc = held_out_accuracy(enc, dec, held, secret, c, device)
    print(f"ISSBA decoder on {acc['n_images']} held-out test images: bit accuracy "
          f"{acc['bit_acc_attack_secret']:.3f} (attack secret), {acc['bit_acc_random_secrets']:.3f} "
          f"(random secrets), {acc['bit_acc_clean_vs_secret']:.3f} (clean images vs the secret)")

    @torch.no_grad()
    def encode(x, idx):
        return enc(x.to(device), secret.to(device).expand(len(x), -1)).cpu()

    params = {'secret': secret.int().tolist(), 'secret_bits': c['issba_secret_bits'],
              'residual_max': c['issba_residual_max'], 'w_image': c['issba_w_image'],
              'lpips': c['issba_lpips']}
    return common.produce(c, d, 'issba', chosen, pool, 'target', encode, encode, params, model_id,
                          c['gen_batch_size'], lambda: {'issba_held_out': acc})


if __name__ == '__main__':
    main(utils.configure(globals()))
