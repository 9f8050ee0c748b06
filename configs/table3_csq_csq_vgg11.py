"""Table 3, row T-method CSQ / B-method CSQ / B-VGG11: cross-family transfer.

    python reproduce.py configs/table3_csq_csq_vgg11.py

Poisons made against a clean CSQ VGG11 surrogate (64 bits, SPEC D17) attack CSQ victims
ResNet34, VGG13 and DenseNet121 at 32 bits (the paper's "*" columns) and 64 bits. The paper
states neither the dataset of Table 3 nor its target: our reading is ImageNet-100 with the
target of S1 (Shoes, class 55 = n03047690), our choice.
paper_* values: Table 3 of the paper, this row.
"""
table = 3
block = 'ImageNet'                 # our reading (the paper does not say)
row = 'CSQ / CSQ / B-VGG11'
presets = 'configs/imagenet100.py'
prepare_check = 'data/imagenet/train.txt,data/coco/test.txt'  # prepare it first (README, Data)
methods = 'badhash'
pairs = 'CSQ-CSQ'
surrogate_backbone = 'vgg11'
surrogate_bits = 64                # SPEC D17
victim_backbones = 'resnet34,vgg13,densenet121'  # paper §5.3
bits_list = '32,64'
target = 55                        # our choice: S1's target (the paper does not say)
target_name = 'Shoes'
# the paper's Table 3, this row
paper_map_resnet34_32 = 0.832
paper_tmap_resnet34_32 = 0.967
paper_map_resnet34_64 = 0.838
paper_tmap_resnet34_64 = 0.982
paper_map_vgg13_32 = 0.805
paper_tmap_vgg13_32 = 0.967
paper_map_vgg13_64 = 0.823
paper_tmap_vgg13_64 = 0.984
paper_map_densenet121_32 = 0.832
paper_tmap_densenet121_32 = 0.932
paper_map_densenet121_64 = 0.827
paper_tmap_densenet121_64 = 0.973
