"""Tests for speechbrain_sercl.hparams_trust: the check runs nothing."""

import pytest

from speechbrain_sercl.hparams_trust import (
    UntrustedHparamsError,
    check_hparams_file,
    untrusted_targets,
)

# The inference YAML of a SpeechBrain EncoderClassifier, as the Hub's
# speaker and emotion models write them (every target a trusted one).
STANDARD_YAML = """\
sample_rate: 16000
n_mels: 80
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>
mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False
embedding_model: !new:speechbrain.nnet.containers.Sequential
    input_shape: [null, null, !ref <n_mels>]
    linear: !name:speechbrain.nnet.linear.Linear
        n_neurons: 8
classifier: !new:torch.nn.Sequential
    - !new:torch.nn.Linear {in_features: 8, out_features: 4}
    - !new:torch.nn.LogSoftmax {dim: -1}
activation: !name:torch.nn.LeakyReLU
dtype: !name:torch.float32
sizes: (1, 2)
missing: !PLACEHOLDER
label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder
hook: !name:speechbrain_sercl.transfer.strict_parameter_transfer
copy: !copy <sizes>
modules:
    compute_features: !ref <compute_features>
    classifier: !ref <classifier>
pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        classifier: !ref <classifier>
        label_encoder: !ref <label_encoder>
"""


def test_standard_targets_are_accepted(tmp_path):
    assert untrusted_targets(STANDARD_YAML) == []
    path = tmp_path / "hyperparams.yaml"
    path.write_text(STANDARD_YAML)
    check_hparams_file(path)  # no error


@pytest.mark.parametrize(
    "line, shown",
    [
        ("x: !new:os.system [ls]", "!new:os.system"),
        ("x: !name:subprocess.run", "!name:subprocess.run"),
        ("x: !apply:builtins.eval ['1']", "!apply:builtins.eval"),
        ("x: !applyref:os.getcwd", "!applyref:os.getcwd"),
        ("x: !module:shutil", "!module:shutil"),
        ("x: !apply:getattr [1, real]", "!apply:getattr"),
        ("x: !!python/object/apply:os.getcwd []", "!!python/object/apply"),
        ("x: !!python/name:os.system", "!!python/name:os.system"),
        ("x: !include:other.yaml", "!include:other.yaml"),
        ("x: !<!new:os.system> [ls]", "!new:os.system"),
        ("%TAG !n! !name:\n---\nx: !n!subprocess.run", "!name:subprocess"),
        # A trusted package's attribute that is another module's function.
        ("x: !name:torch.os.system", "!name:torch.os.system (is posix"),
        ("x: !name:torch..os.system", "!name:torch..os.system"),
        ("x: !name:.os.system", "!name:.os.system"),
        ("x: !apply:torch.hub.load [a/b, m]", "!apply:torch.hub.load"),
        ("x: !name:torch.serialization.load", "!name:torch.serialization"),
        ("x: !name:speechbrain.utils.superpowers.run_shell", "run_shell"),
        ("x: !unknown value", "!unknown"),
        ("a: [1, {b: !new:os.system [ls]}]", "!new:os.system"),
    ],
)
def test_untrusted_targets_are_refused(tmp_path, line, shown):
    text = STANDARD_YAML.replace("sample_rate: 16000\n", "") + line + "\n"
    if line.startswith("%TAG"):
        text = line + "\n"
    offenders = untrusted_targets(text)
    assert len(offenders) == 1 and shown in offenders[0]
    path = tmp_path / "hyperparams.yaml"
    path.write_text(text)
    with pytest.raises(UntrustedHparamsError) as error:
        check_hparams_file(path)
    message = str(error.value)
    assert str(path) in message and shown in message
    assert "--trust-remote-config" in message


def test_every_offender_is_named_in_file_order():
    text = "a: !new:os.system [ls]\nb: !name:subprocess.run\n"
    assert untrusted_targets(text) == [
        "!new:os.system (outside torch, speechbrain, speechbrain_sercl, "
        "transformers)",
        "!name:subprocess.run (outside torch, speechbrain, "
        "speechbrain_sercl, transformers)",
    ]
    # os.system is defined in posix: trusting os alone is not enough.
    trusted = ("os", "subprocess")
    assert untrusted_targets(text, trusted) == [
        "!new:os.system (is posix.system, outside os, subprocess)"
    ]
    assert untrusted_targets(text, (*trusted, "posix")) == []


def test_no_yaml_is_refused(tmp_path):
    path = tmp_path / "hyperparams.yaml"
    path.write_text("a: [unclosed\n")
    with pytest.raises(UntrustedHparamsError, match="is not valid YAML"):
        check_hparams_file(path)
