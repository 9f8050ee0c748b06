"""Steps of a pipeline run as subprocesses, with the reuse rule for whole steps: what reproduce.py
(the paper's tables) and ladder.py (issue 11's regime ladder) share.

A runner builds a Plan of steps (a command line, the files it writes, the lists it reads through its
presets), in phases; run_steps runs them in order, skipping a step whose outputs exist and were made
from the same inputs (below, "The reuse rule"). script_config resolves the configuration a script
will see from its own config block (parsed, not imported), preset files and --key=value items, so a
runner names the same output paths as the script it runs.
"""
import ast
import json
import os
import shlex
import subprocess
import sys
import time

import utils

ROOT = os.path.dirname(os.path.abspath(__file__))
PHASES = ('prepare', 'surrogate', 'attack', 'victim', 'clean', 'model_attack', 'report', 'defense')


class PlanError(ValueError):
    """A preset that cannot be turned into commands (the message names the file and the key)."""


# ---- the configuration each script will see (its config block + presets + overrides) --------

_DEFAULTS = {}


def script_defaults(script):
    """The plain constants at the top level of a script (its config block), parsed, not imported."""
    path = os.path.join(ROOT, script)
    if path not in _DEFAULTS:
        if not os.path.isfile(path):
            raise PlanError(f"{script}: script not found")
        with open(path) as f:
            tree = ast.parse(f.read(), filename=path)
        g = {}
        for node in tree.body:
            if (isinstance(node, ast.Assign) and len(node.targets) == 1
                    and isinstance(node.targets[0], ast.Name)):
                try:
                    g[node.targets[0].id] = ast.literal_eval(node.value)
                except ValueError:
                    continue
        _DEFAULTS[path] = {k: g[k] for k in utils.config_keys(g)}
    return dict(_DEFAULTS[path])


def script_config(script, argv):
    """The resolved config of `script` run with `argv` (preset files and --key=value items)."""
    g = script_defaults(script)
    try:
        utils.apply_overrides(g, argv)
    except utils.ConfigError as e:
        raise PlanError(f"{script}: {e}") from None
    return g


def split(text):
    """'a, b,,c' -> ['a', 'b', 'c']."""
    return [s.strip() for s in str(text).split(',') if s.strip()]


def opts(**kw):
    """opts(a=1, b='x') -> ['--a=1', '--b=x']."""
    return [f"--{k}={v}" for k, v in kw.items()]


# ---- the plan -------------------------------------------------------------------------------

class Plan:
    """Ordered, de-duplicated steps plus the cells of the table this preset fills."""

    def __init__(self, config, source):
        self.c, self.source = config, source
        self.steps = {}       # command line -> step {name, cmd, outputs}; a repeated step is kept once
        self.phases = {p: [] for p in PHASES}
        self.cells = []       # {row, col, paper_key, kind, file, ...}: where read_ours finds our figure
        self.attacks = []     # every (attack, victim) experiment: folders, run dirs, report, for figures
        self.model_attacks = []  # MODEL_ATTACKS experiments: victim, run dir, results.json

    def add(self, phase, name, cmd, outputs, lists=(), after=None):
        """lists: list files the step reads that its command does not name (from presets).
        after: the earlier steps whose outputs it is made from (None = every step of an earlier
        phase, and every earlier attack step for an attack step: see step_inputs)."""
        key = ' '.join(cmd)
        if key not in self.steps:
            step = {'name': name, 'cmd': cmd, 'outputs': outputs, 'phase': phase,
                    'lists': list(lists), 'after': None if after is None else list(after)}
            self.steps[key] = step
            self.phases[phase].append(step)
        return self.steps[key]

    def ordered(self):
        return [s for p in self.phases.values() for s in p]


def plan_prepare(plan, c, key, name):
    """Data preparation steps: each command of c[key] runs when a file of its group in
    c[key + '_check'] is missing (nothing to run, only files that must exist, when c[key] is
    empty). Several commands are separated by ';', run in that order, and c[key + '_check'] then
    holds as many ';'-separated groups of files, one per command (a fresh machine needs, say, the
    Tiny ImageNet lists before the open-set photos drawn from them). Returns the steps added."""
    cmds = [s.strip() for s in (c.get(key) or '').split(';')]
    groups = _check_groups(c, key)
    if len(cmds) > 1 and len(cmds) != len(groups):
        raise PlanError(f"{plan.source}: {key} has {len(cmds)} commands separated by ';' but "
                        f"{key}_check has {len(groups)} groups of files; give one group per command")
    if len(cmds) == 1:  # one command (or none) checks every file
        groups = [[f for g in groups for f in g]]
    steps = []
    for i, (text, checks) in enumerate(zip(cmds, groups)):
        if not (text or checks):
            continue
        cmd = shlex.split(text)
        if cmd and cmd[0].endswith('.py'):
            cmd = [sys.executable] + cmd
        steps.append(plan.add('prepare', name if len(cmds) == 1 else f"{name} {i + 1}/{len(cmds)}",
                              cmd, checks))
    return steps


def _check_groups(c, key):
    """The ';'-separated groups of c[key + '_check'], each a list of files."""
    return [split(g) for g in str(c.get(key + '_check', '')).split(';')]


def prepare_outputs(c, key='prepare'):
    """Every file the preset's preparation steps promise (all groups of c[key + '_check'])."""
    return [f for g in _check_groups(c, key) for f in g]


def attack_lists(cfg):
    """The lists an attack step reads: training, test and open-set lists."""
    return [cfg.get('train_list') or os.path.join(cfg['data_dir'], 'train.txt'),
            cfg.get('test_list') or os.path.join(cfg['data_dir'], 'test.txt')] + (
        [cfg['openset_list']] if cfg.get('openset_list') else [])


def hashing_step(plan, phase, name, method, argv, after=None):
    """A CSQ.py / HashNet.py step run with argv; its outputs (results.json, the codes of every list)
    and the lists it reads come from the script's own derive(); after: as Plan.add. Returns (the
    script's config, derive()'s dict); derive()'s dict holds the step as 'step'."""
    from hash_models import engine  # noqa: E402  (torch import, only when planning)
    cfg = script_config(f"{method}.py", argv)
    d = engine.derive(cfg, method)
    outs = [os.path.join(d['out'], 'results.json')] + [
        os.path.join(d['out'], f"codes_{s}.npz") for s in d['lists']]
    d['step'] = plan.add(phase, f"{name} {d['run']}", [sys.executable, f"{method}.py"] + argv, outs,
                         [d['train_list']] + list(d['lists'].values()), after)
    return cfg, d


def run_logger(c, source):
    """log(msg): print it and, unless c['dry_run'], append it with the time to
    {c['tables_dir']}/{preset name}.log."""
    os.makedirs(c['tables_dir'], exist_ok=True)
    path = os.path.join(c['tables_dir'], os.path.splitext(os.path.basename(source))[0] + '.log')

    def log(msg):
        print(msg, flush=True)
        if not c['dry_run']:
            with open(path, 'a') as f:
                f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}\n")
    return log


def start(script, argv, build, kind, example):
    """The start both runners share: the one preset named in argv, its configuration (script's
    config block, the preset, the --key=value overrides), what build(c, source) makes of it, and
    the run's logger. A missing preset or a PlanError -> a one-line exit."""
    files = [a for a in argv if not a.startswith('--')]
    if len(files) != 1:
        sys.exit(f"error: give exactly one {kind} preset, e.g. python {script} {example}")
    source = files[0]
    try:
        c = script_config(script, argv)
        built = build(c, source)
    except PlanError as e:
        sys.exit(f"error: {e}")
    print('config: ' + json.dumps(c, sort_keys=True))
    return source, c, built, run_logger(c, source)


# ---- running the steps ------------------------------------------------------------------------

# The reuse rule (README "Reuse rule") for whole steps: after a step has run, the runner writes a
# record of what it was made from -- the content (SHA-1) of every file its command names (presets,
# lists) and of the lists it reads through its presets, with their images (utils.list_record), and
# the outputs of the earlier steps it depends on (the steps named by its `after` where the runner
# knows them, as ladder.py does; otherwise by phase: a victim depends on the attacks, a report on
# the victims) -- and of its own outputs. A step is skipped only when its outputs exist and both
# still match that record; otherwise it runs again (its script then reuses what is unchanged, by its
# own records) and the log says why.

LEVELS = {'prepare': 0, 'surrogate': 1, 'attack': 2, 'victim': 3, 'clean': 3, 'report': 4}


def file_stamp(path):
    """'sha1:...' of a file (small ones), 'stat:size:mtime_ns' of a large one, None if absent."""
    try:
        if os.path.getsize(path) <= utils.CONTENT_HASH_MAX_BYTES:
            return 'sha1:' + utils.file_sha1(path)
        return 'stat:' + utils.file_stamp(path)
    except OSError:
        return None


def _named_files(cmd):
    """Files a command names: preset arguments and --key=value values (also a=path,b=path)."""
    names = []
    for arg in cmd[2:]:
        values = [arg]
        if arg.startswith('--'):
            values = [v.split('=')[-1] for v in arg.split('=', 1)[-1].split(',')]
        names += [v for v in values if v and os.path.isfile(os.path.join(ROOT, v))]
    return names


def _list_stamp(path):
    """A list's provenance (utils.list_record) as one string; None when it or an image is missing."""
    try:
        full = os.path.join(ROOT, path)
        paths, _ = utils.read_list(full, check_files=False)
        return json.dumps(utils.list_record(full, paths), sort_keys=True)
    except (utils.ListError, OSError):
        return None


def step_inputs(plan, step, memo):
    """The record of what a step is made from (see above); memo: stamps computed since the last
    step ran (reset whenever one runs)."""
    def get(kind, path, fn):
        if (kind, path) not in memo:
            memo[(kind, path)] = fn(path)
        return memo[(kind, path)]
    inputs = {}
    for f in _named_files(step['cmd']) + step.get('lists', []):
        inputs[f] = get('file', f, lambda p: file_stamp(os.path.join(ROOT, p)))
        if f.endswith('.txt'):
            inputs[f + ' (list)'] = get('list', f, _list_stamp)
    level = LEVELS.get(step.get('phase'), 0)
    for other in plan.ordered():
        if other is step:
            break
        if step.get('after') is not None:
            made_from = any(other is a for a in step['after'])
        else:
            made_from = LEVELS.get(other.get('phase'), 0) < level or (
                other.get('phase') == step.get('phase') == 'attack')
        if made_from:
            for f in other['outputs'] or []:
                inputs[f] = get('file', f, lambda p: file_stamp(os.path.join(ROOT, p)))
    return inputs


def _record_path(plan, step):
    import hashlib
    key = hashlib.sha1(' '.join(step['cmd'][1:]).encode()).hexdigest()[:16]
    return os.path.join(plan.c['tables_dir'], 'steps', key + '.json')


def stale_reason(plan, step, inputs):
    """None when the step's record matches its inputs and outputs now, else why not."""
    path = _record_path(plan, step)
    try:
        with open(path) as f:
            rec = json.load(f)
    except (OSError, ValueError):
        return 'no record of what its outputs were made from'
    old = rec.get('inputs', {})
    for k in sorted(set(old) | set(inputs)):
        if old.get(k) != inputs.get(k):
            if k not in old:  # another plan ran this command with other earlier steps
                return f"{k} was not among its inputs when it ran"
            if k not in inputs:
                return f"{k} is no longer among its inputs"
            return f"{k} changed since it ran"
    for f in step['outputs']:
        if rec.get('outputs', {}).get(f) != file_stamp(os.path.join(ROOT, f)):
            return f"{f} changed since it ran"
    return None


def write_record(plan, step, inputs):
    utils.write_json(_record_path(plan, step), {
        'step': step['name'], 'cmd': step['cmd'][1:], 'inputs': inputs,
        'outputs': {f: file_stamp(os.path.join(ROOT, f)) for f in step['outputs']},
        'time': time.strftime('%Y-%m-%d %H:%M:%S')})


def run_steps(plan, log=print):
    memo = {}
    for step in plan.ordered():
        outs = step['outputs'] or []
        missing = [f for f in outs if not os.path.exists(f)]
        why = None
        if outs and not missing and step.get('phase', 'prepare') == 'prepare':
            # the data is the pipeline's source: later steps compare its lists' records
            log(f"skip {step['name']}: {outs[0]} exists")
            continue
        if outs and step['cmd']:
            inputs = step_inputs(plan, step, memo)
            why = f"{missing[0]} is missing" if missing else stale_reason(plan, step, inputs)
            if why is None:
                log(f"skip {step['name']}: {outs[0]} exists"
                    + (f" (and {len(outs) - 1} more outputs)" if len(outs) > 1 else '')
                    + ', made from the same inputs')
                continue
        if not step['cmd'] and plan.c['dry_run']:
            log(f"missing {step['name']}: {missing[0]} (prepare the data first, README: Data)")
            continue
        if not step['cmd']:
            raise PlanError(f"{plan.source}: {missing[0]} is missing and the preset has no prepare "
                            f"command; prepare the data first (README, Data)")
        line = ' '.join(shlex.quote(x) for x in step['cmd'])
        script = next((x for x in step['cmd'][1:2] if x.endswith('.py')), None)
        if script and not plan.c['dry_run'] and not os.path.isfile(os.path.join(ROOT, script)):
            raise PlanError(f"{script} is not in this checkout (step {step['name']}); leave its "
                            f"method out with --methods=... ({plan.source} lists "
                            f"{plan.c.get('methods', '')})")
        because = f" ({why})" if why else ''
        if plan.c['dry_run']:
            log(f"would run {step['name']}{because}: {line}")
            continue
        log(f"run {step['name']}{because}: {line}")
        t0 = time.time()
        rc = subprocess.call(step['cmd'], cwd=ROOT)
        memo.clear()  # the step may have rewritten files that later steps read
        if rc != 0:
            sys.exit(f"error: step {step['name']} failed with exit code {rc}: {line}")
        missing = [f for f in outs if not os.path.exists(f)]
        if missing:  # the step ran but did not write what the next steps read
            sys.exit(f"error: step {step['name']} finished but {missing[0]} is missing: {line}")
        if outs:
            write_record(plan, step, inputs)
        log(f"done {step['name']} in {time.time() - t0:.0f} s")


def run_or_exit(plan, log):
    """run_steps, with a PlanError as a one-line exit."""
    try:
        run_steps(plan, log)
    except PlanError as e:
        sys.exit(f"error: {e}")
