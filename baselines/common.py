"""Shared by baselines/badnets.py, lcba.py and issba.py: inputs, geometry, patches, PNGs, lists, reuse.

What every baseline writes (the layout of implement_tri_gen.py, so the runner treats all attacks
alike), in {out_dir}/{dataset}_{attack}_t{target}_p{poison_rate:g}[_{attack_tag}]/:
  poisons/*.png         lossless 8-bit PNGs at the model's input geometry
  poisoned_train.txt    the training list with each poisoned row replaced in place by its PNG
                        (paths relative to the folder); labels: target one-hot (poison-label
                        attacks) or unchanged (clean-label)
  trigger_closed.txt    test images not of the target class with the trigger, labels = target
  trigger_open.txt      the images of openset_list with the trigger (when openset_list is set)
  stealth.json          per part {n, mse, psnr_db, ssim, per_image_mse, per_image_ssim} (SPEC D21)
  poisons.json          what was poisoned, how, config and git commit
  attack_state.json     one stamp per finished part: a rerun with the same stamp prints "skipped"

Geometry: an image is read through utils.build_transform(image_size, resize_size) (Resize when
resize_size > 0, then CentreCrop image_size: what the hash models and BadHash's G see), quantised
to uint8 (exact: ToTensor gives k/255), attacked there, and saved at that size. The stealth figures
compare that uint8 crop with the saved PNG, as implement_tri_gen.py does for G.

Patches (attack_common.py) are specified by their side at a reference size (patch_ref_size, 224 = the paper's crop)
and scaled to the geometry: side = max(3, round(side_at_ref * image_size / patch_ref_size)), so a
patch covers the same fraction of the image at every size (18 px at 224 -> 3 px at 32).
"""
import hashlib
import json
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import utils  # noqa: E402
from attack_common import (AttackParts, MIN_PATCH, PathImages, quantize,  # noqa: E402
                           read_list_or_exit as read, stealth_stats)

FORMAT_VERSION = 1
def fail(msg):
    sys.exit(f"error: {msg}")


def config_digest(d):
    return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:8]


# ------------------------------------------------------------------------------------------------
# inputs and choices
# ------------------------------------------------------------------------------------------------

def load_inputs(c):
    """Read and check the lists; returns a dict (paths, labels, class count, class names)."""
    if not 0 < c['poison_rate'] <= 1:
        fail(f"poison_rate must be in (0, 1], got {c['poison_rate']}")
    if c['n_openset'] < 0 or c['n_closed'] < 0:
        fail(f"n_openset and n_closed must be >= 0, got {c['n_openset']}, {c['n_closed']}")
    if c['image_size'] < MIN_PATCH or c['resize_size'] < 0:
        fail(f"image_size must be >= {MIN_PATCH} and resize_size >= 0, got {c['image_size']}, "
             f"{c['resize_size']}")
    d = {'train_path': c['train_list'] or os.path.join(c['data_dir'], 'train.txt'),
         'test_path': c['test_list'] or os.path.join(c['data_dir'], 'test.txt')}
    d['train_paths'], d['train_labels'] = read(d['train_path'])
    d['num_classes'] = k = d['train_labels'].shape[1]
    if not 0 <= c['target'] < k:
        fail(f"target={c['target']} out of range: {d['train_path']} has {k} classes "
             f"(valid 0..{k - 1})")
    d['test_paths'], d['test_labels'] = read(d['test_path'], k)
    d['open_paths'] = read(c['openset_list'])[0] if c['openset_list'] else None
    names_file = os.path.join(os.path.dirname(os.path.abspath(d['train_path'])), 'classes.txt')
    d['class_names'] = None
    if os.path.isfile(names_file):
        with open(names_file) as f:
            d['class_names'] = [line.strip() for line in f if line.strip()]
    return d


def choose_poisons(d, c, pool):
    """Seeded poison subset. pool='target': poison_rate of the target class's training images
    (clean-label, as BadHash; same draw as implement_tri_gen.py for the same seed); pool='others':
    poison_rate of the whole training set, drawn from images without the target class."""
    labels, t = d['train_labels'], c['target']
    rng = np.random.default_rng(c['seed'])
    if pool == 'target':
        members = np.flatnonzero(labels[:, t] == 1)
        n = int(round(c['poison_rate'] * len(members)))
        what = f"{len(members)} training images of target class {t}"
    else:
        members = np.flatnonzero(labels[:, t] == 0)
        n = int(round(c['poison_rate'] * len(labels)))
        what = f"the {len(labels)} training images"
        if n > len(members):
            fail(f"poison_rate={c['poison_rate']} of {what} asks for {n} poisons, but only "
                 f"{len(members)} images are not of target class {t}")
    if n == 0:
        fail(f"poison_rate={c['poison_rate']} of {what} gives no poison")
    return np.sort(rng.choice(members, n, replace=False)), members


def run_name(c, attack):
    name = f"{c['dataset']}_{attack}_t{c['target']}_p{c['poison_rate']:g}"
    return name + (f"_{c['attack_tag']}" if c['attack_tag'] else '')


def png_name(i, path):
    return f"{int(i):06d}_{os.path.splitext(os.path.basename(path))[0]}.png"


# ------------------------------------------------------------------------------------------------
# geometry and patches
# ------------------------------------------------------------------------------------------------

def batches(paths, c, batch_size, shuffle=False, seed=0):
    """DataLoader of ([B,3,H,W] images at the model's geometry, values k/255, indices)."""
    ds = PathImages(paths, utils.build_transform(c['image_size'], c['resize_size'], 'none'))
    gen = torch.Generator().manual_seed(seed) if shuffle else None
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=gen,
                                       num_workers=c['num_workers'], drop_last=False)


def write_images(attack_fn, paths, names, folder, c, desc, batch_size=64):
    """attack_fn(x [B,3,H,W] in [0,1], indices) -> attacked batch; saves uint8 PNGs as
    folder/names[i] and returns the stealth figures (uint8 crop vs saved PNG, D21)."""
    from PIL import Image
    from skimage.metrics import structural_similarity
    from tqdm import tqdm
    os.makedirs(folder, exist_ok=True)
    mse, ssim = [], []
    for x, idx in tqdm(batches(paths, c, batch_size), desc=desc):
        clean = quantize(x)
        pois = quantize(attack_fn(x, idx))
        for k, i in enumerate(idx.tolist()):
            Image.fromarray(pois[k]).save(os.path.join(folder, names[i]))
            a, b = clean[k].astype(np.float64), pois[k].astype(np.float64)
            mse.append(float(((a - b) ** 2).mean()))
            ssim.append(float(structural_similarity(clean[k], pois[k], channel_axis=-1,
                                                    data_range=255)))
    return stealth_stats(mse, ssim)


# ------------------------------------------------------------------------------------------------
# the outputs: poisons + poisoned list, triggered query lists, stealth.json, reuse
# ------------------------------------------------------------------------------------------------

def produce(c, d, attack, chosen, pool, labels_mode, poison_fn, trigger_fn, params, model_id,
            batch_size=64, extra=None):
    """Write everything listed in the module docstring; skip parts already made with the same stamp.

    poison_fn / trigger_fn: attack functions for the training poisons and for the test-time queries.
    params: the attack's own settings (recorded and part of the stamp). model_id: what identifies a
    trained model the attack uses (surrogate / encoder checkpoint and step), or None.
    extra: a callable returning more fields for poisons.json (called after the poisons are made).
    Stages: the poisons with the poisoned list (_write_poisons), then the triggered queries
    (_write_queries), each reused when its stamp is unchanged.
    """
    t = c['target']
    out = os.path.join(c['out_dir'], run_name(c, attack))
    os.makedirs(out, exist_ok=True)
    cn = d['class_names']
    print(f"{attack} run {out}: target {t}" + (f" ({cn[t]})" if cn else '')
          + f", {len(chosen)} poisons out of {len(pool)} candidates, labels {labels_mode}")
    if model_id and model_id.get('checkpoint'):  # a model retrained under the same name differs here
        model_id = dict(model_id, stamp=utils.file_stamp(model_id['checkpoint']))
    common = {'format': FORMAT_VERSION, 'attack': attack, 'params': params, 'model': model_id,
              'seed': c['seed'], 'image_size': c['image_size'], 'resize_size': c['resize_size']}
    parts = AttackParts(out)
    _write_poisons(c, d, attack, out, parts, common, chosen, pool, labels_mode, poison_fn, params,
                   model_id, batch_size, extra)
    sets = _write_queries(c, d, out, parts, common, trigger_fn, batch_size)
    print(f"outputs in {out}: poisoned_train.txt, " + ', '.join(f"{p}.txt" for p in sets)
          + ', stealth.json, poisons.json')
    return out


def _write_poisons(c, d, attack, out, parts, common, chosen, pool, labels_mode, poison_fn, params,
                   model_id, batch_size, extra):
    """The poisons (PNG), poisoned_train.txt and poisons.json, unless made with the same stamp."""
    t, cn = c['target'], d['class_names']
    target_row = np.eye(d['num_classes'], dtype=np.uint8)[t]
    train_paths, train_labels = d['train_paths'], d['train_labels']
    # stamps: provenance records of the source lists (README "Reuse rule")
    stamp = dict(common, train=utils.list_record(d['train_path'], train_paths),
                 chosen=chosen.tolist(), labels_mode=labels_mode)
    names = {int(i): png_name(i, train_paths[i]) for i in chosen}
    list_out = os.path.join(out, 'poisoned_train.txt')
    pngs = [os.path.join(out, 'poisons', n) for n in names.values()]
    if parts.done('poisons', stamp, [list_out, os.path.join(out, 'poisons.json')] + pngs):
        return
    sub = [int(i) for i in chosen]
    stats = write_images(lambda x, idx: poison_fn(x, chosen[idx.numpy()]),
                         [train_paths[i] for i in sub], [names[i] for i in sub],
                         os.path.join(out, 'poisons'), c, 'poisons', batch_size)
    rows, labs = [], []
    for i, (p, lab) in enumerate(zip(train_paths, train_labels)):
        if i in names:
            rows.append(f"poisons/{names[i]}")
            labs.append(target_row if labels_mode == 'target' else lab)
        else:
            rows.append(os.path.relpath(os.path.abspath(p), os.path.abspath(out)))
            labs.append(lab)
    utils.write_list(list_out, rows, np.array(labs))
    info = {'attack': attack, 'target': t, 'target_name': cn[t] if cn else None,
            'poison_rate': c['poison_rate'],
            'poison_rate_of': 'target_class' if labels_mode == 'keep' else 'train',
            'pool_size': int(len(pool)), 'n_poisons': int(len(chosen)),
            'gamma_of_train': len(chosen) / len(rows), 'labels_mode': labels_mode,
            'seed': c['seed'], 'train_list': d['train_path'], 'poisoned_list': list_out,
            'params': params, 'model': model_id,
            'poisons': [{'index': int(i), 'source': train_paths[i],
                         'poison': f"poisons/{names[int(i)]}",
                         'label': train_labels[i].tolist()} for i in chosen],
            'config': c, 'git_commit': utils.git_commit()}
    info.update(extra() if extra else {})
    utils.write_json(os.path.join(out, 'poisons.json'), info)
    parts.finish('poisons', stamp, stats)


def _write_queries(c, d, out, parts, common, trigger_fn, batch_size):
    """The triggered query lists (labels := the target's one-hot, SPEC D18), each unless made with
    the same stamp. Returns their names."""
    t = c['target']
    target_row = np.eye(d['num_classes'], dtype=np.uint8)[t]
    sets = [('trigger_closed', d['test_path'], np.flatnonzero(d['test_labels'][:, t] == 0),
             d['test_paths'], c['n_closed'])]
    if d['open_paths'] is not None:
        sets.append(('trigger_open', c['openset_list'], np.arange(len(d['open_paths'])),
                     d['open_paths'], c['n_openset']))
    for part, src, idx, paths, n_max in sets:
        sub = np.random.default_rng([c['seed'], len(part)])  # the draw of implement_tri_gen.py
        if n_max and n_max < len(idx):
            idx = np.sort(sub.choice(idx, n_max, replace=False))
        stamp = dict(common, source=utils.list_record(src, paths), indices=idx.tolist(), target=t)
        lst = os.path.join(out, f"{part}.txt")
        qnames = [png_name(i, paths[i]) for i in idx]
        if parts.done(part, stamp, [lst] + [os.path.join(out, part, n) for n in qnames]):
            continue
        stats = write_images(lambda x, j: trigger_fn(x, idx[j.numpy()]), [paths[i] for i in idx],
                             qnames, os.path.join(out, part), c, part, batch_size)
        stats['sources'] = [paths[i] for i in idx]
        utils.write_list(lst, [f"{part}/{n}" for n in qnames], np.tile(target_row, (len(idx), 1)))
        parts.finish(part, stamp, stats)
    return [s[0] for s in sets]
