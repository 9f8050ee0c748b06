"""Backbones for hashing (SPEC §4.1, D16).

ResNet18/34/50/101/152: torchvision trunk up to the global pool, then Linear(features, K) with
weights ~ N(0, 0.01) and zero bias (DeepHash). VGG11/13/16/19: torchvision features + pool +
fc6/fc7 (kept from the classifier) + Linear(4096, K) (official BadHash `Vgg`). AlexNet: DeepHash's
layout. DenseNet121: fixed version of the official broken class (D16): features -> ReLU -> global
average pool -> Linear(1024, K), i.e. "replace the last FC layer" (paper L234).

pretrained: False (from scratch), True (torchvision's ImageNet-1k weights, cached or downloadable),
or the path of a torchvision-format state dict (pretrain.py's, or torchvision's own .pth for
offline clusters): every trunk key must be there with the model's shape; the classifier head of
the file (any class count) is not used, the hash layer is new.
"""
import os

import torch
import torch.nn as nn

from utils import file_sha1

BACKBONES = ('resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152',
             'vgg11', 'vgg13', 'vgg16', 'vgg19', 'densenet121', 'alexnet')

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PretrainedWeightsMissing(RuntimeError):
    pass


def _imagenet_weights(name):
    """torchvision's ImageNet-1k V1 weights (what DeepHash's pretrained=True loaded), offline-safe."""
    import torchvision
    weights = torchvision.models.get_model_weights(name).IMAGENET1K_V1
    fname = os.path.basename(weights.url)
    cached = os.path.join(torch.hub.get_dir(), 'checkpoints', fname)
    if os.path.isfile(cached):
        return weights
    try:  # downloads into the cache above; fails fast when offline
        weights.get_state_dict(progress=False)
        return weights
    except Exception as e:
        raise PretrainedWeightsMissing(
            f"ImageNet weights for {name} are not cached and could not be downloaded "
            f"({type(e).__name__}). Put {fname} (from {weights.url}) into "
            f"{os.path.dirname(cached)}/, or set pretrained=False to train from scratch.") from None


# the torchvision classifier head per family: not part of the hash model, so not loaded
HEAD_PREFIX = {'resnet': 'fc.', 'vgg': 'classifier.6.', 'alexnet': 'classifier.6.',
               'densenet': 'classifier.'}


def _family(name):
    return next(f for f in HEAD_PREFIX if name.startswith(f))




def _keys_line(keys, n=3):
    keys = sorted(keys)
    return ', '.join(keys[:n]) + (f" (+{len(keys) - n} more)" if len(keys) > n else '')


def load_torchvision_weights(net, name, path):
    """Load a torchvision-format state dict into the torchvision model `net` (before it is cut into
    trunk + hash layer). The head keys are skipped; a missing, unexpected or misshapen trunk key is
    a one-line ValueError naming the file and the keys."""
    if not os.path.isfile(path):
        raise ValueError(f"pretrained={path}: file not found (a torchvision-format state dict, "
                         f"e.g. written by pretrain.py)")
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:
        raise ValueError(f"{path}: not a readable state dict ({type(e).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        hint = ' (a hashing checkpoint: use init_from=...)' if isinstance(state, dict) and 'model' in state else ''
        raise ValueError(f"{path}: not a torchvision-format state dict of tensors{hint}")
    head = HEAD_PREFIX[_family(name)]
    own = {k: v for k, v in net.state_dict().items() if not k.startswith(head)}
    given = {k: v for k, v in state.items() if not k.startswith(head)}
    # BatchNorm counters are absent from torchvision's older .pth files; they do not change outputs
    missing = [k for k in own if k not in given and not k.endswith('num_batches_tracked')]
    unexpected = [k for k in given if k not in own]
    shapes = [f"{k} {list(given[k].shape)} vs {list(own[k].shape)}" for k in own
              if k in given and given[k].shape != own[k].shape]
    problems = []
    if missing:
        problems.append(f"missing keys {_keys_line(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_keys_line(unexpected)}")
    if shapes:
        problems.append(f"shape mismatch (file vs model) {_keys_line(shapes, 2)}")
    if problems:
        raise ValueError(f"{path}: not a {name} state dict for this model: " + '; '.join(problems)
                         + ('' if not name.startswith('resnet') else
                            " (a 3x3 conv1 means small_input=True)"))
    net.load_state_dict(given, strict=False)


class HashModel(nn.Module):
    """trunk -> hash layer. Input [0, 1] images; output raw hash-layer values [B, K]."""

    def __init__(self, trunk, hash_layer, input_norm='none'):
        super().__init__()
        self.trunk = trunk
        self.hash_layer = hash_layer
        if input_norm not in ('none', 'imagenet'):
            raise ValueError(f"input_norm must be 'none' or 'imagenet', got {input_norm!r}")
        self.input_norm = input_norm
        self.register_buffer('mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    frozen_modules = ()  # set by freeze(): kept in eval mode by train()

    def train(self, mode=True):
        """nn.Module.train, except that frozen stages stay in eval mode (their BatchNorm running
        statistics and dropout do not change)."""
        super().train(mode)
        for m in self.frozen_modules:
            m.eval()
        return self

    def forward(self, x):
        if self.input_norm == 'imagenet':
            x = (x - self.mean) / self.std
        return self.hash_layer(self.trunk(x))


class _ResNetTrunk(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.body = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool,
                                  net.layer1, net.layer2, net.layer3, net.layer4, net.avgpool)

    def forward(self, x):
        return torch.flatten(self.body(x), 1)


class _VGGTrunk(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.features, self.avgpool = net.features, net.avgpool
        # fc6, ReLU, Dropout, fc7, ReLU, Dropout (the pretrained part of the classifier)
        self.fc = nn.Sequential(*list(net.classifier.children())[:6])

    def forward(self, x):
        return self.fc(torch.flatten(self.avgpool(self.features(x)), 1))


class _AlexTrunk(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.features, self.avgpool = net.features, net.avgpool
        cl = net.classifier  # Dropout, fc6, ReLU, Dropout, fc7, ReLU, fc8
        self.fc = nn.Sequential(*list(cl.children())[:6])

    def forward(self, x):
        return self.fc(torch.flatten(self.avgpool(self.features(x)), 1))


class _DenseTrunk(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.features = net.features

    def forward(self, x):
        x = torch.relu(self.features(x))
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)


def build_hash_model(backbone, bits, pretrained=False, input_norm='none', small_input=False):
    """A hashing network.

    backbone: one of BACKBONES. bits: hash length K. pretrained: True loads torchvision's
    ImageNet-1k weights (cached or downloadable, otherwise a PretrainedWeightsMissing error that
    says where to put the file); a path loads that torchvision-format state dict
    (load_torchvision_weights); False or '' = random initialisation. small_input: for 32-64 px
    images, ResNets get a 3x3 stride-1 first convolution (the max-pool is kept); other backbones
    are unchanged.
    """
    name = backbone.lower()
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
    if not isinstance(bits, int) or bits < 1:
        raise ValueError(f"bits must be a positive int, got {bits!r}")
    path = pretrained if isinstance(pretrained, str) and pretrained else None
    weights = _imagenet_weights(name) if pretrained is True else None
    net = torchvision_model(name, small_input, weights=weights)
    if path:
        load_torchvision_weights(net, name, path)
    if name.startswith('resnet'):
        trunk, width = _ResNetTrunk(net), net.fc.in_features
        hash_layer = nn.Linear(width, bits)
        nn.init.normal_(hash_layer.weight, 0.0, 0.01)  # DeepHash ResNet init
        nn.init.zeros_(hash_layer.bias)
    elif name.startswith('vgg'):
        trunk, hash_layer = _VGGTrunk(net), nn.Linear(4096, bits)
    elif name == 'alexnet':
        trunk, hash_layer = _AlexTrunk(net), nn.Linear(4096, bits)
    else:  # densenet121, fixed head (D16)
        trunk, hash_layer = _DenseTrunk(net), nn.Linear(net.classifier.in_features, bits)
    model = HashModel(trunk, hash_layer, input_norm=input_norm)
    model.meta = {'backbone': name, 'bits': bits, 'input_norm': input_norm,
                  'small_input': bool(small_input)}
    if path:  # what the weights were made from, recorded beside them
        model.meta.update(pretrained=path, pretrained_sha1=file_sha1(path))
    return model


def _split_at_pools(seq, prefix):
    """A VGG / AlexNet `features` Sequential cut after each max-pool: block1, block2, ..."""
    blocks, cur = [], []
    for m in seq:
        cur.append(m)
        if isinstance(m, nn.MaxPool2d):
            blocks.append(cur)
            cur = []
    if cur:
        blocks[-1].extend(cur)
    return [(f"{prefix}{i + 1}", b) for i, b in enumerate(blocks)]


def trunk_stages(model):
    """The trunk of a HashModel as named depth stages, input first: [(name, [modules])].

        resnet*      stem (conv1, bn1, relu, maxpool), layer1, layer2, layer3, layer4
        vgg*         block1 .. block5 (features cut after each max-pool), fc6, fc7
        alexnet      block1 .. block3, fc6, fc7
        densenet121  stem (conv0, norm0, relu0, pool0), block1 .. block3 (dense block + transition),
                     block4 (dense block + norm5)
    Shared by the `freeze` option of CSQ.py / HashNet.py and by defenses that act on shallow layers.
    """
    name, t = model.meta['backbone'], model.trunk
    if name.startswith('resnet'):
        b = list(t.body)
        return [('stem', b[0:4]), ('layer1', [b[4]]), ('layer2', [b[5]]), ('layer3', [b[6]]),
                ('layer4', [b[7]])]
    if name.startswith('vgg') or name == 'alexnet':
        fc = list(t.fc)  # Linear, ReLU, Dropout, Linear, ReLU, Dropout
        return _split_at_pools(t.features, 'block') + [('fc6', fc[0:3]), ('fc7', fc[3:6])]
    f = dict(t.features.named_children())  # densenet121
    return [('stem', [f['conv0'], f['norm0'], f['relu0'], f['pool0']]),
            ('block1', [f['denseblock1'], f['transition1']]),
            ('block2', [f['denseblock2'], f['transition2']]),
            ('block3', [f['denseblock3'], f['transition3']]),
            ('block4', [f['denseblock4'], f['norm5']])]


def freeze(model, upto):
    """Freeze the trunk from the input up to and including stage `upto` (a trunk_stages name), or
    all of it ('trunk'); 'none' freezes nothing. Frozen parameters get requires_grad=False and the
    frozen modules stay in eval mode under model.train(), so neither their weights nor their
    BatchNorm running statistics change in training. Returns the frozen stage names."""
    stages = trunk_stages(model)
    names = [n for n, _ in stages]
    if upto == 'none':
        return []
    if upto != 'trunk' and upto not in names:
        raise ValueError(f"freeze must be 'none', 'trunk' or a stage of {model.meta['backbone']}: "
                         f"{', '.join(names)}; got {upto!r}")
    k = len(stages) if upto == 'trunk' else names.index(upto) + 1
    modules = [m for _, ms in stages[:k] for m in ms]
    for m in modules:
        for p in m.parameters():
            p.requires_grad_(False)
    model.frozen_modules = tuple(modules)
    model.train(model.training)
    return names[:k]


def torchvision_model(name, small_input=False, num_classes=1000, weights=None):
    """The torchvision classifier behind a hash model (pretrain.py trains it as it is): ResNets
    with small_input get the 3x3 stride-1 first convolution."""
    import torchvision
    kwargs = {'weights': weights} if weights is not None else {'weights': None, 'num_classes': num_classes}
    net = getattr(torchvision.models, name)(**kwargs)
    if name.startswith('resnet') and small_input:
        net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    return net


def model_meta(model):
    return dict(model.meta)


def check_model_meta(meta, expected, path):
    """One-line error when a checkpoint was made for another backbone / bit length / input."""
    for key in ('backbone', 'bits', 'input_norm', 'small_input'):
        if key in expected and meta.get(key) != expected[key]:
            raise ValueError(f"{path}: checkpoint is for {key}={meta.get(key)!r}, "
                             f"expected {key}={expected[key]!r}")
