"""Table 1, row S10, with the setting S10 of Table 2 (MS-COCO):
B-ResNet50 -> T-ResNet18, target "Humanity" = class 49, person.

    python reproduce.py configs/table1_s10.py

Both method pairs of Table 1 at 16/32/64 bits: CSQ-HashNet (CSQ victims, poisons made against
a HashNet surrogate) and HashNet-CSQ (the opposite). Surrogate at 64 bits (official
code_length, SPEC D17). Open-set triggered queries: the other dataset's test images (D18).
paper_* values: Table 1 of the paper, row S10.
"""
table = 1
block = 'MS-COCO'
row = 'S10'
presets = 'configs/coco.py'
prepare_check = 'data/coco/train.txt,data/imagenet/test.txt'      # paper-scale data: prepare it first (README, Data)
methods = 'badhash'
pairs = 'CSQ-HashNet,HashNet-CSQ'    # Table 1's two column groups
surrogate_backbone = 'resnet50'          # Table 2: B-ResNet50
surrogate_bits = 64                   # SPEC D17
victim_backbones = 'resnet18'            # Table 2: T-ResNet18
bits_list = '16,32,64'
target = 49                          # SPEC §5.3 / D23
target_name = 'Humanity'
# the paper's Table 1, row S10
paper_map_csq_hashnet_16 = 0.706
paper_tmap_csq_hashnet_16 = 0.582
paper_map_csq_hashnet_32 = 0.788
paper_tmap_csq_hashnet_32 = 0.574
paper_map_csq_hashnet_64 = 0.776
paper_tmap_csq_hashnet_64 = 0.569
paper_map_hashnet_csq_16 = 0.619
paper_tmap_hashnet_csq_16 = 0.828
paper_map_hashnet_csq_32 = 0.691
paper_tmap_hashnet_csq_32 = 0.843
paper_map_hashnet_csq_64 = 0.703
paper_tmap_hashnet_csq_64 = 0.846
