"""Trigger generator G(x, r_b) of BadHash (the ProS-GAN generator; SPEC §2.4, decision D7).

G takes an ImageNet-normalised image (decision D8, see `normalize_for_generator`) and the LabCLN
feature r_b of the confusing label, and returns a full image through tanh (not an additive residual).
With the defaults (image_size 224, feat_dim 512, ngf 64, 3 residual blocks per side) the layer
shapes and the parameter count (21,454,121) equal the official network.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


# ImageNet statistics applied only to the generator input (SPEC §2.2, D8)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize_for_generator(x):
    """[0,1] image batch [B,3,H,W] -> ImageNet-normalised batch, the generator's input (D8)."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def _up(cin, cout):
    """Transposed conv k4 s2 p1 (doubles H, W), no bias, InstanceNorm (affine=False), ReLU."""
    return [nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False),
            nn.InstanceNorm2d(cout), nn.ReLU(inplace=True)]


class ResidualBlock(nn.Module):
    """x + [Conv3x3 (no bias), IN, ReLU, Conv3x3 (no bias), IN](x)."""

    def __init__(self, ch):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.InstanceNorm2d(ch), nn.ReLU(inplace=True),
            nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.InstanceNorm2d(ch),
        )

    def forward(self, x):
        return x + self.body(x)


class LabelEncoder(nn.Module):
    """r_b [B, feat_dim] -> label map [B, 3, S, S].

    Linear(feat_dim, c0 * (S/16)^2) + ReLU, reshape to [c0, S/16, S/16], four upsampling blocks
    c0 -> c0/2 -> c0/4 -> c0/8 -> c0/16, then Conv3x3(c0/16 -> 3, no bias). c0 = 2 * ngf
    (128 -> 64 -> 32 -> 16 -> 8 at the default ngf 64, as in the official net)."""

    def __init__(self, image_size, feat_dim, ngf):
        super().__init__()
        self.base = image_size // 16
        self.c0 = 2 * ngf
        chans = [self.c0, self.c0 // 2, self.c0 // 4, self.c0 // 8, self.c0 // 16]
        self.fc = nn.Sequential(nn.Linear(feat_dim, self.c0 * self.base * self.base), nn.ReLU(inplace=True))
        layers = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += _up(cin, cout)
        layers.append(nn.Conv2d(chans[-1], 3, 3, padding=1, bias=False))
        self.up = nn.Sequential(*layers)

    def forward(self, r_b):
        x = self.fc(r_b).view(r_b.shape[0], self.c0, self.base, self.base)
        return self.up(x)


class Generator(nn.Module):
    """BadHash / ProS-GAN generator (SPEC §2.4).

    forward(x_norm [B,3,S,S] ImageNet-normalised, r_b [B,feat_dim]) -> image [B,3,S,S] in [-1,1].
    Encoder: concat(label map, x_norm) (6 ch) -> Conv7x7(6->ngf, bias)+IN+ReLU ->
    2 x [Conv4x4 s2 p1 (bias)+IN+ReLU] (ngf -> 2ngf -> 4ngf) -> num_resblocks ResBlocks(4ngf).
    Decoder: num_resblocks ResBlocks(4ngf) -> 2 x [ConvT4x4 s2 p1 (no bias)+IN+ReLU] (4ngf -> 2ngf -> ngf).
    Head: concat(decoder out, x_norm) (ngf+3 ch) -> Conv3x3(-> 3, no bias) -> Tanh.
    All InstanceNorm layers have affine=False. image_size must be divisible by 16.
    lowpass = k > 1 (our option, issue 11; 1 = paper): the head's output averaged over k x k blocks and
    upsampled bilinearly back to S x S, a low-frequency pattern, still in [-1, 1] (a convex combination);
    for g_output='residual', where it is the trigger. Low-frequency perturbations carry over to
    networks they were not made against better (Guo et al., UAI 2019; Sharma et al., IJCAI 2019).
    """

    def __init__(self, image_size=224, feat_dim=512, ngf=64, num_resblocks=3, lowpass=1):
        super().__init__()
        if image_size % 16 or image_size <= 0:
            raise ValueError(f"image_size must be a positive multiple of 16, got {image_size}")
        if ngf % 8 or ngf <= 0:
            raise ValueError(f"ngf must be a positive multiple of 8 (label-encoder widths 2ngf..ngf/8), got {ngf}")
        if lowpass < 1 or image_size % lowpass:
            raise ValueError(f"lowpass must be >= 1 and divide image_size={image_size}, got {lowpass}")
        self.image_size, self.feat_dim, self.ngf, self.lowpass = image_size, feat_dim, ngf, lowpass
        self.label_encoder = LabelEncoder(image_size, feat_dim, ngf)

        enc = [nn.Conv2d(6, ngf, 7, padding=3, bias=True), nn.InstanceNorm2d(ngf), nn.ReLU(inplace=True)]
        ch = ngf
        for _ in range(2):
            enc += [nn.Conv2d(ch, 2 * ch, 4, stride=2, padding=1, bias=True),
                    nn.InstanceNorm2d(2 * ch), nn.ReLU(inplace=True)]
            ch *= 2
        enc += [ResidualBlock(ch) for _ in range(num_resblocks)]
        self.encoder = nn.Sequential(*enc)

        dec = [ResidualBlock(ch) for _ in range(num_resblocks)]
        for _ in range(2):
            dec += _up(ch, ch // 2)
            ch //= 2
        self.decoder = nn.Sequential(*dec)

        self.head = nn.Sequential(nn.Conv2d(ch + 3, 3, 3, padding=1, bias=False), nn.Tanh())

    def forward(self, x_norm, r_b):
        s = self.image_size
        if x_norm.dim() != 4 or tuple(x_norm.shape[1:]) != (3, s, s):
            raise ValueError(f"Generator built for [B, 3, {s}, {s}] images, got {tuple(x_norm.shape)}")
        if r_b.dim() != 2 or r_b.shape[0] != x_norm.shape[0] or r_b.shape[1] != self.feat_dim:
            raise ValueError(f"r_b must be [{x_norm.shape[0]}, {self.feat_dim}], got {tuple(r_b.shape)}")
        label_map = self.label_encoder(r_b)
        h = self.encoder(torch.cat([label_map, x_norm], dim=1))
        h = self.decoder(h)
        out = self.head(torch.cat([h, x_norm], dim=1))
        if self.lowpass > 1:
            out = F.interpolate(F.avg_pool2d(out, self.lowpass), size=(s, s), mode='bilinear', align_corners=False)
        return out


def apply_generator(G, x, r_b, g_output='image', g_eps=0.0, g_psnr=0.0, scale=1.0):
    """Poisoned batch x_b from a [0,1] batch x. 'image' (official, D8): G's tanh output used directly as
    a [0,1] image; 'residual' (our option): clamp(x + scale * d, 0, 1), d = s * tanh output, s = g_eps
    or 1 if 0, and with g_psnr > 0 d scaled down per image to at most the L2 norm of that PSNR
    (psnr_project). scale (>= 1) magnifies the residual at query time only (implement_tri_gen.py
    trigger_scale, a diagnostic)."""
    out = G(normalize_for_generator(x), r_b)
    if g_output == 'residual':
        d = (g_eps if g_eps > 0 else 1.0) * out
        if g_psnr > 0:
            d = psnr_project(d, g_psnr)
        return (x + scale * d).clamp(0, 1)
    return out


def psnr_project(d, psnr):
    """A residual batch d scaled down, image by image, to at most the L2 norm at which x + d has that PSNR
    against x (dB, peak 1): ||d||_2 <= sqrt(n * 10^(-psnr/10)), n = C*H*W. An energy budget, as PSNR is:
    the residual may be larger where it is sparse, unlike an L-inf bound (our option, issue 11). The
    clamp to [0, 1] after it only lowers the residual; saving as uint8 may move PSNR by about 0.01 dB."""
    rho = math.sqrt(d[0].numel() * 10 ** (-psnr / 10))
    norm = d.flatten(1).float().norm(dim=1).clamp_min(1e-12)
    return d * (rho / norm).clamp(max=1).to(d.dtype).view(-1, *[1] * (d.dim() - 1))


def generator_budget(meta):
    """apply_generator's keyword arguments recorded with a G (its checkpoint's meta or config):
    g_output, g_eps, g_psnr, with the values of runs made before a key existed."""
    return {'g_output': meta.get('g_output', 'image'), 'g_eps': meta.get('g_eps', 0.0),
            'g_psnr': meta.get('g_psnr', 0.0)}


def init_generator_output(G, g_output):
    """'residual': zero the head conv, so tanh(0) = 0 and x_b = x at step 0 (our option)."""
    if g_output == 'residual':
        torch.nn.init.zeros_(G.head[0].weight)

