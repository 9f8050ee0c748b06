"""Table 5 on the Tiny ImageNet-100 protocol in rung R3 (issue 11): the four attacks of the paper's
Table 5 on a CSQ victim, surrogate and victim both fine-tuned from Tiny ImageNet-200 weights.

    python data/prepare_tinyimagenet.py --src=<tiny-imagenet-200.zip or its folder>
    python pretrain.py --backbone=resnet18; python pretrain.py --backbone=resnet34
    python reproduce.py configs/table5_tiny100.py        # a GPU: the paper's recipe throughout

Tiny ImageNet-100 (configs/tiny_imagenet100.py: 100 seeded classes, train 10,000 / database 30,000
/ test 5,000, 64 px) plays ImageNet-100 and Tiny ImageNet-200 pretraining plays ImageNet-1k. The
surrogate is CSQ ResNet18 at 64 bits and the victims CSQ ResNet34 at 64 bits (configs/ladder_r3.py),
each from its own pretrained weights, with the paper's fine-tuning recipe (RMSprop 1e-5, 100
epochs of batch 128); the attacks' keys are configs/tiny100_attack.py's. Open-set queries: the other
100 classes' validation images. The pretrained backbones are not made by this runner (pretrain.py:
minutes on a GPU, an estimated 2-2.5 h each on a 2-core CPU; docs/RESULTS.md). On a CPU use
configs/table5_tiny100_cpu.py. The paper_* values are the paper's ImageNet rows, for reference.
"""
table = 5
block = 'Tiny ImageNet-100, rung R3 (GPU)'
demo_scale = True
presets = 'configs/tiny_imagenet100.py'
attack_presets = 'configs/tiny100_attack.py'
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
