"""One rung of the regime ladder (issue 11): the attack variants against one surrogate, a victim per
variant trained on its poisoned list, the clean victim on every variant's queries (the floor), and
the rung's table: MAP and t-MAP of each query list on both victims, with the untriggered controls.

    python ladder.py configs/ladder_tiny10_r2.py                      # the whole rung (resumable)
    python ladder.py configs/ladder_tiny10_r2.py --variants=gsur,badnets
    python ladder.py configs/ladder_tiny10_r2.py --dry_run=True       # print the commands only

The variants (VARIANTS below): BadHash with the paper preset ('paper', LabCLN's code as G's goal),
with the surrogate's code of the confusing class as the goal ('gsur'), with the official generation
condition ('conftarget': LabCLN fed the target's own label, SPEC §2.6), with the official append of
10 copies of each poison ('append10'; 'paperappend10', opt-in: the same append with the paper's
goal), and BadNets at the paper's patch scale as the visible, poison-label reference ('badnets');
'oracle' (opt-in, not an attack) makes the poisons and every triggered query by per-image PGD
towards the confusing class's centre, 'oraclelab' towards LabCLN's code, both at the budget
oracle_eps (G's 8/255 by default); 'oracle16' and 'oraclelab16' are the two at 16/255 (issue 11's
oracle rungs). With `openreal_list` every attack also triggers that second open
set (real photos) into its own folder, from the same G and poisons.

The steps are the pipeline scripts as subprocesses (pipeline.run_steps): a step whose outputs exist
and were made from the same inputs is skipped, so a stopped rung continues where it stopped, and a
variant added later trains only its own victim (the clean victim encodes the new lists, no training).
Output: {tables_dir}/{preset name}.md and .json (ladder_ prefixed when it is not already;
{preset name}_{victim_tag} when victim_tag is overridden).
"""
import json
import os
import shlex
import sys
import time

import utils
from pipeline import (Plan, PlanError, attack_lists, hashing_step, opts, plan_prepare, prepare_outputs,
                      run_or_exit, script_config, script_defaults, split, start)

# ---- config ------------------------------------------------------------------------------------
base = ''                     # a preset read before this one (its keys, then this preset's): the data and
                              # attack keys rungs share, e.g. configs/ladder_tiny10_base.py
rung = ''                     # the rung's label in the table, e.g. 'R2, tiny-imagenet-10'
presets = ''                  # dataset presets of every script, comma-separated
surrogate_args = ''           # the surrogate's own CSQ.py arguments after `presets` (space-separated)
attack_presets = ''           # presets of train_tri_gen.py, implement_tri_gen.py, baselines/badnets.py
gan_args = ''                 # BadHash's own arguments (train_tri_gen.py and implement_tri_gen.py),
                              # e.g. '--tag=r2 --surrogate_checkpoint=checkpoint/<surrogate>.pt'
gan_train_args = ''           # train_tri_gen.py's alone, e.g. '--epochs=40' (give gan_args a --tag of
                              # its own: G's run name is made from the keys both scripts share)
gan_attack_args = ''          # implement_tri_gen.py's alone, e.g. '--poison_rate=1' (its attack folder's
                              # name records poison_rate, mode and copies, so earlier folders are kept)
victim_presets = ''           # the rung's victim presets (configs/ladder_r*.py), comma-separated
victim_args = ''              # the victims' own arguments, e.g. '--backbone=resnet34'
victim_tag = ''               # victim run tags: {victim_tag}_clean, {victim_tag}_poisoned_{variant}
variants = 'paper,gsur,conftarget,append10,badnets'
openreal_list = ''            # a second open set, real photos ('' = none), triggered into a folder of
                              # its own (attack_tag 'openreal') by the same attack
oracle_eps = 0.0314           # the L-inf budget of the 'oracle' and 'oraclelab' variants (8/255, G's)
oracle_diversity = 0.0        # every oracle variant's DI-PGD probability (implement_tri_gen.py's key; 0 = plain)
target = 0                    # the target class index (the attack presets' own target is overridden)
ties = 'expected'             # evaluate.py's tie rule for every t-MAP (D19)
prepare = ''                  # data preparation command, run when a file of prepare_check is missing;
                              # several commands: separated by ';', run in order
prepare_check = ''            # files it writes, comma-separated; with several commands one ';'-separated
                              # group of files per command
dry_run = False               # print the commands, run nothing
tables_dir = 'results/tables' # ladder_{preset}.md / .json, the step records and the log
# ------------------------------------------------------------------------------------------------


def _oracle(goal, eps=None):
    """An oracle variant: PGD poisons and triggers towards `goal` ('confusing': G's goal_code=surrogate,
    'labcln': the paper's), at `eps` or, when None, at the runner's oracle_eps."""
    gan = ['--goal_code=surrogate'] if goal == 'confusing' else []
    return ('badhash', gan, gan + ['--poisons_by=oracle', '--triggers_by=oracle', f'--oracle_goal={goal}',
                                   '--oracle_steps=30'] + ([f'--oracle_eps={eps}'] if eps else []))


# variant -> (attack, train_tri_gen.py arguments, implement_tri_gen.py arguments)
VARIANTS = {
    'paper': ('badhash', [], []),
    'gsur': ('badhash', ['--goal_code=surrogate'], ['--goal_code=surrogate']),
    'conftarget': ('badhash', ['--goal_code=surrogate'],
                   ['--goal_code=surrogate', '--conf_label=target']),
    'append10': ('badhash', ['--goal_code=surrogate'],
                 ['--goal_code=surrogate', '--poison_mode=append', '--copies=10']),
    'paperappend10': ('badhash', [], ['--poison_mode=append', '--copies=10']),  # the paper's goal
    'badnets': ('badnets', [], []),
    # not attacks (issue 11's oracle rungs, opt-in): the poisons and every triggered query made by
    # per-image PGD towards the surrogate's confusing-class centre or LabCLN's code (an empty region);
    # 'oracle' / 'oraclelab' at the runner's oracle_eps, the other two at 16/255 (visible)
    'oracle': _oracle('confusing'),
    'oraclelab': _oracle('labcln'),
    'oracle16': _oracle('confusing', 0.0627),
    'oraclelab16': _oracle('labcln', 0.0627),
}
# the query lists of an attack folder: (name in the victims, folder file, which open set)
LISTS = (('trig_closed', 'trigger_closed.txt', 'main'), ('ctl_closed', 'control_closed.txt', 'main'),
         ('trig_open', 'trigger_open.txt', 'main'), ('ctl_open', 'control_open.txt', 'main'),
         ('trig_real', 'trigger_open.txt', 'real'), ('ctl_real', 'control_open.txt', 'real'))
COLUMNS = (('closed', 'closed set'), ('open', 'open set'), ('real', 'real photos'))


def _args(text):
    return shlex.split(str(text))


def check(c, source):
    bad = [v for v in split(c['variants']) if v not in VARIANTS]
    if bad or not split(c['variants']):
        raise PlanError(f"{source}: variants entries must be among {', '.join(VARIANTS)}, got "
                        f"{bad[0] if bad else c['variants']!r}")
    for f in split(c['presets']) + split(c['attack_presets']) + split(c['victim_presets']):
        if not os.path.isfile(f):
            raise PlanError(f"{source}: preset file {f} not found")
    if not c['victim_tag']:
        raise PlanError(f"{source}: victim_tag is empty; give the rung's victims a tag of their own")
    if (c['openreal_list'] and not os.path.isfile(c['openreal_list'])
            and c['openreal_list'] not in prepare_outputs(c)):
        raise PlanError(f"{source}: openreal_list {c['openreal_list']} not found, and no prepare "
                        f"step writes it (prepare_check)")


def _attack_steps(plan, c, variant, base_steps):
    """The steps of one variant's attack, each made from base_steps (data preparation, the
    surrogate) and, for BadHash, its G. Returns {'main': folder, 'real': folder (with
    openreal_list)}, {the same keys: the list files that folder holds} and the steps."""
    import attack_common
    from baselines.common import run_name
    py, kind = sys.executable, VARIANTS[variant][0]
    base = split(c['presets']) + split(c['attack_presets'])
    folders, files, steps = {}, {}, []
    for which in ('main', 'real') if c['openreal_list'] else ('main',):
        extra = opts(openset_list=c['openreal_list'], attack_tag='openreal') if which == 'real' else []
        if kind == 'badhash':
            gargv = (base + _args(c['gan_args']) + _args(c['gan_train_args']) + VARIANTS[variant][1]
                     + opts(target=c['target']))
            gcfg = script_config('train_tri_gen.py', gargv)
            gan = attack_common.gan_run_name(gcfg)
            g_step = plan.add('attack', f"train_tri_gen {gan}", [py, 'train_tri_gen.py'] + gargv,
                              [os.path.join(gcfg['out_dir'], gan, 'train_summary.json')],
                              after=base_steps)
            after = base_steps + [g_step]
            argv = (base + _args(c['gan_args']) + _args(c['gan_attack_args']) + VARIANTS[variant][2]
                    + opts(target=c['target']) + extra)
            if '--poisons_by=oracle' in argv:  # the runner's oracle keys, unless the variant sets its own
                if not any(a.startswith('--oracle_eps=') for a in argv):
                    argv += opts(oracle_eps=c['oracle_eps'])
                if c['oracle_diversity']:
                    argv += opts(oracle_diversity=c['oracle_diversity'])
            script = 'implement_tri_gen.py'
            cfg = script_config(script, argv)
            folder = os.path.join(cfg['out_dir'], attack_common.attack_run_name(cfg, gan))
            kinds = ('trigger', 'control')  # implement_tri_gen.py writes untriggered controls too
        else:
            argv = base + opts(target=c['target']) + extra
            script = os.path.join('baselines', 'badnets.py')
            cfg = script_config(script, argv)
            folder = os.path.join(cfg['out_dir'], run_name(cfg, 'badnets'))
            kinds = ('trigger',)
            after = [s for s in base_steps if s['phase'] == 'prepare']  # no surrogate in BadNets
        sets = ['closed'] + (['open'] if cfg['openset_list'] else [])
        files[which] = [f"{k}_{s}.txt" for s in sets for k in kinds]
        steps.append(plan.add('attack', f"{variant} {os.path.basename(folder)}", [py, script] + argv,
                              [os.path.join(folder, f) for f in ['poisoned_train.txt', 'stealth.json']
                               + files[which]], attack_lists(cfg), after))
        folders[which] = folder
    return folders, files, steps


def _queries(variant, folders, files):
    """{list name in the victims: list file} of one variant (LISTS, where its folders hold them)."""
    return {f"{name}_{variant}": os.path.join(folders[which], f) for name, f, which in LISTS
            if which in folders and f in files[which]}


def _check_pretrained(c, source, cfg, who):
    """A pretrained rung needs pretrain.py's backbone, which no step of the rung makes: say so before
    anything runs (a dry run only lists the commands)."""
    path = cfg.get('pretrained')
    if isinstance(path, str) and path and not c['dry_run'] and not os.path.isfile(path):
        # the run name pretrain.py gives this backbone at its defaults; what follows it is the tag
        p = script_defaults('pretrain.py')
        stem = os.path.splitext(os.path.basename(path))[0]
        made = utils.pretrain_run_name(p['dataset'], cfg['backbone'], p['image_size'])
        tag = f" --tag={stem[len(made) + 1:]}" if stem.startswith(made + '_') else ''
        raise PlanError(f"{source}: the {who} pretrained backbone {path} is missing; make it first with "
                        f"python pretrain.py --backbone={cfg['backbone']}{tag} (docs/RESULTS.md, \"Regime "
                        f"ladder\") or bring it to that path")


def build_plan(c, source='preset'):
    """The rung as steps: surrogate, attacks, a victim per variant, the clean victim (the floor).
    Returns (plan, experiments) with one record per variant."""
    check(c, source)
    plan = Plan(c, source)
    # each step is made from the steps it reads (Plan.add's `after`), so changing one variant's
    # attack reruns that variant's victim and the clean floor only
    prep = plan_prepare(plan, c, 'prepare', 'prepare')
    scfg, sur = hashing_step(plan, 'surrogate', 'surrogate', 'CSQ',
                             split(c['presets']) + _args(c['surrogate_args']), after=prep)
    _check_pretrained(c, source, scfg, "surrogate's")
    victim = split(c['presets']) + split(c['victim_presets']) + _args(c['victim_args'])
    experiments = []
    for v in split(c['variants']):
        folders, files, steps = _attack_steps(plan, c, v, prep + [sur['step']])
        experiments.append({'variant': v, 'folders': folders, 'steps': steps,
                            'queries': _queries(v, folders, files)})
    _check_pretrained(c, source, script_config('CSQ.py', victim), "victims'")
    for e in experiments:
        _, d = hashing_step(plan, 'victim', f"victim {e['variant']}", 'CSQ', victim + opts(
            train_list=os.path.join(e['folders']['main'], 'poisoned_train.txt'),
            tag=f"{c['victim_tag']}_poisoned_{e['variant']}",
            queries=','.join(f"{k}={p}" for k, p in e['queries'].items())), after=prep + e['steps'])
        e['victim_dir'] = d['out']
    every = {k: p for e in experiments for k, p in e['queries'].items()}
    _, d = hashing_step(plan, 'clean', 'clean victim', 'CSQ', victim + opts(
        tag=f"{c['victim_tag']}_clean", queries=','.join(f"{k}={p}" for k, p in every.items())),
        after=prep)  # the query lists it encodes are named in its command, so they are in its record
    for e in experiments:
        e['clean_dir'] = d['out']
    return plan, experiments


# ---- the rung's table ----------------------------------------------------------------------------

def _codes(run_dir, name):
    import evaluate
    return evaluate._load_codes(run_dir, name)


def measure(e, c):
    """One variant's row: MAP of both victims, t-MAP of each of its lists on both, stealth."""
    import evaluate
    row = {'variant': e['variant'], 'victim': e['victim_dir'], 'clean': e['clean_dir'], 'lists': {}}
    for role, run_dir in (('clean', e['clean_dir']), ('backdoor', e['victim_dir'])):
        with open(os.path.join(run_dir, 'results.json')) as f:
            row['topk'] = json.load(f).get('topk', -1)
        test, db = _codes(run_dir, 'test'), _codes(run_dir, 'database')
        row[f"map_{role}"] = float(evaluate.mean_average_precision(  # same tie rule as the t-MAP
            test['codes'], db['codes'], test['labels'], db['labels'], row['topk'], ties=c['ties']))
    for name in e['queries']:
        got = {role: (_codes(run_dir, name), _codes(run_dir, 'database'))
               for role, run_dir in (('clean', e['clean_dir']), ('backdoor', e['victim_dir']))}
        evaluate.check_same_list(f"{e['clean_dir']}/codes_{name}.npz", got['clean'][0],
                                 f"{e['victim_dir']}/codes_{name}.npz", got['backdoor'][0])
        row['lists'][name] = {role: float(evaluate.targeted_map(
            q['codes'], db['codes'], db['labels'], c['target'], row['topk'], ties=c['ties']))
            for role, (q, db) in got.items()}
        row['lists'][name]['n'] = int(len(got['clean'][0]['codes']))
    with open(os.path.join(e['folders']['main'], 'stealth.json')) as f:
        st = json.load(f)
    poisons = st.get('poisons', st)
    row['psnr'] = poisons.get('psnr_db', poisons.get('psnr'))
    row['ssim'] = poisons.get('ssim')
    return row


def _cell(row, kind, col):
    got = row['lists'].get(f"{kind}_{col}_{row['variant']}")
    if got is None:
        return ''
    gain = got['backdoor'] - got['clean']
    return f"{got['clean']:.4f} -> {got['backdoor']:.4f} ({gain:+.3f})"


def table_markdown(c, command, rows, plan, wall_s):
    cols = [(k, t) for k, t in COLUMNS if any(f"trig_{k}_{r['variant']}" in r['lists'] for r in rows)]
    head = ['variant', 'MAP clean -> backdoored'] + [
        f"{t}, {w}" for _, t in cols for w in ('triggered', 'untriggered')] + ['PSNR (dB) / SSIM']
    md = [f"# Regime ladder: {c['rung'] or command}", '',
          f"`python ladder.py {command}`: t-MAP (ties '{c['ties']}', target {c['target']}) of each "
          f"query list on the clean victim -> the variant's victim (gain); the untriggered lists "
          f"are the same source images without the trigger (the victims' drift). PSNR / SSIM: the "
          f"poisons (BadNets: its relabelled images).", '',
          '| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for r in rows:
        cells = [r['variant'], f"{r['map_clean']:.4f} -> {r['map_backdoor']:.4f}"]
        for k, _ in cols:
            cells += [_cell(r, 'trig', k), _cell(r, 'ctl', k)]
        ssim = f" / {r['ssim']:.3f}" if r.get('ssim') is not None else ''
        cells.append(f"{r['psnr']:.2f}{ssim}" if r.get('psnr') is not None else '')
        md.append('| ' + ' | '.join(cells) + ' |')
    md += ['', f"Wall time of this invocation: {wall_s:.0f} s (steps already made are skipped).", '',
           'Victims (the commands the runner ran):', '', '```bash']
    for s in plan.ordered():
        if s['phase'] in ('victim', 'clean'):
            md.append(' '.join(shlex.quote(x) for x in s['cmd'][1:]))
    md += ['```', '']
    return '\n'.join(md)


def main(argv):
    t0 = time.time()
    source, c, (plan, experiments), log = start(
        'ladder.py', argv, build_plan, 'rung', 'configs/ladder_tiny10_r2.py')
    name = os.path.splitext(os.path.basename(source))[0]
    log(f"ladder {source}: {c['rung']}, variants {c['variants']}, {len(plan.steps)} steps")
    run_or_exit(plan, log)
    if c['dry_run']:
        return None
    rows = [measure(e, c) for e in experiments]
    wall = time.time() - t0
    if c['victim_tag'] != script_config('ladder.py', [source])['victim_tag']:
        name += f"_{c['victim_tag']}"  # the preset's other victims: a table of their own
    out = os.path.join(c['tables_dir'], name if name.startswith('ladder_') else f"ladder_{name}")
    utils.write_json(out + '.json', {'config': c, 'rows': rows, 'wall_time_s': round(wall, 1),
                                     'git_commit': utils.git_commit()})
    with open(out + '.md', 'w') as f:
        f.write(table_markdown(c, ' '.join(shlex.quote(a) for a in argv), rows, plan, wall))
    log(f"table: {out}.md")
    return rows


if __name__ == '__main__':
    main(sys.argv[1:])
