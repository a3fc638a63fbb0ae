"""The package's import graph, by layer: what points up, what goes round.

Reads every module of ``speechbrain_sercl`` (imports inside functions
too; nothing is imported), sorts the modules into the layers of
``docs/design.md`` and prints, per layer, its modules and what they
import; then the longest import chain (the graph's depth), every import
of a higher layer ("back-arrow") and every cycle. Exits 1 if there is a
back-arrow or a cycle.

    python .ci/import_graph.py [--quiet]

The suite runs the same check (``tests/unittests/test_architecture.py``).
"""

import ast
import pathlib
import sys

PACKAGE = "speechbrain_sercl"
ROOT = pathlib.Path(__file__).resolve().parents[1] / PACKAGE
# Bottom to top: a module may import its own layer and the layers below.
LAYERS = ("base", "data", "method", "reporting", "inference", "protocol")
# The entry points on top of every layer.
APPLICATION = ("cli", "recipes")
MAX_ROOT_MODULES = 12  # the base, cli and the old paths (_moved)


def module_name(path):
    """``speechbrain_sercl.method.pooling`` for ``.../method/pooling.py``."""
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(module):
    """The layer of a module (its subpackage, ``base`` at the root)."""
    parts = module.split(".")[1:]
    if not parts:
        return "package"
    if parts[0] in APPLICATION:
        return "application"
    if len(parts) == 1 and not (ROOT / parts[0]).is_dir():
        return "base"
    return parts[0]


def rank(layer):
    """The height of a layer."""
    order = (*LAYERS, "application", "package")
    return order.index(layer)


def imports_of(path, modules):
    """The package's modules that a file imports (a ``from package import
    module`` counts as the module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
            names += [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != PACKAGE:
                found.add(name)
    return found


def import_graph():
    """Module -> the package's modules it imports."""
    paths = {module_name(path): path for path in ROOT.rglob("*.py")}
    return {
        module: sorted(imports_of(path, paths) - {module})
        for module, path in sorted(paths.items())
    }


def back_arrows(graph):
    """``(module, imported)`` for each import of a higher layer."""
    return [
        (module, target)
        for module, targets in graph.items()
        for target in targets
        if rank(layer_of(target)) > rank(layer_of(module))
    ]


def cycles(graph):
    """Each import cycle once, as a list of modules."""
    found, state = [], {}

    def visit(module, chain):
        state[module] = "open"
        for target in graph.get(module, ()):
            if state.get(target) == "open":
                found.append(chain[chain.index(target) :] + [target])
            elif target not in state:
                visit(target, [*chain, target])
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, [module])
    return found


def longest_chain(graph):
    """The longest import chain (the graph has no cycle)."""
    best = {}

    def chain(module):
        if module not in best:
            tails = [chain(target) for target in graph.get(module, ())]
            best[module] = [module, *max(tails, key=len, default=[])]
        return best[module]

    return max((chain(module) for module in graph), key=len)


def root_modules():
    """The modules at the package root (``__init__`` aside)."""
    return sorted(
        path.stem for path in ROOT.glob("*.py") if path.stem != "__init__"
    )


def short(module):
    """A module's name without the package."""
    return module.removeprefix(f"{PACKAGE}.") or PACKAGE


def main(argv):
    """Prints the graph; exits 1 on a back-arrow or a cycle."""
    graph = import_graph()
    if "--quiet" not in argv:
        for layer in (*LAYERS, "application", "package"):
            print(f"## {layer}")
            for module, targets in graph.items():
                if layer_of(module) == layer:
                    shown = ", ".join(short(t) for t in targets) or "-"
                    print(f"  {short(module)} -> {shown}")
    arrows, loops = back_arrows(graph), cycles(graph)
    roots = root_modules()
    print(f"root modules: {len(roots)} (at most {MAX_ROOT_MODULES})")
    if not loops:
        depth = longest_chain(graph)
        print(
            f"depth: {len(depth) - 1} imports: "
            + " -> ".join(map(short, depth))
        )
    print(f"back-arrows: {len(arrows)}")
    for module, target in arrows:
        print(
            f"  {short(module)} ({layer_of(module)}) imports "
            f"{short(target)} ({layer_of(target)})"
        )
    print(f"cycles: {len(loops)}")
    for loop in loops:
        print("  " + " -> ".join(map(short, loop)))
    return 1 if arrows or loops or len(roots) > MAX_ROOT_MODULES else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
