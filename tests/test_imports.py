"""The import graph: imports go down the layers, with no cycles between modules.

Read from the source (``ast``), so a lazy import inside a function counts as much as one at the
top; only imports under ``if TYPE_CHECKING:`` (annotations) are left out. ``agents/`` and
``rewards/`` are mapped to ``latent_env.agents`` and ``latent_env.rewards``, as pyproject.toml
installs them.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"latent_env": ROOT / "latent_env", "latent_env.agents": ROOT / "agents",
           "latent_env.rewards": ROOT / "rewards"}
#: Lowest first; a module may import its own layer and those below it, never one above.
LAYERS = (
    ("rewards", ("latent_env.rewards",)),
    ("core", ("latent_env",)),  # env, episode, actions, scoring, tasks, tools, sandbox, thoughts
    ("agents", ("latent_env.agents",)),
    ("bench", ("latent_env.bench",)),
    ("training", ("latent_env.training",)),
    ("cli", ("latent_env.cli", "latent_env.score_cli")),
)


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def _type_checking_only(tree: ast.AST) -> set[ast.AST]:
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(n for stmt in node.body for n in ast.walk(stmt))
    return skipped


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package modules ``name`` imports (a name imported from a package counts as the
    package's ``__init__`` unless it is a submodule)."""
    def resolve(target: str) -> str | None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        return target or None

    tree = ast.parse(path.read_text())
    skipped = _type_checking_only(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if node in skipped:
            continue
        if isinstance(node, ast.Import):
            out.update(resolve(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in known else resolve(base))
    return {m for m in out if m and m != name}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def layer_of(module: str) -> int:
    best, rank = -1, 0
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    return rank


def test_no_module_imports_a_module_that_imports_it_back():
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(edges) == [["a", "b", "c"]]


def test_imports_only_go_down_the_layers():
    upward = sorted(
        f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} "
        f"({LAYERS[layer_of(target)][0]})"
        for module, targets in graph().items() for target in targets
        if layer_of(target) > layer_of(module))
    assert upward == []


def test_rewards_import_nothing_from_the_engine():
    outside = {m: sorted(t for t in ts if not t.startswith("latent_env.rewards"))
               for m, ts in graph().items() if m.startswith("latent_env.rewards")}
    assert {m: ts for m, ts in outside.items() if ts} == {}


def test_pyproject_installs_every_package_folder_under_its_name():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {m for m, p in modules().items() if p.name == "__init__.py"}
    assert set(config["packages"]) == packages
    assert config["package-dir"] == {"latent_env.agents": "agents",
                                     "latent_env.rewards": "rewards"}


def test_a_users_own_agents_and_rewards_modules_do_not_shadow_ours(tmp_path):
    for name in ("agents", "rewards"):
        (tmp_path / f"{name}.py").write_text("import latent_env  # a user's module of this name\n")
    code = ("import latent_env.env, latent_env.agents, latent_env.training.reward; "
            "from latent_env.agents import make_policy; print(make_policy('none').name)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "none"


@pytest.mark.slow
def test_the_wheel_holds_the_package_its_data_and_no_generic_top_level_names(tmp_path):
    # Built from a copy: setuptools writes build/ and *.egg-info/ next to the sources.
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "build", "runs", "*.egg-info", "__pycache__", ".*_cache", "bench-out"))
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                          "--no-build-isolation", "-w", str(tmp_path), str(source)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = tmp_path.glob("latent_env-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"latent_env", "train_rl.py"}
    assert {"latent_env/agents/registry.py", "latent_env/rewards/rubric.py",
            "latent_env/training/presets/default.yaml",
            "latent_env/training/accelerate/fsdp.yaml"} <= names
