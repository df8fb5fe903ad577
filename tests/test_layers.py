"""The package's layers: data flows one way (CLI → sweeps → tasks → optimizers); a lower layer never imports a
higher one, not even inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "weightdecay"

# Lowest first. `errors`, `checks`, `_io` (atomic writes), `_profiling` (a step's memory peak), `process_group`
# (a torch.distributed group that ends cleanly) and `decay` are the floor every layer may use.
LAYERS = ["errors", "checks", "_io", "_profiling", "process_group", "decay", "report_line", "optim", "schedules", "rules", "monitors", "data", "tasks", "sweeps", "analysis", "suggest", "reports", "cli"]


def layer_of(module: str) -> int | None:
    """The layer index of a dotted module name inside the package (None for the package root itself)."""
    parts = module.split(".")
    if parts[0] != "weightdecay" or len(parts) == 1:
        return None
    return LAYERS.index(parts[1])


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            # `from weightdecay import tasks` names a layer in the imported names.
            if node.module == "weightdecay":
                found += [f"weightdecay.{alias.name}" for alias in node.names if alias.name in LAYERS]
    return [m for m in found if m.startswith("weightdecay")]


def source_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0].removesuffix(".py") in LAYERS)


def test_every_package_folder_and_module_has_a_layer():
    tops = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in PACKAGE.rglob("*.py")}
    assert tops - {"__init__"} <= set(LAYERS), f"modules without a layer: {sorted(tops - set(LAYERS) - {'__init__'})}"


@pytest.mark.parametrize("path", source_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_lower_layer_imports_a_higher_one(path):
    own = LAYERS.index(path.relative_to(PACKAGE).parts[0].removesuffix(".py"))
    upward = [m for m in imported_modules(path) if (layer_of(m) or 0) > own]
    assert not upward, f"{path.relative_to(PACKAGE)} (layer {LAYERS[own]}) imports higher layers: {upward}"


def test_the_package_root_imports_only_the_optimizer_layers():
    # `import weightdecay` stays light: the conventions and the optimizers, nothing that loads data or Optuna.
    layers = {layer_of(m) for m in imported_modules(PACKAGE / "__init__.py")} - {None}
    assert max(layers) <= LAYERS.index("optim")
