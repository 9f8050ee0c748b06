"""gpu/: the tools that move Tiny ImageNet chunks to a lent GPU machine and pretrained weights back
(README "GPU runs"), on a small zip in the official layout built by test_prepare_tinyimagenet."""
import json
import os
import sys
import zipfile

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'tests'))
import utils  # noqa: E402
from script_runner import run_script  # noqa: E402
from test_prepare_tinyimagenet import SMALL, TRAIN, VAL, WNIDS, make_zip, run  # noqa: E402


def _py(*args):
    r = run_script(args, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_chunks_are_balanced_disjoint_and_prepare_reads_their_union(tmp_path):
    src = tmp_path / 'tiny-imagenet-200.zip'
    make_zip(src)
    _py('gpu/pack_tinyimagenet.py', f'--src={src}', '--chunks=2', '--train_per_chunk=2',
        '--val_per_chunk=1', f'--out_dir={tmp_path / "chunks"}')
    seen, folder = set(), tmp_path / 'ti'
    for k in range(2):
        with zipfile.ZipFile(tmp_path / 'chunks' / f'chunk_{k}.zip') as z:
            names = [n for n in z.namelist() if n.endswith('.JPEG')]
            train = [n for n in names if '/train/' in n]
            assert len(train) == 2 * len(WNIDS) and len(names) - len(train) == len(WNIDS)
            for w in WNIDS:   # each class its own slice, in natural file order
                assert sorted(n for n in train if f'/{w}/' in n) == \
                    [f'tiny-imagenet-200/train/{w}/images/{w}_{i}.JPEG' for i in (2 * k, 2 * k + 1)]
            assert not seen & set(names)
            seen |= set(names)
            ann = z.read(f'tiny-imagenet-200/val/val_annotations.{k}.txt').decode().split()
            assert len(ann) == 6 * len(WNIDS)   # one line of 6 fields per validation image
            z.extractall(folder)
    # what gpu/run_tinyimagenet.sh does on the machine: join the chunks' annotation files
    val = folder / 'tiny-imagenet-200' / 'val'
    with open(val / 'val_annotations.txt', 'w') as f:
        for k in range(2):
            f.write((val / f'val_annotations.{k}.txt').read_text())
    out = tmp_path / 'lists'
    run(f'--src={folder / "tiny-imagenet-200"}', f'--out_dir={out}', '--check_counts=False',
        *[a for a in SMALL if not a.startswith('--val_per_class')])
    paths, _ = utils.read_list(str(out / 'pretrain_train.txt'), num_classes=len(WNIDS))
    vpaths, _ = utils.read_list(str(out / 'pretrain_val.txt'), num_classes=len(WNIDS))
    assert len(paths) == 4 * len(WNIDS) < TRAIN * len(WNIDS) and len(vpaths) == 2 * len(WNIDS) <= VAL * len(WNIDS)


def test_weights_split_and_join_round_trip(tmp_path, monkeypatch):
    sys.path.insert(0, os.path.join(ROOT, 'gpu'))
    import weights
    monkeypatch.setattr(weights, 'PART_BYTES', 300)   # several parts
    torch.manual_seed(0)
    state = {'a.weight': torch.randn(10, 20), 'a.bias': torch.randn(20), 'bn.num_batches_tracked':
             torch.tensor(7), 'b.weight': torch.randn(300)}
    pth = tmp_path / 'run.pth'
    utils.save_checkpoint(str(pth), state)
    utils.write_json(str(tmp_path / 'run.json'), {'run': 'run', 'sha1': utils.file_sha1(str(pth))})
    (tmp_path / 'out').mkdir()
    weights.split(str(pth), str(tmp_path / 'out'))
    parts = sorted(os.listdir(tmp_path / 'out'))
    assert len(parts) >= 3
    for p in parts:   # each part's tensors fit the part size, unless one tensor alone is larger
        t = torch.load(tmp_path / 'out' / p, weights_only=True)
        assert sum(v.numel() * v.element_size() for v in t.values()) <= 300 or len(t) == 1
    weights.join(str(tmp_path / 'out' / 'run'), str(tmp_path / 'ck'), str(tmp_path / 'run.json'))
    back = torch.load(tmp_path / 'ck' / 'run.pth', weights_only=True)
    assert back.keys() == state.keys() and back['bn.num_batches_tracked'].item() == 7
    for k in ('a.weight', 'a.bias', 'b.weight'):
        assert back[k].dtype == torch.float32 and torch.equal(back[k], state[k].half().float())
    rec = json.load(open(tmp_path / 'ck' / 'run.json'))
    assert rec['transfer'] == 'float16' and rec['sha1'] == utils.file_sha1(str(tmp_path / 'ck' / 'run.pth'))
    assert rec['sha1_trained'] == utils.file_sha1(str(pth)) != rec['sha1']
