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


def _coerce(key, value, default, source):
    if default is None or value is None:
        return value
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


def apply_overrides(g, argv, allow_positional=True):
    """Apply preset files and --key=value items in `argv` to the dict `g` in place."""
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
            items = _read_preset(arg)
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
    if show:
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
    import torchvision.transforms as T
    ops = [T.Resize(resize_size)] if resize_size else []
    if augment == 'none':
        if image_size:
            ops.append(T.CenterCrop(image_size))
    elif augment == 'deephash':  # D14 option: flip + random crop (padded when not resized)
        ops += [T.RandomHorizontalFlip(),
                T.RandomCrop(image_size, padding=0 if resize_size else image_size // 8)]
    else:
        raise ConfigError(f"augment must be 'none' or 'deephash', got {augment!r}")
    ops.append(T.ToTensor())
    return T.Compose(ops)


class ImageList:
    """Images of a list file as (image tensor, label float tensor, index) triples."""

    def __init__(self, list_file, root=None, transform=None, num_classes=None):
        self.list_file = list_file
        self.paths, self.labels = read_list(list_file, root=root, num_classes=num_classes)
        self.transform = transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        import torch
        from PIL import Image
        try:
            with Image.open(self.paths[i]) as im:
                img = im.convert('RGB')
        except (OSError, ValueError) as e:
            raise ListError(f"{self.list_file}: cannot read image {self.paths[i]} ({e})") from None
        if self.transform is not None:
            img = self.transform(img)
        return img, torch.from_numpy(self.labels[i].astype(np.float32)), i


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
