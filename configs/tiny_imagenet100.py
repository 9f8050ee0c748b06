"""The Tiny ImageNet-100 protocol (data/prepare_tinyimagenet.py: 100 seeded classes of Tiny
ImageNet-200, train 10,000 / database 30,000 / test 5,000, 64 px), playing ImageNet-100 with
Tiny ImageNet-200 pretraining playing ImageNet-1k (issue 11). The surrogate of rungs R1-R3:

    python data/prepare_tinyimagenet.py --src=../shared/data/tiny-imagenet-200.zip
    python pretrain.py                                   # checkpoint/tiny-imagenet-200_pretrain_resnet18_64.pth
    python CSQ.py configs/tiny_imagenet100.py            # CSQ ResNet18, 64 bits, the paper's recipe
    python CSQ.py configs/tiny_imagenet100.py --pretrained=False --tag=scratch   # same budget from scratch
The paper's fine-tuning recipe (D14, D15): no augmentation, RMSprop 1e-5, weight decay 1e-5, batch
128, 100 epochs (7,900 steps here, about 10,000 in the paper). Our choices: 64 px as stored (no
resize); input_norm='imagenet' because pretrain.py trains with ImageNet normalisation (torchvision's
convention; the official code feeds [0, 1] images to such weights, D14).
CPU cost: about 100 x 10,000 images of ResNet18 training, i.e. many hours on 2 cores.
"""
dataset = 'tiny-imagenet-100'
data_dir = 'data/tiny-imagenet'
image_size = 64
resize_size = 0
augment = 'none'
backbone = 'resnet18'
bits = 64
pretrained = 'checkpoint/tiny-imagenet-200_pretrain_resnet18_64.pth'
small_input = False
input_norm = 'imagenet'
optimizer = 'rmsprop'
lr = 1e-5
weight_decay = 1e-5
batch_size = 128
epochs = 100
eval_every = 10
num_workers = 2
cache = 'disk'
openset_list = 'data/tiny-imagenet/openset.txt'   # the other 100 classes' validation images
