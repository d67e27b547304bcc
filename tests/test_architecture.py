"""The direction of imports: figures -> sim -> meanfield, sim -> cuda_kernels -> meanfield, never back;
inside meanfield, cli -> validate -> paper -> theory -> activations -> gauss -> the foundation modules.

Checked twice: statically (every import statement of every module, those inside functions too: the
import graph has no circle and no arrow pointing up) and at run time (each package imported with the
packages above it made unimportable).
"""

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
#: package -> the top-level modules it must never import
FORBIDDEN = {
    "meanfield": {"sim", "figures", "cuda_kernels", "torch", "matplotlib"},
    "cuda_kernels": {"sim", "figures"},
    "sim": {"figures"},
    "figures": set(),
}


#: the layers of the project, lowest first: a module may import its own layer and those below it.
#: The entries are module-name prefixes; the longest prefix that matches a module gives its layer.
LAYERS = [
    ("meanfield._version", "meanfield._lazy", "meanfield.arguments", "meanfield.results", "meanfield.resources"),
    ("meanfield.gauss",),
    ("meanfield.activations",),
    ("meanfield.theory",),
    ("meanfield.paper",),
    ("meanfield.validate",),
    ("meanfield.cli",),
    ("meanfield",),  # the package's own __init__: the public names, imported lazily
    ("cuda_kernels",),
    ("sim",),
    ("figures",),
]
PACKAGES = ("meanfield", "cuda_kernels", "sim", "figures")


def _module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _project_modules():
    """{dotted name: path} of every module of the four packages."""
    return {_module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}


def _imported_modules(path, name, known):
    """The project modules that the module ``name`` at ``path`` imports, anywhere in its body."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module
            # `from a import b` imports the module a.b where there is one, else a
            targets = [f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in known else stem for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import a.b.c` of a name below a module
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


def _import_graph():
    known = _project_modules()
    return {name: set(_imported_modules(path, name, known)) for name, path in known.items()}


def _layer(name):
    best = max(((len(prefix), i) for i, prefixes in enumerate(LAYERS) for prefix in prefixes
                if name == prefix or name.startswith(prefix + ".")), default=None)
    assert best is not None, f"{name} is in no layer of LAYERS: add it"
    return best[1]


def _cycles(graph):
    """The strongly connected components of more than one module (Tarjan), each a sorted list."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_has_no_circle():
    assert _cycles(_import_graph()) == []


def test_no_import_arrow_points_up():
    bad = [f"{a} -> {b}" for a, targets in sorted(_import_graph().items()) for b in sorted(targets)
           if _layer(b) > _layer(a)]
    assert not bad, bad


def test_the_graph_checks_catch_a_circle_and_an_upward_arrow():
    """Negative controls: the checks above fail on a graph that has what they look for."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _layer("meanfield.gauss.quadrature") < _layer("meanfield.activations.objects")
    graph = _import_graph()
    assert "meanfield.activations.objects" not in graph["meanfield.gauss.quadrature"]
    assert "meanfield.gauss.closed_forms" in graph["meanfield.theory.functionals"]  # edges are found
    assert "meanfield.activations.spec" in graph["meanfield.activations.registry"]
    assert "meanfield.theory.functionals" in graph["sim.simulation"]


def _imports(path):
    """(top-level module, full name, imported names) of every import in a file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], alias.name, ()
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0], node.module, tuple(a.name for a in node.names)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_points_up(package):
    bad = [(str(path.relative_to(ROOT)), full) for path in (ROOT / package).rglob("*.py")
           for top, full, _ in _imports(path) if top in FORBIDDEN[package]]
    assert not bad, bad


def _private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@pytest.mark.parametrize("package", ["sim", "figures", "cuda_kernels", "benchmarks"])
def test_no_private_name_crosses_a_package_boundary(package):
    bad = []
    for path in (ROOT / package).rglob("*.py"):
        for top, full, names in _imports(path):
            if top != "meanfield":
                continue
            if any(map(_private, full.split(".")[1:])) or any(map(_private, names)):
                bad.append((str(path.relative_to(ROOT)), full, names))
    assert not bad, bad


def _run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)


_BLOCK = """import sys
class _Blocked:  # a finder that makes these top-level packages unimportable, as if not installed
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.split(".")[0] in {names!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)")
sys.meta_path.insert(0, _Blocked)
"""


def _none_loaded(names):
    """Code that fails if any of the top-level packages ``names`` is loaded (in a ``_run`` script)."""
    return (f"loaded = sorted({{m.split('.')[0] for m in sys.modules}} & {set(names)!r})\n"
            "assert not loaded, loaded\n")


@pytest.mark.parametrize("package,blocked", [
    ("meanfield", ["sim", "figures", "cuda_kernels", "torch", "matplotlib"]),
    ("cuda_kernels", ["sim", "figures"]),
    ("sim", ["figures"]),
])
def test_each_package_imports_with_the_ones_above_it_blocked(package, blocked):
    modules = sorted(m for m in _project_modules() if m.split(".")[0] == package and not m.endswith("__main__"))
    code = _BLOCK.format(names=blocked) + "".join(f"import {m}\n" for m in modules)
    result = _run(code)
    assert result.returncode == 0, result.stderr[-2000:]


def test_importing_meanfield_imports_nothing_built_on_it():
    code = ("import meanfield, sys; assert not any(m.split('.')[0] in "
            "{'sim','figures','cuda_kernels','torch','matplotlib'} for m in sys.modules)")
    result = _run(code)
    assert result.returncode == 0, result.stderr


def test_command_line_parser_imports_neither_torch_nor_matplotlib():
    code = "import sys, meanfield.cli as c\nc.build_parser()\n" + _none_loaded(["torch", "matplotlib", "dask", "numba"])
    result = _run(code)
    assert result.returncode == 0, result.stderr


def test_no_module_of_the_theory_imports_numba():
    """numba (0.4 s, and 0.3 s more to load the first cached function) comes with the first
    compiled call (meanfield/gauss/jit.py), not with any import."""
    modules = sorted(m for m in _project_modules() if m.split(".")[0] == "meanfield" and not m.endswith("__main__"))
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + _none_loaded(["numba", "llvmlite"])
    result = _run(code)
    assert result.returncode == 0, result.stderr[-2000:]


def test_solve_selu_runs_without_numba_scipy_torch_or_matplotlib():
    """The closed forms at a few points run interpreted (the compiled bits: tests/test_jit.py),
    SELU's parameters need no root-finding and its functions no special function, so nothing
    slow to import is imported (docs/performance.md times it)."""
    code = ("import sys, meanfield.cli as c\nassert c.main(['solve', 'selu', '--json']) == 0\n"
            + _none_loaded(["numba", "llvmlite", "scipy", "torch", "matplotlib", "xarray", "dask"]))
    result = _run(code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert '"gamma1": 0.806081422733' in result.stdout  # Table 5's 0.8061 for SELU, and more digits


def test_subcommands_come_from_entry_points():
    from importlib.metadata import entry_points

    names = {e.name for e in entry_points(group="meanfield.commands")}
    assert {"sim", "figures"} <= names
    assert {e.name for e in entry_points(group="meanfield.checks")} == {"monte-carlo"}


def test_without_torch_simulate_prints_the_install_hint():
    code = (_BLOCK.format(names=["torch"]) + "import meanfield.cli as c\n"
            "sys.exit(c.main(['simulate', '--activation', 'selu', '--depth', '2', '--width', '8']))\n")
    result = _run(code)
    assert result.returncode == 1  # a fault of the environment, not of the input
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'meanfield[sim]'" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_without_torch_validate_runs_the_reduced_chains_and_skips_full_networks():
    code = (_BLOCK.format(names=["torch"]) + "from meanfield import validate\n"
            "rows = validate.run(mc_size='quick')\n"
            "chains = [c for c in rows if c.section == 'reduced chain']\n"
            "full = [c for c in rows if c.section == 'monte carlo']\n"
            "assert chains and all(c.passed for c in chains), chains\n"
            "assert len(full) == 1 and full[0].name.startswith('skipped'), full\n")
    result = _run(code)
    assert result.returncode == 0, result.stderr[-2000:]
