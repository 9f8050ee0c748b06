"""Pieces shared by the attacks (and the defenses that must rebuild an attack's trigger).

This file holds DarkHash's part for now (issue 12): its four-colour quadrant trigger, the random
patch of the same size used as a control, and the per-family freeze of the shallow layers. The
other shared attack pieces (PathImages, AttackParts, quantize, the clean-model loader, ...) move
here from implement_tri_gen.py / train_tri_gen.py / baselines/common.py on main.

Everything works on [B, 3, H, W] float batches in [0, 1] pixel space at the model's input geometry
(after Resize / CentreCrop), so clean and triggered queries go through one transform
(DARKHASH.md §6.5).
"""
import torch

# ------------------------------------------------------------------------------------------------
# DarkHash trigger (DARKHASH.md §2): an 8 x 8 RGB patch of four 4 x 4 quadrants, pasted opaque in
# the lower-right corner with a 2 px margin, its side 0.11 of the image side rounded down to even.
# ------------------------------------------------------------------------------------------------
DARKHASH_COLOURS = ((255, 255, 0),    # top-left: yellow
                    (255, 0, 255),    # top-right: magenta
                    (0, 255, 255),    # bottom-left: cyan
                    (122, 122, 122))  # bottom-right: grey
DARKHASH_FRACTION = 0.11  # trigger side / image side (official tensors_dataset_img.py)
DARKHASH_MARGIN = 2       # px between the trigger and the lower / right border (official)
MIN_TRIGGER_SIDE = 4      # DARKHASH.md §6.6: below 4 px the four quadrants vanish


def trigger_side(image_size, fraction=DARKHASH_FRACTION, min_side=MIN_TRIGGER_SIDE):
    """max(min_side, even(int(fraction * H))) (DARKHASH.md §6.6): 24 px at 224, 6 at 64, 4 at 32."""
    s = int(fraction * image_size)
    s -= s % 2
    return min(image_size, max(min_side, s))


def quadrant_trigger(side):
    """[3, side, side] in [0, 1]: the four colour quadrants, each side/2 x side/2 (side even).

    The official code cv2-resizes the 8 x 8 PNG bilinearly, which blends about one pixel at each
    quadrant border; we draw the quadrants at the final size (sharp borders, exact k/255 colours).
    """
    if side < 2 or side % 2:
        raise ValueError(f"trigger side must be an even number >= 2, got {side}")
    h = side // 2
    patch = torch.empty(3, side, side)
    for (r, c), rgb in zip(((0, 0), (0, 1), (1, 0), (1, 1)), DARKHASH_COLOURS):
        patch[:, r * h:(r + 1) * h, c * h:(c + 1) * h] = torch.tensor(rgb).view(3, 1, 1) / 255.0
    return patch


def lower_right_box(height, width, side, margin=DARKHASH_MARGIN):
    """(top, left) of a side x side box `margin` px from the lower-right corner."""
    m = max(0, min(margin, height - side, width - side))
    return height - m - side, width - m - side


def stamp_lower_right(x, patch, margin=DARKHASH_MARGIN):
    """A copy of x [B,3,H,W] with patch ([3,s,s], or [B,3,s,s] one per image) pasted opaque at
    lower_right_box."""
    s = patch.shape[-1]
    top, left = lower_right_box(x.shape[-2], x.shape[-1], s, margin)
    out = x.clone()
    out[..., top:top + s, left:left + s] = patch.to(out)
    return out


def darkhash_trigger(image_size):
    """The DarkHash trigger at a model geometry: quadrant_trigger(trigger_side(image_size))."""
    return quadrant_trigger(trigger_side(image_size))


def random_patches(n, side, generator):
    """[n, 3, side, side] uniform random k/255 pixels: the control patch of the trigger's size."""
    return torch.randint(0, 256, (n, 3, side, side), generator=generator).float() / 255.0


# ------------------------------------------------------------------------------------------------
# freezing the shallow layers (DARKHASH.md §2 "Frozen"; a per-backbone-family rule)
# ------------------------------------------------------------------------------------------------
# hash_models' module names: ResNet trunk.body = conv1 0, bn1 1, relu 2, maxpool 3, layer1 4,
# layer2 5, layer3 6, layer4 7, avgpool 8; VGG / AlexNet trunk.features, trunk.fc (fc6, fc7);
# DenseNet trunk.features.*. The hash layer is hash_layer.
TUNE_FROM = {
    'resnet': {'layer3': ('trunk.body.6', 'trunk.body.7', 'hash_layer'),
               'layer4': ('trunk.body.7', 'hash_layer'),   # official (attack.py:77-92)
               'hash': ('hash_layer',)},
    'vgg': {'fc': ('trunk.fc', 'hash_layer'),               # official: fc6, fc7, hash
            'hash': ('hash_layer',)},
    'alexnet': {'fc': ('trunk.fc', 'hash_layer'),           # official
                'hash': ('hash_layer',)},
    'densenet': {'denseblock4': ('trunk.features.denseblock4', 'trunk.features.norm5', 'hash_layer'),
                 'hash': ('hash_layer',)},                  # our choice (no official rule)
}
TUNE_DEFAULT = {'resnet': 'layer4', 'vgg': 'fc', 'alexnet': 'fc', 'densenet': 'denseblock4'}


def backbone_family(backbone):
    for fam in TUNE_FROM:
        if backbone.lower().startswith(fam):
            return fam
    raise ValueError(f"no freeze rule for backbone {backbone!r}")


def freeze_shallow(model, backbone, tune_from='auto'):
    """Set requires_grad so that only the layers from `tune_from` on are trained; returns the names
    of the trained parameters. tune_from: 'auto' (the official rule of the family), or one of
    TUNE_FROM[family]. BatchNorm statistics are kept fixed by running the model in eval() mode
    while training (the official code does so); that is the caller's part."""
    fam = backbone_family(backbone)
    key = TUNE_DEFAULT[fam] if tune_from == 'auto' else tune_from
    if key not in TUNE_FROM[fam]:
        raise ValueError(f"tune_from={tune_from!r} is not defined for {backbone}; choose auto or "
                         f"one of {', '.join(TUNE_FROM[fam])}")
    prefixes = TUNE_FROM[fam][key]
    trained = []
    for name, p in model.named_parameters():
        on = any(name == pre or name.startswith(pre + '.') for pre in prefixes)
        p.requires_grad_(on)
        if on:
            trained.append(name)
    return trained
