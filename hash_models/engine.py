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
Speed options (README "Speed and scale"): `dtype='bfloat16'` autocast for the forward passes
(losses, codes before sign and metrics stay float32), `channels_last`, the decoded-image cache
(`cache='disk'`), metrics on the GPU when training on one, and several processes under torchrun
(DistributedDataParallel, sharded encoding; rank 0 alone prints, logs, evaluates and saves).
"""
import math
import os
import sys
import time
import types

import numpy as np
import torch

import utils
from hash_models import build_hash_model, check_model_meta, file_sha1, freeze

CHECKPOINT_FORMAT = 1
# keys that may change between an interrupted run and its resumption
RESUME_FREE_KEYS = {'device', 'eval_every', 'epochs', 'report', 'queries',
                    'eval_batch_size', 'topk', 'cache', 'cache_dir'}
# keys that do not change any figure: a finished run is reused when only these differ. `dtype`
# and `channels_last` are absent: they change the floating-point rounding, so a finished float32
# run is not reused (nor resumed) as a bfloat16 one; set tag=... to keep both.
REUSE_FREE_KEYS = {'device', 'eval_batch_size', 'cache', 'cache_dir'}
# keys that change no figure of a split a finished run has encoded: a table cell reads a run made
# with other values of these (reproduce.py, read_ours)
CELL_FREE_KEYS = REUSE_FREE_KEYS | {'queries', 'eval_every', 'report', 'num_workers'}
# keys added after runs were stored, with the value those runs had in effect
LATER_KEYS = {'dtype': 'float32', 'channels_last': False, 'cache': 'none', 'cache_dir': 'cache',
              'init_from': '', 'init_parts': 'all', 'freeze': 'none', 'pretrained_sha1': '',
              'init_from_sha1': ''}
# MAP@K per dataset (SPEC D19): ImageNet and COCO use 1000 for the paper's tables; the small
# datasets are ranked over the whole database (DeepHash uses -1 for CIFAR-10).
TOPK_BY_DATASET = {'imagenet': 1000, 'imagenet100': 1000, 'coco': 1000, 'cifar10': -1,
                   'toy': -1, 'tiny-imagenet-10': -1, 'tiny-imagenet-100': 1000}


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
    if c['cache'] not in ('none', 'disk'):
        sys.exit(f"error: cache must be 'none' or 'disk', got {c['cache']!r}")
    return d


def make_loader(dataset, batch_size, shuffle, num_workers, generator=None, sampler=None,
                device='cpu', persistent=False):
    """DataLoader with pinned memory on CUDA; `persistent` keeps the workers between passes."""
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size,
                                       shuffle=shuffle if sampler is None else False,
                                       sampler=sampler, num_workers=num_workers,
                                       generator=generator, drop_last=False,
                                       pin_memory=str(device).startswith('cuda'),
                                       persistent_workers=persistent and num_workers > 0)


def shard(n, rank, world):
    """Indices of a contiguous 1/world share of range(n) for `rank`, padded with the last index to
    ceil(n / world) so that every process encodes the same number of images (the padding is cut
    off again after the gather)."""
    m = -(-n // world)
    return [min(i, n - 1) for i in range(rank * m, (rank + 1) * m)]


def eval_loader(dataset, config, device, rank=0, world=1):
    """The loader that encodes a dataset (this process's shard under torchrun); built once per run,
    its workers persist between evaluations."""
    if world > 1:
        dataset = torch.utils.data.Subset(dataset, shard(len(dataset), rank, world))
    return make_loader(dataset, config['eval_batch_size'], False, config['num_workers'],
                       device=device, persistent=True)


@torch.no_grad()
def encode(model, loader, device, n, dtype='float32', channels_last=False, desc='encode'):
    """sign(raw output) for every image, in list order (int8 {-1, 0, +1}), as a numpy array.

    Under torchrun every process encodes its shard (`eval_loader`) and the codes are gathered in
    rank order, i.e. list order; `n` cuts off the padding of the last shard. The forward runs
    under `dtype` autocast; the output is cast to float32 before sign.
    """
    from tqdm import tqdm
    model.eval()
    codes = []
    for x, _, _ in tqdm(loader, desc=desc, leave=False, disable=n < 5000 or utils.dist_info()[0]):
        with utils.autocast(device, dtype):
            out = model(utils.to_device(x, device, channels_last))
        codes.append(torch.sign(out.float()).to(torch.int8))
    codes = utils.all_gather_cat(torch.cat(codes))
    return codes[:n].cpu().numpy()


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


def _old(old_config, key):
    """A key of a stored config; keys added later read as their default (older runs had it)."""
    return old_config.get(key, LATER_KEYS.get(key))


def config_differences(old_config, config):
    """{key: (stored, planned)} for the keys outside CELL_FREE_KEYS where a finished run's stored
    config differs from the config a plan would run it with (its figures are another setting's)."""
    return {k: (_old(old_config, k), v) for k, v in config.items()
            if k not in CELL_FREE_KEYS and _old(old_config, k) != v}


def _check_resume(ckpt, config, path, meta):
    check_model_meta(ckpt.get('meta', {}), meta, path)
    old = ckpt.get('config', {})
    diff = [k for k in config if k not in RESUME_FREE_KEYS and _old(old, k) != config[k]]
    if diff:
        k = diff[0]
        raise ValueError(f"{path}: checkpoint was trained with {k}={old.get(k)!r}, this run has "
                         f"{k}={config[k]!r}; set tag=... for a new run or delete the checkpoint")


def evaluate_all(model, datasets, loaders, config, derived, device, main=True, reuse=None):
    """Encode database and every query split; MAP@topK of each query split against the database.

    Every process takes part in the (sharded) encoding; only the main process computes the
    metrics, on the GPU when the model is on one (evaluate.py's chunked CUDA path, same figures
    as on the CPU). reuse: {name: codes} already encoded by this checkpoint (`reusable_codes`)."""
    from evaluate import mean_average_precision
    reuse = reuse or {}
    utils.broadcast_buffers(model)  # encode every shard with the statistics rank 0 saves
    codes = {}
    for name in loaders:
        if name in reuse:
            print(f"reusing codes_{name}.npz: this checkpoint's codes of the unchanged list")
            codes[name] = reuse[name]
        else:
            codes[name] = encode(model, loaders[name], device, len(datasets[name]),
                                 config['dtype'], config['channels_last'], f"encode {name}")
    if not main:
        return None, None
    metric_device = device if str(device).startswith('cuda') else 'cpu'
    db = datasets['database']
    metrics = {}
    for name, ds in datasets.items():
        if name in ('train', 'database'):
            continue
        metrics[name] = float(mean_average_precision(codes[name], codes['database'], ds.labels,
                                                     db.labels, derived['topk'],
                                                     device=metric_device))
    return metrics, codes


def code_record(dataset, config, checkpoint):
    """What a split's codes are made from (README "Reuse rule"): the list file and its images
    (utils.list_record), the evaluation geometry and precision, and the checkpoint that encoded
    them (path, size and mtime: it is rewritten after every epoch). Saved inside codes_{split}.npz."""
    return dict(dataset.record(), geometry=dataset.transform.geometry_key(),
                dtype=config.get('dtype', 'float32'), channels_last=config.get('channels_last', False),
                checkpoint=os.path.abspath(checkpoint), checkpoint_stamp=utils.file_stamp(checkpoint))


def save_codes(path, codes, labels, record):
    """codes_{split}.npz: codes, labels and the provenance record (a JSON string), atomically."""
    import json
    import tempfile
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.tmp_', suffix='.npz')
    os.close(fd)
    try:
        np.savez_compressed(tmp, codes=codes, labels=labels,
                            provenance=np.array(json.dumps(record, sort_keys=True)))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def saved_codes(path, dataset, record, bits):
    """(codes, None) when `path` holds codes of exactly `record` (same list, images, geometry and
    checkpoint) for this list's labels; else (None, why not: a short phrase)."""
    if not os.path.isfile(path):
        return None, 'not encoded yet'
    try:
        with np.load(path) as z:
            why = utils.record_difference(utils.read_provenance(z), record)
            if why:
                return None, why
            c, labels = z['codes'], z['labels']
    except (OSError, ValueError, KeyError):  # an unreadable leftover: encode again
        return None, 'unreadable'
    if c.shape != (len(dataset), bits) or not np.array_equal(labels, dataset.labels):
        return None, 'shape or labels differ'
    return c, None


def reusable_codes(config, datasets, derived, world):
    """Split the evaluated lists into reusable and stale ones for the finished checkpoint:
    returns ({name: codes} whose saved record equals the current one, {name: why} for the others).
    Evaluating a finished model on new query lists (a clean victim on an attack's triggered
    queries) so encodes those lists only, and a list rewritten under the same path (new lines, or
    one image with new content) is encoded again, whatever the config says. Under torchrun every
    process must encode the same lists: a stale split there means encoding all of them."""
    reuse, stale = {}, {}
    for name, ds in datasets.items():
        if name == 'train':
            continue
        path = os.path.join(derived['out'], f"codes_{name}.npz")
        codes, why = saved_codes(path, ds, code_record(ds, config, derived['checkpoint']),
                                 config['bits'])
        if why:
            stale[name] = why
        else:
            reuse[name] = codes
    if world > 1 and stale:
        reuse = {}
    return reuse, stale


def load_datasets(config, derived, rank):
    """The training list and every evaluated list, through the decoded-image cache if asked for
    (under torchrun rank 0 builds the caches while the others wait, then they reuse them)."""
    d, c = derived, config
    tf_train = utils.build_transform(c['image_size'], c['resize_size'], c['augment'])
    tf_eval = utils.build_transform(c['image_size'], c['resize_size'], 'none')
    cache = c['cache_dir'] if c['cache'] == 'disk' else None
    if rank != 0:
        utils.barrier()
    try:
        datasets = {'train': utils.ImageList(d['train_list'], transform=tf_train, cache_dir=cache,
                                             num_workers=c['num_workers'])}
        num_classes = datasets['train'].labels.shape[1]
        for name, path in d['lists'].items():
            datasets[name] = utils.ImageList(path, transform=tf_eval, num_classes=num_classes,
                                             cache_dir=cache, num_workers=c['num_workers'])
    except utils.ListError as e:
        sys.exit(f"error: {e}")
    if rank == 0:
        utils.barrier()
    return datasets, num_classes


def build_model(config, rank=0):
    """The hash model of a run: backbone, initial weights (pretrained: True / False / a
    torchvision-format file; init_from: another run's checkpoint, all of it or its trunk only) and
    the frozen stages (freeze). Returns the model and the config with `pretrained_sha1` and
    `init_from_sha1`, the digests of those files ('' when unused), so that a run is resumed or
    reused only when it would start from the same weights."""
    try:
        net = build_hash_model(config['backbone'], config['bits'], pretrained=config['pretrained'],
                               input_norm=config['input_norm'], small_input=config['small_input'])
    except ValueError as e:
        sys.exit(f"error: {e}")
    config = dict(config, pretrained_sha1=net.meta.get('pretrained_sha1', ''), init_from_sha1='')
    if rank == 0 and config['pretrained_sha1']:
        print(f"initial trunk weights from {config['pretrained']} (sha1 {config['pretrained_sha1']})")
    parts = config.get('init_parts', 'all')
    if parts not in ('all', 'trunk'):
        sys.exit(f"error: init_parts must be 'all' or 'trunk', got {parts!r}")
    if config.get('init_from'):  # our option: weights of another run of this backbone / bit length
        try:
            init = utils.load_checkpoint(config['init_from'])
            check_model_meta(init.get('meta', {}), {'backbone': config['backbone'].lower(),
                                                     'bits': config['bits']}, config['init_from'])
            config['init_from_sha1'] = file_sha1(config['init_from'])
            if parts == 'all':
                net.load_state_dict(init['model'])
            else:  # the trunk only; the hash layer keeps its fresh initialisation (ladder rung R1)
                trunk = {k: v for k, v in init['model'].items() if k.startswith('trunk.')}
                missing, unexpected = net.load_state_dict(trunk, strict=False)
                if [k for k in missing if not k.startswith('hash_layer.')] or unexpected:
                    raise ValueError(f"{config['init_from']}: trunk keys do not match this model")
        except (ValueError, KeyError, RuntimeError) as e:
            sys.exit(f"error: init_from: {str(e).splitlines()[0]}")
        if rank == 0:
            print(f"initial weights from {config['init_from']} (epoch {init.get('epoch')}"
                  + ('' if parts == 'all' else ', trunk only: a new hash layer') + ')')
    try:
        frozen = freeze(net, config.get('freeze', 'none'))
    except ValueError as e:
        sys.exit(f"error: {e}")
    if rank == 0 and frozen:
        n = sum(p.numel() for p in net.parameters() if p.requires_grad)
        print(f"frozen stages: {', '.join(frozen)} (parameters and BatchNorm statistics); "
              f"{n:,} parameters train")
    return net, config


def run(config, method, make_loss):
    """Train (or resume, or reuse) a hashing model and evaluate it. Returns the results dict.
    Stages: _setup (data, model, loss, optimiser), _resume (from the checkpoint), _reuse_finished
    (a finished run whose codes still match), _train (epoch by epoch, a checkpoint after each),
    then encode and write the results."""
    r = _setup(config, method, make_loss)
    start_epoch, history = _resume(r.d, r.config, r.meta, r.datasets['train'], r.net, r.optimizer,
                                   r.loss_fn, r.say)
    reuse = {}
    if start_epoch >= r.config['epochs']:
        results, reuse = _reuse_finished(r, start_epoch)
        if results is not None:
            return results
    timer = utils.Timer()
    codes = _train(r, start_epoch, history)
    if start_epoch >= r.config['epochs']:  # checkpoint complete: results missing, other queries or stale
        metrics, codes = evaluate_all(r.net, r.datasets, r.loaders, r.config, r.d, r.device, r.main,
                                      reuse)
        if r.main:
            history[-1]['map'] = metrics
    utils.barrier()  # the other processes stop here; rank 0 writes the results
    if not r.main:
        return None
    return _write_results(r.d, method, r.config, r.datasets, codes, history, r.num_classes, r.device,
                          r.world, timer)


def _setup(config, method, make_loss):
    """Everything a run needs, as a namespace: derived paths (d), the process group (rank, world,
    device, main, say), datasets and evaluation loaders, the model with its meta, loss, optimiser."""
    d = derive(config, method)
    rank, world, device = utils.init_distributed(utils.resolve_device(config['device']))
    main = rank == 0
    say = print if main else _quiet
    utils.check_dtype(config['dtype'], device)
    if config['batch_size'] % world:
        sys.exit(f"error: batch_size={config['batch_size']} must be divisible by the "
                 f"{world} processes (it is the global batch; each process takes an equal share)")
    utils.seed_everything(config['seed'])
    say(f"run {d['run']}  device {device}  checkpoint {d['checkpoint']}  topK {d['topk']}"
        + (f"  processes {world} (DistributedDataParallel)" if world > 1 else ''))

    datasets, num_classes = load_datasets(config, d, rank)
    say('images: ' + ', '.join(f"{k} {len(v)}" for k, v in datasets.items())
        + f"; classes {num_classes}")
    loaders = {name: eval_loader(ds, config, device, rank, world)
               for name, ds in datasets.items() if name != 'train'}

    net, config = build_model(config, rank)
    meta = dict(net.meta, num_classes=num_classes, method=method)
    net.to(device)
    if config['channels_last']:
        net.to(memory_format=torch.channels_last)
    loss_fn = make_loss(config, datasets['train'].labels, len(datasets['train'])).to(device)
    optimizer = build_optimizer(config, [p for p in net.parameters() if p.requires_grad])
    return types.SimpleNamespace(
        config=config, d=d, rank=rank, world=world, device=device, main=main, say=say,
        datasets=datasets, num_classes=num_classes, loaders=loaders, net=net, meta=meta,
        loss_fn=loss_fn, optimizer=optimizer)


def _reuse_finished(r, start_epoch):
    """A finished checkpoint: (its results, {}) when every split's codes still match what they were
    made from (README "Reuse rule"), else (None, the codes that can be reused) so that exactly the
    splits that differ are encoded again."""
    reuse, stale = reusable_codes(r.config, r.datasets, r.d, r.world)
    results_path = os.path.join(r.d['out'], 'results.json')
    results = _finished_results(results_path, r.config, start_epoch)
    if results is not None and not stale:
        r.say(f"finished run found: {results_path} (nothing to train)")
        if r.main:
            _print_final(results)
        return results, reuse
    if stale:  # one line, whatever the config string says
        r.say((f"finished run found: {results_path}, but" if results is not None else
               f"finished checkpoint {r.d['checkpoint']}:") + ' encoding '
              + ', '.join(f"codes_{k}.npz ({why})" for k, why in stale.items()))
    return None, reuse


def _train(r, start_epoch, history):
    """Epochs start_epoch+1 .. epochs: evaluate where due, log, checkpoint after each. Returns the
    codes of the last evaluation (None when no epoch ran)."""
    config, net = r.config, r.net
    model, sampler, codes = net, None, None
    if r.world > 1:
        # DistributedSampler: a seeded permutation per epoch (set_epoch), rank r takes every
        # world-th index, padded with repeats to equal shares; gradients are averaged by DDP.
        model = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[r.device] if r.device.startswith('cuda') else None)
        sampler = torch.utils.data.distributed.DistributedSampler(
            r.datasets['train'], num_replicas=r.world, rank=r.rank, shuffle=True,
            seed=config['seed'])
    gen = torch.Generator()
    for epoch in range(start_epoch, config['epochs']):
        record = _train_epoch(model, r.datasets['train'], r.loss_fn, r.optimizer, config, r.d,
                              epoch, gen, sampler, r.device, r.world)
        last = epoch + 1 == config['epochs']
        if last or (config['eval_every'] > 0 and (epoch + 1) % config['eval_every'] == 0):
            metrics, codes = evaluate_all(net, r.datasets, r.loaders, config, r.d, r.device, r.main)
            record['map'] = metrics
        history.append(record)
        if not r.main:
            continue
        line = f"epoch {epoch + 1}/{config['epochs']} loss {record['loss']:.4f} " \
               f"({record['time_s']:.1f}s)"
        if 'map' in record:
            line += '  ' + '  '.join(f"MAP[{k}] {v:.4f}" for k, v in record['map'].items())
        print(line, flush=True)
        utils.append_jsonl(os.path.join(r.d['out'], 'log.jsonl'), record)
        utils.save_checkpoint(r.d['checkpoint'], {
            'format': CHECKPOINT_FORMAT, 'model': net.state_dict(),
            'optimizer': r.optimizer.state_dict(), 'loss': r.loss_fn.state_dict(),
            'epoch': epoch + 1, 'config': config, 'meta': r.meta, 'history': history,
            'train_record': r.datasets['train'].record()})  # what it was trained on (Reuse rule)
    return codes


def _resume(d, config, meta, train_set, net, optimizer, loss_fn, say):
    """Load the run's checkpoint when there is one (same recipe, same training list, at most
    `epochs` epochs: else a one-line exit); returns (epochs done, history)."""
    if not os.path.exists(d['checkpoint']):
        return 0, []
    try:
        ckpt = utils.load_checkpoint(d['checkpoint'])
        _check_resume(ckpt, config, d['checkpoint'], meta)
    except ValueError as e:
        sys.exit(f"error: {e}")
    why = _train_list_changed(ckpt, train_set)
    if why:
        sys.exit(f"error: {d['checkpoint']}: trained on {d['train_list']} as it was before "
                 f"({why}); set tag=... for a new run or delete the checkpoint")
    net.load_state_dict(ckpt['model'])
    optimizer.load_state_dict(ckpt['optimizer'])
    loss_fn.load_state_dict(ckpt['loss'])
    start_epoch, history = ckpt['epoch'], list(ckpt['history'])
    if start_epoch > config['epochs']:
        sys.exit(f"error: {d['checkpoint']}: holds {start_epoch} epochs, more than "
                 f"epochs={config['epochs']}; set tag=... for a shorter run")
    say(f"resumed from {d['checkpoint']} at epoch {start_epoch}/{config['epochs']}")
    return start_epoch, history


def _train_epoch(model, train_set, loss_fn, optimizer, config, d, epoch, gen, sampler, device, world):
    """One epoch over the training list; returns its log record (epoch, mean loss, time)."""
    # per-epoch seeding makes a resumed run identical to an uninterrupted one
    torch.manual_seed(config['seed'] * 100003 + epoch)
    gen.manual_seed(config['seed'] * 100003 + epoch)
    if sampler is not None:
        sampler.set_epoch(epoch)
    for group in optimizer.param_groups:
        group['lr'] = epoch_lr(config, epoch)
    model.train()
    # a new loader each epoch: its workers are reseeded from (seed, epoch), which keeps a
    # resumed run identical to an uninterrupted one (persistent workers would not be)
    loader = make_loader(train_set, config['batch_size'] // world, True, config['num_workers'], gen,
                         sampler, device)
    t0, total, n = time.time(), 0.0, 0
    for x, y, idx in loader:
        x = utils.to_device(x, device, config['channels_last'])
        y, idx = y.to(device, non_blocking=True), idx.to(device, non_blocking=True)
        with utils.autocast(device, config['dtype']):
            out = model(x)
        loss = loss_fn(out.float(), y, idx, epoch)  # losses in float32
        if not torch.isfinite(loss):
            sys.exit(f"error: non-finite loss {loss.item()} at epoch {epoch + 1}; stopping "
                     f"(checkpoint of epoch {epoch} kept at {d['checkpoint']})")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(x)
        n += len(x)
    if world > 1:  # the logged loss is the mean over every process's images
        sums = torch.tensor([total, n], dtype=torch.float64)
        torch.distributed.all_reduce(sums)
        total, n = sums.tolist()
    return {'epoch': epoch + 1, 'loss': total / n, 'time_s': round(time.time() - t0, 2)}


def _write_results(d, method, config, datasets, codes, history, num_classes, device, world, timer):
    """Save each split's codes with what they were made from, and results.json (final and
    best-over-epochs MAP, lists, config, times, provenance); returns the results dict."""
    metrics = history[-1]['map']
    records = {name: code_record(datasets[name], config, d['checkpoint']) for name in codes}
    for name, c in codes.items():
        save_codes(os.path.join(d['out'], f"codes_{name}.npz"), c, datasets[name].labels,
                   records[name])
    evals = [h for h in history if 'map' in h]
    best = {k: max((h['map'][k], h['epoch']) for h in evals) for k in metrics}
    results = {
        'run': d['run'], 'method': method, 'epoch': history[-1]['epoch'], 'topk': d['topk'],
        'final': metrics,  # D20: the figures reported by default
        'reported': config['report'],  # 'final' or 'best' (best-over-epochs, test-set selected)
        'best_over_epochs': {k: {'map': v[0], 'epoch': v[1]} for k, v in best.items()},
        'lists': dict(d['lists'], train=d['train_list']), 'num_classes': num_classes,
        'config': config, 'seed': config['seed'], 'git_commit': utils.git_commit(),
        'machine': utils.machine(),
        'train_time_s': round(sum(h['time_s'] for h in history), 1),
        'wall_time_this_invocation_s': round(timer(), 1), 'history': history,
        'checkpoint': d['checkpoint'], 'device': device, 'processes': world,
        # what each split's codes were made from (also inside its .npz, where reuse reads it)
        'provenance': records,
    }
    results_path = os.path.join(d['out'], 'results.json')
    utils.write_json(results_path, results)
    _print_final(results)
    print(f"results: {results_path}")
    return results


def _train_list_changed(ckpt, train_set):
    """Why a checkpoint's training list differs from the one given now (its content or its images,
    e.g. a poisoned list made again under the same path), or None. Checkpoints written before these
    records cannot tell: a note says so and they are taken as they are."""
    old = ckpt.get('train_record')
    if old is None:
        if utils.dist_info()[0] == 0:
            print(f"note: the checkpoint has no record of its training list (written before them); "
                  f"assuming it was trained on {train_set.list_file} as it is now")
        return None
    return utils.record_difference(old, train_set.record(), ('list_sha1', 'images_sha1', 'n'))


def _finished_results(path, config, epoch):
    """The results of this finished run when they were written for this epoch and config (keys
    that change no figure aside), else None."""
    import json
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            results = json.load(f)
        same = all(_old(results['config'], k) == v for k, v in config.items()
                   if k not in REUSE_FREE_KEYS)
    except (OSError, ValueError, KeyError):
        return None
    return results if same and results.get('epoch') == epoch else None


def _quiet(*args, **kwargs):
    """print() for the processes other than rank 0."""


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
