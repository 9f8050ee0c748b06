"""Table 3, row T-method CSQ / B-method HashNet / B-VGG11: cross-family transfer.

    python reproduce.py configs/table3_csq_hashnet_vgg11.py

Poisons made against a clean HashNet VGG11 surrogate (64 bits, SPEC D17) attack CSQ victims
ResNet34, VGG13 and DenseNet121 at 32 bits (the paper's "*" columns) and 64 bits. The paper
states neither the dataset of Table 3 nor its target: our reading is ImageNet-100 with the
target of S1 (Shoes, class 55 = n03047690), our choice.
paper_* values: Table 3 of the paper, this row.
"""
table = 3
block = 'ImageNet'                 # our reading (the paper does not say)
row = 'CSQ / HashNet / B-VGG11'
presets = 'configs/imagenet100.py'
prepare_check = 'data/imagenet/train.txt,data/coco/test.txt'  # prepare it first (README, Data)
methods = 'badhash'
pairs = 'CSQ-HashNet'
surrogate_backbone = 'vgg11'
surrogate_bits = 64                # SPEC D17
victim_backbones = 'resnet34,vgg13,densenet121'  # paper §5.3
bits_list = '32,64'
target = 55                        # our choice: S1's target (the paper does not say)
target_name = 'Shoes'
# the paper's Table 3, this row
paper_map_resnet34_32 = 0.824
paper_tmap_resnet34_32 = 0.958
paper_map_resnet34_64 = 0.833
paper_tmap_resnet34_64 = 0.947
paper_map_vgg13_32 = 0.821
paper_tmap_vgg13_32 = 0.950
paper_map_vgg13_64 = 0.822
paper_tmap_vgg13_64 = 0.955
paper_map_densenet121_32 = 0.836
paper_tmap_densenet121_32 = 0.931
paper_map_densenet121_64 = 0.850
paper_tmap_densenet121_64 = 0.965
