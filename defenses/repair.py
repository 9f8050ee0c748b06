"""Model repair on the defender's clean subset (DARKHASH.md §5): fine-tuning and fine-pruning.

Both report MAP (clean test queries) and t-MAP (triggered queries, target labels) against the
database before and after; the "before" figures come from the run's saved codes, the "after"
ones from the repaired model's new codes of the database, test and triggered lists.

Fine-tuning: every layer, the CSQ objective towards the model's prototypes (common.centre_loss)
on D_def, ft_epochs epochs of ft_optimizer at ft_lr (paper-scale default: RMSprop 1e-5, wd 1e-5,
10 epochs, the victims' own optimiser; BB defense/ft).
Fine-pruning (Liu et al. 2018; BB defense/fp.py): the last conv block's channels ranked by mean
activation on D_def, masked in ascending order in fp_step steps; MAP and t-MAP at each step
(the pruning curve); the largest fraction whose MAP is within fp_max_drop (relative) of the
unpruned MAP is kept, then fp_finetune_epochs of fine-tuning with the mask in place. As in BB,
the stopping rule reads the MAP of the test queries (a defender holding a labelled clean query
set); the triggered figures are only reported, never used to choose.
"""
import copy

import numpy as np
import torch

from . import common


def _after(s, model):
    codes = {k: s.over_list(k, lambda x: torch.sign(model(x))).numpy()
             for k in ('database', 'test', 'trigger')}
    return s.map_tmap(codes)


def finetune(s, c, say):
    before = s.map_tmap(s.codes)
    model = copy.deepcopy(s.model)
    losses = common.fine_tune(model, s.x_def, s.y_def, s.protos, c, c['ft_epochs'], s.device,
                              say=say)
    after = _after(s, model)
    return {'before': before, 'after': after, 'losses': losses, 'epochs': c['ft_epochs'],
            'n_defender': len(s.x_def)}


@torch.no_grad()
def _curve_codes(s, model, feats, mask):
    bs = s.c['batch_size']
    out = [torch.sign(common.head_output(model, feats[i:i + bs].to(s.device), mask)).cpu()
           for i in range(0, len(feats), bs)]
    return torch.cat(out).numpy()


def fineprune(s, c, say):
    model = copy.deepcopy(s.model).eval()
    before = s.map_tmap(s.codes)
    # mean activation of each channel of the last block on D_def
    acts = []
    hook = common.last_block(model).register_forward_hook(
        lambda mod, i, o: acts.append(o.detach().float().mean(dim=(2, 3)).cpu()))
    s.codes_of(s.x_def, model)
    hook.remove()
    act = torch.cat(acts).mean(0).numpy()
    say(f"  fine-pruning: {len(act)} channels in the last block; caching features")
    feats = {k: s.over_list(k, lambda x: common.head_features(model, x))
             for k in ('database', 'test', 'trigger')}
    curve, chosen = [], 0.0
    fractions = np.round(np.arange(0, c['fp_max_fraction'] + 1e-9, c['fp_step']), 6)
    for f in fractions:
        mask = torch.tensor(common.prune_mask(act, float(f)))
        codes = {k: _curve_codes(s, model, feats[k], mask) for k in feats}
        m = s.map_tmap(codes)
        curve.append(dict(fraction=float(f), **m))
        say(f"  pruned {f:.2f}: MAP {m['map']:.4f}  t-MAP {m['t_map']:.4f}")
        if m['map'] < (1 - c['fp_max_drop']) * curve[0]['map']:
            break
        chosen = float(f)
    mask = torch.tensor(common.prune_mask(act, chosen))
    pruned = next(p for p in curve if p['fraction'] == chosen)
    losses = common.fine_tune(model, s.x_def, s.y_def, s.protos, c, c['fp_finetune_epochs'],
                              s.device, mask=mask, say=say, what='fine-prune tune')
    mk = mask.to(s.device).view(1, -1, 1, 1)
    hook = common.last_block(model).register_forward_hook(lambda mod, i, o: o * mk)
    after = _after(s, model)
    hook.remove()
    return {'before': before, 'pruned_fraction': chosen, 'after_pruning': pruned,
            'after': after, 'curve': curve, 'losses': losses, 'n_channels': len(act),
            'n_defender': len(s.x_def)}
