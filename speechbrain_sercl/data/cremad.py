"""CREMA-D reader: manifest from the ``AudioWAV`` folder of the release.

CREMA-D (91 actors numbered 1001 to 1091, 7442 clips, 16 kHz) keeps its
audio in one folder, each name coding actor, sentence, emotion and level::

    <data_folder>/AudioWAV/1001_DFA_ANG_XX.wav
                           ^^^^ actor
                                ^^^ sentence (12 sentences)
                                    ^^^ emotion, then level LO/MD/HI/XX

``data_folder`` may be the release folder (holding ``AudioWAV/``) or
``AudioWAV/`` itself. The six emotion codes map to canonical names and all
are kept: ANG angry, DIS disgust, FEA fear, HAP happy, NEU neutral, SAD
sad; every level is kept (XX: unspecified). An odd name, an unknown code
or level, and a corrupt or empty file (the release has at least one empty
clip) are skipped with the reason. The ``speaker`` protocol holds out one
of five groups of actors (:mod:`~speechbrain_sercl.data.speaker_groups`).

Example
-------
>>> cremad_name_fields("1001_DFA_ANG_XX.wav")
('1001', 'angry')
"""

import re

from speechbrain_sercl.data.manifest import (
    CorpusScan,
    PreparationError,
    add_named_files,
    find_release_root,
    prepare_once,
    wav_files,
)
from speechbrain_sercl.data.speaker_groups import group_sessions

__all__ = [
    "CREMAD_CODES",
    "CREMAD_EMOTIONS",
    "cremad_name_fields",
    "scan_cremad",
    "prepare_cremad",
]

CREMAD_CODES = {
    "ANG": "angry",
    "DIS": "disgust",
    "FEA": "fear",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}
CREMAD_EMOTIONS = tuple(sorted(CREMAD_CODES.values()))
LEVELS = ("LO", "MD", "HI", "XX")

_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})\.wav$")


def cremad_name_fields(name):
    """Actor and canonical emotion of a CREMA-D file name.

    Arguments
    ---------
    name : str
        A file name such as ``1001_DFA_ANG_XX.wav``.

    Returns
    -------
    tuple of str
        ``(actor, emotion)``.

    Raises
    ------
    ValueError
        For a name off the pattern, an unknown emotion code or level.

    Example
    -------
    >>> cremad_name_fields("1091_IEO_SAD_LO.wav")
    ('1091', 'sad')
    >>> cremad_name_fields("1091_IEO_CON_LO.wav")
    Traceback (most recent call last):
    ...
    ValueError: unknown CREMA-D emotion code 'CON' ...
    """
    match = _NAME.match(name)
    if match is None:
        raise ValueError(
            "not a CREMA-D file name <actor>_<sentence>_<emotion>_<level>"
            ".wav (e.g. 1001_DFA_ANG_XX.wav)"
        )
    actor, _, code, level = match.groups()
    if code not in CREMAD_CODES:
        raise ValueError(
            f"unknown CREMA-D emotion code {code!r} (expected one of "
            f"{', '.join(CREMAD_CODES)})"
        )
    if level not in LEVELS:
        raise ValueError(
            f"unknown CREMA-D level {level!r} (expected one of "
            f"{', '.join(LEVELS)})"
        )
    return actor, CREMAD_CODES[code]


def scan_cremad(root):
    """List the labelled utterances of a CREMA-D ``AudioWAV`` folder.

    Arguments
    ---------
    root : str
        The folder holding the wav files.

    Returns
    -------
    CorpusScan
        Kept utterances (session: the actor group), skipped files with
        reasons, ignored files.

    Raises
    ------
    PreparationError
        When no file has a CREMA-D name.

    Example
    -------
    >>> scan_cremad(str(getfixture("tmp_path")))
    Traceback (most recent call last):
    ...
    speechbrain_sercl.data.manifest.PreparationError: ... not a CREMA-D ...
    """
    scan = CorpusScan()
    add_named_files(scan, wav_files(root, scan), cremad_name_fields, "cremad")
    if not scan.utterances:
        raise PreparationError(
            f"CREMA-D data_folder {root} is not a CREMA-D release: no "
            "<actor>_<sentence>_<emotion>_<level>.wav file in it or in its "
            "AudioWAV/ folder"
        )
    scan.utterances = group_sessions(scan.utterances)
    return scan


def prepare_cremad(
    data_folder, save_folder, corpus_name="cremad", validate_audio=True
):
    """Write the CREMA-D manifest (six classes) to ``save_folder``.

    Does nothing but return the saved report when ``save_folder`` already
    holds a manifest prepared with the same options.

    Arguments
    ---------
    data_folder : str or os.PathLike
        The release folder (holding ``AudioWAV/``) or ``AudioWAV/`` itself.
    save_folder : str or os.PathLike
        Where ``manifest.json``, its options and the report go.
    corpus_name : str
        The ``corpus`` field of every manifest entry.
    validate_audio : bool
        Read every file to reject corrupt, empty or silent audio (True), or
        only read the headers for the durations (False).

    Returns
    -------
    PreparationReport
        Counts per emotion and actor, hours, skipped files with reasons.

    Example
    -------
    >>> prepare_cremad(getfixture("tmp_path") / "absent", "out")
    Traceback (most recent call last):
    ...
    FileNotFoundError: CREMA-D data_folder ... does not exist ...
    """
    root = find_release_root(data_folder, "CREMA-D", ("AudioWAV",), _NAME.match)
    options = {
        "reader": "cremad",
        "data_folder": root,
        "corpus_name": corpus_name,
        "validate_audio": bool(validate_audio),
    }
    return prepare_once(options, save_folder, lambda: scan_cremad(root))
