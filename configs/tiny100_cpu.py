"""CPU budget of the hashing models for Table 5 on the Tiny ImageNet-100 protocol
(configs/table5_tiny100_cpu.py); stack after configs/tiny_imagenet100.py. Our choice, to fit a
2-core CPU: the paper's optimiser (RMSprop 1e-5, weight decay 1e-5) for 10 epochs of batch 32,
3,130 optimiser steps over the 10,000 training images (the paper's recipe takes about 10,000 at
batch 128; configs/tiny_imagenet100.py, 7,900). The attack keys that these values would override
are set again in configs/tiny100_attack.py / tiny100_attack_cpu.py, which come after.
"""
epochs = 10
batch_size = 32
num_workers = 0
