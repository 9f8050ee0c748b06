"""CSQ centres and loss, HashNet's pairwise likelihood, against hand-computed values."""
import itertools
import math

import numpy as np
import pytest
import torch
from scipy.linalg import hadamard

from CSQ import CSQLoss, hash_centres
from HashNet import HashNetLoss, pairwise_likelihood_loss


def _min_mean_distance(c):
    d = [(c.shape[1] - float(a @ b)) / 2 for a, b in itertools.combinations(c, 2)]
    return min(d), float(np.mean(d))


def test_centres_are_hadamard_rows_when_2k_covers_the_classes():
    c = hash_centres(100, 64, seed=0).numpy()
    h = hadamard(64)
    assert np.array_equal(c[:64], h) and np.array_equal(c[64:], -h[:36])
    c10 = hash_centres(10, 16, seed=3).numpy()
    assert np.array_equal(c10, hadamard(16)[:10])


@pytest.mark.parametrize('classes, bits', [(100, 16), (100, 32), (80, 16), (40, 8)])
def test_random_centres_are_balanced_seeded_and_separated(classes, bits):
    c = hash_centres(classes, bits, seed=0).numpy()
    assert c.shape == (classes, bits) and set(np.unique(c)) == {-1, 1}
    n_had = 2 * bits
    assert np.array_equal(c[:n_had], np.concatenate([hadamard(bits), -hadamard(bits)]))
    assert (c[n_had:].sum(1) == 0).all()  # exactly K/2 entries of each sign
    assert np.array_equal(c, hash_centres(classes, bits, seed=0).numpy())
    assert not np.array_equal(c, hash_centres(classes, bits, seed=1).numpy())
    dmin, dmean = _min_mean_distance(c)
    assert dmean >= bits / 2
    if bits >= 32:
        assert dmin > bits / 4
    elif bits == 16:  # no balanced vector is > K/4 from all 2K Hadamard rows at K=16 (Parseval); K/4 is best
        assert dmin == bits / 4


def test_multi_label_centre_rule():
    loss = CSQLoss(3, 4, multi_label=True, lambda_q=1e-4, seed=0)
    loss.centres = torch.tensor([[1., 1, -1, -1], [1., -1, 1, -1], [1., 1, 1, 1]])
    loss.tie_bits = torch.tensor([1., 0, 1, 0])
    y = torch.tensor([[1., 1, 0], [1., 1, 1], [0., 0, 1]])
    # row 0: sum = [2, 0, 0, -2] -> ties at positions 1, 2 take 2*bit-1 = -1, +1
    # row 1: sum = [3, 1, 1, -1]; row 2: its own centre
    expected = torch.tensor([[1., -1, 1, -1], [1., 1, 1, -1], [1., 1, 1, 1]])
    assert torch.equal(loss.label_centres(y), expected)
    single = CSQLoss(3, 4, multi_label=False, lambda_q=1e-4, seed=0)
    single.centres = loss.centres
    assert torch.equal(single.label_centres(y[:1]), loss.centres[:1])  # argmax = first class


def test_csq_loss_value_by_hand():
    loss = CSQLoss(2, 2, multi_label=False, lambda_q=0.5, seed=0)
    loss.centres = torch.tensor([[1., -1], [-1., 1]])
    out = torch.tensor([[0.5, -2.0]])
    u1, u2 = math.tanh(0.5), math.tanh(-2.0)
    # targets (c+1)/2 = [1, 0]; BCE mean over the two bits; quantisation mean((|u|-1)^2)
    bce = (-math.log((u1 + 1) / 2) - math.log(1 - (u2 + 1) / 2)) / 2
    q = ((abs(u1) - 1) ** 2 + (abs(u2) - 1) ** 2) / 2
    got = loss(out, torch.tensor([[1., 0.]])).item()
    assert got == pytest.approx(bce + 0.5 * q, rel=1e-6)


def test_hashnet_pairwise_loss_by_hand():
    # theta = alpha * u.U = 0.5 * [2, -2] = [1, -1]; the first pair similar, the second not.
    u = torch.tensor([[1., 1.]])
    bank = torch.tensor([[1., 1.], [-1., -1.]])
    y, bank_y = torch.tensor([[1., 0.]]), torch.tensor([[1., 0.], [0., 1.]])
    # similar pair: log(1+e^-1) + 1 - 1; dissimilar: log(1+e^-1) + 0 - 0; each kind its mean
    expected = 2 * math.log(1 + math.exp(-1))
    got = pairwise_likelihood_loss(u, y, bank, bank_y, alpha=0.5).item()
    assert got == pytest.approx(expected, rel=1e-6)


def test_hashnet_loss_matches_a_plain_loop_and_updates_the_bank():
    torch.manual_seed(0)
    n, k, c = 6, 8, 3
    loss = HashNetLoss(n, c, k, alpha=0.1, step_continuation=20)
    labels = torch.eye(c)[torch.tensor([0, 1, 2, 0, 1, 2])]
    loss.U.copy_(torch.tanh(torch.randn(n, k)))
    loss.Y.copy_(labels)
    out, idx = torch.randn(2, k), torch.tensor([1, 4])
    got = loss(out, labels[idx], idx, epoch=45).item()  # scale sqrt(45 // 20 + 1) = sqrt(3)
    u = torch.tanh(math.sqrt(3) * out)
    assert torch.allclose(loss.U[idx], u)
    pos, neg = [], []
    for i in range(2):
        for j in range(n):
            theta = 0.1 * float(u[i] @ loss.U[j])
            s = float(labels[idx[i]] @ labels[j] > 0)
            value = math.log(1 + math.exp(-abs(theta))) + max(theta, 0) - s * theta
            (pos if s else neg).append(value)
    assert got == pytest.approx(np.mean(pos) + np.mean(neg), rel=1e-5)
    assert loss.scale(19) == 1 and loss.scale(20) == pytest.approx(math.sqrt(2))
