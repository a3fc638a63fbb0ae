"""The package's shape: layers whose imports point down, one methods table.

The import check is ``.ci/import_graph.py``, which anyone can run; here it
is run on the package, and once on small graphs made up to break it.
"""

import importlib.util
import re
from pathlib import Path

import pytest

from speechbrain_sercl.config import shipped_hparams
from speechbrain_sercl.method import brains
from speechbrain_sercl.method.registry import METHODS, method_names, recipe_path

REPO = Path(__file__).resolve().parents[2]


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        "import_graph", REPO / ".ci" / "import_graph.py"
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


graph_tool = _load_tool()
P = "speechbrain_sercl"


def test_imports_point_down_with_no_cycle():
    graph = graph_tool.import_graph()
    assert f"{P}.method.brains" in graph
    assert graph_tool.back_arrows(graph) == []
    assert graph_tool.cycles(graph) == []


def test_the_root_holds_at_most_twelve_modules():
    assert len(graph_tool.root_modules()) <= 12


def test_the_model_module_does_not_reach_the_data_generator():
    graph = graph_tool.import_graph()
    assert graph[f"{P}.method.backbone"] == [
        f"{P}.method.sources",
        f"{P}.method.wavlm_attention",
    ]
    assert graph[f"{P}.method.wavlm_attention"] == []


def test_a_made_up_back_arrow_and_cycle_are_found():
    graph = {
        f"{P}.data.audio": [f"{P}.method.pooling"],
        f"{P}.method.pooling": [f"{P}.method.losses"],
        f"{P}.method.losses": [f"{P}.method.sampler"],
        f"{P}.method.sampler": [f"{P}.method.pooling"],
        f"{P}.cli": [f"{P}.protocol.runner"],
    }
    assert graph_tool.back_arrows(graph) == [
        (f"{P}.data.audio", f"{P}.method.pooling")
    ]
    assert graph_tool.cycles(graph) == [
        [f"{P}.method.{m}" for m in ("pooling", "losses", "sampler", "pooling")]
    ]


def test_a_function_level_import_counts(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "def f():\n    from speechbrain_sercl.protocol import runner\n"
    )
    modules = {f"{P}.protocol.runner": None, f"{P}.protocol": None}
    assert graph_tool.imports_of(module, modules) == set(modules)


@pytest.mark.parametrize("name", method_names(runs_recipe=True))
def test_each_method_names_its_recipe_and_brain(name):
    method = METHODS[name]
    recipe = Path(recipe_path(name)).read_text(encoding="utf-8")
    assert issubclass(getattr(brains, method.brain), brains.EmotionBrain)
    if method.hparams is None:  # stage 1: the recipe builds its Brain
        assert f"{method.brain}(" in recipe
        return
    text = Path(shipped_hparams(method.hparams)).read_text(encoding="utf-8")
    assert re.search(
        rf"^brain_class: !name:{P}\.method\.brains\.{method.brain}$",
        text,
        re.MULTILINE,
    )
    assert "brain_class" in recipe


def test_exported_methods_say_what_they_trained():
    for name in method_names(exported=True):
        assert METHODS[name].description and METHODS[name].final_training
    assert method_names(tested=True) == ("classifier", "finetune", "classical")
    assert method_names(cross_corpus=True) == ("classifier", "finetune")
