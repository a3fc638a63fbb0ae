"""EmoDB reader: manifest from the Berlin Database of Emotional Speech.

The release (535 utterances, 10 actors, 16 kHz) keeps every file in one
folder, its name coding the speaker, the text, the emotion and the take::

    <data_folder>/wav/03a01Fa.wav
                      ^^ speaker (03, 08, 09, 10, 11, 12, 13, 14, 15, 16)
                        ^^^ text (a01-a07, b01-b03, b09, b10)
                           ^ emotion (German initial), then the version

``data_folder`` may be the release folder (holding ``wav/``) or ``wav/``
itself. The seven emotion letters map to canonical names: W (Wut) angry,
L (Langeweile) boredom, E (Ekel) disgust, A (Angst) fear, F (Freude)
happy, T (Trauer) sad, N neutral; all seven are kept (EmoDB's usual
seven-class protocol). A file whose name does not follow the pattern, or
holds another letter, is skipped with the reason. The ``speaker``
protocol holds out one of five groups of two speakers
(:mod:`~speechbrain_sercl.data.speaker_groups`).

Example
-------
>>> emodb_name_fields("03a01Fa.wav")
('03', 'happy')
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
    "EMODB_EMOTIONS",
    "EMODB_LETTERS",
    "emodb_name_fields",
    "scan_emodb",
    "prepare_emodb",
]

# German initial -> canonical emotion.
EMODB_LETTERS = {
    "W": "angry",
    "L": "boredom",
    "E": "disgust",
    "A": "fear",
    "F": "happy",
    "T": "sad",
    "N": "neutral",
}
EMODB_EMOTIONS = tuple(sorted(EMODB_LETTERS.values()))

_NAME = re.compile(r"^(\d\d)([a-z]\d\d)([A-Z])([a-z])\.wav$")


def emodb_name_fields(name):
    """Speaker and canonical emotion of an EmoDB file name.

    Arguments
    ---------
    name : str
        A file name such as ``03a01Fa.wav``.

    Returns
    -------
    tuple of str
        ``(speaker, emotion)``.

    Raises
    ------
    ValueError
        When the name does not follow EmoDB's pattern or its emotion letter
        is none of W, L, E, A, F, T, N.

    Example
    -------
    >>> emodb_name_fields("16b10Wb.wav")
    ('16', 'angry')
    >>> emodb_name_fields("16b10Xb.wav")
    Traceback (most recent call last):
    ...
    ValueError: unknown EmoDB emotion letter 'X' ...
    """
    match = _NAME.match(name)
    if match is None:
        raise ValueError(
            "not an EmoDB file name <speaker:2 digits><text:letter + 2 "
            "digits><emotion letter><version letter>.wav (e.g. 03a01Fa.wav)"
        )
    speaker, _, letter, _ = match.groups()
    if letter not in EMODB_LETTERS:
        raise ValueError(
            f"unknown EmoDB emotion letter {letter!r} (expected one of "
            f"{', '.join(EMODB_LETTERS)})"
        )
    return speaker, EMODB_LETTERS[letter]


def scan_emodb(root):
    """List the labelled utterances of an EmoDB ``wav`` folder.

    Arguments
    ---------
    root : str
        The folder holding the wav files.

    Returns
    -------
    CorpusScan
        Kept utterances (session: the speaker group), skipped files
        (unexpected names, unknown letters), ignored files.

    Raises
    ------
    PreparationError
        When no file has an EmoDB name.

    Example
    -------
    >>> scan_emodb(str(getfixture("tmp_path")))
    Traceback (most recent call last):
    ...
    speechbrain_sercl.data.manifest.PreparationError: ... not an EmoDB ...
    """
    scan = CorpusScan()
    add_named_files(scan, wav_files(root, scan), emodb_name_fields, "emodb")
    if not scan.utterances:
        raise PreparationError(
            f"EmoDB data_folder {root} is not an EmoDB release: no "
            "<speaker><text><emotion><version>.wav file (e.g. 03a01Fa.wav) "
            "in it or in its wav/ folder"
        )
    scan.utterances = group_sessions(scan.utterances)
    return scan


def prepare_emodb(
    data_folder, save_folder, corpus_name="emodb", validate_audio=True
):
    """Write the EmoDB manifest (seven classes) to ``save_folder``.

    Does nothing but return the saved report when ``save_folder`` already
    holds a manifest prepared with the same options.

    Arguments
    ---------
    data_folder : str or os.PathLike
        The release folder (holding ``wav/``) or its ``wav/`` folder.
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
        Counts per emotion and speaker, hours, skipped files with reasons.

    Example
    -------
    >>> prepare_emodb(getfixture("tmp_path") / "absent", "out")
    Traceback (most recent call last):
    ...
    FileNotFoundError: EmoDB data_folder ... does not exist ...
    """
    root = find_release_root(data_folder, "EmoDB", ("wav",), _NAME.match)
    options = {
        "reader": "emodb",
        "data_folder": root,
        "corpus_name": corpus_name,
        "validate_audio": bool(validate_audio),
    }
    return prepare_once(options, save_folder, lambda: scan_emodb(root))
