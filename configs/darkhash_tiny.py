"""DarkHash on tiny-imagenet-10 (demo scale, CPU): the clean CSQ ResNet18 of `make tiny`, 32 bits.

    python data/prepare_tiny200.py                 # surrogate: Tiny ImageNet-200, 190 other classes
    python CSQ.py configs/tiny_imagenet10.py --epochs=8   # the clean model (see below)
    python darkhash.py configs/darkhash_tiny.py    # or: make darkhash-tiny

Surrogate: 2,000 class-balanced images (of 2,090) of the 190 Tiny ImageNet-200 classes the victim
does not have: real photographs it never saw (DARKHASH.md §6.3 suggests CIFAR-10, which is not on
these machines; --surrogate=gauss1 is the noise alternative). The clean model: the first 8 epochs
of `make tiny`'s run (constant lr, so the same weights as that run's epoch 8; its MAP peaks near
epoch 10, docs/RESULTS.md), for the CPU budget. Not a paper setting: Adam 1e-3, rho 0.5 and 8
epochs of 32 steps instead of the official RMSprop 5e-6, rho 0.1, 100 epochs (README "DarkHash").
"""
dataset = 'tiny-imagenet-10'
victim_method = 'CSQ'
backbone = 'resnet18'
bits = 32
surrogate = 'data/tiny200_surrogate/database.txt'
surrogate_name = 'tiny200'
n_surrogate = 2000
ties = 'expected'     # as the other tiny-imagenet-10 reports
optimizer = 'adam'
lr = 1e-3
rho = 0.5
epochs = 8
eval_every = 0
cache_frozen = True
neg_patch = 0.25      # our option (README "DarkHash"): clean draws with a random patch, so the backdoor keys on the trigger
