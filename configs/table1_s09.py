"""Table 1, row S9, with the setting S9 of Table 2 (ImageNet-100):
B-VGG11 -> T-VGG19, target "Dogs" = class 22, n02096177 (cairn).

    python reproduce.py configs/table1_s09.py

Both method pairs of Table 1 at 16/32/64 bits: CSQ-HashNet (CSQ victims, poisons made against
a HashNet surrogate) and HashNet-CSQ (the opposite). Surrogate at 64 bits (official
code_length, SPEC D17). Open-set triggered queries: the other dataset's test images (D18).
paper_* values: Table 1 of the paper, row S9.
"""
table = 1
block = 'ImageNet'
row = 'S9'
presets = 'configs/imagenet100.py'
prepare_check = 'data/imagenet/train.txt,data/coco/test.txt'      # paper-scale data: prepare it first (README, Data)
methods = 'badhash'
pairs = 'CSQ-HashNet,HashNet-CSQ'    # Table 1's two column groups
surrogate_backbone = 'vgg11'          # Table 2: B-VGG11
surrogate_bits = 64                   # SPEC D17
victim_backbones = 'vgg19'            # Table 2: T-VGG19
bits_list = '16,32,64'
target = 22                          # SPEC §5.3 / D23
target_name = 'Dogs'
# the paper's Table 1, row S9
paper_map_csq_hashnet_16 = 0.822
paper_tmap_csq_hashnet_16 = 0.950
paper_map_csq_hashnet_32 = 0.842
paper_tmap_csq_hashnet_32 = 0.943
paper_map_csq_hashnet_64 = 0.855
paper_tmap_csq_hashnet_64 = 0.983
paper_map_hashnet_csq_16 = 0.455
paper_tmap_hashnet_csq_16 = 0.902
paper_map_hashnet_csq_32 = 0.715
paper_tmap_hashnet_csq_32 = 0.778
paper_map_hashnet_csq_64 = 0.751
paper_tmap_hashnet_csq_64 = 0.921
