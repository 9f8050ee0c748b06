"""Attack keys for the toy demo; stack after the hashing demo preset:

    python train_tri_gen.py configs/demo.py configs/demo_attack.py
    python implement_tri_gen.py configs/demo.py configs/demo_attack.py

configs/demo.py gives dataset/data_dir/image size; this file sets the surrogate it trained
(checkpoint/toy_CSQ_resnet18_32.pt) and the GAN keys that demo.py would otherwise set for the
hashing model (epochs, lr, batch_size). Not a paper setting: CPU-sized (our choice).
"""
surrogate_backbone = 'resnet18'   # the demo's CSQ model (configs/demo.py backbone)
surrogate_bits = 32               # the demo's bits
epochs = 10                       # CPU budget (paper: 100)
batch_size = 32                   # paper
lr = 2e-4                         # our choice: G must learn the identity quickly (SPEC §8); paper 1e-4
lr_policy = 'constant'            # too few epochs for the official 50/50 schedule
ngf = 32                          # half the official width: CPU budget
ndf = 32                          # half the official width: CPU budget
labcln_hidden = 1024              # official 4096; the 10-label toy pool needs less (CPU budget)
lpips = 'alex_random_trunk'       # offline fallback; use 'alex' when alexnet-owt-7be5be79.pth is cached
log_every = 10
sample_every = 0                  # debug grid at every epoch end
openset_list = 'data/toy/openset.txt'  # open-set triggered queries: the toy's 6 other shapes
target = 0                        # class 0 (disk)
