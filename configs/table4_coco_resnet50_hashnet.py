"""Table 4, row ResNet50 HashNet, MS-COCO columns: MAP of the clean model at 16/32/64 bits.

    python reproduce.py configs/table4_coco_resnet50_hashnet.py

The clean models are the B-networks of Tables 1-3 (the 64-bit run is the surrogate those
tables reuse). paper_* values: Table 4 of the paper.
"""
table = 4
block = 'MS-COCO'
row = 'ResNet50 HashNet'
presets = 'configs/coco.py'
prepare_check = 'data/coco/train.txt'  # prepare it first (README, Data)
clean_only = True
pairs = 'HashNet'
surrogate_backbone = 'resnet50'
bits_list = '16,32,64'
# the paper's Table 4, ResNet50 HashNet, MS-COCO
paper_map_16 = 0.560
paper_map_32 = 0.640
paper_map_64 = 0.706
