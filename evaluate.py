"""Metrics computed from saved arrays, without any training code (STYLE habit 12).

Sections:
  1. retrieval metrics -- MAP@k, t-MAP, PR curve and precision@topN with DeepHash semantics
                          (SPEC §4.4, D19, D22), exact and chunked over queries
  2. attack report     -- clean MAP and triggered-query t-MAP of a clean and a backdoored model,
                          with the stealth figures of the poisons; a JSON and a markdown table row
  3. command line      -- MAP / t-MAP / PR from the .npz files, or the attack report

Run from the command line:
    python evaluate.py --query=results/RUN/codes_test.npz --database=results/RUN/codes_database.npz --topk=1000
    python evaluate.py --query=results/RUN/codes_trig_open.npz --database=results/RUN/codes_database.npz --target=55 --pr=pr.json
    python evaluate.py --clean_dir=results/CLEAN_RUN --backdoor_dir=results/VICTIM_RUN --target=3 \
        --stealth=results/ATTACK/stealth.json --topk=-1

Each .npz holds `codes` (int8, N x K, entries +1/-1, a 0 where sign(0) happened) and `labels`
(uint8, N x C, 0/1, one or several 1 per row).

Importing this file is cheap: numpy and utils only; torch is imported only when device='cuda' is asked for.
"""
import json
import os
import sys
import time

import numpy as np

import utils

# -------------------------------------------------------------------------------- config (CLI)
query = ''             # .npz with the query codes and labels (e.g. the clean test split)
database = ''          # .npz with the database codes and labels
topk = 1000            # MAP@topk; -1 = whole database. 1000 for both datasets (SPEC D19)
target = -1            # class index; >= 0 replaces every query label with this one-hot (t-MAP)
pr = ''                # if set, also write the DeepHash PR curve JSON {index, P, R} to this path
device = 'cpu'         # 'cpu' (numpy) or 'cuda' (torch, chunked on the GPU)
mem_budget_mb = 256    # working memory per chunk of queries; sets the chunk size
ties = 'index'         # items at equal distance: 'index' = database order (D19) | 'expected' = the AP
                       # expected over random tie orders (our option; CPU), unbiased with few distinct codes
# attack report (section 2): used when clean_dir and backdoor_dir are given
clean_dir = ''         # results/{run} of the clean model (codes_*.npz written by CSQ.py/HashNet.py)
backdoor_dir = ''      # results/{run} of the backdoored victim, same architecture and queries
stealth = ''           # stealth.json written by implement_tri_gen.py ('' = none)
report_name = ''       # writes results/{report_name}.json and .md ('' = backdoor run's name)
out_dir = 'results'
# ---------------------------------------------------------------------------------------------


# =============================================================================================
# 1. retrieval metrics (DeepHash semantics, SPEC §4.4)
# =============================================================================================
# Ranking: for every query the database is ordered by Hamming distance 0.5 * (K - q.r) with a
# *stable* sort, i.e. ties are broken by database index (SPEC D19; DeepHash itself uses the
# unstable np.argsort, so its tie order is platform-defined). Relevance: query_label . db_label > 0.
#
# MAP@k (DeepHash CalcTopMap): r = number of relevant items among the first k ranked ones;
#   AP = (1/r) * sum_j j / rank_j over the relevant items in the top k, AP = 0 when r = 0, and the
#   mean is taken over *all* queries. k = -1 / None / k > N_db means the whole database (note:
#   DeepHash itself slices gnd[0:-1] for topK = -1, which drops the last item; we do not).
#
# PR (DeepHash CalcTopMapWithPR): for each query with r > 0 in the top k, over the whole ranking,
#   P[n] = hits in the first n / n and R[n] = hits in the first n / relevant in the database;
#   the curves are means over those queries only.
#
# How it is computed (identical results to a per-query loop with np.argsort(kind='stable')):
#   - codes without zeros are packed into uint64 bit words, Hamming = popcount(q XOR r); with a
#     0 anywhere the exact integer 2 * Hamming = K - q.r is used instead (float32 matmul of
#     -1/0/+1 values is exact). Either way the distance is a small integer (uint8/uint16).
#   - top-k per query without a full sort: binary search for the distance t of the k-th item
#     (counting items <= t), keep every item closer than t plus the first items at distance t by
#     index, then sort only those k items by distance (stable, so ties stay in index order).
#   - queries are processed in chunks whose size follows a memory budget; the PR sums are
#     accumulated as histograms over rank positions, never as a queries x database float matrix.

_BYTES_MAP = 16        # working bytes per (query, database item) for MAP (distances, masks, argsort)
_BYTES_TIES = 40       # the same for tie-aware AP (int64 distance keys, relevance, bincount input)
_BYTES_PR = 40         # the same for the full ranking of the PR curve (argsort indices, relevance)
_XOR_ROWS = 8          # queries per XOR + popcount block (an 8 x N uint64 buffer)


def _resolve_topk(k, n_db):
    if k is None or k == -1 or k > n_db:
        return n_db
    if k < 1:
        raise ValueError(f"topk must be a positive int, -1 or None, got {k}")
    return int(k)


def _check_codes(codes, name):
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (N x K), got shape {codes.shape}")
    if not np.all((codes == 1) | (codes == -1) | (codes == 0)):
        raise ValueError(f"{name} must contain only +1 / -1 (or 0 from sign(0))")
    return codes


def _check_labels(labels, name, n):
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape[0] != n:
        raise ValueError(f"{name} must be a 2-D array with {n} rows, got shape {labels.shape}")
    if labels.size and labels.min() < 0:
        raise ValueError(f"{name} must be non-negative (0/1 labels)")
    return labels


def _pack_bits(bits):
    """Boolean N x L -> uint64 N x ceil(L/64); bit order is irrelevant, only AND / XOR are used."""
    n, length = bits.shape
    words = -(-length // 64)
    padded = np.zeros((n, words * 64), dtype=bool)
    padded[:, :length] = bits
    return np.packbits(padded, axis=1, bitorder='little').view(np.uint64)


def _single_label_classes(labels):
    """Class index per row if every row has exactly one positive entry, else None."""
    positive = labels > 0
    if positive.shape[0] and np.all(positive.sum(1) == 1):
        return positive.argmax(1)
    return None


def _chunk_size(n_query, n_db, bytes_per_pair, mem_budget_mb, chunk_size):
    if chunk_size is None:
        chunk_size = int(mem_budget_mb * 2 ** 20 // (bytes_per_pair * max(n_db, 1)))
    return int(min(max(chunk_size, 1), max(n_query, 1)))


def _prepare(q_codes, db_codes, q_labels, db_labels, device, chunk_size, mem_budget_mb, bytes_per_pair):
    """Validate the inputs and bring them into the form the chunk functions use (a plain dict)."""
    q_codes = _check_codes(q_codes, 'q_codes')
    db_codes = _check_codes(db_codes, 'db_codes')
    if q_codes.shape[1] != db_codes.shape[1]:
        raise ValueError(f"code lengths differ: {q_codes.shape[1]} vs {db_codes.shape[1]}")
    q_labels = _check_labels(q_labels, 'q_labels', q_codes.shape[0])
    db_labels = _check_labels(db_labels, 'db_labels', db_codes.shape[0])
    if q_labels.shape[1] != db_labels.shape[1]:
        raise ValueError(f"label widths differ: {q_labels.shape[1]} vs {db_labels.shape[1]}")
    n_query, n_bits = q_codes.shape
    n_db = db_codes.shape[0]
    if n_db == 0:
        raise ValueError("the database is empty")

    ctx = dict(n_query=n_query, n_db=n_db, n_bits=n_bits, device=device,
               chunk=_chunk_size(n_query, n_db, bytes_per_pair, mem_budget_mb, chunk_size))
    has_zero = bool((q_codes == 0).any() or (db_codes == 0).any())
    # distance key: Hamming (0..K) from popcount, or 2 * Hamming = K - q.r (0..2K) when zeros occur
    max_dist = 2 * n_bits if has_zero else n_bits
    ctx['max_dist'] = max_dist
    ctx['dist_dtype'] = np.uint8 if max_dist <= 255 else np.uint16
    q_cls, db_cls = _single_label_classes(q_labels), _single_label_classes(db_labels)
    single = q_cls is not None and db_cls is not None

    if device == 'cpu':
        ctx['packed'] = not has_zero
        if has_zero:
            ctx['q_float'] = q_codes.astype(np.float32)
            ctx['db_float_t'] = np.ascontiguousarray(db_codes.astype(np.float32).T)     # K x N
        else:
            ctx['q_words'] = _pack_bits(q_codes > 0)                                   # Nq x W
            ctx['db_words_t'] = np.ascontiguousarray(_pack_bits(db_codes > 0).T)       # W x N
        if single:
            ctx['q_cls'], ctx['db_cls'] = q_cls, db_cls
        else:
            ctx['q_lwords'] = _pack_bits(q_labels > 0)
            ctx['db_lwords_t'] = np.ascontiguousarray(_pack_bits(db_labels > 0).T)
        # work buffers, allocated once and reused by every chunk (avoids page faults per chunk)
        c, n_pad = ctx['chunk'], -(-n_db // 8) * 8
        ctx['dist'] = np.empty((c, n_db), ctx['dist_dtype'])
        ctx['mask'] = np.zeros((c, n_pad), dtype=bool)      # padding columns stay False
        if has_zero:
            ctx['fbuf'] = np.empty((c, n_db), np.float32)
        else:
            ctx['xbuf'] = np.empty((min(c, _XOR_ROWS), n_db), np.uint64)
            ctx['tmp'] = np.empty((min(c, _XOR_ROWS), n_db), ctx['dist_dtype'])
    elif str(device).startswith('cuda'):
        torch = _cuda_torch(device)
        ctx['torch'] = torch
        ctx['q_float'] = torch.as_tensor(q_codes.astype(np.float32)).to(device)
        ctx['db_float_t'] = torch.as_tensor(db_codes.astype(np.float32).T.copy()).to(device)
        ctx['arange'] = torch.arange(n_db, device=device, dtype=torch.int64)
        if single:
            ctx['q_cls'] = torch.as_tensor(q_cls).to(device)
            ctx['db_cls'] = torch.as_tensor(db_cls).to(device)
        else:
            ctx['q_lab'] = torch.as_tensor((q_labels > 0).astype(np.float32)).to(device)
            ctx['db_lab_t'] = torch.as_tensor((db_labels > 0).astype(np.float32).T.copy()).to(device)
    else:
        raise ValueError(f"device must be 'cpu' or 'cuda[:i]', got {device!r}")
    return ctx


def _cuda_torch(device):
    try:
        import torch
    except ImportError as e:
        raise RuntimeError(f"device={device!r} needs torch, which is not installed; use device='cpu'") from e
    if not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} requested but CUDA is not available; use device='cpu'")
    return torch


# ---- CPU (numpy) chunk functions ------------------------------------------------------------

def _distances_cpu(ctx, s, e):
    """Integer distance key for queries s:e against the whole database -> view of ctx['dist']."""
    dist = ctx['dist'][:e - s]
    if ctx['packed']:
        q, db = ctx['q_words'], ctx['db_words_t']
        for s2 in range(s, e, _XOR_ROWS):            # a few rows at a time: the xor stays in cache
            e2 = min(s2 + _XOR_ROWS, e)
            xbuf, tmp, out = ctx['xbuf'][:e2 - s2], ctx['tmp'][:e2 - s2], dist[s2 - s:e2 - s]
            for w in range(db.shape[0]):
                np.bitwise_xor(q[s2:e2, w, None], db[w][None, :], out=xbuf)
                np.bitwise_count(xbuf, out=out if w == 0 else tmp)
                if w > 0:
                    out += tmp
    else:
        fbuf = ctx['fbuf'][:e - s]
        np.matmul(ctx['q_float'][s:e], ctx['db_float_t'], out=fbuf)   # exact small integers
        np.subtract(ctx['n_bits'], fbuf, out=fbuf)                      # K - q.r = 2 * Hamming
        np.copyto(dist, fbuf, casting='unsafe')
    return dist


def _relevance_pairs_cpu(ctx, s, e, idx):
    """Relevance of database items idx[i, j] (b x k) for query s + i."""
    if 'q_cls' in ctx:
        return ctx['q_cls'][s:e, None] == ctx['db_cls'][idx]
    q, db = ctx['q_lwords'], ctx['db_lwords_t']
    rel = np.zeros(idx.shape, dtype=bool)
    for w in range(db.shape[0]):
        rel |= (q[s:e, w, None] & db[w][idx]) != 0
    return rel


def _relevance_full_cpu(ctx, s, e):
    """Relevance of every database item (b x N) for queries s:e."""
    if 'q_cls' in ctx:
        return ctx['q_cls'][s:e, None] == ctx['db_cls'][None, :]
    q, db = ctx['q_lwords'], ctx['db_lwords_t']
    rel = np.zeros((e - s, ctx['n_db']), dtype=bool)
    for w in range(db.shape[0]):
        rel |= (q[s:e, w, None] & db[w][None, :]) != 0
    return rel


def _count_le(ctx, dist, v):
    """Per row: number of entries of dist that are <= v[row]."""
    b, n_db = dist.shape
    mask = ctx['mask'][:b]
    np.less_equal(dist, v[:, None], out=mask[:, :n_db])
    # bool bytes are 0/1, so popcount over 8-byte words counts the True entries
    return np.bitwise_count(mask.view(np.uint64)).sum(1, dtype=np.int64)


def _topk_cpu(ctx, dist, k):
    """Indices (b x k) of the k first items of each row of dist in stable (distance, index) order."""
    b, n_db = dist.shape
    if 4 * k >= n_db:      # most of the row is needed: a stable radix argsort is as cheap
        return np.argsort(dist, axis=1, kind='stable')[:, :k]
    # 1. t = distance of the k-th item: smallest v with #(dist <= v) >= k (binary search per row)
    lo = np.zeros(b, np.int64)
    hi = np.full(b, ctx['max_dist'], np.int64)
    while np.any(lo < hi):
        mid = (lo + hi) // 2
        ok = _count_le(ctx, dist, mid.astype(dist.dtype)) >= k
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid + 1)
    t = lo.astype(dist.dtype)
    # 2. all items with dist <= t, in (row, index) order
    mask = ctx['mask'][:b]
    np.less_equal(dist, t[:, None], out=mask[:, :n_db])
    flat = np.flatnonzero(mask)
    rows = flat // mask.shape[1]
    cols = flat - rows * mask.shape[1]
    d = dist[rows, cols]
    # 3. keep the items closer than t, and at distance t only the first (k - #closer) by index
    at_t = d == t[rows]
    n_closer = np.bincount(rows[~at_t], minlength=b)
    rows_t = rows[at_t]
    first_t = np.concatenate([[0], np.cumsum(np.bincount(rows_t, minlength=b))[:-1]])
    rank_t = np.arange(rows_t.size) - first_t[rows_t]
    keep = ~at_t
    keep[at_t] = rank_t < (k - n_closer)[rows_t]
    cols = cols[keep].reshape(b, k)
    d = d[keep].reshape(b, k)
    # 4. order the k survivors by distance; the stable sort keeps index order within a distance
    return np.take_along_axis(cols, np.argsort(d, axis=1, kind='stable'), axis=1)


def _chunk_topk_rel_cpu(ctx, s, e, k):
    dist = _distances_cpu(ctx, s, e)
    return _relevance_pairs_cpu(ctx, s, e, _topk_cpu(ctx, dist, k))


def _chunk_full_rank_cpu(ctx, s, e):
    """Relevance in ranked order (b x N bool) and #relevant per query, for the PR curve."""
    dist = _distances_cpu(ctx, s, e)
    order = np.argsort(dist, axis=1, kind='stable')
    rel = _relevance_full_cpu(ctx, s, e)
    return np.take_along_axis(rel, order, axis=1), rel.sum(1)


# ---- CUDA (torch) chunk functions -------------------------------------------------------------

def _distances_cuda(ctx, s, e):
    """Unique int64 ranking key (2 * Hamming) * N + index for queries s:e (b x N, on the GPU)."""
    torch = ctx['torch']
    with torch.autocast('cuda', enabled=False):
        # -1/0/+1 and their sums are exact in float32 (and in TF32, which keeps an fp32 accumulator)
        dot = ctx['q_float'][s:e] @ ctx['db_float_t']
    dist = (ctx['n_bits'] - dot).round_().to(torch.int64)
    return dist.mul_(ctx['n_db']).add_(ctx['arange'])


def _relevance_cuda(ctx, s, e):
    torch = ctx['torch']
    if 'q_cls' in ctx:
        return ctx['q_cls'][s:e, None] == ctx['db_cls'][None, :]
    with torch.autocast('cuda', enabled=False):
        return (ctx['q_lab'][s:e] @ ctx['db_lab_t']) > 0.5


def _chunk_topk_rel_cuda(ctx, s, e, k):
    torch = ctx['torch']
    key = _distances_cuda(ctx, s, e)
    if 4 * k >= ctx['n_db']:
        idx = torch.argsort(key, dim=1)[:, :k]           # keys are unique: the order is exact
    else:
        idx = torch.topk(key, k, dim=1, largest=False, sorted=True).indices
    rel = _relevance_cuda(ctx, s, e).gather(1, idx)
    return rel.cpu().numpy()


def _chunk_full_rank_cuda(ctx, s, e):
    torch = ctx['torch']
    key = _distances_cuda(ctx, s, e)
    order = torch.argsort(key, dim=1)
    rel = _relevance_cuda(ctx, s, e)
    return rel.gather(1, order).cpu().numpy(), rel.sum(1).cpu().numpy()


# ---- shared arithmetic --------------------------------------------------------------------------

def _average_precision(rel):
    """DeepHash AP per row of rel (b x k bool, ranked order): (1/r) sum_j j / rank_j, 0 if r = 0."""
    b = rel.shape[0]
    rows, pos = np.nonzero(rel)                   # row-major: each row's hits in rank order
    r = np.bincount(rows, minlength=b)
    first = np.cumsum(r) - r                      # where each row starts in rows / pos
    hits = np.arange(1, rows.size + 1) - first[rows]                 # j: rank among the relevant
    total = np.bincount(rows, weights=hits / (pos + 1.0), minlength=b)
    ap = np.zeros(b, np.float64)
    np.divide(total, r, out=ap, where=r > 0)
    return ap


def _expected_ap_cpu(ctx, s, e, k, harmonic):
    """Tie-aware AP (ties='expected'): the expectation of DeepHash's AP over all orders of the items
    tied at each distance, in closed form (McSherry & Najork, ECIR 2008, for AP).

    Per query and distance level, with s items and R relevant ones ranked before the level, n items
    and r relevant in it, and m = clip(k - s, 0, n) of its positions inside the top k: a position j
    holds a relevant item with probability r/n, and then r-1 relevant ones are spread over the other
    n-1, so E[sum of precisions] = (r/n) sum_{j<=m} (R + 1 + (j-1)(r-1)/(n-1)) / (s+j), which
    harmonic numbers give in O(1). The AP divides it by the expected number of relevant items in
    the top k (exact when no level straddles position k, e.g. topk = -1).
    """
    dist = _distances_cpu(ctx, s, e).astype(np.int64)
    rel = _relevance_full_cpu(ctx, s, e)
    b, levels = e - s, ctx['max_dist'] + 1
    key = (dist + levels * np.arange(b)[:, None]).ravel()
    n = np.bincount(key, minlength=b * levels).reshape(b, levels).astype(np.float64)
    r = np.bincount(key, weights=rel.ravel(), minlength=b * levels).reshape(b, levels)
    before = np.cumsum(n, 1) - n
    r_before = np.cumsum(r, 1) - r
    m = np.clip(k - before, 0, n)
    h = harmonic[(before + m).astype(np.int64)] - harmonic[before.astype(np.int64)]
    slope = np.divide(r - 1, n - 1, out=np.zeros_like(r), where=n > 1)
    inner = (r_before + 1) * h + slope * (m - (before + 1) * h)
    total = np.divide(r * inner, n, out=np.zeros_like(r), where=n > 0).sum(1)
    count = np.divide(r * m, n, out=np.zeros_like(r), where=n > 0).sum(1)
    return np.divide(total, count, out=np.zeros(b), where=count > 0)


def _chunks(ctx):
    for s in range(0, ctx['n_query'], ctx['chunk']):
        yield s, min(s + ctx['chunk'], ctx['n_query'])


def deephash_pr_indices(n_db):
    """0-based rank indices DeepHash stores for its PR curve: 99, 199, ..., then every tail index."""
    index = list(range(99, (n_db // 100) * 100, 100))
    start = index[-1] + 1 if index else 0
    return np.array(index + list(range(start, n_db)), dtype=np.int64)


def mean_average_precision(q_codes, db_codes, q_labels, db_labels, topk, *, return_per_query=False,
                           device='cpu', chunk_size=None, mem_budget_mb=256, ties='index'):
    """DeepHash CalcTopMap with a stable ranking (SPEC §4.4, D19).

    q_codes Nq x K and db_codes N x K: +1/-1 (int8 or float; 0 allowed). q_labels Nq x C and
    db_labels N x C: 0/1, single- or multi-label. topk: int, or -1 / None for the whole database.
    ties: 'index' (D19: items at equal Hamming distance in database order) or 'expected' (the AP
    expected over random orders of tied items; CPU only, see _expected_ap_cpu). With few distinct
    codes, 'index' favours the classes listed first in the database.
    Returns the mean AP (float), or (mean, per-query APs) if return_per_query.
    """
    if ties not in ('index', 'expected'):
        raise ValueError(f"ties must be 'index' or 'expected', got {ties!r}")
    if ties == 'expected':
        ctx = _prepare(q_codes, db_codes, q_labels, db_labels, 'cpu', chunk_size, mem_budget_mb,
                       _BYTES_TIES)
        k = _resolve_topk(topk, ctx['n_db'])
        harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, ctx['n_db'] + 1))])
        ap = np.zeros(ctx['n_query'], np.float64)
        for s, e in _chunks(ctx):
            ap[s:e] = _expected_ap_cpu(ctx, s, e, k, harmonic)
        mean = float(ap.sum() / ctx['n_query']) if ctx['n_query'] else float('nan')
        return (mean, ap) if return_per_query else mean
    ctx = _prepare(q_codes, db_codes, q_labels, db_labels, device, chunk_size, mem_budget_mb, _BYTES_MAP)
    k = _resolve_topk(topk, ctx['n_db'])
    chunk_fn = _chunk_topk_rel_cpu if device == 'cpu' else _chunk_topk_rel_cuda
    ap = np.zeros(ctx['n_query'], np.float64)
    for s, e in _chunks(ctx):
        ap[s:e] = _average_precision(chunk_fn(ctx, s, e, k))
    mean = float(ap.sum() / ctx['n_query']) if ctx['n_query'] else float('nan')
    return (mean, ap) if return_per_query else mean


def _target_labels(target, n_query, n_classes):
    vec = np.zeros(n_classes, np.uint8)
    if np.ndim(target) == 0:
        if not 0 <= int(target) < n_classes:
            raise ValueError(f"target class {target} outside 0..{n_classes - 1}")
        vec[int(target)] = 1
    else:
        target = np.asarray(target)
        if target.shape != (n_classes,):
            raise ValueError(f"target vector must have {n_classes} entries, got shape {target.shape}")
        vec[:] = target > 0
    return np.broadcast_to(vec, (n_query, n_classes))


def targeted_map(q_codes, db_codes, db_labels, target, topk, *, return_per_query=False,
                 device='cpu', chunk_size=None, mem_budget_mb=256, ties='index'):
    """t-MAP (SPEC §2.7, D18): MAP@topk with every query label replaced by the target label.

    target: a class index or a 0/1 vector of length C.
    """
    q_labels = _target_labels(target, np.shape(q_codes)[0], np.shape(db_labels)[1])
    return mean_average_precision(q_codes, db_codes, q_labels, db_labels, topk,
                                  return_per_query=return_per_query, device=device,
                                  chunk_size=chunk_size, mem_budget_mb=mem_budget_mb, ties=ties)


def pr_curve(q_codes, db_codes, q_labels, db_labels, topk, *, positions='deephash',
             device='cpu', chunk_size=None, mem_budget_mb=256):
    """DeepHash CalcTopMapWithPR: rank-based precision / recall curves (SPEC §4.4, D22).

    Only queries with at least one relevant item in the top `topk` take part (the others are
    dropped, as DeepHash does); P and R are means over them at rank positions n (1-based).
    positions: 'deephash' (n = 100, 200, ..., then every tail position, as DeepHash's validate
    stores them), 'all' (n = 1..N), or a sequence of n values.
    Returns a dict: index (= n - 1, DeepHash's JSON key), n, P, R, map (CalcTopMap over all
    queries), n_used (queries that take part); P and R are NaN if n_used = 0.
    """
    ctx = _prepare(q_codes, db_codes, q_labels, db_labels, device, chunk_size, mem_budget_mb, _BYTES_PR)
    n_db = ctx['n_db']
    k = _resolve_topk(topk, n_db)
    if isinstance(positions, str) and positions == 'deephash':
        n = deephash_pr_indices(n_db) + 1
    elif isinstance(positions, str) and positions == 'all':
        n = np.arange(1, n_db + 1)
    else:
        n = np.asarray(positions, dtype=np.int64).reshape(-1)
        if n.size and (n.min() < 1 or n.max() > n_db):
            raise ValueError(f"positions must lie in 1..{n_db}")
    chunk_fn = _chunk_full_rank_cpu if device == 'cpu' else _chunk_full_rank_cuda

    # Sum over used queries of (hits in the first n) and of (hits in the first n) / relevant,
    # kept as histograms over the rank position of each relevant item (cumulated at the end).
    hit_hist = np.zeros(n_db, np.int64)
    recall_hist = np.zeros(n_db, np.float64)
    ap = np.zeros(ctx['n_query'], np.float64)
    n_used = 0
    for s, e in _chunks(ctx):
        ranked_rel, n_relevant = chunk_fn(ctx, s, e)
        ap[s:e] = _average_precision(ranked_rel[:, :k])
        used = ranked_rel[:, :k].any(1)
        n_used += int(used.sum())
        rows, pos = np.nonzero(ranked_rel[used])
        hit_hist += np.bincount(pos, minlength=n_db)
        recall_hist += np.bincount(pos, weights=1.0 / n_relevant[used][rows], minlength=n_db)
    with np.errstate(invalid='ignore', divide='ignore'):
        precision = np.cumsum(hit_hist)[n - 1] / n / n_used
        recall = np.cumsum(recall_hist)[n - 1] / n_used
    return dict(index=n - 1, n=n, P=precision, R=recall, n_used=n_used,
                map=float(ap.sum() / ctx['n_query']))


def precision_at_topn(q_codes, db_codes, q_labels, db_labels, topk, ns, *, device='cpu',
                      chunk_size=None, mem_budget_mb=256):
    """Mean precision over the first n ranked items for each n in ns (DeepHash P@N: the P of
    pr_curve, so over the queries with a relevant item in the top `topk`)."""
    return pr_curve(q_codes, db_codes, q_labels, db_labels, topk, positions=ns, device=device,
                    chunk_size=chunk_size, mem_budget_mb=mem_budget_mb)['P']


# =============================================================================================
# 2. attack report
# =============================================================================================
# Both runs must have evaluated the same triggered-query lists (CSQ.py/HashNet.py `queries=`):
# the clean model's t-MAP on them is the attack's floor (SPEC D18), the backdoored model's t-MAP is
# the attack. Query splits whose name starts with 'trig' are treated as triggered queries.

TABLE_COLUMNS = [('MAP clean', 'map_clean'), ('MAP backdoored', 'map_backdoor'),
                 ('t-MAP closed clean', 'tmap_trig_closed_clean'),
                 ('t-MAP closed backdoored', 'tmap_trig_closed_backdoor'),
                 ('t-MAP open clean', 'tmap_trig_open_clean'),
                 ('t-MAP open backdoored', 'tmap_trig_open_backdoor'),
                 ('MSE', 'mse'), ('PSNR (dB)', 'psnr'), ('SSIM', 'ssim')]


def _load_codes(run_dir, split):
    path = os.path.join(run_dir, f"codes_{split}.npz")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: codes not found (run CSQ.py/HashNet.py with the same "
                                f"queries first)")
    return np.load(path)


class MismatchError(ValueError):
    """Two runs' codes of one split were not encoded from the same list: the message names both."""


# what two codes files must share to be compared: the list file's bytes, the images, the row count
SAME_LIST_KEYS = ('list_sha1', 'images_sha1', 'n')


def check_same_list(path_a, a, path_b, b):
    """Stop (MismatchError) unless the codes in the open .npz files a and b come from the same list:
    same row count, and, where both carry a provenance record (README "Reuse rule"), the same list
    content and images. Returns a note when a record is missing (only the count was compared)."""
    na, nb = len(a['codes']), len(b['codes'])
    if na != nb:
        raise MismatchError(f"{path_a} ({na} rows) and {path_b} ({nb} rows) were encoded from "
                            f"different lists; encode both runs on the same list")
    ra, rb = (utils.read_provenance(z) for z in (a, b))
    if ra is None or rb is None:
        old = path_a if ra is None else path_b
        return (f"{old} has no provenance record (written before them): its list is checked by "
                f"length only")
    for k in SAME_LIST_KEYS:
        if ra.get(k) != rb.get(k):
            what = {'list_sha1': 'list file content differs', 'images_sha1': 'images differ'}.get(
                k, f"{k} differs")
            raise MismatchError(f"{path_a} and {path_b} were encoded from different lists ({what}: "
                                f"{ra.get('list')} vs {rb.get('list')}); encode both runs on the "
                                f"same list")
    return None


def check_same_model(path_q, q, path_db, db):
    """Stop (MismatchError) when query and database codes carry records of different checkpoints
    (path, size, mtime): codes of two models are not comparable by Hamming distance."""
    rq, rd = utils.read_provenance(q), utils.read_provenance(db)
    if rq is None or rd is None:
        return
    key = ('checkpoint', 'checkpoint_stamp')
    if [rq.get(k) for k in key] != [rd.get(k) for k in key]:
        raise MismatchError(f"{path_q} and {path_db} were encoded by different checkpoints "
                            f"({rq.get('checkpoint')} {rq.get('checkpoint_stamp')} vs "
                            f"{rd.get('checkpoint')} {rd.get('checkpoint_stamp')})")


def attack_report(clean_dir, backdoor_dir, target, topk, stealth_json=None, ties='index'):
    """Clean MAP of both models, t-MAP of every triggered split on both, stealth figures.
    Every split compared must come from the same list in both runs (check_same_list)."""
    splits = sorted(f[len('codes_'):-len('.npz')] for f in os.listdir(backdoor_dir)
                    if f.startswith('codes_trig') and f.endswith('.npz'))
    row = {'target': target, 'topk': topk, 'ties': ties, 'clean_dir': clean_dir,
           'backdoor_dir': backdoor_dir}
    loaded = {run_dir: {s: _load_codes(run_dir, s) for s in ['database', 'test'] + splits}
              for run_dir in (clean_dir, backdoor_dir)}
    for s in ['database', 'test'] + splits:
        note = check_same_list(os.path.join(clean_dir, f"codes_{s}.npz"), loaded[clean_dir][s],
                               os.path.join(backdoor_dir, f"codes_{s}.npz"), loaded[backdoor_dir][s])
        if note:
            print(f"note: {note}")
        rec = utils.read_provenance(loaded[backdoor_dir][s]) or {}
        row.setdefault('lists', {})[s] = {k: rec.get(k) for k in ('list', 'list_sha1', 'images_sha1')}
    for run_dir in (clean_dir, backdoor_dir):
        for s in ['test'] + splits:
            check_same_model(os.path.join(run_dir, f"codes_{s}.npz"), loaded[run_dir][s],
                             os.path.join(run_dir, 'codes_database.npz'), loaded[run_dir]['database'])
    for tag, run_dir in (('clean', clean_dir), ('backdoor', backdoor_dir)):
        db, test = loaded[run_dir]['database'], loaded[run_dir]['test']
        row[f"map_{tag}"] = mean_average_precision(test['codes'], db['codes'], test['labels'],
                                                   db['labels'], topk, ties=ties)
        for split in splits:
            q = loaded[run_dir][split]
            row[f"tmap_{split}_{tag}"] = targeted_map(q['codes'], db['codes'], db['labels'], target,
                                                      topk, ties=ties)
            row[f"n_{split}"] = len(q['codes'])
    row['map_drop'] = row['map_clean'] - row['map_backdoor']
    for split in splits:
        row[f"tmap_gain_{split}"] = row[f"tmap_{split}_backdoor"] - row[f"tmap_{split}_clean"]
    if stealth_json:
        with open(stealth_json) as f:
            st = json.load(f)
        poisons = st.get('poisons', st)
        row.update({k: poisons[k] for k in ('mse', 'ssim') if k in poisons})
        row['psnr'] = poisons.get('psnr_db', poisons.get('psnr'))  # implement_tri_gen: psnr_db
        row['stealth'] = st
    return row


def _column_value(row, key):
    """row[key]; for a t-MAP column also a split named trig_<attack>_closed / _open (reproduce.py
    names each attack's triggered queries so one clean victim holds them all), when only one is."""
    if key in row or not key.startswith('tmap_trig_'):
        return row.get(key)
    kind_tag = key[len('tmap_trig_'):]  # e.g. 'open_backdoor'
    hits = [k for k in row if k.startswith('tmap_trig_') and k.endswith('_' + kind_tag)]
    return row[hits[0]] if len(hits) == 1 else None


def markdown_row(name, row):
    values = [(key, _column_value(row, key)) for _, key in TABLE_COLUMNS]
    cells = [name] + [('' if v is None else f"{v:.4f}" if key not in ('mse', 'psnr') else f"{v:.3f}")
                      for key, v in values]
    return '| ' + ' | '.join(cells) + ' |'


def markdown_table(name, row):
    head = '| run | ' + ' | '.join(title for title, _ in TABLE_COLUMNS) + ' |'
    return '\n'.join([head, '|' + '---|' * (len(TABLE_COLUMNS) + 1), markdown_row(name, row)]) + '\n'


# =============================================================================================
# 3. command line: MAP / t-MAP / PR curve from saved .npz arrays
# =============================================================================================

def main():
    config = utils.configure(globals())
    if clean_dir or backdoor_dir:
        return report_main(config)
    if not query or not database:
        sys.exit('error: give --query=... and --database=... (.npz files written by CSQ.py / '
                 'HashNet.py), or --clean_dir=... and --backdoor_dir=... for the attack report')
    q, db = np.load(query), np.load(database)
    try:
        check_same_model(query, q, database, db)
    except MismatchError as e:
        sys.exit(f"error: {e}")
    t0 = time.time()
    q_labels = q['labels'] if target < 0 else _target_labels(target, len(q['codes']), db['labels'].shape[1])
    name = 'MAP' if target < 0 else f't-MAP(target={target})'
    value = mean_average_precision(q['codes'], db['codes'], q_labels, db['labels'], topk,
                                   device=device, mem_budget_mb=mem_budget_mb, ties=ties)
    print(f"{name}@{topk} = {value:.4f}  ({len(q['codes'])} queries x {len(db['codes'])} database, "
          f"{q['codes'].shape[1]} bits, {time.time() - t0:.1f} s)")
    if pr:
        curve = pr_curve(q['codes'], db['codes'], q_labels, db['labels'], topk, device=device,
                         mem_budget_mb=mem_budget_mb)
        with open(pr, 'w') as f:
            json.dump({'index': curve['index'].tolist(), 'P': curve['P'].tolist(),
                       'R': curve['R'].tolist(), 'n_used': curve['n_used'], 'topk': topk,
                       'target': target}, f)
        print(f"PR curve ({curve['n_used']} queries with a relevant item in the top {topk}) -> {pr}")



def report_main(config):
    if not (clean_dir and backdoor_dir) or target < 0:
        sys.exit('error: the attack report needs --clean_dir, --backdoor_dir and --target')
    try:
        row = attack_report(clean_dir, backdoor_dir, target, topk, stealth or None, ties)
    except (FileNotFoundError, KeyError, MismatchError) as e:
        sys.exit(f"error: {e}")
    name = report_name or os.path.basename(os.path.normpath(backdoor_dir))
    table = markdown_table(name, row)
    utils.write_json(os.path.join(out_dir, name + '.json'),
                     {'report': row, 'config': config, 'git_commit': utils.git_commit()})
    utils.atomic_write_text(os.path.join(out_dir, name + '.md'), table)
    print(table, end='')
    print(f"report: {os.path.join(out_dir, name + '.json')}")
    return row


if __name__ == '__main__':
    main()
