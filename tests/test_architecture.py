"""The architecture's rules, checked on the source (docs/architecture.md states them).

- Layers: ``stickyrec.envs`` (the world) imports neither agents nor experiments; ``stickyrec.agents`` (policies)
  does not import experiments. The root package (``stickyrec``, ``stickyrec.io``) is shared by all three.
- No private name (``_x``) crosses a module boundary: not imported, not read off another module.
- Modules stay under 600 lines and functions under 80, so a newcomer can read any one of them in a sitting.
- After an install, ``stickyrec`` is our only top-level package (no ``envs``, ``agents`` or ``experiments`` in
  site-packages), and the env registers both with ``import stickyrec`` and with the ``stickyrec:`` prefix alone.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "stickyrec.envs": ROOT / "envs",
    "stickyrec.agents": ROOT / "agents",
    "stickyrec.experiments": ROOT / "experiments",
    "stickyrec": ROOT / "stickyrec",
}
FORBIDDEN = {
    "stickyrec.envs": ("stickyrec.agents", "stickyrec.experiments"),
    "stickyrec.agents": ("stickyrec.experiments",),
}
NAMEDTUPLE_API = {"_replace", "_asdict", "_fields", "_make"}  # public despite the underscore
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
# Functions allowed past MAX_FUNCTION_LINES, each with the reason (keep this empty if you can).
LONG_FUNCTIONS: dict[str, str] = {}


def _modules() -> dict[str, Path]:
    """Every source module of the package, by dotted name."""
    out = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            if package == "stickyrec" and path.parent != folder:
                continue
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([package, *parts])] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every import in a module, function-local ones included."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            found.append((module, [alias.name for alias in node.names], node.lineno))
    return found


def _private_names_defined(tree: ast.Module) -> set[str]:
    """Private names a module owns: its functions, classes, methods and ``self._x`` attributes."""
    own = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            own.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            own.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            own.add(node.id)
    return {name for name in own if name.startswith("_")}


def test_the_source_tree_is_found():
    """The checks below see every layer (a renamed folder fails here rather than passing vacuously)."""
    for package in ("stickyrec.envs", "stickyrec.agents", "stickyrec.agents.rl", "stickyrec.experiments"):
        assert package in MODULES, package
    assert len(MODULES) > 30


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_lower_layers_never_import_upward(layer):
    offences = []
    for name, path in MODULES.items():
        if name != layer and not name.startswith(layer + "."):
            continue
        for module, _, line in _imports(name, path):
            if any(module == up or module.startswith(up + ".") for up in FORBIDDEN[layer]):
                offences.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not offences, "\n".join(offences)


def test_no_private_name_crosses_a_module_boundary():
    offences = []
    for name, path in MODULES.items():
        aliases = {}
        for module, names, line in _imports(name, path):
            if not module.startswith("stickyrec"):
                continue
            for taken in names:
                if taken.startswith("_") and not taken.startswith("__"):
                    offences.append(f"{path.relative_to(ROOT)}:{line} imports {taken} from {module}")
                aliases[taken] = module
        # obj._private where the name is not one this module defines (another module's internals)
        tree = ast.parse(path.read_text())
        own = _private_names_defined(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
                and node.attr not in own
                and node.attr not in NAMEDTUPLE_API
            ):
                offences.append(f"{path.relative_to(ROOT)}:{node.lineno} reads .{node.attr} of another module")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "setattr")
                and len(node.args) > 1
                and isinstance(node.args[1], ast.Constant)
                and str(node.args[1].value).startswith("_")
                and not str(node.args[1].value).startswith("__")
                and node.args[1].value not in own
            ):
                offences.append(f"{path.relative_to(ROOT)}:{node.lineno} reads {node.args[1].value} by getattr")
    assert not offences, "\n".join(offences)


def test_modules_and_functions_stay_small():
    offences = []
    for name, path in MODULES.items():
        text = path.read_text()
        lines = text.count("\n")
        if lines > MAX_MODULE_LINES:
            offences.append(f"{path.relative_to(ROOT)}: {lines} lines (limit {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                where = f"{name}.{node.name}"
                if length > MAX_FUNCTION_LINES and where not in LONG_FUNCTIONS:
                    offences.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length} lines")
    assert not offences, "\n".join(offences)


def test_an_install_holds_stickyrec_and_no_generic_top_level_package(tmp_path):
    """Build the wheel, install it into an empty folder (a site-packages), and list what landed there."""
    wheels, target, source = tmp_path / "wheels", tmp_path / "site-packages", tmp_path / "source"
    # build from a copy: setuptools leaves a build/ folder beside the sources it builds
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "results", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "runs"
        ),
    )
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(wheels),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = wheels.glob("stickyrec-*.whl")
    top = {entry.split("/")[0] for entry in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in top if not t.endswith(".dist-info")} == {"stickyrec"}, top
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    landed = {p.name for p in target.iterdir() if not p.name.endswith(".dist-info") and p.name != "bin"}
    assert landed == {"stickyrec"}, landed
    for sub in ("envs", "agents", "agents/rl", "experiments"):
        assert (target / "stickyrec" / sub / "__init__.py").is_file(), sub
    assert (target / "stickyrec" / "experiments" / "configs" / "benchmark.yaml").is_file()
    # the installed copy imports and runs from outside the checkout, on its own files
    probe = (
        "import stickyrec, stickyrec.envs, gymnasium as gym; "
        "assert stickyrec.envs.__file__.startswith(sys.argv[1]), stickyrec.envs.__file__; "
        "env = gym.make('stickyrec/Retention-v0'); env.reset(seed=0); print('ok')"
    )
    run = subprocess.run(
        [sys.executable, "-c", "import sys; " + probe, str(target)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin"},
    )
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]


def test_gym_make_with_the_module_prefix_needs_no_import(tmp_path):
    code = (
        "import sys, gymnasium as gym; env = gym.make('stickyrec:stickyrec/Retention-v0'); "
        "obs, _ = env.reset(seed=0); assert 'stickyrec' in sys.modules; print(obs['candidate_ids'].shape)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "(100,)"
