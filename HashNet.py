"""HashNet hashing: trains a surrogate, a clean model or a victim (same commands as CSQ.py).

    python HashNet.py configs/demo.py
    python HashNet.py configs/demo.py --train_list=.../poisoned_train.txt --tag=poisoned

Loss (SPEC §4.3, D15), the official code's memory-bank version: u = tanh(scale * f(x)) with the
continuation scale sqrt(floor(epoch / step_continuation) + 1); the batch's codes are compared with a
bank U of the latest codes of every training image (and Y their labels): theta = alpha * u U^T,
S = [y Y^T > 0], l = log(1 + exp(-|theta|)) + max(theta, 0) - S * theta, positive and negative pairs
re-weighted to contribute equally: L = mean over positive pairs + mean over negative pairs.
`hashnet_loss='minibatch'` compares the batch with itself instead (DeepHash after 2022-09).
"""
import sys

import torch
import torch.nn as nn

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
alpha = 0.1               # HashNet: scale of the inner product in the likelihood (DeepHash)
step_continuation = 20    # epochs per continuation step: tanh(sqrt(floor(e/20)+1) * f(x)) (D15)
hashnet_loss = 'memory'   # 'memory' = memory-bank pairs (official code, D15); 'minibatch' = DeepHash HEAD
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


class HashNetLoss(nn.Module):
    def __init__(self, n_train, num_classes, bits, alpha, step_continuation, memory=True):
        super().__init__()
        self.alpha, self.step, self.memory = alpha, step_continuation, memory
        self.register_buffer('U', torch.zeros(n_train, bits))
        self.register_buffer('Y', torch.zeros(n_train, num_classes))

    def scale(self, epoch):
        return (epoch // self.step + 1) ** 0.5

    def forward(self, out, labels, idx, epoch):
        u = torch.tanh(self.scale(epoch) * out.float())
        if self.memory:
            # under torchrun every process writes the whole global batch into its bank, so the
            # banks stay identical (each rank's shards are padded to equal sizes: shapes match)
            self.U[utils.all_gather_cat(idx)] = utils.all_gather_cat(u.detach())
            self.Y[utils.all_gather_cat(idx)] = utils.all_gather_cat(labels)
            bank_u, bank_y = self.U, self.Y
        else:
            bank_u, bank_y = u, labels
        return pairwise_likelihood_loss(u, labels, bank_u, bank_y, self.alpha)


def pairwise_likelihood_loss(u, y, bank_u, bank_y, alpha):
    """HashNet's weighted pairwise cross-entropy between a batch and a bank of codes."""
    s = (y @ bank_y.t() > 0).float()
    theta = alpha * (u @ bank_u.t())
    pair = torch.log1p(torch.exp(-theta.abs())) + theta.clamp(min=0) - s * theta
    pos, neg = s > 0, s <= 0
    loss = 0.0
    for mask in (pos, neg):  # each kind of pair contributes its mean (S/S1 and S/S0 weights)
        if mask.any():
            loss = loss + pair[mask].mean()
    return loss


def make_loss(config, train_labels, n_train):
    if config['hashnet_loss'] not in ('memory', 'minibatch'):
        sys.exit(f"error: hashnet_loss must be memory or minibatch, got {config['hashnet_loss']!r}")
    return HashNetLoss(n_train, train_labels.shape[1], config['bits'], config['alpha'],
                       config['step_continuation'], memory=config['hashnet_loss'] == 'memory')


if __name__ == '__main__':
    config = utils.configure(globals())
    engine.run(config, 'HashNet', make_loss)
