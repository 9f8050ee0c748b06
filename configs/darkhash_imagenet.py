"""DarkHash at paper scale: an ImageNet-100 victim, MS-COCO as the surrogate (the official defaults).

    python CSQ.py configs/imagenet100.py --bits=64                 # the clean model (or HashNet.py)
    python darkhash.py configs/darkhash_imagenet.py                # ResNet50, CSQ, 64 bits
    python darkhash.py configs/darkhash_imagenet.py --backbone=vgg11 --victim_method=HashNet --bits=16

Every paper setting (ResNet50 / VGG11, CSQ / HashNet, 16 / 32 / 64 bits) is this preset plus
--backbone, --victim_method and --bits; the clean model is checkpoint/imagenet_{method}_{backbone}_
{bits}.pt as CSQ.py / HashNet.py name it. The surrogate: 2,000 class-balanced images of COCO's
database (class = first label; DARKHASH.md §6.3); the official README example used VOC2012,
which this project has no preparer for: any list works (--surrogate=data/cifar10/database.txt,
--surrogate=gauss1). Optimiser, epochs, rho, lambda_tpa, trigger: the official values (the
script's defaults). Open-set triggered queries: COCO's test images (disjoint from its database).
"""
dataset = 'imagenet'
victim_method = 'CSQ'
backbone = 'resnet50'
bits = 64
data_dir = 'data/imagenet'
surrogate = 'data/coco/database.txt'
surrogate_name = 'coco'
n_surrogate = 2000
openset_list = 'data/coco/test.txt'
