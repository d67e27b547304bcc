"""Image data for the training figures.

* CIFAR-10 from a local folder in its standard python format
  (``cifar-10-batches-py``: pickles ``data_batch_1`` … ``data_batch_5`` and
  ``test_batch`` holding ``data`` (N×3072 uint8, channel-major) and ``labels``).
* The embedded offline default: scikit-learn's bundled handwritten digits
  (1,797 real 8×8 images that ship inside the installed package), resized to
  the network's input size.
* ``cifar-shaped``: synthetic stand-in for CIFAR-10's shape (3 channels, 10 classes, spatially
  correlated images: a smooth class template, a smooth per-image field and pixel noise), for the
  figures' ablation where CIFAR-10 is absent; it is not CIFAR-10's statistics.
* A tiny synthetic set, for tests only.

Every set is standardised per channel (mean 0, variance 1 over the training
split), so the input second moment is 1.
"""

from __future__ import annotations

import dataclasses
import os
import pickle

import numpy as np
import torch

CIFAR_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


@dataclasses.dataclass
class ImageData:
    name: str
    train_x: torch.Tensor  # (N, C, H, W) float32, standardised
    train_y: torch.Tensor  # (N,) int64
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int

    @property
    def in_channels(self):
        return self.train_x.shape[1]


def _standardise(train, test):
    mean = train.mean(dim=(0, 2, 3), keepdim=True)
    std = train.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-8)
    return (train - mean) / std, (test - mean) / std


def _resize(x, size):
    if x.shape[-1] == size:
        return x
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def _read_batch(path):
    try:
        with open(path, "rb") as fh:
            batch = pickle.load(fh, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (OSError, pickle.UnpicklingError, KeyError, EOFError, ValueError, TypeError) as exc:
        raise ValueError(f"CIFAR-10 batch {path!r} is malformed ({type(exc).__name__}: {exc}); expected a pickle "
                         "with b'data' (N x 3072 uint8) and b'labels'") from None
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise ValueError(f"CIFAR-10 batch {path!r} has data of shape {data.shape} and {len(labels)} labels; "
                         "expected (N, 3072) and N labels")
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(root: str, size: int = 32, limit: int | None = None) -> ImageData:
    """CIFAR-10 from ``root`` (the ``cifar-10-batches-py`` folder or its parent)."""
    if not os.path.isdir(root):
        raise ValueError(f"--data-root {root!r} is not a folder; expected the CIFAR-10 python version "
                         f"(cifar-10-batches-py with {', '.join(CIFAR_FILES)})")
    folder = os.path.join(root, "cifar-10-batches-py") if os.path.isdir(os.path.join(root, "cifar-10-batches-py")) \
        else root
    missing = [f for f in CIFAR_FILES if not os.path.isfile(os.path.join(folder, f))]
    if missing:
        raise ValueError(f"--data-root {root!r} is missing {', '.join(missing)}; expected the CIFAR-10 python "
                         f"version (cifar-10-batches-py with {', '.join(CIFAR_FILES)})")
    parts = [_read_batch(os.path.join(folder, f)) for f in CIFAR_FILES]
    train_x = np.concatenate([p[0] for p in parts[:5]])
    train_y = np.concatenate([p[1] for p in parts[:5]])
    test_x, test_y = parts[5]
    if limit is not None:
        train_x, train_y, test_x, test_y = train_x[:limit], train_y[:limit], test_x[:limit], test_y[:limit]
    tx = _resize(torch.from_numpy(train_x).float() / 255.0, size)
    vx = _resize(torch.from_numpy(test_x).float() / 255.0, size)
    tx, vx = _standardise(tx, vx)
    return ImageData("CIFAR-10", tx, torch.from_numpy(train_y), vx, torch.from_numpy(test_y), 10)


def load_digits(size: int = 32, test_fraction: float = 0.2, seed: int = 0) -> ImageData:
    """scikit-learn's bundled handwritten digits (8×8, 10 classes), resized to ``size``."""
    from sklearn.datasets import load_digits as _digits

    bunch = _digits()
    x = torch.from_numpy(bunch.images.astype(np.float32)).unsqueeze(1) / 16.0
    y = torch.from_numpy(bunch.target.astype(np.int64))
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_test = int(round(test_fraction * len(y)))
    test, train = perm[:n_test], perm[n_test:]
    tx, vx = _standardise(_resize(x[train], size), _resize(x[test], size))
    return ImageData("sklearn digits", tx, y[train], vx, y[test], 10)


def synthetic(size: int = 8, n: int = 64, channels: int = 1, classes: int = 4, seed: int = 0) -> ImageData:
    """Random images with class-dependent means: for tests only."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (2 * n,), generator=g)
    x = torch.randn(2 * n, channels, size, size, generator=g) + 0.5 * y.view(-1, 1, 1, 1).float()
    tx, vx = _standardise(x[:n], x[n:])
    return ImageData("synthetic (tests only)", tx, y[:n], vx, y[n:], classes)


def _smooth_field(n, channels, coarse, size, gen):
    """Gaussian fields drawn at ``coarse``×``coarse`` and upsampled bilinearly: correlated over
    about size/coarse pixels."""
    return _resize(torch.randn(n, channels, coarse, coarse, generator=gen), size)


def cifar_shaped(size: int = 32, n: int = 5000, seed: int = 0) -> ImageData:
    """CIFAR-10's shape without its images: 3 channels, 10 classes; an image is its class's smooth
    template (4×4 detail) plus a smooth field of its own (8×8 detail) plus pixel noise, in the
    proportions 1 : 1 : 0.5 of standard deviation; ``n`` training and n/5 test images."""
    gen = torch.Generator().manual_seed(seed)
    templates = _smooth_field(10, 3, 4, size, gen)
    total = n + n // 5
    y = torch.randint(0, 10, (total,), generator=gen)
    x = templates[y] + _smooth_field(total, 3, 8, size, gen) + 0.5 * torch.randn(total, 3, size, size, generator=gen)
    tx, vx = _standardise(x[:n], x[n:])
    return ImageData("CIFAR-shaped synthetic", tx, y[:n], vx, y[n:], 10)


def load(data: str, data_root: str | None, size: int, limit: int | None = None) -> ImageData:
    """'digits' (default), 'cifar10' (needs ``data_root``), 'cifar-shaped' or 'synthetic'."""
    if data == "cifar10":
        if not data_root:
            raise ValueError("--data cifar10 needs --data-root pointing at the CIFAR-10 python version")
        return load_cifar10(data_root, size, limit)
    if data_root:
        return load_cifar10(data_root, size, limit)
    if data == "digits":
        return load_digits(size)
    if data == "cifar-shaped":
        return cifar_shaped(size)
    if data == "synthetic":
        return synthetic(size)
    raise ValueError(f"unknown data set {data!r}; choose digits, cifar10 (with --data-root), cifar-shaped or synthetic")


def write_cifar10_fixture(root: str, n_per_batch: int = 20, seed: int = 0) -> str:
    """Write a tiny data set in the real CIFAR-10 python format (for tests)."""
    folder = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in CIFAR_FILES:
        batch = {
            b"batch_label": name.encode(),
            b"labels": rng.integers(0, 10, n_per_batch).tolist(),
            b"data": rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
            b"filenames": [f"img{i}.png".encode() for i in range(n_per_batch)],
        }
        with open(os.path.join(folder, name), "wb") as fh:
            pickle.dump(batch, fh)
    with open(os.path.join(folder, "batches.meta"), "wb") as fh:
        pickle.dump({b"label_names": [f"class{i}".encode() for i in range(10)], b"num_cases_per_batch": n_per_batch},
                    fh)
    return folder
