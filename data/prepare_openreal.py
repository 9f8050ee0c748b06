"""A real-photo open set for an attack on a small dataset: seeded photos of classes it does not have.

The toy shapes that play the open set of the tiny-imagenet-10 attacks hash near the target even
untriggered, which overstates a t-MAP gain (docs/RESULTS.md, "Can G's goal be reached?"). This list
holds `n` Tiny ImageNet-200 validation photos drawn with `seed` from the open set of the Tiny
ImageNet-100 protocol (data/prepare_tinyimagenet.py), minus the classes of `exclude_classes`, each
labelled with the target's one-hot over `exclude_classes`' class count (so MAP on the list is t-MAP).

    python data/prepare_tinyimagenet.py --src=../shared/data/tiny-imagenet-200.zip   # first
    python data/prepare_openreal.py     # results/ladder_controls/openreal.txt (the ladder presets')

A rerun with the same inputs leaves the list as it is (prepare.json beside it records them).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import utils  # noqa: E402
from data import common  # noqa: E402

# ------------------------------------------------------------------------------------------------
# config (override with preset files or --key=value)
openset_list = 'data/tiny-imagenet/openset.txt'             # data/prepare_tinyimagenet.py's open set
openset_classes = 'data/tiny-imagenet/openset_classes.txt'  # its wnids, in label order
exclude_classes = '../shared/data/tiny-imagenet-10/classes.txt'  # the attacked dataset's wnids
n = 300                       # photos drawn
seed = 0
target = 0                    # the label every photo carries (one-hot over the excluded classes)
out = 'results/ladder_controls/openreal.txt'
force = False                 # rebuild even when prepare.json says it is up to date
# ------------------------------------------------------------------------------------------------

FORMAT_VERSION = 1


def _lines(path, what):
    if not os.path.isfile(path):
        sys.exit(f"error: {path}: {what} not found (run data/prepare_tinyimagenet.py first)")
    with open(path) as f:
        return [x.strip() for x in f if x.strip()]


def main(c):
    excluded = _lines(c['exclude_classes'], 'class list')
    wnids = _lines(c['openset_classes'], 'open-set class list')
    if not 0 <= c['target'] < len(excluded):
        sys.exit(f"error: target must be in 0..{len(excluded) - 1} ({c['exclude_classes']} has "
                 f"{len(excluded)} classes), got {c['target']}")
    _lines(c['openset_list'], 'open-set list')
    try:
        paths, labels = utils.read_list(c['openset_list'])
    except utils.ListError as e:
        sys.exit(f"error: {e}")
    if labels.shape[1] != len(wnids):
        sys.exit(f"error: {c['openset_list']}: {labels.shape[1]} label columns, expected "
                 f"{len(wnids)} (one per line of {c['openset_classes']})")
    folder = os.path.dirname(c['out']) or '.'
    recipe = {'format': FORMAT_VERSION, 'openset_sha1': utils.file_sha1(c['openset_list']),
              'excluded': sorted(excluded), 'n': c['n'], 'seed': c['seed'], 'target': c['target'],
              'out': os.path.basename(c['out'])}
    if not c['force'] and common.manifest_up_to_date(folder, recipe, [os.path.basename(c['out'])]):
        return
    drop = set(excluded)
    pool = [i for i in range(len(paths)) if wnids[labels[i].argmax()] not in drop]
    if len(pool) < c['n']:
        sys.exit(f"error: {c['openset_list']}: {len(pool)} photos outside {c['exclude_classes']}'s "
                 f"classes, fewer than n={c['n']}")
    keep = sorted(np.random.default_rng(c['seed']).choice(pool, c['n'], replace=False).tolist())
    onehot = np.eye(len(excluded), dtype=np.uint8)[c['target']]
    os.makedirs(folder, exist_ok=True)
    utils.write_list(c['out'], [os.path.relpath(paths[i], folder) for i in keep],
                     np.tile(onehot, (len(keep), 1)))
    common.write_manifest(folder, 'data/prepare_openreal.py', recipe, {'images': len(keep)})
    print(f"{c['out']}: {len(keep)} photos of {len({int(labels[i].argmax()) for i in keep})} "
          f"classes outside {c['exclude_classes']}, labelled {c['target']}")


if __name__ == '__main__':
    main(utils.configure(globals()))
