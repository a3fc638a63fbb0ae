"""Writers of tiny corpora in the real release layouts, for tests.

``write_iemocap`` and ``write_casia`` build folders shaped exactly like the
IEMOCAP and CASIA releases (with short sine tones as audio), so that the
readers are tested on the layouts they will meet. Import them from a test
module in ``tests/unittests`` with ``from corpus_fixtures import ...``.

Example
-------
>>> path = write_wav(getfixture("tmp_path") / "a.wav", seconds=0.5)
>>> import soundfile as sf
>>> sf.info(path).frames
8000
"""

from pathlib import Path

import numpy as np
import soundfile as sf

__all__ = [
    "FIXTURE_SECONDS",
    "IEMOCAP_LABELS",
    "CASIA_LAYOUT",
    "write_wav",
    "tone",
    "iemocap_wav_path",
    "write_iemocap",
    "write_casia",
    "write_converted_casia",
    "write_files",
]

FIXTURE_SECONDS = 0.25

# A small IEMOCAP: every session, improvised and scripted dialogs, kept and
# dropped labels, and male utterances inside female-led dialogs.
IEMOCAP_LABELS = {
    "Ses01F_impro01_F000": "neu",
    "Ses01F_impro01_M000": "exc",
    "Ses01F_impro01_F001": "fru",
    "Ses01F_impro01_M001": "hap",
    "Ses01F_script01_1_F000": "ang",
    "Ses01F_script01_1_M000": "xxx",
    "Ses02M_impro03_M000": "sad",
    "Ses02M_impro03_F000": "sur",
    "Ses02M_script02_2_F000": "neu",
    "Ses03F_impro05_M000": "ang",
    "Ses03F_impro05_F000": "oth",
    "Ses04M_script03_1_M000": "hap",
    "Ses04M_script03_1_F000": "fea",
    "Ses05F_impro07_F000": "sad",
    "Ses05F_impro07_M000": "dis",
}

# A small CASIA: speaker -> emotion folder (with alias spellings) -> files.
CASIA_LAYOUT = {
    "liuchanhg": {"angry": 2, "fear": 1, "happy": 1},
    "ZhaoZuoxiang": {"Anger": 1, "neutral": 1, "sad": 1, "surprise": 1},
    "wangzhe": {"happiness": 1, "Fearful": 1, "surprised": 1},
}


def tone(seconds, sample_rate, frequency=220.0, amplitude=0.3):
    """A sine tone as a float64 array.

    Arguments
    ---------
    seconds : float
        Length (rounded to whole samples).
    sample_rate : int
        Samples per second.
    frequency : float
        Tone frequency in Hz.
    amplitude : float
        Peak value.

    Returns
    -------
    numpy.ndarray
        Shape ``(round(seconds * sample_rate),)``.

    Example
    -------
    >>> tone(0.5, 8000).shape
    (4000,)
    """
    time = np.arange(round(seconds * sample_rate)) / sample_rate
    return amplitude * np.sin(2 * np.pi * frequency * time)


def write_wav(
    path, seconds=FIXTURE_SECONDS, sample_rate=16000, channels=1, samples=None
):
    """Write a wav file (a tone unless ``samples`` is given).

    Arguments
    ---------
    path : str or pathlib.Path
        Destination; parent folders are created.
    seconds : float
        Length of the tone.
    sample_rate : int
        Sample rate of the file.
    channels : int
        Number of channels of the tone (each a different frequency).
    samples : numpy.ndarray, optional
        Write these samples instead of a tone (written as 32-bit float).

    Returns
    -------
    pathlib.Path
        The file written.

    Example
    -------
    >>> path = getfixture("tmp_path") / "s.wav"
    >>> sf.info(write_wav(path, sample_rate=8000, channels=2)).channels
    2
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if samples is not None:
        sf.write(path, samples, sample_rate, subtype="FLOAT")
        return path
    tones = [
        tone(seconds, sample_rate, frequency=220.0 * (channel + 1))
        for channel in range(channels)
    ]
    sf.write(path, np.stack(tones, axis=1), sample_rate)
    return path


def iemocap_wav_path(release, utt_id):
    """Where the IEMOCAP release keeps the wav of ``utt_id``.

    Arguments
    ---------
    release : pathlib.Path
        The ``IEMOCAP_full_release`` folder.
    utt_id : str
        The utterance id, e.g. ``Ses01F_impro01_M000``.

    Returns
    -------
    pathlib.Path
        ``Session<n>/sentences/wav/<dialog>/<utt_id>.wav`` under ``release``.

    Example
    -------
    >>> iemocap_wav_path(Path("R"), "Ses02M_impro03_F000").as_posix()
    'R/Session2/sentences/wav/Ses02M_impro03/Ses02M_impro03_F000.wav'
    """
    session = f"Session{int(utt_id[3:5])}"
    dialog = utt_id.rsplit("_", 1)[0]
    return release / session / "sentences" / "wav" / dialog / f"{utt_id}.wav"


def _write_emo_evaluation(path, labels):
    """Write one ``EmoEvaluation/<dialog>.txt`` in the release's format."""
    lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
    for index, (utt_id, label) in enumerate(labels.items()):
        start = 2.5 * index + 0.125
        lines += [
            f"[{start:.4f} - {start + 2.0:.4f}]\t{utt_id}\t{label}\t"
            "[2.5000, 2.5000, 2.5000]",
            "C-E1:\tNeutral;\t()",
            "C-E2:\tFrustration;\t(annoyed)",
            "A-E1:\tval 3; act 2; dom  2;\t()",
            "",
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def write_iemocap(folder, labels=None, wav_ids=None):
    """Write a tiny IEMOCAP release under ``folder``.

    Arguments
    ---------
    folder : str or pathlib.Path
        The parent of the ``IEMOCAP_full_release`` folder written.
    labels : dict, optional
        ``{utt_id: label code}`` (default ``IEMOCAP_LABELS``); one
        ``EmoEvaluation/<dialog>.txt`` per dialog.
    wav_ids : iterable of str, optional
        The utterances that get a wav file (default: every labelled one).

    Returns
    -------
    pathlib.Path
        The ``IEMOCAP_full_release`` folder.

    Example
    -------
    >>> release = write_iemocap(getfixture("tmp_path"))
    >>> sorted(path.name for path in release.iterdir())
    ['Session1', 'Session2', 'Session3', 'Session4', 'Session5']
    """
    labels = IEMOCAP_LABELS if labels is None else labels
    release = Path(folder) / "IEMOCAP_full_release"
    by_dialog = {}
    for utt_id, label in labels.items():
        by_dialog.setdefault(utt_id.rsplit("_", 1)[0], {})[utt_id] = label
    for dialog, dialog_labels in by_dialog.items():
        evaluation = release / f"Session{int(dialog[3:5])}" / "dialog"
        evaluation = evaluation / "EmoEvaluation"
        _write_emo_evaluation(evaluation / f"{dialog}.txt", dialog_labels)
        (evaluation / "Categorical").mkdir(exist_ok=True)
    for utt_id in labels if wav_ids is None else wav_ids:
        write_wav(iemocap_wav_path(release, utt_id))
    return release


def write_casia(folder, layout=None, sample_rates=None):
    """Write a tiny CASIA corpus: ``<speaker>/<emotion>/<NNN>.wav``.

    Arguments
    ---------
    folder : str or pathlib.Path
        The corpus root written.
    layout : dict, optional
        ``{speaker: {emotion folder: number of files}}`` (default
        ``CASIA_LAYOUT``); files are numbered 201, 202, ... as in the
        public release.
    sample_rates : dict, optional
        ``{speaker: sample rate}`` for speakers not recorded at 16 kHz.

    Returns
    -------
    pathlib.Path
        The corpus root.

    Example
    -------
    >>> root = write_casia(getfixture("tmp_path") / "casia")
    >>> sorted(path.name for path in (root / "wangzhe").iterdir())
    ['Fearful', 'happiness', 'surprised']
    """
    root = Path(folder)
    layout = CASIA_LAYOUT if layout is None else layout
    for speaker, emotions in layout.items():
        sample_rate = (sample_rates or {}).get(speaker, 16000)
        for emotion, count in emotions.items():
            for number in range(201, 201 + count):
                path = root / speaker / emotion / f"{number}.wav"
                write_wav(path, sample_rate=sample_rate)
    return root


def write_converted_casia(folder):
    """``CASIA_LAYOUT`` with files that are converted on reading or clipped.

    ``liuchanhg`` and ``ZhaoZuoxiang`` (4 files each) are at 22.05 kHz,
    ``wangzhe`` at 16 kHz, and then:

    - ``ZhaoZuoxiang/sad/201.wav`` is stereo (at 22.05 kHz);
    - ``wangzhe/happiness/201.wav`` is stereo (at 16 kHz);
    - ``wangzhe/surprised/201.wav`` is at 48 kHz;
    - ``wangzhe/Fearful/201.wav`` is heavily clipped (16 kHz, mono).

    Arguments
    ---------
    folder : str or pathlib.Path
        The corpus root written.

    Returns
    -------
    pathlib.Path
        The corpus root.

    Example
    -------
    >>> root = write_converted_casia(getfixture("tmp_path") / "casia")
    >>> info = sf.info(root / "ZhaoZuoxiang" / "sad" / "201.wav")
    >>> info.samplerate, info.channels
    (22050, 2)
    """
    root = write_casia(
        folder, sample_rates={"liuchanhg": 22050, "ZhaoZuoxiang": 22050}
    )
    stereo = root / "ZhaoZuoxiang" / "sad" / "201.wav"
    write_wav(stereo, sample_rate=22050, channels=2)
    write_wav(root / "wangzhe" / "happiness" / "201.wav", channels=2)
    write_wav(root / "wangzhe" / "surprised" / "201.wav", sample_rate=48000)
    clipped = tone(FIXTURE_SECONDS, 16000, amplitude=2.0).clip(-1.0, 1.0)
    write_wav(root / "wangzhe" / "Fearful" / "201.wav", samples=clipped)
    return root


def write_files(root, relative_paths, sample_rate=16000):
    """Write a tone at each of ``relative_paths`` under ``root``.

    The layouts of corpora whose file names code their labels (EmoDB,
    RAVDESS, CREMA-D, ESD) are lists of paths: the tests spell out each
    path of the release layout themselves.

    Arguments
    ---------
    root : str or pathlib.Path
        The folder written into.
    relative_paths : iterable of str
        Paths such as ``"wav/03a01Fa.wav"`` or
        ``"Actor_01/03-01-05-02-01-01-01.wav"``.
    sample_rate : int
        Sample rate of every file.

    Returns
    -------
    pathlib.Path
        ``root``.

    Example
    -------
    >>> root = write_files(
    ...     getfixture("tmp_path") / "emodb", ["wav/03a01Fa.wav"]
    ... )
    >>> [path.name for path in (root / "wav").iterdir()]
    ['03a01Fa.wav']
    """
    root = Path(root)
    for relative in relative_paths:
        write_wav(root / relative, sample_rate=sample_rate)
    return root
