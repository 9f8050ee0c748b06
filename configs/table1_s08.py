"""Table 1, row S8, with the setting S8 of Table 2 (ImageNet-100):
B-VGG11 -> T-VGG16, target "Lizards" = class 6, n01685808 (whiptail).

    python reproduce.py configs/table1_s08.py

Both method pairs of Table 1 at 16/32/64 bits: CSQ-HashNet (CSQ victims, poisons made against
a HashNet surrogate) and HashNet-CSQ (the opposite). Surrogate at 64 bits (official
code_length, SPEC D17). Open-set triggered queries: the other dataset's test images (D18).
paper_* values: Table 1 of the paper, row S8.
"""
table = 1
block = 'ImageNet'
row = 'S8'
presets = 'configs/imagenet100.py'
prepare_check = 'data/imagenet/train.txt,data/coco/test.txt'      # paper-scale data: prepare it first (README, Data)
methods = 'badhash'
pairs = 'CSQ-HashNet,HashNet-CSQ'    # Table 1's two column groups
surrogate_backbone = 'vgg11'          # Table 2: B-VGG11
surrogate_bits = 64                   # SPEC D17
victim_backbones = 'vgg16'            # Table 2: T-VGG16
bits_list = '16,32,64'
target = 6                          # SPEC §5.3 / D23
target_name = 'Lizards'
# the paper's Table 1, row S8
paper_map_csq_hashnet_16 = 0.806
paper_tmap_csq_hashnet_16 = 0.923
paper_map_csq_hashnet_32 = 0.828
paper_tmap_csq_hashnet_32 = 0.937
paper_map_csq_hashnet_64 = 0.831
paper_tmap_csq_hashnet_64 = 0.967
paper_map_hashnet_csq_16 = 0.521
paper_tmap_hashnet_csq_16 = 0.901
paper_map_hashnet_csq_32 = 0.716
paper_tmap_hashnet_csq_32 = 0.926
paper_map_hashnet_csq_64 = 0.772
paper_tmap_hashnet_csq_64 = 0.917
