"""Victim (T-network) of the toy demo: another backbone than the surrogate (paper Table 2 pairs a
B-ResNet50 with T-ResNet18/34/101), evaluated only at the end to save CPU time.

    python CSQ.py configs/demo.py configs/demo_victim.py --train_list=.../poisoned_train.txt --tag=poisoned
"""
backbone = 'resnet34'
eval_every = 0
