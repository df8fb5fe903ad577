"""The package's layers: data flows one way (CLI → sweeps → tasks → optimizers); a lower layer never imports a
higher one, not even inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "weightdecay"

# Lowest first. `errors`, `checks`, `_io` (atomic writes), `_profiling` (a step's memory peak), `_extras` (an
# optional dependency, or the line that installs it), `process_group` (a torch.distributed group that ends cleanly)
# and `decay` are the floor every layer may use.
LAYERS = ["errors", "checks", "_io", "_profiling", "_extras", "process_group", "decay", "report_line", "optim", "schedules", "rules", "monitors", "data", "tasks", "sweeps", "reports", "suggest", "cli"]


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


def module_imports() -> dict[str, set[str]]:
    """Each module of the package (a folder's ``__init__`` by the folder's name) → the package's modules it imports,
    at module level or inside a function, absolute or relative."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
                for alias in node.names:  # `from pkg import mod` names a module; `from mod import name` the module
                    target = next((c for c in (f"{base}.{alias.name}", base) if c in modules), None)
                    if target and target != module:
                        edges[module].add(target)
            elif isinstance(node, ast.Import):
                edges[module].update(a.name for a in node.names if a.name in modules and a.name != module)
    return edges


def circles_within(folder: str, edges: dict[str, set[str]]) -> list[str]:
    """The modules under ``weightdecay.FOLDER`` that reach themselves through imports inside that folder."""
    inside = {m for m in edges if m.startswith(f"weightdecay.{folder}.")}

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in edges[todo.pop()] & inside:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    return sorted(m for m in inside if m in reach(m))


FOLDERS = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())


@pytest.mark.parametrize("folder", FOLDERS)
def test_no_import_circle_inside_a_layer(folder):
    # One idea per module, data flowing one way: a module never needs, through others of its layer, itself.
    assert not circles_within(folder, module_imports()), f"{folder}/ modules in an import circle"


def test_the_circle_detector_finds_a_circle():
    edges = {"weightdecay.sweeps.a": {"weightdecay.sweeps.b"}, "weightdecay.sweeps.b": {"weightdecay.sweeps.a"},
             "weightdecay.sweeps.c": {"weightdecay.sweeps.a"}}
    assert circles_within("sweeps", edges) == ["weightdecay.sweeps.a", "weightdecay.sweeps.b"]
