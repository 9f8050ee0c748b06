"""Baseline attacks of Table 5 (BadNets, LCBA, ISSBA) as poisoned-list producers (SPEC D25).

Each script writes the same folder layout as implement_tri_gen.py, so CSQ.py / HashNet.py /
evaluate.py train and evaluate them exactly as they do BadHash. Shared code: baselines/common.py.
"""
