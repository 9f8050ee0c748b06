"""Table 5 on the Tiny ImageNet-100 protocol in rung R3 (issue 11), CPU-sized: as
configs/table5_tiny100.py with the budgets of configs/tiny100_cpu.py (surrogate and victims: the
paper's optimiser for 3,130 steps) and configs/tiny100_attack_cpu.py (G 2 epochs at a quarter of
the widths, ISSBA 2,000 steps, 1,000 + 1,000 triggered queries).

    python data/prepare_tinyimagenet.py --src=<tiny-imagenet-200.zip or its folder>
    python pretrain.py --backbone=resnet18; python pretrain.py --backbone=resnet34
    python reproduce.py configs/table5_tiny100_cpu.py    # several hours on 2 cores; resumable

Every step is skipped when its outputs exist, so the command continues where a stopped run left
off. Its runs have the names of configs/table5_tiny100.py's (the budget is not part of a run name):
on one machine, CSQ.py refuses to continue the other preset's checkpoint with a one-line error (the
recorded epochs and batch differ), so run one of the two there. docs/RESULTS.md gives the time it took here. The paper_* values are the paper's ImageNet rows.
"""
table = 5
block = 'Tiny ImageNet-100, rung R3 (CPU budget)'
demo_scale = True
presets = 'configs/tiny_imagenet100.py,configs/tiny100_cpu.py'
attack_presets = 'configs/tiny100_attack.py,configs/tiny100_attack_cpu.py'
victim_presets = 'configs/ladder_r3.py'
prepare = 'data/prepare_tinyimagenet.py --src=../shared/data/tiny-imagenet-200.zip'
prepare_check = 'data/tiny-imagenet/train.txt,data/tiny-imagenet/openset.txt'
methods = 'badnets,lcba,issba,badhash'
pairs = 'CSQ-CSQ'                  # paper §5.4: the target model is trained with CSQ
surrogate_backbone = 'resnet18'    # configs/tiny_imagenet100.py
surrogate_bits = 64
victim_backbones = 'resnet34'      # configs/ladder_r3.py: another architecture, its own pretrained weights
bits_list = '64'
target = 0                         # configs/tiny100_attack.py
target_name = ''
ties = 'expected'                  # tie-aware AP (D19): ours reads the same with any database order
# the paper's Table 5, ImageNet (Tiny ImageNet-100 plays ImageNet-100; not the same data)
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
