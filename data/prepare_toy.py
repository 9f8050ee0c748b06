"""Build the toy dataset: procedurally drawn shapes, no download, a few seconds on a CPU.

The project's default dataset. Every image shows one main shape (the class) on a cluttered
background; the shape's colour comes from a hue tied to its class for a fraction `color_tie` of
the images and is random for the rest, so colour is a hint and shape is the real cue. Position,
scale, rotation, aspect, fill texture, background gradient, distractor lines/dots and pixel noise
are random. Everything is drawn from `seed`, so two runs give byte-identical PNG files.

Writes to out_dir (paths in the lists are relative to it):
    images/{train,database,test,openset}/<cc>_<class>/<nnnn>.png
    train.txt      train_per_class images per class
    database.txt   database_per_class per class: the train images plus fresh ones (ImageNet-100 style)
    test.txt       test_per_class per class: the queries, disjoint from the database
    classes.txt    class names in index order
    openset.txt    openset_per_class images of each of num_openset_classes OTHER shapes, one-hot
                   over those shapes (out-of-distribution queries for the trigger generator)
    openset_classes.txt
    prepare.json   the config that made the folder; a rerun with the same config skips

    python data/prepare_toy.py                       # data/toy, 32x32, seed 0
    python data/prepare_toy.py --image_size=64 --out_dir=data/toy64
"""
import os
import shutil
import sys
import time

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import utils  # noqa: E402
from data import common  # noqa: E402

# ------------------------------------------------------------------------------------------------
# config (override with preset files or --key=value)
out_dir = 'data/toy'          # output folder (lists + images/)
seed = 0                      # one seed for everything drawn here
image_size = 32               # side in pixels; 32 is the project default, 64 also supported
num_classes = 10              # closed-set classes, at most 10 (the shapes in CLASS_SHAPES)
train_per_class = 100         # training images per class
database_per_class = 200      # database images per class, train included (so 100 fresh ones)
test_per_class = 30           # query images per class, disjoint from the database
num_openset_classes = 6       # open-set shapes, at most 6 (the shapes in OPENSET_SHAPES)
openset_per_class = 20        # images per open-set shape
color_tie = 0.9               # fraction of images whose colour is the class hue (+ jitter); our choice:
                              # ResNet18/CSQ from scratch reaches MAP ~0.6-0.75 in 2-12 epochs at 0.9,
                              # ~0.5-0.6 at 0.6-0.8; random colours are learnt slowly at 32x32 (SPEC §8)
max_rotation = 180.0          # shapes are rotated by U(-max_rotation, max_rotation) degrees
hue_jitter = 0.02             # std of the hue around the class hue (hue in [0, 1))
max_distractors = 3           # up to this many small lines/dots per image, drawn under the shape
noise_std = 0.05              # std of the Gaussian pixel noise (images in [0, 1]), times U(0.5, 1.5)
class_texture = 0.0           # amplitude (images in [0, 1]) of a faint grating whose orientation and
                              # frequency belong to the class, over the whole image, random phase; 0 = none.
                              # Our option: a cue that a few /255 can fake, as natural images have
force = False                 # rebuild even if prepare.json says the folder is up to date
# ------------------------------------------------------------------------------------------------

FORMAT_VERSION = 2  # bump whenever the drawing changes, so old folders are rebuilt
CLASS_SHAPES = ['disk', 'ring', 'square', 'triangle', 'plus', 'star', 'bar', 'crescent', 'frame',
                'dumbbell']
OPENSET_SHAPES = ['hexagon', 'heart', 'arrow', 'tee', 'bowtie', 'target']
SPLIT_IDS = {'train': 0, 'database': 1, 'test': 2, 'openset': 3}  # one random stream per split


# ------------------------------------------------------------------------------------------------
# shapes: signed distances in the shape's own frame (the shape fits in the unit disk),
# negative inside. Exact for disks and half-planes, close enough elsewhere for 1-pixel antialiasing.
# ------------------------------------------------------------------------------------------------

def _box(u, v, a, b):
    return np.maximum(np.abs(u) - a, np.abs(v) - b)


def _disk(u, v, cx, cy, r):
    return np.hypot(u - cx, v - cy) - r


def _polygon(u, v, n, apothem, phase=0.0):
    """Regular n-gon as the max over its edges' half-planes."""
    d = None
    for k in range(n):
        a = phase + 2 * np.pi * k / n
        e = u * np.cos(a) + v * np.sin(a) - apothem
        d = e if d is None else np.maximum(d, e)
    return d


def shape_sdf(name, u, v):
    r = np.hypot(u, v)
    if name == 'disk':
        return r - 0.85
    if name == 'ring':
        return np.abs(r - 0.68) - 0.22
    if name == 'square':
        return _box(u, v, 0.72, 0.72)
    if name == 'triangle':
        return _polygon(u - 0.0, v + 0.1, 3, 0.48, phase=np.pi / 2)
    if name == 'plus':
        return np.minimum(_box(u, v, 0.92, 0.28), _box(u, v, 0.28, 0.92))
    if name == 'star':
        theta = np.arctan2(v, u)
        return (r - (0.55 + 0.35 * np.cos(5 * theta))) * 0.7
    if name == 'bar':
        return _box(u, v, 0.95, 0.26)
    if name == 'crescent':
        return np.maximum(r - 0.88, -_disk(u, v, 0.42, 0.0, 0.7))
    if name == 'frame':
        return np.maximum(_box(u, v, 0.8, 0.8), -_box(u, v, 0.45, 0.45))
    if name == 'dumbbell':
        return np.minimum(np.minimum(_disk(u, v, -0.58, 0, 0.38), _disk(u, v, 0.58, 0, 0.38)),
                          _box(u, v, 0.6, 0.12))
    if name == 'hexagon':
        return _polygon(u, v, 6, 0.78)
    if name == 'heart':
        lobes = np.minimum(_disk(u, v, -0.36, -0.3, 0.4), _disk(u, v, 0.36, -0.3, 0.4))
        tip = _polygon(u, v - 0.15, 3, 0.4, phase=-np.pi / 2)
        return np.minimum(lobes, tip)
    if name == 'arrow':
        shaft = _box(u + 0.3, v, 0.6, 0.14)
        head = _polygon(u - 0.35, v, 3, 0.3, phase=np.pi)
        return np.minimum(shaft, head)
    if name == 'tee':
        return np.minimum(_box(u, v + 0.65, 0.85, 0.2), _box(u, v - 0.1, 0.2, 0.75))
    if name == 'bowtie':
        return np.maximum(np.abs(v) - 0.85 * np.abs(u) - 0.05, np.abs(u) - 0.9)
    if name == 'target':
        return np.minimum(np.abs(r - 0.75) - 0.12, r - 0.3)
    raise ValueError(f"unknown shape {name!r}")


# ------------------------------------------------------------------------------------------------
# rendering: a whole batch of images of one shape at once
# ------------------------------------------------------------------------------------------------

def hsv_to_rgb(h, s, v):
    """Vectorised HSV -> RGB, all inputs in [0, 1], output [..., 3]."""
    h6 = (h % 1.0) * 6.0
    k = np.stack([(5 + h6) % 6, (3 + h6) % 6, (1 + h6) % 6], axis=-1)
    return v[..., None] - (v * s)[..., None] * np.clip(np.minimum(k, 4 - k), 0, 1)


def coverage(sdf, pixel):
    """Antialiased coverage from a signed distance (one pixel wide edge)."""
    return np.clip(0.5 - sdf / pixel, 0.0, 1.0)


def background(q, x, y):
    """A linear gradient between two muted colours (columns 0-6 of q) -> float [n, H, W, 3]."""
    phi = 2 * np.pi * q[:, 0][:, None, None]
    ramp = np.clip((x * np.cos(phi) + y * np.sin(phi)) * 0.5 + 0.5, 0, 1)[..., None]
    bg1 = hsv_to_rgb(q[:, 1], 0.15 * q[:, 2], 0.1 + 0.5 * q[:, 3])[:, None, None]
    bg2 = hsv_to_rgb(q[:, 4], 0.15 * q[:, 5], 0.1 + 0.5 * q[:, 6])[:, None, None]
    return bg1 + (bg2 - bg1) * ramp


def add_distractors(img, q, x, y, pixel):
    """Short lines and small dots in random colours (columns 7-18 of q), drawn over img."""
    for k in range(max_distractors):
        c0 = 7 + 4 * k  # columns 7..18
        on = q[:, c0] < 0.6
        if not on.any():
            continue
        px, py = q[:, c0 + 1] * 1.8 - 0.9, q[:, c0 + 2] * 1.8 - 0.9
        a = 2 * np.pi * q[:, c0 + 3]
        is_line = (q[:, c0] < 0.3)[:, None, None]
        # line: a segment of length 0.5 around (px, py) at angle a, half-width 0.035
        ca, sa = np.cos(a)[:, None, None], np.sin(a)[:, None, None]
        along = np.clip((x - px[:, None, None]) * ca + (y - py[:, None, None]) * sa, -0.25, 0.25)
        d_line = np.hypot(x - px[:, None, None] - along * ca, y - py[:, None, None] - along * sa) - 0.035
        d_dot = np.hypot(x - px[:, None, None], y - py[:, None, None]) - (0.06 + 0.08 * q[:, c0 + 3])[:, None, None]
        m = coverage(np.where(is_line, d_line, d_dot), pixel) * on[:, None, None]
        rgb = hsv_to_rgb((q[:, c0 + 3] * 7.3) % 1.0, 0.3 + 0.7 * q[:, c0 + 2], 0.3 + 0.7 * q[:, c0 + 1])
        img = img + (rgb[:, None, None] - img) * m[..., None]
    return img


def add_shape(img, q, x, y, pixel, shape, class_hue):
    """The main shape (columns 19-31 of q): random centre, scale, aspect and rotation; the class hue
    (+ jitter) for a fraction color_tie of images, otherwise any hue; a solid, striped or checked fill."""
    col = lambda i: q[:, i][:, None, None]  # noqa: E731  (one parameter, broadcast over pixels)
    cx, cy = col(19) * 0.7 - 0.35, col(20) * 0.7 - 0.35
    scale = 0.55 + 0.25 * col(21)
    aspect = 0.85 + 0.3 * col(22)
    ang = np.deg2rad(max_rotation) * (2 * col(23) - 1)
    dx, dy = x - cx, y - cy
    u = (dx * np.cos(ang) + dy * np.sin(ang)) / (scale * aspect)
    v = (-dx * np.sin(ang) + dy * np.cos(ang)) / (scale / aspect)
    mask = coverage(shape_sdf(shape, u, v), pixel / scale)
    tied = q[:, 24] < (color_tie if class_hue is not None else 0.0)
    jitter = hue_jitter * np.sqrt(-2 * np.log(q[:, 25] + 1e-12)) * np.cos(2 * np.pi * q[:, 26])
    hue = np.where(tied, (class_hue or 0.0) + jitter, q[:, 27])
    fg = hsv_to_rgb(hue, 0.6 + 0.4 * q[:, 28], 0.7 + 0.3 * q[:, 29])[:, None, None]
    # fill texture: solid (70% of the images), stripes or checks in the shape's frame
    kind, freq = q[:, 30][:, None, None], 5 + 6 * q[:, 31][:, None, None]
    stripes = np.sin(freq * u) > 0
    checks = (np.sin(freq * u) > 0) ^ (np.sin(freq * v) > 0)
    pattern = np.where(kind < 0.7, 1.0, np.where(kind < 0.85, stripes, checks))
    fg = fg * (0.65 + 0.35 * pattern)[..., None]
    return img + (fg - img) * mask[..., None]


def render(shape, n, rng, size, class_hue, class_id=None):
    """Draw n images of `shape`. class_hue=None gives random colours. Returns uint8 [n, size, size, 3]."""
    # every random number comes from two draws with fixed row layouts, so image i depends only on
    # the stream and i (asking for more images never changes the first ones)
    q = rng.random((n, 33))
    noise = rng.standard_normal((n, size, size, 3))
    t = (np.arange(size) + 0.5) / size * 2 - 1   # pixel centres in [-1, 1]
    y, x = np.meshgrid(t, t, indexing='ij')
    x, y = x[None], y[None]
    pixel = 2.0 / size                            # one pixel in image units

    img = background(q, x, y)
    img = add_distractors(img, q, x, y, pixel)    # under the main shape
    img = add_shape(img, q, x, y, pixel, shape, class_hue)
    img = img + noise * (noise_std * (0.5 + q[:, 32]))[:, None, None, None]   # pixel noise

    # faint class grating (class_texture > 0); drawn last, so the images without it are unchanged
    phase = 2 * np.pi * rng.random(n)[:, None, None]
    if class_texture > 0 and class_id is not None:
        theta = np.pi * class_id / len(CLASS_SHAPES)
        cycles = 6 + 2 * (class_id % 3)           # cycles per image side: 6, 8 or 10
        wave = np.sin(np.pi * cycles * (x * np.cos(theta) + y * np.sin(theta)) + phase)
        img = img + class_texture * wave[..., None]
    return np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)


def draw_split(split, shapes, per_class, hues):
    """Render per_class images for each shape; write PNGs; return (rel_paths, one-hot labels)."""
    rel_paths, labels = [], []
    for c, name in enumerate(shapes):
        rng = np.random.default_rng(np.random.SeedSequence([seed, SPLIT_IDS[split], c]))
        images = render(name, per_class, rng, image_size, hues[c] if hues else None,
                        c if hues else None)
        folder = os.path.join('images', split, f'{c:02d}_{name}')
        os.makedirs(os.path.join(out_dir, folder), exist_ok=True)
        for i, im in enumerate(images):
            rel = f'{folder}/{i:04d}.png'
            Image.fromarray(im).save(os.path.join(out_dir, rel), format='PNG', compress_level=6)
            rel_paths.append(rel)
            labels.append(np.eye(len(shapes), dtype=np.uint8)[c])
    return rel_paths, np.asarray(labels, dtype=np.uint8).reshape(-1, len(shapes))


def check_config():
    """Every setting in range, or one error line naming all that are not."""
    errors = []
    if not 1 <= num_classes <= len(CLASS_SHAPES):
        errors.append(f"num_classes must be in 1..{len(CLASS_SHAPES)}, got {num_classes}")
    if not 0 <= num_openset_classes <= len(OPENSET_SHAPES):
        errors.append(f"num_openset_classes must be in 0..{len(OPENSET_SHAPES)}, got {num_openset_classes}")
    if not 16 <= image_size <= 256:
        errors.append(f"image_size must be in 16..256, got {image_size}")
    if min(train_per_class, test_per_class) < 1:
        errors.append("train_per_class and test_per_class must be >= 1")
    if database_per_class < train_per_class:
        errors.append(f"database_per_class ({database_per_class}) must be >= train_per_class "
                      f"({train_per_class}): the database contains the training images")
    if openset_per_class < 0 or max_distractors < 0 or max_distractors > 3:
        errors.append("openset_per_class must be >= 0 and max_distractors in 0..3")
    if not 0.0 <= color_tie <= 1.0:
        errors.append(f"color_tie must be in [0, 1], got {color_tie}")
    if errors:
        sys.exit('error: ' + '; '.join(errors))


def write_closed_set(classes):
    """Train, database (train + fresh images, grouped by class), test and classes.txt -> counts."""
    for split in SPLIT_IDS:  # only our own sub-folders are cleared
        shutil.rmtree(os.path.join(out_dir, 'images', split), ignore_errors=True)
    hues = [c / num_classes for c in range(num_classes)]
    train_paths, train_labels = draw_split('train', classes, train_per_class, hues)
    extra_paths, extra_labels = draw_split('database', classes, database_per_class - train_per_class, hues)
    test_paths, test_labels = draw_split('test', classes, test_per_class, hues)
    order = np.argsort(np.concatenate([train_labels.argmax(1), extra_labels.argmax(1)]), kind='stable')
    db_paths = [(train_paths + extra_paths)[i] for i in order]
    db_labels = np.concatenate([train_labels, extra_labels])[order]
    utils.write_list(os.path.join(out_dir, 'train.txt'), train_paths, train_labels)
    utils.write_list(os.path.join(out_dir, 'database.txt'), db_paths, db_labels)
    utils.write_list(os.path.join(out_dir, 'test.txt'), test_paths, test_labels)
    utils.atomic_write_text(os.path.join(out_dir, 'classes.txt'), ''.join(c + '\n' for c in classes))
    return {'train': len(train_paths), 'database': len(db_paths), 'test': len(test_paths),
            'classes': num_classes}


def write_openset(counts):
    """The open-set shapes in random colours and their list, or no stale open-set list left behind."""
    if num_openset_classes and openset_per_class:
        open_classes = OPENSET_SHAPES[:num_openset_classes]
        open_paths, open_labels = draw_split('openset', open_classes, openset_per_class, None)
        utils.write_list(os.path.join(out_dir, 'openset.txt'), open_paths, open_labels)
        utils.atomic_write_text(os.path.join(out_dir, 'openset_classes.txt'),
                                ''.join(c + '\n' for c in open_classes))
        counts.update(openset=len(open_paths), openset_classes=num_openset_classes)
    else:  # do not leave a stale open-set list from an earlier config behind
        for n in ('openset.txt', 'openset_classes.txt'):
            if os.path.isfile(os.path.join(out_dir, n)):
                os.remove(os.path.join(out_dir, n))


def main():
    config = utils.configure(globals())
    check_config()
    # skip if this exact config already built the folder
    recipe = {k: v for k, v in config.items() if k not in ('out_dir', 'force')}
    recipe['format_version'] = FORMAT_VERSION
    list_names = ['train.txt', 'database.txt', 'test.txt', 'classes.txt']
    if num_openset_classes and openset_per_class:
        list_names += ['openset.txt', 'openset_classes.txt']
    if not force and common.manifest_up_to_date(out_dir, recipe, list_names, same='config'):
        sys.exit(0)
    t0 = time.time()
    classes = CLASS_SHAPES[:num_classes]
    counts = write_closed_set(classes)
    write_openset(counts)
    # check what was written, then record the recipe
    sets = {n: set(utils.read_list(os.path.join(out_dir, n + '.txt'), num_classes=num_classes)[0])
            for n in ('train', 'database', 'test')}
    assert sets['train'] <= sets['database'] and not sets['test'] & sets['database']
    common.write_manifest(out_dir, 'data/prepare_toy.py', recipe, counts)
    print(f"{out_dir}: {num_classes} classes ({', '.join(classes)}), {image_size}x{image_size} PNG")
    print(f"  train {counts['train']}  database {counts['database']} (contains train)  "
          f"test {counts['test']} (queries, disjoint from database)"
          + (f"  openset {counts['openset']} ({num_openset_classes} other shapes)" if 'openset' in counts else ''))
    print(f"  built in {time.time() - t0:.1f} s")


if __name__ == '__main__':
    main()
