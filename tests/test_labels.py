"""ImageNet class names, 1000/1001-class outputs, softmax and top-k."""

from __future__ import annotations

import numpy as np
import pytest

from edgenet.evaluation.labels import imagenet_labels, label_for, softmax, top_k


def test_imagenet_labels_standard_order():
    labels = imagenet_labels()
    assert isinstance(labels, tuple) and len(labels) == 1000
    assert labels[0].startswith("tench")
    assert "tabby cat" in labels[281] and "cat" in labels[281]
    assert "espresso" in labels[967]
    assert labels[968] == "cup"
    assert "toilet tissue" in labels[999]
    assert all(name and name == name.strip() and not name.startswith("#") for name in labels)
    assert imagenet_labels() is labels  # cached


def test_label_for_1000_and_1001_classes():
    assert label_for(281, 1000) == imagenet_labels()[281]
    assert label_for(0, 1001) == "background"
    assert label_for(282, 1001) == imagenet_labels()[281]
    assert label_for(1000, 1001) == imagenet_labels()[999]
    assert label_for(3, 10) == "class 3"
    with pytest.raises(ValueError):
        label_for(1000, 1000)
    with pytest.raises(ValueError):
        label_for(-1, 1000)


def test_softmax_is_stable_and_normalised():
    p = softmax(np.array([1000.0, 1001.0, 999.0]))
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(), 1.0)
    np.testing.assert_allclose(p, softmax(np.array([1.0, 2.0, 0.0])))
    batch = softmax(np.array([[0.0, 0.0], [0.0, np.log(3.0)]]))
    np.testing.assert_allclose(batch, [[0.5, 0.5], [0.25, 0.75]])
    assert softmax(np.array([-np.inf, 0.0])).tolist() == [0.0, 1.0]


def test_top_k_from_logits():
    logits = np.zeros(1000, dtype=np.float32)
    logits[967], logits[968], logits[281] = 9.0, 8.0, 7.0
    result = top_k(logits[None, :], k=3)
    assert [i for i, _, _ in result] == [967, 968, 281]
    assert result[0][1] == imagenet_labels()[967]
    scores = [s for _, _, s in result]
    assert scores == sorted(scores, reverse=True)
    np.testing.assert_allclose(scores[0], softmax(logits)[967])


def test_top_k_probabilities_ties_and_overrides():
    probs = np.array([0.1, 0.4, 0.4, 0.1])
    result = top_k(probs, k=10, labels=["a", "b", "c", "d"])
    assert result == [(1, "b", 0.4), (2, "c", 0.4), (0, "a", 0.1), (3, "d", 0.1)]
    forced = top_k(probs, k=1, scores="logits", labels=["a", "b", "c", "d"])
    assert forced[0][0] == 1 and forced[0][2] < 0.4
    assert top_k(np.arange(1001.0), k=1)[0][1] == imagenet_labels()[999]
    assert top_k(np.arange(5.0), k=1)[0][1] == "class 4"


def test_top_k_rejects_bad_input():
    with pytest.raises(ValueError):
        top_k(np.zeros((2, 10)))
    with pytest.raises(ValueError):
        top_k(np.zeros(4), labels=["a"])
    with pytest.raises(ValueError):
        top_k(np.zeros(4), scores="odds")
