"""Reproduce one row of a paper table: chain the pipeline scripts, then write the table and figures.

    python reproduce.py configs/table5_toy.py                   # Table 5 on the toy data (CPU)
    python reproduce.py configs/table5_toy.py --methods=badhash # BadHash's row only
    python reproduce.py configs/table1_s01.py --dry_run=True    # print the commands, run nothing
    python reproduce.py configs/table5_toy.py --figures=False

A table preset (configs/table{N}_*.py) names a row of the paper's Table 1, 3, 4 or 5: which
surrogate (B-network), which victims (T-networks), methods, bit lengths and target, the preset
files the scripts read, and the paper's figures for that row (`paper_*` keys). This script turns it
into commands, each run as a subprocess in this order:

  1. data preparation (`prepare`, when `prepare_check` is missing)
  2. clean surrogates:       CSQ.py / HashNet.py  --backbone=B --bits=surrogate_bits
  3. BadHash step 1:         train_tri_gen.py      (LabCLN + G + D against the surrogate)
  4. BadHash step 2:         implement_tri_gen.py  (poisons, poisoned list, triggered queries)
     baselines:              baselines/{badnets,lcba,issba}.py (same output layout)
  5. backdoored victims:     CSQ.py / HashNet.py --train_list=ATTACK/poisoned_train.txt --tag=poisoned_...
  6. clean victims:          the same with --tag=clean and every attack's triggered queries
  7. model attacks:          darkhash.py (MODEL_ATTACKS): backdoors the clean victim of step 6
                             itself, data-free, and writes its report (results.json 'report')
  8. attack reports:         evaluate.py --clean_dir --backdoor_dir --target --stealth
Table 4 presets (clean_only=True) run step 2 at every bit length and stop.

A step whose output files all exist is skipped ("skip <step>: <file> exists"); the scripts also
reuse their own finished outputs. A failing step stops the runner with its command and exit code.
Then results/tables/table{N}.md is rewritten from every configs/table*.py preset of that table
(each cell: ours / paper (ours - paper); '-' where not run yet), and for attack tables
figures.py draws Figures 4-6 next to it.

Run names come from the scripts' own functions (hash_models.engine.derive,
attack_common.gan_run_name, attack_common.attack_run_name) applied to the configuration each
script will see, so the runner and the scripts cannot disagree on a path.
"""
import functools
import glob
import json
import os
import shlex
import subprocess
import sys

import utils
from pipeline import (ROOT, Plan, PlanError, attack_lists, file_stamp, hashing_step, opts as _opts,
                      plan_prepare, run_or_exit, script_config, split as _split, stale_reason, start,
                      write_record)

# ---- config ------------------------------------------------------------------------------------
# which paper table and row this preset reproduces
table = 0                     # 1, 3, 4 or 5 (Table 2 lists the settings of Table 1's rows)
block = ''                    # the block of the table the row belongs to, e.g. 'ImageNet', 'MS-COCO'
row = ''                      # row label as the paper prints it, e.g. 'S1'; Table 5: methods are rows
demo_scale = False            # True: demo data, the paper column is the paper's ImageNet figure
# what the scripts read
presets = ''                  # preset files for every script, comma-separated (e.g. 'configs/demo.py')
attack_presets = ''           # more presets for train_tri_gen.py, implement_tri_gen.py, baselines/
victim_presets = ''           # more presets for the victims (backdoored and clean)
darkhash_presets = ''         # presets of darkhash.py alone (not `presets`: their training keys differ)
darkhash_prepare = ''         # command that prepares DarkHash's surrogate set, run when a
darkhash_prepare_check = ''   # file of this comma-separated list is missing
prepare = ''                  # data preparation command, run when a prepare_check file is missing;
                              # several commands: separated by ';', run in order
prepare_check = ''            # files the preparation writes, comma-separated ('' = nothing to check);
                              # with several commands one ';'-separated group of files per command
# the experiment
methods = 'badhash'           # attacks: badhash, badnets, lcba, issba, darkhash (Table 5: all five)
pairs = 'CSQ-CSQ'             # 'T-B' hashing methods: victim trained with T, poisons made against a B
                              # surrogate (paper Table 1: 'CSQ-HashNet' = CSQ victim, HashNet poisons);
                              # Table 4: the method alone
surrogate_backbone = 'resnet50'  # B-network (paper Table 2)
surrogate_bits = 64           # the surrogate's bits (official code_length 64, SPEC D17)
victim_backbones = 'resnet50' # T-networks, comma-separated (Table 3: three)
bits_list = '64'              # victim bit lengths, comma-separated (Tables 1 and 4: '16,32,64')
target = 0                    # target class index (SPEC §5.3, D23)
target_name = ''              # the paper's name of the target, for the tables
ties = 'index'                # evaluate.py's attack reports: 'index' (D19) | 'expected' (tie-aware AP,
                              # for codes with few distinct values such as the toy data's)
clean_only = False            # Table 4: clean models only (pairs' method, surrogate_backbone, bits_list)
defenses = ''                 # Table 5: defend.py's defenses ('all' or names) on every backdoored victim,
                              # the clean victim as control -> {tables_dir}/{preset}_defenses.md; '' = none
defense_presets = ''          # defend.py presets, comma-separated (e.g. configs/defense_toy.py)
# runner
dry_run = False               # print the commands, run nothing
figures = True                # draw Figures 4-6 after an attack table
tables_dir = 'results/tables' # table{N}.md, figures, runner logs
configs_dir = 'configs'       # where the other rows' presets of the table are found
# the paper's figures for comparison (None = not a cell of this row), typed from the paper text
# Table 1: MAP / t-MAP per method pair and bits (pair 'csq_hashnet' = the paper's CSQ-HashNet)
paper_map_csq_hashnet_16 = None
paper_tmap_csq_hashnet_16 = None
paper_map_csq_hashnet_32 = None
paper_tmap_csq_hashnet_32 = None
paper_map_csq_hashnet_64 = None
paper_tmap_csq_hashnet_64 = None
paper_map_hashnet_csq_16 = None
paper_tmap_hashnet_csq_16 = None
paper_map_hashnet_csq_32 = None
paper_tmap_hashnet_csq_32 = None
paper_map_hashnet_csq_64 = None
paper_tmap_hashnet_csq_64 = None
# Table 3: MAP / t-MAP per T-network and bits (32 = the paper's '*' columns)
paper_map_resnet34_32 = None
paper_tmap_resnet34_32 = None
paper_map_resnet34_64 = None
paper_tmap_resnet34_64 = None
paper_map_vgg13_32 = None
paper_tmap_vgg13_32 = None
paper_map_vgg13_64 = None
paper_tmap_vgg13_64 = None
paper_map_densenet121_32 = None
paper_tmap_densenet121_32 = None
paper_map_densenet121_64 = None
paper_tmap_densenet121_64 = None
# Table 4: clean MAP per bits
paper_map_16 = None
paper_map_32 = None
paper_map_64 = None
# Table 5: per method
paper_map_badnets = None
paper_tmap_badnets = None
paper_mse_badnets = None
paper_psnr_badnets = None
paper_ssim_badnets = None
paper_map_lcba = None
paper_tmap_lcba = None
paper_mse_lcba = None
paper_psnr_lcba = None
paper_ssim_lcba = None
paper_map_issba = None
paper_tmap_issba = None
paper_mse_issba = None
paper_psnr_issba = None
paper_ssim_issba = None
paper_map_badhash = None
paper_tmap_badhash = None
paper_mse_badhash = None
paper_psnr_badhash = None
paper_ssim_badhash = None
# ------------------------------------------------------------------------------------------------

METHODS = ('badhash', 'badnets', 'lcba', 'issba', 'darkhash')
BASELINES = ('badnets', 'lcba', 'issba')
HASH_METHODS = ('CSQ', 'HashNet')
METHOD_TITLES = {'badhash': 'BadHash', 'badnets': 'BadNets', 'lcba': 'LCBA', 'issba': 'ISSBA',
                 'darkhash': 'DarkHash'}
# attacks that backdoor a finished clean victim directly instead of poisoning its training list:
# name -> (script, the preset key holding its presets, its run-name function in attack_common). The
# script takes victim_method, backbone, bits and victim_tag and writes {out_dir}/{run}/results.json
# with an evaluate.attack_report row under 'report' (splits trig_closed / trig_open).
MODEL_ATTACKS = {'darkhash': ('darkhash.py', 'darkhash_presets', 'darkhash_run_name')}
# the baselines' default poison rates (issue 4's interface), used when their script is not here
BASELINE_POISON_RATES = {'badnets': 0.05, 'lcba': 0.5, 'issba': 0.05}
# the keys implement_tri_gen.py and the baselines share (issue 4's baseline interface)
ATTACK_KEYS = ('dataset', 'data_dir', 'train_list', 'test_list', 'image_size', 'resize_size',
               'target', 'poison_rate', 'openset_list', 'n_openset', 'n_closed', 'attack_tag',
               'out_dir', 'checkpoint_dir', 'seed')


# =============================================================================================
# 1. the plan: steps (commands with their output files) and table cells
# =============================================================================================

def _check_preset(c, source):
    if c['table'] not in (1, 3, 4, 5):
        raise PlanError(f"{source}: table must be 1, 3, 4 or 5, got {c['table']!r}")
    for m in _split(c['methods']):
        if m not in METHODS:
            raise PlanError(f"{source}: methods entries must be among {', '.join(METHODS)}, got {m!r}")
    for p in _split(c['pairs']):
        parts = p.split('-')
        if not 1 <= len(parts) <= 2 or any(x not in HASH_METHODS for x in parts):
            raise PlanError(f"{source}: pairs entries must be T-B or T with T, B in CSQ/HashNet, "
                            f"got {p!r}")
    for b in _split(c['bits_list']):
        if not b.isdigit() or int(b) not in (16, 32, 64):
            raise PlanError(f"{source}: bits_list entries must be 16, 32 or 64, got {b!r}")
    for f in (_split(c['presets']) + _split(c['attack_presets']) + _split(c['victim_presets'])
              + _split(c['darkhash_presets'])):
        if not os.path.isfile(f):
            raise PlanError(f"{source}: preset file {f} not found")


def _pairs(c):
    out = []
    for p in _split(c['pairs']):
        parts = p.split('-')
        out.append((parts[0], parts[-1]))
    return out


def gan_tag(attack_cfg, target_index):
    """The tag of train_tri_gen.py's run. Its run name has no target, but G's checkpoint records the
    target (the sampled confusing labels exclude it) and is refused for another one, so each target
    gets its own run, tag t{target}. Kept untagged: a preset's own tag, and a fixed confusing label
    (conf_mode '<idx>') with the target the presets themselves set (the demo presets, so the
    runner reuses `make demo`'s G). attack_cfg: train_tri_gen.py's config from the presets alone."""
    if attack_cfg['tag']:
        return attack_cfg['tag']
    if str(attack_cfg['conf_mode']).isdigit() and attack_cfg['target'] == target_index:
        return ''
    return f"t{target_index}"


def build_plan(c, source='preset'):
    """Turn a table preset's config into a Plan (no file is read except presets and scripts), in the
    runner's order: data preparation, clean models (Table 4) or the poisoning attacks, their
    victims, the clean victims with the attack reports (and defenses), the model attacks."""
    _check_preset(c, source)
    plan = Plan(c, source)
    plan_prepare(plan, c, 'prepare', 'prepare')
    if c['clean_only']:  # Table 4: the clean B-networks at every bit length
        _plan_clean_models(plan, c)
        return plan
    victims = {}  # (tm, backbone, bits) -> one dict per poisoning attack, with its victim
    for tm, bm in _pairs(c):
        attacks = [_plan_attack(plan, c, m, bm) for m in _split(c['methods']) if m not in MODEL_ATTACKS]
        _plan_victims(plan, c, tm, bm, attacks, victims)
    clean_dirs = _plan_clean_victims(plan, c, victims)
    for m in [m for m in _split(c['methods']) if m in MODEL_ATTACKS]:
        _plan_model_attack(plan, c, m, victims, clean_dirs)
    return plan


def _hashing_step(plan, phase, name, method, presets, **kw):
    """pipeline.hashing_step with --key=value items for kw."""
    return hashing_step(plan, phase, name, method, presets + _opts(**kw))


def _plan_clean_models(plan, c):
    """Table 4: one clean model per (pair's method, bit length), its MAP a cell."""
    for tm, _ in _pairs(c):
        for bits in _split(c['bits_list']):
            cfg, d = _hashing_step(plan, 'surrogate', 'clean model', tm, _split(c['presets']),
                                   backbone=c['surrogate_backbone'], bits=bits)
            results = os.path.join(d['out'], 'results.json')
            plan.cells.append({'row': f"{_title(c['surrogate_backbone'])} {tm}",
                               'col': f"{bits} bits", 'paper_key': f"paper_map_{bits}",
                               'kind': 'clean', 'file': results, 'runs': [(results, cfg)]})


def _plan_surrogate(plan, c, bm):
    """The clean surrogate (B-network) BadHash and LCBA attack; returns the keys naming it."""
    _hashing_step(plan, 'surrogate', 'surrogate', bm, _split(c['presets']),
                  backbone=c['surrogate_backbone'], bits=c['surrogate_bits'])
    return dict(surrogate_method=bm, surrogate_backbone=c['surrogate_backbone'],
                surrogate_bits=c['surrogate_bits'])


def _plan_attack(plan, c, m, bm):
    """One poisoning attack's steps against surrogate method bm: BadHash (train_tri_gen.py, then
    implement_tri_gen.py) or a baseline (baselines/{m}.py). Returns the attack's record: its
    folder, its id in run names and the names of its triggered query lists."""
    import attack_common
    py, t = sys.executable, c['target']
    attack_p = _split(c['presets']) + _split(c['attack_presets'])
    if m == 'badhash':
        surr = _plan_surrogate(plan, c, bm)
        tag = gan_tag(script_config('train_tri_gen.py', attack_p + _opts(**surr)), t)
        gargv = attack_p + _opts(**surr, target=t, tag=tag)
        gcfg = script_config('train_tri_gen.py', gargv)
        gan_run = attack_common.gan_run_name(gcfg)
        plan.add('attack', f"train_tri_gen {gan_run}", [py, 'train_tri_gen.py'] + gargv,
                 [os.path.join(gcfg['out_dir'], gan_run, 'train_summary.json')],
                 [gcfg['train_list'] or os.path.join(gcfg['data_dir'], 'train.txt')])
        cfg = script_config('implement_tri_gen.py', gargv)
        folder = os.path.join(cfg['out_dir'], attack_common.attack_run_name(cfg, gan_run))
        step = plan.add('attack', f"implement_tri_gen {os.path.basename(folder)}",
                        [py, 'implement_tri_gen.py'] + gargv, None, attack_lists(cfg))
    else:
        script = os.path.join('baselines', f"{m}.py")
        # LCBA's PGD noise is made against the same surrogate
        extra = _plan_surrogate(plan, c, bm) if m == 'lcba' else {}
        bargv = attack_p + _opts(target=t, **extra)
        if os.path.isfile(os.path.join(ROOT, script)):
            cfg = script_config(script, bargv)
        else:  # not on this branch yet: the interface's keys and defaults
            icfg = script_config('implement_tri_gen.py', attack_p + _opts(target=t))
            cfg = {k: icfg[k] for k in ATTACK_KEYS}
            cfg['poison_rate'] = BASELINE_POISON_RATES[m]
            cfg['attack_tag'] = ''
        name = f"{cfg['dataset']}_{m}_t{cfg['target']}_p{cfg['poison_rate']:g}" + (
            f"_{cfg['attack_tag']}" if cfg['attack_tag'] else '')
        folder = os.path.join(cfg['out_dir'], name)
        step = plan.add('attack', f"{m} {name}", [py, script] + bargv, None, attack_lists(cfg))
    parts = ['trigger_closed'] + (['trigger_open'] if cfg['openset_list'] else [])
    step['outputs'] = [os.path.join(folder, f) for f in
                       ['poisoned_train.txt', 'stealth.json', 'poisons.json'] + [p + '.txt' for p in parts]]
    aid = os.path.basename(folder)[len(cfg['dataset']) + 1:]
    return {'method': m, 'folder': folder, 'aid': aid,
            'splits': {p: f"trig_{aid}_{p[len('trigger_'):]}" for p in parts},
            'geometry': (cfg['image_size'], cfg['resize_size']),
            'surrogate': f"{bm}-{_title(c['surrogate_backbone'])}"}


def _plan_victims(plan, c, tm, bm, attacks, victims):
    """A backdoored victim (method tm) per victim backbone, bit length and attack, trained on the
    attack's poisoned list and encoding its triggered queries; recorded in `victims`."""
    victim_p = _split(c['presets']) + _split(c['victim_presets'])
    for vb in _split(c['victim_backbones']):
        for bits in _split(c['bits_list']):
            for a in attacks:
                queries = ','.join(f"{s}={os.path.join(a['folder'], p + '.txt')}"
                                   for p, s in a['splits'].items())
                vcfg, d = _hashing_step(plan, 'victim', 'backdoored victim', tm, victim_p,
                                     backbone=vb, bits=bits, tag=f"poisoned_{a['aid']}",
                                     train_list=os.path.join(a['folder'], 'poisoned_train.txt'),
                                     queries=queries)
                victims.setdefault((tm, vb, bits), []).append(dict(
                    a, victim_dir=d['out'], topk=d['topk'], tm=tm, bm=bm, vb=vb, bits=bits,
                    runs=[(os.path.join(d['out'], 'results.json'), vcfg)]))


def _plan_clean_victims(plan, c, victims):
    """One clean victim per (method, backbone, bits) encoding every attack's triggered queries (the
    floor), then each attack's report (evaluate.py) and, with `defenses`, its defend.py step (the
    clean victim as control). Returns {(method, backbone, bits): the clean victim's folder}."""
    py, t = sys.executable, c['target']
    victim_p = _split(c['presets']) + _split(c['victim_presets'])
    clean_dirs = {}
    for (tm, vb, bits), items in victims.items():
        queries = ','.join(f"{s}={os.path.join(a['folder'], p + '.txt')}"
                           for a in items for p, s in a['splits'].items())
        cfg, d = _hashing_step(plan, 'clean', 'clean victim', tm, victim_p, backbone=vb, bits=bits,
                               tag='clean', queries=queries)
        clean_dirs[(tm, vb, bits)] = d['out']
        for a in items:
            a['clean_dir'] = d['out']
            a['runs'] = a['runs'] + [(os.path.join(d['out'], 'results.json'), cfg)]
            report = os.path.basename(a['victim_dir'])
            a['report'] = os.path.join(cfg['out_dir'], report + '.json')
            plan.add('report', f"report {report}",
                     [py, 'evaluate.py'] + _opts(clean_dir=d['out'], backdoor_dir=a['victim_dir'],
                                                 target=t, topk=a['topk'], ties=c['ties'],
                                                 stealth=os.path.join(a['folder'], 'stealth.json'),
                                                 report_name=report, out_dir=cfg['out_dir']),
                     [a['report']])
            if c['defenses']:  # issue 13: the defenses on this victim, the clean victim as control
                a['defense'] = os.path.join(a['victim_dir'], 'defense.json')
                closed = a['splits']['trigger_closed']
                plan.add('defense', f"defend {report}", [py, 'defend.py']
                         + _split(c['defense_presets'])
                         + _opts(model_dir=a['victim_dir'], control_dir=d['out'], trigger=closed,
                                 target=t, defenses=c['defenses']), [a['defense']])
            plan.attacks.append(a)
            plan.cells += _attack_cells(c, a)
    return clean_dirs


def _plan_model_attack(plan, c, m, victims, clean_dirs):
    """A model attack (MODEL_ATTACKS: DarkHash) on the clean victim of every (method, backbone,
    bits), after its own data preparation; with `defenses`, its defend.py step (the clean victim it
    backdoored as control). Its cells carry no paper figure."""
    import attack_common
    py = sys.executable
    script, preset_key, namer = MODEL_ATTACKS[m]
    plan_prepare(plan, c, f"{m}_prepare", f"prepare {m}")  # its own data (a surrogate set)
    victim_p = _split(c['presets']) + _split(c['victim_presets'])
    for tm in dict.fromkeys(t for t, _ in _pairs(c)):
        for vb in _split(c['victim_backbones']):
            for bits in _split(c['bits_list']):
                if (tm, vb, bits) not in victims:  # no poisoning attack made this clean victim
                    _, d = _hashing_step(plan, 'clean', 'clean victim', tm, victim_p, backbone=vb,
                                         bits=bits, tag='clean')
                    clean_dirs[(tm, vb, bits)] = d['out']
                margv = _split(c[preset_key]) + _opts(victim_method=tm, backbone=vb, bits=bits,
                                                      victim_tag='clean')
                mcfg = script_config(script, margv)
                run = getattr(attack_common, namer)(mcfg)
                report = os.path.join(mcfg['out_dir'], run, 'results.json')
                plan.add('model_attack', f"{m} {run}", [py, script] + margv, [report])
                a = {'method': m, 'tm': tm, 'bm': tm, 'vb': vb, 'bits': bits, 'report': report,
                     'splits': {'trigger_closed': 'trig_closed'}}
                if mcfg.get('openset_list'):
                    a['splits']['trigger_open'] = 'trig_open'
                if c['defenses']:  # issue 13: the backdoored model's own triggered list
                    # (results.json 'lists'), the clean victim it was made from as control;
                    # the target is read off that list (DarkHash chooses it from t*)
                    a['defense'] = os.path.join(mcfg['out_dir'], run, 'defense.json')
                    plan.add('defense', f"defend {run}", [py, 'defend.py']
                             + _split(c['defense_presets'])
                             + _opts(model_dir=os.path.join(mcfg['out_dir'], run),
                                     control_dir=clean_dirs[(tm, vb, bits)],
                                     trigger='trig_closed', defenses=c['defenses']),
                             [a['defense']])
                plan.model_attacks.append(a)
                for cell in _attack_cells(c, a):  # not in the BadHash paper: no paper figure
                    plan.cells.append(dict(cell, paper_key=None))


def _title(backbone):
    names = {'resnet': 'ResNet', 'vgg': 'VGG', 'densenet': 'DenseNet', 'alexnet': 'AlexNet'}
    for k, v in names.items():
        if backbone.startswith(k):
            return v + backbone[len(k):]
    return backbone


def _attack_cells(c, a):
    """The paper cells an attack experiment fills, by table."""
    tab, m, bits = c['table'], a['method'], a['bits']
    cells = []
    if tab == 1:
        pair = f"{a['tm'].lower()}_{a['bm'].lower()}"
        for metric, title in (('map', 'MAP'), ('tmap', 't-MAP')):
            cells.append({'row': c['row'], 'col': f"{a['tm']}-{a['bm']} {bits} bits {title}",
                          'paper_key': f"paper_{metric}_{pair}_{bits}", 'metric': metric})
    elif tab == 3:
        star = '*' if bits == '32' else ''
        for metric, title in (('map', 'MAP'), ('tmap', 't-MAP')):
            cells.append({'row': c['row'], 'col': f"T-{_title(a['vb'])}{star} {title}",
                          'paper_key': f"paper_{metric}_{a['vb']}_{bits}", 'metric': metric})
    elif tab == 5:
        for metric, title in (('map', 'MAP'), ('tmap', 't-MAP'), ('mse', 'MSE'), ('psnr', 'PSNR'),
                              ('ssim', 'SSIM')):
            cells.append({'row': METHOD_TITLES[m], 'col': title,
                          'paper_key': f"paper_{metric}_{m}", 'metric': metric})
    for cell in cells:
        cell.update(kind='attack', file=a['report'], splits=a['splits'], runs=a.get('runs', []))
    return cells


# =============================================================================================
# 2. tables: ours next to the paper's, for every row preset of a table
# =============================================================================================

TABLE_TITLES = {1: 'Table 1: attack performance (MAP / t-MAP) under the settings of Table 2',
                3: 'Table 3: cross-family transfer (MAP / t-MAP); * = 32 bits, otherwise 64 bits',
                4: 'Table 4: MAP of the hash models trained on clean samples',
                5: 'Table 5: comparison between backdoor attack methods (64 bits, CSQ)'}
DIGITS = 3  # the paper prints three decimals


@functools.lru_cache(maxsize=None)
def _stored_config(path, mtime_ns, size):
    """The config a finished run stored, read once per version of its results.json (every cell
    of an attack and its details line ask for the same runs)."""
    with open(path) as f:
        return json.load(f).get('config', {})


def other_setting(cell):
    """Why a cell's results are another preset's, or None: the hashing runs behind the cell were
    trained with settings other than those this preset plans for them (presets that share run
    names, e.g. a GPU budget and a CPU budget of the same table block)."""
    from hash_models import engine
    for path, cfg in cell.get('runs', []):
        try:
            st = os.stat(path)
            stored = _stored_config(path, st.st_mtime_ns, st.st_size)
        except (OSError, ValueError):
            continue  # not run yet: the cell reads as such
        diff = engine.config_differences(stored, cfg)
        if diff:
            return f"{path} was made with " + ', '.join(
                f"{k}={a!r} (this preset: {b!r})" for k, (a, b) in sorted(diff.items()))
    return None


def read_ours(cell):
    """Our figure for a cell from the results files, or None when not run yet or made with another
    preset's settings (other_setting)."""
    if not os.path.isfile(cell['file']) or other_setting(cell):
        return None
    with open(cell['file']) as f:
        data = json.load(f)
    if cell['kind'] == 'clean':
        return data['final'].get('test')
    rep = data['report']
    metric = cell['metric']
    if metric == 'map':
        return rep.get('map_backdoor')
    if metric == 'tmap':  # open-set t-MAP, the paper's (D18); closed-set where no open set exists
        split = cell['splits'].get('trigger_open') or cell['splits']['trigger_closed']
        return rep.get(f"tmap_{split}_backdoor")
    return rep.get(metric)


def format_cell(ours, paper):
    o = '-' if ours is None else f"{ours:.{DIGITS}f}"
    p = '-' if paper is None else f"{paper:.{DIGITS}f}"
    if ours is None or paper is None:
        return f"{o} / {p}"
    return f"{o} / {p} ({ours - paper:+.{DIGITS}f})"


def load_preset(path, overrides=()):
    """A table preset's resolved runner config (defaults of this file + the preset + overrides)."""
    return script_config('reproduce.py', [path] + list(overrides))


def table_presets(table_no, folder):
    """Every configs/table*.py preset of a table, in file-name order."""
    out = []
    for path in sorted(glob.glob(os.path.join(folder, 'table*.py'))):
        c = load_preset(path)
        if c['table'] == table_no:
            out.append((path, c))
    return out


def table_markdown(table_no, entries):
    """entries: (preset path, config, plan) of one table. Returns the markdown text."""
    lines = [f"# {TABLE_TITLES[table_no]}", '',
             "Each cell: **ours / paper (ours - paper)**; '-' = not run yet. Ours: the final epoch "
             "(SPEC D20); t-MAP on the open-set triggered queries (closed-set where the preset has "
             "no open set), MAP on the clean queries of the backdoored victim. Written by "
             "`python reproduce.py <preset>`; the preset of every row is named below.", '']
    blocks = {}
    for path, c, plan in entries:
        key = (c['block'], c['demo_scale'])
        blocks.setdefault(key, []).append((path, c, plan))
    for (name, demo), items in blocks.items():
        lines.append(f"## {name}")
        lines.append('')
        if demo:
            lines += ["Demo scale: the paper column holds **the paper's ImageNet figure**, printed for "
                      "reference; it is not comparable in value with a run on this data.", '']
        rows, cols = [], []
        cells = {}
        for path, c, plan in items:
            for cell in plan.cells:
                paper = c.get(cell['paper_key'])
                r = cell['row'] + ('' if table_no == 5 or not c['target_name']
                                   else f" ({c['target_name']})")
                if r not in rows:
                    rows.append(r)
                if cell['col'] not in cols:
                    cols.append(cell['col'])
                cells[(r, cell['col'])] = format_cell(read_ours(cell), paper)
        lines.append('| row | ' + ' | '.join(cols) + ' |')
        lines.append('|' + '---|' * (len(cols) + 1))
        for r in rows:
            lines.append(f"| {r} | " + ' | '.join(cells.get((r, col), '') for col in cols) + ' |')
        lines.append('')
        lines.append('Presets: ' + ', '.join(f"`{p}`" for p, _, _ in items))
        details = _details(items)
        if details:
            lines += [''] + details
        lines.append('')
    return '\n'.join(lines)


def _details(items):
    """Per attack experiment: the clean victim's t-MAP on the same queries (the floor, D18) and
    the closed-set t-MAP, which the paper does not print."""
    out = []
    for path, c, plan in items:
        why = next(filter(None, (other_setting(cell) for cell in plan.cells)), None)
        if why:  # one line for the preset: its cells read '-'
            out.append(f"- `{path}`: not shown, {why}; `python reproduce.py {path}` fills its cells")
        for a in plan.attacks:
            if not os.path.isfile(a['report']) or other_setting({'runs': a.get('runs', [])}):
                continue
            with open(a['report']) as f:
                rep = json.load(f)['report']
            parts = []
            for p, s in a['splits'].items():
                kind = p[len('trigger_'):]
                b, cl = rep.get(f"tmap_{s}_backdoor"), rep.get(f"tmap_{s}_clean")
                if b is not None and cl is not None:
                    parts.append(f"t-MAP {kind} {b:.{DIGITS}f} (clean victim {cl:.{DIGITS}f})")
            mc = rep.get('map_clean')
            if mc is not None:
                parts.append(f"clean victim MAP {mc:.{DIGITS}f}")
            out.append(f"- {METHOD_TITLES[a['method']]}, {a['tm']} {_title(a['vb'])} {a['bits']} bits, "
                       f"poisons against {a['surrogate']}: " + '; '.join(parts)
                       + f" (`{a['report']}`)")
        for a in plan.model_attacks:
            if not os.path.isfile(a['report']):
                continue
            with open(a['report']) as f:
                r = json.load(f)
            name = f" ({r['target_name']})" if r.get('target_name') else ''
            parts = [f"t-MAP {k[len('tmap_trig_'):]} {r['backdoor'][k]:.{DIGITS}f} (clean victim "
                     f"{r['clean'][k]:.{DIGITS}f})" for k in r['backdoor'] if k.startswith('tmap_trig')]
            parts.append(f"random-patch control {r['backdoor']['tmap_randpatch_closed']:.{DIGITS}f}")
            parts.append(f"clean victim MAP {r['clean']['map']:.{DIGITS}f}")
            out.append(f"- {METHOD_TITLES[a['method']]}, {a['tm']} {_title(a['vb'])} {a['bits']} bits, "
                       f"data-free on {r['n_surrogate']} surrogate images, target class "
                       f"{r['target']}{name} (its own, fixed from the shadow target before fine-tuning; "
                       f"MSE/PSNR/SSIM: the trigger on the triggered queries): " + '; '.join(parts)
                       + f" (`{a['report']}`)")
    return out


def write_table(table_no, folder, out_dir, extra=()):
    """Rewrite {out_dir}/table{N}.md from every preset of the table (plus `extra` entries)."""
    entries = []
    seen = set()
    for path, c, plan in extra:
        entries.append((path, c, plan))
        seen.add(os.path.abspath(path))
    for path, c in table_presets(table_no, folder):
        if os.path.abspath(path) not in seen:
            entries.append((path, c, build_plan(c, path)))
    # the paper's blocks in its order (ImageNet, then MS-COCO), demo-scale blocks last
    entries.sort(key=lambda e: (e[1]['demo_scale'], e[1]['block'] != 'ImageNet', e[0]))
    text = table_markdown(table_no, entries)
    out = os.path.join(out_dir, f"table{table_no}.md")
    utils.atomic_write_text(out, text)
    return out


def draw_figures(plan, source, argv, log=print):
    """Figures 4-6 (figures.py in a subprocess) as a step under the reuse rule above: made from
    every step's outputs, with this command and figures.py's config block (the file itself stands
    for it); skipped when those are as recorded and the PNGs are there. Returns the PNG paths."""
    c = plan.c
    stem = os.path.splitext(os.path.basename(source))[0]
    pngs = [os.path.join(c['tables_dir'], f"{stem}_figure{k}.png") for k in (4, 5, 6)]
    overrides = [a for a in argv if a.startswith('--') and not a.startswith('--tables_dir=')]
    cmd = [sys.executable, os.path.join(ROOT, 'figures.py'), source,
           f"--tables_dir={c['tables_dir']}"] + overrides
    step = {'name': 'figures', 'cmd': cmd, 'outputs': pngs, 'phase': 'figures'}
    inputs = {f: file_stamp(os.path.join(ROOT, f)) for s in plan.ordered()
              for f in s['outputs'] or []}
    inputs['figures.py'] = file_stamp(os.path.join(ROOT, 'figures.py'))
    why = stale_reason(plan, step, inputs) if all(os.path.isfile(p) for p in pngs) else \
        'not drawn yet'
    if why is None:
        log(f"skip figures: {pngs[0]} exists (and 2 more), made from the same outputs")
        return pngs
    log(f"figures ({why})")
    out = subprocess.run(cmd, capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if not line.startswith('config: '):
            log(line)
    if out.returncode:
        sys.exit(f"error: figures failed (exit {out.returncode}): {shlex.join(cmd)}\n"
                 f"{out.stderr.strip()[-2000:]}")
    step['outputs'] = [p for p in pngs if os.path.isfile(p)]
    write_record(plan, step, inputs)
    return step['outputs']


# =============================================================================================
# 3. main
# =============================================================================================

def write_defense_table(plan, source):
    """{tables_dir}/{preset}_defenses.md: one row per attack's backdoored victim, then the clean
    control on each attack's triggered queries (defenses/report.py's columns)."""
    from defenses import report
    rows, controls = [], []
    for a in plan.attacks + plan.model_attacks:
        if not os.path.isfile(a.get('defense', '')):
            continue
        with open(a['defense']) as f:
            doc = json.load(f)
        title = f"{METHOD_TITLES[a['method']]} ({a['tm']} {_title(a['vb'])} {a['bits']} bits)"
        rows.append((title, doc['results']['model']))
        if 'control' in doc['results']:
            controls.append((f"clean control, {METHOD_TITLES[a['method']]}'s queries",
                             doc['results']['control']))
    stem = os.path.splitext(os.path.basename(source))[0]
    out = os.path.join(plan.c['tables_dir'], f"{stem}_defenses.md")
    text = [f"# Defenses on the victims of {source}", '',
            "MAP / t-MAP before repair; FT / FP after fine-tuning / fine-pruning; NC index > 2 flags; "
            "AUROC of triggered vs clean queries (README, Defenses). The clean control is the "
            "clean victim on each attack's triggered queries.", '', report.table(rows + controls),
            '']
    utils.atomic_write_text(out, '\n'.join(text))
    return out


def main(argv):
    # this file's config block + preset + overrides
    source, c, plan, log = start('reproduce.py', argv, build_plan, 'table', 'configs/table5_toy.py')
    log(f"reproduce {source}: table {c['table']}, {c['block']}, row {c['row'] or c['methods']}, "
        f"{len(plan.steps)} steps")
    run_or_exit(plan, log)
    if c['dry_run']:
        return plan
    try:  # the table shows the presets as written (all their rows), whatever was overridden here
        c_file = load_preset(source)
        out = write_table(c['table'], c['configs_dir'], c['tables_dir'],
                          [(source, c_file, build_plan(c_file, source))])
    except PlanError as e:
        sys.exit(f"error: {e}")
    log(f"table: {out}")
    if c['defenses'] and (plan.attacks or plan.model_attacks):
        log(f"defense table: {write_defense_table(plan, source)}")
    if c['figures'] and plan.attacks and c['table'] == 5:  # the paper's Figures 4-6 illustrate Table 5
        draw_figures(plan, source, argv, log)
    return plan


if __name__ == '__main__':
    main(sys.argv[1:])
