"""The one-way imports of ``../shared/design.md``, checked on the source (every import, also inside functions).

Each stage may import only the stages below it; ``paths``, ``errors``, ``logs`` and ``registry`` are
the ground floor everyone may use. A new import against the flow fails here with the file and the line.
"""
from __future__ import annotations

import ast
from pathlib import Path

import mednext_fw

PACKAGE = Path(mednext_fw.__file__).parent
# devices and heap: the process's machine and allocator, set up before any stage runs
GROUND = {"paths", "errors", "registry", "logs", "devices", "durations", "heap"}
# stage -> the stages it may import (besides itself and the ground floor)
ALLOWED = {
    "paths": {"errors"},
    "errors": set(),
    "logs": set(),
    "devices": {"errors"},
    "heap": set(),
    "durations": {"errors"},
    "registry": {"errors"},
    "io": set(),
    "conversion": {"io"},
    "network_architectures": set(),
    "evaluation": {"io"},
    "planners": {"io", "network_architectures"},  # the memory model asks the network about itself
    "preprocessing": {"io", "planners"},
    "inference": {"io", "planners", "preprocessing", "network_architectures"},
    "trainers": {"io", "planners", "preprocessing", "network_architectures", "inference", "evaluation"},
    # the demo runs the stage functions the commands run (plan_and_preprocess, train_fold, predict_folder, ...)
    "demo": {"io", "planners", "preprocessing", "network_architectures", "inference", "evaluation", "trainers"},
    # a trained model's export/install (reads the trainer's model folder and checkpoints)
    "deployment": {"io", "planners", "preprocessing", "network_architectures", "inference", "trainers"},
    # model selection: scores cross-validation predictions and their ensembles
    "selection": {"io", "planners", "inference", "evaluation"},
    "cli": {"io", "conversion", "planners", "preprocessing", "network_architectures", "inference", "evaluation",
            "trainers", "demo", "deployment", "selection"},
}


def _stage(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                base = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)[: -node.level]
                out.append((node.lineno, ".".join(base + ([node.module] if node.module else []))))
            elif node.module:
                out.append((node.lineno, node.module))
    return [(line, m) for line, m in out if m == "mednext_fw" or m.startswith("mednext_fw.")]


def _edges() -> list[tuple[str, str, str]]:
    """(importing stage, imported stage, 'file:line') for every import of our own modules."""
    edges = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "__init__.py" and path.parent == PACKAGE:
            continue
        src = _stage(path)
        for line, module in _imports(path):
            parts = module.split(".")
            if len(parts) < 2:
                continue
            dst = parts[1]
            if dst != src:
                edges.append((src, dst, f"{path.relative_to(PACKAGE.parent)}:{line}"))
    return edges


def test_every_stage_is_known():
    stages = {_stage(p) for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE or p.name != "__init__.py"}
    assert stages <= set(ALLOWED) | {"__main__"}, f"add the new stage(s) {stages - set(ALLOWED)} to ALLOWED"


def test_imports_flow_one_way():
    bad = [f"{where}: {src} imports {dst}" for src, dst, where in _edges()
           if dst not in ALLOWED.get(src, set()) | GROUND]
    assert not bad, "imports against design.md:\n" + "\n".join(bad)


def test_the_rules_named_in_the_design():
    """The rules spelled out in design.md, so a loosened ALLOWED table cannot hide them."""
    edges = {(s, d) for s, d, _ in _edges()}
    assert not {d for s, d in edges if s == "io"} - GROUND, "io imports no other stage"
    assert ("inference", "trainers") not in edges, "inference imports no trainer"
    assert not [s for s, d in edges if d == "cli"], "nothing imports cli"
    assert not {("planners", "preprocessing"), ("preprocessing", "planners")} <= edges, \
        "planners and preprocessing must not import each other"
