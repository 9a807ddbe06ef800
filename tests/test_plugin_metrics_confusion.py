"""The numpy confusion matrices of ``mcc`` and ``mlc`` equal torchmetrics' and scikit-learn's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.metrics import multilabel_confusion_matrix as sk_multilabel
from torchmetrics.functional.classification import (
    multiclass_confusion_matrix,
    multilabel_confusion_matrix,
)

from remotesam_plugins.metrics.classification import confusion_matrix
from remotesam_plugins.metrics.multilabel import multilabel_confusion


@pytest.mark.parametrize("seed", range(20))
def test_multiclass_confusion_equals_torchmetrics_and_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 25))
    n = int(rng.integers(1, 300))
    t = rng.integers(0, k, n)
    p = np.where(rng.random(n) < 0.6, t, rng.integers(0, k, n))
    ours = confusion_matrix(t, p, k)
    assert ours.dtype == np.int64 and ours.shape == (k, k)
    tm = multiclass_confusion_matrix(torch.from_numpy(p), torch.from_numpy(t), k).numpy()
    np.testing.assert_array_equal(ours, tm)
    np.testing.assert_array_equal(ours, sk_confusion(t, p, labels=list(range(k))))


def test_multiclass_confusion_empty_and_bad_labels() -> None:
    np.testing.assert_array_equal(confusion_matrix(np.zeros(0), np.zeros(0), 3), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="predictions"):
        confusion_matrix(np.array([0, 1]), np.array([0]), 3)


@pytest.mark.parametrize("seed", range(20))
def test_multilabel_confusion_equals_torchmetrics_and_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 61))
    n = int(rng.integers(1, 200))
    t = rng.random((n, k)) < rng.random()
    p = np.where(rng.random((n, k)) < 0.7, t, rng.random((n, k)) < 0.3)
    ours = multilabel_confusion(t, p)
    assert ours.dtype == np.int64 and ours.shape == (k, 2, 2)
    tm = multilabel_confusion_matrix(
        torch.from_numpy(p.astype(np.int64)), torch.from_numpy(t.astype(np.int64)), k
    ).numpy()
    np.testing.assert_array_equal(ours, tm)
    np.testing.assert_array_equal(ours, sk_multilabel(t, p))


def test_multilabel_confusion_empty() -> None:
    out = multilabel_confusion(np.zeros((0, 4), bool), np.zeros((0, 4), bool))
    np.testing.assert_array_equal(out, np.zeros((4, 2, 2), np.int64))
