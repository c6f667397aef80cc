"""The folders hold the architecture: data flows one way, the app sits on top of the library.

Every .py file under artgen/, annotate/, bench/ and export/ is read with `ast` (imports at
the top of a module and inside functions alike; nothing is imported to check it):

- only the app layer (artgen/app/) reaches into annotate, bench and export, and nothing but
  the app layer (and `python -m artgen`) imports the app layer;
- artgen's modules import each other without a cycle when they load;
- export/runtime.py, which every bundle ships a copy of, needs neither torch nor artgen.

scripts/ and tests/ may import anything.
"""

import ast
from dataclasses import dataclass
from pathlib import Path

from helpers import ROOT

PACKAGES = ("artgen", "annotate", "bench", "export")
OTHER_STAGES = ("annotate", "bench", "export")
APP = "artgen.app"
RUNTIME = "export.runtime"
RUNTIME_FORBIDDEN = ("torch", "artgen")


@dataclass(frozen=True)
class Import:
    module: str  # the importing module: artgen.data.latents
    target: str  # what it imports, resolved to a module where one is ours: artgen.models.vqvae, torch.nn
    where: str  # artgen/data/latents.py:54
    top_level: bool  # runs when the module is imported (not inside a function)


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files(root: Path) -> list[Path]:
    return sorted(p for pkg in PACKAGES if (root / pkg).is_dir() for p in (root / pkg).rglob("*.py"))


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module a `from ... import` reads from (relative imports included)."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(root: Path, path: Path, known: set[str]) -> list[Import]:
    """Every import statement in `path`, top level or inside a function (class bodies and
    module-level `if`/`try` blocks run at import time, so they count as top level)."""
    module = module_name(root, path)
    found = []

    def record(target: str, node: ast.stmt, top_level: bool) -> None:
        found.append(Import(module, target, f"{path.relative_to(root)}:{node.lineno}", top_level))

    def visit(node: ast.AST, top_level: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    record(alias.name, child, top_level)
            elif isinstance(child, ast.ImportFrom):
                base = _resolve(child, module, path.name == "__init__.py")
                for alias in child.names:  # `from artgen.models import vqvae` imports a module
                    sub = f"{base}.{alias.name}"
                    record(sub if sub in known else base, child, top_level)
            visit(child, top_level and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(path.read_text(), str(path)), True)
    return found


def all_imports(root: Path) -> list[Import]:
    files = source_files(root)
    known = {module_name(root, p) for p in files}
    return [imp for p in files for imp in imports_of(root, p, known)]


def _top(name: str) -> str:
    return name.split(".")[0]


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def stage_violations(imports: list[Import]) -> list[str]:
    """artgen's library imports neither the other stages nor its own app layer."""
    bad = []
    for imp in imports:
        if _top(imp.module) == "artgen" and not _within(imp.module, APP) and _top(imp.target) in OTHER_STAGES:
            bad.append(f"{imp.where}: {imp.module} imports {imp.target}; only {APP} may import {', '.join(OTHER_STAGES)}")
        if _within(imp.target, APP) and not _within(imp.module, APP) and imp.module != "artgen.__main__":
            bad.append(f"{imp.where}: {imp.module} imports {imp.target}; the app layer imports the library, never the reverse")
    return bad


def find_cycle(imports: list[Import], package: str = "artgen") -> list[Import]:
    """A cycle among `package`'s modules through top-level imports, as the imports that
    close it ([] when there is none)."""
    edges: dict[str, list[Import]] = {}
    for imp in imports:
        if imp.top_level and _top(imp.module) == package and _top(imp.target) == package and imp.target != imp.module:
            edges.setdefault(imp.module, []).append(imp)
    done: set[str] = set()
    path: list[Import] = []
    on_path: set[str] = set()

    def walk(module: str) -> list[Import]:
        on_path.add(module)
        for imp in edges.get(module, []):
            if imp.target in on_path:  # back to a module on the current path: the cycle
                start = next(i for i, p in enumerate(path) if p.module == imp.target) if path else 0
                return path[start:] + [imp]
            if imp.target not in done:
                path.append(imp)
                cycle = walk(imp.target)
                if cycle:
                    return cycle
                path.pop()
        on_path.discard(module)
        done.add(module)
        return []

    for module in sorted(edges):
        if module not in done:
            cycle = walk(module)
            if cycle:
                return cycle
    return []


def describe_cycle(cycle: list[Import]) -> str:
    return " -> ".join([cycle[0].module] + [f"{imp.target} ({imp.where})" for imp in cycle])


def runtime_violations(imports: list[Import]) -> list[str]:
    return [f"{imp.where}: {RUNTIME} imports {imp.target}; a bundle's runtime needs neither torch nor artgen"
            for imp in imports if imp.module == RUNTIME and _top(imp.target) in RUNTIME_FORBIDDEN]


# ----------------------------------------------------------------------------- the repository


def test_only_the_app_layer_imports_annotate_bench_and_export():
    assert stage_violations(all_imports(ROOT)) == []


def test_artgen_modules_load_without_an_import_cycle():
    cycle = find_cycle(all_imports(ROOT))
    assert not cycle, f"import cycle: {describe_cycle(cycle)}"


def test_the_bundle_runtime_needs_neither_torch_nor_artgen():
    imports = all_imports(ROOT)
    assert any(imp.module == RUNTIME for imp in imports)  # the file was read
    assert runtime_violations(imports) == []


# ----------------------------------------------------------------------------- the checks themselves


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_the_checks_name_each_planted_bad_import(tmp_path):
    root = _tree(tmp_path, {
        "artgen/__init__.py": "",
        "artgen/data/__init__.py": "",
        "artgen/data/corpus.py": "from artgen.models.vqvae import VQVAE\n",
        "artgen/models/__init__.py": "",
        "artgen/models/vqvae.py": "import torch\n\nfrom ..data import corpus\n",  # a relative import closes the cycle
        "artgen/models/encoders.py": "def table():\n    from bench.report import write_reports\n",
        "artgen/workspace.py": "def run():\n    import artgen.app.cli\n",
        "artgen/app/__init__.py": "",
        "artgen/app/cli.py": "from bench.run import run_bench\nfrom artgen.models import vqvae\n",
        "bench/__init__.py": "",
        "bench/run.py": "import artgen.models.vqvae\n",
        "export/__init__.py": "",
        "export/runtime.py": "import numpy\n\n\ndef load():\n    import torch.nn\n",
    })
    imports = all_imports(root)
    assert stage_violations(imports) == [
        "artgen/models/encoders.py:2: artgen.models.encoders imports bench.report; only artgen.app may import annotate, bench, export",
        "artgen/workspace.py:2: artgen.workspace imports artgen.app.cli; the app layer imports the library, never the reverse",
    ]
    assert describe_cycle(find_cycle(imports)) == (
        "artgen.models.vqvae -> artgen.data.corpus (artgen/models/vqvae.py:3) -> artgen.models.vqvae (artgen/data/corpus.py:1)")
    assert runtime_violations(imports) == [
        "export/runtime.py:5: export.runtime imports torch.nn; a bundle's runtime needs neither torch nor artgen"]
