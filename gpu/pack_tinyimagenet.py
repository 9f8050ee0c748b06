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
import sys
import zipfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import utils  # noqa: E402
from data import common  # noqa: E402

# ---- config ------------------------------------------------------------------------------------
src = ''                  # tiny-imagenet-200.zip or its extracted folder (official layout)
chunks = 2                # number of chunks written
train_per_chunk = 115     # training images per class in each chunk
val_per_chunk = 10        # validation images per class in each chunk
out_dir = '.gpu'          # chunk_<k>.zip go here
# ------------------------------------------------------------------------------------------------


if __name__ == '__main__':
    utils.configure(globals())
    source = common.TinyImageNetSource(src)
    top = 'tiny-imagenet-200/'
    wnids = source.text('wnids.txt').split()
    train = source.train_images()
    val = {w: [] for w in wnids}
    for line in source.text('val/val_annotations.txt').splitlines():
        f = line.split('\t')
        if len(f) >= 2 and f[1] in val:
            val[f[1]].append((f[0], line))
    os.makedirs(out_dir, exist_ok=True)
    for k in range(chunks):
        path = os.path.join(out_dir, f'chunk_{k}.zip')
        ann = []
        with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as out:
            for name in ('wnids.txt', 'words.txt'):
                out.writestr(top + name, source.text(name))
            for w in wnids:
                imgs = train.get(w, [])[k * train_per_chunk:(k + 1) * train_per_chunk]
                vals = sorted(val[w], key=lambda t: common.natural_key(t[0]))[k * val_per_chunk:(k + 1) * val_per_chunk]
                if len(imgs) < train_per_chunk or len(vals) < val_per_chunk:
                    sys.exit(f"error: {src}: class {w} has too few images for chunk {k}")
                for n in imgs:
                    out.writestr(top + n, source.read(n))
                for f, line in vals:
                    out.writestr(top + 'val/images/' + f, source.read('val/images/' + f))
                    ann.append(line)
            out.writestr(top + f'val/val_annotations.{k}.txt', '\n'.join(ann) + '\n')
        print(f"{path}: {train_per_chunk} training + {val_per_chunk} validation images per class, "
              f"{os.path.getsize(path) / 2**20:.1f} MiB")
