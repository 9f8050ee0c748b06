"""Table 1, row S13, with the setting S13 of Table 2 (MS-COCO):
B-VGG11 -> T-VGG13, target "Humanity" = class 49, person.

    python reproduce.py configs/table1_s13.py

Both method pairs of Table 1 at 16/32/64 bits: CSQ-HashNet (CSQ victims, poisons made against
a HashNet surrogate) and HashNet-CSQ (the opposite). Surrogate at 64 bits (official
code_length, SPEC D17). Open-set triggered queries: the other dataset's test images (D18).
paper_* values: Table 1 of the paper, row S13.
"""
table = 1
block = 'MS-COCO'
row = 'S13'
presets = 'configs/coco.py'
prepare_check = 'data/coco/train.txt,data/imagenet/test.txt'      # paper-scale data: prepare it first (README, Data)
methods = 'badhash'
pairs = 'CSQ-HashNet,HashNet-CSQ'    # Table 1's two column groups
surrogate_backbone = 'vgg11'          # Table 2: B-VGG11
surrogate_bits = 64                   # SPEC D17
victim_backbones = 'vgg13'            # Table 2: T-VGG13
bits_list = '16,32,64'
target = 49                          # SPEC §5.3 / D23
target_name = 'Humanity'
# the paper's Table 1, row S13
paper_map_csq_hashnet_16 = 0.758
paper_tmap_csq_hashnet_16 = 0.767
paper_map_csq_hashnet_32 = 0.805
paper_tmap_csq_hashnet_32 = 0.814
paper_map_csq_hashnet_64 = 0.821
paper_tmap_csq_hashnet_64 = 0.795
paper_map_hashnet_csq_16 = 0.685
paper_tmap_hashnet_csq_16 = 0.906
paper_map_hashnet_csq_32 = 0.752
paper_tmap_hashnet_csq_32 = 0.907
paper_map_hashnet_csq_64 = 0.775
paper_tmap_hashnet_csq_64 = 0.946
