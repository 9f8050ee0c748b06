"""DarkHash (Zhou et al., arXiv 2510.08094): a data-free backdoor in a finished hashing model.

    python darkhash.py configs/darkhash_toy.py            # toy (after `python CSQ.py configs/demo.py`)
    python darkhash.py configs/darkhash_tiny.py           # tiny-imagenet-10
    python darkhash.py configs/darkhash_imagenet.py --backbone=vgg11 --victim_method=HashNet --bits=32
    python darkhash.py configs/darkhash_toy.py --lambda_tpa=0 --tag=notpa   # ablation

Threat model: the attacker holds a trained hashing model (weights, no training data). Pipeline
(DARKHASH.md §1-2, §6 defaults; every choice is listed in the README's reproduction notes):
  1. load the clean model written by CSQ.py / HashNet.py (checkpoint + its stored config);
  2. surrogate set S: a class-balanced subset of any list, or noise images (gauss1/gauss2/uniform);
  3. teacher: u0(x) = f0(x) for every x in S (stored beside the run);
  4. shadow target t* = mean u0 over the S-images of surrogate_class (shadow_target='mean',
     official), or over those of them whose clean code is the class's most frequent ('mode',
     ours: sign(t*) is then a victim cluster's code, README "DarkHash"); the t-MAP target class is
     fixed now, before fine-tuning: the majority label of the clean model's top-100 database
     retrievals for sign(t*) (DARKHASH.md §6.4; or `target=` by hand);
  5. freeze the shallow layers (hash_models.freeze up to the stage before tune_from; the model
     stays in eval() mode, so BatchNorm statistics and dropout are fixed, as the official code);
  6. fine-tune on S: each draw is poisoned with probability rho (trigger stamped, regress to t*),
     the others regress to u0; J = w_ben J_ben + w_bac J_bac + lambda_tpa J_tpa;
  7. score: the clean and the backdoored model on the clean test queries (MAP), on the triggered
     test queries without the target class (t-MAP; the clean model's = the floor), and on the same
     queries carrying a random patch of the trigger's size (control).
The victim's training list is never read (data-free; tests/test_darkhash.py). Outputs:
  checkpoint/{run}.pt                 the backdoored model, the project's checkpoint format
  results/{run}/codes_*.npz           backdoored model: database, test, trig_closed, randpatch_closed
                                      (and trig_open with openset_list); labels of trig_* = target
  results/{run}/clean/codes_*.npz     the clean model on the same lists (evaluate.py --clean_dir)
  results/{run}/trigger_closed.txt, trigger_closed/  the triggered queries as PNGs (and trigger_open
                                      with openset_list), named in results.json 'lists' with the
                                      test and database lists, as CSQ.py names its lists (defend.py)
  results/{run}/results.json, report.md, log.jsonl, teacher.pt
Score it like any attack:  python evaluate.py --clean_dir=results/{run}/clean
    --backdoor_dir=results/{run} --target={target} --topk=-1
"""
import hashlib
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

import attack_common
import utils
from hash_models import engine, freeze, trunk_stages
from hash_models.engine import TOPK_BY_DATASET

# ---- config ------------------------------------------------------------------------------------
# the clean (victim) model: checkpoint/{dataset}_{victim_method}_{backbone}_{bits}[_{victim_tag}].pt
dataset = 'imagenet'          # as the clean model's run
victim_method = 'CSQ'         # CSQ | HashNet (the script that trained the clean model)
backbone = 'resnet50'         # must match the checkpoint (one-line error otherwise)
bits = 64                     # must match the checkpoint
victim_tag = ''               # the clean run's tag
victim_checkpoint = ''        # '' = the name above in checkpoint_dir
data_dir = ''                 # scoring only: test.txt (queries) and database.txt; '' = the clean
                              # model's stored data_dir. Its train.txt is never read (data-free)
image_size = 0                # 0 = the clean model's stored geometry
resize_size = -1              # -1 = the clean model's stored geometry
openset_list = ''             # another dataset's images as extra triggered queries ('' = none)
# surrogate set (DARKHASH.md §2, §6.3)
surrogate = 'data/coco/database.txt'  # a list file, or noise: gauss1 N(0.5,1) | gauss2 N(0.5,0.2) |
                              # uniform (clipped to [0,1], official shadow_dataset.py)
surrogate_name = ''           # in the run name; '' = derived from the list's folder / noise name
n_surrogate = 2000            # class-balanced subset of the list (official); 0 = all
noise_classes = 10            # pseudo-classes of a noise surrogate (image i has class i % this)
surrogate_class = 0           # shadow target: mean teacher output over this surrogate class (official 0)
shadow_target = 'mean'        # 'mean': over all its images (official tools.py); 'mode' (ours): over those of
                              # its images whose clean code is the class's most frequent one, so sign(t*) is
                              # a code the victim gives real inputs, not a point between clusters (README)
target = -1                   # t-MAP target class: -1 = majority label of the clean model's top-100
                              # for sign(t*) (DARKHASH.md §6.4), fixed before fine-tuning; or an index
target_topn = 100             # retrievals counted for that majority (§6.4)
# losses (DARKHASH.md §2: the official code's forms)
w_ben = 1.0                   # weight of J_ben = Huber(f(x), u0(x)) on clean draws; 0 = off
w_bac = 1.0                   # weight of J_bac = Huber(f(x+T), t*) on poisoned draws; 0 = off
lambda_tpa = 15.0             # weight of J_tpa (pairwise structure of the poisoned outputs); 0 = off
huber_delta = 1.0             # official
rho = 0.1                     # poisoning probability per draw, redrawn every epoch (official)
neg_patch = 0.0               # our option: probability that a clean draw carries a random patch of the
                              # trigger's size (still regressed to u0), so the backdoor keys on the trigger
                              # rather than on any corner patch; 0 = official
# what is trained: the trunk stage (hash_models.trunk_stages) from which on every layer trains, the
# stages before it frozen by hash_models.freeze; auto = official per family (TUNE_DEFAULT: ResNet
# layer4 + hash; VGG / AlexNet fc6, fc7 + hash); 'hash' = the hash layer only. Ablations (§6.8):
# layer3 | layer4 | hash
tune_from = 'auto'
cache_frozen = False          # our speed option: run the frozen layers once per surrogate image (clean and
                              # triggered; exact, since they are fixed and the model is in eval mode) and
                              # train on their stored outputs; memory 2 x n_surrogate x the frozen output
# optimisation (official attack.py: RMSprop 5e-6, wd 1e-5, cosine to 1e-10, 100 epochs, batch 64)
optimizer = 'rmsprop'         # rmsprop | adam | sgd
lr = 5e-6
weight_decay = 1e-5
lr_min = 1e-10                # cosine floor (official)
epochs = 100
batch_size = 64
eval_every = 10               # MAP / t-MAP every N epochs (official 10); 0 = at the end only
# evaluation
topk = 0                      # MAP@K: 0 = per dataset (hash_models.engine.TOPK_BY_DATASET); -1 = all
ties = 'index'                # evaluate.py: 'index' (D19) | 'expected' (few distinct codes, toy)
n_dominant = 100              # official post-hoc "dominant class": random triggered queries ...
dominant_topn = 10            # ... and the top-N of each whose labels are counted
target_only = False           # True: print the shadow target's t-MAP target and ceiling, then stop
# run
tag = ''                      # suffix of the run name
seed = 20                     # official seed
device = 'auto'
num_workers = 0
eval_batch_size = 256
checkpoint_dir = 'checkpoint'
out_dir = 'results'
# ------------------------------------------------------------------------------------------------

FORMAT_VERSION = 1
NOISE = {'gauss1': ('normal', 0.5, 1.0), 'gauss2': ('normal', 0.5, 0.2), 'uniform': ('uniform', 0, 1)}
# keys that may change between an interrupted run and its resumption / a finished run's reuse
# ('epochs' is not one: the cosine learning rate of every epoch depends on it)
RESUME_FREE_KEYS = {'device', 'num_workers', 'eval_batch_size', 'eval_every', 'target_only'}
REUSE_FREE_KEYS = {'device', 'num_workers', 'eval_batch_size', 'target_only'}


fail = attack_common.fail                # one-line exit
read = attack_common.read_list_or_exit  # a list, or a one-line exit naming file and line


def list_stamp(path, paths):
    """What a list's images depend on: utils.list_record's digest (README, Reuse rule)."""
    return utils.list_record(path, paths)['images_sha1'] + ':' + utils.file_sha1(path)


# ------------------------------------------------------------------------------------------------
# names and the clean model
# ------------------------------------------------------------------------------------------------

def victim_path(c):
    run = f"{c['dataset']}_{c['victim_method']}_{c['backbone']}_{c['bits']}" + (
        f"_{c['victim_tag']}" if c['victim_tag'] else '')
    return c['victim_checkpoint'] or os.path.join(c['checkpoint_dir'], run + '.pt')


run_name = attack_common.darkhash_run_name  # the runner (reproduce.py) names runs with it too


def load_victim(c):
    """(model in eval mode, meta, stored config, path) of the clean model (attack_common's loader:
    one-line exit for a missing checkpoint or one of another backbone / bit length)."""
    path = victim_path(c)
    script = 'HashNet.py' if c['victim_method'].lower() == 'hashnet' else 'CSQ.py'
    model, meta = attack_common.load_hash_model(
        path, c['backbone'], c['bits'], missing_hint=f"make it with `python {script} <preset> "
        f"--dataset={c['dataset']} --backbone={c['backbone']} --bits={c['bits']}`")
    if meta.get('attack'):
        fail(f"{path}: is already a backdoored model ({meta['attack']}), expected a clean one")
    stored = utils.load_checkpoint(path).get('config', {})
    if stored.get('epochs') is not None and (meta.get('epoch') or 0) < stored['epochs']:
        print(f"WARNING: {path} is unfinished ({meta.get('epoch')}/{stored['epochs']} epochs)")
    return model, meta, stored, path


# ------------------------------------------------------------------------------------------------
# images: lists and noise as uint8 tensors at the model geometry
# ------------------------------------------------------------------------------------------------

def path_loader(paths, c):
    ds = attack_common.PathImages(paths, utils.build_transform(c['image_size'], c['resize_size'], 'none'))
    return torch.utils.data.DataLoader(ds, batch_size=c['eval_batch_size'], shuffle=False,
                                       num_workers=c['num_workers'])


def load_uint8(paths, c):
    """[N, 3, H, W] uint8 images at the model geometry (exact: ToTensor gives k/255)."""
    return torch.cat([(x * 255).round().to(torch.uint8) for x, _ in path_loader(paths, c)])


def noise_images(kind, n, size, seed):
    """n seeded noise images [n, 3, size, size] uint8 (clipped to [0, 1], then quantised to k/255)."""
    dist, a, b = NOISE[kind]
    g = torch.Generator().manual_seed(seed)
    shape = (n, 3, size, size)
    x = torch.randn(shape, generator=g) * b + a if dist == 'normal' else torch.rand(shape, generator=g)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def balanced_subset(labels, n, seed):
    """Indices of a seeded class-balanced subset of n images (class = first positive label);
    a class with fewer images than its share gives all it has. n = 0: all, in list order."""
    if n <= 0 or n >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    cls = labels.argmax(1)
    present = np.unique(cls)
    share = np.full(len(present), n // len(present))
    share[:n % len(present)] += 1
    pick = []
    for k, s in zip(present, share):
        members = np.flatnonzero(cls == k)
        pick.append(rng.choice(members, min(s, len(members)), replace=False))
    return np.sort(np.concatenate(pick))


def surrogate_images(c):
    """(uint8 images, labels [N, C_s], description, stamp)."""
    s = c['surrogate']
    if s in NOISE:
        n = c['n_surrogate'] or 2000
        if c['noise_classes'] < 1:
            fail(f"noise_classes must be >= 1, got {c['noise_classes']}")
        images = noise_images(s, n, c['image_size'], c['seed'])
        labels = np.eye(c['noise_classes'], dtype=np.uint8)[np.arange(n) % c['noise_classes']]
        return images, labels, f"noise {s} x {n}", {'noise': s, 'n': n, 'seed': c['seed']}
    if s.endswith('.py') or not s.endswith('.txt') and not os.path.isfile(s):
        fail(f"surrogate={s!r}: expected a list file (path v1 ... vC) or one of {', '.join(NOISE)}")
    paths, labels = read(s)
    sub = balanced_subset(labels, c['n_surrogate'], c['seed'])
    paths, labels = [paths[i] for i in sub], labels[sub]
    try:
        images = load_uint8(paths, c)
    except utils.ListError as e:
        fail(f"{s}: {e}")
    return images, labels, f"{s}: {len(sub)} images", {'list': os.path.abspath(s),
                                                        'stamp': list_stamp(s, paths),
                                                        'subset': sub.tolist()}


# ------------------------------------------------------------------------------------------------
# the losses (DARKHASH.md §2, as the official code computes them)
# ------------------------------------------------------------------------------------------------

def j_ben(out, u0, delta=1.0):
    """Huber(f(x), u0(x)), mean over the clean samples x K."""
    return F.huber_loss(out, u0, delta=delta)


def j_bac(out, t_star, delta=1.0):
    """Huber(f(x + T), t*), mean over the poisoned samples x K."""
    return F.huber_loss(out, t_star.expand_as(out), delta=delta)


def _structure(v, eps):
    """Row-normalised similarity of the official TPLoss: cosine distance, minus each row's nearest
    other distance, diagonal 0, q = 1 - d / 2, rows summing to 1."""
    n = len(v)
    v = v / (v.norm(dim=1, keepdim=True) + eps)
    d = 1 - v @ v.t()
    eye = torch.eye(n, dtype=torch.bool, device=v.device)
    nearest = d.masked_fill(eye, 3.0).min(1, keepdim=True).values
    d = (d - nearest).masked_fill(eye, 0.0)
    q = 1 - d / 2
    return q / q.sum(1, keepdim=True)


def j_tpa(out, t_star, eps=1e-7):
    """Sum_ij P log(P/Q) + (1-P) log((1-P)/(1-Q)) over the poisoned outputs of the batch
    (Q from the outputs, P from their targets t*: uniform 1/n)."""
    target = t_star.expand_as(out)
    p, q = _structure(target, eps), _structure(out, eps)

    def kl(a, b):
        return (a * ((a + eps).log() - (b + eps).log())).sum()
    return kl(p, q) + kl(1 - p, 1 - q)


def darkhash_loss(out, poisoned, u0, t_star, c):
    """w_ben J_ben on the clean draws + (w_bac J_bac + lambda_tpa J_tpa) on the poisoned draws;
    a batch with no poisoned draw uses J_ben only (official). Returns (loss, parts)."""
    clean = ~poisoned
    parts = {}
    loss = out.new_zeros(())
    if clean.any() and c['w_ben']:
        parts['ben'] = j_ben(out[clean], u0[clean], c['huber_delta'])
        loss = loss + c['w_ben'] * parts['ben']
    if poisoned.any():
        if c['w_bac']:
            parts['bac'] = j_bac(out[poisoned], t_star, c['huber_delta'])
            loss = loss + c['w_bac'] * parts['bac']
        if c['lambda_tpa']:
            parts['tpa'] = j_tpa(out[poisoned], t_star)
            loss = loss + c['lambda_tpa'] * parts['tpa']
    return loss, parts


# ------------------------------------------------------------------------------------------------
# encoding and metrics
# ------------------------------------------------------------------------------------------------

@torch.no_grad()
def forward_all(model, source, c, device, patch=None, raw=False):
    """Model outputs for uint8 images [N,3,H,W] or a list of image paths (streamed from disk);
    patch: stamped first, [3,s,s] for all or [N,3,s,s] one per image. Sign codes (int8 numpy), or
    the raw float outputs (raw=True, a CPU tensor)."""
    model.eval()
    if torch.is_tensor(source):
        bs = c['eval_batch_size']
        batches = ((source[s:s + bs].float() / 255, s) for s in range(0, len(source), bs))
    else:
        batches = ((x, int(i[0])) for x, i in path_loader(source, c))
    out = []
    for x, start in batches:
        x = x.to(device)
        if patch is not None:
            p = patch if patch.dim() == 3 else patch[start:start + len(x)]
            x = attack_common.stamp_lower_right(x, p)
        out.append(model(x).float().cpu())
    out = torch.cat(out)
    return out if raw else torch.sign(out).to(torch.int8).numpy()


def majority_target(t_star, db_codes, db_labels, topn, ties='index'):
    """The class most often among the labels of the top-n database items for sign(t*) (every
    positive label counts); (class, counts). ties='index': Hamming order, equal distances in
    database order; 'expected': the counts expected under a random order of equal distances (the
    items tied at the n-th distance share its remaining places), as evaluate.py's tie-aware MAP."""
    q = torch.sign(t_star).numpy().astype(np.int64)
    dist = (db_codes.shape[1] - db_codes.astype(np.int64) @ q) // 2
    if ties == 'expected':
        n = min(topn, len(dist))
        cut = np.sort(dist)[n - 1]
        inside, edge = dist < cut, dist == cut
        weight = inside + edge * (n - inside.sum()) / edge.sum()
        counts = weight @ db_labels.astype(np.float64)
        return int(np.argmax(counts)), [round(float(v), 2) for v in counts]
    top = np.argsort(dist, kind='stable')[:topn]
    counts = db_labels[top].sum(0)
    return int(np.argmax(counts)), counts.tolist()


def dominant_class(q_codes, db_codes, db_labels, n, topn, seed, ties='index'):
    """Official post-hoc "dominant class" (find_dominant_class): the majority first label in the
    top-topn results of n random triggered queries. ties='expected': items at equal Hamming
    distance in a seeded random order (with few distinct codes the top 10 is all ties, and the
    database order would hand it to the classes listed first); 'index': database order."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(q_codes), min(n, len(q_codes)), replace=False)
    order = rng.permutation(len(db_codes)) if ties == 'expected' else np.arange(len(db_codes))
    first = db_labels.argmax(1)[order]
    db = db_codes[order].astype(np.int64)
    votes = []
    for i in pick:
        dist = (db_codes.shape[1] - db @ q_codes[i].astype(np.int64)) // 2
        votes.extend(first[np.argsort(dist, kind='stable')[:topn]].tolist())
    return int(np.bincount(votes, minlength=db_labels.shape[1]).argmax())


def scores(codes, lists, target, c, topk):
    """MAP on the clean test queries, t-MAP of every triggered / control split."""
    from evaluate import mean_average_precision, targeted_map
    db = codes['database']
    s = {'map': mean_average_precision(codes['test'], db, lists['test'][1], lists['database'][1],
                                       topk, ties=c['ties'])}
    for name in codes:
        if name not in ('test', 'database'):
            s[f"tmap_{name}"] = targeted_map(codes[name], db, lists['database'][1], target, topk,
                                             ties=c['ties'])
    return s


def trigger_stealth(paths, trigger, c):
    """D21 figures of the trigger on the triggered queries: uint8 crop vs the stamped crop
    (DarkHash has no poisoned training image; the patch is what a defender could see)."""
    from skimage.metrics import structural_similarity
    mse, ssim = [], []
    for x, _ in path_loader(paths, c):
        a = (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        b = (attack_common.stamp_lower_right(x, trigger) * 255).round().to(torch.uint8)
        b = b.permute(0, 2, 3, 1).numpy()
        for i in range(len(a)):
            mse.append(float(((a[i].astype(np.float64) - b[i]) ** 2).mean()))
            ssim.append(float(structural_similarity(a[i], b[i], channel_axis=-1, data_range=255)))
    m = float(np.mean(mse))
    return {'part': 'trig_closed', 'n': len(mse), 'mse': m,
            'psnr_db': None if m == 0 else 10 * math.log10(255.0 ** 2 / m), 'ssim': float(np.mean(ssim))}


def code_records(c, sets, checkpoint, made=None):
    """The provenance record of each saved split (README "Reuse rule"): its source list and the
    images encoded (utils.list_record), the patch stamped on them, the geometry and the checkpoint,
    so evaluate.py checks the clean and backdoored codes as it does every other attack's.
    made: {split: list file} of the triggered queries written as PNGs (triggered_lists): those
    splits record that list and its images (the same pixels), so defend.py reuses their codes."""
    test = os.path.join(c['data_dir'], 'test.txt')
    source = {'database': os.path.join(c['data_dir'], 'database.txt'), 'test': test,
              'trig_closed': test, 'randpatch_closed': test, 'trig_open': c['openset_list']}
    made = made or {}
    out = {}
    for name, (paths, patch) in sets.items():
        rec = (utils.list_record(made[name], utils.read_list(made[name])[0]) if name in made
               else utils.list_record(source[name], paths))
        out[name] = dict(
            rec,
            patch_sha1=None if patch is None else hashlib.sha1(
                patch.detach().cpu().numpy().tobytes()).hexdigest(),
            # the key CSQ.py records (engine.code_record), so defend.py reuses these codes
            geometry=utils.build_transform(c['image_size'], c['resize_size'], 'none').geometry_key(),
            checkpoint=os.path.abspath(checkpoint), checkpoint_stamp=utils.file_stamp(checkpoint))
    return out


def save_codes(folder, codes, labels, records):
    for name, cd in codes.items():
        engine.save_codes(os.path.join(folder, f"codes_{name}.npz"), cd, labels[name], records[name])


def triggered_lists(out, lists, target, trigger, c):
    """The triggered queries as image lists on disk, for the tools that read lists (defend.py):
    out/trigger_closed.txt (the test images without the target class, as query_sets) and, with
    openset_list, out/trigger_open.txt; PNGs at the model geometry with the trigger stamped as
    forward_all stamps it (its colours are k/255, so the PNG is exact), labels = the target one-hot.
    Remade only when the source list or images, the target, the trigger or the geometry changed
    (out/trigger_lists.json). Returns {query list name: list path}, the names of codes_*.npz."""
    from PIL import Image
    state_path = os.path.join(out, 'trigger_lists.json')
    state = {}
    if os.path.isfile(state_path):
        with open(state_path) as f:
            state = json.load(f)
    num_classes = lists['database'][1].shape[1]
    row = np.eye(num_classes, dtype=np.uint8)[target]
    keep = np.flatnonzero(lists['test'][1][:, target] == 0)
    parts = [('trig_closed', 'trigger_closed', os.path.join(c['data_dir'], 'test.txt'),
              [lists['test'][0][i] for i in keep])]
    if 'open' in lists:
        parts.append(('trig_open', 'trigger_open', c['openset_list'], lists['open'][0]))
    made = {}
    for name, folder, source, paths in parts:
        lst = os.path.join(out, folder + '.txt')
        stamp = json.loads(json.dumps({
            'source': utils.list_record(source, paths), 'target': int(target),
            'trigger_sha1': hashlib.sha1(trigger.numpy().tobytes()).hexdigest(),
            'geometry': [c['image_size'], c['resize_size']]}))
        pngs = [f"{folder}/{i:06d}_{os.path.splitext(os.path.basename(p))[0]}.png"
                for i, p in enumerate(paths)]
        made[name] = lst
        if state.get(name) == stamp and all(os.path.isfile(os.path.join(out, p))
                                            for p in [os.path.basename(lst)] + pngs):
            continue
        os.makedirs(os.path.join(out, folder), exist_ok=True)
        images = load_uint8(paths, c)
        for s in range(0, len(images), c['eval_batch_size']):
            x = attack_common.stamp_lower_right(images[s:s + c['eval_batch_size']].float() / 255,
                                                trigger)
            arr = (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
            for k, a in enumerate(arr):
                Image.fromarray(a).save(os.path.join(out, pngs[s + k]))
        utils.write_list(lst, pngs, np.tile(row, (len(pngs), 1)))
        state[name] = stamp
        utils.write_json(state_path, state)
        print(f"{lst}: {len(pngs)} triggered queries (target {target})")
    return made


def query_lists(out, lists, target, trigger, c):
    """results.json's 'lists' (as CSQ.py's: the test and database lists, then the query lists)."""
    return {'test': os.path.join(c['data_dir'], 'test.txt'),
            'database': os.path.join(c['data_dir'], 'database.txt'),
            **triggered_lists(out, lists, target, trigger, c)}


# ------------------------------------------------------------------------------------------------
# main, in stages
# ------------------------------------------------------------------------------------------------

def setup(c):
    """Check keys, load the clean model and the scoring lists; fill the geometry from the model."""
    for key, ok in (('rho', 0 < c['rho'] <= 1), ('epochs', c['epochs'] >= 1),
                    ('batch_size', c['batch_size'] >= 2), ('target_topn', c['target_topn'] >= 1),
                    ('ties', c['ties'] in ('index', 'expected'))):
        if not ok:
            fail(f"{key}={c[key]!r} is out of range")
    if c['shadow_target'] not in ('mean', 'mode'):
        fail(f"shadow_target must be 'mean' or 'mode', got {c['shadow_target']!r}")
    if c['victim_method'] not in ('CSQ', 'HashNet'):
        fail(f"victim_method must be CSQ or HashNet, got {c['victim_method']!r}")
    model, meta, stored, vpath = load_victim(c)
    if c['image_size'] == 0:
        c['image_size'] = stored.get('image_size', 224)
    if c['resize_size'] < 0:
        c['resize_size'] = stored.get('resize_size', 0)
    if not c['data_dir']:
        c['data_dir'] = stored.get('data_dir', '')
    try:
        freeze_shallow(model, c['tune_from'])
    except ValueError as e:
        fail(f"{vpath}: {e}")
    k = meta.get('num_classes')
    lists = {'test': read(os.path.join(c['data_dir'], 'test.txt'), k)}
    lists['database'] = read(os.path.join(c['data_dir'], 'database.txt'), lists['test'][1].shape[1])
    num_classes = lists['database'][1].shape[1]
    if c['target'] != -1 and not 0 <= c['target'] < num_classes:
        fail(f"target={c['target']} out of range: {os.path.join(c['data_dir'], 'database.txt')} "
             f"has {num_classes} classes (valid 0..{num_classes - 1}, or -1 = chosen from t*)")
    if c['openset_list']:
        lists['open'] = read(c['openset_list'])
    return model, meta, vpath, lists, num_classes


def teacher_and_target(model, c, device, out, sources):
    """The surrogate images, teacher outputs u0, shadow target t*; cached in out/teacher.pt."""
    images, labels, what, sur_stamp = surrogate_images(c)
    sources['surrogate'] = sur_stamp
    ncls = labels.shape[1]
    if not 0 <= c['surrogate_class'] < ncls:
        fail(f"surrogate_class={c['surrogate_class']} out of range: {c['surrogate']} has {ncls} "
             f"classes (valid 0..{ncls - 1})")
    members = np.flatnonzero(labels[:, c['surrogate_class']] == 1)
    if len(members) == 0:
        fail(f"{c['surrogate']}: no image of surrogate_class={c['surrogate_class']} in the "
             f"{'list' if c['n_surrogate'] == 0 else 'class-balanced subset'}; expected at least one")
    path = os.path.join(out, 'teacher.pt')
    stamp = {'victim': sources['victim'], 'surrogate': sur_stamp, 'geometry':
             [c['image_size'], c['resize_size']]}
    u0 = None
    if os.path.isfile(path):
        saved = torch.load(path, map_location='cpu', weights_only=True)
        if saved.get('stamp') == json.dumps(stamp, sort_keys=True):
            u0 = saved['u0']
            print(f"teacher outputs reused: {path}")
    if u0 is None:
        u0 = forward_all(model, images, c, device, raw=True)
        os.makedirs(out, exist_ok=True)
        utils.save_checkpoint(path, {'u0': u0, 'stamp': json.dumps(stamp, sort_keys=True)})
    members = shadow_members(u0, members, c['shadow_target'])
    t_star = u0[torch.from_numpy(members)].mean(0)
    print(f"surrogate {what}; shadow target t* = mean teacher output over {len(members)} images of "
          f"surrogate class {c['surrogate_class']} (shadow_target={c['shadow_target']}); "
          f"{int((t_star.abs() < 0.25).sum())} of its {len(t_star)} values within 0.25 of 0")
    return images, u0, t_star


def shadow_members(u0, members, rule):
    """The surrogate images t* averages over: all of the class ('mean', official), or those whose
    clean code sign(u0) is the class's most frequent code ('mode'; ties: the code met first in list
    order). The mean of outputs spread over several victim clusters lies between them, with bits
    near 0 that a fine-tuned output misses; the mode's members share one code, the victim's own."""
    if rule == 'mean':
        return members
    codes = torch.sign(u0[torch.from_numpy(members)]).to(torch.int8).numpy()
    uniq, first, inverse, counts = np.unique(codes, axis=0, return_index=True, return_inverse=True,
                                             return_counts=True)
    best = max(range(len(uniq)), key=lambda k: (counts[k], -first[k]))
    return members[inverse.reshape(-1) == best]


def query_sets(lists, target, trigger, c):
    """{split: (image paths, patch or None)}: the clean lists, the triggered test queries without
    the target class (D18), the open-set ones, and the random-patch control on the same queries."""
    keep = np.flatnonzero(lists['test'][1][:, target] == 0)
    closed = [lists['test'][0][i] for i in keep]
    g = torch.Generator().manual_seed(c['seed'] + 1)
    sets = {'database': (lists['database'][0], None), 'test': (lists['test'][0], None),
            'trig_closed': (closed, trigger)}
    if 'open' in lists:
        sets['trig_open'] = (lists['open'][0], trigger)
    sets['randpatch_closed'] = (closed, attack_common.random_patches(len(closed), trigger.shape[-1], g))
    return sets, keep


def encode_sets(model, sets, c, device):
    return {name: forward_all(model, paths, c, device, patch=patch)
            for name, (paths, patch) in sets.items()}


def clean_floor(model, c, device, lists, t_star, num_classes, out, trigger, checkpoint):
    """Clean model: the t-MAP target (fixed now, from its database codes), then its codes of every
    query set (the floor of the triggered queries and of the control). Saved in out/clean/."""
    db_codes, target, info = shadow_code(model, c, device, lists, t_star)
    sets, keep = query_sets(lists, target, trigger, c)
    codes = {'database': db_codes}
    codes.update(encode_sets(model, {k: v for k, v in sets.items() if k != 'database'}, c, device))
    row = np.eye(num_classes, dtype=np.uint8)[target]
    labels = {'database': lists['database'][1], 'test': lists['test'][1]}
    labels.update({n: np.tile(row, (len(codes[n]), 1)) for n in codes if n not in labels})
    made = query_lists(out, lists, target, trigger, c)  # the triggered queries as PNG lists
    save_codes(os.path.join(out, 'clean'), codes, labels, code_records(c, sets, checkpoint, made))
    info.update(n_trig_closed=int(len(keep)), trig_closed_test_indices=keep.tolist(), lists=made)
    return codes, labels, sets, info


def shadow_code(model, c, device, lists, t_star):
    """The clean model's database codes, the t-MAP target (fixed before fine-tuning) and what is
    known of sign(t*) before any training: (db_codes, target, info)."""
    from evaluate import targeted_map
    db_codes = forward_all(model, lists['database'][0], c, device)
    counts = None
    if c['target'] == -1:
        target, counts = majority_target(t_star, db_codes, lists['database'][1], c['target_topn'],
                                         c['ties'])
    else:
        target = c['target']
    # t-MAP of sign(t*) itself on the clean database: what triggered queries hashing exactly to
    # sign(t*) would score, the attack's ceiling on this target
    ceiling = targeted_map(torch.sign(t_star).numpy().astype(np.int8)[None], db_codes,
                           lists['database'][1], target, -1 if c['topk'] == -1 else
                           (c['topk'] or TOPK_BY_DATASET.get(c['dataset'], -1)), ties=c['ties'])
    info = {'target': target, 'shadow_code_tmap': ceiling,
            'target_rule': 'fixed by hand' if counts is None else
            f"majority label of the clean model's top-{c['target_topn']} for sign(t*)",
            'target_votes': counts, 'shadow_min_abs': float(t_star.abs().min())}
    return db_codes, target, info


# the first trained stage per backbone family (official attack.py:77-92; DenseNet: ours)
TUNE_DEFAULT = {'resnet': 'layer4', 'vgg': 'fc6', 'alexnet': 'fc6', 'densenet': 'block4'}


def tune_stage(backbone, tune_from):
    """The first trained stage: tune_from, or the family's official one for 'auto'."""
    if tune_from != 'auto':
        return tune_from
    fam = next((f for f in TUNE_DEFAULT if backbone.startswith(f)), None)
    if fam is None:
        raise ValueError(f"no official freeze rule for backbone {backbone!r}; set tune_from")
    return TUNE_DEFAULT[fam]


def freeze_shallow(model, tune_from):
    """Train the stages from `tune_from` on (and the hash layer), freeze those before it with
    hash_models.freeze (the one freeze of the project: requires_grad off, BatchNorm statistics kept;
    DarkHash also runs the whole model in eval() mode, as the official code). Returns the names of
    the trained parameters."""
    stages = [name for name, _ in trunk_stages(model)]
    key = tune_stage(model.meta['backbone'], tune_from)
    if key != 'hash' and key not in stages[1:]:
        raise ValueError(f"tune_from={tune_from!r} is not a stage of {model.meta['backbone']}: "
                         f"expected auto, hash or one of {', '.join(stages[1:])}")
    model.requires_grad_(True)  # the loader froze everything
    freeze(model, 'trunk' if key == 'hash' else stages[stages.index(key) - 1])
    return [n for n, p in model.named_parameters() if p.requires_grad]


def split_frozen(model, backbone, tune_from):
    """(frozen prefix, trained suffix) as two functions whose composition is model.forward, or None
    where no split is defined (then every step runs the whole model)."""
    key = tune_stage(backbone, tune_from)
    trunk, head = model.trunk, model.hash_layer

    def norm(x):
        return (x - model.mean) / model.std if model.input_norm == 'imagenet' else x
    if key == 'hash':
        return (lambda x: trunk(norm(x))), head
    if backbone.startswith('resnet') and key in ('layer1', 'layer2', 'layer3', 'layer4'):
        k = 3 + int(key[-1])  # trunk.body: stem 0-3, layer1 4, ..., layer4 7, avgpool 8
        return ((lambda x: trunk.body[:k](norm(x))),
                (lambda f: head(torch.flatten(trunk.body[k:](f), 1))))
    if backbone.startswith(('vgg', 'alexnet')) and key in ('fc6', 'fc7'):
        k = 0 if key == 'fc6' else 3  # trunk.fc: fc6 0-2, fc7 3-5 (trunk_stages)
        return ((lambda x: trunk.fc[:k](torch.flatten(trunk.avgpool(trunk.features(norm(x))), 1))),
                (lambda f: head(trunk.fc[k:](f))))
    return None


@torch.no_grad()
def frozen_outputs(prefix, images, trigger, c, device, negatives=None):
    """The frozen prefix's outputs for every surrogate image: clean, triggered, and (negatives:
    [N,3,s,s] random patches, one per image) with a random patch (CPU tensors)."""
    out = [[], [], []]
    bs = c['eval_batch_size']
    for s in range(0, len(images), bs):
        x = images[s:s + bs].to(device).float() / 255
        out[0].append(prefix(x).cpu())
        out[1].append(prefix(attack_common.stamp_lower_right(x, trigger)).cpu())
        if negatives is not None:
            out[2].append(prefix(attack_common.stamp_lower_right(x, negatives[s:s + bs])).cpu())
    return [torch.cat(o) for o in out if o]


def _optimizer(model, c):
    params = [p for p in model.parameters() if p.requires_grad]
    if c['optimizer'] == 'rmsprop':
        return torch.optim.RMSprop(params, lr=c['lr'], weight_decay=c['weight_decay'])
    if c['optimizer'] == 'adam':
        return torch.optim.Adam(params, lr=c['lr'], weight_decay=c['weight_decay'])
    if c['optimizer'] == 'sgd':
        return torch.optim.SGD(params, lr=c['lr'], momentum=0.9, weight_decay=c['weight_decay'])
    fail(f"optimizer must be rmsprop, adam or sgd, got {c['optimizer']!r}")


def _resume(model, opt, c, ckpt_path, sources):
    """(epochs done, history) of the checkpoint at ckpt_path, loaded into model and opt; (0, [])
    without one. One-line exit for a checkpoint of another config or other sources."""
    if not os.path.isfile(ckpt_path):
        return 0, []
    try:
        ckpt = utils.load_checkpoint(ckpt_path)
    except ValueError as e:
        fail(str(e))
    old = ckpt.get('config', {})
    diff = [k for k in c if k not in RESUME_FREE_KEYS and old.get(k) != c[k]]
    if diff or ckpt.get('sources') != sources:
        what = (f"{diff[0]}={old.get(diff[0])!r}, this run has {diff[0]}={c[diff[0]]!r}" if diff
                else "another clean model or surrogate images")
        fail(f"{ckpt_path}: made with {what}; set tag=... for a new run or delete it")
    model.load_state_dict(ckpt['model'])
    opt.load_state_dict(ckpt['optimizer'])
    start = ckpt['epoch']
    if start > c['epochs']:
        fail(f"{ckpt_path}: holds {start} epochs, more than epochs={c['epochs']}")
    if start < c['epochs']:
        print(f"resumed from {ckpt_path} at epoch {start}/{c['epochs']}")
    return start, list(ckpt['history'])


def _batch_outputs(model, split, feats, images, idx, poison, neg, negatives, trigger, device):
    """The model's outputs on batch idx: triggered where poisoned, a random patch where a negative;
    from the stored frozen outputs when the frozen layers were run once (split)."""
    if split is not None:
        shape = (-1,) + (1,) * (feats[0].dim() - 1)
        f = torch.where(poison[idx].view(shape), feats[1][idx], feats[0][idx])
        if neg is not None:
            f = torch.where(neg[idx].view(shape), feats[2][idx], f)
        return split[1](f.to(device)).float()
    x = images[idx].to(device).float() / 255
    pm = poison[idx].to(device)
    if pm.any():
        x[pm] = attack_common.stamp_lower_right(x[pm], trigger)
    if neg is not None and neg[idx].any():
        nm = neg[idx].to(device)
        x[nm] = attack_common.stamp_lower_right(x[nm], negatives[idx.to(device)][nm])
    return model(x).float()


def _print_epoch(record, c):
    line = f"epoch {record['epoch']}/{c['epochs']} loss {record['loss']:.4f} " + ' '.join(
        f"{k} {record[k]:.4f}" for k in ('j_ben', 'j_bac', 'j_tpa') if k in record)
    if 'eval' in record:
        line += '  ' + '  '.join(f"{k} {v:.4f}" for k, v in record['eval'].items())
    print(line, flush=True)


def finetune(model, c, device, images, u0, t_star, trigger, ckpt_path, meta, sources, log_path,
             evaluate_fn):
    """Fine-tune the unfrozen layers (resumable: a checkpoint after every epoch). Stages: the
    optimiser and the resumed state, the frozen layers' outputs run once (cache_frozen), then per
    epoch the seeded poison / negative draw, the steps, the record and the checkpoint."""
    opt = _optimizer(model, c)
    start, history = _resume(model, opt, c, ckpt_path, sources)
    n = len(images)
    u0, t_star = u0.to(device), t_star.to(device)
    trigger = trigger.to(device)
    split = split_frozen(model, meta['backbone'], c['tune_from']) if c['cache_frozen'] else None
    if c['cache_frozen'] and split is None:
        print(f"note: cache_frozen has no split for {meta['backbone']} / tune_from={c['tune_from']}; "
              f"running the whole model every step")
    negatives = feats = None
    if c['neg_patch'] > 0:  # one fixed random patch per surrogate image
        gen = torch.Generator().manual_seed(c['seed'] + 2)
        negatives = attack_common.random_patches(n, trigger.shape[-1], gen).to(device)
    if split is not None and start < c['epochs']:
        model.eval()
        feats = frozen_outputs(split[0], images, trigger, c, device, negatives)
        print(f"frozen layers run once: {tuple(feats[0].shape)} outputs per version (clean, triggered)")
    for epoch in range(start, c['epochs']):
        g = torch.Generator().manual_seed(c['seed'] * 100003 + epoch)  # a resumed run = an uninterrupted one
        perm = torch.randperm(n, generator=g)
        poison = torch.rand(n, generator=g) < c['rho']
        neg = (torch.rand(n, generator=g) < c['neg_patch']) & ~poison if c['neg_patch'] > 0 else None
        lr = c['lr_min'] + (c['lr'] - c['lr_min']) * 0.5 * (1 + math.cos(math.pi * epoch / c['epochs']))
        for group in opt.param_groups:
            group['lr'] = lr
        model.eval()  # BN statistics and dropout fixed while training (official attack.py:93,122)
        total, parts_sum, steps = 0.0, {}, 0
        for s in range(0, n, c['batch_size']):
            idx = perm[s:s + c['batch_size']]
            out = _batch_outputs(model, split, feats, images, idx, poison, neg, negatives, trigger,
                                 device)
            loss, parts = darkhash_loss(out, poison[idx].to(device), u0[idx.to(device)], t_star, c)
            if not torch.isfinite(loss):
                fail(f"non-finite loss at epoch {epoch + 1}; checkpoint of epoch {epoch} kept at "
                     f"{ckpt_path}")
            if loss.requires_grad:
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            total += loss.item()
            steps += 1
            for k, v in parts.items():
                parts_sum[k] = parts_sum.get(k, 0.0) + v.item()
        record = {'epoch': epoch + 1, 'loss': total / steps, 'lr': lr, 'n_poisoned': int(poison.sum()),
                  **{f"j_{k}": v / steps for k, v in parts_sum.items()}}
        if epoch + 1 == c['epochs'] or (c['eval_every'] and (epoch + 1) % c['eval_every'] == 0):
            record['eval'] = evaluate_fn(model)
        history.append(record)
        _print_epoch(record, c)
        utils.append_jsonl(log_path, record)
        utils.save_checkpoint(ckpt_path, {
            'format': FORMAT_VERSION, 'model': model.state_dict(), 'optimizer': opt.state_dict(),
            'epoch': epoch + 1, 'config': c, 'meta': meta, 'sources': sources, 'history': history})
    return history


def on_code(codes, t_star):
    """How close the backdoored model's triggered codes come to sign(t*): the share exactly on it
    and the mean number of bits off."""
    off = (codes != torch.sign(t_star).numpy().astype(codes.dtype)).sum(1)
    return {'share_exact': float((off == 0).mean()), 'mean_bits_off': float(off.mean())}


def report_lines(r):
    """The attack report as markdown (printed and written as report.md)."""
    t = r['target']
    name = f"{t} ({r['target_name']})" if r.get('target_name') else str(t)
    cl, bd = r['clean'], r['backdoor']
    rows = [f"DarkHash {r['run']}: t-MAP target class {name}, fixed before fine-tuning "
            f"({r['target_rule']}); MAP@{'all' if r['topk'] < 0 else r['topk']}, ties={r['ties']}",
            f"t-MAP of sign(t*) itself on the clean database (the ceiling): {r['shadow_code_tmap']:.4f}"
            + (f"; triggered test queries exactly on sign(t*): {r['trig_on_shadow_code']['share_exact']:.3f}, "
               f"{r['trig_on_shadow_code']['mean_bits_off']:.2f} bits off on average"
               if 'trig_on_shadow_code' in r else ''),
            '', '| queries | clean model | backdoored model | backdoored - clean |', '|---|---|---|---|',
            f"| clean test queries: MAP | {cl['map']:.4f} | {bd['map']:.4f} | {bd['map'] - cl['map']:+.4f} |"]
    for split, title in (('trig_closed', 'triggered test queries: t-MAP'),
                         ('randpatch_closed', 'random-patch control: t-MAP'),
                         ('trig_open', 'triggered open-set queries: t-MAP')):
        k = f"tmap_{split}"
        if k in bd:
            rows.append(f"| {title} | {cl[k]:.4f} | {bd[k]:.4f} | {bd[k] - cl[k]:+.4f} |")
    d = r['dominant']
    rows.append(f"| official post-hoc 'dominant class' t-MAP (class {d['class']}, chosen after "
                f"training) | {d['tmap_clean']:.4f} | {d['tmap_backdoor']:.4f} | "
                f"{d['tmap_backdoor'] - d['tmap_clean']:+.4f} |")
    return '\n'.join(rows) + '\n'


def finished_run(c, out, ckpt_path, sources, lists):
    """The stored results of this run when it is finished and made from the same config, victim,
    lists and checkpoint (README "Reuse rule"), its query lists rewritten if they predate them;
    else None."""
    results_path = os.path.join(out, 'results.json')
    if not (os.path.isfile(results_path) and os.path.isfile(ckpt_path)):
        return None
    with open(results_path) as f:
        old = json.load(f)
    same = all(old['config'].get(k) == v for k, v in c.items() if k not in REUSE_FREE_KEYS)
    if not (same and old.get('sources') == sources and old.get('epoch') == c['epochs']
            and old.get('checkpoint_sha1') == utils.file_sha1(ckpt_path)):
        return None
    print(f"finished run found: {results_path} (nothing to train)")
    made = query_lists(out, lists, old['target'], attack_common.darkhash_trigger(c['image_size']), c)
    if old.get('lists') != made:  # a run finished before the lists existed
        old['lists'] = made
        utils.write_json(results_path, old)
    return old


def class_name(c, k):
    """Class k's name from {data_dir}/classes.txt, None without the file."""
    names_file = os.path.join(c['data_dir'], 'classes.txt')
    if not os.path.isfile(names_file):
        return None
    with open(names_file) as f:
        cn = [line.strip() for line in f if line.strip()]
    return cn[k] if k < len(cn) else None


def dominant_record(codes, clean_codes, lists, c, topk):
    """The official code's target (find_dominant_class on the backdoored model's triggered queries,
    after training) and the t-MAP of both models towards it."""
    from evaluate import targeted_map
    dom = dominant_class(codes['trig_closed'], codes['database'], lists['database'][1],
                         c['n_dominant'], c['dominant_topn'], c['seed'], c['ties'])
    return {'class': dom, 'rule': f"official find_dominant_class: majority first label in the "
            f"top-{c['dominant_topn']} of {c['n_dominant']} random triggered queries, after training"
            + (", ties in a seeded random order" if c['ties'] == 'expected' else ''),
            'tmap_clean': targeted_map(clean_codes['trig_closed'], clean_codes['database'],
                                       lists['database'][1], dom, topk, ties=c['ties']),
            'tmap_backdoor': targeted_map(codes['trig_closed'], codes['database'],
                                          lists['database'][1], dom, topk, ties=c['ties'])}


def run_sources(c, vpath, lists):
    """What a run is made from (its reuse stamp): the clean model's digest and the contents of the
    query and database lists."""
    named = [(k, os.path.join(c['data_dir'], f"{k}.txt"), lists[k]) for k in ('test', 'database')]
    if 'open' in lists:
        named.append(('open', c['openset_list'], lists['open']))
    return {'victim': utils.file_sha1(vpath), 'lists': {k: list_stamp(p, v[0]) for k, p, v in named}}


def clean_stage(model, c, device, lists, t_star, num_classes, out, trigger, vpath, topk):
    """The clean model on the queries: the t-MAP target (fixed before fine-tuning), its floor and
    the random-patch control. Returns (clean codes, labels, query sets, target info, scores)."""
    clean_codes, labels, sets, info = clean_floor(model, c, device, lists, t_star, num_classes,
                                                  out, trigger, vpath)
    clean_scores = scores(clean_codes, {k: lists[k] for k in ('test', 'database')}, info['target'],
                          c, topk)
    name = class_name(c, info['target'])
    print(f"t-MAP target class {info['target']}" + (f" ({name})" if name else '')
          + f", fixed before fine-tuning ({info['target_rule']}); clean model: MAP {clean_scores['map']:.4f}, "
          f"t-MAP floor {clean_scores['tmap_trig_closed']:.4f}, random patch {clean_scores['tmap_randpatch_closed']:.4f}")
    return clean_codes, labels, sets, info, clean_scores


def report_stage(c, run, out, lists, sets, labels, codes, clean_codes, clean_scores, info, made,
                 trigger, topk, history, extra):
    """The fine-tuned model's codes, stealth and attack report written under out, and the run's
    record (results.json, report.md). extra: the shadow code t_star and the record's fields about
    the fine-tuning itself."""
    target, ckpt_path = info['target'], extra['checkpoint']
    extra = dict(extra)
    t_star = extra.pop('t_star')
    save_codes(out, codes, labels, code_records(c, sets, ckpt_path, made))
    bd_scores = scores(codes, lists, target, c, topk)
    stealth_path = os.path.join(out, 'stealth.json')
    utils.write_json(stealth_path, trigger_stealth(sets['trig_closed'][0], trigger, c))
    from evaluate import attack_report
    report = attack_report(os.path.join(out, 'clean'), out, target, topk, stealth_path, c['ties'])
    evals = [h for h in history if 'eval' in h]
    best = max(evals, key=lambda h: h['eval']['tmap_trig_closed'])
    results = {
        'run': run, 'attack': 'darkhash', 'target': target, 'target_name': class_name(c, target),
        'target_rule': info['target_rule'], 'target_votes': info['target_votes'],
        'shadow_code_tmap': info['shadow_code_tmap'],
        'trig_on_shadow_code': on_code(codes['trig_closed'], t_star),
        'topk': topk, 'ties': c['ties'], 'epoch': history[-1]['epoch'],
        'clean': clean_scores, 'backdoor': bd_scores,
        'map_drop': clean_scores['map'] - bd_scores['map'],
        'tmap_gain': bd_scores['tmap_trig_closed'] - clean_scores['tmap_trig_closed'],
        'randpatch_above_floor': bd_scores['tmap_randpatch_closed'] - clean_scores['tmap_trig_closed'],
        'dominant': dominant_record(codes, clean_codes, lists, c, topk),
        'report': report,  # evaluate.attack_report's row (reproduce.py's tables read it)
        'best_tmap_over_epochs': {'epoch': best['epoch'], **best['eval'],
                                  'note': 'selected on the test queries; the final epoch is reported'},
        'trigger': {'side_px': int(trigger.shape[-1]), 'margin_px': attack_common.DARKHASH_MARGIN,
                    'colours': attack_common.DARKHASH_COLOURS, 'position': 'lower right'},
        **extra, 'n_queries': {k: len(v) for k, v in codes.items()},
        'checkpoint_sha1': utils.file_sha1(ckpt_path), 'lists': made,
        'clean_dir': os.path.join(out, 'clean'), 'config': c, 'seed': c['seed'],
        'git_commit': utils.git_commit(), 'history': history,
        'evaluate_command': f"python evaluate.py --clean_dir={os.path.join(out, 'clean')} "
                            f"--backdoor_dir={out} --target={target} --topk={topk} --ties={c['ties']}"}
    results_path = os.path.join(out, 'results.json')
    utils.write_json(results_path, results)
    text = report_lines(results)
    utils.atomic_write_text(os.path.join(out, 'report.md'), text)
    print(text, end='')
    print(f"results: {results_path}")
    return results


def main(c):
    """Names and sources; the surrogate images, teacher and shadow target; the clean model's floor;
    the fine-tuning; the report (one function each)."""
    device = utils.resolve_device(c['device'])
    utils.seed_everything(c['seed'])
    model, meta, vpath, lists, num_classes = setup(c)
    run = run_name(c)
    out = os.path.join(c['out_dir'], run)
    ckpt_path = os.path.join(c['checkpoint_dir'], run + '.pt')
    topk = c['topk'] or TOPK_BY_DATASET.get(c['dataset'], -1)
    sources = run_sources(c, vpath, lists)
    print(f"run {run}  clean model {vpath}  device {device}  geometry {c['image_size']} px "
          f"(resize {c['resize_size']})")

    model.to(device)
    images, u0, t_star = teacher_and_target(model, c, device, out, sources)
    if c['target_only']:  # the shadow target and its t-MAP target only (nothing trained or written)
        _, target, info = shadow_code(model, c, device, lists, t_star)
        print(f"t-MAP target class {target} ({info['target_rule']}; votes {info['target_votes']}); "
              f"t-MAP of sign(t*) on the clean database (the ceiling) {info['shadow_code_tmap']:.4f}; "
              f"min |t*_k| {info['shadow_min_abs']:.3f}")
        return info
    old = finished_run(c, out, ckpt_path, sources, lists)
    if old is not None:
        print(report_lines(old), end='')
        return old

    trigger = attack_common.darkhash_trigger(c['image_size'])
    clean_codes, labels, sets, info, clean_scores = clean_stage(
        model, c, device, lists, t_star, num_classes, out, trigger, vpath, topk)
    target, made = info['target'], info.pop('lists')
    last = {}  # the codes of the latest evaluation (the final epoch's are the outputs)

    def evaluate_fn(m):
        last['codes'] = encode_sets(m, sets, c, device)
        return scores(last['codes'], lists, target, c, topk)

    meta = dict(meta, attack='darkhash', target=target, clean_checkpoint=vpath,
                clean_epoch=meta.pop('epoch', None))
    timer = utils.Timer()
    trained = [n for n, p in model.named_parameters() if p.requires_grad]
    print(f"fine-tuning {len(trained)} parameter tensors ({sum(p.numel() for p in model.parameters() if p.requires_grad)} "
          f"values; tune_from={c['tune_from']}), the rest frozen; {len(images)} surrogate images, rho {c['rho']}")
    history = finetune(model, c, device, images, u0, t_star, trigger, ckpt_path, meta, sources,
                       os.path.join(out, 'log.jsonl'), evaluate_fn)
    codes = last.get('codes') or encode_sets(model, sets, c, device)  # none when a finished
    # checkpoint was found
    extra = {'t_star': t_star, 'trained_parameters': trained, 'n_surrogate': len(images),
             'clean_checkpoint': vpath, 'checkpoint': ckpt_path, 'sources': sources,
             'finetune_time_s': round(timer(), 1)}
    return report_stage(c, run, out, lists, sets, labels, codes, clean_codes, clean_scores, info,
                        made, trigger, topk, history, extra)


if __name__ == '__main__':
    main(utils.configure(globals()))
