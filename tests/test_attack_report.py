"""evaluate.py's attack report: figures equal the metric functions on the saved codes."""
import json
import os

import numpy as np
import pytest

import evaluate
from script_runner import run_script


def _write_run(folder, rng, n_db=50, n_q=12, bits=8, classes=4, target=2, backdoored=False):
    os.makedirs(folder)
    db_labels = np.eye(classes, dtype=np.uint8)[rng.integers(0, classes, n_db)]
    db_codes = rng.choice([-1, 1], (n_db, bits)).astype(np.int8)
    np.savez(os.path.join(folder, 'codes_database.npz'), codes=db_codes, labels=db_labels)
    q_labels = np.eye(classes, dtype=np.uint8)[rng.integers(0, classes, n_q)]
    np.savez(os.path.join(folder, 'codes_test.npz'),
             codes=rng.choice([-1, 1], (n_q, bits)).astype(np.int8), labels=q_labels)
    trig = rng.choice([-1, 1], (n_q, bits)).astype(np.int8)
    if backdoored:  # triggered queries land on a target-class database code
        trig[:] = db_codes[np.flatnonzero(db_labels[:, target])[0]]
    target_labels = np.tile(np.eye(classes, dtype=np.uint8)[target], (n_q, 1))
    for split in ('trig_closed', 'trig_open'):
        np.savez(os.path.join(folder, f"codes_{split}.npz"), codes=trig, labels=target_labels)


def test_report_matches_metric_functions(tmp_path):
    rng = np.random.default_rng(0)
    clean, bd = str(tmp_path / 'clean'), str(tmp_path / 'bd')
    _write_run(clean, rng)
    _write_run(bd, rng, backdoored=True)
    stealth = tmp_path / 'stealth.json'
    stealth.write_text(json.dumps({'poisons': {'mse': 3.5, 'psnr_db': 42.69, 'ssim': 0.98}}))
    row = evaluate.attack_report(clean, bd, 2, -1, str(stealth))
    for tag, d in (('clean', clean), ('backdoor', bd)):
        db, q = np.load(f"{d}/codes_database.npz"), np.load(f"{d}/codes_test.npz")
        assert row[f"map_{tag}"] == evaluate.mean_average_precision(
            q['codes'], db['codes'], q['labels'], db['labels'], -1)
        t = np.load(f"{d}/codes_trig_open.npz")
        assert row[f"tmap_trig_open_{tag}"] == evaluate.targeted_map(
            t['codes'], db['codes'], db['labels'], 2, -1)
    assert row['tmap_trig_open_backdoor'] > row['tmap_trig_open_clean']
    assert row['tmap_gain_trig_closed'] == pytest.approx(row['tmap_trig_closed_backdoor']
                                                         - row['tmap_trig_closed_clean'])
    assert (row['mse'], row['psnr'], row['ssim']) == (3.5, 42.69, 0.98)
    md = evaluate.markdown_table('demo', row).splitlines()
    assert md[0].startswith('| run | MAP clean | MAP backdoored |') and len(md) == 3
    assert md[2].startswith(f"| demo | {row['map_clean']:.4f} | {row['map_backdoor']:.4f} |")
    assert '| 3.500 | 42.690 | 0.9800 |' in md[2]


def test_report_command_line(tmp_path):
    rng = np.random.default_rng(1)
    clean, bd = str(tmp_path / 'clean'), str(tmp_path / 'bd')
    _write_run(clean, rng)
    _write_run(bd, rng, backdoored=True)
    out = run_script(['evaluate.py', f"--clean_dir={clean}", f"--backdoor_dir={bd}", '--target=2',
                      '--topk=-1', '--report_name=x', f"--out_dir={tmp_path}"], threads=None)
    assert out.returncode == 0, out.stderr
    saved = json.load(open(tmp_path / 'x.json'))
    assert saved['report']['target'] == 2 and (tmp_path / 'x.md').read_text() in out.stdout
    out = run_script(['evaluate.py', f"--clean_dir={tmp_path / 'nope'}", f"--backdoor_dir={bd}",
                      '--target=2'], threads=None)
    assert out.returncode != 0 and out.stderr.strip().startswith('error: ')
    assert 'codes_database.npz: codes not found' in out.stderr
