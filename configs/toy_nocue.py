"""The toy data without its colour cue (`make defend-toy-nocue`): stack after configs/demo.py.

    python data/prepare_toy.py --color_tie=0 --out_dir=data/toy_nocue
    python CSQ.py configs/demo.py configs/demo_victim.py configs/toy_nocue.py --epochs=12 ...

data/prepare_toy.py with color_tie=0 draws every shape in a random colour, so only the shape tells
the classes apart. The defenses' known-answer check is judged on it: with the default 0.9, a clean
class is faked by painting 33-169 px of its colour, and that spread hides the BadNets target's small
Neural Cleanse mask (docs/RESULTS.md, Defenses). Not a paper setting.
"""
dataset = 'toy_nocue'         # the run names (results/toy_nocue_*), kept apart from the toy's
data_dir = 'data/toy_nocue'
