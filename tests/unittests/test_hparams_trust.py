"""``sercl predict`` loads what ``sercl export`` writes, and nothing else.

Each hostile case below edits a tiny inference folder of the export's
shape (``export_fixtures.py``) so that loading it would run something: a
command that creates a marker file, a file written or linked outside the
model, a module imported. Each case is run through ``sercl predict``
without ``--trust-remote-config`` and must end with a non-zero status, one
line naming the file, the line and what is refused there, and no marker.
The cases marked live are then loaded with ``trust_remote_config=True``:
the marker appears, so the payload is real and the first test could fail.
"""

import pickle
import shutil
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from export_fixtures import write_tiny_export

from speechbrain_sercl.cli import main
from speechbrain_sercl.inference.hparams_trust import (
    UntrustedHparamsError,
    check_hparams_file,
    export_problems,
)
from speechbrain_sercl.inference.predict import class_names, load_classifier

CLASSES = ["sad", "neutral", "angry"]
HPARAMS = "hyperparams.yaml"


@pytest.fixture(scope="module")
def export_folder(tmp_path_factory):
    """One tiny export, copied by each test that edits it."""
    root = tmp_path_factory.mktemp("export")
    return write_tiny_export(root / "model", CLASSES, root / "speech_models")


@pytest.fixture
def model(export_folder, tmp_path):
    """A copy of the tiny export for one test."""
    return shutil.copytree(export_folder, tmp_path / "model")


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    """One second of noise."""
    path = tmp_path_factory.mktemp("audio") / "a.wav"
    noise = np.random.default_rng(0).normal(0, 0.1, 16000)
    sf.write(path, noise, 16000)
    return str(path)


def predict(wav, model, capsys, *options):
    """``sercl predict`` in this process: the status and the lines of
    standard error, without progress bars."""
    capsys.readouterr()
    status = main(["predict", wav, "--model", str(model), *options])
    err = capsys.readouterr().err
    return status, [
        line for line in err.splitlines() if line and "%|" not in line
    ]


def test_an_export_loads_and_predicts_without_trust(model, wav, capsys):
    assert export_problems((model / HPARAMS).read_text()) == []
    classifier = load_classifier(model)
    assert class_names(classifier) == CLASSES
    status, err = predict(wav, model, capsys)
    assert status == 0, err
    assert err == ["Predicted 1 files, skipped 0."]


# The hostile cases: name -> (edit, what the message names, live). An edit
# takes the model folder and the marker path and changes the folder.
HOSTILE = {}


def hostile(shown, live=True):
    """Register an edit as a hostile case."""

    def register(edit):
        HOSTILE[edit.__name__] = (edit, shown, live)
        return edit

    return register


def append(model, text):
    with open(model / HPARAMS, "a", encoding="utf-8") as stream:
        stream.write(text)


def replace(model, old, new):
    path = model / HPARAMS
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


class CreatesMarker:
    """Unpickling it opens (creates) the marker."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


@hostile("!apply:torch.utils.collect_env.run")
def collect_env_run(model, marker):
    append(
        model, f'probe: !apply:torch.utils.collect_env.run ["touch {marker}"]'
    )


@hostile("!apply:speechbrain.dataio.dataio.load_pkl")
def load_pkl(model, marker):
    with open(model / "evil.pkl", "wb") as stream:
        pickle.dump(CreatesMarker(marker), stream)
    target = "speechbrain.dataio.dataio.load_pkl"
    append(model, f"probe: !apply:{target} [{model / 'evil.pkl'}]")


@hostile("!apply:transformers.AutoConfig.from_pretrained", live=False)
def auto_config_remote_code(model, marker):
    code = model / "code"
    code.mkdir()
    (code / "config.json").write_text(
        '{"model_type": "evil", "auto_map": '
        '{"AutoConfig": "configuration_evil.EvilConfig"}}'
    )
    (code / "configuration_evil.py").write_text(
        f"open({str(marker)!r}, 'w')\n"
        "from transformers import PretrainedConfig\n"
        "class EvilConfig(PretrainedConfig):\n"
        "    model_type = 'evil'\n"
    )
    append(
        model,
        "probe: !apply:transformers.AutoConfig.from_pretrained\n"
        f"    pretrained_model_name_or_path: {code}\n"
        "    trust_remote_code: True\n",
    )


@hostile("!apply:speechbrain.utils.data_utils.download_file")
def download_file(model, marker):
    append(
        model,
        "probe: !apply:speechbrain.utils.data_utils.download_file\n"
        f"    source: {model / 'README.md'}\n"
        f"    dest: {marker}\n",
    )


@hostile("!apply:speechbrain.utils.fetching.fetch")
def fetch(model, marker):
    append(
        model,
        "probe: !apply:speechbrain.utils.fetching.fetch\n"
        "    filename: README.md\n"
        f"    source: {model}\n"
        f"    savedir: {marker.parent}\n"
        f"    save_filename: {marker.name}\n",
    )


@hostile("!apply:speechbrain.inference.interfaces.foreign_class")
def foreign_class(model, marker):
    code = model / "code"
    code.mkdir()
    (code / "custom.py").write_text(f"open({str(marker)!r}, 'w')\n")
    (code / HPARAMS).write_text("modules: {}\n")
    append(
        model,
        "probe: !apply:speechbrain.inference.interfaces.foreign_class\n"
        f"    source: {code}\n",
    )


@hostile("!apply:speechbrain.inference.interfaces.Pretrained.from_hparams")
def second_yaml(model, marker):
    (model / "second.yaml").write_text(
        f'probe: !apply:torch.utils.collect_env.run ["touch {marker}"]\n'
    )
    append(
        model,
        "probe: !apply:speechbrain.inference.interfaces.Pretrained."
        f"from_hparams\n    source: {model}\n    hparams_file: second.yaml\n",
    )


@hostile("!new:torch.utils.benchmark.Timer", live=False)
def benchmark_timer(model, marker):
    append(
        model,
        "probe: !new:torch.utils.benchmark.Timer\n"
        f"    stmt: open({str(marker)!r}, 'w')\n",
    )


@hostile("may be read as a tuple")
def tuple_in_a_value(model, marker):
    replace(
        model,
        "n_classes: 3",
        f"n_classes: (!!python/object/apply:os.system ['touch {marker}'])",
    )


@hostile(": (!!python/object/apply:os.system ['touch marker']): 1 is not")
def tuple_as_a_key(model, marker):
    # A relative path (the tests run in the marker's folder): ruamel wraps
    # a long plain key when it dumps the file, which then fails to parse.
    command = f"touch {marker.name}"
    append(model, f"(!!python/object/apply:os.system ['{command}']): 1\n")


@hostile("!!python/object/apply:os.system")
def python_tag(model, marker):
    append(model, f"probe: !!python/object/apply:os.system ['touch {marker}']")


@hostile("!!python/object/apply:os.system")
def verbatim_tag(model, marker):
    tag = "!<tag:yaml.org,2002:python/object/apply:os.system>"
    append(model, f"probe: {tag} ['touch {marker}']\n")


@hostile("YAML directive")
def tag_directive(model, marker):
    path = model / HPARAMS
    text = "%TAG !x! tag:yaml.org,2002:python/object/apply:\n---\n"
    text += path.read_text()
    path.write_text(text + f"probe: !x!os.system ['touch {marker}']\n")


@hostile("!include:")
def include(model, marker):
    (model / "evil.yaml").write_text(
        f"probe: !!python/object/apply:os.system ['touch {marker}']\n"
    )
    append(model, f"probe: !include:{model / 'evil.yaml'}\n")


@hostile("!applyref:torch.utils.collect_env.run")
def applyref(model, marker):
    append(
        model, f"probe: !applyref:torch.utils.collect_env.run [touch {marker}]"
    )


@hostile("speech_model_folder: 3 items")
def exported_target_with_an_argument_more(model, marker):
    replace(
        model,
        "[!ref <speech_model_config>, !ref <feature_extractor_config>]",
        "[!ref <speech_model_config>, !ref <feature_extractor_config>, "
        f"{marker}]",
    )


@hostile("pretrainer.paths", live=False)
def pretrainer_paths(model, marker):
    replace(
        model,
        "    loadables:\n",
        f"    paths:\n        ssl: {model / 'evil.ckpt'}\n    loadables:\n",
    )


@hostile("speech_model_config.trust_remote_code", live=False)
def trust_remote_code_in_the_config(model, marker):
    replace(
        model, '"model_type": "wavlm"', '"model_type": "wavlm", "auto_map": {}'
    )
    replace(model, '"auto_map"', '"trust_remote_code": true, "auto_map"')


@hostile(
    "ssl.source: !ref <speech_model_folder>.upper where an export has "
    "!ref <speech_model_folder>",
    live=False,
)
def reference_to_an_attribute(model, marker):
    replace(
        model,
        "source: !ref <speech_model_folder>",
        "source: !ref <speech_model_folder>.upper",
    )


@hostile("feature_extractor_config.b0: an anchor", live=False)
def alias_bomb(model, marker):
    """Ten levels of three aliases: 3**10 strings once expanded."""
    bomb = '"b0": &a0 ["x", "x", "x"], '
    for level in range(1, 10):
        aliases = ", ".join([f"*a{level - 1}"] * 3)
        bomb += f'"b{level}": &a{level} [{aliases}], '
    replace(
        model,
        "feature_extractor_config: {",
        "feature_extractor_config: {" + bomb,
    )


@hostile("2 YAML documents", live=False)
def second_document(model, marker):
    append(
        model, f"---\nprobe: !!python/object/apply:os.system [touch {marker}]\n"
    )


@hostile("pooling: given twice", live=False)
def duplicate_key(model, marker):
    append(
        model, f'pooling: !apply:torch.utils.collect_env.run ["touch {marker}"]'
    )


@hostile("!new:speechbrain_sercl.pooIing.AttentionPooling", live=False)
def lookalike_target(model, marker):
    replace(
        model, "speechbrain_sercl.method.pooling.", "speechbrain_sercl.pooIing."
    )


@hostile("!name:speechbrain.utils.checkpoints.torch_parameter_transfer", False)
def another_loading_hook(model, marker):
    replace(
        model,
        "label_encoder: !name:speechbrain_sercl.transfer.load_label_encoder",
        "label_encoder: !name:speechbrain.utils.checkpoints."
        "torch_parameter_transfer",
    )


@hostile("!module:os", live=False)
def module_tag(model, marker):
    append(model, "probe: !module:os\n")


@hostile("!new:torch.nn.Identity where an export has", live=False)
def harmless_looking_swap(model, marker):
    replace(
        model,
        "pooling: !new:speechbrain_sercl.method.pooling.AttentionPooling",
        "pooling: !new:torch.nn.Identity",
    )


def make_hostile(model, name, tmp_path):
    """Apply hostile case ``name`` to ``model``; return its marker."""
    marker = tmp_path / "marker"
    edit, _, _ = HOSTILE[name]
    edit(model, marker)
    return marker


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_config_is_refused_in_one_line(
    name, model, wav, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    marker = make_hostile(model, name, tmp_path)
    status, err = predict(wav, model, capsys)
    assert status != 0
    assert not marker.exists()
    (line,) = err
    assert line.startswith(f"sercl predict: error: {model / HPARAMS}, line ")
    assert HOSTILE[name][1] in line
    assert "--trust-remote-config" in line


@pytest.mark.parametrize(
    "name", sorted(name for name, case in HOSTILE.items() if case[2])
)
def test_a_hostile_config_is_live_when_trusted(
    name, model, tmp_path, monkeypatch
):
    """Trusted, the same folder runs its payload: the refusal above is
    what keeps the marker away."""
    monkeypatch.chdir(tmp_path)
    marker = make_hostile(model, name, tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # foreign_class adds
    try:
        load_classifier(model, trust_remote_config=True)
    except Exception:  # the payload ran, then the load failed, or not
        pass
    finally:
        sys.modules.pop("custom", None)  # foreign_class's module
    assert marker.exists()


def test_the_check_imports_nothing(tmp_path, monkeypatch):
    """A target is compared as text: its module is never imported."""
    marker = tmp_path / "imported"
    (tmp_path / "sercl_trap.py").write_text(f"open({str(marker)!r}, 'w')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    problems = export_problems("pooling: !new:sercl_trap.Pooling\n")
    assert problems[0] == (
        "line 1: pooling: !new:sercl_trap.Pooling where an export has "
        "!new:speechbrain_sercl.method.pooling.AttentionPooling"
    )
    assert not marker.exists() and "sercl_trap" not in sys.modules


def test_every_problem_is_listed_in_file_order(export_folder):
    text = (export_folder / HPARAMS).read_text()
    text = text.replace("n_classes: 3", "n_classes: !ref <hidden_size>")
    text += "probe: &x [1]\nagain: *x\n"
    lines = text.splitlines()
    n_classes = lines.index("n_classes: !ref <hidden_size>") + 1
    assert export_problems(text) == [
        f"line {n_classes}: n_classes: !ref <hidden_size> where an export "
        "has data",
        f"line {len(lines) - 1}: probe: a list is not in an export",
        f"line {len(lines)}: again: a list is not in an export",
    ]


def test_a_file_that_is_not_yaml_or_utf8_is_refused(tmp_path):
    path = tmp_path / HPARAMS
    path.write_text("a: [1\n")
    with pytest.raises(UntrustedHparamsError, match="line 2: not valid YAML"):
        check_hparams_file(path)
    path.write_bytes(b"a: \xff\n")
    with pytest.raises(UntrustedHparamsError, match="not UTF-8 text"):
        check_hparams_file(path)


def test_the_checked_text_is_the_text_loaded(model, monkeypatch):
    """The file is read once: a change after the check is not loaded."""
    import speechbrain_sercl.inference.predict as predict_module

    check = predict_module.check_hparams_file

    def check_then_swap(path):
        text = check(path)
        with open(path, "a", encoding="utf-8") as stream:
            stream.write("probe: !apply:os.getcwd []\n")
        return text

    monkeypatch.setattr(predict_module, "check_hparams_file", check_then_swap)
    classifier = load_classifier(model)
    assert not hasattr(classifier.hparams, "probe")


def test_a_hub_id_is_checked_before_loading(
    export_folder, tmp_path, offline_hub_cache
):
    good = offline_hub_cache("someone/ser", export_folder)
    classifier = load_classifier(good, savedir=tmp_path / "savedir")
    assert class_names(classifier) == CLASSES
    bad = shutil.copytree(export_folder, tmp_path / "bad")
    append(bad, "shell: !name:os.system\n")
    model_id = offline_hub_cache("someone/ser-bad", bad)
    with pytest.raises(UntrustedHparamsError, match="shell: !name:os.system"):
        load_classifier(model_id, savedir=tmp_path / "savedir-bad")
    with pytest.raises(FileNotFoundError, match="someone/absent: no such"):
        load_classifier("someone/absent")


def test_the_file_in_a_savedir_is_the_one_checked(model, tmp_path):
    """SpeechBrain reuses a hyperparams.yaml already in savedir."""
    savedir = tmp_path / "savedir"
    savedir.mkdir()
    (savedir / HPARAMS).write_text("run: !name:subprocess.run\n")
    with pytest.raises(UntrustedHparamsError) as error:
        load_classifier(model, savedir=savedir)
    assert str(savedir / HPARAMS) in str(error.value)


@pytest.mark.parametrize("trust", [False, True])
def test_weights_that_are_not_tensors_are_refused_in_one_line(
    model, wav, tmp_path, capsys, trust
):
    marker = tmp_path / "marker"
    torch.save(
        {"attention.weight": CreatesMarker(marker)}, model / "pooling.ckpt"
    )
    options = ["--trust-remote-config"] if trust else []
    status, err = predict(wav, model, capsys, *options)
    assert status == 1 and not marker.exists()
    assert err == [
        f"sercl predict: error: {model / 'pooling.ckpt'}: refused: it names "
        "io.open (a checkpoint holds tensors only; unpickling anything else "
        "could run code)"
    ]


def test_a_truncated_weights_file_is_named_in_one_line(model, wav, capsys):
    path = model / "classifier.ckpt"
    path.write_bytes(path.read_bytes()[:100])
    status, err = predict(wav, model, capsys)
    assert status == 1
    assert err == [
        f"sercl predict: error: {path}: not a readable checkpoint (truncated "
        "or corrupt?): PytorchStreamReader failed reading zip archive: "
        "failed finding central directory"
    ]


@pytest.fixture
def offline_hub_cache(tmp_path, monkeypatch):
    """An offline Hugging Face cache; returns a function that stores a
    model folder in it under a Hub id."""
    from huggingface_hub import constants

    cache = tmp_path / "hf_cache"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)

    def store(model_id, folder):
        repo = cache / f"models--{model_id.replace('/', '--')}"
        snapshot = repo / "snapshots" / ("0" * 40)
        snapshot.mkdir(parents=True)
        for path in folder.iterdir():
            (snapshot / path.name).write_bytes(path.read_bytes())
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text("0" * 40)
        return model_id

    return store
