"""Figures 4-6 of the paper from saved outputs (codes, poisons), without any training code.

    python figures.py configs/table5_toy.py              # after `python reproduce.py configs/table5_toy.py`
    python figures.py configs/table5_toy.py --residual_amp=20

reproduce.py calls this at the end of a Table 5 preset. PNGs go next to the tables
(results/tables/{preset}_figure{4,5,6}.png):

  Figure 6  PR curve and precision@topN of targeted retrieval: triggered queries (open set where the
            preset has one, else closed set) with relevance = the target class, on every method's
            backdoored victim (evaluate.pr_curve: DeepHash's rank-based curves, SPEC D22).
  Figure 5  per method, a few poisons: clean | poisoned | amplified residual, the clean image taken
            through the model's transform (the crop the attack saw), the poison as saved (PNG).
  Figure 4  t-SNE (scikit-learn) of hash codes: the target class's database items, the clean queries
            of one other class, and triggered queries, on the clean victim and on each backdoored one.

matplotlib and scikit-learn are imported inside the functions that need them.
"""
import json
import os
import sys

import numpy as np

import utils

# ---- config ------------------------------------------------------------------------------------
tables_dir = 'results/tables'  # where the PNGs go (next to the tables, as reproduce.py writes them)
n_images = 4                   # Figure 5: poisons shown per method (paper: 10)
residual_amp = 10.0            # Figure 5: |poison - clean| x this (paper: x3 baselines, x50 BadHash)
pn_max = 1000                  # Figure 6: precision@topN up to this N (the paper's top 1,000)
tsne_points = 200              # Figure 4: at most this many points per group (seeded subset)
tsne_perplexity = 30.0         # Figure 4: scikit-learn's default
tsne_jitter = 0.1              # Figure 4: seeded N(0, this) added to each +-1 bit before t-SNE, so that
                               # identical codes (CSQ codes sit on their centres) show as a cloud
source_class = -1              # Figure 4: class of the clean queries; -1 = the first non-target class
seed = 0                       # subsets and t-SNE
dpi = 120
# ------------------------------------------------------------------------------------------------

COLOURS = {'BadHash': 'tab:red', 'BadNets': 'tab:blue', 'LCBA': 'tab:green', 'ISSBA': 'tab:purple'}


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _load(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: codes not found (run the victim with these queries first)")
    d = np.load(path)
    return d['codes'], d['labels']


def _same_model(*paths):
    """Codes drawn together must come from one checkpoint (README "Reuse rule"): evaluate.py's
    check on the records in the .npz files; MismatchError names both files."""
    from evaluate import check_same_model
    first = np.load(paths[0])
    for p in paths[1:]:
        check_same_model(p, np.load(p), paths[0], first)


def _same_list(path_a, path_b):
    """Two runs' codes of one split shown side by side must come from the same list."""
    from evaluate import check_same_list
    check_same_list(path_a, np.load(path_a), path_b, np.load(path_b))


# =============================================================================================
# Figure 6: PR and precision@topN of targeted retrieval
# =============================================================================================

def targeted_curves(query_npz, database_npz, target, topk=-1, pn_max_n=1000):
    """PR (all rank positions, or DeepHash's positions on a large database) and P@N for N <= pn_max_n
    of triggered queries whose relevance is the target class."""
    from evaluate import _target_labels, pr_curve
    q, _ = _load(query_npz)
    db, db_labels = _load(database_npz)
    _same_model(database_npz, query_npz)
    q_labels = _target_labels(target, len(q), db_labels.shape[1])
    positions = 'all' if len(db) <= 20000 else 'deephash'
    curve = pr_curve(q, db, q_labels, db_labels, topk, positions=positions)
    n_pn = np.unique(np.linspace(1, min(pn_max_n, len(db)), 100).astype(np.int64))
    pn = pr_curve(q, db, q_labels, db_labels, topk, positions=n_pn)
    return {'P': curve['P'], 'R': curve['R'], 'N': n_pn, 'PN': pn['P'], 'n_used': curve['n_used'],
            'map': curve['map']}


def figure6(curves, out_png, title=''):
    """curves: list of (label, targeted_curves dict). Two panels: PR and precision@topN."""
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for label, c in curves:
        colour = COLOURS.get(label.split(' ')[0])
        ax1.plot(c['R'], c['P'], label=f"{label} (t-MAP {c['map']:.3f})", color=colour)
        ax2.plot(c['N'], c['PN'], label=label, color=colour)
    ax1.set_xlabel('recall')
    ax1.set_ylabel('precision')
    ax1.set_title('PR curve (triggered queries, target relevant)')
    ax2.set_xlabel('N (top-N retrieved)')
    ax2.set_ylabel('precision@N')
    ax2.set_title('precision@topN')
    for ax in (ax1, ax2):
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _save(fig, out_png)
    return out_png


def _save(fig, out_png):
    plt = _pyplot()
    os.makedirs(os.path.dirname(os.path.abspath(out_png)), exist_ok=True)
    tmp = out_png + '.tmp.png'
    fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    os.replace(tmp, out_png)


# =============================================================================================
# Figure 5: clean | poisoned | amplified residual
# =============================================================================================

def poison_triplets(attack_dir, image_size, resize_size, n=4, amp=10.0):
    """The first n poisons of an attack folder (poisons.json) as uint8 (clean, poisoned, residual x amp)."""
    from PIL import Image
    meta_path = os.path.join(attack_dir, 'poisons.json')
    if not os.path.isfile(meta_path):
        raise FileNotFoundError(f"{meta_path}: not found (run the attack step first)")
    with open(meta_path) as f:
        items = json.load(f).get('poisons', [])
    transform = utils.build_transform(image_size, resize_size, 'none')
    out = []
    for item in items[:n]:
        with Image.open(item['source']) as im:
            clean = transform(im.convert('RGB'))
        clean = np.round(clean.numpy().transpose(1, 2, 0) * 255).clip(0, 255).astype(np.uint8)
        with Image.open(os.path.join(attack_dir, item['poison'])) as im:
            pois = np.asarray(im.convert('RGB'))
        if pois.shape != clean.shape:
            raise ValueError(f"{os.path.join(attack_dir, item['poison'])}: {pois.shape[1]}x{pois.shape[0]} "
                             f"px, expected the model geometry {clean.shape[1]}x{clean.shape[0]}")
        res = np.abs(pois.astype(np.float64) - clean.astype(np.float64)) * amp
        out.append((clean, pois, res.clip(0, 255).astype(np.uint8)))
    return out


def figure5(rows, out_png, amp=10.0):
    """rows: list of (method label, triplets). One row per method: clean | poisoned | residual x n."""
    plt = _pyplot()
    rows = [(label, t) for label, t in rows if t]
    if not rows:
        raise ValueError('figure 5: no poisons to show')
    n = max(len(t) for _, t in rows)
    fig, axes = plt.subplots(len(rows), 3 * n, figsize=(1.4 * 3 * n, 1.6 * len(rows)), squeeze=False)
    for r, (label, triplets) in enumerate(rows):
        for k in range(n):
            for j, name in enumerate(('clean', 'poisoned', f"residual x{amp:g}")):
                ax = axes[r][3 * k + j]
                ax.axis('off')
                if k < len(triplets):  # small images shown with square pixels (nearest neighbour)
                    img = triplets[k][j]
                    f = utils.nearest_factor(img.shape[0])
                    ax.imshow(img.repeat(f, 0).repeat(f, 1), interpolation='nearest')
                    if r == 0:
                        ax.set_title(name, fontsize=7)
        axes[r][0].text(-0.1, 0.5, label, transform=axes[r][0].transAxes, rotation=90,
                        ha='right', va='center', fontsize=9)
    fig.tight_layout()
    _save(fig, out_png)
    return out_png


# =============================================================================================
# Figure 4: t-SNE of hash codes
# =============================================================================================

def tsne_groups(database_npz, test_npz, trig_npz, target, source=-1, n_max=200, rng_seed=0):
    """Codes of three groups: target-class database items, clean queries of `source` (-1 = the first
    non-target class with queries), triggered queries. Returns (codes, group ids, names)."""
    rng = np.random.default_rng(rng_seed)
    db, db_l = _load(database_npz)
    te, te_l = _load(test_npz)
    tr, _ = _load(trig_npz)
    _same_model(database_npz, test_npz, trig_npz)
    if source < 0:
        present = [k for k in range(te_l.shape[1]) if k != target and te_l[:, k].any()]
        source = present[0] if present else target
    groups = [(f"database, target class {target}", db[db_l[:, target] == 1]),
              (f"clean queries, class {source}", te[(te_l[:, source] == 1) & (te_l[:, target] == 0)]),
              ('triggered queries', tr)]
    codes, ids, names = [], [], []
    for g, (name, c) in enumerate(groups):
        if len(c) > n_max:
            c = c[np.sort(rng.choice(len(c), n_max, replace=False))]
        codes.append(c.astype(np.float32))
        ids.append(np.full(len(c), g))
        names.append(f"{name} ({len(c)})")
    return np.concatenate(codes), np.concatenate(ids), names


def embed(codes, perplexity=30.0, rng_seed=0, jitter=0.1):
    from sklearn.manifold import TSNE
    p = max(2.0, min(perplexity, (len(codes) - 1) / 3.0))
    x = codes + np.random.default_rng(rng_seed).normal(0.0, jitter, codes.shape).astype(np.float32)
    return TSNE(n_components=2, perplexity=p, init='pca', random_state=rng_seed).fit_transform(x)


def figure4(panels, out_png, perplexity=30.0, rng_seed=0, jitter=0.1):
    """panels: list of (title, codes, group ids, names). One t-SNE scatter per panel."""
    plt = _pyplot()
    if not panels:
        raise ValueError('figure 4: no panels')
    cols = min(len(panels), 4)
    nrows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 3.8 * nrows), squeeze=False)
    colours = ('tab:red', 'tab:blue', 'tab:orange')
    for i, (title, codes, ids, names) in enumerate(panels):
        ax = axes[i // cols][i % cols]
        xy = embed(codes, perplexity, rng_seed, jitter)
        for g, name in enumerate(names):
            m = ids == g
            ax.scatter(xy[m, 0], xy[m, 1], s=6, alpha=0.7, color=colours[g % 3], label=name)
        ax.set_title(title + '\n' + ', '.join(n[n.index('('):] for n in names) + ' points', fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    for j in range(len(panels), nrows * cols):
        axes[j // cols][j % cols].axis('off')
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, [label.split(' (')[0] for label in labels], loc='lower center', ncol=3,
               fontsize=8, markerscale=2)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    _save(fig, out_png)
    return out_png


# =============================================================================================
# from a reproduce.py plan
# =============================================================================================

def _fig_config():
    return {k: globals()[k] for k in ('tables_dir', 'n_images', 'residual_amp', 'pn_max', 'tsne_points',
                                        'tsne_perplexity', 'tsne_jitter', 'source_class', 'seed')}


def plan_figures(plan, out_dir, stem, cfg=None):
    """Figures 4-6 for every victim configuration of a reproduce.py plan whose outputs exist.
    Returns the PNG paths written; a figure whose inputs are missing is left out with a note."""
    from evaluate import MismatchError
    cfg = dict(_fig_config(), **(cfg or {}))
    groups = {}
    for a in plan.attacks:
        groups.setdefault((a['tm'], a['vb'], a['bits']), []).append(a)
    written = []
    target = plan.c['target']
    for (tm, vb, bits), items in groups.items():
        suffix = '' if len(groups) == 1 else f"_{tm}_{vb}_{bits}"
        what = f"{tm} {vb} {bits} bits, target {target}"
        curves, rows, panels = [], [], []
        for a in items:
            label = {'badhash': 'BadHash', 'badnets': 'BadNets', 'lcba': 'LCBA',
                     'issba': 'ISSBA'}[a['method']]
            split = a['splits'].get('trigger_open') or a['splits']['trigger_closed']
            closed = a['splits']['trigger_closed']
            try:
                curves.append((label, targeted_curves(
                    os.path.join(a['victim_dir'], f"codes_{split}.npz"),
                    os.path.join(a['victim_dir'], 'codes_database.npz'), target, a['topk'],
                    cfg['pn_max'])))
            except (FileNotFoundError, MismatchError) as e:
                print(f"figure 6: {label} left out: {e}")
            try:
                rows.append((label, poison_triplets(a['folder'], *a['geometry'], n=cfg['n_images'],
                                                    amp=cfg['residual_amp'])))
            except (FileNotFoundError, OSError, ValueError) as e:
                print(f"figure 5: {label} left out: {e}")
            try:  # the clean and the backdoored panels show the same triggered queries
                _same_list(*(os.path.join(d, f"codes_{closed}.npz")
                             for d in (a.get('clean_dir'), a['victim_dir'])))
            except (FileNotFoundError, MismatchError) as e:
                print(f"figure 4: {label} left out: {e}")
                continue
            for model, run_dir in (('clean victim', a.get('clean_dir')),
                                   (f"{label} victim", a['victim_dir'])):
                try:
                    codes, ids, names = tsne_groups(
                        os.path.join(run_dir, 'codes_database.npz'),
                        os.path.join(run_dir, 'codes_test.npz'),
                        os.path.join(run_dir, f"codes_{closed}.npz"), target, cfg['source_class'],
                        cfg['tsne_points'], cfg['seed'])
                    panels.append((f"{model}, {label} triggers (closed set)", codes, ids, names))
                except (FileNotFoundError, MismatchError) as e:
                    print(f"figure 4: {model} / {label} left out: {e}")
        jobs = (('figure6', curves, lambda p: figure6(curves, p, f"targeted retrieval, {what}")),
                ('figure5', rows, lambda p: figure5(rows, p, cfg['residual_amp'])),
                ('figure4', panels, lambda p: figure4(panels, p, cfg['tsne_perplexity'], cfg['seed'],
                                                    cfg['tsne_jitter'])))
        for name, data, draw in jobs:
            if not data:
                continue
            try:
                written.append(draw(os.path.join(out_dir, f"{stem}_{name}{suffix}.png")))
            except ImportError as e:
                print(f"{name}: skipped, {e.name} is not installed (pip install matplotlib scikit-learn)")
                break
    return written


def main(argv):
    """python figures.py <table preset> [--figure keys] [--runner keys]: the figures of the plan
    reproduce.py makes for that preset (runner overrides such as --methods=... are passed on)."""
    import reproduce  # one direction only: reproduce.py runs this file as a subprocess
    own = set(_fig_config())
    mine = [a for a in argv if a.startswith('--') and a[2:].split('=', 1)[0] in own]
    runner = [a for a in argv if a.startswith('--') and a not in mine]
    files = [a for a in argv if not a.startswith('--')]
    if len(files) != 1:
        sys.exit("error: give exactly one table preset, e.g. python figures.py configs/table5_toy.py")
    config = utils.configure(globals(), mine)
    try:
        c = reproduce.load_preset(files[0], runner)
        plan = reproduce.build_plan(c, files[0])
    except reproduce.PlanError as e:
        sys.exit(f"error: {e}")
    stem = os.path.splitext(os.path.basename(files[0]))[0]
    for path in plan_figures(plan, config['tables_dir'], stem, config):
        print(f"figure: {path}")


if __name__ == '__main__':
    main(sys.argv[1:])
