"""DarkHash on tiny-imagenet-10 (demo scale, CPU): the clean CSQ ResNet18 of `make tiny`, 32 bits.

    python data/prepare_tiny200.py                 # surrogate: Tiny ImageNet-200, 190 other classes
    python CSQ.py configs/tiny_imagenet10.py       # the clean model
    python darkhash.py configs/darkhash_tiny.py    # or: make darkhash-tiny

Surrogate: 2,000 class-balanced images (of 2,090) of the 190 Tiny ImageNet-200 classes the victim
does not have: real photographs it never saw (DARKHASH.md §6.3 suggests CIFAR-10, which is not on
these machines; --surrogate=gauss1 is the noise alternative). Not a paper setting: optimiser and
epochs sized for a CPU (README "DarkHash").
"""
dataset = 'tiny-imagenet-10'
victim_method = 'CSQ'
backbone = 'resnet18'
bits = 32
surrogate = 'data/tiny200_surrogate/database.txt'
surrogate_name = 'tiny200'
n_surrogate = 2000
optimizer = 'rmsprop'
lr = 1e-4
epochs = 10
eval_every = 5
