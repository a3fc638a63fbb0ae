"""The fold runner: the whole cross-validation protocol in one command.

Given a stage-1 YAML (a path, or the name of a shipped one: ``wavlm``,
``hubert``, ``demo``), the runner first prepares every corpus of the YAML
once (shared by every seed and speech model, see
:mod:`speechbrain_sercl.layout`) and counts the runs (the largest fold
count of the corpora; run ``i`` uses fold ``i mod K_c`` of corpus ``c``).
Then, for each run, it runs stage 1 (``train_contrastive.py``) on the
union of the corpora's training parts, and per corpus stage 2
(``classifier.yaml``: frozen stage-1 model), the FT baseline
(``finetune.yaml``) and the classical floor
(:mod:`speechbrain_sercl.protocol.classical`, in this process: seconds), each
tested on that corpus's test part. With two corpora or more, each stage-2 and FT
model of the run is then also tested on the other corpora's test parts, on
the emotions they share (:mod:`speechbrain_sercl.protocol.cross_corpus`; off
with ``cross_corpus=False``).

With ``final=True`` (``sercl folds --final``) it runs the final run instead
of the protocol's runs, for publishing: stage 1 on every utterance of every
corpus, then stage 2 and FT on every utterance of each corpus, with no test
part and so no classical floor, into ``<experiment>/<protocol>/final`` (see
:mod:`speechbrain_sercl.layout`). The protocol's runs, run before or after
with the same settings, give its cross-validated results.

Every step is an ordinary recipe command, printed before it runs so that
it can be rerun by hand; its console output is also kept in the step's
``step_log.txt``. Each step records what it is made from (its data, folds
and settings) and what it wrote (:mod:`speechbrain_sercl.step_records`):
a finished step is skipped only while it would be made from the same data
and settings and its outputs are as it wrote them, so rerunning the
runner after a crash resumes it (the recipes themselves resume from their
checkpoints). A step made from other data or settings stops the run with
one line saying what changed, or, with ``retrain_changed=True``
(``--retrain-changed``), is trained anew. Before any step runs, the runner
writes the fingerprint each step of the protocol's runs would have
(``step_fingerprints.json``), which the results check. What each step
receives:

- the stage-1 YAML's experiment settings (:data:`SHARED_KEYS`: seed,
  protocol, folders, speech model), where the step's YAML declares them;
- its corpus (name, release folder, reader, reader options) and run;
- the stage-1 YAML's ``method_overrides`` for its method;
- the command line's overrides (see
:mod:`speechbrain_sercl.protocol.overrides`):
  ``--key=value`` where the step's YAML declares ``key`` (``corpora``
  reaches stage 1 alone: the other steps derive theirs from it),
  ``--<method>.key=value`` for one method; an override that no step
  declares is refused before anything runs;
- SpeechBrain's run options (``--device``, ``--precision``, ...).

A ``launcher`` such as ``"torchrun --standalone --nproc_per_node=4"``
prefixes every step.

Authors
 * speechbrain-sercl developers
"""

import os
import re
import shlex
import subprocess
import sys
from typing import NamedTuple

from speechbrain_sercl import layout
from speechbrain_sercl.config import (
    OLD_RUN_KEY,
    RUN_KEY,
    read_config,
    run_key,
    shipped_hparams,
)
from speechbrain_sercl.data.corpora import corpus_specs, prepare_corpora
from speechbrain_sercl.data.folds import n_folds_of, select_run
from speechbrain_sercl.data.manifest import load_manifest
from speechbrain_sercl.fingerprints import (
    corpus_table,
    digest,
    placeholders,
    settings_of,
    step_fingerprint,
)
from speechbrain_sercl.method.registry import (
    METHODS,
    method_names,
    recipe_path,
)
from speechbrain_sercl.method.sources import speech_model_identity
from speechbrain_sercl.protocol.locking import folder_lock
from speechbrain_sercl.protocol.overrides import (
    declared_keys,
    override_arguments,
    parse_arguments,
)
from speechbrain_sercl.step_records import (
    claim_step,
    expected_record,
    finish_step,
    write_step_fingerprints,
)

__all__ = [
    "FoldRunner",
    "SHARED_KEYS",
    "StepFailed",
]

# The steps trained by a recipe for each corpus of a run.
RECIPE_METHODS = method_names(per_corpus=True, runs_recipe=True)
# What ``methods`` may name: the steps made for each corpus of a run.
CORPUS_METHODS = method_names(per_corpus=True)
CROSS_CORPUS = layout.CROSS_CORPUS
# Settings of the experiment that every step takes from the stage-1 YAML.
SHARED_KEYS = (
    "seed",
    "protocol",
    "n_folds",
    "fold_seed",
    "experiment_folder",
    "prepared_folder",
    "ssl_source",
    "pretrained_folder",
    "hidden_size",
    "train_front_end",
)
# What the runner sets per step (or the layout derives): never overridden.
RUNNER_KEYS = (
    RUN_KEY,
    OLD_RUN_KEY,
    "corpus",
    "data_folder",
    "reader",
    "reader_options",
    "output_folder",
    "save_folder",
    "encoder_folder",
    "stage1_folder",
    "train_log",
)
# What a per-corpus step derives from its corpus: never passed to one.
CORPUS_KEYS = ("corpora", "n_classes")
_ERROR_LINE = re.compile(r"^\s*([\w.]+(Error|Exception|Interrupt)\b.*)$")


class StepFailed(RuntimeError):
    """A step of the protocol ended with an error (the message says where)."""


class FoldRunner:
    """Run stage 1, stage 2 and the FT baseline over every fold.

    Arguments
    ---------
    hparams : str
        The stage-1 YAML: a path, or the name of a shipped one.
    arguments : list of str
        Run options and overrides (see
        :mod:`speechbrain_sercl.protocol.overrides`).
    methods : tuple of str
        What is trained and tested per corpus: ``classifier`` (stage 2,
        after stage 1), ``finetune`` (FT) and ``classical`` (the floor).
    launcher : str, optional
        Command prefix of every step (default: this Python).
    runs : list of int, optional
        Only these runs (default: all).
    final : bool
        Run the final run (all the data, nothing tested) instead of the
        protocol's runs.
    cross_corpus : bool
        After each run's steps, test its stage-2 and FT models on the other
        corpora (:mod:`speechbrain_sercl.protocol.cross_corpus`).
    retrain_changed : bool
        Train anew a step made from other data or settings than now (or
        with no record) instead of stopping the run.
    """

    def __init__(
        self,
        hparams,
        arguments=(),
        methods=CORPUS_METHODS,
        launcher=None,
        runs=None,
        final=False,
        cross_corpus=True,
        retrain_changed=False,
    ):
        unknown = set(methods) - set(CORPUS_METHODS)
        if unknown:
            raise ValueError(
                f"unknown methods {sorted(unknown)}: {CORPUS_METHODS}"
            )
        _check_final(final, methods, runs)
        self.final = final
        self.cross_corpus = cross_corpus
        self.retrain_changed = retrain_changed
        self.methods = tuple(methods)
        self.launcher = shlex.split(launcher) if launcher else [sys.executable]
        self.runs = runs
        self.step_files = {
            layout.STAGE1: _hparams_path(hparams),
            **{
                method: shipped_hparams(METHODS[method].hparams)
                for method in RECIPE_METHODS
            },
        }
        self.declared = {
            step: declared_keys(path) for step, path in self.step_files.items()
        }
        # A stage-1 YAML written for version 0.1 names the run "fold".
        self.stage1_run_key = run_key(
            self.declared[layout.STAGE1], self.step_files[layout.STAGE1]
        )
        given = parse_arguments(arguments, method_names(runs_recipe=True))
        self.run_options = given.run_options
        self._check_keys(given)
        self.stage1_overrides = {
            **self._declared_by(layout.STAGE1, given.overrides),
            **given.by_method.get(layout.STAGE1, {}),
        }
        self.config = read_config(
            self.step_files[layout.STAGE1], self.stage1_overrides
        )
        self.method_overrides = self._method_overrides(given)
        self.corpora = corpus_specs(self.config["corpora"])
        self.prepared = None  # corpus -> (manifest, folds), once prepared
        self.features = {}  # corpus -> utterance -> MFCC statistics
        self.tables = {}  # corpus -> its corpus table, once prepared
        self.table_digests = {}  # corpus -> the digest of its table
        self.settings = {}  # method -> settings that change results
        self.expected = {}  # step folder -> the record it starts with now

    @property
    def experiment_folder(self):
        """Where every run of this experiment writes."""
        return self.config["experiment_folder"]

    @property
    def protocol_folder(self):
        """Where the runs and results of this protocol are."""
        return layout.protocol_folder(
            self.experiment_folder, self.config["protocol"]
        )

    def run(self):
        """Prepare the corpora, then run every missing step of every run
        (or of the final run), holding the experiment folder's lock
        (:mod:`speechbrain_sercl.protocol.locking`) from before the data is
        generated or prepared to the last step.

        Returns
        -------
        list of int or str
            The runs that were done (or found done): ``["final"]`` for the
            final run.

        Raises
        ------
        FolderLockedError
            At once, when another run holds the experiment folder.
        """
        with folder_lock(self.experiment_folder):
            return self._run_locked()

    def _run_locked(self):
        count = self.prepare()
        if self.final:
            self.run_fold(layout.FINAL_RUN)
            return [layout.FINAL_RUN]
        runs = list(range(count)) if self.runs is None else list(self.runs)
        beyond = [run for run in runs if not 0 <= run < count]
        if beyond:
            raise ValueError(
                f"runs {beyond} do not exist: this protocol has runs 0 to "
                f"{count - 1}"
            )
        expected = {
            self.step_record_folder(*step): self.expected_record(*step)
            for step in self.protocol_steps(count)
        }
        write_step_fingerprints(self.protocol_folder, expected)
        for run in runs:
            self.run_fold(run)
        return runs

    def prepare(self):
        """Prepare every corpus (once) and return the largest fold count.

        Returns
        -------
        int
            ``max_c K_c``.
        """
        self.prepared = prepare_corpora(
            self.config["corpora"],
            self.config["prepared_folder"],
            self.config["protocol"],
            self.config["n_folds"],
            self.config["fold_seed"],
        )
        self.tables = {
            corpus: corpus_table(load_manifest(manifest), folds)
            for corpus, (manifest, folds) in self.prepared.items()
        }
        self.table_digests = {
            corpus: digest(table) for corpus, table in self.tables.items()
        }
        self.expected = {}
        return max(self.fold_counts.values())

    @property
    def fold_counts(self):
        """corpus -> number of folds (once prepared)."""
        return {
            name: n_folds_of(folds)
            for name, (_, folds) in self.prepared.items()
        }

    def run_fold(self, run):
        """Stage 1 and every downstream method of one run.

        A corpus with ``K`` folds is tested in runs ``0 .. K-1`` only, so
        that each of its folds counts once in its results (run ``i >= K``
        would test fold ``i mod K`` again); stage 1 of such a run still
        trains on the training parts of every corpus. The final run trains
        stage 2 and FT on every corpus, and has no classical floor (there
        is nothing to test it on).

        Arguments
        ---------
        run : int or str
            The run index, or ``"final"``.
        """
        if self.prepared is None:
            self.prepare()
        if "classifier" in self.methods:  # FT and the floor do without it
            self._step(
                run,
                layout.STAGE1,
                {**self.stage1_overrides, self.stage1_run_key: run},
            )
        for corpus in self.corpora_of(run):
            for method in self.methods:
                if method == layout.CLASSICAL:
                    if not layout.is_final(run):
                        self.run_classical(run, corpus)
                    continue
                self._step(
                    run,
                    method,
                    self.downstream_overrides(run, corpus, method),
                    corpus,
                )
        tested = self.corpora_of(run)
        if self.cross_corpus and not layout.is_final(run) and len(tested) > 1:
            self.run_cross_corpus(run, tested)

    def run_cross_corpus(self, run, tested):
        """Test each stage-2 and FT step of a run on the other corpora.

        Arguments
        ---------
        run : int
            The run index.
        tested : list of str
            The corpora tested in this run.
        """
        # Imported here, as the floor's modules: a step's own process
        # (which reads its settings with this module) never needs them,
        # and they take seconds to import.
        from speechbrain_sercl.protocol.cross_corpus import evaluate_run

        pairs = [
            (run, CROSS_CORPUS, method, source, target)
            for method in self.methods
            if method in RECIPE_METHODS
            for source in tested
            for target in tested
            if target != source
        ]
        for pair in pairs:
            claim_step(
                self.step_record_folder(*pair),
                self.expected_record(*pair),
                [layout.PREDICTIONS_FILE],
                self.protocol_folder,
                self.retrain_changed,
                resumable=False,
            )
        written = evaluate_run(
            self.experiment_folder,
            self.config["protocol"],
            run,
            {corpus: self.prepared[corpus] for corpus in tested},
            self.methods,
            run_opts=_device_option(self.run_options),
        )
        finished = {os.path.dirname(path) for path in written}
        for pair in pairs:
            folder = self.step_record_folder(*pair)
            if folder in finished:
                finish_step(
                    folder,
                    self.expected_record(*pair),
                    [layout.PREDICTIONS_FILE],
                    self.protocol_folder,
                )

    def final_steps(self):
        """The stage-2 and FT step folders of the final run.

        Returns
        -------
        list of str
            One per corpus and trained method, in the order they run.
        """
        return [
            self.step_folder(layout.FINAL_RUN, method, corpus)
            for corpus in self.corpora_of(layout.FINAL_RUN)
            for method in self.methods
            if method in RECIPE_METHODS
        ]

    def corpora_of(self, run):
        """The corpora whose stage 2, FT and floor a run trains.

        Arguments
        ---------
        run : int or str
            The run index, or ``"final"``.

        Returns
        -------
        list of str
            Run ``i``: the corpora with more than ``i`` folds; the final
            run: every corpus.
        """
        if layout.is_final(run):
            return list(self.corpora)
        return [c for c in self.corpora if run < self.fold_counts[c]]

    def run_classical(self, run, corpus):
        """The classical floor of one corpus and run (in this process).

        Arguments
        ---------
        run : int
            The run index.
        corpus : str
            The corpus name.
        """
        from speechbrain_sercl.protocol.classical import (
            run_classical,
            utterance_features,
        )

        step = self._claim(run, layout.CLASSICAL, corpus)
        if step is None:
            return
        output = step.folder
        split = select_run({corpus: self.prepared[corpus]}, run, output)
        if corpus not in self.features:
            self.features[corpus] = utterance_features(
                split.manifest, split.manifest
            )
        metrics = run_classical(
            split, corpus, output, self.features[corpus], self.config["seed"]
        )
        self._finish(step)
        print(
            f"[sercl] {layout.CLASSICAL} floor, {corpus}, run {run}: UA "
            f"{100 * metrics['UA']:.2f} %",
            flush=True,
        )

    def step_folder(self, run, method, corpus=None):
        """The output folder of one step (see :func:`layout.step_folder`).

        Arguments
        ---------
        run : int or str
            The run index, or ``"final"``.
        method : str
            ``contrastive``, ``classifier`` or ``finetune``.
        corpus : str, optional
            The corpus of a per-corpus step.

        Returns
        -------
        str
            The folder.
        """
        return layout.step_folder(
            self.experiment_folder,
            self.config["protocol"],
            run,
            method,
            corpus,
        )

    def protocol_steps(self, count):
        """Every step of the protocol's runs, as arguments of
        :meth:`expected_record`.

        Arguments
        ---------
        count : int
            The number of runs.

        Returns
        -------
        list of tuple
            ``(run, method)``, ``(run, method, corpus)`` or ``(run,
            "cross_corpus", method, source, target)``.
        """
        steps = []
        for run in range(count):
            tested = self.corpora_of(run)
            steps.append((run, layout.STAGE1))
            steps += [
                (run, method, corpus)
                for corpus in tested
                for method in CORPUS_METHODS
            ]
            if len(tested) > 1:
                steps += [
                    (run, CROSS_CORPUS, method, source, target)
                    for method in RECIPE_METHODS
                    for source in tested
                    for target in tested
                    if target != source
                ]
        return steps

    def step_record_folder(self, run, method, *corpora):
        """The folder of a step of :meth:`protocol_steps`.

        Arguments
        ---------
        run : int or str
            The run index, or ``"final"``.
        method : str
            ``contrastive``, a method, or ``cross_corpus``.
        *corpora : str
            Its corpus, or for a cross-corpus test its method, source and
            target.

        Returns
        -------
        str
        """
        if method == CROSS_CORPUS:
            tested, source, target = corpora
            return layout.cross_corpus_folder(
                self.experiment_folder,
                self.config["protocol"],
                run,
                tested,
                source,
                target,
            )
        return self.step_folder(run, method, *corpora)

    def expected_record(self, run, method, *corpora):
        """The record a step of :meth:`protocol_steps` starts with now:
        its fingerprint (:mod:`speechbrain_sercl.fingerprints`) and the
        tables of its corpora.

        Arguments
        ---------
        run : int or str
            The run index, or ``"final"``.
        method : str
            ``contrastive``, a method, or ``cross_corpus``.
        *corpora : str
            As for :meth:`step_record_folder`.

        Returns
        -------
        dict
            From :func:`speechbrain_sercl.step_records.expected_record`.
        """
        folder = self.step_record_folder(run, method, *corpora)
        if folder not in self.expected:
            after = {}
            if method == layout.STAGE1:
                used = list(self.corpora)
            elif method == CROSS_CORPUS:
                tested, source, used = corpora[0], corpora[1], corpora[2:]
                name = f"{source}/{tested}"
                after[name] = self.expected_record(run, tested, source)
            else:
                used = list(corpora)
                if method == "classifier":
                    after[layout.STAGE1] = self.expected_record(
                        run, layout.STAGE1
                    )
            tables = {corpus: self.tables[corpus] for corpus in used}
            fingerprint = step_fingerprint(
                method,
                run,
                self._settings(method),
                {corpus: self.table_digests[corpus] for corpus in used},
                {name: record["trained_as"] for name, record in after.items()},
            )
            self.expected[folder] = expected_record(fingerprint, tables)
        return self.expected[folder]

    def _outputs(self, run, method):
        """The files a step's done marker stands for, the marker first
        (relative to the step folder)."""
        if method == layout.STAGE1:
            protocol = self.config["protocol"]
            encoder = layout.encoder_folder(
                self.experiment_folder, protocol, run
            )
            files = layout.encoder_files(encoder)
            return [
                os.path.relpath(files[name], self.step_folder(run, method))
                for name in ("ssl", "pooling")
            ]
        if layout.is_final(run):
            return [layout.TRAINED_FILE]
        return [layout.TEST_REPORT_FILE, layout.PREDICTIONS_FILE]

    def _settings(self, method):
        """The settings of a method's steps that change results (the same
        for every run and corpus; see
        :mod:`speechbrain_sercl.fingerprints`), with the weights the speech
        model starts from where ``ssl_source`` does not name them alone
        (:func:`speechbrain_sercl.method.sources.speech_model_identity`)."""
        if method not in self.settings:
            if method == CROSS_CORPUS:  # the tested step's, nothing more
                self.settings[method] = {}
            elif method == layout.CLASSICAL:
                self.settings[method] = {"seed": self.config["seed"]}
            else:
                # Any corpus: what is its own is replaced by placeholders.
                overrides = (
                    self.stage1_overrides
                    if method == layout.STAGE1
                    else self.downstream_overrides(
                        0, next(iter(self.corpora)), method
                    )
                )
                config = read_config(
                    self.step_files[method],
                    {**overrides, **placeholders(self.declared[method])},
                )
                settings = settings_of(config, self.run_options)
                identity = speech_model_identity(config["ssl_source"])
                if identity is not None:  # the weights behind ssl_source
                    settings["speech_model"] = identity
                self.settings[method] = settings
        return self.settings[method]

    def downstream_overrides(self, run, corpus, method):
        """Everything a stage-2 or FT step is given, in order of priority.

        Arguments
        ---------
        run : int or str
            The run index, or ``"final"``.
        corpus : str
            The corpus name.
        method : str
            ``classifier`` or ``finetune``.

        Returns
        -------
        dict
            key -> value for the step's command line.
        """
        spec = self.corpora[corpus]
        shared = {
            key: self.config[key] for key in SHARED_KEYS if key in self.config
        }
        return {
            **self._declared_by(method, shared),
            RUN_KEY: run,
            "corpus": corpus,
            "data_folder": spec["data_folder"],
            "reader": spec["reader"],
            "reader_options": spec["options"],
            **self.method_overrides.get(method, {}),
        }

    def _declared_by(self, step, overrides):
        return {k: v for k, v in overrides.items() if k in self.declared[step]}

    def _check_keys(self, given):
        refused = sorted(
            set(given.overrides).union(*given.by_method.values())
            & set(RUNNER_KEYS)
        )
        if refused:
            raise ValueError(
                f"{', '.join(refused)}: set by the fold runner for each step "
                "(use --runs to choose runs, --final for the final run, "
                "--experiment_folder to move every output)"
            )
        everywhere = set().union(*self.declared.values())
        unknown = sorted(set(given.overrides) - everywhere)
        if unknown:
            raise ValueError(
                f"no step declares {', '.join(unknown)}; valid keys: "
                f"{', '.join(sorted(everywhere - set(RUNNER_KEYS)))}"
            )
        for method, overrides in given.by_method.items():
            self._check_method_keys(method, overrides, "--" + method + ".")

    def _check_method_keys(self, method, overrides, prefix):
        derived = sorted(set(overrides) & set(CORPUS_KEYS))
        if derived and method != layout.STAGE1:
            raise ValueError(
                f"{', '.join(prefix + key for key in derived)}: derived from "
                "the stage-1 YAML's corpora for each step"
            )
        unknown = sorted(set(overrides) - self.declared[method])
        if unknown:
            valid = sorted(self.declared[method] - set(RUNNER_KEYS))
            raise ValueError(
                f"{', '.join(prefix + key for key in unknown)}: not a key of "
                f"{os.path.basename(self.step_files[method])}; valid keys: "
                f"{', '.join(valid)}"
            )

    def _method_overrides(self, given):
        """Per-method values: the YAML's ``method_overrides``, then the
        command line's global and per-method overrides."""
        from_yaml = self.config.get("method_overrides") or {}
        unknown = sorted(set(from_yaml) - set(RECIPE_METHODS))
        if unknown:
            raise ValueError(
                f"method_overrides names {unknown}; methods: {RECIPE_METHODS}"
            )
        merged = {}
        for method in RECIPE_METHODS:
            yaml_values = dict(from_yaml.get(method) or {})
            self._check_method_keys(
                method, yaml_values, "method_overrides." + method + "."
            )
            everywhere = {
                key: value
                for key, value in given.overrides.items()
                if key not in CORPUS_KEYS
            }
            merged[method] = {
                **yaml_values,
                **self._declared_by(method, everywhere),
                **given.by_method.get(method, {}),
            }
        return merged

    def _step(self, run, method, overrides, corpus=None):
        """Run one recipe step unless it is done (see
        :func:`speechbrain_sercl.step_records.claim_step`)."""
        step = self._claim(run, method, corpus)
        if step is None:
            return
        output_folder = step.folder
        command = [
            *self.launcher,
            recipe_path(method),
            self.step_files[method],
            *override_arguments(overrides),
            *self.run_options,
        ]
        log_path = layout.step_log(output_folder)
        returncode = _run_logged(command, log_path)
        if returncode != 0:
            raise StepFailed(
                f"step {_step_name(method, output_folder)} failed (exit "
                f"{returncode}): {_last_error(log_path)} (log: {log_path})"
            )
        missing = [
            name
            for name in step.outputs
            if not os.path.exists(layout.step_file(output_folder, name))
        ]
        if missing:
            raise StepFailed(
                f"step {_step_name(method, output_folder)} ended without "
                f"writing {layout.step_file(output_folder, missing[0])} "
                f"(log: {log_path})"
            )
        self._finish(step)

    def _claim(self, run, method, corpus=None):
        """A step that is to run now (its folder, expected record and
        outputs), or None when it is done (see
        :func:`speechbrain_sercl.step_records.claim_step`)."""
        corpora = (corpus,) if corpus else ()
        step = _ClaimedStep(
            self.step_folder(run, method, *corpora),
            self.expected_record(run, method, *corpora),
            self._outputs(run, method),
        )
        if claim_step(*step, self.protocol_folder, self.retrain_changed):
            return step
        return None

    def _finish(self, step):
        """Record what a step that ran wrote (its outputs' checksums)."""
        finish_step(*step, self.protocol_folder)


class _ClaimedStep(NamedTuple):
    """A step the runner runs now: the arguments of ``claim_step`` and
    ``finish_step`` before the protocol folder."""

    folder: str
    expected: dict
    outputs: tuple


def _check_final(final, methods, runs):
    """Refuse a final run given runs, or with nothing to train."""
    if not final:
        return
    if runs is not None:
        raise ValueError(
            "--final and --runs exclude each other: the final run is one "
            "run on all the data (run the protocol's runs without --final)"
        )
    if set(methods) <= {layout.CLASSICAL}:
        raise ValueError(
            "the final run trains classifier and/or finetune; the classical "
            "floor has no final run (it needs a test part)"
        )


def _device_option(run_options):
    """``{"device": ...}`` from the run options' ``--device``, or None."""
    devices = [
        option.split("=", 1)[1]
        for option in run_options
        if option.startswith("--device=")
    ]
    return {"device": devices[-1]} if devices else None


def _hparams_path(hparams):
    """A YAML path as given, else the shipped YAML of that name."""
    if os.path.isfile(hparams):
        return os.path.abspath(hparams)
    return shipped_hparams(hparams)


def _step_name(method, output_folder):
    return f"{method} ({output_folder})"


def _run_logged(command, log_path):
    """Run a command, its output to the console and to ``log_path``, after
    a ``[sercl] <command>`` line (the export's model card quotes it)."""
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    header = f"{layout.COMMAND_PREFIX}{shlex.join(command)}\n".encode()
    sys.stdout.buffer.write(header)
    sys.stdout.flush()
    with open(log_path, "ab") as log:
        log.write(header)
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        while chunk := process.stdout.read1(65536):
            log.write(chunk)
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
        return process.wait()


def _last_error(log_path):
    """The last ``SomeError: message`` line of a log (or its last line)."""
    with open(log_path, encoding="utf-8", errors="replace") as log:
        lines = [line.strip() for line in log.read().splitlines()]
    errors = [m.group(1) for m in map(_ERROR_LINE.match, lines) if m]
    if errors:
        return errors[-1]
    return next((line for line in reversed(lines) if line), "no output")
