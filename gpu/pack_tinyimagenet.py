"""Cut Tiny ImageNet-200 (the official zip or folder) into balanced chunks small enough to travel to
a lent GPU machine (64 MiB per call, README "GPU runs"). Each chunk is a zip in the official layout
holding, for every class, its own slice of the training and validation images (natural file order),
plus wnids.txt and words.txt; its validation annotations are val/val_annotations.<k>.txt so that the
chunks extract into one folder without overwriting each other (gpu/run_tinyimagenet.sh joins them).
Any set of chunks is balanced per class, so data/prepare_tinyimagenet.py reads whatever arrived.

    python gpu/pack_tinyimagenet.py --src=../shared/data/tiny-imagenet-200.zip --chunks=2 \
        --train_per_chunk=115 --val_per_chunk=10 --out_dir=.gpu
"""
import os
import re
import sys
import zipfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import utils  # noqa: E402

# ---- config ------------------------------------------------------------------------------------
src = ''                  # tiny-imagenet-200.zip (official layout)
chunks = 2                # number of chunks written
train_per_chunk = 115     # training images per class in each chunk
val_per_chunk = 10        # validation images per class in each chunk
out_dir = '.gpu'          # chunk_<k>.zip go here
# ------------------------------------------------------------------------------------------------


def natural(name):
    return [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', name)]


if __name__ == '__main__':
    utils.configure(globals())
    if not zipfile.is_zipfile(src):
        sys.exit(f"error: {src!r} is not a zip (the official tiny-imagenet-200.zip expected)")
    z = zipfile.ZipFile(src)
    names = z.namelist()
    top = next(n[:-len('wnids.txt')] for n in names if n.endswith('wnids.txt'))
    wnids = z.read(top + 'wnids.txt').decode().split()
    train = {w: [] for w in wnids}
    for n in names:
        parts = n[len(top):].split('/')
        if len(parts) == 4 and parts[0] == 'train' and parts[2] == 'images' and parts[3]:
            train[parts[1]].append(n)
    val = {w: [] for w in wnids}
    for line in z.read(top + 'val/val_annotations.txt').decode().splitlines():
        f = line.split('\t')
        if len(f) >= 2 and f[1] in val:
            val[f[1]].append((f[0], line))
    os.makedirs(out_dir, exist_ok=True)
    for k in range(chunks):
        path = os.path.join(out_dir, f'chunk_{k}.zip')
        ann = []
        with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as out:
            for name in ('wnids.txt', 'words.txt'):
                out.writestr(top + name, z.read(top + name))
            for w in wnids:
                imgs = sorted(train[w], key=natural)[k * train_per_chunk:(k + 1) * train_per_chunk]
                vals = sorted(val[w], key=lambda t: natural(t[0]))[k * val_per_chunk:(k + 1) * val_per_chunk]
                if len(imgs) < train_per_chunk or len(vals) < val_per_chunk:
                    sys.exit(f"error: {src}: class {w} has too few images for chunk {k}")
                for n in imgs:
                    out.writestr(n, z.read(n))
                for f, line in vals:
                    out.writestr(top + 'val/images/' + f, z.read(top + 'val/images/' + f))
                    ann.append(line)
            out.writestr(top + f'val/val_annotations.{k}.txt', '\n'.join(ann) + '\n')
        print(f"{path}: {train_per_chunk} training + {val_per_chunk} validation images per class, "
              f"{os.path.getsize(path) / 2**20:.1f} MiB")
