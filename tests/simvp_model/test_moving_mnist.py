"""Moving MNIST generator: OpenSTL protocol, determinism of the fixed splits, digit split."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simvp_model.datasets.moving_mnist import (
    CANVAS,
    DIGIT,
    MovingMNIST,
    MovingMNISTConfig,
    generate_sequence,
    load_digits,
    moving_mnist_datasets,
    trajectory,
)


class _FixedRandom:
    """Stands in for numpy's Generator: ``random()`` returns the given values in order."""

    def __init__(self, values: list[float]) -> None:
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0)


def test_trajectory_hand_values_and_bounce() -> None:
    # x = 0.5, y = 0.5, θ = 0: moves right by 0.1 per frame, row fixed at int(36·0.5) = 18.
    coords, top_left = trajectory(_FixedRandom([0.5, 0.5, 0.0]), 12)
    np.testing.assert_allclose(coords[:4, 1], [0.6, 0.7, 0.8, 0.9])
    assert top_left[:4, 1].tolist() == [21, 25, 28, 32]  # int(36·x), truncated
    assert (top_left[:, 0] == 18).all()
    # it reaches the right wall (x = 1 → column 36) and comes back
    hit = int(np.argmax(top_left[:, 1]))
    assert top_left[hit, 1] == CANVAS - DIGIT == 36
    assert coords[:, 1].max() == 1.0
    assert (np.diff(top_left[hit:, 1]) < 0).all()


def test_trajectory_speed_and_bounds() -> None:
    rng = np.random.default_rng(3)
    steps, pixel_steps = [], []
    for _ in range(200):
        coords, top_left = trajectory(rng, 20)
        assert coords.min() >= 0.0 and coords.max() <= 1.0
        assert top_left.min() >= 0 and top_left.max() <= CANVAS - DIGIT
        moved = np.linalg.norm(np.diff(coords, axis=0), axis=1)
        free = (coords[1:] > 0).all(axis=1) & (coords[1:] < 1).all(axis=1)
        free &= (coords[:-1] > 0).all(axis=1) & (coords[:-1] < 1).all(axis=1)
        steps.append(moved[free])
        pixel_steps.append(np.linalg.norm(np.diff(top_left, axis=0), axis=1)[free])
    np.testing.assert_allclose(np.concatenate(steps), 0.1, rtol=1e-9)  # 0.1 per frame
    assert np.concatenate(pixel_steps).mean() == pytest.approx(3.6, abs=0.15)  # ≈3.6 px/frame


def test_sequence_rendering_single_digit() -> None:
    digits = load_digits("test")
    seq = generate_sequence(np.random.default_rng(5), digits, n_frames=20, n_digits=1)
    assert seq.shape == (20, 64, 64) and seq.dtype == np.float32
    replay = np.random.default_rng(5)
    _, top_left = trajectory(replay, 20)
    digit = digits[replay.integers(0, len(digits))].astype(np.float32) / 255
    for t, (row, col) in enumerate(top_left):
        np.testing.assert_array_equal(seq[t, row : row + DIGIT, col : col + DIGIT], digit)
        outside = seq[t].copy()
        outside[row : row + DIGIT, col : col + DIGIT] = 0
        assert not outside.any()


def test_two_digits_pixelwise_max_in_unit_range() -> None:
    digits = load_digits("val")
    seq = generate_sequence(np.random.default_rng(11), digits)
    assert seq.shape == (20, 64, 64)
    assert 0.0 <= seq.min() and seq.max() <= 1.0
    assert seq.max() == 1.0  # MNIST digits reach 255
    # compositing by maximum: no pixel exceeds what one digit can give
    assert np.isin(np.round(seq * 255), np.arange(256)).all()


def test_fixed_splits_deterministic_and_distinct() -> None:
    cfg = MovingMNISTConfig(in_frames=10, out_frames=10)
    _, val, test = moving_mnist_datasets(8, 4, 4, cfg)
    _, val2, test2 = moving_mnist_datasets(8, 4, 4, cfg)
    x, y = test[2]
    assert x.shape == (10, 1, 64, 64) and y.shape == (10, 1, 64, 64) and x.dtype == torch.float32
    torch.testing.assert_close(test[2][0], test2[2][0], rtol=0, atol=0)
    torch.testing.assert_close(val[1][1], val2[1][1], rtol=0, atol=0)
    assert not torch.equal(test[0][0], val[0][0])
    assert not torch.equal(test[0][0], test[1][0])
    # x and y are one contiguous 20-frame sequence
    full = torch.from_numpy(test.sequence(2))
    torch.testing.assert_close(torch.cat([x, y])[:, 0], full, rtol=0, atol=0)
    with pytest.raises(ValueError, match="seeds must differ"):
        moving_mnist_datasets(8, 4, 4, cfg, val_seed=0, test_seed=0)


def test_train_split_fresh_each_call_but_seedable() -> None:
    train = MovingMNIST("train", 16, seed=None)
    torch.manual_seed(0)
    first = train[3][0]
    again = train[3][0]
    assert not torch.equal(first, again)  # generated on the fly
    torch.manual_seed(0)
    torch.testing.assert_close(train[3][0], first, rtol=0, atol=0)
    torch.manual_seed(0)
    other_index = train[4][0]
    assert not torch.equal(other_index, first)  # same torch stream, different index


def test_digit_split_disjoint() -> None:
    train, val, test = load_digits("train"), load_digits("val"), load_digits("test")
    assert train.shape == (13000, 28, 28) and val.shape == test.shape == (1000, 28, 28)
    seen = {image.tobytes() for image in train}
    assert not any(image.tobytes() in seen for image in test)
    assert not any(image.tobytes() in seen for image in val)
    with pytest.raises(ValueError, match="unknown split"):
        load_digits("dev")
