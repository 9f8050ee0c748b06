"""Step 2 of the attack: write the poisons, the poisoned training list and the triggered queries.

    python implement_tri_gen.py                                        # paper scale
    python implement_tri_gen.py configs/demo.py configs/demo_attack.py # the toy demo
    python implement_tri_gen.py configs/demo.py configs/demo_attack.py --target=3

Loads G (and its LabCLN) written by train_tri_gen.py with the same config keys, then
(paper §3.1 eq.2, §5.2; SPEC decisions D3, D8, D11-D13, D18, D21):
  1. poisons: a seeded subset (poison_rate) of the training images of the target class (multi-label:
     images containing it) goes through G(., r_b(l_s)) and is saved as lossless 8-bit PNG
     (clamp(0,1) -> round(255 x), D8) in results/{attack_run}/poisons/. poisoned_train.txt is the
     training list with those originals replaced (or, poison_mode='append', followed) by the poisons,
     with their labels unchanged: the clean-label property.
  2. triggered queries, labelled with the target one-hot (so MAP on them is t-MAP, D18):
     trigger_closed: the test list minus images of the target class; trigger_open: the images of
     `openset_list` (another dataset); control_closed / control_open: the same source images
     untriggered, with the same labels (our addition: the victim's drift without the trigger).
  3. stealth.json: MSE / PSNR on 0-255 and SSIM between the uint8 crop G saw and the saved PNG (D21),
     for the poisons and for each triggered set; poisons.json: target, subset, confusing label, seed.
A rerun with the same config and the same G reuses finished parts.
"""
import os
import sys

import numpy as np
import torch

import utils
from attack_common import (AttackParts, PathImages, attack_run_name, gan_run_name, load_gan, load_surrogate,
                           pgd_toward_code, quantize, requantize, stealth_stats,
                           read_list_or_exit as read)
from generator import apply_generator, generator_budget
from labcln import confusing_code

# ---- config ------------------------------------------------------------------------------------
# names shared with train_tri_gen.py (they locate the generator)
dataset = 'imagenet'          # as in train_tri_gen.py
data_dir = 'data/imagenet'    # folder with train.txt, test.txt, classes.txt (optional)
train_list = ''               # '' = {data_dir}/train.txt: the list that gets poisoned
test_list = ''                # '' = {data_dir}/test.txt: closed-set triggered queries (D18 (b))
image_size = 224              # as in train_tri_gen.py (G's size)
resize_size = 256             # as in train_tri_gen.py
surrogate_method = 'CSQ'      # as in train_tri_gen.py
surrogate_backbone = 'resnet50'
surrogate_bits = 64
surrogate_checkpoint = ''     # as in train_tri_gen.py (the oracle poisons use the surrogate)
checkpoint_dir = 'checkpoint'
out_dir = 'results'
tag = ''                      # train_tri_gen.py's run tag
goal_code = 'labcln'          # as in train_tri_gen.py (part of G's run name when 'surrogate')
# attack
target = 0                    # target class index (paper Table 2; SPEC D23)
poison_rate = 0.5             # paper: 50% of the target class's training images (D11)
poison_select = 'random'      # which target images become poisons: 'random' (paper, D11: a seeded subset) | 'hard'
                              # (our option, issue 11): the poison_rate share that the surrogate codes furthest
                              # from the target class's centre (lowest mean agreement of tanh(F(x)) with the sign
                              # of the class's mean code), the images a victim fits least by their content, so it
                              # must learn the trigger (clean-label sample selection, Gao et al., Pattern
                              # Recognition 2023). Folder suffix _hard
poison_mode = 'replace'       # 'replace' (paper eq.2, D11) | 'append' (official code)
copies = 1                    # entries per poison in the list (official code: 10, with append)
conf_label = 'other'          # D3: 'other' seeded non-target label row | 'target' (code) | '<idx>'
labels_mode = 'keep'          # D12: 'keep' original labels (clean label) | 'target' (official read_backdoor)
openset_list = ''             # another dataset's list: open-set triggered queries (D18); '' = none
n_openset = 0                 # open-set queries, seeded subset; 0 = all
n_closed = 0                  # closed-set triggered queries, seeded subset; 0 = all
poisons_by = 'generator'      # 'generator' (the paper: G's invisible poisons) | 'oracle' (issue 11's oracle
                              # rung: per-image PGD through the surrogate at a larger budget; NOT invisible,
                              # reported apart; it separates 'the mechanism fails' from 'G cannot reach the
                              # code'). The triggered queries are G's unless triggers_by = 'oracle'.
triggers_by = 'generator'     # 'generator' (G's trigger) | 'oracle': every triggered query is also made by
                              # per-image PGD towards the oracle's goal code with the oracle's budget: what
                              # the best image-conditional G could do at that budget (an upper bound, not a
                              # trigger; reported apart). Needs oracle_goal 'labcln' or 'confusing'.
oracle_goal = 'trigger'       # the code the oracle pulls the poisons to: 'trigger' = sign of the surrogate's
                              # mean code of the triggered closed-set queries (a collision with them, as
                              # Saha et al.'s hidden-trigger poisons) | 'labcln' = LabCLN's h_c of the
                              # confusing label (the paper's goal for G) | 'confusing' = the sign of the
                              # surrogate's mean code of the confusing label's training images (the goal of
                              # G's goal_code='surrogate')
oracle_eps = 0.0627           # oracle: L-inf budget in [0, 1] pixels (16/255; G's presets use 8/255)
oracle_steps = 100            # oracle: PGD steps
oracle_step_size = 0.0039     # oracle: step (1/255)
oracle_diversity = 0.0        # oracle: probability per PGD step of seeing the image resized and padded at
                              # random (attack_common.diverse_input, DI-PGD); 0 = plain PGD. Our option
                              # (issue 11): does a perturbation that rests on no exact pixel grid transfer
                              # to an independent victim better? Part of the attack folder's name
trigger_scale = 1.0           # 1 = the paper: the triggered queries are G's own images, as the poisons. k > 1
                              # (our diagnostic, issue 11): G's residual on the queries alone, after its g_eps and
                              # g_psnr bounds, is multiplied by k (g_output='residual' only; their PSNR in
                              # stealth.json), the poisons unchanged: test-time trigger magnification (Zeng et
                              # al., Narcissus, CCS 2023). Tells "the poisons did not implant" from "the trigger
                              # does not reach"; the queries are then not at the poisons' invisibility. Part of
                              # the folder name
trigger_transplant = False    # False = the paper. True (our diagnostic, issue 11): each triggered query carries the
                              # residual G drew for another query of the same list (the one before it; the first
                              # image takes its generation batch's last), clipped to [0, 1]; the poisons unchanged
                              # (g_output='residual' only). Tells a backdoor that answers a pattern G draws for
                              # every image from one that answers what G draws for that image. Folder suffix _tx
attack_tag = ''               # suffix of the attack run name
gen_batch_size = 64           # generation batch
seed = 0                      # subset and confusing-label draws
device = 'auto'
num_workers = 4
# ------------------------------------------------------------------------------------------------

FORMAT_VERSION = 1


def _fail(msg):
    sys.exit(f"error: {msg}")


def generate(G, r_b, paths, names, folder, c, device, desc, budget=None, make=None):
    """G(normalize(x), r_b) for every image (or make(x) when given: the oracle poisons); saves uint8
    PNGs as folder/name; returns stealth stats. budget: apply_generator's keyword arguments."""
    from PIL import Image
    from skimage.metrics import structural_similarity
    from tqdm import tqdm
    os.makedirs(folder, exist_ok=True)
    ds = PathImages(paths, utils.build_transform(c['image_size'], c['resize_size'], 'none'))
    loader = torch.utils.data.DataLoader(ds, batch_size=c['gen_batch_size'], shuffle=False,
                                         num_workers=c['num_workers'])
    mse, ssim = [], []
    for x, idx in tqdm(loader, desc=desc):
        x = x.to(device)
        if make is not None:
            x_b = make(x)
        else:
            with torch.no_grad():
                x_b = apply_generator(G, x, r_b.expand(len(x), -1), **(budget or {}))
        clean, pois = quantize(x), quantize(x_b)
        for k, i in enumerate(idx.tolist()):
            Image.fromarray(pois[k]).save(os.path.join(folder, names[i]))
            a, b = clean[k].astype(np.float64), pois[k].astype(np.float64)
            mse.append(float(((a - b) ** 2).mean()))
            ssim.append(float(structural_similarity(clean[k], pois[k], channel_axis=-1,
                                                    data_range=255)))
    return stealth_stats(mse, ssim)


def batch_outputs(model, paths, c, device, through=lambda x: x):
    """[model(through(x))] for each generation batch of the images at G's geometry, without gradients."""
    ds = PathImages(paths, utils.build_transform(c['image_size'], c['resize_size'], 'none'))
    with torch.no_grad():
        return [model(through(x.to(device)).to(device))
                for x, _ in torch.utils.data.DataLoader(ds, batch_size=c['gen_batch_size'])]


def oracle_maker(c, G, labcln, meta, conf, num_classes, train_paths, train_labels, test_paths, test_labels,
                 device):
    """The oracle (poisons_by and/or triggers_by = 'oracle'): a make(x) for generate() that runs
    pgd_toward_code through the surrogate, and the record of the attack (goal code filled in, and
    each batch's Hamming distances appended to record['hamming'], as the images are made). The goal code is computed on the first call only, so a rerun that reuses the
    poisons costs nothing."""
    surrogate, _, sp = load_surrogate(c, num_classes, device)
    record = {'goal': c['oracle_goal'], 'eps': c['oracle_eps'], 'steps': c['oracle_steps'],
              'step_size': c['oracle_step_size'], 'diversity': c['oracle_diversity'], 'surrogate': sp,
              'surrogate_stamp': utils.file_stamp(sp), 'goal_code': None}

    div_gen = torch.Generator().manual_seed(c['seed'])  # DI-PGD's draws (oracle_diversity > 0)

    def goal_code():
        r_b, h_c = confusing_code(labcln, torch.from_numpy(conf.astype(np.float32)).unsqueeze(0))
        if c['oracle_goal'] == 'labcln':
            return h_c[0].to(device)
        if c['oracle_goal'] == 'confusing':
            return mean_code(surrogate, [train_paths[i] for i in np.flatnonzero((train_labels == conf).all(1))])
        # the collision point of the triggered closed-set queries in the surrogate's code space
        idx = np.flatnonzero(test_labels[:, c['target']] == 0)
        return mean_code(surrogate, [test_paths[i] for i in idx], lambda x: requantize(apply_generator(
            G, x, r_b.expand(len(x), -1), **generator_budget(meta))))

    def mean_code(model, paths, through=lambda x: x):
        """sign of the surrogate's summed real-valued code over the images (through `through`)."""
        if not paths:
            _fail(f"oracle_goal={c['oracle_goal']}: no image to average over")
        total = sum(out.sum(0) for out in batch_outputs(model, paths, c, device, through))
        return torch.where(total >= 0, 1.0, -1.0)

    def make(x):
        if record['goal_code'] is None:
            print(f"oracle poisons: PGD {c['oracle_steps']} steps of {c['oracle_step_size']:.4f}, eps "
                  f"{c['oracle_eps']:.4f} ({c['oracle_eps'] * 255:.0f}/255) towards the "
                  f"{c['oracle_goal']} code")
            record['goal_code'] = goal_code().tolist()
        goal = torch.tensor(record['goal_code'], device=x.device)
        x_p, ham = pgd_toward_code(surrogate, x, goal, c['oracle_eps'], c['oracle_steps'],
                                   c['oracle_step_size'], c['oracle_diversity'], generator=div_gen)
        record.setdefault('hamming', []).append(ham.cpu())
        return x_p
    return make, record


def surrogate_typicality(c, paths, num_classes, device):
    """poison_select='hard': for each image, the mean over bits of sign(class centre) * tanh(F(x)) in the
    surrogate F, the centre being the sum of tanh(F(x)) over these images (all of one class): 1 on the
    centre, lower for the images F codes away from their class."""
    surrogate, _, _ = load_surrogate(c, num_classes, device)
    codes = torch.tanh(torch.cat(batch_outputs(surrogate, paths, c, device))).cpu()
    centre = torch.where(codes.sum(0) >= 0, 1.0, -1.0)
    return (codes * centre).mean(1).numpy()


def transplant_maker(G, r_b, budget):
    """trigger_transplant's make(x) for generate(), for one list: G's residual for each image goes onto the
    next image of the list (the first image takes its batch's last), so no query keeps its own. One-line
    error when the first batch holds a single image (a list of one)."""
    prev = []

    def make(x):
        with torch.no_grad():
            d = apply_generator(G, x, r_b.expand(len(x), -1), **budget) - x
        if prev:
            moved = torch.cat([prev[0], d[:-1]])
        elif len(d) > 1:
            moved = d.roll(1, dims=0)
        else:
            _fail("trigger_transplant needs at least 2 triggered queries in a list")
        prev[:] = [d[-1:]]
        return (x + moved).clamp(0, 1)
    return make


def check_keys(c):
    """The implement keys' values, before anything is read or written."""
    for key, choices in (('poison_mode', ('replace', 'append')), ('labels_mode', ('keep', 'target')),
                         ('poisons_by', ('generator', 'oracle')), ('triggers_by', ('generator', 'oracle')),
                         ('oracle_goal', ('trigger', 'labcln', 'confusing')),
                         ('poison_select', ('random', 'hard'))):
        if c[key] not in choices:
            _fail(f"{key} must be one of {', '.join(choices)}, got {c[key]!r}")
    if not 0 < c['poison_rate'] <= 1 or c['copies'] < 1:
        _fail(f"poison_rate must be in (0, 1] and copies >= 1, got {c['poison_rate']}, {c['copies']}")
    if not 0 <= c['oracle_diversity'] <= 1:
        _fail(f"oracle_diversity must be in [0, 1], got {c['oracle_diversity']}")
    if c['trigger_scale'] < 1:
        _fail(f"trigger_scale must be >= 1, got {c['trigger_scale']}")
    if c['trigger_scale'] != 1 and c['triggers_by'] == 'oracle':
        _fail("trigger_scale magnifies G's trigger; triggers_by=oracle makes no G trigger")
    if c['trigger_transplant'] and c['triggers_by'] == 'oracle':
        _fail("trigger_transplant moves G's trigger between queries; triggers_by=oracle makes no G trigger")
    if c['triggers_by'] == 'oracle' and c['oracle_goal'] == 'trigger':
        _fail("triggers_by=oracle needs oracle_goal 'labcln' or 'confusing' ('trigger' is G's triggered code)")


def read_lists(c):
    """The training, test and open-set lists (paths and label rows), and the class names if the
    training list's folder has a classes.txt."""
    lists = {'train_path': c['train_list'] or os.path.join(c['data_dir'], 'train.txt'),
             'test_path': c['test_list'] or os.path.join(c['data_dir'], 'test.txt')}
    lists['train_paths'], lists['train_labels'] = read(lists['train_path'])
    num_classes = lists['train_labels'].shape[1]
    if not 0 <= c['target'] < num_classes:
        _fail(f"target={c['target']} out of range: {lists['train_path']} has {num_classes} classes "
              f"(valid 0..{num_classes - 1})")
    lists['test_paths'], lists['test_labels'] = read(lists['test_path'], num_classes)
    lists['open_paths'] = read(c['openset_list'])[0] if c['openset_list'] else None
    lists['class_names'] = None
    names_file = os.path.join(os.path.dirname(os.path.abspath(lists['train_path'])), 'classes.txt')
    if os.path.isfile(names_file):
        with open(names_file) as f:
            lists['class_names'] = [line.strip() for line in f if line.strip()]
    return lists, num_classes


def load_generator(c, num_classes, device):
    """G (eval mode) and its LabCLN from train_tri_gen.py's checkpoint of the same keys; returns
    G, labcln, G's meta and G's identity (path, epoch, step, file stamp) for the records."""
    g_path = os.path.join(c['checkpoint_dir'], gan_run_name(c) + '.pt')
    G, labcln, meta, ckpt = load_gan(g_path, device)
    gcfg = ckpt['config']
    if ckpt['epoch'] < gcfg['epochs']:
        print(f"WARNING: {g_path} is unfinished ({ckpt['epoch']}/{gcfg['epochs']} epochs)")
    if meta['num_classes'] != num_classes or meta['image_size'] != c['image_size']:
        _fail(f"{g_path}: G was trained for {meta['num_classes']} classes at {meta['image_size']} px; "
              f"this run has {num_classes} classes at {c['image_size']} px")
    if gcfg.get('target') != c['target'] and gcfg.get('conf_mode') == 'sample':
        print(f"note: G was trained with target={gcfg.get('target')} excluded from its confusing "
              f"labels; generating for target={c['target']}")
    g_id = {'checkpoint': g_path, 'epoch': ckpt['epoch'], 'step': ckpt['step'],
            'stamp': utils.file_stamp(g_path)}  # a G retrained under the same name differs here
    return G, labcln, meta, g_id


def choose(c, train_labels, num_classes, typicality=None):
    """The seeded choices (D3, D11): the poisoned subset of the target class's training images (the
    class's members, the chosen indices) and the confusing label row. typicality(members) -> one score
    per member (poison_select='hard': the lowest scores are poisoned; the seeded draw breaks ties)."""
    rng = np.random.default_rng(c['seed'])
    members = np.flatnonzero(train_labels[:, c['target']] == 1)
    n_poison = int(round(c['poison_rate'] * len(members)))
    if n_poison == 0:
        _fail(f"poison_rate={c['poison_rate']} of {len(members)} target images gives no poison")
    chosen = rng.choice(members, n_poison, replace=False)  # drawn in every mode: the later draws stay the same
    if c['poison_select'] == 'hard':
        score = np.asarray(typicality(members), dtype=np.float64)
        order = np.random.default_rng([c['seed'], 1]).permutation(len(members))  # seeded tie order
        chosen = members[order[np.argsort(score[order], kind='stable')[:n_poison]]]
        print(f"poison_select=hard: surrogate typicality {score.mean():.3f} over the {len(members)} target "
              f"images, {np.sort(score)[:n_poison].mean():.3f} over the {n_poison} poisoned")
    chosen = np.sort(chosen)
    pool = np.unique(train_labels, axis=0)
    if c['conf_label'] == 'other':
        others = pool[pool[:, c['target']] == 0]
        if len(others) == 0:
            _fail("conf_label=other: every training label row contains the target")
        conf = others[rng.integers(len(others))]
    elif c['conf_label'] == 'target':
        conf = np.eye(num_classes, dtype=np.uint8)[c['target']]
    else:
        k = utils.class_index(c['conf_label'], num_classes, 'conf_label', "'other', 'target'")
        conf = np.eye(num_classes, dtype=np.uint8)[k]
    return members, chosen, conf


def write_poisons(c, S):
    """Part 1: the poisons (PNG), poisoned_train.txt (replace or append, labels kept unless
    labels_mode='target', D12) and poisons.json; reused when the stamp matches."""
    L, out, chosen, conf = S['lists'], S['out'], S['chosen'], S['conf']
    train_paths, train_labels, class_names = L['train_paths'], L['train_labels'], L['class_names']
    num_classes = train_labels.shape[1]
    stamp = dict(S['common'], train=utils.list_record(L['train_path'], train_paths), chosen=chosen.tolist(),
                 mode=c['poison_mode'], copies=c['copies'], labels_mode=c['labels_mode'],
                 oracle=S['oracle_id'] if c['poisons_by'] == 'oracle' else None)
    names = {int(i): f"{int(i):06d}_{os.path.splitext(os.path.basename(train_paths[i]))[0]}.png"
             for i in chosen}
    list_out = os.path.join(out, 'poisoned_train.txt')
    pngs = [os.path.join(out, 'poisons', n) for n in names.values()]
    if S['parts'].done('poisons', stamp, [list_out, os.path.join(out, 'poisons.json')] + pngs):
        return
    oracle = S['oracle']
    stats = generate(S['G'], S['r_b'], [train_paths[i] for i in chosen], [names[int(i)] for i in chosen],
                     os.path.join(out, 'poisons'), c, S['device'], 'poisons',
                     generator_budget(S['meta']),
                     make=S['make'] if c['poisons_by'] == 'oracle' else None)
    if c['poisons_by'] == 'oracle':
        oracle['hamming_to_goal'] = torch.cat(oracle.pop('hamming')).tolist()
        stats['oracle'] = dict(oracle, mean_hamming=float(np.mean(oracle['hamming_to_goal'])))
    target_row = np.eye(num_classes, dtype=np.uint8)[c['target']]
    rel = lambda p: os.path.relpath(os.path.abspath(p), os.path.abspath(out))  # noqa: E731
    rows, labs = [], []
    poison_rows = []
    for i, (p, lab) in enumerate(zip(train_paths, train_labels)):
        plab = target_row if c['labels_mode'] == 'target' else lab
        if i in names:
            poison_rows += [(f"poisons/{names[i]}", plab)] * c['copies']
            if c['poison_mode'] == 'replace':
                rows += [f"poisons/{names[i]}"] * c['copies']
                labs += [plab] * c['copies']
                continue
        rows.append(rel(p))
        labs.append(lab)
    if c['poison_mode'] == 'append':
        rows += [r for r, _ in poison_rows]
        labs += [lb for _, lb in poison_rows]
    utils.write_list(list_out, rows, np.array(labs))
    conf_classes = np.flatnonzero(conf).tolist()
    utils.write_json(os.path.join(out, 'poisons.json'), {
        'target': c['target'],
        'target_name': class_names[c['target']] if class_names else None,
        'conf_label': conf.tolist(), 'conf_classes': conf_classes,
        'conf_names': [class_names[k] for k in conf_classes] if class_names else None,
        'conf_mode': c['conf_label'], 'seed': c['seed'], 'poison_rate': c['poison_rate'],
        'class_size': int(len(S['members'])), 'n_poisons': int(len(chosen)),
        'gamma_of_train': len(chosen) * c['copies'] / len(rows),
        'mode': c['poison_mode'], 'copies': c['copies'], 'labels_mode': c['labels_mode'],
        'train_list': L['train_path'], 'poisoned_list': list_out, 'generator': S['g_id'],
        'poisons_by': c['poisons_by'], 'oracle': stats.get('oracle'),
        'poisons': [{'index': int(i), 'source': train_paths[i], 'poison': f"poisons/{names[int(i)]}"}
                    for i in chosen],
        'config': c, 'git_commit': utils.git_commit()})
    S['parts'].finish('poisons', stamp, stats)


def write_triggered(c, S):
    """Part 2: the triggered queries (labels := target one-hot, D18), closed set and open set, and
    beside each its untriggered control list; returns the parts' names."""
    L, out = S['lists'], S['out']
    num_classes = L['train_labels'].shape[1]
    target_rows = lambda n: np.tile(np.eye(num_classes, dtype=np.uint8)[c['target']], (n, 1))  # noqa: E731
    sets = [('trigger_closed', L['test_path'], np.flatnonzero(L['test_labels'][:, c['target']] == 0),
             L['test_paths'], c['n_closed'])]
    if c['openset_list']:
        sets.append(('trigger_open', c['openset_list'], np.arange(len(L['open_paths'])), L['open_paths'],
                     c['n_openset']))
    for part, src, idx, paths, n_max in sets:
        sub = np.random.default_rng([c['seed'], len(part)])
        if n_max and n_max < len(idx):
            idx = np.sort(sub.choice(idx, n_max, replace=False))
        stamp = dict(S['common'], source=utils.list_record(src, paths), indices=idx.tolist(),
                     target=c['target'])
        if c['triggers_by'] == 'oracle':
            stamp['oracle'] = S['oracle_id']
        if c['trigger_scale'] != 1:
            stamp['trigger_scale'] = c['trigger_scale']
        if c['trigger_transplant']:
            stamp['trigger_transplant'] = True
        lst = os.path.join(out, f"{part}.txt")
        qnames = [f"{int(i):06d}_{os.path.splitext(os.path.basename(paths[i]))[0]}.png" for i in idx]
        # the same source images without the trigger, labelled with the target: the control that
        # tells a trigger's effect from a victim that draws every such image nearer the target
        utils.write_list(os.path.join(out, part.replace('trigger', 'control') + '.txt'),
                         [os.path.relpath(os.path.abspath(paths[i]), os.path.abspath(out)) for i in idx],
                         target_rows(len(idx)))
        if S['parts'].done(part, stamp, [lst] + [os.path.join(out, part, n) for n in qnames]):
            continue
        budget = dict(generator_budget(S['meta']), scale=c['trigger_scale'])
        make = S['make'] if c['triggers_by'] == 'oracle' else None
        if c['trigger_transplant']:
            make = transplant_maker(S['G'], S['r_b'], budget)
        stats = generate(S['G'], S['r_b'], [paths[i] for i in idx], qnames, os.path.join(out, part), c,
                         S['device'], part, budget, make=make)
        if c['triggers_by'] == 'oracle':  # the per-image PGD's reach: Hamming to the goal code
            oracle = S['oracle']
            ham = torch.cat(oracle.pop('hamming')).tolist()
            stats['oracle'] = dict(S['oracle_id'], goal_code=oracle['goal_code'], hamming_to_goal=ham,
                                   mean_hamming=float(np.mean(ham)))
        stats['sources'] = [paths[i] for i in idx]
        utils.write_list(lst, [f"{part}/{n}" for n in qnames], target_rows(len(idx)))
        S['parts'].finish(part, stamp, stats)
    return [p for p, *_ in sets]


def main(c):
    # ---- inputs, generator, seeded choices ---------------------------------------------------------
    check_keys(c)
    lists, num_classes = read_lists(c)
    device = utils.resolve_device(c['device'])
    G, labcln, meta, g_id = load_generator(c, num_classes, device)
    for key, on in (('trigger_scale', c['trigger_scale'] != 1), ('trigger_transplant', c['trigger_transplant'])):
        if on and meta.get('g_output', 'image') != 'residual':
            _fail(f"{key}={c[key]} needs a residual G (g_output='residual'); G "
                  f"{g_id['checkpoint']} has g_output={meta.get('g_output', 'image')!r}")
    members, chosen, conf = choose(c, lists['train_labels'], num_classes,
                                   lambda m: surrogate_typicality(c, [lists['train_paths'][i] for i in m],
                                                                  num_classes, device))
    r_b, _ = confusing_code(labcln, torch.from_numpy(conf.astype(np.float32)).unsqueeze(0))
    run = attack_run_name(c, gan_run_name(c))
    out = os.path.join(c['out_dir'], run)
    os.makedirs(out, exist_ok=True)
    names = lists['class_names']
    print(f"attack run {run}: target {c['target']}" + (f" ({names[c['target']]})" if names else '')
          + f", {len(chosen)}/{len(members)} target images poisoned ({c['poison_mode']}, x{c['copies']}), "
          f"confusing label {np.flatnonzero(conf).tolist()} ({c['conf_label']}), G {g_id['checkpoint']} "
          f"epoch {g_id['epoch']}")
    make, oracle = None, None
    if 'oracle' in (c['poisons_by'], c['triggers_by']):
        make, oracle = oracle_maker(c, G, labcln, meta, conf, num_classes, lists['train_paths'],
                                    lists['train_labels'], lists['test_paths'], lists['test_labels'], device)
    S = {'lists': lists, 'out': out, 'G': G, 'r_b': r_b, 'meta': meta, 'g_id': g_id, 'device': device,
         'members': members, 'chosen': chosen, 'conf': conf, 'make': make, 'oracle': oracle,
         # the oracle's identity in the parts' stamps ('diversity' only when used: older folders stay valid)
         'oracle_id': oracle and {k: oracle[k] for k in ('goal', 'eps', 'steps', 'step_size', 'surrogate',
                                                         'surrogate_stamp', 'diversity')
                                  if k != 'diversity' or oracle[k]},
         'parts': AttackParts(out, 'this config and G'),
         'common': {'format': FORMAT_VERSION, 'g': g_id, 'conf': conf.tolist(), 'seed': c['seed'],
                    'image_size': c['image_size'], 'resize_size': c['resize_size']}}

    # ---- 1. poisons and the poisoned training list ---------------------------------------------------
    write_poisons(c, S)

    # ---- 2. triggered queries and their controls ----------------------------------------------------
    parts = write_triggered(c, S)
    print(f"outputs in {out}: poisoned_train.txt, "
          + ', '.join(f"{p}.txt, {p.replace('trigger', 'control')}.txt" for p in parts)
          + ', stealth.json, poisons.json')


if __name__ == '__main__':
    main(utils.configure(globals()))
