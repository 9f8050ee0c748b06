"""tiny-imagenet-10 (../shared/data/tiny-imagenet-10): 10 real classes at 64 px, from scratch on CPU.

    python CSQ.py configs/tiny_imagenet10.py
Small real data: no pretrained weights offline, so a from-scratch ResNet18 with flip + random-crop
augmentation and Adam (our choice; the paper fine-tunes ImageNet weights with RMSprop 1e-5).
"""
dataset = 'tiny-imagenet-10'
data_dir = '../shared/data/tiny-imagenet-10'
image_size = 64
resize_size = 0
augment = 'deephash'
backbone = 'resnet18'
bits = 32
pretrained = False
small_input = True
optimizer = 'adam'
lr = 1e-3
weight_decay = 0.0
batch_size = 64
epochs = 20
eval_every = 10
num_workers = 0
step_continuation = 5
