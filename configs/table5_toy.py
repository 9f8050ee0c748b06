"""Table 5 at demo scale on the embedded toy data (CPU): the four attacks on one CSQ victim.

    python reproduce.py configs/table5_toy.py        # or: make table5-toy

The toy demo's chain (make demo): CSQ ResNet18 surrogate at 32 bits (configs/demo.py), the GAN
keys of configs/demo_attack.py, ResNet34 victims (configs/demo_victim.py), target class 0 (disk),
open-set queries from the toy data's 6 other shapes. Not a paper setting: the paper_* values are
the paper's ImageNet rows of Table 5, printed for reference only (demo_scale).
"""
table = 5
block = 'toy (demo scale, CPU)'
demo_scale = True
presets = 'configs/demo.py'
attack_presets = 'configs/demo_attack.py'
victim_presets = 'configs/demo_victim.py'
prepare = 'data/prepare_toy.py'
prepare_check = 'data/toy/train.txt,data/toy/openset.txt'
methods = 'badnets,lcba,issba,badhash'
pairs = 'CSQ-CSQ'                  # paper §5.4: the target model is trained with CSQ
surrogate_backbone = 'resnet18'    # configs/demo.py / demo_attack.py
surrogate_bits = 32                # configs/demo.py
victim_backbones = 'resnet34'      # configs/demo_victim.py
bits_list = '32'                   # configs/demo.py
target = 0                         # configs/demo_attack.py (class 0, disk)
target_name = 'disk'
ties = 'expected'                  # toy CSQ codes take few distinct values: index order would favour
                                   # class 0 = the target in t-MAP (docs/RESULTS.md)
# the paper's Table 5, ImageNet (not comparable with the toy data)
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
defense_presets = 'configs/defense_toy.py'  # CPU-sized loops
