"""Peers' own code loaded for comparison where their packages do not import here as a whole.

timm imports torchvision at ``import timm``, and torchvision does not import beside this CPU torch; its optimizer
helpers need only ``timm.models._manipulate.group_parameters``, so the two files are loaded on their own.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import pytest


def _load(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def timm_param_groups() -> types.ModuleType:
    """timm's ``timm/optim/_param_groups.py`` (``param_groups_layer_decay``), or a skip when timm is missing."""
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("timm is not installed (make test installs it --no-deps)")
    root = Path(next(iter(spec.submodule_search_locations)))
    saved = {k: sys.modules.get(k) for k in ("timm", "timm.layers", "timm.models", "timm.models._manipulate")}
    try:
        for name in ("timm", "timm.layers", "timm.models"):
            sys.modules[name] = types.ModuleType(name)
        sys.modules["timm"].__path__ = [str(root)]
        sys.modules["timm.layers"].use_reentrant_ckpt = lambda: False  # the one name _manipulate imports from it
        manipulate = _load("timm.models._manipulate", root / "models" / "_manipulate.py")
        sys.modules["timm.models"].group_parameters = manipulate.group_parameters
        return _load("weightdecay_peer_timm_param_groups", root / "optim" / "_param_groups.py")
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
