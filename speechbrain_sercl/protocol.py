"""The fold runner: the whole cross-validation protocol in one command.

For each run ``i`` it runs stage 1 (``train_contrastive.py``) on the union
of the corpora's training parts of fold ``i``, then, per corpus, stage 2
(``classifier``: frozen stage-1 model) and the FT baseline (``finetune``),
each tested on that corpus's test part of fold ``i``; finally it writes
``results.json`` / ``results.md`` (see :mod:`speechbrain_sercl.report`).
Every step is an ordinary recipe command, printed before it runs so that it
can be rerun by hand; a step whose outputs exist is skipped, so rerunning
the runner after a crash resumes it (the recipes themselves resume from
their checkpoints).

SpeechBrain run options given to the runner (``--device``,
``--precision``, ...) are passed to every step; other ``--key=value``
options override the stage-1 YAML. A ``--launcher`` such as
``"torchrun --standalone --nproc_per_node=4"`` prefixes every step.

Authors
 * speechbrain-sercl developers
"""

import os
import shlex
import subprocess
import sys
from pathlib import Path

import ruamel.yaml
from hyperpyyaml import resolve_references
from speechbrain.utils.run_opts import RunOptions

from speechbrain_sercl.data.folds import load_or_create_folds, n_folds_of

__all__ = [
    "METHODS",
    "ProtocolRunner",
    "find_repository",
    "read_config",
    "split_arguments",
]

METHODS = ("classifier", "finetune")
ENCODER_FILE = "ssl.ckpt"
METRICS_FILE = "test_metrics.json"


def find_repository():
    """The checkout whose recipes the runner runs.

    The package's own checkout (editable install), else the current folder.

    Returns
    -------
    pathlib.Path
        A folder holding ``recipes/CrossCorpus``.

    Example
    -------
    >>> (find_repository() / "recipes" / "CrossCorpus").is_dir()
    True
    """
    for candidate in (Path(__file__).resolve().parents[1], Path.cwd()):
        if (candidate / "recipes" / "CrossCorpus").is_dir():
            return candidate
    raise FileNotFoundError(
        "the fold runner runs the recipes of a checkout of speechbrain-sercl: "
        "run it from the root of a clone (no recipes/CrossCorpus here)"
    )


def split_arguments(arguments):
    """Separate SpeechBrain run options from YAML overrides.

    Arguments
    ---------
    arguments : list of str
        ``--key=value`` / ``--key value`` / ``--flag`` items.

    Returns
    -------
    run_options : list of str
        The items that are SpeechBrain run options (passed to every step).
    overrides : dict
        The other items, as YAML overrides of the stage-1 file.

    Example
    -------
    >>> split_arguments(["--device=cuda:0", "--fold", "2", "--debug"])
    (['--device=cuda:0', '--debug'], {'fold': 2})
    """
    known = set(RunOptions.__dataclass_fields__) - {"param_file"}
    run_options, overrides = [], {}
    items = list(arguments)
    while items:
        item = items.pop(0)
        if not item.startswith("--"):
            raise ValueError(f"expected --key=value, got {item!r}")
        key, has_value, value = item[2:].partition("=")
        if not has_value and items and not items[0].startswith("--"):
            value, has_value = items.pop(0), True
        if key in known:
            run_options.append(f"--{key}={value}" if has_value else item)
        elif has_value:
            overrides[key] = ruamel.yaml.YAML(typ="safe").load(value)
        else:
            raise ValueError(f"--{key} needs a value (--{key}=VALUE)")
    return run_options, overrides


def read_config(hparams_file, overrides, fold=0):
    """Read the plain values of a stage-1 YAML without building objects.

    Arguments
    ---------
    hparams_file : str
        The stage-1 hyperpyyaml file.
    overrides : dict
        YAML overrides.
    fold : int
        The run whose folders are resolved.

    Returns
    -------
    dict
        The YAML with references resolved (tags such as ``!new:`` left
        unevaluated).
    """
    with open(hparams_file, encoding="utf-8") as stream:
        resolved = resolve_references(stream, {**overrides, "fold": fold})
    return ruamel.yaml.YAML(typ="rt").load(resolved)


class ProtocolRunner:
    """Run stage 1, stage 2 and the FT baseline over every fold.

    Arguments
    ---------
    hparams_file : str
        The stage-1 YAML (e.g. ``hparams/wavlm.yaml``); its ``downstream``
        section names the stage-2 / FT YAML of each corpus and
        ``downstream_overrides`` what to change in them.
    arguments : list of str
        Run options and overrides (see :func:`split_arguments`).
    methods : tuple of str
        Which of ``classifier`` and ``finetune`` to run after stage 1.
    launcher : str, optional
        Command prefix of every step (default: this Python).
    folds : list of int, optional
        Only these runs (default: all).
    """

    def __init__(
        self,
        hparams_file,
        arguments=(),
        methods=METHODS,
        launcher=None,
        folds=None,
    ):
        unknown = set(methods) - set(METHODS)
        if unknown:
            raise ValueError(f"unknown methods {sorted(unknown)}: {METHODS}")
        if not os.path.isfile(hparams_file):
            raise FileNotFoundError(f"no such hparams file: {hparams_file}")
        self.hparams_file = hparams_file
        self.run_options, self.overrides = split_arguments(arguments)
        self.methods = tuple(methods)
        self.launcher = shlex.split(launcher) if launcher else [sys.executable]
        self.folds = folds
        self.config = read_config(hparams_file, self.overrides)
        self.repository = find_repository()

    @property
    def experiment_folder(self):
        """Where every run of this protocol writes."""
        return self.config["experiment_folder"]

    def run(self):
        """Run every missing step of every run.

        Returns
        -------
        list of int
            The runs that were done (or found done).
        """
        first = self.folds[0] if self.folds else 0
        self.run_fold(first)
        runs = self.folds or range(self.number_of_runs())
        for fold in runs:
            if fold != first:
                self.run_fold(fold)
        return list(runs)

    def number_of_runs(self):
        """The largest fold count of the corpora (run i uses i mod K_c)."""
        counts = []
        for corpus in self.config["corpora"]:
            manifest = os.path.join(
                self.config["prepared_folder"], corpus, "manifest.json"
            )
            folds = load_or_create_folds(
                manifest,
                self.config["protocol"],
                n_folds=self.config["n_folds"],
                seed=self.config["fold_seed"],
            )
            counts.append(n_folds_of(folds))
        return max(counts)

    def run_fold(self, fold):
        """Stage 1 and every downstream method of one run.

        Arguments
        ---------
        fold : int
            The run index.
        """
        config = read_config(self.hparams_file, self.overrides, fold)
        encoder_folder = config["encoder_folder"]
        self._step(
            [self._recipe("train_contrastive.py"), self.hparams_file],
            self._override_arguments({**self.overrides, "fold": fold}),
            done=os.path.join(encoder_folder, ENCODER_FILE),
        )
        for corpus, method_files in config["downstream"].items():
            for method in self.methods:
                output = self.step_folder(fold, corpus, method)
                downstream = self._downstream_overrides(
                    config, corpus, method, fold
                )
                downstream["output_folder"] = output
                if method == "classifier":
                    downstream["stage1_folder"] = encoder_folder
                self._step(
                    [
                        self._recipe("train_classifier.py"),
                        self._in_repository(method_files[method]),
                    ],
                    self._override_arguments(downstream),
                    done=os.path.join(output, METRICS_FILE),
                )

    def step_folder(self, fold, corpus, method):
        """The output folder of one downstream step.

        Arguments
        ---------
        fold : int
            The run index.
        corpus : str
            The corpus name.
        method : str
            ``classifier`` or ``finetune``.

        Returns
        -------
        str
            ``<experiment>/<protocol>/fold_<i>/<corpus>/<method>``.
        """
        return os.path.join(
            self.experiment_folder,
            str(self.config["protocol"]),
            f"fold_{fold}",
            corpus,
            method,
        )

    def _downstream_overrides(self, config, corpus, method, fold):
        shared = ("seed", "protocol", "n_folds", "fold_seed")
        overrides = {key: config[key] for key in shared}
        overrides.update(
            fold=fold,
            data_folder=config["corpora"][corpus]["data_folder"],
            prepared_folder=config["prepared_folder"],
        )
        by_method = config.get("downstream_overrides") or {}
        overrides.update(dict(by_method.get(method) or {}))
        return overrides

    def _recipe(self, script):
        return self.repository / "recipes" / "CrossCorpus" / script

    def _in_repository(self, path):
        """A YAML path as given, or relative to the repository root."""
        return path if os.path.exists(path) else self.repository / path

    def _override_arguments(self, overrides):
        return [f"--{key}={value}" for key, value in overrides.items()]

    def _step(self, script_and_yaml, arguments, done):
        if os.path.exists(done):
            print(f"[sercl] done already ({done}), skipping", flush=True)
            return
        command = [
            *self.launcher,
            *map(str, script_and_yaml),
            *arguments,
            *self.run_options,
        ]
        print("[sercl] " + shlex.join(command), flush=True)
        subprocess.run(command, check=True)
        if not os.path.exists(done):
            raise RuntimeError(f"step ended without writing {done}")
