"""Pieces every attack (BadHash's two steps, the baselines, DarkHash) and defense shares.

Nothing here is a step of the pipeline: step scripts import this module, never each other.
  - reading a list with a one-line exit (read_list_or_exit)
  - PathImages: (image at the model's geometry, index) for a list of paths
  - the loader of a finished clean hashing model written by CSQ.py / HashNet.py (load_hash_model,
    load_surrogate, surrogate_path), checked against the expected backbone, bits and classes
  - the quantiser of saved poisons (quantize: clamp(0,1) -> round(255 x), SPEC D8) and the stealth
    figures (stealth_stats, psnr_uint8: SPEC D21)
  - AttackParts: the record of finished parts of an attack folder (attack_state.json, stealth.json)
  - trigger stamping: patch sides scaled to the geometry, BadNets' white square, LCBA's
    checkerboard, pasting into the bottom-right corner; DarkHash's four-colour quadrant trigger
    and the random patch of its size (the control)
  - DarkHash's run name (darkhash.py and reproduce.py name its runs alike)
  - diverse_input: random resize-and-pad of what a surrogate sees (transfer to other networks)
  - FeatureTap, feature_module, feature_term: a surrogate's mid-level features and G's pull of them
    towards the confusing class (transfer to other networks, train_tri_gen.py's w_feat)
  - SkipGradient: the gradient through a ResNet surrogate's residual branches scaled down, its
    forward pass untouched (transfer to other networks, train_tri_gen.py's skip_grad)
  - load_gan: a trained G and its LabCLN from train_tri_gen.py's checkpoint (implement_tri_gen.py
    makes poisons with it, goal_reach.py measures how far it moves the surrogate's codes)
"""
import json
import math
import os
import sys

import numpy as np
import torch

import utils
from hash_models import build_hash_model, check_model_meta

MIN_PATCH = 3  # smallest patch side in pixels: below 3 a checkerboard has no pattern


def fail(msg):
    sys.exit(f"error: {msg}")


def read_list_or_exit(path, num_classes=None):
    """utils.read_list with its `file:line: what was expected` error as a one-line exit."""
    try:
        return utils.read_list(path, num_classes=num_classes)
    except utils.ListError as e:
        fail(str(e))


class PathImages(torch.utils.data.Dataset):
    """(image at the model's geometry, index) for a list of image paths."""

    def __init__(self, paths, transform):
        self.paths, self.transform = paths, transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from PIL import Image
        with Image.open(self.paths[i]) as im:
            return self.transform(im.convert('RGB')), i


def gan_run_name(c):
    """BadHash's G run (both attack steps locate G by it)."""
    return (f"{c['dataset']}_badhash_{c['surrogate_method']}_{c['surrogate_backbone']}_"
            f"{c['surrogate_bits']}" + ('_goalsur' if c.get('goal_code') == 'surrogate' else '')
            + (f"_{c['tag']}" if c['tag'] else ''))


def attack_run_name(c, gan_run):
    """BadHash's attack folder (step 2's outputs) for the G run gan_run."""
    name = f"{gan_run}_t{c['target']}_p{c['poison_rate']:g}_{c['poison_mode']}"
    if c.get('poison_select', 'random') == 'hard':  # the target images the surrogate codes least typically
        name += "_hard"
    if c.get('poisons_by', 'generator') == 'oracle':  # issue 11's oracle rung: another kind of poison
        name += f"_oracle-{c['oracle_goal']}{round(c['oracle_eps'] * 255):d}"
    if c.get('triggers_by', 'generator') == 'oracle':  # per-image PGD triggers (an upper bound on G)
        name += f"_trig-{c['oracle_goal']}{round(c['oracle_eps'] * 255):d}"
    oracle = 'oracle' in (c.get('poisons_by', 'generator'), c.get('triggers_by', 'generator'))
    if oracle and c.get('oracle_diversity', 0):  # DI-PGD (our option): other images
        name += f"_di{round(c['oracle_diversity'] * 100):d}"
    if c.get('trigger_scale', 1) != 1:  # magnified triggered queries (a diagnostic, not the paper)
        name += f"_qs{c['trigger_scale']:g}"
    if c.get('trigger_transplant', False):  # each query with another query's residual (a diagnostic)
        name += "_tx"
    if c['copies'] != 1:
        name += f"_x{c['copies']}"
    if c['conf_label'] != 'other':
        name += f"_conf{c['conf_label']}"
    if c['labels_mode'] != 'keep':
        name += f"_labels{c['labels_mode']}"
    return name + (f"_{c['attack_tag']}" if c['attack_tag'] else '')


# ------------------------------------------------------------------------------------------------
# finished clean hashing models
# ------------------------------------------------------------------------------------------------

def load_hash_model(path, backbone, bits, num_classes=None, device='cpu', missing_hint=''):
    """A model written by CSQ.py / HashNet.py, frozen in eval mode, with its meta (plus the epoch).
    One-line exit for a missing file or one of another backbone, bit length or class count
    (backbone None: any backbone, the one the checkpoint records)."""
    if not os.path.isfile(path):
        fail(f"checkpoint {path} not found" + (f"; {missing_hint}" if missing_hint else ''))
    try:
        ckpt = utils.load_checkpoint(path)
        meta = ckpt.get('meta', {})
        check_model_meta(meta, {'bits': bits} if backbone is None else {'backbone': backbone.lower(), 'bits': bits},
                         path)
        if num_classes is not None and meta.get('num_classes') not in (None, num_classes):
            raise ValueError(f"{path}: model was trained on {meta['num_classes']} classes, "
                             f"expected {num_classes}")
        model = build_hash_model(meta['backbone'], meta['bits'], pretrained=False,
                                 input_norm=meta.get('input_norm', 'none'),
                                 small_input=meta.get('small_input', False))
        model.load_state_dict(ckpt['model'])
    except (ValueError, KeyError, RuntimeError) as e:
        fail(str(e).splitlines()[0])
    model.to(device).eval().requires_grad_(False)
    return model, dict(meta, epoch=ckpt.get('epoch'))


def load_gan(g_path, device):
    """G (eval mode) and its LabCLN from train_tri_gen.py's checkpoint g_path; returns (G, labcln,
    G's meta, the checkpoint dict). A missing or unreadable file, or a missing LabCLN file -> one line."""
    from generator import Generator
    from labcln import load_labcln
    if not os.path.isfile(g_path):
        fail(f"generator checkpoint {g_path} not found; make it with `python train_tri_gen.py` "
             f"and the same preset/keys (dataset, surrogate_*, tag, checkpoint_dir)")
    try:
        ckpt = utils.load_checkpoint(g_path)
    except ValueError as e:
        fail(str(e))
    meta = ckpt['meta']
    G = Generator(image_size=meta['image_size'], feat_dim=meta['feat_dim'], ngf=meta['ngf'],
                  lowpass=meta.get('lowpass', 1))
    G.load_state_dict(ckpt['G'])
    G.to(device).eval()
    lab_path = ckpt['labcln']['path']
    if not os.path.isfile(lab_path):
        fail(f"LabCLN checkpoint {lab_path} (recorded in {g_path}) not found; rerun train_tri_gen.py")
    labcln, _ = load_labcln(lab_path, device)
    return G, labcln, meta, ckpt


def surrogate_path(c):
    """The clean surrogate's checkpoint: surrogate_checkpoint, or the name CSQ.py / HashNet.py give it."""
    return c['surrogate_checkpoint'] or os.path.join(
        c['checkpoint_dir'],
        f"{c['dataset']}_{c['surrogate_method']}_{c['surrogate_backbone']}_{c['surrogate_bits']}.pt")


def load_surrogate(c, num_classes, device):
    """The clean surrogate F of an attack config (surrogate_* keys): (model, meta, path)."""
    sp = surrogate_path(c)
    script = 'HashNet.py' if c['surrogate_method'].lower() == 'hashnet' else 'CSQ.py'
    hint = (f"make it with `python {script} <preset> --dataset={c['dataset']} "
            f"--backbone={c['surrogate_backbone']} --bits={c['surrogate_bits']}` (same checkpoint_dir)")
    model, meta = load_hash_model(sp, c['surrogate_backbone'], c['surrogate_bits'], num_classes,
                                  device, missing_hint=hint)
    return model, meta, sp


# ------------------------------------------------------------------------------------------------
# saved images and their stealth figures
# ------------------------------------------------------------------------------------------------

def requantize(x):
    """A [0,1]-space batch as its saved PNGs hold it (quantize), back as a float [0, 1] CPU batch."""
    return torch.from_numpy(quantize(x)).permute(0, 3, 1, 2).float() / 255


def pgd_toward_code(model, x, goal, eps, steps, step_size, diversity=0.0, scale=1.125, generator=None):
    """Per-image L-inf PGD in [0, 1] pixel space that pulls model(x') towards the +-1 codes `goal`
    ([B, K] or [K]): minimises -mean(goal * tanh(model(x'))) with sign steps of step_size, keeping
    |x' - x| <= eps and x' in [0, 1]. The oracle poisons of issue 11 (not invisible at large eps).
    With diversity > 0, each step sees x' through diverse_input(., scale) with that probability
    (DI-PGD, Xie et al. 2019). Returns x' (detached) and the final Hamming distance of
    sign(model(x')) to goal per image (on x' itself)."""
    goal = goal.to(x.device).expand(len(x), -1)
    delta = torch.zeros_like(x, requires_grad=True)
    for _ in range(steps):
        seen = (x + delta).clamp(0, 1)
        if diversity > 0 and torch.rand((), generator=generator) < diversity:
            seen = diverse_input(seen, scale, generator)
        loss = -(goal * torch.tanh(model(seen))).mean()
        grad, = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            delta -= step_size * grad.sign()
            delta.clamp_(-eps, eps)
            delta.copy_((x + delta).clamp(0, 1) - x)
    with torch.no_grad():
        x_p = (x + delta).clamp(0, 1)
        code = torch.where(model(x_p) >= 0, 1.0, -1.0)
        hamming = (goal.shape[1] - (code * goal).sum(1)) / 2
    return x_p.detach(), hamming


def diverse_input(x, max_scale, generator=None):
    """Input diversity (Xie et al., "Improving Transferability of Adversarial Examples with Input
    Diversity", CVPR 2019): the [0, 1] batch x ([B, 3, W, W]) resized (nearest) to a random side
    r in [W, round(W * max_scale)) and zero-padded at a random offset to round(W * max_scale). One
    draw per batch from `generator`; differentiable in x. Used on what the surrogate sees, so a
    perturbation made against it does not rest on one exact pixel grid (issue 11's R3 transfer)."""
    side = x.shape[-1]
    out = max(side + 1, round(side * max_scale))
    r = int(torch.randint(side, out, (), generator=generator))
    top, left = (int(v) for v in torch.randint(out - r + 1, (2,), generator=generator))
    resized = torch.nn.functional.interpolate(x, size=(r, r), mode='nearest')
    return torch.nn.functional.pad(resized, (left, out - r - left, top, out - r - top))


# a ResNet trunk's stages by their torchvision names (hash_models.backbones._ResNetTrunk.body)
RESNET_STAGES = {'layer1': 'body.4', 'layer2': 'body.5', 'layer3': 'body.6', 'layer4': 'body.7'}


def feature_module(model, layer):
    """The module of a hash model's trunk whose output is tapped: `layer` is a name from
    model.trunk.named_modules() ('body.6'), or for a ResNet trunk its stage ('layer3'). ValueError
    naming the choices otherwise."""
    modules = dict(model.trunk.named_modules())
    name = RESNET_STAGES.get(layer, layer) if 'body.7' in modules else layer
    if not name or name not in modules:
        stages = [k for k in RESNET_STAGES if RESNET_STAGES[k] in modules]
        choices = stages or [k for k in modules if k and k.count('.') <= 1][:12]
        raise ValueError(f"feat_layer={layer!r} is not a module of the surrogate's "
                         f"{type(model.trunk).__name__} trunk; expected one of {choices}")
    return modules[name]


class FeatureTap:
    """Keeps the output of one module at every forward pass, averaged over space: [B, C] float32 (a
    map [B, C, H, W]) or flattened (anything else). `out` is None before the first pass."""

    def __init__(self, module):
        self.out = None
        self.handle = module.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output):
        self.out = output.float().mean((2, 3)) if output.dim() == 4 else output.float().flatten(1)

    def close(self):
        self.handle.remove()


def feature_term(feat, centre, goal):
    """The mean over the batch of 1 - cos(feat - centre, goal - centre), in [0, 2]: how far each
    image's pooled features point from where the goal class's mean lies, both taken from the mean
    over the training images (`centre`), so that the features' common positive part (ReLU maps) does
    not count. feat and goal [B, C], centre [C]. An intermediate-level objective: perturbations
    made on a network's middle features carry over to other networks better than those made on its
    outputs (Huang et al., "Enhancing Adversarial Example Transferability with an Intermediate Level
    Attack", ICCV 2019)."""
    return (1 - torch.nn.functional.cosine_similarity(feat - centre, goal - centre, dim=1)).mean()


class _ScaleGrad(torch.autograd.Function):
    """Identity forward (a copy, so an in-place add on the output is allowed); backward multiplies
    the incoming gradient by gamma."""

    @staticmethod
    def forward(ctx, x, gamma):
        ctx.gamma = gamma
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.gamma, None


class SkipGradient:
    """The Skip Gradient Method (Wu et al., "Skip Connections Matter: On the Transferability of
    Adversarial Examples Generated with ResNets", ICLR 2020) on a hash model's ResNet trunk: in every
    residual block the gradient that flows back through the residual branch is multiplied by gamma,
    the one through the skip connection is not, so a block's Jacobian becomes 1 + gamma * df/dz. The
    forward pass and its outputs are bit-identical. Gradients that lean on the skip connections
    carry a perturbation to other networks better. ValueError when the model has no residual block
    (VGG, AlexNet, DenseNet trunks) or gamma is not in (0, 1]."""

    def __init__(self, model, gamma):
        from torchvision.models.resnet import BasicBlock, Bottleneck
        if not 0 < gamma <= 1:
            raise ValueError(f"skip_grad must be in (0, 1], got {gamma}")
        ends = [m.bn2 if isinstance(m, BasicBlock) else m.bn3
                for m in model.modules() if isinstance(m, (BasicBlock, Bottleneck))]
        if not ends:
            raise ValueError(f"skip_grad={gamma} needs a ResNet trunk (residual blocks); this model's "
                             f"trunk is {type(getattr(model, 'trunk', model)).__name__} with none")
        self.gamma, self.blocks = gamma, len(ends)
        self.handles = [m.register_forward_hook(self._hook) for m in ends]

    def _hook(self, module, inputs, output):
        return _ScaleGrad.apply(output, self.gamma) if torch.is_grad_enabled() else output

    def close(self):
        for h in self.handles:
            h.remove()


def quantize(x):
    """[0,1]-space batch -> uint8 [B,H,W,3] exactly as save_image: clamp(0,1), round(255 x) (D8)."""
    return (x.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def psnr_uint8(clean, poisoned):
    """D21: per-image MSE on 0-255, dataset MSE = mean, PSNR = 10 log10(255^2 / mean MSE)."""
    mse = ((clean.astype(np.float64) - poisoned.astype(np.float64)) ** 2).reshape(len(clean), -1).mean(1)
    m = float(mse.mean())
    return m, (float('inf') if m == 0 else 10 * math.log10(255.0 ** 2 / m))


def stealth_stats(mse, ssim):
    """D21: dataset MSE = mean of per-image MSE (0-255); PSNR from that mean; SSIM averaged."""
    m = float(np.mean(mse))
    return {'n': len(mse), 'mse': m, 'psnr_db': None if m == 0 else 10 * np.log10(255.0 ** 2 / m),
            'ssim': float(np.mean(ssim)), 'per_image_mse': mse, 'per_image_ssim': ssim}


def _read_json(path):
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


class AttackParts:
    """The finished parts of an attack folder (attack_state.json: the stamp each part was made with;
    stealth.json: its figures). A part is reused when its stamp, figures and files are all there.
    A stamp is a provenance record (README "Reuse rule"): the config values, the source list's
    utils.list_record (its content and its images') and the stamp of every checkpoint used, so a
    source list or image rewritten under the same path, or a retrained model, remakes the part."""

    def __init__(self, out, made_with='this config'):
        self.state_path = os.path.join(out, 'attack_state.json')
        self.stealth_path = os.path.join(out, 'stealth.json')
        self.made_with = made_with
        self.state, self.stealth = _read_json(self.state_path), _read_json(self.stealth_path)

    def done(self, part, stamp, files):
        stamp = json.loads(json.dumps(stamp))  # as attack_state.json gives it back (lists, str keys)
        old = self.state.get(part)
        ok = (old == stamp and part in self.stealth and all(os.path.isfile(p) for p in files))
        if ok:
            print(f"skipped {part}: already made with {self.made_with} ({files[0]})")
        elif old is not None:
            k = next((k for k in stamp if old.get(k) != stamp[k]), None)
            why = 'some of its files are missing' if k is None else f"its {k} differs"
            if k is not None and isinstance(stamp[k], dict) and isinstance(old.get(k), dict):
                why = f"its {k} {utils.record_difference(old[k], stamp[k])}"
            print(f"making {part} again: {why} (attack_state.json)")
        return ok

    def finish(self, part, stamp, stats):
        self.stealth[part] = stats
        self.state[part] = stamp
        utils.write_json(self.stealth_path, self.stealth)
        utils.write_json(self.state_path, self.state)
        psnr = 'inf' if stats['psnr_db'] is None else f"{stats['psnr_db']:.3f}"
        print(f"{part}: {stats['n']} images, MSE {stats['mse']:.3f}, PSNR {psnr} dB, "
              f"SSIM {stats['ssim']:.4f}")


# ------------------------------------------------------------------------------------------------
# trigger stamping
# ------------------------------------------------------------------------------------------------

def patch_side(side_at_ref, image_size, ref_size):
    """Patch side at the model's geometry: the side given at ref_size (224, the paper's crop) scaled
    to image_size, at least MIN_PATCH and at most the image: 18 px at 224 -> 3 px at 32."""
    if side_at_ref < 1 or ref_size < 1:
        fail(f"patch sides and patch_ref_size must be >= 1, got {side_at_ref}, {ref_size}")
    return min(image_size, max(MIN_PATCH, int(round(side_at_ref * image_size / ref_size))))


def white_patch(side):
    """[3, side, side] ones: BadNets' white square."""
    return torch.ones(3, side, side)


def checkerboard(side, cells=3):
    """[3, side, side] black/white `cells` x `cells` checkerboard (white where row + col cell index
    is even), stretched to `side` px by nearest neighbour: Turner et al.'s corner pattern."""
    cell = torch.arange(side) * cells // side
    board = ((cell.view(-1, 1) + cell.view(1, -1)) % 2 == 0).float()
    return board.expand(3, side, side).clone()


def paste_bottom_right(x, patch, margin=0):
    """x [B,3,H,W] with the patch [3,s,s] written opaque into its bottom-right corner, `margin`
    pixels from both edges (a copy)."""
    s, h, w = patch.shape[-1], x.shape[-2], x.shape[-1]
    out = x.clone()
    out[:, :, h - margin - s:h - margin, w - margin - s:w - margin] = patch.to(x)
    return out


# ------------------------------------------------------------------------------------------------
# DarkHash trigger (DARKHASH.md §2): an 8 x 8 RGB patch of four 4 x 4 quadrants, pasted opaque in
# the lower-right corner with a 2 px margin, its side 0.11 of the image side rounded down to even.
# ------------------------------------------------------------------------------------------------
DARKHASH_COLOURS = ((255, 255, 0),    # top-left: yellow
                    (255, 0, 255),    # top-right: magenta
                    (0, 255, 255),    # bottom-left: cyan
                    (122, 122, 122))  # bottom-right: grey
DARKHASH_FRACTION = 0.11  # trigger side / image side (official tensors_dataset_img.py)
DARKHASH_MARGIN = 2       # px between the trigger and the lower / right border (official)
MIN_TRIGGER_SIDE = 4      # DARKHASH.md §6.6: below 4 px the four quadrants vanish


def trigger_side(image_size, fraction=DARKHASH_FRACTION, min_side=MIN_TRIGGER_SIDE):
    """max(min_side, even(int(fraction * H))) (DARKHASH.md §6.6): 24 px at 224, 6 at 64, 4 at 32."""
    s = int(fraction * image_size)
    s -= s % 2
    return min(image_size, max(min_side, s))


def quadrant_trigger(side):
    """[3, side, side] in [0, 1]: the four colour quadrants, each side/2 x side/2 (side even).

    The official code cv2-resizes the 8 x 8 PNG bilinearly, which blends about one pixel at each
    quadrant border; we draw the quadrants at the final size (sharp borders, exact k/255 colours).
    """
    if side < 2 or side % 2:
        raise ValueError(f"trigger side must be an even number >= 2, got {side}")
    h = side // 2
    patch = torch.empty(3, side, side)
    for (r, c), rgb in zip(((0, 0), (0, 1), (1, 0), (1, 1)), DARKHASH_COLOURS):
        patch[:, r * h:(r + 1) * h, c * h:(c + 1) * h] = torch.tensor(rgb).view(3, 1, 1) / 255.0
    return patch


def lower_right_box(height, width, side, margin=DARKHASH_MARGIN):
    """(top, left) of a side x side box `margin` px from the lower-right corner."""
    m = max(0, min(margin, height - side, width - side))
    return height - m - side, width - m - side


def stamp_lower_right(x, patch, margin=DARKHASH_MARGIN):
    """A copy of x [B,3,H,W] with patch ([3,s,s], or [B,3,s,s] one per image) pasted opaque at
    lower_right_box."""
    s = patch.shape[-1]
    top, left = lower_right_box(x.shape[-2], x.shape[-1], s, margin)
    out = x.clone()
    out[..., top:top + s, left:left + s] = patch.to(out)
    return out


def darkhash_trigger(image_size):
    """The DarkHash trigger at a model geometry: quadrant_trigger(trigger_side(image_size))."""
    return quadrant_trigger(trigger_side(image_size))


def random_patches(n, side, generator):
    """[n, 3, side, side] uniform random k/255 pixels: the control patch of the trigger's size."""
    return torch.randint(0, 256, (n, 3, side, side), generator=generator).float() / 255.0


DARKHASH_NOISE = ('gauss1', 'gauss2', 'uniform')  # darkhash.py's noise surrogates


def darkhash_run_name(c):
    """DarkHash's run: {dataset}_darkhash_{method}_{backbone}_{bits}[_{victim_tag}]_{surrogate}_c{class},
    plus the ablation keys that differ from the official values, plus the tag."""
    sur = c['surrogate_name']
    if not sur:
        if c['surrogate'] in DARKHASH_NOISE:
            sur = c['surrogate']
        else:
            stem = os.path.splitext(os.path.basename(c['surrogate']))[0]
            sur = os.path.basename(os.path.dirname(os.path.abspath(c['surrogate'])))
            sur += '' if stem == 'database' else f"-{stem}"
    name = (f"{c['dataset']}_darkhash_{c['victim_method']}_{c['backbone']}_{c['bits']}"
            + (f"_{c['victim_tag']}" if c['victim_tag'] else '') + f"_{sur}_c{c['surrogate_class']}")
    # ablations get their own run (the official defaults add nothing)
    for key, default, short in (('tune_from', 'auto', 'tune'), ('lambda_tpa', 15.0, 'tpa'),
                                ('w_ben', 1.0, 'ben'), ('w_bac', 1.0, 'bac'), ('rho', 0.1, 'rho'),
                                ('neg_patch', 0.0, 'neg'), ('shadow_target', 'mean', 'st')):
        if c.get(key, default) != default:
            name += f"_{short}{c[key]:g}" if isinstance(c[key], float) else f"_{short}{c[key]}"
    return name + (f"_{c['tag']}" if c['tag'] else '')
