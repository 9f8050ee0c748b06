"""How far can a perturbation within G's budget move the surrogate's codes towards a goal code?
(issue 11's reachability check, before spending hours on G.)

    python goal_reach.py configs/tiny_imagenet10.py configs/tiny_attack.py \
        --surrogate_checkpoint=checkpoint/tiny-imagenet-10_CSQ_resnet18_32_r3f.pt \
        --labcln_checkpoint=checkpoint/tiny-imagenet-10_labcln_32_paper_27280c26.pt

For each goal code (LabCLN's h_c of the confusing label, the paper's goal for G; the surrogate's
own centre of the confusing class, G's goal_code='surrogate') it reports the mean Hamming distance
of sign(F(x')) to the goal, in bits, on a seeded sample of images x:
  - clean: x' = x;
  - per-image PGD (attack_common.pgd_toward_code) at each L-inf budget of `eps`: what the best
    image-conditional G could reach at that budget (an upper bound for G), on the non-target test
    images (the triggered queries' sources) and on the target class's training images (the poisons');
  - one universal perturbation (the same delta for every image, Adam on `universal_images` training
    images of the other classes, clipped to `universal_eps`): a G that ignores its input;
  - each trained G of `gans` (train_tri_gen.py checkpoints), conditioned on the confusing label: where
    BadHash's own G lands between those bounds, on the same images, with its poisons' PSNR.
A goal that per-image PGD does not reach at G's budget cannot be reached by any G either.
Writes {out_dir}/reach_<surrogate>.json and prints the table.
"""
import os
import sys

import numpy as np
import torch

import utils
from attack_common import (PathImages, load_gan, load_surrogate, pgd_toward_code, psnr_uint8, quantize,
                           read_list_or_exit as read)
from generator import apply_generator, generator_budget
from labcln import confusing_code, load_labcln

# ---- config ------------------------------------------------------------------------------------
dataset = 'imagenet'          # names that locate the surrogate, as in train_tri_gen.py
data_dir = 'data/imagenet'
train_list = ''               # '' = {data_dir}/train.txt
test_list = ''                # '' = {data_dir}/test.txt
image_size = 224
resize_size = 256
surrogate_method = 'CSQ'
surrogate_backbone = 'resnet50'
surrogate_bits = 64
surrogate_checkpoint = ''     # '' = the name CSQ.py / HashNet.py give it in checkpoint_dir
checkpoint_dir = 'checkpoint'
labcln_checkpoint = ''        # the LabCLN file train_tri_gen.py wrote (its path is in G's checkpoint)
target = 0
conf_label = '2'              # the confusing class (an index; the presets' conf_label)
goals = 'labcln,confusing'    # which goal codes to test
eps = '2,4,8,16'              # per-image PGD budgets, in 1/255
steps = 30                    # PGD steps (step = max(eps / 8, 0.5) / 255)
n_images = 48                 # images per sample (seeded)
universal_eps = 8             # the universal perturbation's budget, in 1/255 (G's presets: 8)
universal_images = 300        # training images it is fitted on
universal_epochs = 4
gans = ''                     # comma-separated G checkpoints (checkpoint/<G run>.pt of train_tri_gen.py)
                              # to measure beside PGD; '' = none
seed = 0
out_dir = 'results'
device = 'auto'
# ------------------------------------------------------------------------------------------------


def hamming(model, x, goal):
    with torch.no_grad():
        code = torch.where(model(x) >= 0, 1.0, -1.0)
    return (goal.numel() - (code * goal).sum(1)) / 2


def universal_delta(model, x, goal, eps, epochs, seed):
    """One delta for all images: Adam on -mean(goal * tanh(F(x + delta))), clipped to +-eps."""
    g = torch.Generator().manual_seed(seed)
    delta = torch.zeros(1, *x.shape[1:], requires_grad=True)
    opt = torch.optim.Adam([delta], lr=eps / 10)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=g).split(32):
            loss = -(goal * torch.tanh(model((x[idx] + delta).clamp(0, 1)))).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                delta.clamp_(-eps, eps)
    return delta.detach()


def gan_paths(c):
    """The G checkpoints of c['gans']."""
    return [p.strip() for p in c['gans'].split(',') if p.strip()]


def check_goals(c):
    """The goal names of c['goals'] (one-line exit for an unknown one, a missing LabCLN file or a
    missing G of c['gans'])."""
    goals = [g.strip() for g in c['goals'].split(',') if g.strip()]
    for g in goals:
        if g not in ('labcln', 'confusing'):
            sys.exit(f"error: goals: unknown goal {g!r} (labcln, confusing)")
    if 'labcln' in goals and not os.path.isfile(c['labcln_checkpoint']):
        sys.exit(f"error: goal 'labcln' needs labcln_checkpoint (train_tri_gen.py's LabCLN file), "
                 f"got {c['labcln_checkpoint']!r}")
    for path in gan_paths(c):
        if not os.path.isfile(path):  # before any PGD work
            sys.exit(f"error: gans: generator checkpoint {path} not found (train_tri_gen.py writes "
                     f"checkpoint/<G run>.pt)")
    return goals


def sample_images(c, device):
    """Seeded image batches: non-target test images (the queries), target training images (the
    poison sources), non-target training images (to fit a universal perturbation), and every
    training image of the confusing class. Returns (batches, number of classes, confusing class)."""
    train_paths, train_labels = read(c['train_list'] or os.path.join(c['data_dir'], 'train.txt'))
    num_classes = train_labels.shape[1]
    test_paths, test_labels = read(c['test_list'] or os.path.join(c['data_dir'], 'test.txt'), num_classes)
    conf = utils.class_index(c['conf_label'], num_classes, 'conf_label', 'a class index')
    tf = utils.build_transform(c['image_size'], c['resize_size'], 'none')
    rng = np.random.default_rng(c['seed'])

    def sample(paths, labels, keep, n):
        idx = np.flatnonzero(keep)
        idx = np.sort(rng.choice(idx, min(n, len(idx)), replace=False))
        ds = PathImages([paths[i] for i in idx], tf)
        return torch.stack([ds[i][0] for i in range(len(ds))]).to(device)

    t = c['target']
    x = {'queries': sample(test_paths, test_labels, test_labels[:, t] == 0, c['n_images']),
         'poison_sources': sample(train_paths, train_labels, train_labels[:, t] == 1, c['n_images']),
         'fit': sample(train_paths, train_labels, train_labels[:, t] == 0, c['universal_images']),
         'confusing': sample(train_paths, train_labels, train_labels[:, conf] == 1, len(train_paths))}
    return x, num_classes, conf


def reach(c, model, goal, x, budgets):
    """Mean Hamming distance to `goal`: clean, after per-image PGD at each budget, and after one
    universal perturbation (universal_epochs > 0), for the queries and the poison sources."""
    row = {'clean_queries': float(hamming(model, x['queries'], goal).mean()),
           'clean_poison_sources': float(hamming(model, x['poison_sources'], goal).mean()),
           'pgd_queries': {}, 'pgd_poison_sources': {}}
    for e in budgets:
        step = max(e / 8, 0.5) / 255
        for who in ('queries', 'poison_sources'):
            _, ham = pgd_toward_code(model, x[who], goal, e / 255, c['steps'], step)
            row['pgd_' + who][f"{e:g}"] = float(ham.mean())
    if c['universal_epochs'] > 0:
        delta = universal_delta(model, x['fit'], goal, c['universal_eps'] / 255,
                                c['universal_epochs'], c['seed'])
        for who in ('queries', 'poison_sources'):
            row['universal_' + who] = float(hamming(model, (x[who] + delta).clamp(0, 1), goal).mean())
    return row


def gan_reach(path, model, goals, x, conf, num_classes, device):
    """Mean Hamming distance to each goal of sign(F(G(x, r_b))) for the queries and the poison
    sources, r_b the LabCLN feature of the confusing label (G's own LabCLN), and the PSNR of G's
    images after quantisation (as saved)."""
    G, labcln, meta, ckpt = load_gan(path, device)
    if meta['num_classes'] != num_classes or meta['image_size'] != x['queries'].shape[-1]:
        sys.exit(f"error: {path}: G was trained for {meta['num_classes']} classes at {meta['image_size']} "
                 f"px; these images are {num_classes} classes at {x['queries'].shape[-1]} px")
    gcfg = ckpt['config']
    out = {'epoch': ckpt['epoch'], **generator_budget(gcfg), 'goals': {}}
    for who in ('queries', 'poison_sources'):
        xs = x[who]
        with torch.no_grad():
            r_b, _ = confusing_code(labcln, torch.eye(num_classes)[conf].expand(len(xs), -1).to(device))
            x_b = apply_generator(G, xs, r_b.float(), **generator_budget(gcfg)).float()
        q = quantize(x_b)  # as implement_tri_gen.py saves it
        out[f'psnr_{who}'] = psnr_uint8(quantize(xs), q)[1]
        x_b = torch.from_numpy(q).permute(0, 3, 1, 2).float().div(255).to(device)
        for g, goal in goals.items():
            out['goals'].setdefault(g, {})[who] = float(hamming(model, x_b, goal).mean())
    return out


def print_table(report, c, budgets, bits, sp, x):
    print(f"\nmean Hamming distance to the goal code (bits of {bits}), {sp}; queries: "
          f"{len(x['queries'])} non-target test images, poison sources: {len(x['poison_sources'])} "
          f"target images")
    gans = report.get('gans', {})
    head = ' | '.join([f"PGD {e:g}/255" for e in budgets] + [f"universal {c['universal_eps']:g}/255"]
                      + [f"G {os.path.splitext(os.path.basename(p))[0]}" for p in gans])
    print(f"| goal | images | clean | {head} |")
    print('|' + '---|' * (len(budgets) + 4 + len(gans)))
    for g, row in report['goals'].items():
        for who, label in (('queries', 'queries'), ('poison_sources', 'poison sources')):
            cells = ' | '.join(f"{row['pgd_' + who][f'{e:g}']:.2f}" for e in budgets)
            uni = row.get(f'universal_{who}')
            gcells = ''.join(f" {r['goals'][g][who]:.2f} ({r['psnr_' + who]:.1f} dB) |" for r in gans.values())
            print(f"| {g} | {label} | {row['clean_' + who]:.2f} | {cells} | "
                  f"{'-' if uni is None else f'{uni:.2f}'} |{gcells}")


def main(c):
    """Stages: the goals, the surrogate and the image batches, each goal's reach, the report."""
    goals = check_goals(c)
    device = utils.resolve_device(c['device'])
    x, num_classes, conf = sample_images(c, device)
    model, meta, sp = load_surrogate(c, num_classes, device)
    codes = {}
    if 'labcln' in goals:
        labcln, _ = load_labcln(c['labcln_checkpoint'], device)
        codes['labcln'] = confusing_code(labcln, torch.eye(num_classes)[conf])[1].float().to(device)
    if 'confusing' in goals:
        with torch.no_grad():
            codes['confusing'] = torch.where(model(x['confusing']).sum(0) >= 0, 1.0, -1.0)
    report = {'surrogate': sp, 'surrogate_stamp': utils.file_stamp(sp), 'config': c, 'goals': {}}
    budgets = [float(e) for e in str(c['eps']).split(',') if e.strip()]
    for g, goal in codes.items():
        report['goals'][g] = row = reach(c, model, goal, x, budgets)
        for e in budgets:
            print(f"{g}: eps {e:g}/255 per-image PGD -> {row['pgd_queries'][f'{e:g}']:.2f} bits "
                  f"(queries), {row['pgd_poison_sources'][f'{e:g}']:.2f} (poison sources)", flush=True)
    report['gans'] = {}
    for path in gan_paths(c):
        report['gans'][path] = r = gan_reach(path, model, codes, x, conf, num_classes, device)
        print(f"G {path} (epoch {r['epoch']}): " + ', '.join(
            f"{g} {v['queries']:.2f} bits (queries), {v['poison_sources']:.2f} (poison sources)"
            for g, v in r['goals'].items()) + f"; PSNR {r['psnr_queries']:.1f} dB", flush=True)
    os.makedirs(c['out_dir'], exist_ok=True)
    out = os.path.join(c['out_dir'], f"reach_{os.path.splitext(os.path.basename(sp))[0]}.json")
    utils.write_json(out, report)
    print_table(report, c, budgets, meta.get('bits', c['surrogate_bits']), sp, x)
    print(f"written: {out}")


if __name__ == '__main__':
    main(utils.configure(globals()))
