"""Label assignment and class votes against brute-force loops."""
from __future__ import annotations

import pytest
import torch

from snn.models.label_vote import assign_labels, class_votes


def _brute_assign(counts, labels, K):
    M, N = counts.shape
    out = []
    for j in range(N):
        rates = []
        for c in range(K):
            members = [m for m in range(M) if int(labels[m]) == c]
            rates.append(sum(float(counts[m, j]) for m in members) / len(members) if members else 0.0)
        best = max(range(K), key=lambda c: (rates[c], -c))  # highest mean, ties to the lowest class
        out.append(best if sum(rates) > 0 else -1)
    return out


def _brute_votes(counts, assignments, K):
    B, N = counts.shape
    votes = []
    for b in range(B):
        row = []
        for c in range(K):
            mine = [j for j in range(N) if int(assignments[j]) == c]
            row.append(sum(float(counts[b, j]) for j in mine) / len(mine) if mine else 0.0)
        votes.append(row)
    return torch.tensor(votes, dtype=counts.dtype)


def test_assignment_equals_a_brute_force_loop_with_ties_and_silent_neurons():
    torch.manual_seed(0)
    K = 4
    labels = torch.tensor([0, 0, 1, 2, 2, 2, 3, 1, 0])
    counts = torch.randint(0, 4, (9, 7)).float()
    counts[:, 5] = 0  # a silent neuron
    counts[:, 6] = 0
    counts[labels == 1, 6] = 2.0  # class 1 mean 2 ...
    counts[labels == 3, 6] = 2.0  # ... tied with class 3: the lowest class wins
    a = assign_labels(counts, labels, K)
    assert a.tolist() == _brute_assign(counts, labels, K)
    assert a[5] == -1 and a[6] == 1


def test_assignment_normalises_by_class_size():
    # neuron 0 fires 3 spikes for each of 3 class-0 samples (mean 3) and 4 for the single class-1 sample (mean 4)
    counts = torch.tensor([[3.0], [3.0], [3.0], [4.0]])
    assert assign_labels(counts, torch.tensor([0, 0, 0, 1]), 2).tolist() == [1]


def test_votes_equal_a_brute_force_loop():
    torch.manual_seed(1)
    counts = torch.randint(0, 6, (5, 8)).float()
    assignments = torch.tensor([0, 2, 2, -1, 1, 2, 0, -1])  # class 3 has no neuron: votes 0
    v = class_votes(counts, assignments, 4)
    torch.testing.assert_close(v, _brute_votes(counts, assignments, 4))
    assert (v[:, 3] == 0).all()


def test_bad_shapes_and_labels_are_named():
    with pytest.raises(ValueError, match=r"expected counts \[M, N\] and labels \[M\], got \(3, 2\) and \(4,\)"):
        assign_labels(torch.zeros(3, 2), torch.zeros(4, dtype=torch.long), 2)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\), got \[0, 5\]"):
        assign_labels(torch.zeros(2, 2), torch.tensor([0, 5]), 2)
    with pytest.raises(ValueError, match=r"expected counts \[B, N\] and assignments \[N\]"):
        class_votes(torch.zeros(3, 2), torch.zeros(3, dtype=torch.long), 2)
