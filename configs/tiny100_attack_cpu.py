"""CPU budget of the attacks for Table 5 on the Tiny ImageNet-100 protocol
(configs/table5_tiny100_cpu.py); stack after configs/tiny100_attack.py. Our choices, to fit a 2-core
CPU: G trains 2 epochs (626 steps of batch 32) at a quarter of the widths; ISSBA's encoder 2,000
steps with a 32-bit secret, at the toy demo's lr and width (configs/demo_attack.py); the triggered
queries are seeded subsets of 1,000 closed-set and 1,000 open-set images (of 4,950 and 5,000), so
each victim encodes 32,000 images in all.
"""
epochs = 2
ngf = 16
ndf = 16
issba_steps = 2000
issba_ramp_steps = 500
issba_secret_bits = 32
issba_width = 16
issba_lr = 0.001
n_closed = 1000
n_openset = 1000
