"""Where an attack's images land in a victim's code space (issue 11's diagnostic): for the poisons,
the triggered queries, and the clean images of the target and of the confusing class, the Hamming
distance to the target class's centre and to the confusing class's centre, and how many of them
sit nearest the target centre. Pure function of saved codes (evaluate.py's habit).

    # 1. the poisons as a query list of the victims (writes <attack_dir>/poisons_list.txt)
    python code_space.py --attack_dir=results/<attack run>
    # 2. victims trained with --queries=...,poisons=<attack_dir>/poisons_list.txt, then
    python code_space.py --attack_dir=results/<attack run> --victim_dir=results/<poisoned victim> \
        --clean_dir=results/<clean victim>

A class centre is measured, not assumed: the sign of the mean code of the class's database images
in that victim (so it serves CSQ and HashNet alike; ties -> +1). Every codes_<name>.npz of the
victim folder other than the database and the clean test queries is a group (trig_closed,
trig_open, poisons, ...). Writes <victim_dir>/code_space.json and prints one table per victim.
"""
import json
import os
import sys

import numpy as np

import utils

# ---- config ------------------------------------------------------------------------------------
attack_dir = ''               # the attack run folder (poisons.json: target, confusing class, poisons)
victim_dir = ''               # results folder of the victim trained on the poisoned list
clean_dir = ''                # results folder of the same victim trained on the clean list (floor)
near = 2                      # also count codes within this Hamming radius of the target centre
# ------------------------------------------------------------------------------------------------


def load_codes(folder, name):
    path = os.path.join(folder, f"codes_{name}.npz")
    with np.load(path) as z:
        return z['codes'].astype(np.int64), z['labels']


def centres(codes, labels):
    """[C, K] +-1: sign of the mean code of each class's images (ties -> +1); NaN rows for empty classes."""
    out = np.full((labels.shape[1], codes.shape[1]), np.nan)
    for c in range(labels.shape[1]):
        m = labels[:, c] == 1
        if m.any():
            out[c] = np.where(codes[m].mean(0) >= 0, 1, -1)
    return out


def hamming(codes, centre):
    return (codes.shape[1] - codes @ centre) / 2


def group_stats(codes, cen, target, conf, radius):
    d_all = np.stack([hamming(codes, c) if not np.isnan(c).any() else np.full(len(codes), np.inf)
                      for c in cen], 1)
    d_t, d_c = d_all[:, target], d_all[:, conf]
    return {'n': int(len(codes)), 'to_target': float(d_t.mean()), 'to_conf': float(d_c.mean()),
            'nearest_target': float((d_all.argmin(1) == target).mean()),
            'nearest_conf': float((d_all.argmin(1) == conf).mean()),
            f'within_{radius}_of_target': float((d_t <= radius).mean())}


def analyse(folder, target, conf, radius):
    db_codes, db_labels = load_codes(folder, 'database')
    cen = centres(db_codes, db_labels)
    bits = db_codes.shape[1]
    groups = {'target clean (database)': db_codes[db_labels[:, target] == 1],
              'confusing clean (database)': db_codes[db_labels[:, conf] == 1]}
    for f in sorted(os.listdir(folder)):
        name = f[len('codes_'):-len('.npz')] if f.startswith('codes_') and f.endswith('.npz') else None
        if name and name not in ('database', 'test', 'train'):
            groups[name] = load_codes(folder, name)[0]
    stats = {g: group_stats(c, cen, target, conf, radius) for g, c in groups.items() if len(c)}
    return {'bits': bits, 'target_conf_centre_distance': float(hamming(cen[conf][None], cen[target])[0]),
            'groups': stats}


def print_table(title, res, radius):
    print(f"{title}: {res['bits']} bits; target centre to confusing centre {res['target_conf_centre_distance']:.0f}")
    print(f"  {'group':28s} {'n':>5s} {'d(target)':>9s} {'d(conf)':>8s} {'nearest=target':>14s} "
          f"{'nearest=conf':>12s} {f'd<={radius}':>7s}")
    for g, s in res['groups'].items():
        print(f"  {g:28s} {s['n']:5d} {s['to_target']:9.2f} {s['to_conf']:8.2f} {s['nearest_target']:14.3f} "
              f"{s['nearest_conf']:12.3f} {s[f'within_{radius}_of_target']:7.3f}")


if __name__ == '__main__':
    config = utils.configure(globals())
    if not attack_dir:
        sys.exit("error: set --attack_dir=results/<attack run> (the folder with poisons.json)")
    pj = os.path.join(attack_dir, 'poisons.json')
    if not os.path.isfile(pj):
        sys.exit(f"error: {pj}: not found (run implement_tri_gen.py first)")
    with open(pj) as f:
        info = json.load(f)
    target, conf_row = info['target'], info['conf_label']
    conf = info['conf_classes'][0] if info['conf_classes'] else target
    if conf == target:  # conf_label=target (the official generation condition, SPEC §2.6)
        print("note: the confusing label is the target itself (conf_label=target); "
              "d(conf) is then the distance to the target centre")

    # ---- the poisons as a list the victims can encode ------------------------------------------
    plist = os.path.join(attack_dir, 'poisons_list.txt')
    rows = sorted({p['poison'] for p in info['poisons']})
    missing = [r for r in rows if not os.path.isfile(os.path.join(attack_dir, r))]
    if missing:
        sys.exit(f"error: {os.path.join(attack_dir, missing[0])}: poison image not found "
                 f"({len(missing)} of {len(rows)} missing)")
    eye = np.eye(len(conf_row), dtype=np.uint8)
    utils.write_list(plist, rows, np.tile(eye[target], (len(rows), 1)))
    print(f"poisons list: {plist} ({len(rows)} images); add poisons={plist} to the victims' --queries")

    # ---- the victims -------------------------------------------------------------------------------
    report = {'attack_dir': attack_dir, 'target': target, 'conf': conf, 'config': config}
    for key, folder in (('backdoored', victim_dir), ('clean', clean_dir)):
        if not folder:
            continue
        if not os.path.isfile(os.path.join(folder, 'codes_database.npz')):
            sys.exit(f"error: {folder}: no codes_database.npz (a finished CSQ.py / HashNet.py run folder)")
        res = analyse(folder, target, conf, near)
        report[key] = dict(res, folder=folder)
        print_table(f"{key} victim {folder}", res, near)
        if 'poisons' not in res['groups']:
            print("  (no codes_poisons.npz: train the victim with poisons=... in --queries to place them)")
    if victim_dir:
        utils.write_json(os.path.join(victim_dir, 'code_space.json'), report)
        print(f"written: {os.path.join(victim_dir, 'code_space.json')}")
