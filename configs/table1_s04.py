"""Table 1, row S4, with the setting S4 of Table 2 (ImageNet-100):
B-ResNet50 -> T-ResNet101, target "Dogs" = class 22, n02096177 (cairn).

    python reproduce.py configs/table1_s04.py

Both method pairs of Table 1 at 16/32/64 bits: CSQ-HashNet (CSQ victims, poisons made against
a HashNet surrogate) and HashNet-CSQ (the opposite). Surrogate at 64 bits (official
code_length, SPEC D17). Open-set triggered queries: the other dataset's test images (D18).
paper_* values: Table 1 of the paper, row S4.
"""
table = 1
block = 'ImageNet'
row = 'S4'
presets = 'configs/imagenet100.py'
prepare_check = 'data/imagenet/train.txt,data/coco/test.txt'      # paper-scale data: prepare it first (README, Data)
methods = 'badhash'
pairs = 'CSQ-HashNet,HashNet-CSQ'    # Table 1's two column groups
surrogate_backbone = 'resnet50'          # Table 2: B-ResNet50
surrogate_bits = 64                   # SPEC D17
victim_backbones = 'resnet101'            # Table 2: T-ResNet101
bits_list = '16,32,64'
target = 22                          # SPEC §5.3 / D23
target_name = 'Dogs'
# the paper's Table 1, row S4
paper_map_csq_hashnet_16 = 0.848
paper_tmap_csq_hashnet_16 = 0.812
paper_map_csq_hashnet_32 = 0.870
paper_tmap_csq_hashnet_32 = 0.851
paper_map_csq_hashnet_64 = 0.854
paper_tmap_csq_hashnet_64 = 0.913
paper_map_hashnet_csq_16 = 0.314
paper_tmap_hashnet_csq_16 = 0.777
paper_map_hashnet_csq_32 = 0.614
paper_tmap_hashnet_csq_32 = 0.786
paper_map_hashnet_csq_64 = 0.592
paper_tmap_hashnet_csq_64 = 0.867
