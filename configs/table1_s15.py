"""Table 1, row S15, with the setting S15 of Table 2 (MS-COCO):
B-VGG11 -> T-VGG19, target "Cars" = class 18, car.

    python reproduce.py configs/table1_s15.py

Both method pairs of Table 1 at 16/32/64 bits: CSQ-HashNet (CSQ victims, poisons made against
a HashNet surrogate) and HashNet-CSQ (the opposite). Surrogate at 64 bits (official
code_length, SPEC D17). Open-set triggered queries: the other dataset's test images (D18).
paper_* values: Table 1 of the paper, row S15.
"""
table = 1
block = 'MS-COCO'
row = 'S15'
presets = 'configs/coco.py'
prepare_check = 'data/coco/train.txt,data/imagenet/test.txt'      # paper-scale data: prepare it first (README, Data)
methods = 'badhash'
pairs = 'CSQ-HashNet,HashNet-CSQ'    # Table 1's two column groups
surrogate_backbone = 'vgg11'          # Table 2: B-VGG11
surrogate_bits = 64                   # SPEC D17
victim_backbones = 'vgg19'            # Table 2: T-VGG19
bits_list = '16,32,64'
target = 18                          # SPEC §5.3 / D23
target_name = 'Cars'
# the paper's Table 1, row S15
paper_map_csq_hashnet_16 = 0.782
paper_tmap_csq_hashnet_16 = 0.591
paper_map_csq_hashnet_32 = 0.817
paper_tmap_csq_hashnet_32 = 0.600
paper_map_csq_hashnet_64 = 0.817
paper_tmap_csq_hashnet_64 = 0.636
paper_map_hashnet_csq_16 = 0.668
paper_tmap_hashnet_csq_16 = 0.594
paper_map_hashnet_csq_32 = 0.764
paper_tmap_hashnet_csq_32 = 0.715
paper_map_hashnet_csq_64 = 0.785
paper_tmap_hashnet_csq_64 = 0.830
