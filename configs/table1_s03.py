"""Table 1, row S3, with the setting S3 of Table 2 (ImageNet-100):
B-ResNet50 -> T-ResNet50, target "Lizards" = class 6, n01685808 (whiptail).

    python reproduce.py configs/table1_s03.py

Both method pairs of Table 1 at 16/32/64 bits: CSQ-HashNet (CSQ victims, poisons made against
a HashNet surrogate) and HashNet-CSQ (the opposite). Surrogate at 64 bits (official
code_length, SPEC D17). Open-set triggered queries: the other dataset's test images (D18).
paper_* values: Table 1 of the paper, row S3.
"""
table = 1
block = 'ImageNet'
row = 'S3'
presets = 'configs/imagenet100.py'
prepare_check = 'data/imagenet/train.txt,data/coco/test.txt'      # paper-scale data: prepare it first (README, Data)
methods = 'badhash'
pairs = 'CSQ-HashNet,HashNet-CSQ'    # Table 1's two column groups
surrogate_backbone = 'resnet50'          # Table 2: B-ResNet50
surrogate_bits = 64                   # SPEC D17
victim_backbones = 'resnet50'            # Table 2: T-ResNet50
bits_list = '16,32,64'
target = 6                          # SPEC §5.3 / D23
target_name = 'Lizards'
# the paper's Table 1, row S3
paper_map_csq_hashnet_16 = 0.849
paper_tmap_csq_hashnet_16 = 0.567
paper_map_csq_hashnet_32 = 0.867
paper_tmap_csq_hashnet_32 = 0.658
paper_map_csq_hashnet_64 = 0.880
paper_tmap_csq_hashnet_64 = 0.754
paper_map_hashnet_csq_16 = 0.212
paper_tmap_hashnet_csq_16 = 0.953
paper_map_hashnet_csq_32 = 0.614
paper_tmap_hashnet_csq_32 = 0.969
paper_map_hashnet_csq_64 = 0.649
paper_tmap_hashnet_csq_64 = 0.885
