"""Move a pretrained backbone (pretrain.py's .pth and .json) off a lent GPU machine, whose files come
back at most 16 MiB each (README "GPU runs"), and put it back together here.

    python gpu/weights.py split checkpoint/<run>.pth $OUT     # there: $OUT/<run>.part<i>.pt
    python gpu/weights.py join DIR/<run> checkpoint RECORD    # here: checkpoint/<run>.pth + .json
                                                              # (RECORD: pretrain.py's <run>.json)

split stores floating tensors as float16 (a ResNet18 is 45 MB in float32); join casts them back to
float32, writes the .pth, and rewrites the record's sha1 for the joined file, noting the rounding
('transfer': 'float16' and the sha1 of the file trained there).
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import utils  # noqa: E402

PART_BYTES = 15 * 2**20


def split(pth, out_dir):
    run = os.path.splitext(os.path.basename(pth))[0]
    state = torch.load(pth, map_location='cpu', weights_only=True)
    parts, cur, size = [], {}, 0
    for k, v in state.items():
        v = v.half() if v.is_floating_point() else v
        nbytes = v.numel() * v.element_size()
        if cur and size + nbytes > PART_BYTES:
            parts.append(cur)
            cur, size = {}, 0
        cur[k], size = v, size + nbytes
    parts.append(cur)
    for i, p in enumerate(parts):
        torch.save(p, os.path.join(out_dir, f'{run}.part{i}.pt'))
    print(f"{pth}: {len(parts)} parts in {out_dir}")


def join(prefix, checkpoint_dir, record_path):
    run = os.path.basename(prefix)
    i, state = 0, {}
    while os.path.isfile(f'{prefix}.part{i}.pt'):
        state.update(torch.load(f'{prefix}.part{i}.pt', map_location='cpu', weights_only=True))
        i += 1
    if not i:
        sys.exit(f"error: {prefix}.part0.pt not found")
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    os.makedirs(checkpoint_dir, exist_ok=True)
    pth = os.path.join(checkpoint_dir, run + '.pth')
    utils.save_checkpoint(pth, state)
    with open(record_path) as f:
        record = json.load(f)
    record.update({'file': pth, 'sha1_trained': record['sha1'], 'sha1': utils.file_sha1(pth),
                   'transfer': 'float16'})
    utils.write_json(os.path.join(checkpoint_dir, run + '.json'), record)
    print(f"{pth}: joined from {i} parts (float16 -> float32), sha1 {record['sha1'][:12]}")


if __name__ == '__main__':
    if sys.argv[1:2] == ['split'] and len(sys.argv) == 4:
        split(sys.argv[2], sys.argv[3])
    elif sys.argv[1:2] == ['join'] and len(sys.argv) == 5:
        join(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit("usage: python gpu/weights.py split FILE.pth OUT_DIR | join DIR/RUN CHECKPOINT_DIR RECORD.json")
