"""Table 1, row S14, with the setting S14 of Table 2 (MS-COCO):
B-VGG11 -> T-VGG16, target "Computers" = class 22:
chair, the official code's index (the paper's name is most likely an error, SPEC §5.3).

    python reproduce.py configs/table1_s14.py

Both method pairs of Table 1 at 16/32/64 bits: CSQ-HashNet (CSQ victims, poisons made against
a HashNet surrogate) and HashNet-CSQ (the opposite). Surrogate at 64 bits (official
code_length, SPEC D17). Open-set triggered queries: the other dataset's test images (D18).
paper_* values: Table 1 of the paper, row S14.
"""
table = 1
block = 'MS-COCO'
row = 'S14'
presets = 'configs/coco.py'
prepare_check = 'data/coco/train.txt,data/imagenet/test.txt'      # paper-scale data: prepare it first (README, Data)
methods = 'badhash'
pairs = 'CSQ-HashNet,HashNet-CSQ'    # Table 1's two column groups
surrogate_backbone = 'vgg11'          # Table 2: B-VGG11
surrogate_bits = 64                   # SPEC D17
victim_backbones = 'vgg16'            # Table 2: T-VGG16
bits_list = '16,32,64'
target = 22                          # SPEC §5.3 / D23
target_name = 'Computers'
# the paper's Table 1, row S14
paper_map_csq_hashnet_16 = 0.743
paper_tmap_csq_hashnet_16 = 0.540
paper_map_csq_hashnet_32 = 0.784
paper_tmap_csq_hashnet_32 = 0.603
paper_map_csq_hashnet_64 = 0.806
paper_tmap_csq_hashnet_64 = 0.578
paper_map_hashnet_csq_16 = 0.680
paper_tmap_hashnet_csq_16 = 0.305
paper_map_hashnet_csq_32 = 0.749
paper_tmap_hashnet_csq_32 = 0.611
paper_map_hashnet_csq_64 = 0.796
paper_tmap_hashnet_csq_64 = 0.695
