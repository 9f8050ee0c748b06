"""Table 1, row S7, with the setting S7 of Table 2 (ImageNet-100):
B-VGG11 -> T-VGG13, target "Roosters" = class 0, n01514668 (cock).

    python reproduce.py configs/table1_s07.py

Both method pairs of Table 1 at 16/32/64 bits: CSQ-HashNet (CSQ victims, poisons made against
a HashNet surrogate) and HashNet-CSQ (the opposite). Surrogate at 64 bits (official
code_length, SPEC D17). Open-set triggered queries: the other dataset's test images (D18).
paper_* values: Table 1 of the paper, row S7.
"""
table = 1
block = 'ImageNet'
row = 'S7'
presets = 'configs/imagenet100.py'
prepare_check = 'data/imagenet/train.txt,data/coco/test.txt'      # paper-scale data: prepare it first (README, Data)
methods = 'badhash'
pairs = 'CSQ-HashNet,HashNet-CSQ'    # Table 1's two column groups
surrogate_backbone = 'vgg11'          # Table 2: B-VGG11
surrogate_bits = 64                   # SPEC D17
victim_backbones = 'vgg13'            # Table 2: T-VGG13
bits_list = '16,32,64'
target = 0                          # SPEC §5.3 / D23
target_name = 'Roosters'
# the paper's Table 1, row S7
paper_map_csq_hashnet_16 = 0.780
paper_tmap_csq_hashnet_16 = 0.945
paper_map_csq_hashnet_32 = 0.821
paper_tmap_csq_hashnet_32 = 0.950
paper_map_csq_hashnet_64 = 0.822
paper_tmap_csq_hashnet_64 = 0.955
paper_map_hashnet_csq_16 = 0.495
paper_tmap_hashnet_csq_16 = 0.916
paper_map_hashnet_csq_32 = 0.698
paper_tmap_hashnet_csq_32 = 0.935
paper_map_hashnet_csq_64 = 0.777
paper_tmap_hashnet_csq_64 = 0.964
