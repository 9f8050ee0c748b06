"""Run backdoor defenses adapted to hashing on one model and its clean counterpart (issue 13).

    python defend.py configs/defense_toy.py --model_dir=results/toy_CSQ_resnet34_32_badnets56 \
        --control_dir=results/toy_CSQ_resnet34_32_clean56
    python defend.py ... --defenses=nc,strip          # some of them

The model under test and the control are results folders of finished CSQ.py / HashNet.py runs
(results.json + codes_{split}.npz); the triggered queries are the model's list named `trigger`
(its labels are the target), and the control is run on the same list. Every defense of
REGISTRY (fine-tuning, fine-pruning, Neural Cleanse, TABOR, NC-collapse, STRIP, SentiNet; design
in defenses/ and ../shared/DARKHASH.md §5) runs on both, and the results go to
{model_dir}/defense.json and defense.md (the table, README "Defenses").

Reuse: each (model, defense) result is kept in {run_dir}/defense_parts.json under a stamp made of
the checkpoint's SHA-1, the keys (file bytes, images' size and mtime, geometry) of every list it
reads, and its config keys; a rerun with the same stamp reuses it, anything else recomputes.
"""
import json
import os
import sys
import time

import utils
from defenses import NAMES, REGISTRY, RESCORE, SCORE_KEYS, common, report

# ---- config ------------------------------------------------------------------------------------
# what to defend
model_dir = ''                # results folder of the model under test (a backdoored victim)
control_dir = ''              # results folder of its clean counterpart ('' = no control row)
trigger = 'trig_closed'       # the model's query list with the triggered queries (labels = target)
target = -1                   # target class; -1 = read off the triggered list's labels
defenses = 'all'              # comma-separated names of defenses.NAMES, or 'all'
# shared set-up (DARKHASH.md §5)
defender_fraction = 0.05      # D_def: class-balanced share of {data_dir}/train.txt (BB ratio 0.05)
n_queries = 1000              # clean (target class left out) and triggered queries, seeded subsets
ties = 'index'                # MAP / t-MAP ranking ties (evaluate.py; 'expected' for the toy codes)
# fine-tuning (the victims' own optimiser, D15; BB defense/ft)
ft_optimizer = 'rmsprop'      # rmsprop | adam
ft_lr = 1e-5                  # official victim lr
ft_weight_decay = 1e-5        # official victim weight decay
ft_epochs = 10                # DARKHASH.md §5
ft_batch_size = 32            # our choice
ft_bn = 'train'               # 'train': BatchNorm statistics follow D_def (BB fine-tuning) |
                              # 'frozen': kept from the victim's training (our option, tiny D_def)
# fine-pruning (BB defense/fp.py)
fp_step = 0.05                # pruned fraction step of the last block's channels
fp_max_fraction = 0.95        # largest fraction tried
fp_max_drop = 0.1             # stop when MAP falls more than this (relative) below the unpruned MAP
fp_finetune_epochs = 5        # fine-tuning after pruning (DARKHASH.md §5)
# Neural Cleanse (Wang et al.'s visualizer, BB defense/nc.py; defenses/nc.py CostSchedule)
nc_epochs = 300               # most passes over D_def per class (NC: 1000, early stop ends sooner)
nc_early_stop = 25            # stop after this many epochs without a smaller mask, once lambda has
                              # gone up and down (NC: 5 x patience); 0 = run all nc_epochs
nc_batch = 32                 # NC's batch size
nc_lr = 0.1                   # Adam, betas (0.5, 0.9)
nc_lambda = 1e-3              # L1 weight once the trigger is first found (NC starts at 0)
nc_patience = 5               # epochs before lambda x2 (success) or / 2^1.5 (failure)
nc_success = 0.98             # fraction of an epoch's images sent to the class (NC: 0.99; DARKHASH)
nc_collapse_success = 0.9     # NC-collapse: fraction within K/8 bits of the majority code
nc_threshold = 2.0            # anomaly index that flags
nc_statistic = 'mad'          # 'mad': NC's MAD of the L1 norms | 'log_mad': of their logarithms
                              # | 'lower_mad': the lower half's MAD | 'quality': the MAD of the
                              # TABOR-style quality scores (defenses/nc.py; every one is in
                              # defense.json, this one flags)
# TABOR (Guo et al. 2019): NC's optimisation (the nc_* keys) plus these fixed-weight regularisers
tabor_r1_mask = 1e-6          # R1: mask L1 + L2 (TrojanZoo's TABOR defaults for R1/R2)
tabor_r1_pattern = 1e-5       # R1: L1 + L2 of the pattern outside the mask
tabor_r2_mask = 1e-7          # R2: total variation of the mask
tabor_r2_pattern = 1e-8       # R2: total variation of the pattern outside the mask
tabor_r3 = 1.0                # R3: cut the mask's region out, the code stays its class's (our
                              # weight: TrojanZoo sets 0; it is the term that moves painted-object
                              # masks off the object, docs/RESULTS.md)
tabor_r4 = 0.01               # R4: the trigger alone on black reaches the class (TrojanZoo's 1e-2)
tabor_statistic = 'quality'   # TABOR reads its masks by a trigger-quality score (defenses/nc.py
                              # quality: size, smoothness, attack success, accuracy left when the
                              # mask is cut out); any nc_statistic name reads its norms instead
# STRIP (BB detection_infer/strip.py)
strip_n = 100                 # blended copies per query
strip_blend = 'add'           # 'add' = clip(x + overlay) (STRIP paper) | 'mean'
strip_topk = 50               # retrieved items per copy for the label entropy
# SentiNet (BB detection_infer/sentinet.py)
sentinet_n = 100              # defender images the region is pasted on
sentinet_cam_threshold = 0.85 # region = Grad-CAM >= this (BB mask_cond)
# run
seed = 0
device = 'auto'
batch_size = 128              # encoding batch
num_workers = 4
# ------------------------------------------------------------------------------------------------

FORMAT = 1              # defense.json
STAMP_FORMAT = 1        # the stamp of a defense that reads queries (it holds the target)
QUERY_FREE_FORMAT = 2   # of one that reads none: the target left out (format 1 held it; such
                        # stored results are still found, legacy_stamp)
PREFIXES = {'finetune': ('ft_',), 'fineprune': ('fp_', 'ft_'), 'nc': ('nc_',),
            'nc_collapse': ('nc_',), 'tabor': ('nc_', 'tabor_'), 'strip': ('strip_',),
            'sentinet': ('sentinet_',)}
SHARED_KEYS = ('defender_fraction', 'n_queries', 'ties', 'target', 'seed')


def say(msg):
    print(msg, flush=True)


def parse_defenses(text):
    names = list(NAMES) if text == 'all' else [n.strip() for n in text.split(',')
                                                        if n.strip()]
    bad = [n for n in names if n not in REGISTRY]
    if bad or not names:
        raise common.DefenseInputError(f"unknown defense {bad[0] if bad else text!r}; choose from "
                                       f"{', '.join(NAMES)} or 'all'")
    return names


def query_free(name):
    """Neural Cleanse, TABOR, NC-collapse: the optimisation reads no queries and never sees the
    target, which only scores the result (RESCORE)."""
    return not REGISTRY[name][1]


def defense_stamp(s, name, c, legacy_target=None):
    """The digest a (model, defense) result is stored under: the defense's own config keys, the
    model's inputs and, for a defense that reads queries, the target. legacy_target = (config
    target, model target) gives instead the format-1 stamp, which held the target for every
    defense."""
    reads = REGISTRY[name][1]
    keys = {k: v for k, v in c.items() if (k in SHARED_KEYS or k.startswith(PREFIXES[name]))
            and k not in SCORE_KEYS}
    made = {'defense': name, 'format': STAMP_FORMAT, 'config': keys,
            'inputs': s.input_keys(reads), 'target': s.target}
    if legacy_target is not None:
        keys['target'], made['target'] = legacy_target
    elif query_free(name):
        made['format'] = QUERY_FREE_FORMAT
        keys.pop('target', None)
        del made['target']
    if s.proto_source != 'csq_centres':  # prototypes from the database codes, not the checkpoint
        made['prototypes'] = common.digest(s.protos.tolist())
    return common.digest(made)


def legacy_stamp(s, name, c, parts):
    """The format-1 stamp of a stored result of a query-free defense, made for any target, else
    None (results stored before 2026-11-30 are read, never written, under these)."""
    if not query_free(name):
        return None
    for config_target in [-1] + list(range(s.num_classes)):
        for model_target in range(s.num_classes):
            st = defense_stamp(s, name, c, (config_target, model_target))
            if parts.get(st, {}).get('defense') == name:
                return st
    return None


def _read_parts(path):
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def run_all(s, names, c):
    """Every defense on one model, reusing the stamped results in {run_dir}/defense_parts.json."""
    path = os.path.join(s.run_dir, 'defense_parts.json')
    parts = _read_parts(path)
    out = {}
    for name in names:
        st = defense_stamp(s, name, c)
        found = st if parts.get(st, {}).get('defense') == name else legacy_stamp(s, name, c, parts)
        if found is not None:
            out[name] = dict(parts[found]['result'])
            other = ''
            made_for = out[name].get('target')
            if made_for is not None and made_for != s.target:
                other = f"; made for target {made_for}, scored for target {s.target}"
                out[name]['target'] = s.target  # scored below for this run's target
            say(f"{s.role}: reusing {name} ({path}, same checkpoint, lists and config{other})")
            if name in RESCORE:
                out[name] = RESCORE[name](out[name], c, s)
                if 'quality' in out[name] and 'quality' not in parts[found]['result']:
                    # a result stored before its quality scores: keep them with it
                    parts = _read_parts(path)  # again: another defend.py may have written
                    parts[found]['result']['quality'] = out[name]['quality']
                    parts[found]['result']['quality_orig'] = out[name]['quality_orig']
                    utils.write_json(path, parts)
            continue
        say(f"{s.role}: {name} on {s.run}")
        t0 = time.time()
        fn = REGISTRY[name][0]
        s.stamp = st  # a defense may keep its own partial progress under this stamp (nc.py)
        res = fn(s, c, say)
        res['time_s'] = round(time.time() - t0, 1)
        parts = _read_parts(path)  # again: another defend.py may have added entries meanwhile
        parts[st] = {'defense': name, 'result': res}
        utils.write_json(path, parts)  # after every defense: an interruption keeps what is done
        out[name] = json.loads(json.dumps(res, default=utils._json_default))
        say(f"{s.role}: {name} done in {res['time_s']} s")
    return out


def main(c):
    timer = utils.Timer()
    names = parse_defenses(c['defenses'])
    if not c['model_dir']:
        raise common.DefenseInputError("model_dir is empty: give the results folder of the model "
                                       "under test")
    device = utils.resolve_device(c['device'])
    utils.seed_everything(c['seed'])
    model = common.Setup(c['model_dir'], c, 'model', device, say=say)
    say(f"model {model.run}: {model.bits} bits, target {model.target}, prototypes "
        f"{model.proto_source}, D_def {len(model.def_idx)} images, queries {len(model.clean_idx)} "
        f"clean / {len(model.trig_idx)} triggered")
    control = None
    if c['control_dir']:
        control = common.Setup(c['control_dir'], c, 'control', device,
                               trigger_path=model.lists['trigger'], bits=model.bits, say=say)
    results = {'model': run_all(model, names, c)}
    if control is not None:
        results['control'] = run_all(control, names, c)
    rows = [(f"{model.run} (backdoored)", results['model'])]
    if control is not None:
        rows.append((f"{control.run} (clean control)", results['control']))
    md = [f"# Defenses: {model.run}", '', f"Triggered queries: `{model.lists['trigger']}` "
          f"(target {model.target}).", '', report.table(rows), '']
    lines, figures = report.summary(results['model'], results.get('control'), model.target)
    md += [f"- {x}" for x in lines] + ['']
    for role, r in results.items():
        if 'fineprune' in r:
            md += [f"Pruning curve ({role}):", '', report.curve(r['fineprune']), '']
    doc = {'format': FORMAT, 'config': c, 'defenses': names, 'git_commit': utils.git_commit(),
           'inputs': {'model': model.input_keys(('test', 'database', 'trigger')),
                      'control': control.input_keys(('test', 'database', 'trigger'))
                      if control else None},
           'runs': {'model': model.run, 'control': control.run if control else None},
           'target': model.target, 'summary': figures, 'results': results,
           'wall_time_this_invocation_s': round(timer(), 1)}
    if control is not None and 'nc_collapse' in names:
        doc['nc_collapse_ratio'] = (results['model']['nc_collapse']['norm']
                                    / max(results['control']['nc_collapse']['norm'], 1e-12))
    utils.write_json(os.path.join(c['model_dir'], 'defense.json'), doc)
    utils.atomic_write_text(os.path.join(c['model_dir'], 'defense.md'), '\n'.join(md) + '\n')
    say('\n'.join(md))
    say(f"results: {os.path.join(c['model_dir'], 'defense.json')} "
        f"(wall time {timer():.0f} s)")
    return doc


if __name__ == '__main__':
    try:
        main(utils.configure(globals()))
    except common.DefenseInputError as e:
        sys.exit(f"error: {e}")
