"""evaluate.py retrieval metrics against plain per-query loops written here (DeepHash style).

The loops follow DeepHash CalcTopMap / CalcTopMapWithPR (SPEC §4.4) with np.argsort(kind='stable')
so that ties are broken by database index (SPEC D19). Few bits -> many tied distances.
"""

import numpy as np
import pytest
from script_runner import run_script

import evaluate

TOL = 1e-9


# ------------------------------------------------------------------------------ reference loops

def ref_ranking(q_code, db_codes):
    hamm = 0.5 * (q_code.shape[0] - db_codes.astype(np.float64) @ q_code.astype(np.float64))
    return np.argsort(hamm, kind='stable')


def ref_map(q_codes, db_codes, q_labels, db_labels, topk):
    """Per-query APs, DeepHash CalcTopMap with a stable sort (topk=-1 means the whole database)."""
    topk = len(db_codes) if topk == -1 else topk
    aps = []
    for i in range(len(q_codes)):
        gnd = (db_labels.astype(np.float64) @ q_labels[i].astype(np.float64) > 0).astype(np.float64)
        tgnd = gnd[ref_ranking(q_codes[i], db_codes)][:topk]
        r = int(tgnd.sum())
        if r == 0:
            aps.append(0.0)
            continue
        count = np.linspace(1, r, r)
        tindex = np.flatnonzero(tgnd) + 1.0
        aps.append(np.mean(count / tindex))
    return np.array(aps)


def ref_pr(q_codes, db_codes, q_labels, db_labels, topk):
    """DeepHash CalcTopMapWithPR with a stable sort: mean P and R over queries with r > 0."""
    topk = len(db_codes) if topk == -1 else topk
    n_db = len(db_codes)
    precs, recalls = [], []
    for i in range(len(q_codes)):
        gnd = (db_labels.astype(np.float64) @ q_labels[i].astype(np.float64) > 0).astype(np.float64)
        gnd = gnd[ref_ranking(q_codes[i], db_codes)]
        if gnd[:topk].sum() == 0:
            continue
        hits = np.cumsum(gnd)
        precs.append(hits / np.arange(1, n_db + 1))
        recalls.append(hits / gnd.sum())
    return np.mean(precs, 0), np.mean(recalls, 0)


# ------------------------------------------------------------------------------ random data

def random_case(seed, n_query, n_db, bits, classes, multi, zeros=False):
    rng = np.random.default_rng(seed)
    q = rng.choice(np.array([-1, 1], np.int8), size=(n_query, bits))
    db = rng.choice(np.array([-1, 1], np.int8), size=(n_db, bits))
    db[rng.integers(0, n_db, n_db // 5)] = db[rng.integers(0, n_db, n_db // 5)]  # exact duplicates
    if zeros:
        q[rng.random(q.shape) < 0.1] = 0
        db[rng.random(db.shape) < 0.1] = 0
    if multi:
        ql = (rng.random((n_query, classes)) < 0.25).astype(np.uint8)
        dbl = (rng.random((n_db, classes)) < 0.25).astype(np.uint8)
        ql[0] = 0                              # a query without labels: never relevant
    else:
        eye = np.eye(classes, dtype=np.uint8)
        ql, dbl = eye[rng.integers(0, classes, n_query)], eye[rng.integers(0, classes, n_db)]
    return q, db, ql, dbl


CASES = [  # (bits, n_db, classes, multi, topk)
    (4, 300, 5, False, 10),
    (8, 300, 5, False, 50),       # selection branch (4k < N)
    (8, 300, 5, False, 100),      # argsort branch (4k >= N)
    (16, 257, 7, True, 30),
    (6, 200, 4, True, 500),       # topk > N
    (8, 150, 3, False, -1),       # whole database
    (12, 400, 3, False, 1),
]


@pytest.mark.parametrize('bits,n_db,classes,multi,topk', CASES)
@pytest.mark.parametrize('zeros', [False, True])
def test_map_matches_loop(bits, n_db, classes, multi, topk, zeros):
    q, db, ql, dbl = random_case(bits * 1000 + n_db, 37, n_db, bits, classes, multi, zeros)
    expected = ref_map(q, db, ql, dbl, topk)
    mean, per_query = evaluate.mean_average_precision(q, db, ql, dbl, topk, return_per_query=True)
    assert np.abs(per_query - expected).max() < TOL
    assert abs(mean - expected.mean()) < TOL
    # float codes (as torch.sign gives them) are the same thing
    assert abs(evaluate.mean_average_precision(q.astype(np.float32), db.astype(np.float32),
                                               ql, dbl, topk) - mean) < TOL


@pytest.mark.parametrize('chunk_size', [1, 2, 5, 36, 1000])
def test_chunk_size_invariance(chunk_size):
    q, db, ql, dbl = random_case(7, 36, 300, 8, 6, True)
    _, expected = evaluate.mean_average_precision(q, db, ql, dbl, 40, return_per_query=True)
    _, got = evaluate.mean_average_precision(q, db, ql, dbl, 40, return_per_query=True,
                                             chunk_size=chunk_size)
    assert np.array_equal(got, expected)
    curve = evaluate.pr_curve(q, db, ql, dbl, 40, positions='all', chunk_size=chunk_size)
    ref = evaluate.pr_curve(q, db, ql, dbl, 40, positions='all', chunk_size=1000)
    assert np.abs(curve['P'] - ref['P']).max() < TOL and np.abs(curve['R'] - ref['R']).max() < TOL
    # a tiny memory budget also forces one query per chunk
    assert abs(evaluate.mean_average_precision(q, db, ql, dbl, 40, mem_budget_mb=1e-6)
               - expected.mean()) < TOL


def test_hand_computed_toy():
    # query 0 = ++++, label class 0. Database (distance, relevant):
    #   0: ++++ (0, yes)  1: ---- (4, yes)  2: +++- (1, no)  3: ++-- (2, yes)  4: +++- (1, yes)
    # stable ranking: 0, 2, 4, 3, 1 (2 before 4: tie at distance 1, by index) -> rel 1 0 1 1 1
    #   top 3: hits at ranks 1, 3 -> AP = (1/1 + 2/3) / 2 = 5/6
    #   all 5: hits at ranks 1, 3, 4, 5 -> AP = (1/1 + 2/3 + 3/4 + 4/5) / 4 = 193/240
    # query 1 = ++++, label class 2: no relevant item -> AP 0, but it counts in the mean.
    db = np.array([[1, 1, 1, 1], [-1, -1, -1, -1], [1, 1, 1, -1], [1, 1, -1, -1], [1, 1, 1, -1]], np.int8)
    dbl = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [1, 0, 0], [1, 0, 0]], np.uint8)
    q = np.array([[1, 1, 1, 1], [1, 1, 1, 1]], np.int8)
    ql = np.array([[1, 0, 0], [0, 0, 1]], np.uint8)
    mean, aps = evaluate.mean_average_precision(q, db, ql, dbl, 3, return_per_query=True)
    assert aps == pytest.approx([5 / 6, 0.0], abs=1e-15) and mean == pytest.approx(5 / 12, abs=1e-15)
    for k in (5, -1, None, 99):
        assert evaluate.mean_average_precision(q[:1], db, ql[:1], dbl, k) == pytest.approx(193 / 240, abs=1e-15)
    # PR over the whole ranking, only query 0 takes part: hits 1 1 2 3 4 of 4 relevant
    curve = evaluate.pr_curve(q, db, ql, dbl, 3, positions='all')
    assert curve['n_used'] == 1 and curve['map'] == pytest.approx(5 / 12, abs=1e-15)
    assert curve['P'] == pytest.approx([1, 1 / 2, 2 / 3, 3 / 4, 4 / 5], abs=1e-15)
    assert curve['R'] == pytest.approx([1 / 4, 1 / 4, 2 / 4, 3 / 4, 1], abs=1e-15)
    assert evaluate.precision_at_topn(q, db, ql, dbl, 3, [2, 4]) == pytest.approx([1 / 2, 3 / 4], abs=1e-15)
    # t-MAP with target 1: only db item 2 is relevant, at rank 2 of the top 3 for both queries
    assert evaluate.targeted_map(q, db, dbl, 1, 3) == pytest.approx(1 / 2, abs=1e-15)
    assert evaluate.targeted_map(q, db, dbl, np.array([0, 1, 0]), 3) == pytest.approx(1 / 2, abs=1e-15)


def test_zero_in_codes_uses_deephash_distance():
    # query +0++ (sign(0) = 0). DeepHash distance 0.5 * (K - q.r):
    #   db 0: --++ -> q.r = 1 -> 1.5;  db 1: ++++ -> 3 -> 0.5;  db 2: +-++ -> 3 -> 0.5 (tie with db 1)
    # ranking 1, 2, 0; relevant: 1 and 0 -> top 2: AP = 1;  all: (1/1 + 2/3) / 2 = 5/6.
    # Treating the 0 as -1 would put db 2 (distance 0) first and give AP@2 = 1/2.
    q = np.array([[1, 0, 1, 1]], np.int8)
    db = np.array([[-1, -1, 1, 1], [1, 1, 1, 1], [1, -1, 1, 1]], np.int8)
    ql = np.array([[1, 0]], np.uint8)
    dbl = np.array([[1, 0], [1, 0], [0, 1]], np.uint8)
    assert evaluate.mean_average_precision(q, db, ql, dbl, 2) == pytest.approx(1.0, abs=1e-15)
    assert evaluate.mean_average_precision(q, db, ql, dbl, -1) == pytest.approx(5 / 6, abs=1e-15)
    assert evaluate.mean_average_precision(q.astype(np.float32), db, ql, dbl, 2) == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize('multi', [False, True])
def test_targeted_map_matches_loop(multi):
    q, db, ql, dbl = random_case(3, 41, 300, 8, 6, multi)
    target = 2
    onehot = np.zeros((len(q), 6), np.uint8)
    onehot[:, target] = 1
    expected = ref_map(q, db, onehot, dbl, 50)
    mean, per_query = evaluate.targeted_map(q, db, dbl, target, 50, return_per_query=True, chunk_size=4)
    assert np.abs(per_query - expected).max() < TOL and abs(mean - expected.mean()) < TOL
    assert abs(evaluate.targeted_map(q, db, dbl, onehot[0], 50) - mean) < TOL


@pytest.mark.parametrize('bits,n_db,classes,multi,topk', CASES)
def test_pr_curve_matches_loop(bits, n_db, classes, multi, topk):
    q, db, ql, dbl = random_case(bits + n_db, 23, n_db, bits, classes, multi, zeros=bits == 6)
    p_ref, r_ref = ref_pr(q, db, ql, dbl, topk)
    curve = evaluate.pr_curve(q, db, ql, dbl, topk, positions='all', chunk_size=5)
    assert np.abs(curve['P'] - p_ref).max() < TOL and np.abs(curve['R'] - r_ref).max() < TOL
    assert abs(curve['map'] - ref_map(q, db, ql, dbl, topk).mean()) < TOL
    sampled = evaluate.pr_curve(q, db, ql, dbl, topk)                 # DeepHash positions
    index = evaluate.deephash_pr_indices(n_db)
    assert np.array_equal(sampled['index'], index) and np.array_equal(sampled['n'], index + 1)
    assert np.abs(sampled['P'] - p_ref[index]).max() < TOL and np.abs(sampled['R'] - r_ref[index]).max() < TOL
    ns = [1, 7, n_db]
    assert np.abs(evaluate.precision_at_topn(q, db, ql, dbl, topk, ns) - p_ref[np.array(ns) - 1]).max() < TOL


def test_pr_curve_no_query_used():
    q = np.ones((2, 4), np.int8)
    db = np.ones((3, 4), np.int8)
    curve = evaluate.pr_curve(q, db, np.array([[1, 0]] * 2), np.array([[0, 1]] * 3), 2, positions='all')
    assert curve['n_used'] == 0 and curve['map'] == 0.0 and np.all(np.isnan(curve['P']))


def test_deephash_pr_indices():
    # DeepHash validate: 99, 199, ..., 100 * floor(N / 100) - 1, then every remaining index
    assert evaluate.deephash_pr_indices(250).tolist() == [99, 199] + list(range(200, 250))
    assert evaluate.deephash_pr_indices(300).tolist() == [99, 199, 299]
    assert evaluate.deephash_pr_indices(42).tolist() == list(range(42))


def test_large_code_length_and_label_width():
    # > 64 bits (several uint64 words, uint16 distances with zeros) and > 64 classes (multi-word labels)
    for bits, zeros in [(130, False), (200, True)]:
        q, db, ql, dbl = random_case(bits, 19, 120, bits, 70, True, zeros)
        expected = ref_map(q, db, ql, dbl, 20)
        assert abs(evaluate.mean_average_precision(q, db, ql, dbl, 20, chunk_size=3) - expected.mean()) < TOL


def test_input_checks():
    q, db, ql, dbl = random_case(0, 4, 10, 8, 3, False)
    with pytest.raises(ValueError):
        evaluate.mean_average_precision(q * 2, db, ql, dbl, 5)              # not +-1 codes
    with pytest.raises(ValueError):
        evaluate.mean_average_precision(q[:, :4], db, ql, dbl, 5)           # code lengths differ
    with pytest.raises(ValueError):
        evaluate.mean_average_precision(q, db, ql, dbl, 0)                  # bad topk
    with pytest.raises(ValueError):
        evaluate.targeted_map(q, db, dbl, 3, 5)                             # target out of range
    with pytest.raises(ValueError):
        evaluate.mean_average_precision(q, db, ql, dbl, 5, device='tpu')


def test_cuda_path():
    torch = pytest.importorskip('torch')
    q, db, ql, dbl = random_case(5, 29, 300, 8, 5, True, zeros=True)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match='CUDA is not available'):
            evaluate.mean_average_precision(q, db, ql, dbl, 40, device='cuda')
        return
    for multi in (False, True):
        q, db, ql, dbl = random_case(5, 29, 300, 8, 5, multi, zeros=multi)
        for k in (40, 200):
            cpu = evaluate.mean_average_precision(q, db, ql, dbl, k, return_per_query=True)[1]
            gpu = evaluate.mean_average_precision(q, db, ql, dbl, k, return_per_query=True,
                                                  device='cuda', chunk_size=4)[1]
            assert np.abs(cpu - gpu).max() < TOL
            c_cpu = evaluate.pr_curve(q, db, ql, dbl, k, positions='all')
            c_gpu = evaluate.pr_curve(q, db, ql, dbl, k, positions='all', device='cuda', chunk_size=4)
            assert np.abs(c_cpu['P'] - c_gpu['P']).max() < TOL and np.abs(c_cpu['R'] - c_gpu['R']).max() < TOL


def test_cli(tmp_path):
    q, db, ql, dbl = random_case(11, 20, 300, 8, 5, False)
    np.savez(tmp_path / 'test.npz', codes=q, labels=ql)
    np.savez(tmp_path / 'database.npz', codes=db, labels=dbl)
    expected = ref_map(q, db, ql, dbl, 50).mean()
    out = run_script([evaluate.__file__, f"--query={tmp_path / 'test.npz'}",
                      f"--database={tmp_path / 'database.npz'}", '--topk=50',
                      f"--pr={tmp_path / 'pr.json'}"], threads=None)
    assert out.returncode == 0, out.stderr
    assert f"MAP@50 = {expected:.4f}" in out.stdout
    assert (tmp_path / 'pr.json').exists()
    bad = run_script([evaluate.__file__, '--topkk=5'], threads=None)
    assert bad.returncode != 0 and 'topkk' in bad.stderr


# ---- tie-aware AP (ties='expected') -----------------------------------------------------------

def _tie_case():
    # 7 database items, 4 bits: distances to the query form tie groups; 3 queries
    db = np.array([[1, 1, 1, 1], [1, 1, 1, -1], [1, 1, 1, 1], [-1, 1, 1, -1], [1, 1, 1, -1],
                   [-1, -1, 1, 1], [1, 1, 1, 1]], np.int8)
    db_lab = np.eye(3, dtype=np.uint8)[[0, 1, 2, 0, 0, 1, 2]]
    q = np.array([[1, 1, 1, 1], [1, 1, 1, -1], [-1, 1, 1, -1]], np.int8)
    q_lab = np.eye(3, dtype=np.uint8)[[0, 1, 2]]
    return q, db, q_lab, db_lab


@pytest.mark.parametrize('topk', [-1, 3])
def test_expected_ties_equals_the_mean_over_every_database_order(topk):
    """Averaging the index-tie-break AP over all 7! orders of the database is the expectation over
    random tie orders. topk=3 cuts between tie groups for every query, so both are exact there."""
    import itertools
    q, db, q_lab, db_lab = _tie_case()
    per = np.zeros(len(q))
    perms = list(itertools.permutations(range(len(db))))
    for p in perms:
        p = list(p)
        per += evaluate.mean_average_precision(q, db[p], q_lab, db_lab[p], topk,
                                               return_per_query=True)[1]
    want = per / len(perms)
    got = evaluate.mean_average_precision(q, db, q_lab, db_lab, topk, ties='expected',
                                          return_per_query=True)[1]
    assert got == pytest.approx(want, abs=1e-12)


def test_expected_ties_equal_index_ties_without_ties_and_remove_the_order_bias():
    rng = np.random.default_rng(3)
    db = np.where(rng.random((300, 64)) > 0.5, 1, -1).astype(np.int8)   # 64 random bits: no ties
    q = db[:20].copy()
    q[:, :5] *= -1
    lab = np.eye(4, dtype=np.uint8)[rng.integers(0, 4, 300)]
    a = evaluate.mean_average_precision(q, db, lab[:20], lab, -1)
    b = evaluate.mean_average_precision(q, db, lab[:20], lab, -1, ties='expected')
    dist = (64 - q.astype(int) @ db.T.astype(int)) // 2
    if all(len(np.unique(row)) == len(row) for row in dist):
        assert b == pytest.approx(a, abs=1e-12)
    # every database item at the same distance: index order puts class 0 first (AP 1 for a
    # class-0 target), the expectation is the base rate's AP
    db1 = np.ones((100, 8), np.int8)
    lab1 = np.eye(4, dtype=np.uint8)[np.repeat(np.arange(4), 25)]
    t_index = evaluate.targeted_map(db1[:5], db1, lab1, 0, -1)
    t_exp = evaluate.targeted_map(db1[:5], db1, lab1, 0, -1, ties='expected')
    assert t_index == pytest.approx(1.0)
    assert 0.2 < t_exp < 0.3  # E[AP] of 25 relevant among 100 in random order, about 0.26
    with pytest.raises(ValueError, match="ties must be"):
        evaluate.mean_average_precision(q, db, lab[:20], lab, -1, ties='random')
