"""Discriminator D of BadHash (StarGAN-style, as in ProS-GAN; SPEC §1.5, §2.4, decision D7).

D outputs N+1 logits per image: the first N predict the class (one-/multi-hot), the last one is the
authenticity node with real = 0 and fake = 1 (SPEC §1.5). The module returns raw logits; the loss
presets decide whether to apply a sigmoid ('paper') or not ('code').
"""

import torch
import torch.nn as nn
from torch.nn.utils.parametrizations import spectral_norm


def _conv_out(size):
    """Spatial size after Conv k4 s2 p1."""
    return (size + 2 - 4) // 2 + 1


class Discriminator(nn.Module):
    """5 x [spectral_norm(Conv4x4 s2 p1, bias) + LeakyReLU(0.01)], channels 3 -> ndf -> ... -> 16 ndf,
    then Conv2d(16 ndf -> num_classes + 1, kernel = remaining spatial size, no bias, no SN), flattened
    to [B, num_classes + 1]. At 224 px the head kernel is 7x7 (global, not PatchGAN).

    Spectral norm is PyTorch's parametrization: u, v are buffers, one power iteration per forward in
    training mode.
    """

    def __init__(self, num_classes, image_size=224, ndf=64, num_layers=5):
        super().__init__()
        size = image_size
        for _ in range(num_layers):
            size = _conv_out(size)
        if image_size % 16 or size < 1:
            raise ValueError(f"image_size must be a multiple of 16 large enough for {num_layers} "
                             f"stride-2 convs (>= 32 for 5), got {image_size}")
        self.num_classes, self.image_size, self.head_kernel = num_classes, image_size, size
        layers, cin, cout = [], 3, ndf
        for _ in range(num_layers):
            layers += [spectral_norm(nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=True)),
                       nn.LeakyReLU(0.01)]
            cin, cout = cout, cout * 2
        self.main = nn.Sequential(*layers)
        self.head = nn.Conv2d(cin, num_classes + 1, size, bias=False)

    def forward(self, x):
        s = self.image_size
        if x.dim() != 4 or tuple(x.shape[1:]) != (3, s, s):
            raise ValueError(f"Discriminator built for [B, 3, {s}, {s}] images, got {tuple(x.shape)}")
        return self.head(self.main(x)).flatten(1)  # [B, N+1, 1, 1] -> [B, N+1], also for B = 1


def discriminator_targets(labels, fake):
    """[labels, flag] with flag 0 for real and 1 for fake on the last node (SPEC §1.5).

    labels: [B, N] (0/1 or smoothed); fake: bool. Returns float [B, N+1]."""
    labels = labels.float()
    flag = torch.full((labels.shape[0], 1), 1.0 if fake else 0.0, dtype=labels.dtype, device=labels.device)
    return torch.cat([labels, flag], dim=1)
