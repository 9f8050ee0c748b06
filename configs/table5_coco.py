"""Table 5, MS-COCO block: BadNets, LCBA, ISSBA and BadHash on a CSQ victim at 64 bits.

    python reproduce.py configs/table5_coco.py

As configs/table5_imagenet.py (ResNet50 victim and surrogate, our reading); target: S10's
"Humanity" (person, class 49), our choice: the paper does not state it.
paper_* values: Table 5 of the paper, MS-COCO rows.
"""
table = 5
block = 'MS-COCO'
presets = 'configs/coco.py'
prepare_check = 'data/coco/train.txt,data/imagenet/test.txt'  # prepare it first (README, Data)
methods = 'badnets,lcba,issba,badhash'
pairs = 'CSQ-CSQ'                  # paper §5.4: the target model is trained with CSQ
surrogate_backbone = 'resnet50'    # our reading (not stated)
surrogate_bits = 64
victim_backbones = 'resnet50'      # our reading (not stated)
bits_list = '64'                   # paper §5.4
target = 49                        # our choice: S10's target (not stated)
target_name = 'Humanity'
# the paper's Table 5, MS-COCO
paper_map_badnets = 0.803
paper_tmap_badnets = 0.432
paper_mse_badnets = 48.433
paper_psnr_badnets = 31.279
paper_ssim_badnets = 0.995
paper_map_lcba = 0.812
paper_tmap_lcba = 0.383
paper_mse_lcba = 129.293
paper_psnr_lcba = 27.015
paper_ssim_lcba = 0.716
paper_map_issba = 0.775
paper_tmap_issba = 0.486
paper_mse_issba = 211.637
paper_psnr_issba = 24.875
paper_ssim_issba = 0.803
paper_map_badhash = 0.808
paper_tmap_badhash = 0.771
paper_mse_badhash = 31.57
paper_psnr_badhash = 33.138
paper_ssim_badhash = 0.929
# defenses (issue 13): --defenses=all runs defend.py on every victim (README, Defenses)
defenses = ''
defense_presets = ''          # defend.py's paper-scale defaults (DARKHASH.md §5)
