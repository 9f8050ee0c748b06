"""The training / evaluation loop shared by CSQ.py and HashNet.py.

A hashing script defines its config block and its loss (an nn.Module called as
`loss(raw_output, labels, indices, epoch)`), then calls `run(config, method, make_loss)`.
This module does the rest, the same way for every method:
  - reads and validates the lists (train may be replaced by a poisoned list; any number of extra
    query lists, e.g. triggered queries whose labels are the target, whose MAP is then t-MAP);
  - trains, saving an atomic checkpoint after every epoch, and resumes from it when the same
    command is run again after an interruption;
  - evaluates every `eval_every` epochs and at the end, reporting the final epoch (D20; the best
    epoch is reported too, labelled as such);
  - saves codes and labels of every evaluated split as .npz and a results JSON.
"""
import math
import os
import sys
import time

import numpy as np
import torch

import utils
from hash_models import build_hash_model, check_model_meta

CHECKPOINT_FORMAT = 1
# keys that may change between an interrupted run and its resumption
RESUME_FREE_KEYS = {'device', 'num_workers', 'eval_every', 'epochs', 'report', 'queries',
                    'eval_batch_size', 'topk'}
# keys that do not change any figure: a finished run is reused when only these differ
REUSE_FREE_KEYS = {'device', 'num_workers', 'eval_batch_size'}
# MAP@K per dataset (SPEC D19): ImageNet and COCO use 1000 for the paper's tables; the small
# datasets are ranked over the whole database (DeepHash uses -1 for CIFAR-10).
TOPK_BY_DATASET = {'imagenet': 1000, 'imagenet100': 1000, 'coco': 1000, 'cifar10': -1,
                   'toy': -1, 'tiny-imagenet-10': -1}


def derive(config, method):
    """Everything that follows from the config: paths, run name, topK."""
    c = config
    d = {}
    d['run'] = f"{c['dataset']}_{method}_{c['backbone']}_{c['bits']}" + (
        f"_{c['tag']}" if c['tag'] else '')
    d['checkpoint'] = os.path.join(c['checkpoint_dir'], d['run'] + '.pt')
    d['out'] = os.path.join(c['out_dir'], d['run'])
    d['train_list'] = c['train_list'] or os.path.join(c['data_dir'], 'train.txt')
    d['lists'] = {'test': os.path.join(c['data_dir'], 'test.txt'),
                  'database': os.path.join(c['data_dir'], 'database.txt')}
    for item in filter(None, (s.strip() for s in c['queries'].split(','))):
        if '=' not in item:
            sys.exit(f"error: queries entries must be name=path.txt, got {item!r}")
        name, path = item.split('=', 1)
        if name in d['lists'] or name == 'train':
            sys.exit(f"error: query list name {name!r} is reserved")
        d['lists'][name] = path
    topk = c['topk']
    if topk == 0:
        topk = TOPK_BY_DATASET.get(c['dataset'], -1)
    d['topk'] = topk
    if c['report'] not in ('final', 'best'):
        sys.exit(f"error: report must be 'final' or 'best', got {c['report']!r}")
    return d


def make_loader(dataset, batch_size, shuffle, num_workers, generator=None):
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle,
                                       num_workers=num_workers, generator=generator,
                                       drop_last=False)


@torch.no_grad()
def encode(model, dataset, config, device, desc):
    """sign(raw output) for every image of a dataset, in list order (int8 {-1, 0, +1})."""
    from tqdm import tqdm
    model.eval()
    loader = make_loader(dataset, config['eval_batch_size'], False, config['num_workers'])
    codes = []
    for x, _, _ in tqdm(loader, desc=desc, leave=False, disable=len(dataset) < 5000):
        codes.append(torch.sign(model(x.to(device)).float()).to(torch.int8).cpu())
    return torch.cat(codes).numpy()


def build_optimizer(config, params):
    name = config['optimizer']
    if name == 'rmsprop':  # official code and DeepHash (D15)
        return torch.optim.RMSprop(params, lr=config['lr'], weight_decay=config['weight_decay'])
    if name == 'adam':
        return torch.optim.Adam(params, lr=config['lr'], weight_decay=config['weight_decay'])
    if name == 'sgd':
        return torch.optim.SGD(params, lr=config['lr'], momentum=0.9,
                               weight_decay=config['weight_decay'])
    sys.exit(f"error: optimizer must be rmsprop, adam or sgd, got {name!r}")


def epoch_lr(config, epoch):
    """Learning rate of a 0-based epoch: constant (official code) or cosine decay to 0."""
    if config['lr_schedule'] == 'constant':
        return config['lr']
    if config['lr_schedule'] == 'cosine':
        return config['lr'] * 0.5 * (1 + math.cos(math.pi * epoch / config['epochs']))
    sys.exit(f"error: lr_schedule must be 'constant' or 'cosine', got {config['lr_schedule']!r}")


def _check_resume(ckpt, config, path, meta):
    check_model_meta(ckpt.get('meta', {}), meta, path)
    old = ckpt.get('config', {})
    diff = [k for k in config if k not in RESUME_FREE_KEYS and old.get(k) != config[k]]
    if diff:
        k = diff[0]
        raise ValueError(f"{path}: checkpoint was trained with {k}={old.get(k)!r}, this run has "
                         f"{k}={config[k]!r}; set tag=... for a new run or delete the checkpoint")


def evaluate_all(model, datasets, config, derived, device):
    """Encode database and every query split; MAP@topK of each query split against the database."""
    from evaluate import mean_average_precision
    codes = {name: encode(model, ds, config, device, f"encode {name}")
             for name, ds in datasets.items() if name != 'train'}
    db = datasets['database']
    metrics = {}
    for name, ds in datasets.items():
        if name in ('train', 'database'):
            continue
        metrics[name] = float(mean_average_precision(codes[name], codes['database'], ds.labels,
                                                     db.labels, derived['topk']))
    return metrics, codes


def run(config, method, make_loss):
    """Train (or resume, or reuse) a hashing model and evaluate it. Returns the results dict."""
    d = derive(config, method)
    device = utils.resolve_device(config['device'])
    utils.seed_everything(config['seed'])
    print(f"run {d['run']}  device {device}  checkpoint {d['checkpoint']}  topK {d['topk']}")

    tf_train = utils.build_transform(config['image_size'], config['resize_size'],
                                     config['augment'])
    tf_eval = utils.build_transform(config['image_size'], config['resize_size'], 'none')
    try:
        datasets = {'train': utils.ImageList(d['train_list'], transform=tf_train)}
        num_classes = datasets['train'].labels.shape[1]
        for name, path in d['lists'].items():
            datasets[name] = utils.ImageList(path, transform=tf_eval, num_classes=num_classes)
    except utils.ListError as e:
        sys.exit(f"error: {e}")
    print('images: ' + ', '.join(f"{k} {len(v)}" for k, v in datasets.items())
          + f"; classes {num_classes}")

    model = build_hash_model(config['backbone'], config['bits'], pretrained=config['pretrained'],
                             input_norm=config['input_norm'], small_input=config['small_input'])
    meta = dict(model.meta, num_classes=num_classes, method=method)
    model.to(device)
    loss_fn = make_loss(config, datasets['train'].labels, len(datasets['train'])).to(device)
    optimizer = build_optimizer(config, model.parameters())

    start_epoch, history = 0, []
    if os.path.exists(d['checkpoint']):
        try:
            ckpt = utils.load_checkpoint(d['checkpoint'])
            _check_resume(ckpt, config, d['checkpoint'], meta)
        except ValueError as e:
            sys.exit(f"error: {e}")
        model.load_state_dict(ckpt['model'])
        optimizer.load_state_dict(ckpt['optimizer'])
        loss_fn.load_state_dict(ckpt['loss'])
        start_epoch, history = ckpt['epoch'], list(ckpt['history'])
        if start_epoch > config['epochs']:
            sys.exit(f"error: {d['checkpoint']}: holds {start_epoch} epochs, more than "
                     f"epochs={config['epochs']}; set tag=... for a shorter run")
        print(f"resumed from {d['checkpoint']} at epoch {start_epoch}/{config['epochs']}")
    results_path = os.path.join(d['out'], 'results.json')
    if start_epoch >= config['epochs'] and os.path.isfile(results_path):
        import json
        with open(results_path) as f:
            results = json.load(f)
        same = all(results['config'].get(k) == v for k, v in config.items()
                   if k not in REUSE_FREE_KEYS)
        if results.get('epoch') == start_epoch and same:
            print(f"finished run found: {results_path} (nothing to train)")
            _print_final(results)
            return results

    log_path = os.path.join(d['out'], 'log.jsonl')
    timer = utils.Timer()
    gen = torch.Generator()
    for epoch in range(start_epoch, config['epochs']):
        # per-epoch seeding makes a resumed run identical to an uninterrupted one
        torch.manual_seed(config['seed'] * 100003 + epoch)
        gen.manual_seed(config['seed'] * 100003 + epoch)
        for group in optimizer.param_groups:
            group['lr'] = epoch_lr(config, epoch)
        model.train()
        loader = make_loader(datasets['train'], config['batch_size'], True,
                             config['num_workers'], gen)
        t0, total, n = time.time(), 0.0, 0
        for x, y, idx in loader:
            x, y, idx = x.to(device), y.to(device), idx.to(device)
            loss = loss_fn(model(x), y, idx, epoch)
            if not torch.isfinite(loss):
                sys.exit(f"error: non-finite loss {loss.item()} at epoch {epoch + 1}; stopping "
                         f"(checkpoint of epoch {epoch} kept at {d['checkpoint']})")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(x)
            n += len(x)
        record = {'epoch': epoch + 1, 'loss': total / n, 'time_s': round(time.time() - t0, 2)}
        last = epoch + 1 == config['epochs']
        if last or (config['eval_every'] > 0 and (epoch + 1) % config['eval_every'] == 0):
            metrics, codes = evaluate_all(model, datasets, config, d, device)
            record['map'] = metrics
        history.append(record)
        line = f"epoch {epoch + 1}/{config['epochs']} loss {record['loss']:.4f} " \
               f"({record['time_s']:.1f}s)"
        if 'map' in record:
            line += '  ' + '  '.join(f"MAP[{k}] {v:.4f}" for k, v in record['map'].items())
        print(line, flush=True)
        utils.append_jsonl(log_path, record)
        utils.save_checkpoint(d['checkpoint'], {
            'format': CHECKPOINT_FORMAT, 'model': model.state_dict(),
            'optimizer': optimizer.state_dict(), 'loss': loss_fn.state_dict(),
            'epoch': epoch + 1, 'config': config, 'meta': meta, 'history': history})

    if start_epoch >= config['epochs']:  # checkpoint complete but results missing: evaluate
        metrics, codes = evaluate_all(model, datasets, config, d, device)
        history[-1]['map'] = metrics
    else:
        metrics = history[-1]['map']
    for name, c in codes.items():
        np.savez_compressed(os.path.join(d['out'], f"codes_{name}.npz"), codes=c,
                            labels=datasets[name].labels)
    evals = [h for h in history if 'map' in h]
    best = {k: max((h['map'][k], h['epoch']) for h in evals) for k in metrics}
    results = {
        'run': d['run'], 'method': method, 'epoch': history[-1]['epoch'], 'topk': d['topk'],
        'final': metrics,  # D20: the figures reported by default
        'reported': config['report'],  # 'final' or 'best' (best-over-epochs, test-set selected)
        'best_over_epochs': {k: {'map': v[0], 'epoch': v[1]} for k, v in best.items()},
        'lists': dict(d['lists'], train=d['train_list']), 'num_classes': num_classes,
        'config': config, 'seed': config['seed'], 'git_commit': utils.git_commit(),
        'train_time_s': round(sum(h['time_s'] for h in history), 1),
        'wall_time_this_invocation_s': round(timer(), 1), 'history': history,
        'checkpoint': d['checkpoint'], 'device': device,
    }
    utils.write_json(results_path, results)
    _print_final(results)
    print(f"results: {results_path}")
    return results


def _print_final(results):
    k = results['topk']
    at = 'all' if k is None or k < 0 else k
    for name, v in results['final'].items():
        b = results['best_over_epochs'][name]
        final = f"final MAP@{at} [{name}] = {v:.4f}"
        best = f"best-over-epochs MAP@{at} [{name}] = {b['map']:.4f} (epoch {b['epoch']}, " \
               f"selected on the test queries)"
        if results.get('reported') == 'best':
            print(f"{best}   ({final})")
        else:
            print(f"{final}   ({best})")
