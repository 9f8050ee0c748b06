"""Pretrain a backbone as a classifier (Tiny ImageNet-200 at 64 px: the ImageNet-1k stand-in of the
regime ladder, issue 11) and write a torchvision-format state dict for `pretrained=PATH`.

    python data/prepare_tinyimagenet.py --src=../shared/data/tiny-imagenet-200.zip
    python pretrain.py                                  # ResNet18, 64 px, 200 classes
    python pretrain.py --backbone=resnet34 --epochs=5
    python CSQ.py configs/ladder_r3.py --pretrained=checkpoint/tiny-imagenet-200_pretrain_resnet18_64.pth

Recipe (our choice; the usual one for this data): random crop (padding image_size/8) + horizontal
flip, SGD with momentum 0.9 (or AdamW), linear warm-up then a cosine decay per step, cross-entropy.
Images are [0, 1] and normalised with the ImageNet mean/std inside (input_norm='imagenet', the
convention of torchvision's weights, so our file and torchvision's are interchangeable).
Every epoch: top-1 on val_list, one line on stdout, a line in results/<run>/log.jsonl, and a
resumable checkpoint checkpoint/<run>.pt (run the same command again to continue). At the end:
checkpoint/<run>.pth (the torchvision model's state dict, nothing else) and checkpoint/<run>.json
(the config, the top-1 per epoch, the wall time and the .pth file's sha1).
"""
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import utils
from hash_models import BACKBONES, file_sha1, torchvision_model
from hash_models.backbones import IMAGENET_MEAN, IMAGENET_STD

# ---- config ------------------------------------------------------------------------------------
# data
dataset = 'tiny-imagenet-200'   # name in the run name
data_dir = 'data/tiny-imagenet'  # data/prepare_tinyimagenet.py's output
train_list = ''           # '' = {data_dir}/pretrain_train.txt (200 classes, one-hot)
val_list = ''             # '' = {data_dir}/pretrain_val.txt (top-1 every epoch)
train_subset = 0          # 0 = every training image; N = a seeded subset of N (smoke runs, a GPU's 64 MiB)
image_size = 64           # Tiny ImageNet's own size
augment = 'deephash'      # 'deephash' = flip + random crop (padding image_size/8); 'none'
# model
backbone = 'resnet18'     # hash_models.BACKBONES
small_input = False       # ResNets: 3x3 stride-1 first conv (about 4x the compute at 64 px)
input_norm = 'imagenet'   # normalise [0, 1] input with the ImageNet mean/std (torchvision convention)
init = ''                 # our option: a .pth of this backbone and class count to start from (a fine-tuning
                          # run, e.g. adversarial fine-tuning of a finished one); its sha1 is recorded and
                          # checked on resume
adv_eps = 0.0             # our option: adversarial training (Madry et al., ICLR 2018) within this L2 radius
                          # in [0, 1] pixel space; 0 = standard training. A slightly robust surrogate backbone
                          # makes more transferable perturbations (Springer et al., NeurIPS 2021)
adv_steps = 2             # PGD steps per batch when adv_eps > 0 (step 2.5 * adv_eps / adv_steps, no random start)
# optimisation
optimizer = 'sgd'         # 'sgd' (momentum 0.9, nesterov) | 'adamw'
lr = 0.1                  # peak learning rate (SGD at batch 128; AdamW: about 2e-3)
weight_decay = 5e-4       # SGD; AdamW: about 0.05
warmup_epochs = 1         # linear warm-up from 0, then cosine to 0 (per step)
label_smoothing = 0.1     # cross-entropy label smoothing
batch_size = 128
epochs = 9                # ResNet18: about 16 min each on 2 idle CPU cores, 2.3 h in all (issue 11's
                          # 2.5 h budget); ResNet34: --epochs=5 (docs/RESULTS.md "Regime ladder")
# run
seed = 0
device = 'auto'           # auto | cpu | cuda
num_workers = 2           # DataLoader workers
eval_batch_size = 256
dtype = 'float32'         # 'bfloat16' autocast: a CUDA speed option (slower on CPUs without bf16 units)
channels_last = False     # NHWC layout (faster convolutions on recent GPUs)
cache = 'disk'            # 'disk': decoded images memory-mapped from cache_dir (built once) | 'none'
cache_dir = 'cache'
checkpoint_dir = 'checkpoint'
out_dir = 'results'
tag = ''                  # suffix of the run name
evaluate = ''             # a .pth written by this script: print its top-1 on val_list and stop (no training)
stop_after = 0            # 0 = train to `epochs`; N = stop after epoch N (a long run split over sessions;
                          # the same command without it continues, with the same schedule)
# ------------------------------------------------------------------------------------------------

CHECKPOINT_FORMAT = 1
# keys that may change when a run is resumed (epochs may not: it sets the cosine schedule)
RESUME_FREE_KEYS = {'device', 'num_workers', 'eval_batch_size', 'cache', 'cache_dir', 'stop_after', 'evaluate'}


class Classifier(torch.nn.Module):
    """The torchvision model behind [0, 1] input; its state dict is the torchvision one."""

    def __init__(self, net, input_norm):
        super().__init__()
        self.net, self.input_norm = net, input_norm
        self.register_buffer('mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x):
        if self.input_norm == 'imagenet':
            x = (x - self.mean) / self.std
        return self.net(x)


def l2_pgd(model, x, y, eps, steps):
    """Adversarial examples within an L2 ball of radius eps around x (per image, in [0, 1] pixel space)
    that raise the cross-entropy of labels y: `steps` normalised gradient steps of 2.5 * eps / steps,
    each projected back onto the ball and into [0, 1]. The model is in eval mode meanwhile (its
    BatchNorm statistics do not see the attack's batches) and its mode is restored after."""
    was_training = model.training
    model.eval()
    step = 2.5 * eps / steps
    delta = torch.zeros_like(x)
    for _ in range(steps):
        delta.requires_grad_(True)
        with utils.autocast(x.device.type, dtype):
            loss = F.cross_entropy(model(x + delta).float(), y)
        grad, = torch.autograd.grad(loss, delta)
        norm = grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
        delta = delta.detach() + step * grad / norm
        scale = (eps / delta.flatten(1).norm(dim=1).clamp_min(1e-12)).clamp(max=1.0).view(-1, 1, 1, 1)
        delta = ((x + delta * scale).clamp(0, 1) - x).detach()
    model.train(was_training)
    return (x + delta).detach()


def step_lr(step, steps_per_epoch):
    """Linear warm-up over warmup_epochs, then cosine decay to 0 at the last step."""
    warm = warmup_epochs * steps_per_epoch
    total = epochs * steps_per_epoch
    if step < warm:
        return lr * (step + 1) / warm
    return lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


@torch.no_grad()
def top1(model, loader, device):
    model.eval()
    right = n = 0
    for x, y, _ in loader:
        with utils.autocast(device, dtype):
            out = model(utils.to_device(x, device, channels_last))
        right += (out.float().argmax(1).cpu() == y.argmax(1)).sum().item()
        n += len(x)
    return right / n


def evaluate_only(pth, va_list, dev):
    """Top-1 of a finished .pth on va_list (e.g. the whole validation list of a run trained on a
    GPU subset), printed and written beside the weights as <pth>.eval.json."""
    try:
        val = utils.ImageList(va_list, transform=utils.build_transform(image_size, 0, 'none'),
                              cache_dir=cache_dir if cache == 'disk' else None, num_workers=num_workers)
    except utils.ListError as e:
        sys.exit(f"error: {e}")
    if not os.path.isfile(pth):
        sys.exit(f"error: {pth}: not found (evaluate= takes a .pth written by pretrain.py)")
    state = torch.load(pth, map_location='cpu', weights_only=True)
    net = torchvision_model(backbone.lower(), small_input, num_classes=val.labels.shape[1])
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        sys.exit(f"error: {pth}: not a {backbone} (small_input={small_input}) with "
                 f"{val.labels.shape[1]} classes: {str(e).splitlines()[0]}")
    model = Classifier(net, input_norm).to(dev)
    loader = torch.utils.data.DataLoader(val, batch_size=eval_batch_size, shuffle=False,
                                         num_workers=num_workers)
    acc = top1(model, loader, dev)
    utils.write_json(os.path.splitext(pth)[0] + '.eval.json',
                     {'file': pth, 'sha1': file_sha1(pth), 'val_list': va_list,
                      'val_images': len(val), 'val_top1': acc})
    print(f"{pth}: top-1 {acc:.4f} on {va_list} ({len(val)} images)")


def check_config():
    """One-line errors for values no run can use."""
    if backbone.lower() not in BACKBONES:
        sys.exit(f"error: backbone must be one of {', '.join(BACKBONES)}, got {backbone!r}")
    if optimizer not in ('sgd', 'adamw'):
        sys.exit(f"error: optimizer must be 'sgd' or 'adamw', got {optimizer!r}")
    if input_norm not in ('none', 'imagenet') or cache not in ('none', 'disk'):
        sys.exit("error: input_norm must be 'none' or 'imagenet', cache 'none' or 'disk'")
    if epochs < 1 or batch_size < 1 or train_subset < 0:
        sys.exit("error: epochs and batch_size must be >= 1, train_subset >= 0")
    if adv_eps < 0 or adv_steps < 1:
        sys.exit(f"error: adv_eps must be >= 0 and adv_steps >= 1, got {adv_eps} and {adv_steps}")
    if init and not os.path.isfile(init):
        sys.exit(f"error: init={init}: not found (a .pth written by pretrain.py or a torchvision state dict)")


def load_data(tr_list, va_list, out):
    """The training and validation sets; a seeded subset is written as its own list, so the cache and
    the record name it. Returns (train, val, the training list used, its transform)."""
    try:
        if train_subset:
            paths, labels = utils.read_list(tr_list)
            if train_subset > len(paths):
                sys.exit(f"error: train_subset={train_subset} but {tr_list} has {len(paths)} images")
            pick = np.sort(np.random.default_rng(seed).permutation(len(paths))[:train_subset])
            sub = os.path.join(out, 'train_subset.txt')
            utils.write_list(sub, [os.path.abspath(paths[i]) for i in pick], labels[pick])
            tr_list = sub
        tf_train = utils.build_transform(image_size, 0, augment)
        tf_eval = utils.build_transform(image_size, 0, 'none')
        cdir = cache_dir if cache == 'disk' else None
        train = utils.ImageList(tr_list, transform=tf_train, cache_dir=cdir, num_workers=num_workers)
        val = utils.ImageList(va_list, transform=tf_eval, num_classes=train.labels.shape[1],
                              cache_dir=cdir, num_workers=num_workers)
    except utils.ListError as e:
        sys.exit(f"error: {e}")
    if (train.labels.sum(1) != 1).any():
        sys.exit(f"error: {tr_list}: pretraining needs one-hot (single-label) rows")
    print(f"images: train {len(train)}  val {len(val)}; classes {train.labels.shape[1]}")
    return train, val, tr_list, tf_train


def build_model(num_classes, dev):
    """The classifier and its optimiser (no weight decay on biases and norms)."""
    utils.seed_everything(seed)
    model = Classifier(torchvision_model(backbone.lower(), small_input, num_classes=num_classes),
                       input_norm).to(dev)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    other = [p for n, p in model.named_parameters() if p.ndim <= 1]
    groups = [{'params': decay, 'weight_decay': weight_decay}, {'params': other, 'weight_decay': 0.0}]
    opt = (torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True) if optimizer == 'sgd'
           else torch.optim.AdamW(groups, lr=lr))
    return model, opt


def resume_or_init(model, opt, config, ckpt_path, init_sha1, list_key, num_classes):
    """Continue from this run's checkpoint when what it was made from is unchanged (config, init
    file, training list and images), else start from `init` when set. Returns (start epoch, history)."""
    start, history = 0, []
    if os.path.isfile(ckpt_path):
        try:
            ck = utils.load_checkpoint(ckpt_path)
        except ValueError as e:
            sys.exit(f"error: {e}")
        diff = [k for k in config if k not in RESUME_FREE_KEYS and ck['config'].get(k) != config[k]]
        if diff:
            sys.exit(f"error: {ckpt_path}: trained with {diff[0]}={ck['config'].get(diff[0])!r}, this "
                     f"run has {diff[0]}={config[diff[0]]!r}; set tag=... or delete the checkpoint")
        if ck.get('init_sha1', '') != init_sha1:
            sys.exit(f"error: {ckpt_path}: started from another {init or 'initialisation'} (its sha1 "
                     f"differs); set tag=... or delete the checkpoint")
        if ck.get('list_key') != list_key:
            sys.exit(f"error: {ckpt_path}: the training list or its images changed since; "
                     f"set tag=... or delete the checkpoint")
        model.net.load_state_dict(ck['model'])
        opt.load_state_dict(ck['optimizer'])
        start, history = ck['epoch'], list(ck['history'])
        print(f"resumed from {ckpt_path} at epoch {start}/{epochs}")
    elif init:
        state = torch.load(init, map_location='cpu', weights_only=True)
        try:
            model.net.load_state_dict(state)
        except RuntimeError as e:
            sys.exit(f"error: {init}: not a {backbone} (small_input={small_input}) with {num_classes} "
                     f"classes: {str(e).splitlines()[0]}")
        print(f"starting from {init} (sha1 {init_sha1[:12]})")
    if adv_eps:
        print(f"adversarial training: L2 PGD of {adv_steps} steps within {adv_eps} (pixels in [0, 1])")
    if start > epochs:
        sys.exit(f"error: {ckpt_path} holds {start} epochs, more than epochs={epochs}")
    return start, history


def train_epoch(model, opt, train, epoch, dev, ckpt_path):
    """One seeded pass over the training set (a resumed run draws the same batches); returns the
    mean loss, the training top-1, the images seen and the seconds taken."""
    torch.manual_seed(seed * 100003 + epoch)
    gen = torch.Generator().manual_seed(seed * 100003 + epoch)
    loader = torch.utils.data.DataLoader(train, batch_size=batch_size, shuffle=True,
                                         num_workers=num_workers, generator=gen, drop_last=False,
                                         pin_memory=dev.startswith('cuda'))
    steps = math.ceil(len(train) / batch_size)
    model.train()
    t0, total, right, n = time.time(), 0.0, 0, 0
    for i, (x, y, _) in enumerate(loader):
        for g in opt.param_groups:
            g['lr'] = step_lr(epoch * steps + i, steps)
        x, y = utils.to_device(x, dev, channels_last), y.argmax(1).to(dev)
        if adv_eps:
            x = l2_pgd(model, x, y, adv_eps, adv_steps)
        with utils.autocast(dev, dtype):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
        if not torch.isfinite(loss):
            sys.exit(f"error: non-finite loss at epoch {epoch + 1} step {i}; checkpoint of epoch "
                     f"{epoch} kept at {ckpt_path}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.item() * len(x)
        right += (logits.argmax(1) == y).sum().item()
        n += len(x)
    return total / n, right / n, n, time.time() - t0


def write_record(model, history, run, pth_path, tr_list, va_list, init_sha1, config, num_classes):
    """The torchvision-format state dict and its record (<run>.json) beside it."""
    utils.save_checkpoint(pth_path, model.net.state_dict())
    record = {'run': run, 'file': pth_path, 'sha1': file_sha1(pth_path), 'backbone': backbone.lower(),
              'small_input': small_input, 'input_norm': input_norm, 'image_size': image_size,
              'num_classes': num_classes, 'epochs': epochs, 'val_top1': history[-1]['val_top1'],
              'train_time_s': round(sum(h['train_s'] + h['eval_s'] for h in history), 1),
              'train_list': tr_list, 'val_list': va_list, 'init_sha1': init_sha1, 'config': config,
              'history': history, 'git_commit': utils.git_commit(), 'machine': utils.machine()}
    utils.write_json(os.path.splitext(pth_path)[0] + '.json', record)
    print(f"final val top-1 {record['val_top1']:.4f} after {epochs} epochs; weights {pth_path} "
          f"(sha1 {record['sha1'][:12]}); use pretrained={pth_path}"
          + (" small_input=True" if small_input else '') + f" input_norm={input_norm}")


if __name__ == '__main__':
    config = utils.configure(globals())
    check_config()
    init_sha1 = file_sha1(init) if init else ''
    run = utils.pretrain_run_name(dataset, backbone, image_size, small_input, train_subset, tag)
    ckpt_path = os.path.join(checkpoint_dir, run + '.pt')
    pth_path = os.path.join(checkpoint_dir, run + '.pth')
    out = os.path.join(out_dir, run)
    tr_list = train_list or os.path.join(data_dir, 'pretrain_train.txt')
    va_list = val_list or os.path.join(data_dir, 'pretrain_val.txt')
    dev = utils.resolve_device(device)
    utils.check_dtype(dtype, dev)
    print(f"run {run}  device {dev}  checkpoint {ckpt_path}")
    if evaluate:
        evaluate_only(evaluate, va_list, dev)
        sys.exit(0)

    train, val, tr_list, tf_train = load_data(tr_list, va_list, out)
    num_classes = train.labels.shape[1]
    val_loader = torch.utils.data.DataLoader(val, batch_size=eval_batch_size, shuffle=False,
                                             num_workers=num_workers, persistent_workers=num_workers > 0)
    model, opt = build_model(num_classes, dev)
    list_key = utils.ImageCache.key(tr_list, train.paths, tf_train)
    start, history = resume_or_init(model, opt, config, ckpt_path, init_sha1, list_key, num_classes)

    log_path = os.path.join(out, 'log.jsonl')
    for epoch in range(start, epochs):
        loss, train_top1, n, train_s = train_epoch(model, opt, train, epoch, dev, ckpt_path)
        t1 = time.time()
        acc = top1(model, val_loader, dev)
        rec = {'epoch': epoch + 1, 'loss': loss, 'train_top1': train_top1, 'val_top1': acc,
               'train_s': round(train_s, 1), 'images_per_s': round(n / train_s, 1),
               'eval_s': round(time.time() - t1, 1)}
        history.append(rec)
        print(f"epoch {epoch + 1}/{epochs} loss {loss:.4f} train top-1 {train_top1:.4f} "
              f"val top-1 {acc:.4f} ({train_s:.0f}s, {rec['images_per_s']:.1f} img/s)", flush=True)
        utils.append_jsonl(log_path, rec)
        utils.save_checkpoint(ckpt_path, {
            'format': CHECKPOINT_FORMAT, 'model': model.net.state_dict(), 'optimizer': opt.state_dict(),
            'epoch': epoch + 1, 'config': config, 'history': history, 'init_sha1': init_sha1,
            'list_key': list_key})
        if stop_after and epoch + 1 >= stop_after and epoch + 1 < epochs:
            print(f"stopped after epoch {epoch + 1} (stop_after); the same command without "
                  f"stop_after continues from {ckpt_path}")
            sys.exit(0)
    write_record(model, history, run, pth_path, tr_list, va_list, init_sha1, config, num_classes)
