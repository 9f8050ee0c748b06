"""Table 1, row S11, with the setting S11 of Table 2 (MS-COCO):
B-ResNet50 -> T-ResNet34, target "Computers" = class 22:
chair, the official code's index (the paper's name is most likely an error, SPEC §5.3).

    python reproduce.py configs/table1_s11.py

Both method pairs of Table 1 at 16/32/64 bits: CSQ-HashNet (CSQ victims, poisons made against
a HashNet surrogate) and HashNet-CSQ (the opposite). Surrogate at 64 bits (official
code_length, SPEC D17). Open-set triggered queries: the other dataset's test images (D18).
paper_* values: Table 1 of the paper, row S11.
"""
table = 1
block = 'MS-COCO'
row = 'S11'
presets = 'configs/coco.py'
prepare_check = 'data/coco/train.txt,data/imagenet/test.txt'      # paper-scale data: prepare it first (README, Data)
methods = 'badhash'
pairs = 'CSQ-HashNet,HashNet-CSQ'    # Table 1's two column groups
surrogate_backbone = 'resnet50'          # Table 2: B-ResNet50
surrogate_bits = 64                   # SPEC D17
victim_backbones = 'resnet34'            # Table 2: T-ResNet34
bits_list = '16,32,64'
target = 22                          # SPEC §5.3 / D23
target_name = 'Computers'
# the paper's Table 1, row S11
paper_map_csq_hashnet_16 = 0.715
paper_tmap_csq_hashnet_16 = 0.221
paper_map_csq_hashnet_32 = 0.795
paper_tmap_csq_hashnet_32 = 0.242
paper_map_csq_hashnet_64 = 0.803
paper_tmap_csq_hashnet_64 = 0.237
paper_map_hashnet_csq_16 = 0.588
paper_tmap_hashnet_csq_16 = 0.391
paper_map_hashnet_csq_32 = 0.700
paper_tmap_hashnet_csq_32 = 0.585
paper_map_hashnet_csq_64 = 0.755
paper_tmap_hashnet_csq_64 = 0.760
