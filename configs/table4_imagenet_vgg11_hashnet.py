"""Table 4, row VGG11 HashNet, ImageNet columns: MAP of the clean model at 16/32/64 bits.

    python reproduce.py configs/table4_imagenet_vgg11_hashnet.py

The clean models are the B-networks of Tables 1-3 (the 64-bit run is the surrogate those
tables reuse). paper_* values: Table 4 of the paper.
"""
table = 4
block = 'ImageNet'
row = 'VGG11 HashNet'
presets = 'configs/imagenet100.py'
prepare_check = 'data/imagenet/train.txt'  # prepare it first (README, Data)
clean_only = True
pairs = 'HashNet'
surrogate_backbone = 'vgg11'
bits_list = '16,32,64'
# the paper's Table 4, VGG11 HashNet, ImageNet
paper_map_16 = 0.407
paper_map_32 = 0.696
paper_map_64 = 0.759
