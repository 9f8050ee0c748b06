"""CSQ (Central Similarity Quantization) hashing: trains a surrogate, a clean model or a victim.

    python CSQ.py                                   # paper-scale defaults (ImageNet-100, ResNet50)
    python CSQ.py configs/demo.py                   # the toy demo
    python CSQ.py configs/demo.py --bits=16 --backbone=resnet34
    python CSQ.py configs/demo.py --train_list=results/.../poisoned_train.txt --tag=poisoned \
        --queries=trig_open=results/.../trigger_openset.txt

Loss (SPEC §4.2, D15): u = tanh(f(x)); L = BCE((u+1)/2, (c+1)/2) + lambda_q * mean((|u|-1)^2),
c = the hash centre of the image's label. Centres: rows of [H; -H] (H Hadamard, K x K) for the
first classes, seeded balanced random vectors for the rest when 2K < classes (`hash_centres`);
multi-label images: sign of the sum of their classes' centres, seeded random bits for ties.
"""
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import utils
from hash_models import engine

# ---- config ------------------------------------------------------------------------------------
# data
dataset = 'imagenet'      # name used in run names and for the default topK (engine.TOPK_BY_DATASET)
data_dir = 'data/imagenet'  # folder with train.txt, test.txt (queries), database.txt
train_list = ''           # '' = {data_dir}/train.txt; give a poisoned list to train a victim
queries = ''              # extra query lists 'name=path.txt,...'; labels = target -> MAP is t-MAP
tag = ''                  # suffix of the run name (e.g. 'poisoned'), keeps runs apart
image_size = 224          # centre crop (paper scale, D14); the image's own size for small data
resize_size = 256         # Resize before the crop (D14); 0 = no resize
augment = 'none'          # 'none' (official code, D14) or 'deephash' (flip + random crop)
# model
backbone = 'resnet50'     # hash_models.BACKBONES
bits = 64                 # hash length K
pretrained = True         # True = torchvision ImageNet-1k weights (official code); False = from scratch;
                          # a path = a torchvision-format state dict (pretrain.py's or torchvision's .pth)
input_norm = 'none'       # 'none' = [0,1] input as the official code (D14); 'imagenet' = normalise inside
small_input = False       # 3x3 stride-1 first conv for 32-64 px images (ResNets)
init_from = ''            # our option: start from the weights of another checkpoint of this backbone and
                          # bit length (e.g. a model trained on other images, as a stand-in for pretraining)
init_parts = 'all'        # what init_from gives: 'all' or 'trunk' (a new hash layer: ladder rung R1)
freeze = 'none'           # our option: 'none' | 'trunk' (only the hash layer trains) | a depth stage
                          # (hash_models.trunk_stages: stem, layer1..4 / block1..5, fc6, fc7), frozen from
                          # the input up to it: weights fixed, BatchNorm statistics kept (eval mode)
# optimisation (official code, D15)
optimizer = 'rmsprop'     # rmsprop (official) | adam | sgd
lr = 1e-5                 # official code
weight_decay = 1e-5       # official code
lr_schedule = 'constant'  # official code; 'cosine' decays to 0 over the epochs (our option)
batch_size = 128          # official BadHash code (DeepHash: 64)
epochs = 100              # official BadHash code (DeepHash: 150)
lambda_q = 1e-4           # quantisation weight (CSQ paper / DeepHash)
multi_label = 'auto'      # 'auto' (any training row with >1 class), 'yes', 'no'
# evaluation
eval_every = 5            # official code; 0 = only at the end
eval_batch_size = 256     # encoding batch
topk = 0                  # MAP@K; 0 = per dataset (1000 ImageNet/COCO, all for small data); -1 = all
report = 'final'          # D20: final epoch; best-over-epochs is printed too, labelled
# run
seed = 0
device = 'auto'           # auto | cpu | cuda
num_workers = 4           # DataLoader workers (the evaluation loaders keep theirs between passes)
# speed (README "Speed and scale"; none of these is part of the run name)
dtype = 'float32'         # 'float32' (reproduction) | 'bfloat16': autocast forward passes, a CUDA speed
                          # option (losses, pre-sign outputs, metrics stay float32); CPU autocast on a CPU
channels_last = False     # NHWC memory layout for model and input (faster convolutions on recent GPUs)
cache = 'none'            # 'none' (decode every image every epoch, official) | 'disk': decoded, resized
                          # uint8 images memory-mapped from cache_dir, built once per list and geometry
cache_dir = 'cache'       # where cache='disk' keeps its files
checkpoint_dir = 'checkpoint'
out_dir = 'results'
# ------------------------------------------------------------------------------------------------


def hash_centres(num_classes, bits, seed, tries=1000):
    """CSQ hash centres as a float tensor [num_classes, bits] of +-1 (SPEC §4.2; seeded, D26).

    The first classes take rows of [H; -H] (H = Hadamard K x K, K a power of two). When 2K is less
    than the number of classes, each remaining centre is a balanced random vector (exactly K/2
    entries of each sign) drawn until it is more than K/4 bits from every centre so far; when no
    draw in `tries` manages that, the draw with the largest minimum distance is kept. This greedy
    draw is our choice: DeepHash redraws the whole random block up to 20 times and keeps the last
    draw, which at 32 bits / 100 classes usually misses its own K/4 criterion. (At 16 bits with more
    than 32 classes no balanced vector is more than K/4 from every Hadamard row, so K/4 is the best.)
    """
    from scipy.linalg import hadamard
    rng = np.random.default_rng(seed)
    rows = np.zeros((0, bits), dtype=np.int64)
    if bits & (bits - 1) == 0:
        h = hadamard(bits)
        rows = np.concatenate([h, -h])[:num_classes]
    while len(rows) < num_classes:
        # `tries` balanced candidates at once: -1 at K/2 random positions of each row
        cand = np.where(np.argsort(rng.random((tries, bits)), axis=1) < bits // 2, -1, 1)
        d = (bits - cand @ rows.T).min(1) / 2 if len(rows) else np.full(tries, bits)
        ok = np.flatnonzero(d > bits / 4)
        pick = ok[0] if len(ok) else int(np.argmax(d))  # first success, else the best draw
        rows = np.concatenate([rows, cand[pick][None]])
    return torch.tensor(rows, dtype=torch.float32)


class CSQLoss(nn.Module):
    def __init__(self, num_classes, bits, multi_label, lambda_q, seed):
        super().__init__()
        self.multi_label = multi_label
        self.lambda_q = lambda_q
        self.register_buffer('centres', hash_centres(num_classes, bits, seed))
        g = torch.Generator().manual_seed(seed + 1)
        self.register_buffer('tie_bits', torch.randint(0, 2, (bits,), generator=g).float())

    def label_centres(self, labels):
        if not self.multi_label:
            return self.centres[labels.argmax(1)]
        s = labels @ self.centres  # sum of the positive classes' centres
        ties = (2 * self.tie_bits - 1).expand_as(s)
        return torch.where(s > 0, 1.0, torch.where(s < 0, -1.0, ties))

    def forward(self, out, labels, idx=None, epoch=0):
        u = torch.tanh(out.float())
        c = self.label_centres(labels)
        centre_loss = F.binary_cross_entropy((u + 1) / 2, (c + 1) / 2)
        q_loss = (u.abs() - 1).pow(2).mean()
        return centre_loss + self.lambda_q * q_loss


def make_loss(config, train_labels, n_train):
    ml = config['multi_label']
    if ml not in ('auto', 'yes', 'no'):
        sys.exit(f"error: multi_label must be auto, yes or no, got {ml!r}")
    multi = bool(train_labels.sum(1).max() > 1) if ml == 'auto' else ml == 'yes'
    if utils.dist_info()[0] == 0:
        print(f"CSQ: {'multi' if multi else 'single'}-label centres for {train_labels.shape[1]} classes")
    return CSQLoss(train_labels.shape[1], config['bits'], multi, config['lambda_q'], config['seed'])


if __name__ == '__main__':
    config = utils.configure(globals())
    engine.run(config, 'CSQ', make_loss)
