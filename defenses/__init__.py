"""Backdoor defenses adapted to deep hashing (issue 13; design: ../shared/DARKHASH.md §5).

Hashing models output codes, not class logits, so every defense reads a prediction off the codes:
the prototype code h_c of each class (the CSQ centre saved in the checkpoint, else the sign of the
sum of the class's database codes) and y(x) = argmin_c d_H(b(x), h_c) (`common.Setup`).

One module per family, each with the same entry point `run(s, c, say) -> dict` (s: a
`common.Setup` for one model, c: defend.py's config), so the runner is a loop over `REGISTRY`:
  repair.py    fine-tuning and fine-pruning (model repair: MAP / t-MAP before and after)
  nc.py        Neural Cleanse towards each class's prototype, TABOR (the same with TABOR's
               regularisers of the mask's size, scatter and placement), and a target-free variant
  strip.py     STRIP: entropy of the code bits and of the retrieved labels over blended copies
  sentinet.py  SentiNet: Grad-CAM region of the code's agreement pasted onto clean images
Nothing here loads data or builds a model at import time.
"""
from . import nc, repair, sentinet, strip

# defense name -> (function, what it reads besides the checkpoint and the defender subset)
REGISTRY = {
    'finetune': (repair.finetune, ('test', 'database', 'trigger')),
    'fineprune': (repair.fineprune, ('test', 'database', 'trigger')),
    'nc': (nc.neural_cleanse, ()),
    'tabor': (nc.tabor, ()),
    'nc_collapse': (nc.collapse, ()),
    'strip': (strip.run, ('test', 'database', 'trigger')),
    'sentinet': (sentinet.run, ('test', 'trigger')),
}
NAMES = tuple(REGISTRY)
# config keys read only when a result is scored, not when it is made (left out of every reuse
# stamp), and the functions that score a stored result anew with them
SCORE_KEYS = ('nc_statistic', 'tabor_statistic')
RESCORE = {'nc': lambda res, c, s: nc.rescore(res, c, s, 'nc_statistic'),
           'tabor': lambda res, c, s: nc.rescore(res, c, s, 'tabor_statistic')}
