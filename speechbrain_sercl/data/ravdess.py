"""RAVDESS reader: manifest from the speech release's actor folders.

The audio-only speech release (``Audio_Speech_Actors_01-24.zip``: 24
actors, 1440 files, 48 kHz) names every file by seven two-digit fields::

    <data_folder>/Actor_01/03-01-05-02-01-01-01.wav
                           ^^ modality (01 full AV, 02 video, 03 audio)
                              ^^ vocal channel (01 speech, 02 song)
                                 ^^ emotion, then intensity (01 normal,
                                    02 strong), statement, repetition, actor

``data_folder`` may hold the ``Actor_NN`` folders or the unzipped
``Audio_Speech_Actors_01-24`` folder (not both: two copies are refused, see
:func:`~speechbrain_sercl.data.manifest.find_release_root`). The eight
emotion codes map to canonical names and all are kept (RAVDESS's usual
eight-class protocol): 01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06
fear, 07 disgust, 08 surprise. Calm exists in no other corpus here; it stays
a class of its own (cross-corpus tables use only the shared emotions). Song
files (vocal channel 02, from the song release in the same folders) are not
speech and are dropped, counted as ``song``; a file of another modality, an
unknown emotion code, an odd name or an actor that disagrees with its folder
is skipped with the reason. The speaker is the actor (odd numbers male, even
female); the ``speaker`` protocol holds out one of five groups of actors
(:mod:`~speechbrain_sercl.data.speaker_groups`).

Example
-------
>>> ravdess_name_fields("03-01-02-01-01-02-24.wav")
('24', 'calm', 'speech')
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
from speechbrain_sercl.data.speaker_groups import group_sessions

__all__ = [
    "RAVDESS_CODES",
    "RAVDESS_EMOTIONS",
    "ravdess_name_fields",
    "scan_ravdess",
    "prepare_ravdess",
]

RAVDESS_CODES = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fear",
    "07": "disgust",
    "08": "surprise",
}
RAVDESS_EMOTIONS = tuple(sorted(RAVDESS_CODES.values()))
AUDIO_ONLY = "03"
VOCAL_CHANNELS = {"01": "speech", "02": "song"}
INNER_FOLDER = "Audio_Speech_Actors_01-24"
DROPPED_SONG = "song"

_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)\.wav$")
_ACTOR_FOLDER = re.compile(r"^Actor_(\d\d)$")


def ravdess_name_fields(name):
    """Actor, canonical emotion and vocal channel of a RAVDESS file name.

    Arguments
    ---------
    name : str
        A file name such as ``03-01-05-02-01-01-01.wav``.

    Returns
    -------
    tuple of str
        ``(actor, emotion, "speech" or "song")``.

    Raises
    ------
    ValueError
        For a name with other than seven two-digit fields, a modality other
        than 03 (audio-only), or an unknown vocal channel or emotion code.

    Example
    -------
    >>> ravdess_name_fields("03-02-06-01-02-01-11.wav")
    ('11', 'fear', 'song')
    >>> ravdess_name_fields("01-01-06-01-02-01-11.wav")
    Traceback (most recent call last):
    ...
    ValueError: modality 01 is not audio-only (03): ...
    """
    match = _NAME.match(name)
    if match is None:
        raise ValueError(
            "not a RAVDESS file name of seven two-digit fields "
            "(e.g. 03-01-05-02-01-01-01.wav)"
        )
    modality, channel, code, _, _, _, actor = match.groups()
    if modality != AUDIO_ONLY:
        raise ValueError(
            f"modality {modality} is not audio-only ({AUDIO_ONLY}): not a "
            "file of the audio release"
        )
    if channel not in VOCAL_CHANNELS:
        raise ValueError(f"unknown RAVDESS vocal channel {channel}")
    if code not in RAVDESS_CODES:
        raise ValueError(
            f"unknown RAVDESS emotion code {code} (expected 01 to 08)"
        )
    return actor, RAVDESS_CODES[code], VOCAL_CHANNELS[channel]


def _scan_actor_folder(scan, folder, folder_actor):
    """Add the speech utterances of one ``Actor_NN`` folder to ``scan``."""
    for path in wav_files(folder, scan):
        name = os.path.basename(path)
        try:
            actor, emotion, channel = ravdess_name_fields(name)
        except ValueError as error:
            scan.skip(path, str(error))
            continue
        if actor != folder_actor:
            scan.skip(
                path,
                f"actor {actor} in the name but in the folder of actor "
                f"{folder_actor}",
            )
        elif channel == DROPPED_SONG:
            scan.drop(DROPPED_SONG)
        else:
            utt_id = f"ravdess_{name[: -len('.wav')]}"
            scan.utterances.append(
                Utterance(utt_id, path, emotion, actor, actor)
            )


def scan_ravdess(root):
    """List the speech utterances of a folder of ``Actor_NN`` folders.

    Arguments
    ---------
    root : str
        The folder holding ``Actor_01`` .. ``Actor_24``.

    Returns
    -------
    CorpusScan
        Kept utterances (session: the actor group), dropped song files,
        skipped files with reasons, ignored files.

    Raises
    ------
    PreparationError
        When no speech file of an ``Actor_NN`` folder is found.

    Example
    -------
    >>> scan_ravdess(str(getfixture("tmp_path")))
    Traceback (most recent call last):
    ...
    speechbrain_sercl.data.manifest.PreparationError: ... not a RAVDESS ...
    """
    scan = CorpusScan()
    for folder in folder_entries(root, scan):
        match = _ACTOR_FOLDER.match(os.path.basename(folder))
        if match and os.path.isdir(folder):
            _scan_actor_folder(scan, folder, match.group(1))
        else:
            scan.ignored.append(folder)
    if not scan.utterances:
        raise PreparationError(
            f"RAVDESS data_folder {root} is not a RAVDESS speech release: "
            "no Actor_NN/03-01-*.wav file in it or in its "
            f"{INNER_FOLDER}/ folder"
        )
    scan.utterances = group_sessions(scan.utterances)
    return scan


def prepare_ravdess(
    data_folder, save_folder, corpus_name="ravdess", validate_audio=True
):
    """Write the RAVDESS speech manifest (eight classes) to ``save_folder``.

    Does nothing but return the saved report when ``save_folder`` already
    holds a manifest prepared with the same options.

    Arguments
    ---------
    data_folder : str or os.PathLike
        The folder holding the ``Actor_NN`` folders, or holding
        ``Audio_Speech_Actors_01-24``.
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
        Counts per emotion and actor, hours, dropped song files, skipped
        files with reasons, files resampled from 48 kHz.

    Example
    -------
    >>> prepare_ravdess(getfixture("tmp_path") / "absent", "out")
    Traceback (most recent call last):
    ...
    FileNotFoundError: RAVDESS data_folder ... does not exist ...
    """
    root = find_release_root(
        data_folder, "RAVDESS", (INNER_FOLDER,), _ACTOR_FOLDER.match
    )
    options = {
        "reader": "ravdess",
        "data_folder": root,
        "corpus_name": corpus_name,
        "validate_audio": bool(validate_audio),
    }
    return prepare_once(options, save_folder, lambda: scan_ravdess(root))
