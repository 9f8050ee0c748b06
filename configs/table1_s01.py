"""Table 1, row S1, with the setting S1 of Table 2 (ImageNet-100):
B-ResNet50 -> T-ResNet18, target "Shoes" = class 55, n03047690 (clog).

    python reproduce.py configs/table1_s01.py

Both method pairs of Table 1 at 16/32/64 bits: CSQ-HashNet (CSQ victims, poisons made against
a HashNet surrogate) and HashNet-CSQ (the opposite). Surrogate at 64 bits (official
code_length, SPEC D17). Open-set triggered queries: the other dataset's test images (D18).
paper_* values: Table 1 of the paper, row S1.
"""
table = 1
block = 'ImageNet'
row = 'S1'
presets = 'configs/imagenet100.py'
prepare_check = 'data/imagenet/train.txt,data/coco/test.txt'      # paper-scale data: prepare it first (README, Data)
methods = 'badhash'
pairs = 'CSQ-HashNet,HashNet-CSQ'    # Table 1's two column groups
surrogate_backbone = 'resnet50'          # Table 2: B-ResNet50
surrogate_bits = 64                   # SPEC D17
victim_backbones = 'resnet18'            # Table 2: T-ResNet18
bits_list = '16,32,64'
target = 55                          # SPEC §5.3 / D23
target_name = 'Shoes'
# the paper's Table 1, row S1
paper_map_csq_hashnet_16 = 0.721
paper_tmap_csq_hashnet_16 = 0.630
paper_map_csq_hashnet_32 = 0.804
paper_tmap_csq_hashnet_32 = 0.838
paper_map_csq_hashnet_64 = 0.825
paper_tmap_csq_hashnet_64 = 0.913
paper_map_hashnet_csq_16 = 0.228
paper_tmap_hashnet_csq_16 = 0.888
paper_map_hashnet_csq_32 = 0.622
paper_tmap_hashnet_csq_32 = 0.878
paper_map_hashnet_csq_64 = 0.656
paper_tmap_hashnet_csq_64 = 0.771
