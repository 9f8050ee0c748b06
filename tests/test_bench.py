"""The benchmarks in bench/ run to the end at small sizes and print what docs/RESULTS.md quotes.

Speed itself is not asserted here (that is what the scripts measure); these tests keep the
scripts from breaking, and check the invariants they print: identical codes from the cache,
equal MAP from both implementations, FLOPs that add up."""
import os
import re

from script_runner import run_script

RATIO = r"ratio x(\d+\.\d+)"


def bench(script, *args):
    p = run_script([os.path.join('bench', script), *args], timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def test_train_step_bench_and_its_phase_breakdown():
    out = bench('bench_train_step.py', '--device=cpu', '--threads=1', '--image_size=32',
                '--batch_size=4', '--gan_batch=2', '--ngf=8', '--ndf=8', '--steps=1', '--rounds=1',
                '--warmup=0', '--breakdown=True')
    assert re.search(r"surrogate step .* ratio x\d", out), out
    assert re.search(r"GAN step .* ratio x\d", out), out
    assert all(float(r) > 0 for r in re.findall(RATIO, out))
    # FLOPs per image: the total is the sum of the phases, and G's share is the largest
    line = next(ln for ln in out.splitlines() if 'FLOPs per image' in ln)
    total = float(re.search(r"FLOPs per image: ([\d.]+) G", line).group(1))
    pairs = re.findall(r"(?:= |, )([A-Za-z +()_]+?) (\d[\d.e+-]*)(?=,|$)", line)
    phases = {name: float(value) for name, value in pairs}
    assert set(phases) == {'G forward', 'D step (every d_every)', 'LPIPS forward',
                           'surrogate + D forward', 'G loss + backward', 'G optimiser step'}
    assert abs(sum(phases.values()) - total) < 0.1 + 0.01 * total
    assert phases['G loss + backward'] > phases['G forward'] > 0
    for name in ('float32', 'fast'):
        assert re.search(rf"^  {name}: [\d.]+ ms/step, [\d.]+ TFLOP/s = G forward", out, re.M), out


def test_cache_bench_on_a_small_list(image_lists):
    out = bench('bench_cache.py', f"--train_list={image_lists}/train.txt", '--image_size=16',
                '--batch_size=8', '--rounds=1', '--threads=1', '--device=cpu')
    assert re.search(r"input-pipeline epoch: decode [\d.]+ s \| cache [\d.]+ s \| ratio x", out), out
    assert re.search(r"training epoch \(resnet18 CSQ, float32\): decode .* ratio x", out), out


def test_encode_bench_checks_identical_codes(image_lists):
    out = bench('bench_encode.py', f"--db_list={image_lists}/database.txt", '--image_size=16',
                '--batch_size=16', '--rounds=1', '--threads=1', '--device=cpu')
    assert 'identical codes' in out, out
    assert re.search(r"(\d+) of (\d+) bits differ", out), out


def test_map_bench_agrees_with_the_per_query_loop():
    out = bench('bench_map.py', '--n_query=30', '--n_db=400', '--classes=5', '--topk=100')
    assert '|diff|=' in out and 'speed-up x' in out, out


def test_map_bench_rejects_an_unknown_key():
    p = run_script(['bench/bench_map.py', '--nquery=3'], timeout=60, threads=None)
    assert p.returncode != 0 and "unknown config key 'nquery'" in p.stderr


def test_pr_memory_bench_small():
    out = bench('bench_pr_memory.py', '--n_query=40', '--n_db=2000')
    assert re.search(r"peak \d+ MiB in [\d.]+ s, 40 queries used", out), out
