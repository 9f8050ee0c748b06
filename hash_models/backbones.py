"""Backbones for hashing (SPEC §4.1, D16).

ResNet18/34/50/101/152: torchvision trunk up to the global pool, then Linear(features, K) with
weights ~ N(0, 0.01) and zero bias (DeepHash). VGG11/13/16/19: torchvision features + pool +
fc6/fc7 (kept from the classifier) + Linear(4096, K) (official BadHash `Vgg`). AlexNet: DeepHash's
layout. DenseNet121: fixed version of the official broken class (D16): features -> ReLU -> global
average pool -> Linear(1024, K), i.e. "replace the last FC layer" (paper L234).
"""
import os

import torch
import torch.nn as nn

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

    backbone: one of BACKBONES. bits: hash length K. pretrained: load torchvision's ImageNet-1k
    weights (cached or downloadable, otherwise a PretrainedWeightsMissing error that says where
    to put the file). small_input: for 32-64 px images trained from scratch, ResNets get a 3x3
    stride-1 first convolution (the max-pool is kept); other backbones are unchanged.
    """
    import torchvision
    name = backbone.lower()
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
    if not isinstance(bits, int) or bits < 1:
        raise ValueError(f"bits must be a positive int, got {bits!r}")
    weights = _imagenet_weights(name) if pretrained else None
    net = getattr(torchvision.models, name)(weights=weights)
    if name.startswith('resnet'):
        if small_input:
            net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
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
    return model


def model_meta(model):
    return dict(model.meta)


def check_model_meta(meta, expected, path):
    """One-line error when a checkpoint was made for another backbone / bit length / input."""
    for key in ('backbone', 'bits', 'input_norm', 'small_input'):
        if key in expected and meta.get(key) != expected[key]:
            raise ValueError(f"{path}: checkpoint is for {key}={meta.get(key)!r}, "
                             f"expected {key}={expected[key]!r}")
