"""Hashing networks: a torchvision backbone whose last layer is replaced by a K-unit hash layer.

`build_hash_model(backbone, bits, ...)` is the one entry point. Every model takes [0, 1] images
(SPEC D14: the official code feeds un-normalised images); `input_norm='imagenet'` normalises inside
the model so callers still pass [0, 1].
`pretrained` is False, True (torchvision's ImageNet weights) or the path of a torchvision-format
state dict (pretrain.py). `trunk_stages(model)` names the trunk's depth stages per backbone family
and `freeze(model, stage)` freezes the trunk up to one of them (parameters and BatchNorm statistics). The forward returns the raw hash-layer output; losses apply
tanh and evaluation applies sign.
"""
from .backbones import (BACKBONES, HashModel, build_hash_model, check_model_meta, file_sha1, freeze,
                        model_meta, torchvision_model, trunk_stages)

__all__ = ['BACKBONES', 'HashModel', 'build_hash_model', 'model_meta', 'check_model_meta',
           'trunk_stages', 'freeze', 'torchvision_model', 'file_sha1']
