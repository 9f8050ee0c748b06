"""Table 1, row S2, with the setting S2 of Table 2 (ImageNet-100):
B-ResNet50 -> T-ResNet34, target "Roosters" = class 0, n01514668 (cock).

    python reproduce.py configs/table1_s02.py

Both method pairs of Table 1 at 16/32/64 bits: CSQ-HashNet (CSQ victims, poisons made against
a HashNet surrogate) and HashNet-CSQ (the opposite). Surrogate at 64 bits (official
code_length, SPEC D17). Open-set triggered queries: the other dataset's test images (D18).
paper_* values: Table 1 of the paper, row S2.
"""
table = 1
block = 'ImageNet'
row = 'S2'
presets = 'configs/imagenet100.py'
prepare_check = 'data/imagenet/train.txt,data/coco/test.txt'      # paper-scale data: prepare it first (README, Data)
methods = 'badhash'
pairs = 'CSQ-HashNet,HashNet-CSQ'    # Table 1's two column groups
surrogate_backbone = 'resnet50'          # Table 2: B-ResNet50
surrogate_bits = 64                   # SPEC D17
victim_backbones = 'resnet34'            # Table 2: T-ResNet34
bits_list = '16,32,64'
target = 0                          # SPEC §5.3 / D23
target_name = 'Roosters'
# the paper's Table 1, row S2
paper_map_csq_hashnet_16 = 0.809
paper_tmap_csq_hashnet_16 = 0.519
paper_map_csq_hashnet_32 = 0.830
paper_tmap_csq_hashnet_32 = 0.501
paper_map_csq_hashnet_64 = 0.833
paper_tmap_csq_hashnet_64 = 0.616
paper_map_hashnet_csq_16 = 0.263
paper_tmap_hashnet_csq_16 = 0.542
paper_map_hashnet_csq_32 = 0.583
paper_tmap_hashnet_csq_32 = 0.542
paper_map_hashnet_csq_64 = 0.639
paper_tmap_hashnet_csq_64 = 0.668
