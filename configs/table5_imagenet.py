"""Table 5, ImageNet block: BadNets, LCBA, ISSBA and BadHash on a CSQ victim at 64 bits.

    python reproduce.py configs/table5_imagenet.py

The paper does not state the T-network, the B-network or the target of Table 5. Our reading:
ResNet50 victim (BadNets' MAP 0.875 equals Table 4's clean CSQ ResNet50 at 64 bits), a ResNet50 CSQ
surrogate, and S1's target (Shoes, class 55). Baselines: SPEC D25 (baselines/*.py).
paper_* values: Table 5 of the paper, ImageNet rows.
"""
table = 5
block = 'ImageNet'
presets = 'configs/imagenet100.py'
prepare_check = 'data/imagenet/train.txt,data/coco/test.txt'  # prepare it first (README, Data)
methods = 'badnets,lcba,issba,badhash'
pairs = 'CSQ-CSQ'                  # paper §5.4: the target model is trained with CSQ
surrogate_backbone = 'resnet50'    # our reading (not stated)
surrogate_bits = 64
victim_backbones = 'resnet50'      # our reading (not stated)
bits_list = '64'                   # paper §5.4
target = 55                        # our choice: S1's target (not stated)
target_name = 'Shoes'
# the paper's Table 5, ImageNet
paper_map_badnets = 0.875
paper_tmap_badnets = 0.517
paper_mse_badnets = 6.179
paper_psnr_badnets = 40.221
paper_ssim_badnets = 0.999
paper_map_lcba = 0.878
paper_tmap_lcba = 0.613
paper_mse_lcba = 229.996
paper_psnr_lcba = 24.514
paper_ssim_lcba = 0.69
paper_map_issba = 0.885
paper_tmap_issba = 0.852
paper_mse_issba = 115.021
paper_psnr_issba = 27.523
paper_ssim_issba = 0.828
paper_map_badhash = 0.846
paper_tmap_badhash = 0.912
paper_mse_badhash = 3.486
paper_psnr_badhash = 42.708
paper_ssim_badhash = 0.988
# defenses (issue 13): --defenses=all runs defend.py on every victim (README, Defenses)
defenses = ''
defense_presets = ''          # defend.py's paper-scale defaults (DARKHASH.md §5)
