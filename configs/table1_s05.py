"""Table 1, row S5, with the setting S5 of Table 2 (ImageNet-100):
B-ResNet50 -> T-ResNet152 (the paper prints "ResNet153", a typo, SPEC §1.8), target "Hedgehogs" = class 35, n02346627 (porcupine).

    python reproduce.py configs/table1_s05.py

Both method pairs of Table 1 at 16/32/64 bits: CSQ-HashNet (CSQ victims, poisons made against
a HashNet surrogate) and HashNet-CSQ (the opposite). Surrogate at 64 bits (official
code_length, SPEC D17). Open-set triggered queries: the other dataset's test images (D18).
paper_* values: Table 1 of the paper, row S5.
"""
table = 1
block = 'ImageNet'
row = 'S5'
presets = 'configs/imagenet100.py'
prepare_check = 'data/imagenet/train.txt,data/coco/test.txt'      # paper-scale data: prepare it first (README, Data)
methods = 'badhash'
pairs = 'CSQ-HashNet,HashNet-CSQ'    # Table 1's two column groups
surrogate_backbone = 'resnet50'          # Table 2: B-ResNet50
surrogate_bits = 64                   # SPEC D17
victim_backbones = 'resnet152'            # Table 2: T-ResNet152
bits_list = '16,32,64'
target = 35                          # SPEC §5.3 / D23
target_name = 'Hedgehogs'
# the paper's Table 1, row S5
paper_map_csq_hashnet_16 = 0.856
paper_tmap_csq_hashnet_16 = 0.758
paper_map_csq_hashnet_32 = 0.869
paper_tmap_csq_hashnet_32 = 0.943
paper_map_csq_hashnet_64 = 0.864
paper_tmap_csq_hashnet_64 = 0.940
paper_map_hashnet_csq_16 = 0.296
paper_tmap_hashnet_csq_16 = 0.849
paper_map_hashnet_csq_32 = 0.581
paper_tmap_hashnet_csq_32 = 0.878
paper_map_hashnet_csq_64 = 0.601
paper_tmap_hashnet_csq_64 = 0.846
