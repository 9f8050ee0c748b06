"""Table 1, row S12, with the setting S12 of Table 2 (MS-COCO):
B-ResNet50 -> T-ResNet101, target "Cars" = class 18, car.

    python reproduce.py configs/table1_s12.py

Both method pairs of Table 1 at 16/32/64 bits: CSQ-HashNet (CSQ victims, poisons made against
a HashNet surrogate) and HashNet-CSQ (the opposite). Surrogate at 64 bits (official
code_length, SPEC D17). Open-set triggered queries: the other dataset's test images (D18).
paper_* values: Table 1 of the paper, row S12.
"""
table = 1
block = 'MS-COCO'
row = 'S12'
presets = 'configs/coco.py'
prepare_check = 'data/coco/train.txt,data/imagenet/test.txt'      # paper-scale data: prepare it first (README, Data)
methods = 'badhash'
pairs = 'CSQ-HashNet,HashNet-CSQ'    # Table 1's two column groups
surrogate_backbone = 'resnet50'          # Table 2: B-ResNet50
surrogate_bits = 64                   # SPEC D17
victim_backbones = 'resnet101'            # Table 2: T-ResNet101
bits_list = '16,32,64'
target = 18                          # SPEC §5.3 / D23
target_name = 'Cars'
# the paper's Table 1, row S12
paper_map_csq_hashnet_16 = 0.842
paper_tmap_csq_hashnet_16 = 0.927
paper_map_csq_hashnet_32 = 0.859
paper_tmap_csq_hashnet_32 = 0.975
paper_map_csq_hashnet_64 = 0.845
paper_tmap_csq_hashnet_64 = 0.592
paper_map_hashnet_csq_16 = 0.646
paper_tmap_hashnet_csq_16 = 0.578
paper_map_hashnet_csq_32 = 0.689
paper_tmap_hashnet_csq_32 = 0.700
paper_map_hashnet_csq_64 = 0.726
paper_tmap_hashnet_csq_64 = 0.805
