"""Attack keys for the toy demo; stack after the hashing demo preset:

    python train_tri_gen.py configs/demo.py configs/demo_attack.py
    python implement_tri_gen.py configs/demo.py configs/demo_attack.py

configs/demo.py gives dataset/data_dir/image size; this file sets the surrogate it trained
(checkpoint/toy_CSQ_resnet18_32.pt) and the GAN keys that demo.py would otherwise set for the
hashing model (epochs, lr, batch_size). Not a paper setting: CPU-sized (our choice); the loss
weights stay the paper preset's (80, 5, 200). `make demo` measured
(docs/RESULTS.md): GAN 8 x 12 s on 2 threads, poisons PSNR 34.4 dB / SSIM 0.985.
"""
surrogate_backbone = 'resnet18'   # the demo's CSQ model (configs/demo.py backbone)
surrogate_bits = 32               # the demo's bits
epochs = 8                        # CPU budget (paper: 100)
batch_size = 8                    # our choice: 125 G steps per epoch of 1000 toy images (paper 32)
lr = 1e-3                         # our choice: few steps in a CPU budget (paper 1e-4)
lr_policy = 'constant'            # too few epochs for the official 50/50 schedule
ngf = 16                          # a quarter of the official width: CPU budget
ndf = 16                          # a quarter of the official width: CPU budget
g_output = 'residual'             # our choice: G starts as the identity (official 'image' needs ~100x
                                  # more steps to learn it, SPEC §8)
g_eps = 0.0314                    # 8/255 L-inf budget on the residual: poison PSNR >= 30 dB by construction
conf_mode = '2'                   # one fixed confusing label (official code also trains with one, D2)
conf_label = '2'                  # implement_tri_gen.py: the same label for poisons and queries (D3)
labcln_hidden = 1024              # official 4096; the 10-label toy pool needs less (CPU budget)
lpips = 'alex_random_trunk'       # offline fallback; use 'alex' when alexnet-owt-7be5be79.pth is cached
log_every = 25
sample_every = 0                  # debug grid at every epoch end
openset_list = 'data/toy/openset.txt'  # open-set triggered queries: the toy's 6 other shapes
target = 0                        # class 0 (disk)
# baselines/issba.py at demo scale (its defaults are the paper's 224 px, 100-bit secret, 20k steps)
issba_secret_bits = 16
issba_width = 16
issba_depth = 2
issba_steps = 600
issba_ramp_steps = 200
issba_lr = 0.001
