"""Table 5 at demo scale on tiny-imagenet-10 (real 64 px photos, CPU): the four attacks.

    python reproduce.py configs/table5_tiny.py       # or: make table5-tiny

The chain of `make tiny-attack`: CSQ ResNet18 surrogate at 32 bits (configs/tiny_imagenet10.py),
the GAN keys of configs/tiny_attack.py, ResNet34 victims of 12 epochs (configs/tiny_victim.py),
target class 0, open-set queries from the toy shapes drawn at 64 px (data/toy64). Needs
../shared/data/tiny-imagenet-10 (developer machines). The paper_* values are the paper's ImageNet
rows of Table 5, printed for reference only (demo_scale).
"""
table = 5
block = 'tiny-imagenet-10 (demo scale, CPU)'
demo_scale = True
presets = 'configs/tiny_imagenet10.py'
attack_presets = 'configs/tiny_attack.py'
victim_presets = 'configs/tiny_victim.py'
prepare = 'data/prepare_toy.py --image_size=64 --out_dir=data/toy64'
prepare_check = 'data/toy64/openset.txt,../shared/data/tiny-imagenet-10/train.txt'
methods = 'badnets,lcba,issba,badhash'
pairs = 'CSQ-CSQ'                  # paper §5.4: the target model is trained with CSQ
surrogate_backbone = 'resnet18'    # configs/tiny_imagenet10.py / tiny_attack.py
surrogate_bits = 32
victim_backbones = 'resnet34'      # configs/tiny_victim.py
bits_list = '32'
target = 0                         # configs/tiny_attack.py
target_name = ''
# the paper's Table 5, ImageNet (not comparable with tiny-imagenet-10)
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
