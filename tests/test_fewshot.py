"""Few-shot linear evaluation (Section 4.1): closed form vs scikit-learn's Ridge, sampling, features."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge
from torch import nn

import vitlib
from vitlib import fewshot


def blobs(n_per_class, K=5, D=12, seed=0, spread=1.0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (K, D))
    y = np.repeat(np.arange(K), n_per_class)
    return centres[y] + spread * rng.normal(size=(len(y), D)), y


@pytest.mark.parametrize("N, D", [(40, 10), (10, 40)])  # primal and dual forms
def test_fit_least_squares_equals_ridge(N, D):
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(N, D)), rng.choice([-1.0, 1.0], size=(N, 3))
    W = fewshot.fit_least_squares(X, Y, l2=2.5)
    ref = Ridge(alpha=2.5, fit_intercept=False, solver="cholesky").fit(X, Y)
    np.testing.assert_allclose(W, ref.coef_.T, rtol=1e-8, atol=1e-10)


def test_probe_biases_against_ridge():
    """bias='centre' is Ridge(fit_intercept=True) on standardised features; bias='column' is
    Ridge(fit_intercept=False) with big_vision's constant-100 feature; both predict nearly alike."""
    X, y = blobs(6, K=4, D=20)
    Xt, _ = blobs(30, K=4, D=20, seed=1)
    Y = 2.0 * np.eye(4)[y] - 1
    mean, std = X.mean(0), X.std(0) + 1e-5
    Xs, Xts = (X - mean) / std, (Xt - mean) / std
    l2 = 2.0**10

    centre = fewshot.fit_probe(X, y, 4, l2, bias="centre")
    ridge = Ridge(alpha=l2, fit_intercept=True, solver="cholesky").fit(Xs, Y)
    np.testing.assert_allclose(centre.weight, ridge.coef_.T, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(centre.scores(Xt), ridge.predict(Xts), rtol=1e-7, atol=1e-10)

    column = fewshot.fit_probe(X, y, 4, l2, bias="column")
    aug = lambda A: np.hstack([A, np.full((len(A), 1), fewshot.BIAS_CONSTANT)])
    ridge_col = Ridge(alpha=l2, fit_intercept=False, solver="cholesky").fit(aug(Xs), Y)
    np.testing.assert_allclose(column.scores(Xt), ridge_col.predict(aug(Xts)), rtol=1e-7, atol=1e-10)
    # the constant column leaves the bias regularised by l2 / 100^2 only: close to the free intercept
    np.testing.assert_allclose(column.bias, centre.bias, atol=0.1)
    assert (column.scores(Xt).argmax(1) == centre.scores(Xt).argmax(1)).mean() > 0.95
    with pytest.raises(ValueError, match="bias"):
        fewshot.fit_probe(X, y, 4, l2, bias="none")


def test_sample_few_shot_is_per_class_seeded_and_nested():
    targets = np.repeat(np.arange(4), [7, 9, 5, 11])
    idx = fewshot.sample_few_shot(targets, 5, seed=3)
    assert np.bincount(targets[idx]).tolist() == [5, 5, 5, 5] and len(set(idx)) == 20
    assert np.array_equal(idx, fewshot.sample_few_shot(targets, 5, seed=3))
    assert not np.array_equal(idx, fewshot.sample_few_shot(targets, 5, seed=4))
    one = fewshot.sample_few_shot(targets, 1, seed=3)
    assert set(one) <= set(idx)  # the 1-shot set is inside the 5-shot set of the same seed (big_vision)
    with pytest.raises(ValueError, match="fewer than shots=6"):
        fewshot.sample_few_shot(targets, 6, seed=0)


def test_few_shot_accuracy_matches_a_ridge_pipeline():
    X, y = blobs(20, K=5, D=12, spread=2.0)
    Xt, yt = blobs(40, K=5, D=12, seed=0, spread=2.0)
    acc = fewshot.few_shot_accuracy(X, y, Xt, yt, shots=5, seed=1, l2=1.0, bias="centre")
    few = fewshot.sample_few_shot(y, 5, seed=1)
    mean, std = X[few].mean(0), X[few].std(0) + 1e-5
    ridge = Ridge(alpha=1.0).fit((X[few] - mean) / std, 2.0 * np.eye(5)[y[few]] - 1)
    ref = (ridge.predict((Xt - mean) / std).argmax(1) == yt).mean()
    assert acc == pytest.approx(ref) and acc > 0.8


def test_choose_l2_picks_a_useful_value_from_train_images():
    X, y = blobs(30, K=5, D=12, spread=2.0)
    Xt, yt = blobs(30, K=5, D=12, seed=0, spread=2.0)
    grid = [1e12, 1.0]  # 1e12 swamps the data: W ~ X^T Y / l2, a nearest-class-mean direction
    assert fewshot.choose_l2(X, y, shots=5, seed=0, grid=grid) == 1.0
    acc = lambda l2: fewshot.few_shot_accuracy(X, y, Xt, yt, shots=5, seed=0, l2=l2)
    assert acc(grid) == acc(1.0)


def test_extract_features_is_the_head_input_of_a_vit():
    model = vitlib.create_model("ViT-Ti/4", img_size=16, num_classes=3, num_layers=2)
    nn.init.normal_(model.head.weight)
    x, y = torch.randn(6, 3, 16, 16), torch.arange(6) % 3
    ds = torch.utils.data.TensorDataset(x, y)
    model.train()
    feats, labels = fewshot.extract_features(model, ds, batch_size=4)
    assert model.training and feats.shape == (6, 192) and labels.tolist() == y.tolist()
    model.eval()
    with torch.no_grad():
        tokens = model.forward_features(x)
        torch.testing.assert_close(feats, tokens[:, 0])  # Eq. 4: y = LN(z_L^0)
        torch.testing.assert_close(model.head(feats), model(x))


def test_extract_features_hooks_the_head_of_other_models():
    body = nn.Sequential(nn.Flatten(), nn.Linear(12, 7), nn.ReLU())
    model = nn.Sequential()
    model.add_module("body", body)
    model.add_module("fc", nn.Linear(7, 2))
    x = torch.randn(5, 3, 2, 2)
    loader = [(x[:3], torch.zeros(3)), (x[3:], torch.ones(2))]
    feats, labels = fewshot.extract_features(model, loader)
    torch.testing.assert_close(feats, body(x).detach())
    assert labels.tolist() == [0, 0, 0, 1, 1]
    with pytest.raises(ValueError, match="representation before the head"):
        fewshot.extract_features(nn.Sequential(nn.Flatten()), loader)
