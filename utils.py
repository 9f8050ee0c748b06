"""Shared pieces of the BadHash scripts: configuration, list files, datasets, checkpoints, logging.

Sections (read top to bottom):
  1. configuration  -- `configure(globals())`: presets + --key=value overrides with type checks
  2. list files     -- DeepHash `relpath v1 ... vC` lists, the official two-file format, validation
  3. datasets       -- image dataset over a list, transforms (SPEC D14)
  4. run files      -- seeding, atomic checkpoints, jsonl logs, results json

Nothing here downloads, builds models or touches the GPU at import time.
"""
import ast
import json
import os
import random
import subprocess
import sys
import tempfile
import time

import numpy as np


class ConfigError(ValueError):
    """A bad configuration key or value (unknown key, wrong type, unreadable preset)."""


class ListError(ValueError):
    """A malformed list file: the message names the file and line."""


# --------------------------------------------------------------------------------------------
# 1. configuration
# --------------------------------------------------------------------------------------------
# Each script keeps its hyperparameters as plain constants at the top, then calls
#     config = utils.configure(globals())
# which applies, in order, every preset file given as a positional argument (a python file of
# plain assignments, e.g. configs/demo.py) and every --key=value argument. Only keys that already
# exist in the script may be set; the value must have the same type as the default (int may be
# given for a float; a None default accepts anything that parses as a python literal or string).

_CONFIG_TYPES = (bool, int, float, str, type(None))


def config_keys(g):
    """The names in a script's globals that count as configuration: plain lowercase constants."""
    return [k for k, v in g.items()
            if not k.startswith('_') and k == k.lower() and isinstance(v, _CONFIG_TYPES)]


def _parse_value(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare string such as --dataset=toy


# keys that take True/False or a file path (hash_models: pretrained=True | False | PATH)
BOOL_OR_PATH_KEYS = {'pretrained'}


def _coerce(key, value, default, source):
    if default is None or value is None:
        return value
    if key in BOOL_OR_PATH_KEYS:
        if isinstance(value, str) and value.lower() in ('true', 'false'):
            return value.lower() == 'true'
        if isinstance(value, (bool, str)):
            return value
        raise ConfigError(f"{source}: {key} expects True/False or a file path, got {value!r}")
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ('true', 'false'):
            return value.lower() == 'true'
        raise ConfigError(f"{source}: {key} expects True/False, got {value!r}")
    if isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{source}: {key} expects an int, got {value!r}")
    if isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{source}: {key} expects a float, got {value!r}")
    if isinstance(default, str):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # --target_name=55 style values
        if isinstance(value, str):
            return value
        raise ConfigError(f"{source}: {key} expects a string, got {value!r}")
    return value


def _read_preset(path):
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: preset file not found")
    with open(path) as f:
        source = f.read()
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as e:
        raise ConfigError(f"{path}:{e.lineno}: not valid python ({e.msg})") from None
    values = []
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # docstring / comment string
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)):
            raise ConfigError(f"{path}:{node.lineno}: presets may only contain `key = value` lines")
        try:
            value = ast.literal_eval(node.value)
        except ValueError:
            raise ConfigError(f"{path}:{node.lineno}: value of {node.targets[0].id} must be a "
                              f"literal (number, string, bool, None)") from None
        values.append((node.targets[0].id, value, f"{path}:{node.lineno}"))
    return values


def pipeline_keys():
    """Config keys of every script of the pipeline (top-level, data/ and baselines/ *.py), via ast.

    A preset file (e.g. configs/demo.py) serves several scripts, so a key that belongs to another
    script of the pipeline is skipped; a key that no script has is an error.
    """
    global _PIPELINE_KEYS
    if _PIPELINE_KEYS is None:
        here = os.path.dirname(os.path.abspath(__file__))
        files = [os.path.join(here, f) for f in os.listdir(here) if f.endswith('.py')]
        for sub in ('data', 'baselines'):
            folder = os.path.join(here, sub)
            if os.path.isdir(folder):
                files += [os.path.join(folder, f) for f in os.listdir(folder) if f.endswith('.py')]
        keys = set()
        for path in files:
            with open(path) as f:
                tree = ast.parse(f.read(), filename=path)
            for node in tree.body:
                if (isinstance(node, ast.Assign) and len(node.targets) == 1
                        and isinstance(node.targets[0], ast.Name)
                        and node.targets[0].id == node.targets[0].id.lower()
                        and isinstance(node.value, ast.Constant)):
                    keys.add(node.targets[0].id)
        _PIPELINE_KEYS = keys
    return _PIPELINE_KEYS


_PIPELINE_KEYS = None


def _preset_with_bases(path, seen=()):
    """A preset's items after those of the preset its `base = '<file>'` names (read first, so the
    preset's own keys win; a base may name a base of its own). For scripts with a `base` key only
    (ladder.py): rungs share their data and attack keys through one file instead of copies."""
    items = _read_preset(path)
    out = []
    for key, value, source in items:
        if key == 'base' and value:
            if value in seen or value == path:
                chain = ' -> '.join(seen + (path, value))
                raise ConfigError(f"{source}: base preset {value} makes a cycle ({chain})")
            out += _preset_with_bases(value, seen + (path,))
    return out + items


def apply_overrides(g, argv, allow_positional=True):
    """Apply preset files and --key=value items in `argv` to the dict `g` in place (a script with a
    `base` key reads the preset a preset's `base` names before it)."""
    keys = set(config_keys(g))
    for arg in argv:
        if arg.startswith('--'):
            if '=' not in arg:
                raise ConfigError(f"command line: {arg} must be written --key=value")
            key, text = arg[2:].split('=', 1)
            value = _parse_value(text)
            if isinstance(g.get(key), str) and not isinstance(value, (str, int, float)):
                value = text  # a string key keeps its text as typed: --eps=4,8, --queries=a=b
            items = [(key, value, 'command line')]
        elif allow_positional:
            items = _preset_with_bases(arg) if 'base' in keys else _read_preset(arg)
        else:
            raise ConfigError(f"command line: unexpected argument {arg!r}")
        for key, value, source in items:
            if key not in keys and source != 'command line' and key in pipeline_keys():
                continue  # a preset shared by several scripts: this key is another script's
            if key not in keys:
                close = [k for k in sorted(keys) if k[:3] == key[:3]]
                hint = f" (did you mean {', '.join(close[:3])}?)" if close else ''
                raise ConfigError(f"{source}: unknown config key {key!r}{hint}")
            g[key] = _coerce(key, value, g[key], source)


def configure(g, argv=None, show=True):
    """Apply presets and overrides to a script's globals, print the result once, return it as a dict."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        apply_overrides(g, argv)
    except ConfigError as e:
        sys.exit(f"error: {e}")
    config = {k: g[k] for k in config_keys(g)}
    if show and dist_info()[0] == 0:  # under torchrun only rank 0 prints
        print('config: ' + json.dumps(config, sort_keys=True))
    return config


# --------------------------------------------------------------------------------------------
# 2. list files
# --------------------------------------------------------------------------------------------
# DeepHash format: one image per line, `relative/path v1 v2 ... vC` with 0/1 integers; the path is
# joined to a root folder with os.path.join (an absolute path stays as it is).

def _check_label(values, num_classes, where):
    """Validate one label row (strings); returns the class count it fixes."""
    if num_classes is None:
        num_classes = len(values)
    if len(values) != num_classes:
        raise ListError(f"{where}: label has {len(values)} values, expected {num_classes}")
    bad = [v for v in values if v not in ('0', '1')]
    if bad:
        raise ListError(f"{where}: label values must be 0 or 1, found {bad[0]!r}")
    return num_classes


def read_list(path, root=None, num_classes=None, check_files=True):
    """Read and validate a list. Returns (paths joined to root, labels uint8 [N, C])."""
    if not os.path.isfile(path):
        raise ListError(f"{path}: list file not found")
    root = os.path.dirname(os.path.abspath(path)) if root is None else root
    paths, labels = [], []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            rel, values = fields[0], fields[1:]
            where = f"{path}:{lineno}"
            if not values:
                raise ListError(f"{where}: expected 'path v1 ... vC', found a path with no label")
            num_classes = _check_label(values, num_classes, where)
            full = os.path.join(root, rel)
            if check_files and not os.path.isfile(full):
                raise ListError(f"{where}: image not found: {full}")
            paths.append(full)
            labels.append([v == '1' for v in values])
    if not paths:
        raise ListError(f"{path}: list is empty")
    return paths, np.asarray(labels, dtype=np.uint8)


def read_two_file_list(img_txt, label_txt, root=None, num_classes=None, check_files=True):
    """The official code's format: `*_img.txt` (one path a line) + `*_label.txt` (0/1 matrix)."""
    for p in (img_txt, label_txt):
        if not os.path.isfile(p):
            raise ListError(f"{p}: list file not found")
    with open(img_txt) as f:
        rels = [(i, line.strip()) for i, line in enumerate(f, 1) if line.strip()]
    with open(label_txt) as f:
        rows = [(i, line.split()) for i, line in enumerate(f, 1) if line.strip()]
    if not rels:
        raise ListError(f"{img_txt}: list is empty")
    if len(rels) != len(rows):
        raise ListError(f"{label_txt}: {len(rows)} label rows, expected {len(rels)} "
                        f"(one per line of {img_txt})")
    root = os.path.dirname(os.path.abspath(img_txt)) if root is None else root
    paths, labels = [], []
    for (ln_img, rel), (ln_lab, values) in zip(rels, rows):
        num_classes = _check_label(values, num_classes, f"{label_txt}:{ln_lab}")
        full = os.path.join(root, rel)
        if check_files and not os.path.isfile(full):
            raise ListError(f"{img_txt}:{ln_img}: image not found: {full}")
        paths.append(full)
        labels.append([v == '1' for v in values])
    return paths, np.asarray(labels, dtype=np.uint8)


def write_list(path, rel_paths, labels):
    """Write a DeepHash list atomically (paths as given, relative to the list's root)."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or len(labels) != len(rel_paths):
        raise ValueError(f"{path}: need one label row per path, got {labels.shape} for "
                         f"{len(rel_paths)} paths")
    for p in rel_paths:
        if any(c.isspace() for c in p):
            raise ValueError(f"{path}: image path {p!r} contains whitespace, which the list "
                             f"format cannot hold")
    lines = [f"{p} {' '.join(str(int(v)) for v in row)}\n" for p, row in zip(rel_paths, labels)]
    atomic_write_text(path, ''.join(lines))


def convert_two_file_list(img_txt, label_txt, out_path, root=None):
    """Convert the official two-file format to a DeepHash list (paths kept as written)."""
    with open(img_txt) as f:
        rels = [line.strip() for line in f if line.strip()]
    _, labels = read_two_file_list(img_txt, label_txt, root=root, check_files=False)
    write_list(out_path, rels, labels)


# --------------------------------------------------------------------------------------------
# 3. datasets
# --------------------------------------------------------------------------------------------
# SPEC D14: hash models take [0, 1] images with no mean/std normalisation; paper scale is
# Resize(256) -> CenterCrop(224) for every split (the official code has no augmentation).
# Small images (toy 32 px, tiny-imagenet 64 px) are used at their own size: resize_size=0.

def build_transform(image_size, resize_size=0, augment='none'):
    """The image transform of every script: an ImageTransform (PIL image -> [0, 1] float tensor)."""
    return ImageTransform(image_size, resize_size, augment)


class ImageTransform:
    """PIL image -> float [0, 1] tensor [3, H, W], cut in two so that its first part can be cached.

    1. geometry (deterministic, on the PIL image): Resize(resize_size) if set, then CenterCrop
       (image_size) when there is no augmentation; the result is a uint8 H x W x 3 array. This is
       what the decoded-image cache stores.
    2. augment (random, on the uint8 [3, H, W] tensor, torch's global RNG): with augment='deephash'
       RandomHorizontalFlip then RandomCrop(image_size, padding); then / 255.
    The ops, their order and their random draws are torchvision's Resize -> (flip -> crop |
    CenterCrop) -> ToTensor on the PIL image, so the values are the same as that pipeline's, and the
    cached and uncached paths give identical tensors for the same seed (tests/test_speed.py).
    """

    def __init__(self, image_size, resize_size=0, augment='none'):
        import torchvision.transforms as T
        if augment not in ('none', 'deephash'):
            raise ConfigError(f"augment must be 'none' or 'deephash', got {augment!r}")
        self.image_size, self.resize_size, self.augment_mode = image_size, resize_size, augment
        self.center_crop = image_size if augment == 'none' else 0
        geo = [T.Resize(resize_size)] if resize_size else []
        if self.center_crop:
            geo.append(T.CenterCrop(image_size))
        self._geometry = T.Compose(geo)
        self._augment = None
        if augment == 'deephash':  # D14 option: flip + random crop (padded when not resized)
            self._augment = T.Compose([T.RandomHorizontalFlip(), T.RandomCrop(
                image_size, padding=0 if resize_size else image_size // 8)])

    def geometry_key(self):
        """What the cached arrays depend on (the deterministic part only)."""
        return {'resize_size': self.resize_size, 'center_crop': self.center_crop}

    def geometry(self, img):
        """PIL RGB image -> uint8 H x W x 3 array (deterministic)."""
        return np.array(self._geometry(img), dtype=np.uint8)  # a writable copy, as ToTensor

    def augment(self, array):
        """uint8 H x W x 3 array -> float [3, H, W] tensor in [0, 1] (random part, then / 255)."""
        import torch
        t = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).contiguous()
        if self._augment is not None:
            t = self._augment(t)
        return t.float().div(255)

    def __call__(self, img):
        return self.augment(self.geometry(img))


def _read_rgb(path, list_file):
    from PIL import Image
    try:
        with Image.open(path) as im:
            return im.convert('RGB')
    except (OSError, ValueError) as e:
        raise ListError(f"{list_file}: cannot read image {path} ({e})") from None


# ---- provenance: what an output was made from (README "Reuse rule") -------------------------
# Every output that a later run may reuse records the digest of what it was made from; a reuse
# compares that record with the inputs as they are now, never a file name or a config string.
# A list's record: the SHA-1 of the list file's bytes (catches any edit, even within the same
# second), and a digest of its images: their content when the list's images are small in total
# (CONTENT_HASH_MAX_BYTES, e.g. the toy data and triggered query sets), else path, size and mtime
# in nanoseconds (a full read of a paper-scale training set at every start would cost minutes).

CONTENT_HASH_MAX_BYTES = 64 * 2 ** 20


def nearest_factor(side, min_side=128):
    """The integer nearest-neighbour factor that shows a `side`-pixel image at least `min_side` pixels
    wide (1 when it already is): small images in figures and debug grids, pixels kept square."""
    return max(1, -(-min_side // side))


def pretrain_run_name(dataset, backbone, image_size, small_input=False, train_subset=0, tag=''):
    """pretrain.py's run name, the stem of its .pt / .pth / .json files:
    {dataset}_pretrain_{backbone}[_s]_{image_size}[_n{train_subset}][_{tag}]."""
    return (f"{dataset}_pretrain_{backbone.lower()}{'_s' if small_input else ''}_{image_size}"
            + (f"_n{train_subset}" if train_subset else '') + (f"_{tag}" if tag else ''))


def file_sha1(path):
    import hashlib
    h = hashlib.sha1()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def file_stamp(path):
    """'size:mtime_ns' of a file (a checkpoint is rewritten, never edited in place), None if absent."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{st.st_size}:{st.st_mtime_ns}"


def list_record(list_file, paths):
    """The provenance record of a list and its images (see above): a dict of plain values."""
    import hashlib
    stats = [os.stat(p) for p in paths]
    by = 'content' if sum(st.st_size for st in stats) <= CONTENT_HASH_MAX_BYTES else 'stat'
    h = hashlib.sha1()
    for p, st in zip(paths, stats):
        h.update(f"{p}\0{st.st_size}\0".encode())
        h.update((file_sha1(p) if by == 'content' else str(st.st_mtime_ns)).encode() + b'\n')
    return {'list': os.path.abspath(list_file), 'list_sha1': file_sha1(list_file), 'n': len(paths),
            'images_sha1': h.hexdigest(), 'images_by': by}


def record_difference(old, new, keys=None):
    """None when the records agree on `keys` (default: every key of `new`), else a short phrase
    naming the first difference (for the one-line notes and errors)."""
    if not isinstance(old, dict):
        return 'no provenance record'
    for k in keys or new:
        if old.get(k) != new.get(k):
            return RECORD_WORDS.get(k, f"{k} differs")
    return None


def read_provenance(npz):
    """The provenance record stored in an open codes .npz (np.load), or None for codes written
    before records existed (they are encoded again)."""
    if 'provenance' not in npz.files:
        return None
    try:
        return json.loads(str(npz['provenance']))
    except ValueError:
        return None


RECORD_WORDS = {'list': 'list path differs', 'list_sha1': 'list file content differs',
                'images_sha1': 'images differ', 'n': 'image count differs',
                'images_by': 'image digest kind differs', 'geometry': 'geometry differs',
                'checkpoint': 'checkpoint differs', 'checkpoint_stamp': 'checkpoint rewritten since'}


class ImageList:
    """Images of a list file as (image tensor, label float tensor, index) triples.

    cache_dir: keep the decoded images (after the transform's deterministic geometry) in a
    memory-mapped file there (`ImageCache`), built on first use and reused; the transform's random
    augmentation is applied to the cached uint8 arrays, so the tensors are the same as without it.
    """

    def __init__(self, list_file, root=None, transform=None, num_classes=None, cache_dir=None,
                 num_workers=0):
        self.list_file = list_file
        self.paths, self.labels = read_list(list_file, root=root, num_classes=num_classes)
        self.transform = transform
        self._record = None
        self.cache = None
        if cache_dir:
            if not isinstance(transform, ImageTransform):
                raise ValueError("the image cache needs a utils.ImageTransform (build_transform)")
            self.cache = ImageCache.open(cache_dir, list_file, self.paths, transform, num_workers,
                                         record=self.record())

    def record(self):
        """list_record() of this list, computed once (what outputs made from it record)."""
        if self._record is None:
            self._record = list_record(self.list_file, self.paths)
        return self._record

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        import torch
        label = torch.from_numpy(self.labels[i].astype(np.float32))
        if self.cache is not None:
            return self.transform.augment(self.cache[i]), label, i
        img = _read_rgb(self.paths[i], self.list_file)
        if self.transform is not None:
            img = self.transform(img)
        return img, label, i


class _Decode:
    """Dataset of geometry arrays, to decode a list in DataLoader worker processes."""

    def __init__(self, paths, transform, list_file):
        self.paths, self.transform, self.list_file = paths, transform, list_file

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return self.transform.geometry(_read_rgb(self.paths[i], self.list_file))


class ImageCache:
    """Decoded uint8 images of one list under one transform geometry, in one memory-mapped file.

    Files in cache_dir, named after the list and the geometry:
      {stem}.bin  all images' H x W x 3 bytes one after another (a flat uint8 array);
      {stem}.json the key, the image count and shape(s), the byte count; written last (atomically),
                  so it marks a complete .bin.
    The key is a SHA-1 of the list's provenance record (`list_record`: the list file's bytes, its
    images' content or path, size and mtime) and the geometry (resize_size, centre crop). A .json
    whose key differs (the list, an image or the transform changed), or a .bin of the wrong length
    (interrupted, truncated), is rebuilt with a printed note. Both files are written to temporary
    names and renamed.
    """

    FORMAT = 2  # 2: the key is built from list_record (images by content on small lists)

    def __init__(self, stem, shapes):
        self.stem = stem
        self.shapes = shapes                       # [N, 3] int64
        sizes = shapes.prod(1)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self._mm = None

    def __getstate__(self):  # DataLoader workers reopen the map instead of copying it
        return dict(self.__dict__, _mm=None)

    def __len__(self):
        return len(self.shapes)

    def __getitem__(self, i):
        if self._mm is None:
            self._mm = np.memmap(self.stem + '.bin', dtype=np.uint8, mode='r')
        a, b = self.offsets[i], self.offsets[i + 1]
        return np.array(self._mm[a:b]).reshape(self.shapes[i])

    @staticmethod
    def key(list_file, paths, transform, record=None):
        import hashlib
        record = record or list_record(list_file, paths)
        return hashlib.sha1(json.dumps(dict(
            record, geometry=transform.geometry_key(), format=ImageCache.FORMAT),
            sort_keys=True).encode()).hexdigest()

    @staticmethod
    def stem_for(cache_dir, list_file, transform):
        import hashlib
        where = hashlib.sha1(os.path.abspath(list_file).encode()).hexdigest()[:8]
        g = transform.geometry_key()
        name = os.path.splitext(os.path.basename(list_file))[0]
        return os.path.join(cache_dir, f"{name}_{where}_r{g['resize_size']}_c{g['center_crop']}")

    @classmethod
    def open(cls, cache_dir, list_file, paths, transform, num_workers=0, verbose=True, record=None):
        """Reuse the cache of this list and geometry, or (re)build it."""
        stem = cls.stem_for(cache_dir, list_file, transform)
        key = cls.key(list_file, paths, transform, record)
        why = cls._problem(stem, key, len(paths))
        if why is None:
            with open(stem + '.json') as f:
                info = json.load(f)
            if verbose:
                print(f"cache: reusing {stem}.bin ({len(paths)} images)")
            return cls(stem, cls._shapes(info))
        if verbose:
            print(f"cache: building {stem}.bin ({len(paths)} images)"
                  + ('' if why == 'absent' else f" -- existing cache {why}, rebuilt"), flush=True)
        return cls(stem, cls.build(stem, key, list_file, paths, transform, num_workers))

    @staticmethod
    def _shapes(info):
        if 'shape' in info:
            return np.tile(np.asarray(info['shape'], np.int64), (info['n'], 1))
        return np.asarray(info['shapes'], np.int64)

    @classmethod
    def _problem(cls, stem, key, n):
        """None if the cache at stem is complete and current, else why not (a short phrase)."""
        if not os.path.isfile(stem + '.json'):
            return 'absent'
        try:
            with open(stem + '.json') as f:
                info = json.load(f)
            if info.get('key') != key or info.get('format') != cls.FORMAT:
                return 'is stale (list, images or transform changed)'
            if info['n'] != n or len(cls._shapes(info)) != n:
                return 'is stale (image count differs)'
            if not os.path.isfile(stem + '.bin') or os.path.getsize(stem + '.bin') != info['nbytes']:
                return 'is corrupt (data file missing or of the wrong length)'
        except (ValueError, KeyError, TypeError, OSError):
            return 'is corrupt (unreadable index)'
        return None

    @classmethod
    def build(cls, stem, key, list_file, paths, transform, num_workers=0):
        import torch
        from tqdm import tqdm
        folder = os.path.dirname(os.path.abspath(stem))
        os.makedirs(folder, exist_ok=True)
        if os.path.exists(stem + '.json'):
            os.remove(stem + '.json')  # the index marks a complete .bin: drop it first
        # its own generator: building the cache must not draw from the global RNG, which seeds the
        # model next (a cached run would otherwise start from other weights)
        loader = torch.utils.data.DataLoader(_Decode(paths, transform, list_file), batch_size=None,
                                             num_workers=num_workers, generator=torch.Generator())
        shapes = []
        fd, tmp = tempfile.mkstemp(dir=folder, prefix='.tmp_' + os.path.basename(stem))
        try:
            with os.fdopen(fd, 'wb') as f:
                for arr in tqdm(loader, desc='cache', leave=False, disable=len(paths) < 5000):
                    arr = np.asarray(arr, dtype=np.uint8)
                    shapes.append(arr.shape)
                    f.write(arr.tobytes())
            os.replace(tmp, stem + '.bin')
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
        shapes = np.asarray(shapes, np.int64)
        info = {'format': cls.FORMAT, 'key': key, 'list': os.path.abspath(list_file),
                'n': len(paths), 'nbytes': int(shapes.prod(1).sum()),
                'geometry': transform.geometry_key()}
        if (shapes == shapes[0]).all():
            info['shape'] = shapes[0].tolist()
        else:
            info['shapes'] = shapes.tolist()
        atomic_write_text(stem + '.json', json.dumps(info) + '\n')
        return shapes


# --------------------------------------------------------------------------------------------
# 4. run files
# --------------------------------------------------------------------------------------------

def atomic_write_text(path, text):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix='.tmp_' + os.path.basename(path))
    try:
        with os.fdopen(fd, 'w') as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json(path, obj):
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + '\n')


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def append_jsonl(path, record):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'a') as f:
        f.write(json.dumps(record, sort_keys=True, default=_json_default) + '\n')


def git_commit():
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        out = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=here,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine():
    """What a run's digits depend on beyond its config and code: the CPU model (floating-point
    kernels differ between CPUs, so the same command can end a few thousandths of top-1 apart on
    another machine, docs/RESULTS.md), torch's version and its intra-op threads, and the GPU if any."""
    import platform
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next((l.split(':', 1)[1].strip() for l in f if l.startswith('model name')), cpu)
    except OSError:
        pass
    rec = {'cpu': cpu, 'torch': torch.__version__, 'threads': torch.get_num_threads()}
    if torch.cuda.is_available():
        rec['gpu'] = torch.cuda.get_device_name(0)
    return rec


def class_index(value, num_classes, key, words):
    """A config value naming a class by index ('3'); exits with a one-line error otherwise."""
    try:
        k = int(value)
    except ValueError:
        k = -1
    if not 0 <= k < num_classes:
        sys.exit(f"error: {key} must be {words} or a class index 0..{num_classes - 1}, got {value!r}")
    return k


def resolve_device(name):
    """'auto' -> cuda when available, else cpu; a CUDA device asked for without CUDA is an error."""
    import torch
    if name == 'auto':
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    if name.startswith('cuda') and not torch.cuda.is_available():
        sys.exit(f"error: device={name} asked for, but CUDA is not available")
    return name


# ---- several processes (torchrun) ------------------------------------------------------------
# `torchrun --nproc_per_node=N script.py ...` sets RANK, WORLD_SIZE and LOCAL_RANK; without them a
# script runs as one process, unchanged. Rank 0 alone prints, logs, evaluates and saves.

def dist_info():
    """(rank, world_size, local_rank) from torchrun's environment; (0, 1, 0) for one process."""
    try:
        return (int(os.environ.get('RANK', 0)), int(os.environ.get('WORLD_SIZE', 1)),
                int(os.environ.get('LOCAL_RANK', 0)))
    except ValueError:
        sys.exit("error: RANK / WORLD_SIZE / LOCAL_RANK must be integers (set by torchrun)")


def init_distributed(device):
    """Join the process group when started by torchrun: NCCL on CUDA (one GPU per local rank),
    gloo on CPU. Returns (rank, world_size, device); one process returns (0, 1, device)."""
    rank, world, local = dist_info()
    if world == 1:
        return 0, 1, device
    import torch
    import torch.distributed as dist
    if device.startswith('cuda'):
        device = f"cuda:{local}"
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group('nccl' if device.startswith('cuda') else 'gloo')
    return rank, world, device


def distributed():
    import torch.distributed as dist
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_gather_cat(t):
    """Concatenate (dim 0) the same-shaped tensor t of every process, in rank order; t alone in
    one process."""
    if not distributed():
        return t
    import torch
    import torch.distributed as dist
    parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, t.contiguous())
    return torch.cat(parts)


def broadcast_buffers(module):
    """Copy rank 0's buffers (BatchNorm running statistics) to every process. DDP broadcasts them
    at the start of each training forward, so after the last one each process holds its own
    shard's update; rank 0's are the ones saved in the checkpoint, and every shard must be
    encoded with them."""
    if distributed():
        import torch.distributed as dist
        for b in module.buffers():
            dist.broadcast(b.data, src=0)


def barrier():
    if distributed():
        import torch.distributed as dist
        dist.barrier()


# ---- precision and memory layout (config keys dtype, channels_last) -----------------------------

DTYPES = ('float32', 'bfloat16')


def check_dtype(dtype, device):
    """Validate the dtype key. bfloat16 is an autocast speed option for CUDA; on a CPU it runs
    under torch's CPU autocast, with a note: it is faster than float32 only on processors with
    bfloat16 instructions (AVX512-BF16, AMX)."""
    if dtype not in DTYPES:
        sys.exit(f"error: dtype must be 'float32' or 'bfloat16', got {dtype!r}")
    if dtype == 'bfloat16' and not str(device).startswith('cuda') and dist_info()[0] == 0:
        print("note: dtype=bfloat16 on the CPU runs under CPU autocast (meant for CUDA; on a CPU it "
              "beats float32 only where the processor has bfloat16 instructions, e.g. AVX512-BF16)")


def autocast(device, dtype):
    """Context for forward passes: bfloat16 autocast, or nothing for float32."""
    import contextlib
    import torch
    if dtype == 'float32':
        return contextlib.nullcontext()
    return torch.autocast(device_type=str(device).split(':')[0], dtype=torch.bfloat16)


def to_device(x, device, channels_last=False):
    """An image batch onto the device (asynchronous from pinned memory), optionally NHWC."""
    import torch
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    import torch
    torch.manual_seed(seed)


def save_checkpoint(path, obj):
    """torch.save to a temporary file in the same folder, then rename: never a half-written file."""
    import torch
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix='.tmp_' + os.path.basename(path))
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_checkpoint(path):
    import torch
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # truncated or foreign file
        raise ValueError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from None


class Timer:
    def __init__(self):
        self.t0 = time.time()

    def __call__(self):
        return time.time() - self.t0
