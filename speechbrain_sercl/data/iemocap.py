"""IEMOCAP reader: manifest from the ``IEMOCAP_full_release`` layout.

The release holds five sessions, each with its sentence-level audio and the
evaluators' consensus labels::

    IEMOCAP_full_release/Session1/sentences/wav/<dialog>/<utt_id>.wav
    IEMOCAP_full_release/Session1/dialog/EmoEvaluation/<dialog>.txt

A label line of ``<dialog>.txt`` reads (tab-separated)
``[6.2901 - 8.2357]  Ses01F_impro01_F000  neu  [2.5000, 2.5000, 2.5000]``;
headers, the per-evaluator lines (``C-E1: ...``) and blank lines are
ignored. Four classes are kept, the four the paper names: neutral
(``neu``), happy (``hap`` and ``exc`` merged: the paper does not say so,
but most four-class IEMOCAP work does, see docs/design.md), sad (``sad``)
and angry (``ang``); the other labels (``fru``, ``sur``, ``fea``, ``dis``,
``oth``, ``xxx``) are dropped and counted. The speaker is the session plus
the gender letter of the LAST token of the utterance id
(``Ses01F_impro01_M012`` is speaker ``Ses01M``: the male actor of an
improvisation led by the female one).

Adding a corpus works like this module: one ``data/<corpus>.py`` whose
``prepare_<corpus>`` lists the labelled utterances in a
:class:`~speechbrain_sercl.data.manifest.CorpusScan` and calls
:func:`~speechbrain_sercl.data.manifest.prepare_once`, plus one
registry entry in ``speechbrain_sercl.data.corpora``.

Example
-------
>>> utterance_speaker("Ses01F_impro01_M012")
'Ses01M'
"""

import os
import re

from speechbrain_sercl.data.manifest import (
    CorpusScan,
    PreparationError,
    Utterance,
    find_release_root,
    folder_entries,
    prepare_once,
    wav_files,
)

__all__ = [
    "IEMOCAP_EMOTIONS",
    "IEMOCAP_FOLDER",
    "SESSIONS",
    "LABEL_ALIASES",
    "DROPPED_LABELS",
    "find_iemocap_root",
    "read_emo_evaluation",
    "utterance_speaker",
    "scan_iemocap",
    "prepare_iemocap",
]

IEMOCAP_FOLDER = "IEMOCAP_full_release"
SESSIONS = tuple(f"Session{number}" for number in range(1, 6))
# IEMOCAP label codes kept, with their canonical names (excited -> happy).
LABEL_ALIASES = {
    "neu": "neutral",
    "hap": "happy",
    "exc": "happy",
    "sad": "sad",
    "ang": "angry",
}
# The four classes the reader keeps.
IEMOCAP_EMOTIONS = ("angry", "happy", "neutral", "sad")
# Labels left out by the four-class protocol (counted in the report).
DROPPED_LABELS = ("fru", "sur", "fea", "dis", "oth", "xxx")

_LABEL_LINE = re.compile(
    r"^\[\s*[\d.]+\s*-\s*[\d.]+\s*\]\s+(?P<utt_id>\S+)\s+(?P<label>\S+)\s+\["
)
_UTTERANCE_ID = re.compile(r"^(?P<session>Ses\d\d)[FM]_.+_(?P<gender>[FM])\d+$")


def find_iemocap_root(data_folder):
    """Locate the release folder: ``data_folder`` or its IEMOCAP subfolder.

    Arguments
    ---------
    data_folder : str or os.PathLike
        ``IEMOCAP_full_release`` itself or the folder that contains it.

    Returns
    -------
    str
        The absolute path of the folder holding ``Session1`` .. ``Session5``.

    Raises
    ------
    FileNotFoundError
        When ``data_folder`` does not exist.
    PreparationError
        When neither folder holds any ``Session<n>`` folder.

    Example
    -------
    >>> tmp_path = getfixture("tmp_path")
    >>> (tmp_path / "IEMOCAP_full_release" / "Session2").mkdir(parents=True)
    >>> find_iemocap_root(tmp_path).endswith("IEMOCAP_full_release")
    True
    """
    root = find_release_root(
        data_folder, "IEMOCAP", (IEMOCAP_FOLDER,), SESSIONS.__contains__
    )
    if not any(os.path.isdir(os.path.join(root, name)) for name in SESSIONS):
        raise PreparationError(
            f"IEMOCAP data_folder {os.path.abspath(data_folder)} is not an "
            "IEMOCAP release: no "
            f"Session1..Session5 folder in it or in {IEMOCAP_FOLDER}/"
        )
    return root


def read_emo_evaluation(path):
    """Read the utterance labels of one ``EmoEvaluation/<dialog>.txt`` file.

    Arguments
    ---------
    path : str or os.PathLike
        The evaluation file.

    Returns
    -------
    dict
        ``{utt_id: label code}`` in file order; other lines are ignored.

    Example
    -------
    >>> path = getfixture("tmp_path") / "Ses01F_impro01.txt"
    >>> _ = path.write_text(
    ...     "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\\n\\n"
    ...     "[6.2901 - 8.2357]\\tSes01F_impro01_F000\\tneu\\t[2.5, 2.5, 2.5]\\n"
    ...     "C-E1:\\tNeutral;\\t()\\n"
    ... )
    >>> read_emo_evaluation(path)
    {'Ses01F_impro01_F000': 'neu'}
    """
    labels = {}
    with open(path, encoding="utf-8", errors="replace") as label_file:
        for line in label_file:
            match = _LABEL_LINE.match(line)
            if match:
                labels[match["utt_id"]] = match["label"]
    return labels


def utterance_speaker(utt_id):
    """Speaker of an utterance: session plus the id's last gender letter.

    Arguments
    ---------
    utt_id : str
        An IEMOCAP utterance id such as ``Ses01F_impro01_M012``.

    Returns
    -------
    str or None
        The speaker (``"Ses01M"``), or None if ``utt_id`` is not an IEMOCAP
        utterance id.

    Example
    -------
    >>> utterance_speaker("Ses03M_script01_1_F002")
    'Ses03F'
    >>> utterance_speaker("casia_wangzhe_sad_201") is None
    True
    """
    match = _UTTERANCE_ID.match(utt_id)
    return match["session"] + match["gender"] if match else None


def _dialog_selected(dialog, improvised_only):
    """Whether a dialog belongs to the selected part of the corpus."""
    return not improvised_only or "impro" in dialog


def _session_labels(labels_dir, improvised_only, scan):
    """``{utt_id: (label, file)}`` from a session's EmoEvaluation folder."""
    labels = {}
    for path in folder_entries(labels_dir, scan):
        dialog, extension = os.path.splitext(os.path.basename(path))
        if extension != ".txt" or not _dialog_selected(dialog, improvised_only):
            continue
        for utt_id, label in read_emo_evaluation(path).items():
            if utt_id in labels and labels[utt_id][0] != label:
                scan.warn(
                    f"{path}: {utt_id} labelled {label!r} here and "
                    f"{labels[utt_id][0]!r} in {labels[utt_id][1]}; keeping "
                    "the first"
                )
                continue
            labels.setdefault(utt_id, (label, path))
    return labels


def _session_wavs(wav_dir, improvised_only, scan):
    """``{utt_id: path}`` for the wav files of a session."""
    wavs = {}
    for dialog_dir in folder_entries(wav_dir, scan):
        if not os.path.isdir(dialog_dir):
            scan.ignored.append(dialog_dir)
            continue
        if not _dialog_selected(os.path.basename(dialog_dir), improvised_only):
            continue
        for path in wav_files(dialog_dir, scan):
            wavs[os.path.basename(path)[: -len(".wav")]] = path
    return wavs


def _add_labelled(scan, session, wav_dir, utt_id, label_and_file, wavs):
    """Keep, drop or skip one labelled utterance of ``session``."""
    label, label_file = label_and_file
    if label in DROPPED_LABELS:
        scan.drop(label)
        return
    speaker = utterance_speaker(utt_id)
    if label not in LABEL_ALIASES or speaker is None:
        problem = "unknown label" if speaker else "not an IEMOCAP utterance id"
        scan.skip(label_file, f"{utt_id} ({label}): {problem}")
        return
    if utt_id not in wavs:
        dialog = utt_id.rsplit("_", 1)[0]
        scan.skip(
            os.path.join(wav_dir, dialog, f"{utt_id}.wav"),
            f"labelled in {label_file} but the wav file is missing",
        )
        return
    emotion = LABEL_ALIASES[label]
    if label != emotion:
        scan.mapped_aliases[label] = emotion
    scan.utterances.append(
        Utterance(utt_id, wavs[utt_id], emotion, speaker, session)
    )


def scan_iemocap(root, improvised_only=False):
    """List the labelled utterances of an IEMOCAP release.

    Arguments
    ---------
    root : str
        The release folder (see :func:`find_iemocap_root`).
    improvised_only : bool
        Keep only improvised dialogs (dialog name containing ``impro``).

    Returns
    -------
    CorpusScan
        Kept utterances, dropped labels, skipped files (a wav without label,
        a label without wav), missing sessions and ignored files.

    Raises
    ------
    PreparationError
        When no session has both ``sentences/wav`` and
        ``dialog/EmoEvaluation``.

    Example
    -------
    >>> scan_iemocap(str(getfixture("tmp_path")))
    Traceback (most recent call last):
    ...
    speechbrain_sercl.data.manifest.PreparationError: ...no session...
    """
    scan = CorpusScan()
    for session in SESSIONS:
        wav_dir = os.path.join(root, session, "sentences", "wav")
        labels_dir = os.path.join(root, session, "dialog", "EmoEvaluation")
        if not (os.path.isdir(wav_dir) and os.path.isdir(labels_dir)):
            scan.missing.append(session)
            scan.warn(
                f"{root}: {session} is missing or lacks sentences/wav or "
                "dialog/EmoEvaluation; its utterances are left out"
            )
            continue
        labels = _session_labels(labels_dir, improvised_only, scan)
        wavs = _session_wavs(wav_dir, improvised_only, scan)
        for utt_id, label_and_file in labels.items():
            _add_labelled(scan, session, wav_dir, utt_id, label_and_file, wavs)
        for utt_id in sorted(wavs.keys() - labels.keys()):
            scan.skip(wavs[utt_id], "no label in dialog/EmoEvaluation")
    if len(scan.missing) == len(SESSIONS):
        raise PreparationError(
            f"{root}: no session with sentences/wav and dialog/EmoEvaluation "
            "folders; is this the IEMOCAP_full_release folder?"
        )
    return scan


def prepare_iemocap(
    data_folder,
    save_folder,
    improvised_only=False,
    corpus_name="iemocap",
    validate_audio=True,
):
    """Write the IEMOCAP manifest (four classes) to ``save_folder``.

    Does nothing but return the saved report when ``save_folder`` already
    holds a manifest prepared with the same options. Fatal problems (missing
    or wrong folder) raise before anything is written.

    Arguments
    ---------
    data_folder : str or os.PathLike
        ``IEMOCAP_full_release`` or the folder that contains it.
    save_folder : str or os.PathLike
        Where ``manifest.json``, its options and the report go.
    improvised_only : bool
        Keep only the improvised dialogs.
    corpus_name : str
        The ``corpus`` field of every manifest entry.
    validate_audio : bool
        Read every file to reject corrupt, empty or silent audio (True), or
        only read the headers for the durations (False).

    Returns
    -------
    PreparationReport
        Counts per emotion and speaker, hours, skipped files with reasons,
        dropped labels, mapped label codes.

    Example
    -------
    >>> prepare_iemocap(getfixture("tmp_path") / "absent", "out")
    Traceback (most recent call last):
    ...
    FileNotFoundError: IEMOCAP data_folder ... does not exist ...
    """
    root = find_iemocap_root(data_folder)
    options = {
        "reader": "iemocap",
        "data_folder": root,
        "improvised_only": bool(improvised_only),
        "corpus_name": corpus_name,
        "validate_audio": bool(validate_audio),
    }
    return prepare_once(
        options, save_folder, lambda: scan_iemocap(root, improvised_only)
    )
