"""Step 1 of the attack: train LabCLN, then the trigger generator G against a frozen surrogate.

    python train_tri_gen.py                                        # paper scale (ImageNet-100)
    python train_tri_gen.py configs/demo.py configs/demo_attack.py # the toy demo
    python train_tri_gen.py configs/demo.py configs/demo_attack.py --loss_preset=code

What happens (paper §3.2-3.5, SPEC §1.3-1.5, §2.3-2.5, decisions D1-D9):
  1. preprocess: read the training list, load the clean surrogate hash model F written by CSQ.py /
     HashNet.py (checkpoint/{dataset}_{method}_{backbone}_{bits}.pt), frozen, eval mode.
  2. LabCLN: trained once on the distinct training label rows and cached in
     checkpoint/{dataset}_labcln_{bits}_{views}_{digest}.pt; gives r_b and the centroid code h_c.
  3. GAN: x_b = G(normalize(x), r_b(y_s)) is used directly as a [0,1] image (D8). D is trained every
     `d_every` iterations with targets [y, 0] (real) and [y_s, 1] (fake); G every iteration with
     w_hash * L_h + w_rec * L_r + w_bd * L_bd in the chosen preset (D1, see g_loss_paper/g_loss_code).
  4. log / save: one stdout line per `log_every` steps, results/{run}/log.jsonl, a debug grid
     (rows clean | poisoned | residual x10) in results/{run}/samples/, an atomic checkpoint
     checkpoint/{run}.pt after every epoch (rerunning the same command resumes from it) and
     results/{run}/train_summary.json at the end.
"""
import hashlib
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import utils
from discriminator import Discriminator, discriminator_targets
from attack_common import (FeatureTap, SkipGradient, diverse_input, feature_module, feature_term, gan_run_name,
                           load_hash_model, load_surrogate, psnr_uint8, quantize, requantize, surrogate_path)
from generator import Generator, apply_generator, generator_budget, init_generator_output
from labcln import confusing_code, load_labcln, train_labcln

# ---- config ------------------------------------------------------------------------------------
# data
dataset = 'imagenet'          # name used in run names (and for the paper's per-dataset weights)
data_dir = 'data/imagenet'    # folder with train.txt
train_list = ''               # '' = {data_dir}/train.txt (the official code trains G on all of it)
image_size = 224              # centre crop, G works at this size only (SPEC §2.4); 32/64 for small data
resize_size = 256             # Resize before the crop (official code); 0 = none
# surrogate (B-network, D17): the clean model written by CSQ.py / HashNet.py
surrogate_method = 'CSQ'      # CSQ | HashNet: part of the checkpoint name
surrogate_backbone = 'resnet50'  # paper: B-ResNet50 or B-VGG11
surrogate_bits = 64           # official code_length (D17); also LabCLN's K
surrogate_checkpoint = ''     # '' = {checkpoint_dir}/{dataset}_{method}_{backbone}_{bits}.pt
extra_surrogates = ''         # our option, off = paper: comma-separated checkpoints of more clean hash models
                              # (CSQ.py / HashNet.py; any backbone, the same bits and classes); G's hash term is
                              # then the mean over F and these, an ensemble (Liu et al. 2017), so the trigger
                              # transfers to other networks (issue 11). goal_code='surrogate' uses F's codes
checkpoint_dir = 'checkpoint'
out_dir = 'results'
target = 0                    # target class index; excluded from the sampled confusing labels
# G objective (D1): two coherent presets, never mixed
loss_preset = 'paper'         # 'paper' (eq.7-10, relaxed) | 'code' (official badhash.py)
w_hash = None                 # None = preset: paper 80 (ImageNet) / 100 (COCO); code 10 (ResNet) / 5 (VGG)
w_rec = None                  # None = preset: paper 5; code 200
w_bd = None                   # None = preset: paper 200; code 1
conf_mode = 'sample'          # D2: 'sample' per sample over non-target label rows | 'code' conf_labels[0] | '<idx>'
goal_code = 'labcln'          # what L_h pulls F(x_b) to: 'labcln' = LabCLN's centroid code h_c of the
                              # confusing label (paper eq.7) | 'surrogate' = our option: sign of the mean
                              # tanh(F(x)) over training images with that label row, a code F does output
                              # (LabCLN never sees F, SPEC §2.8; docs/RESULTS.md measures the difference)
hash_norm = False             # our choice, off = paper: L_h / K (in [0,1]) in the paper preset, so the hash
                              # weight does not scale with K (SPEC §8's prototype did this)
# LabCLN (D4, D5: official code unless noted)
labcln_steps = 1000           # official code
labcln_batch = 128            # official code
labcln_lr = 1e-4              # official code (Adam, betas (0.5, 0.999), MultiStep 50%/75%)
labcln_views = 'paper'        # 'paper' eps (0.2, 0.3) (D4) | 'code' (0.2, raw) + argmax smoothing
labcln_hidden = 4096          # official code
labcln_feat = 512             # official code (r_b dimension)
tau = 0.5                     # NT-Xent temperature (official code; paper silent)
# GAN optimisation (D6)
batch_size = 32               # paper (official code: 64)
epochs = 100                  # paper and official code
lr = 1e-4                     # paper, Adam for G and D
beta1 = 0.5                   # official code (paper silent)
lr_policy = 'linear'          # official: constant for the first half, then linear to lr/51 | 'constant'
d_every = 3                   # official code: one D step every 3 iterations
ngf = 64                      # official G width
ndf = 64                      # official D width
g_output = 'image'            # 'image' = official: G's tanh output is the poisoned image (D8) | 'residual':
                              # our option, x_b = clamp(x + tanh output, 0, 1) with the head conv zero-
                              # initialised, so G starts as the identity (a CPU-budget demo cannot wait for
                              # the full-image output to learn it, SPEC §8); layers unchanged
g_eps = 0.0                   # our option, g_output='residual' only: x_b = clamp(x + g_eps * tanh output)
                              # (an L-inf budget; 8/255 keeps PSNR >= 30 dB); 0 = unbounded residual
g_psnr = 0.0                  # our option, 0 = off (paper); g_output='residual' only: G's residual (after g_eps, which
                              # may then be larger than 8/255) is scaled down per image to at most the L2 norm of
                              # this PSNR (generator.psnr_project): the stealth bar as an energy budget, which
                              # lets G put more of it where it moves the surrogate (issue 11)
g_lowpass = 1                 # our option, 1 = paper: G's output averaged over k x k blocks and upsampled
                              # bilinearly (generator.Generator lowpass), a low-frequency trigger that may
                              # carry over to other networks better (issue 11); g_output='residual' only
input_diversity = 0.0         # our option, off = paper: the probability per batch that the surrogate sees G's
                              # output resized and padded at random (attack_common.diverse_input, Xie et al.
                              # 2019) in the hash term, so the trigger transfers to other networks (issue 11)
diversity_scale = 1.125       # that padded side over the image side (DI's 299 -> 330 at 224 px is 1.10)
w_feat = 0.0                  # our option, 0 = off (paper): weight of a feature term added to G's loss, which
                              # pulls the surrogate's features of x_b at feat_layer (averaged over space) towards
                              # the mean of the confusing label's training images, both taken from the mean
                              # over all training images (attack_common.feature_term, in [0, 2]): middle
                              # features carry a perturbation to other networks better than the codes (issue 11)
feat_goal = 'confusing'       # where w_feat pulls: 'confusing' (the confusing label's mean, above) | 'empty': the
                              # direction in which the training features vary most once every class mean's
                              # offset from their mean is projected out: a region no class's mean occupies, as
                              # LabCLN's code is in the code space (issue 11: a pull towards a class implanted less)
feat_layer = 'layer3'         # the surrogate trunk's module w_feat taps: a ResNet stage ('layer1'..'layer4')
                              # or a name from trunk.named_modules()
skip_grad = 1.0               # our option, 1 = off (paper): the Skip Gradient Method on the surrogates (every
                              # one must be a ResNet): the gradient of G's hash and feature terms through each
                              # residual block's branch is multiplied by skip_grad, the skip path's is not
                              # (attack_common.SkipGradient; Wu et al. ICLR 2020 use 0.2-0.5), so the trigger
                              # leans on what the skip connections pass on, which carries to other networks
                              # better (issue 11); the surrogate's outputs are unchanged
rec_warmup_epochs = 0         # our choice, off = paper: first epochs train G on w_rec * L_r alone (no D
                              # step), so the full-image tanh output learns the identity first (SPEC §8)
lpips = 'alex'                # D9: 'alex' (calibrated LPIPS) | 'alex_random_trunk' (offline fallback) | 'none'
lpips_inputs = 'normalized'   # D9: 'normalized' (normalize=True) | 'code' (raw [0,1], official bug)
# logging and run
log_every = 50                # steps between stdout lines / log.jsonl records
sample_every = 200            # steps between debug grids (also at every epoch end); 0 = epoch ends only
seed = 0
device = 'auto'               # auto | cpu | cuda
num_workers = 4
tag = ''                      # suffix of the run name
# speed (README "Speed and scale"; none of these is part of the run name)
dtype = 'float32'             # 'float32' (reproduction) | 'bfloat16': autocast for G, D and the surrogate, a
                              # CUDA speed option; LPIPS, LabCLN and every loss stay float32
channels_last = False         # NHWC memory layout for G, D, the surrogate and the images
cache = 'none'                # 'none' (decode every epoch, official) | 'disk': decoded-image cache (utils.ImageCache)
cache_dir = 'cache'           # where cache='disk' keeps its files
# ------------------------------------------------------------------------------------------------

CHECKPOINT_FORMAT = 1
LABCLN_FORMAT = 1
# keys that may change between an interrupted run and its resumption
RESUME_FREE_KEYS = {'device', 'num_workers', 'epochs', 'log_every', 'sample_every', 'cache',
                    'cache_dir'}
# keys added after runs were stored, with the value those runs had in effect
LATER_KEYS = {'dtype': 'float32', 'channels_last': False, 'cache': 'none', 'cache_dir': 'cache',
              'goal_code': 'labcln', 'input_diversity': 0.0, 'diversity_scale': 1.125,
              'extra_surrogates': '', 'g_lowpass': 1, 'g_psnr': 0.0, 'w_feat': 0.0, 'feat_layer': 'layer3',
              'feat_goal': 'confusing', 'skip_grad': 1.0}
ALEXNET_FILE = 'alexnet-owt-7be5be79.pth'  # torchvision's AlexNet weights, used by LPIPS 'alex'
ALEXNET_URL = 'https://download.pytorch.org/models/' + ALEXNET_FILE
DEBUG_IMAGES = 8


# ================================================================================================
# loss presets (D1): pure functions of tensors, checked by tests/test_attack_steps.py
# ================================================================================================

def default_weights(preset, dataset_name, backbone):
    """(w_hash, w_rec, w_bd) of a preset (SPEC D1)."""
    if preset == 'paper':  # paper L246: (alpha1, alpha2, alpha3)
        return (100.0 if 'coco' in dataset_name.lower() else 80.0), 5.0, 200.0
    if preset == 'code':   # badhash.py:190-191, rec_w 200, dis_w 1
        return (5.0 if backbone.lower().startswith('vgg') else 10.0), 200.0, 1.0
    raise ValueError(f"loss_preset must be 'paper' or 'code', got {preset!r}")


def g_loss_paper(x_b, x, hash_out, h_c, d_fake, y_s, lpips_mean, weights, hash_norm=False):
    """Paper preset G loss (eq.6-9, relaxed):
        L_h  = mean_i (K - tanh(F(x_b)_i) . h_c) / 2   (divided by K when hash_norm, our option;
               hash_out may be a list of several surrogates' outputs: L_h is then the mean over them)
        L_r  = mean_i ||x_b - x||_2 (over C*H*W) + lpips_mean
        L_bd = mean_i ||sigmoid(D(x_b)) - [y_s, 0]||_2
    weights = (w_hash, w_rec, w_bd). Returns (total, {'hash', 'rec', 'bd'} tensors)."""
    k = h_c.shape[1]
    l_h = torch.stack([((k - (torch.tanh(out.float()) * h_c).sum(1)) / 2).mean()
                       for out in _outputs(hash_out)]).mean()
    if hash_norm:
        l_h = l_h / k
    l_r = (x_b - x).flatten(1).norm(dim=1).mean() + lpips_mean
    l_bd = (torch.sigmoid(d_fake) - discriminator_targets(y_s, fake=False)).norm(dim=1).mean()
    total = weights[0] * l_h + weights[1] * l_r + weights[2] * l_bd
    return total, {'hash': l_h, 'rec': l_r, 'bd': l_bd}


def _outputs(hash_out):
    """The hash outputs a G loss averages its hash term over: one tensor, or a list (extra_surrogates)."""
    return hash_out if isinstance(hash_out, (list, tuple)) else [hash_out]


def d_loss_paper(d_real, y, d_fake, y_s):
    """Paper preset D loss (eq.10): 0.5 (mean_i ||s(D(x)) - [y,0]||_2 + mean_i ||s(D(x_b)) - [y_s,1]||_2)."""
    real = (torch.sigmoid(d_real) - discriminator_targets(y, fake=False)).norm(dim=1).mean()
    fake = (torch.sigmoid(d_fake) - discriminator_targets(y_s, fake=True)).norm(dim=1).mean()
    return 0.5 * (real + fake)


def g_loss_code(x_b, x, hash_out, h_c, d_fake, y_s, lpips_mean, weights, hash_norm=False):
    """Official code's G loss (badhash.py:173-190):
        w_rec * (MSE(x_b, x) + lpips_mean) + w_hash * (1 - mean(F_raw(x_b) * h_c))
        + w_bd * MSE(D_raw(x_b), [y_s, 0])
    Returns (total, {'hash', 'rec', 'bd'} tensors, unweighted). hash_norm must be False (the
    code's term is already a mean). A list of hash outputs (an ensemble) gives the mean hash term."""
    if hash_norm:
        raise ValueError("hash_norm applies to the paper preset only")
    l_r = F.mse_loss(x_b, x) + lpips_mean
    l_h = torch.stack([1 - (out.float() * h_c).mean() for out in _outputs(hash_out)]).mean()
    l_bd = F.mse_loss(d_fake, discriminator_targets(y_s, fake=False))
    total = weights[0] * l_h + weights[1] * l_r + weights[2] * l_bd
    return total, {'hash': l_h, 'rec': l_r, 'bd': l_bd}


def d_loss_code(d_real, y, d_fake, y_s):
    """Official code's D loss: 0.5 (MSE(D_raw(x), [y,0]) + MSE(D_raw(x_b), [y_s,1]))."""
    return 0.5 * (F.mse_loss(d_real, discriminator_targets(y, fake=False))
                  + F.mse_loss(d_fake, discriminator_targets(y_s, fake=True)))


LOSSES = {'paper': (g_loss_paper, d_loss_paper), 'code': (g_loss_code, d_loss_code)}


# ================================================================================================
# what G is trained from besides its config (README "Reuse rule")
# ================================================================================================

def gan_inputs(c):
    """The provenance of G's inputs: the training list and its images (utils.list_record) and the
    stamp (size, mtime) of the surrogate checkpoint, recorded in G's checkpoint."""
    path = c['train_list'] or os.path.join(c['data_dir'], 'train.txt')
    try:
        paths, _ = utils.read_list(path)
    except utils.ListError as e:
        _fail(str(e))
    record = {'train': utils.list_record(path, paths), 'surrogate': surrogate_path(c),
              'surrogate_stamp': utils.file_stamp(surrogate_path(c))}
    extras = extra_surrogate_paths(c)
    if extras:  # recorded only when used, so checkpoints written before the option compare equal
        record['extra_surrogate_stamps'] = [utils.file_stamp(p) for p in extras]
    return record


def extra_surrogate_paths(c):
    """The extra_surrogates key as a list of paths."""
    return [p.strip() for p in c['extra_surrogates'].split(',') if p.strip()]


def gan_inputs_changed(old, new):
    """Why G's recorded inputs differ from the current ones (a phrase), or None. A checkpoint
    written before these records cannot tell: a note says so and it is taken as it is."""
    if old is None:
        print("note: the GAN checkpoint has no record of its training list and surrogate (written "
              "before them); assuming they are unchanged")
        return None
    why = utils.record_difference(old.get('train'), new['train'], ('list_sha1', 'images_sha1', 'n'))
    if why:
        return f"on {new['train']['list']} as it was before ({why})"
    if old.get('surrogate_stamp') != new['surrogate_stamp']:
        return f"against {new['surrogate']} as it was before (the checkpoint was written since)"
    if old.get('extra_surrogate_stamps') != new.get('extra_surrogate_stamps'):
        return "against the extra_surrogates as they were before (one was written since)"
    return None


# ================================================================================================
# helpers shared with implement_tri_gen.py
# ================================================================================================

@torch.no_grad()
def surrogate_goal_codes(surrogate, train_set, conf_pool, c, device):
    """goal_code='surrogate': for each confusing label row, sign of the mean tanh(F(x)) over the training
    images whose label row equals it (rows with no exact match: images containing all its classes)."""
    loader = torch.utils.data.DataLoader(train_set, batch_size=64, shuffle=False,
                                         num_workers=c['num_workers'])
    outs = torch.cat([torch.tanh(surrogate(x.to(device)).float()).cpu() for x, _, _ in loader])
    labels = torch.from_numpy(train_set.labels.astype(np.float32))
    codes, counts = [], []
    for row in conf_pool.cpu():
        member = label_members(labels, row, 'goal_code=surrogate')
        mean = outs[member].mean(0)
        codes.append(torch.where(mean >= 0, 1.0, -1.0))
        counts.append(int(member.sum()))
    return torch.stack(codes).to(device), {'images': counts}


def label_members(labels, row, why):
    """The training images whose label row equals `row` ([N] bool); with none, those containing all its
    classes; with none of those either, a one-line exit naming `why`."""
    member = (labels == row).all(1)
    if not member.any():
        member = (labels >= row).all(1)
    if not member.any():
        _fail(f"{why}: no training image carries confusing label {row.nonzero().flatten().tolist()}")
    return member


@torch.no_grad()
def feature_goals(surrogate, tap, train_set, conf_pool, c, device):
    """w_feat: the mean over all training images of the tapped surrogate features (the centre) and, for
    each confusing label row, its goal ([P, C]): with feat_goal='confusing' the mean over the images
    carrying that row; with 'empty' the centre plus empty_direction (the same for every row), scaled
    to the first row's offset (the term is a cosine, so the length only keeps the goal readable)."""
    loader = torch.utils.data.DataLoader(train_set, batch_size=64, shuffle=False,
                                         num_workers=c['num_workers'])
    feats = []
    for x, _, _ in loader:
        surrogate(x.to(device))
        feats.append(tap.out.cpu())
    feats = torch.cat(feats)
    labels = torch.from_numpy(train_set.labels.astype(np.float32))
    goals = torch.stack([feats[label_members(labels, row, 'w_feat')].mean(0) for row in conf_pool.cpu()])
    centre = feats.mean(0)
    info = {'layer': c['feat_layer'], 'channels': feats.shape[1], 'goal': c['feat_goal']}
    if c['feat_goal'] == 'empty':
        offsets = torch.stack([feats[labels[:, k] > 0].mean(0) - centre
                               for k in range(labels.shape[1]) if (labels[:, k] > 0).any()])
        u = empty_direction(feats, centre, offsets)
        goals = centre + u * (goals[0] - centre).norm() * torch.ones(len(goals), 1)
        info['max_abs_cos_to_class_offsets'] = round(float(
            torch.nn.functional.cosine_similarity(offsets, u.unsqueeze(0), dim=1).abs().max()), 6)
    cos = torch.nn.functional.cosine_similarity(feats - centre, goals[0] - centre, dim=1)
    info['term_on_clean'] = round(float(1 - cos.mean()), 4)  # the term's value on the clean images, goal 0
    return centre.to(device), goals.to(device), info


def empty_direction(feats, centre, offsets):
    """feat_goal='empty': the unit direction along which the training features vary most once every
    class mean's offset from the centre is projected out ([C]; feats [N, C], offsets [K, C]): a way
    the surrogate's features move readily (a random direction barely moves at 30 dB) in which no
    class's mean lies. Its sign makes the sum of its components positive (more activation)."""
    q, _ = torch.linalg.qr(offsets.double().T)  # [C, K] orthonormal basis of the class offsets' span
    x = (feats - centre).double()
    x = x - (x @ q) @ q.T
    u = torch.linalg.svd(x, full_matrices=False).Vh[0]
    u = u - q @ (q.T @ u)
    u = u if u.sum() >= 0 else -u
    return (u / u.norm()).float()


def code_separation(codes, labels):
    """Pairwise Hamming distances of +-1 codes over the label pool: min / mean / distinct count."""
    codes = codes.float()
    k = codes.shape[1]
    d = (k - codes @ codes.t()) / 2
    iu = torch.triu_indices(len(codes), len(codes), offset=1)
    pair = d[iu[0], iu[1]]
    distinct = len(torch.unique(codes, dim=0))
    if len(pair) == 0:
        return {'bits': k, 'pool': len(codes), 'distinct': distinct, 'min': None, 'mean': None}
    return {'bits': k, 'pool': len(codes), 'distinct': distinct,
            'min': float(pair.min()), 'mean': round(float(pair.mean()), 3)}


def _fail(msg):
    sys.exit(f"error: {msg}")


# ================================================================================================
# main
# ================================================================================================

def main(config):
    """The training run in named stages (StarGAN's solver layout, STYLE.md)."""
    t = GanTraining(config)
    if t.finished():
        return
    t.build_data()
    t.build_labcln()
    t.build_gan()
    t.train()
    t.summarise()


class GanTraining:
    """One G/D training run: check -> data -> LabCLN -> GAN -> train -> summary."""

    def __init__(self, c):
        self.c = c
        self.run = gan_run_name(c)
        self.ckpt_path = os.path.join(c['checkpoint_dir'], self.run + '.pt')
        self.out = os.path.join(c['out_dir'], self.run)
        self.summary_path = os.path.join(self.out, 'train_summary.json')
        self.log_path = os.path.join(self.out, 'log.jsonl')
        self.check_config()
        self.rank, self.world, self.device = utils.init_distributed(utils.resolve_device(c['device']))
        utils.check_dtype(c['dtype'], self.device)
        if c['batch_size'] % self.world:
            _fail(f"batch_size={c['batch_size']} must be divisible by the {self.world} processes (it "
                  f"is the global batch; each process takes an equal share)")
        print(f"run {self.run}  device {self.device}  preset {c['loss_preset']}  weights (hash, rec, "
              f"bd) = {self.weights}  lpips {c['lpips']}")

    def check_config(self):
        c = self.c
        if c['loss_preset'] not in LOSSES:
            _fail(f"loss_preset must be 'paper' or 'code', got {c['loss_preset']!r}")
        if c['lpips'] not in ('alex', 'alex_random_trunk', 'none'):
            _fail(f"lpips must be 'alex', 'alex_random_trunk' or 'none', got {c['lpips']!r}")
        if c['lpips_inputs'] not in ('normalized', 'code'):
            _fail(f"lpips_inputs must be 'normalized' or 'code', got {c['lpips_inputs']!r}")
        if c['labcln_views'] not in ('paper', 'code'):
            _fail(f"labcln_views must be 'paper' or 'code', got {c['labcln_views']!r}")
        if c['hash_norm'] and c['loss_preset'] != 'paper':
            _fail("hash_norm=True applies to loss_preset='paper' only (the code preset's term is a mean)")
        if c['g_output'] not in ('image', 'residual'):
            _fail(f"g_output must be 'image' or 'residual', got {c['g_output']!r}")
        if c['g_eps'] < 0 or (c['g_eps'] > 0 and c['g_output'] != 'residual'):
            _fail(f"g_eps must be >= 0 and needs g_output='residual', got {c['g_eps']} with {c['g_output']!r}")
        if c['g_psnr'] < 0 or (c['g_psnr'] > 0 and c['g_output'] != 'residual'):
            _fail(f"g_psnr must be >= 0 and needs g_output='residual', got {c['g_psnr']} with {c['g_output']!r}")
        if c['g_lowpass'] != 1 and (c['g_output'] != 'residual' or c['g_lowpass'] < 1
                                    or c['image_size'] % c['g_lowpass']):
            _fail(f"g_lowpass must be an integer >= 1 dividing image_size={c['image_size']} and needs "
                  f"g_output='residual', got {c['g_lowpass']} with {c['g_output']!r}")
        if not 0 <= c['rec_warmup_epochs'] <= c['epochs']:
            _fail(f"rec_warmup_epochs must be in 0..epochs={c['epochs']}, got {c['rec_warmup_epochs']}")
        if c['goal_code'] not in ('labcln', 'surrogate'):
            _fail(f"goal_code must be 'labcln' or 'surrogate', got {c['goal_code']!r}")
        if not 0 <= c['input_diversity'] <= 1 or c['diversity_scale'] <= 1:
            _fail(f"input_diversity must be in [0, 1] and diversity_scale > 1, got {c['input_diversity']} "
                  f"and {c['diversity_scale']}")
        if c['w_feat'] < 0:
            _fail(f"w_feat must be >= 0, got {c['w_feat']}")
        if c['feat_goal'] not in ('confusing', 'empty'):
            _fail(f"feat_goal must be 'confusing' or 'empty', got {c['feat_goal']!r}")
        if not 0 < c['skip_grad'] <= 1:
            _fail(f"skip_grad must be in (0, 1] (1 = off), got {c['skip_grad']}")
        if c['lr_policy'] not in ('linear', 'constant'):
            _fail(f"lr_policy must be 'linear' or 'constant', got {c['lr_policy']!r}")
        weights = default_weights(c['loss_preset'], c['dataset'], c['surrogate_backbone'])
        self.weights = tuple(float(w) if w is not None else d
                             for w, d in zip((c['w_hash'], c['w_rec'], c['w_bd']), weights))
        self.g_loss_fn, self.d_loss_fn = LOSSES[c['loss_preset']]

    # ---- 0. a finished run exits at once; an unfinished one resumes (README "Reuse rule") --------
    def finished(self):
        c = self.c
        self.inputs = gan_inputs(c)  # what G is trained from besides its config
        self.ckpt = None
        if not os.path.exists(self.ckpt_path):
            return False
        try:
            self.ckpt = utils.load_checkpoint(self.ckpt_path)
        except ValueError as e:
            _fail(str(e))
        old = self.ckpt.get('config', {})
        diff = [k for k in c if k not in RESUME_FREE_KEYS and old.get(k, LATER_KEYS.get(k)) != c[k]]
        if diff:
            k = diff[0]
            _fail(f"{self.ckpt_path}: trained with {k}={old.get(k)!r}, this run has {k}={c[k]!r}; "
                  f"set tag=... for a new run or delete the checkpoint")
        why = gan_inputs_changed(self.ckpt.get('inputs'), self.inputs)
        if why:
            _fail(f"{self.ckpt_path}: trained {why}; set tag=... for a new run or delete the checkpoint")
        if self.ckpt['epoch'] > c['epochs']:  # epochs may grow on resumption, never shrink
            _fail(f"{self.ckpt_path}: trained for {self.ckpt['epoch']} epochs, this run asks for "
                  f"{c['epochs']}; set tag=... for a new run or delete the checkpoint")
        if self.ckpt['epoch'] >= c['epochs'] and os.path.isfile(self.summary_path):
            print(f"training already finished ({self.ckpt['epoch']}/{c['epochs']} epochs): "
                  f"{self.ckpt_path}; summary {self.summary_path}")
            return True
        return False

    # ---- 1. data, surrogate, LPIPS -------------------------------------------------------------------
    def build_data(self):
        c = self.c
        utils.seed_everything(c['seed'])
        list_path = c['train_list'] or os.path.join(c['data_dir'], 'train.txt')
        transform = utils.build_transform(c['image_size'], c['resize_size'], 'none')
        if self.rank != 0:  # under torchrun rank 0 builds the image cache and LabCLN, the others reuse them
            utils.barrier()
        try:
            self.train_set = utils.ImageList(list_path, transform=transform, num_workers=c['num_workers'],
                                             cache_dir=c['cache_dir'] if c['cache'] == 'disk' else None)
        except utils.ListError as e:
            _fail(str(e))
        self.labels = torch.from_numpy(self.train_set.labels.astype(np.float32))
        self.num_classes = self.labels.shape[1]
        if not 0 <= c['target'] < self.num_classes:
            _fail(f"target={c['target']} out of range: {list_path} has {self.num_classes} classes "
                  f"(valid 0..{self.num_classes - 1})")
        print(f"train images {len(self.train_set)} from {list_path}; classes {self.num_classes}")
        self.surrogate, meta, self.surrogate_file = load_surrogate(c, self.num_classes, self.device)
        if c['channels_last']:
            self.surrogate.to(memory_format=torch.channels_last)
        print(f"surrogate {self.surrogate_file}: {meta.get('method', c['surrogate_method'])} "
              f"{meta['backbone']} {meta['bits']} bits (frozen, eval mode)")
        self.extra_surrogates = []  # our option: an ensemble for the hash term
        for path in extra_surrogate_paths(c):
            model, meta = load_hash_model(path, None, c['surrogate_bits'], self.num_classes, self.device)
            if c['channels_last']:
                model.to(memory_format=torch.channels_last)
            self.extra_surrogates.append(model)
            print(f"extra surrogate {path}: {meta.get('method', '?')} {meta['backbone']} {meta['bits']} bits "
                  f"(frozen, eval mode; G's hash term is the mean over {1 + len(self.extra_surrogates)} models)")
        self.tap = None  # our option w_feat: the surrogate's features at feat_layer
        if c['w_feat'] > 0:
            try:
                self.tap = FeatureTap(feature_module(self.surrogate, c['feat_layer']))
            except ValueError as e:
                _fail(f"{self.surrogate_file}: {e}")
        self.skips = []  # our option skip_grad: SGM hooks on every surrogate's residual branches
        if c['skip_grad'] < 1:
            for model, path in zip([self.surrogate] + self.extra_surrogates,
                                   [self.surrogate_file] + extra_surrogate_paths(c)):
                try:
                    self.skips.append(SkipGradient(model, c['skip_grad']))
                except ValueError as e:
                    _fail(f"{path}: {e}")
            print(f"skip gradient: x{c['skip_grad']} through the residual branches of "
                  f"{', '.join(str(s.blocks) for s in self.skips)} blocks (surrogate outputs unchanged)")
        self.lpips_net = build_lpips(c['lpips'], self.device)

    # ---- 2. LabCLN (trained once on the distinct label rows, cached by digest), confusing labels ----
    def build_labcln(self):
        c, device = self.c, self.device
        pool = torch.unique(self.labels, dim=0)  # ascending lexicographic order, as the official code
        self.labcln, self.labcln_info = get_labcln(c, pool, device)
        if self.rank == 0:
            utils.barrier()  # the cache and LabCLN are on disk: the other processes go on
            utils.append_jsonl(self.log_path, {
                'kind': 'labcln', 'path': self.labcln_info['path'], 'final': self.labcln_info['final'],
                'separation': self.labcln_info['separation']})
        # confusing-label pool for G training (D2)
        if c['conf_mode'] == 'sample':
            conf_pool = pool[pool[:, c['target']] == 0]
            if len(conf_pool) == 0:
                _fail("conf_mode=sample: every training label row contains the target")
        elif c['conf_mode'] == 'code':
            conf_pool = pool[:1]  # conf_labels[0]: the lexicographically smallest row
        else:
            idx = utils.class_index(c['conf_mode'], self.num_classes, 'conf_mode', "'sample', 'code'")
            conf_pool = torch.eye(self.num_classes)[idx:idx + 1]
        self.conf_pool = conf_pool = conf_pool.to(device)
        print(f"confusing labels: {c['conf_mode']}, pool of {len(conf_pool)} label row(s)"
              + (f" (fixed class {conf_pool[0].nonzero().flatten().tolist()})" if len(conf_pool) == 1 else ''))
        self.goal_codes = None  # goal_code='labcln': h_c comes from LabCLN with r_b, per batch
        if c['goal_code'] == 'surrogate':
            self.goal_codes, goal_info = surrogate_goal_codes(self.surrogate, self.train_set, conf_pool,
                                                              c, device)
            _, h_lab = confusing_code(self.labcln, conf_pool)
            goal_info['hamming_to_labcln'] = ((self.goal_codes.shape[1] - (self.goal_codes * h_lab).sum(1))
                                              / 2).tolist()
            print(f"goal codes: the surrogate's mean code of each confusing label row "
                  f"({goal_info['images']} images); Hamming to LabCLN's h_c: {goal_info['hamming_to_labcln']}")
            utils.append_jsonl(self.log_path, {'kind': 'goal_codes', **goal_info})
        if self.tap is not None:
            self.feat_centre, self.feat_goals, feat_info = feature_goals(self.surrogate, self.tap, self.train_set,
                                                                         conf_pool, c, device)
            print(f"feature term: {c['feat_layer']} of the surrogate ({feat_info['channels']} channels), "
                  f"goal {c['feat_goal']}, "
                  f"weight {c['w_feat']}; on the clean images {feat_info['term_on_clean']}")
            utils.append_jsonl(self.log_path, {'kind': 'feature_goals', **feat_info})

    # ---- 3. GAN: networks, optimisers, schedules, resume, debug batch ---------------------------------
    def build_gan(self):
        c, device, ckpt = self.c, self.device, self.ckpt
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(c['seed'])
            G = Generator(image_size=c['image_size'], feat_dim=c['labcln_feat'], ngf=c['ngf'],
                          lowpass=c['g_lowpass']).to(device)
            init_generator_output(G, c['g_output'])
            D = Discriminator(self.num_classes, image_size=c['image_size'], ndf=c['ndf']).to(device)
        if c['channels_last']:
            G.to(memory_format=torch.channels_last)
            D.to(memory_format=torch.channels_last)
        self.opt_g = torch.optim.Adam(G.parameters(), lr=c['lr'], betas=(c['beta1'], 0.999))
        self.opt_d = torch.optim.Adam(D.parameters(), lr=c['lr'], betas=(c['beta1'], 0.999))
        rule = lr_rule(c['lr_policy'], c['epochs'])
        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.opt_g, rule)
        self.sched_d = torch.optim.lr_scheduler.LambdaLR(self.opt_d, rule)
        self.start_epoch, self.step, self.history = 0, 0, []
        if ckpt is not None:
            if ckpt.get('labcln', {}).get('digest') != self.labcln_info['digest']:
                _fail(f"{self.ckpt_path}: trained with another LabCLN ({ckpt.get('labcln', {}).get('path')}); "
                      f"delete the checkpoint or set tag=...")
            G.load_state_dict(ckpt['G'])
            D.load_state_dict(ckpt['D'])
            self.opt_g.load_state_dict(ckpt['opt_G'])
            self.opt_d.load_state_dict(ckpt['opt_D'])
            self.sched_g.load_state_dict(ckpt['sched_G'])
            self.sched_d.load_state_dict(ckpt['sched_D'])
            self.start_epoch, self.step, self.history = ckpt['epoch'], ckpt['step'], list(ckpt['history'])
            for opt, sched in ((self.opt_g, self.sched_g), (self.opt_d, self.sched_d)):  # `epochs` may have changed
                for group, base in zip(opt.param_groups, sched.base_lrs):
                    group['lr'] = base * rule(self.start_epoch)
            print(f"resumed from {self.ckpt_path} at epoch {self.start_epoch}/{c['epochs']} (step {self.step})")

        # fixed debug batch: the first images of the list, confusing labels drawn once from the seed
        n_dbg = min(DEBUG_IMAGES, len(self.train_set))
        self.x_dbg = torch.stack([self.train_set[i][0] for i in range(n_dbg)]).to(device)
        g_dbg = torch.Generator().manual_seed(c['seed'] + 7)
        ys_dbg = self.conf_pool[torch.randint(len(self.conf_pool), (n_dbg,), generator=g_dbg).to(device)]
        self.r_dbg, _ = confusing_code(self.labcln, ys_dbg)

        # under torchrun: DistributedDataParallel G and D (gradients averaged), a DistributedSampler
        # shard of every epoch per process; G_net / D_net are the plain modules (saved, rendered, and
        # D_net scores x_b in the G step, where D is frozen and must not wait for a gradient reduction)
        self.G_net, self.D_net, self.sampler = G, D, None
        if self.world > 1:
            ids = [device] if device.startswith('cuda') else None
            G = torch.nn.parallel.DistributedDataParallel(self.G_net, device_ids=ids)
            D = torch.nn.parallel.DistributedDataParallel(self.D_net, device_ids=ids)
            self.sampler = torch.utils.data.distributed.DistributedSampler(
                self.train_set, num_replicas=self.world, rank=self.rank, shuffle=True, seed=c['seed'])
        self.G, self.D = G, D
        self.amp = utils.autocast(device, c["dtype"])  # reusable (not nested): one context serves every forward

    # ---- 4. train: epochs of D steps (every d_every iterations) and G steps ---------------------------
    def train(self):
        c = self.c
        self.iters = math.ceil(len(self.train_set) / c['batch_size'])
        print(f"GAN: G {n_params(self.G):,} params, D {n_params(self.D):,} params; {self.iters} "
              f"iterations/epoch, epochs {self.start_epoch + 1}..{c['epochs']}")
        self.last_psnr = None
        for epoch in range(self.start_epoch, c['epochs']):
            t0 = time.time()
            sums, n_g, n_d = self.train_epoch(epoch, t0)
            self.end_epoch(epoch, t0, sums, n_g, n_d)

    def train_epoch(self, epoch, t0):
        """One pass over the training images: D every d_every iterations, G every one."""
        c, device = self.c, self.device
        # per-epoch seeding: a resumed run draws the same batches and labels as an uninterrupted one
        torch.manual_seed(c['seed'] * 100003 + epoch)
        gen = torch.Generator().manual_seed(c['seed'] * 100003 + epoch)
        g_conf = torch.Generator().manual_seed(c['seed'] * 100003 + epoch + 1 + 7919 * self.rank)
        g_div = torch.Generator().manual_seed(c['seed'] * 100003 + epoch + 2 + 7919 * self.rank)
        self.G.train()
        self.D.train()
        sums, n_g, n_d, d_val = {}, 0, 0, float('nan')
        for i, (x, y, _) in enumerate(self.epoch_loader(epoch, gen)):
            x, y = utils.to_device(x, device, c['channels_last']), y.to(device, non_blocking=True)
            pick = torch.randint(len(self.conf_pool), (len(x),), generator=g_conf).to(device)
            y_s = self.conf_pool[pick]
            r_b, h_c = confusing_code(self.labcln, y_s)
            if self.goal_codes is not None:  # goal_code='surrogate' (our option)
                h_c = self.goal_codes[pick]
            with self.amp:  # the poisoned image is float32 from here on (losses, LPIPS)
                x_b = apply_generator(self.G, x, r_b, **generator_budget(c)).float()  # [0,1] image (D8)
            warmup = epoch < c['rec_warmup_epochs']  # our option: reconstruction only, no D step
            if i % c['d_every'] == 0 and not warmup:
                d_val = self.d_step(x, y, x_b, y_s, epoch)
                sums['d'] = sums.get('d', 0.0) + d_val
                n_d += 1
            vals = self.g_step(x, x_b, y_s, h_c, pick, g_div, warmup, epoch)
            n_g += 1
            for k, v in vals.items():
                sums[k] = sums.get(k, 0.0) + v
            if self.rank == 0:
                self.log_step(epoch, i, vals, d_val, t0)
        return sums, n_g, n_d

    def epoch_loader(self, epoch, gen):
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
        c, world = self.c, self.world
        return torch.utils.data.DataLoader(self.train_set, batch_size=c['batch_size'] // world,
                                           shuffle=self.sampler is None, sampler=self.sampler,
                                           num_workers=c['num_workers'], generator=gen,
                                           pin_memory=self.device.startswith('cuda'))

    def d_step(self, x, y, x_b, y_s, epoch):
        """D on the clean image (its own label) against the poisoned one (the confusing label)."""
        self.D.requires_grad_(True)
        with self.amp:
            d_real, d_fake = self.D(x), self.D(x_b.detach())
        d_loss = self.d_loss_fn(d_real.float(), y, d_fake.float(), y_s)
        check_finite(d_loss, 'D', epoch, self.step, self.ckpt_path)
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        return d_loss.item()

    def g_step(self, x, x_b, y_s, h_c, pick, g_div, warmup, epoch):
        """G against the surrogate(s), D and LPIPS; returns every logged term as a float."""
        c = self.c
        self.D.requires_grad_(False)
        lp = lpips_term(self.lpips_net, x_b, x, c['lpips_inputs'])
        x_s = x_b  # what the surrogate sees: G's output, or with input_diversity a random resize-pad
        if c['input_diversity'] > 0 and torch.rand((), generator=g_div) < c['input_diversity']:
            x_s = diverse_input(x_b, c['diversity_scale'], g_div)
        with self.amp:
            hash_out = [m(x_s).float() for m in [self.surrogate] + self.extra_surrogates]
            d_fake = self.D_net(x_b)
        g_loss, parts = self.g_loss_fn(x_b, x, hash_out, h_c, d_fake.float(), y_s, lp,
                                       self.weights, hash_norm=c['hash_norm'])
        if self.tap is not None:  # our option: the surrogate's middle features (the tap of this forward)
            parts['feat'] = feature_term(self.tap.out, self.feat_centre, self.feat_goals[pick])
            g_loss = g_loss + c['w_feat'] * parts['feat']
        if warmup:  # the other terms are still computed, for the log
            g_loss = self.weights[1] * parts['rec']
        check_finite(g_loss, 'G', epoch, self.step, self.ckpt_path)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        self.step += 1
        logged = {'g': g_loss, **parts, 'lpips': lp}  # one device sync for all of them
        return dict(zip(logged, torch.stack([v.detach().float() for v in logged.values()]).tolist()))

    def log_step(self, epoch, i, vals, d_val, t0):
        c, step = self.c, self.step
        if c['log_every'] > 0 and step % c['log_every'] == 0:
            print(f"ep {epoch + 1}/{c['epochs']} it {i + 1}/{self.iters} step {step} | G {vals['g']:.4f} "
                  f"(hash {vals['hash']:.4f} rec {vals['rec']:.4f} bd {vals['bd']:.4f} "
                  f"lpips {vals['lpips']:.4f}) | D {d_val:.4f} | {time.time() - t0:.0f}s", flush=True)
            utils.append_jsonl(self.log_path, {'epoch': epoch + 1, 'step': step, 'd': d_val, **vals,
                                               'lr': self.opt_g.param_groups[0]['lr']})
        if c['sample_every'] > 0 and step % c['sample_every'] == 0:
            self.last_psnr = self.render(epoch + 1)

    def render(self, epoch):
        return render_debug(self.G_net, self.x_dbg, self.r_dbg, self.out, epoch, self.step,
                            generator_budget(self.c))

    # ---- end of epoch: schedule, debug grid, log, checkpoint -----------------------------------------
    def end_epoch(self, epoch, t0, sums, n_g, n_d):
        c = self.c
        lr_used = self.opt_g.param_groups[0]['lr']
        self.sched_g.step()
        self.sched_d.step()
        if self.rank != 0:
            return
        self.last_psnr = self.render(epoch + 1)
        record = {'epoch': epoch + 1, 'step': self.step, 'lr': lr_used,
                  'time_s': round(time.time() - t0, 2), 'debug_psnr': round(self.last_psnr, 3),
                  **{k: v / (n_d if k == 'd' else n_g) for k, v in sums.items()}}
        self.history.append(record)
        feat = f" feat {record['feat']:.4f}" if 'feat' in record else ''
        print(f"epoch {epoch + 1}/{c['epochs']} | G {record['g']:.4f} (hash {record['hash']:.4f} "
              f"rec {record['rec']:.4f} bd {record['bd']:.4f}{feat}) | D {record.get('d', float('nan')):.4f} "
              f"| debug PSNR {self.last_psnr:.2f} dB | lr {lr_used:.2e} | {record['time_s']:.1f}s", flush=True)
        utils.append_jsonl(self.log_path, dict(record, kind='epoch'))
        utils.save_checkpoint(self.ckpt_path, {
            'format': CHECKPOINT_FORMAT, 'G': self.G_net.state_dict(), 'D': self.D_net.state_dict(),
            'opt_G': self.opt_g.state_dict(), 'opt_D': self.opt_d.state_dict(),
            'sched_G': self.sched_g.state_dict(), 'sched_D': self.sched_d.state_dict(),
            'meta': {'image_size': c['image_size'], 'feat_dim': c['labcln_feat'], 'ngf': c['ngf'],
                     'g_output': c['g_output'], 'g_eps': c['g_eps'], 'g_psnr': c['g_psnr'], 'lowpass': c['g_lowpass'],
                     'ndf': c['ndf'], 'num_classes': self.num_classes, 'bits': c['surrogate_bits']},
            'labcln': {k: self.labcln_info[k] for k in ('path', 'digest')},
            'lpips': c['lpips'], 'weights': list(self.weights), 'epoch': epoch + 1, 'step': self.step,
            'config': c, 'history': self.history, 'inputs': self.inputs})

    # ---- 5. summary ----------------------------------------------------------------------------------
    def summarise(self):
        c, history, weights = self.c, self.history, self.weights
        utils.barrier()
        if self.rank != 0:
            return
        if self.last_psnr is None:  # checkpoint was complete, only the summary was missing
            self.last_psnr = self.render(len(history))
        summary = {
            'run': self.run, 'checkpoint': self.ckpt_path, 'config': c, 'seed': c['seed'],
            'git_commit': utils.git_commit(), 'machine': utils.machine(), 'device': self.device,
            'epochs_done': len(history),
            'steps': self.step, 'weights': {'hash': weights[0], 'rec': weights[1], 'bd': weights[2]},
            'loss_preset': c['loss_preset'], 'lpips': c['lpips'], 'lpips_inputs': c['lpips_inputs'],
            'final_losses': {k: v for k, v in history[-1].items() if k not in ('epoch', 'step')},
            'debug_psnr_db': self.last_psnr, 'labcln': self.labcln_info, 'surrogate': self.surrogate_file,
            'extra_surrogates': extra_surrogate_paths(c),
            'conf_mode': c['conf_mode'], 'conf_pool_size': len(self.conf_pool),
            'time_per_epoch_s': round(sum(h['time_s'] for h in history) / len(history), 2),
            'history': history,
        }
        utils.write_json(self.summary_path, summary)
        print(f"done: {self.ckpt_path}; debug-batch PSNR {self.last_psnr:.2f} dB; summary {self.summary_path}")


# ================================================================================================
# pieces of main
# ================================================================================================

def n_params(m):
    return sum(p.numel() for p in m.parameters())


def lr_rule(policy, epochs):
    """Per-epoch lr factor. 'linear' (official get_scheduler): constant for ceil(epochs/2) epochs,
    then 1 - (e + 1 - n_const) / (n_decay + 1), reaching 1/51 at the last of 100 epochs."""
    if policy == 'constant':
        return lambda e: 1.0
    n_const = (epochs + 1) // 2
    n_decay = epochs - n_const
    return lambda e: 1.0 - max(0, e + 1 - n_const) / float(n_decay + 1)


def check_finite(loss, which, epoch, step, ckpt_path):
    if not torch.isfinite(loss):
        _fail(f"non-finite {which} loss {loss.item()} at epoch {epoch + 1}, step {step + 1}; stopping "
              f"(last complete epoch kept in {ckpt_path})")


def build_lpips(mode, device):
    """D9. 'alex' needs torchvision's AlexNet weights in the torch hub cache (never downloaded here)."""
    if mode == 'none':
        print('LPIPS: none (no perceptual term)')
        return None
    import warnings
    import lpips as lpips_pkg
    if mode == 'alex':
        cached = os.path.join(torch.hub.get_dir(), 'checkpoints', ALEXNET_FILE)
        if not os.path.isfile(cached):
            _fail(f"lpips='alex' needs AlexNet weights: put {ALEXNET_FILE} (from {ALEXNET_URL}) "
                  f"into {os.path.dirname(cached)}/, or choose lpips='alex_random_trunk' "
                  f"(uncalibrated random trunk) or lpips='none'")
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        net = lpips_pkg.LPIPS(net='alex', spatial=True, pnet_rand=(mode == 'alex_random_trunk'),
                              verbose=False)
    if mode == 'alex_random_trunk':
        print("LPIPS: FALLBACK alex_random_trunk (random AlexNet trunk + the package's linear "
              "weights): not the calibrated metric")
    else:
        print('LPIPS: alex (spatial, mean)')
    return net.to(device).eval().requires_grad_(False)


def lpips_term(net, x_b, x, inputs):
    if net is None:
        return torch.zeros((), device=x.device)
    return net(x_b, x, normalize=(inputs == 'normalized')).mean()


def labcln_config(c, pool):
    return {'format': LABCLN_FORMAT, 'bits': c['surrogate_bits'], 'steps': c['labcln_steps'],
            'batch': c['labcln_batch'], 'lr': c['labcln_lr'], 'views': c['labcln_views'],
            'hidden': c['labcln_hidden'], 'feat_dim': c['labcln_feat'], 'tau': c['tau'],
            'seed': c['seed'], 'pool_sha1': hashlib.sha1(pool.numpy().astype(np.uint8).tobytes()
                                                         + str(tuple(pool.shape)).encode()).hexdigest()}


def get_labcln(c, pool, device):
    """Load the cached LabCLN for this config or train it (D4, D5); log its code separation."""
    cfg = labcln_config(c, pool)
    digest = hashlib.sha1(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:8]
    name = f"{c['dataset']}_labcln_{c['surrogate_bits']}_{c['labcln_views']}_{digest}"
    path = os.path.join(c['checkpoint_dir'], name + '.pt')
    if os.path.isfile(path):
        try:
            model, ck = load_labcln(path, device)
        except (ValueError, KeyError, RuntimeError) as e:
            _fail(str(e).splitlines()[0])
        if ck.get('labcln_config') != cfg:
            _fail(f"{path}: LabCLN config differs from this run's; delete the file")
        logs = ck['logs']
        print(f"LabCLN: reusing {path}")
    else:
        if c['labcln_views'] == 'paper':
            eps, smoothing = (0.2, 0.3), 'paper'
        else:
            eps, smoothing = (0.2, None), 'code'
        print(f"LabCLN: training {c['labcln_steps']} steps on {len(pool)} distinct label rows "
              f"(views {c['labcln_views']}: eps {eps}, {smoothing} smoothing)")
        t0 = time.time()
        try:
            model, logs = train_labcln(pool, c['surrogate_bits'], steps=c['labcln_steps'],
                                       batch=c['labcln_batch'], lr=c['labcln_lr'],
                                       milestones=(c['labcln_steps'] // 2, c['labcln_steps'] * 3 // 4),
                                       eps=eps, smoothing=smoothing, tau=c['tau'], seed=c['seed'],
                                       hidden=c['labcln_hidden'], feat_dim=c['labcln_feat'],
                                       device=device, log_every=max(1, c['labcln_steps'] // 5))
        except FloatingPointError as e:
            _fail(str(e))
        print(f"LabCLN: trained in {time.time() - t0:.1f}s")
        utils.save_checkpoint(path, {
            'format': LABCLN_FORMAT, 'model': model.state_dict(), 'labcln_config': cfg,
            'meta': {'num_classes': pool.shape[1], 'bits': c['surrogate_bits'],
                     'hidden': c['labcln_hidden'], 'feat_dim': c['labcln_feat']},
            'pool': pool.to(torch.uint8), 'logs': logs})
        model = model.to(device).eval()
    _, codes = confusing_code(model, pool.to(device))
    sep = code_separation(codes.cpu(), pool)
    final = logs[-1] if logs else {}
    print(f"LabCLN final loss {final.get('total', float('nan')):.4f} (ntxent "
          f"{final.get('contrastive', float('nan')):.4f}, quant {final.get('quant', float('nan')):.4f}, "
          f"cls {final.get('cls', float('nan')):.5f}); codes over the pool: {sep['distinct']}/"
          f"{sep['pool']} distinct, pairwise Hamming min {sep['min']} mean {sep['mean']} "
          f"of {sep['bits']} bits")
    if sep['pool'] > 1 and (sep['distinct'] < sep['pool'] or sep['mean'] < sep['bits'] / 4):
        print(f"WARNING: LabCLN centroid codes of different labels collapse: {sep['distinct']}/"
              f"{sep['pool']} distinct, min Hamming {sep['min']}, mean {sep['mean']} of {sep['bits']} "
              f"bits (random codes would give ~{sep['bits'] / 2:.0f}); the Hamming loss then pulls "
              f"different confusing labels to (nearly) the same code")
    return model, {'path': path, 'digest': digest, 'config': cfg, 'final': final,
                   'separation': sep}


@torch.no_grad()
def render_debug(G, x, r_b, out, epoch, step, budget=None):
    """Grid rows clean | poisoned | |poisoned - clean| x 10, images under 128 px enlarged by an integer
    nearest-neighbour factor; returns the uint8 PSNR (dB) of the batch (on the images themselves).
    budget: apply_generator's keyword arguments (generator_budget); None = the official image output."""
    from torchvision.utils import save_image
    was_training = G.training
    G.eval()  # no-op for IN(affine=False) without running stats; kept for clarity
    x_b = apply_generator(G, x, r_b, **(budget or {}))
    G.train(was_training)
    xq = requantize(x_b)
    xc = x.detach().cpu()
    grid = torch.cat([xc, xq, ((xq - xc).abs() * 10).clamp(0, 1)])
    f = utils.nearest_factor(grid.shape[-1])  # 32-64 px images shown at >= 128 px, square pixels
    grid = grid.repeat_interleave(f, -2).repeat_interleave(f, -1)
    folder = os.path.join(out, 'samples')
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"epoch{epoch:03d}_step{step:06d}.png")
    save_image(grid, path, nrow=len(x), padding=2)
    save_image(grid, os.path.join(folder, 'latest.png'), nrow=len(x), padding=2)
    _, psnr = psnr_uint8(quantize(x), quantize(x_b))
    return psnr


if __name__ == '__main__':
    if utils.dist_info()[0] == 0:
        main(utils.configure(globals()))
    else:  # under torchrun the other processes print nothing (rank 0 alone prints and logs)
        import contextlib
        with open(os.devnull, 'w') as quiet, contextlib.redirect_stdout(quiet):
            main(utils.configure(globals()))
