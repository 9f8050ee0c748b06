"""Opt-in: CSQ from scratch on ../shared/data/tiny-imagenet-10, a short version of `make tiny`.

Runs only with BADHASH_TINY=1 (about 2 minutes on a 2-core CPU) and skips when the folder is absent
(users' machines do not have it).
"""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, TINY_IMAGENET

pytestmark = [
    pytest.mark.skipif(not os.path.isfile(os.path.join(TINY_IMAGENET, 'train.txt')),
                       reason='../shared/data/tiny-imagenet-10 is not here'),
    pytest.mark.skipif(os.environ.get('BADHASH_TINY') != '1',
                       reason='opt-in: set BADHASH_TINY=1'),
]


def test_csq_learns_tiny_imagenet(tmp_path):
    args = [sys.executable, 'CSQ.py', 'configs/tiny_imagenet10.py', f"--data_dir={TINY_IMAGENET}",
            '--epochs=3', '--eval_every=0', f"--checkpoint_dir={tmp_path}/ck",
            f"--out_dir={tmp_path}/res"]
    p = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout + p.stderr
    res = json.load(open(tmp_path / 'res' / 'tiny-imagenet-10_CSQ_resnet18_32' / 'results.json'))
    # 10 balanced classes: chance MAP@all is about 0.1; three epochs from scratch must beat it
    assert res['final']['test'] > 0.2, res['final']
