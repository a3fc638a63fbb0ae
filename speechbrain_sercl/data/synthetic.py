"""Synthetic emotional speech corpora: the embedded default data set.

``generate_synthetic_corpora`` writes two small corpora in the exact release
layouts of IEMOCAP and CASIA, so that the real readers, the folds and the
recipes run end to end with no download (``generate_synthetic_emodb`` a
third one, in EmoDB's layout, for runs over more corpora):

- ``IEMOCAP_full_release/Session{1..5}/sentences/wav/<dialog>/<utt>.wav`` at
  16 kHz, labelled by ``Session{s}/dialog/EmoEvaluation/<dialog>.txt`` files
  in the release format (header line, annotator lines, labels ``neu``,
  ``hap``, ``exc``, ``sad``, ``ang`` and some ``fru`` and ``xxx`` that the
  reader drops). Each session has two speakers (F and M) who both speak in
  every dialog, as in the release.
- ``CASIA/<speaker>/<emotion>/<NNN>.wav`` at 22.05 kHz, four speakers and the
  six emotions angry, fear, happy, neutral, sad, surprise.
- ``EmoDB/wav/<speaker><text><letter><version>.wav`` at 16 kHz, EmoDB's ten
  speakers and the five of its seven emotions that have a profile here
  (W angry, A fear, F happy, T sad, N neutral; boredom and disgust have
  none, and adding profiles would change the unlabelled pretraining speech
  of :func:`unlabelled_utterances`).

The "speech" is a harmonic source chopped into syllable-like bursts, each
spoken on a random vowel (the formants of /a e i o u/ scaled to the
speaker): as with the phones of real speech, the spectrum changes from
syllable to syllable for reasons that have nothing to do with the emotion.
Each emotion has one acoustic profile shared by both corpora (pitch level
and contour, tempo of the syllables, loudness, spectral tilt, jitter,
breathiness), so emotions are learnable and consistent across corpora;
speakers differ by base pitch, formant scale, tilt and level, and every
utterance draws its own random variation around the profile.
"""

import dataclasses
import json
import os
import string
from collections.abc import Callable

import numpy as np
import soundfile
from tqdm import tqdm

from speechbrain_sercl.data.casia import prepare_casia
from speechbrain_sercl.data.emodb import EMODB_LETTERS, prepare_emodb
from speechbrain_sercl.data.iemocap import prepare_iemocap

__all__ = [
    "CASIA_SPEAKERS",
    "EMOTION_PROFILES",
    "FORMANT_SPEECH",
    "Speech",
    "SYNTHETIC_EMODB_EMOTIONS",
    "generate_synthetic_corpora",
    "generate_synthetic_emodb",
    "make_speaker_voice",
    "prepare_generated",
    "prepare_synthetic",
    "random_profile_mixture",
    "synthesize_utterance",
    "unlabelled_utterances",
    "write_emodb",
    "write_iemocap_and_casia",
]

# Bump whenever the synthesis changes, so old stamps are not trusted.
GENERATOR_VERSION = 2
STAMP_NAME = "synthetic_stamp.json"

# One acoustic profile per canonical emotion, shared by every corpus.
# pitch: factor on the speaker's base f0; slope: f0 rise over the utterance
# (octaves); pitch_range: slow f0 wander (octaves); tremor: depth of a 7 Hz
# f0 tremor; rate: syllables per second; level_db: RMS level (dBFS);
# tilt: harmonic roll-off exponent (higher = darker); jitter: fast relative
# f0 perturbation; breath: relative level of aspiration noise.
PROFILE_FIELDS = (
    "pitch", "slope", "pitch_range", "tremor", "rate",
    "level_db", "tilt", "jitter", "breath",
)  # fmt: skip
EMOTION_PROFILES = {
    emotion: dict(zip(PROFILE_FIELDS, row, strict=True))
    for emotion, row in {
        #          pitch slope  range tremor rate level  tilt jitter breath
        "neutral": (1.00, -0.10, 0.06, 0.00, 4.0, -32.0, 1.3, 0.005, 0.03),
        "happy": (1.30, 0.20, 0.25, 0.00, 5.0, -26.0, 0.9, 0.010, 0.05),
        "sad": (0.85, -0.25, 0.04, 0.00, 2.8, -38.0, 1.8, 0.004, 0.15),
        "angry": (1.20, -0.15, 0.18, 0.00, 6.0, -22.0, 0.5, 0.020, 0.08),
        "fear": (1.45, 0.05, 0.10, 0.04, 5.5, -30.0, 1.1, 0.030, 0.20),
        "surprise": (1.40, 0.55, 0.30, 0.00, 4.2, -25.0, 0.9, 0.010, 0.06),
    }.items()
}

# IEMOCAP label -> (canonical emotion whose profile it sounds like,
# mean valence/activation/dominance on the 1-5 scale, annotator category).
IEMOCAP_LABELS = {
    "neu": ("neutral", (3.0, 2.5, 2.5), "Neutral"),
    "hap": ("happy", (4.0, 3.0, 3.0), "Happiness"),
    "exc": ("happy", (4.0, 3.5, 3.0), "Excited"),
    "sad": ("sad", (2.0, 2.0, 2.0), "Sadness"),
    "ang": ("angry", (1.5, 4.0, 4.0), "Anger"),
    "fru": (None, (2.0, 3.5, 3.5), "Frustration"),
    "xxx": (None, (3.0, 3.0, 3.0), "Other"),
}
IEMOCAP_KEPT = ("neu", "hap", "sad", "ang")
IEMOCAP_DROPPED = ("fru", "xxx")
IEMOCAP_HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
IEMOCAP_DIALOGS = ("impro01", "script01_1")
IEMOCAP_ANNOTATORS = ("C-E2", "C-E3", "C-F1")
CASIA_SPEAKERS = {
    "liuchanhg": "F",
    "wangzhe": "M",
    "zhaoquanyin": "F",
    "ZhaoZuoxiang": "M",
}
CASIA_EMOTIONS = ("angry", "fear", "happy", "neutral", "sad", "surprise")
CASIA_FIRST_NUMBER = 201
# EmoDB's speakers and their genders, and its texts.
EMODB_SPEAKERS = {
    "03": "M", "08": "F", "09": "F", "10": "M", "11": "M",
    "12": "M", "13": "F", "14": "F", "15": "M", "16": "F",
}  # fmt: skip
EMODB_TEXTS = (
    "a01", "a02", "a04", "a05", "a07", "b01", "b02", "b03", "b09", "b10",
)  # fmt: skip
# The EmoDB letters of the emotions that have a profile.
SYNTHETIC_EMODB_LETTERS = {
    letter: emotion
    for letter, emotion in EMODB_LETTERS.items()
    if emotion in EMOTION_PROFILES
}
SYNTHETIC_EMODB_EMOTIONS = tuple(sorted(SYNTHETIC_EMODB_LETTERS.values()))
EMODB_STAMP_NAME = "synthetic_emodb_stamp.json"
CORPUS_SEEDS = {"iemocap": 1, "casia": 2, "emodb": 4}
UNLABELLED_SEED = 3  # the label-free pretraining speech
# Formants (F1-F4, Hz, adult male) of the vowels a syllable is spoken on,
# after Peterson & Barney (1952): /a/, /e/, /i/, /o/, /u/.
VOWEL_FORMANTS_HZ = np.array(
    [
        [730.0, 1090.0, 2440.0, 3400.0],
        [530.0, 1840.0, 2480.0, 3500.0],
        [270.0, 2290.0, 3010.0, 3500.0],
        [570.0, 840.0, 2410.0, 3400.0],
        [300.0, 870.0, 2240.0, 3400.0],
    ]
)
FORMANT_BANDWIDTHS_HZ = np.array([80.0, 110.0, 160.0, 250.0])
WAVETABLE_SIZE = 2048


@dataclasses.dataclass(frozen=True)
class Speech:
    """A speech source of the synthetic corpus generators.

    The generators plan the same corpora, in the same release layouts,
    whatever speaks them (:func:`write_iemocap_and_casia`,
    :func:`write_emodb`); a source says how.

    Arguments
    ---------
    name : str
        Its name, in the progress bars.
    profiles : dict
        Canonical emotion -> acoustic profile (a dict of floats, so that
        two can be blended for the labels a reader drops).
    make_voice : callable
        ``(gender, rng) -> voice``: one speaker's voice.
    speak : callable
        ``(job, profile, sample_rate, duration, rng, noise_floor_db) ->
        waveform``: one planned utterance (``job["voice"]``,
        ``job["corpus"]`` and ``job["sentence"]`` say who speaks which
        sentence of which corpus; ``duration`` is None where the source
        sets the length itself), float32 with its peak below 1.

    Example
    -------
    >>> FORMANT_SPEECH.name, sorted(FORMANT_SPEECH.profiles)[:2]
    ('synthetic', ['angry', 'fear'])
    """

    name: str
    profiles: dict
    make_voice: Callable
    speak: Callable


def make_speaker_voice(gender, rng):
    """Draw the voice of one synthetic speaker.

    Arguments
    ---------
    gender : str
        ``"F"`` or ``"M"``; sets the range of base pitch and formants.
    rng : numpy.random.Generator
        The random source.

    Returns
    -------
    dict
        ``base_f0`` (Hz), ``formant_scale``, ``tilt_offset`` and
        ``level_offset_db``.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> female = make_speaker_voice("F", rng)
    >>> male = make_speaker_voice("M", rng)
    >>> female["base_f0"] > male["base_f0"]
    True
    """
    if gender not in ("F", "M"):
        raise ValueError(f"gender must be 'F' or 'M', got {gender!r}")
    female = gender == "F"
    return {
        "base_f0": rng.normal(210.0, 15.0) if female else rng.normal(120, 10),
        "formant_scale": rng.normal(1.15 if female else 1.0, 0.04),
        "tilt_offset": rng.normal(0.0, 0.15),
        "level_offset_db": rng.normal(0.0, 2.0),
    }


def _utterance_params(profile, voice, rng):
    """Draw one utterance's parameters around an emotion profile."""

    def jiggle(sigma):
        return np.exp(rng.normal(0.0, sigma))

    return {
        "f0": voice["base_f0"] * profile["pitch"] * jiggle(0.07),
        "slope": profile["slope"] + rng.normal(0.0, 0.08),
        "pitch_range": profile["pitch_range"] * jiggle(0.2),
        "tremor": profile["tremor"] * jiggle(0.2),
        "rate": profile["rate"] * jiggle(0.12),
        "level_db": profile["level_db"]
        + voice["level_offset_db"]
        + rng.normal(0.0, 2.5),
        "tilt": max(
            0.2, profile["tilt"] + voice["tilt_offset"] + rng.normal(0, 0.2)
        ),
        "jitter": profile["jitter"] * jiggle(0.3),
        "breath": profile["breath"] * jiggle(0.3),
        "formant_scale": voice["formant_scale"] * jiggle(0.03),
    }


def _smooth_noise(n_samples, sample_rate, knots_per_second, rng):
    """Unit-variance random curve, linearly interpolated between knots."""
    n_knots = int(n_samples / sample_rate * knots_per_second) + 2
    knots = rng.standard_normal(n_knots)
    positions = np.linspace(0, n_knots - 1, n_samples)
    return np.interp(positions, np.arange(n_knots), knots)


def _pitch_track(n_samples, sample_rate, params, rng):
    """Per-sample f0 (Hz): level, linear contour, wander, tremor, jitter."""
    u = np.arange(n_samples) / n_samples
    t = np.arange(n_samples) / sample_rate
    octaves = (
        params["slope"] * (u - 0.5)
        + params["pitch_range"] * _smooth_noise(n_samples, sample_rate, 3, rng)
        + params["tremor"] * np.sin(2 * np.pi * 7.0 * t)
    )
    jitter = params["jitter"] * _smooth_noise(n_samples, sample_rate, 200, rng)
    return params["f0"] * 2.0**octaves * (1.0 + jitter)


def _harmonic_source(f0, sample_rate, tilt):
    """Band-limited harmonic source with amplitudes ``k ** -tilt``."""
    n_harmonics = max(1, int(0.45 * sample_rate / f0.max()))
    k = np.arange(1, n_harmonics + 1)
    grid = np.arange(WAVETABLE_SIZE) / WAVETABLE_SIZE
    table = (k ** -float(tilt)) @ np.sin(2 * np.pi * np.outer(k, grid))
    cycles = np.cumsum(f0) / sample_rate
    position = (cycles % 1.0) * WAVETABLE_SIZE
    return np.interp(position, np.arange(WAVETABLE_SIZE + 1), np.append(
        table, table[0]
    ))  # fmt: skip


def _syllables(n_samples, sample_rate, rate, rng):
    """Syllable-like bursts at about ``rate`` Hz: ``(start, envelope)``."""
    bursts = []
    margin = int(0.1 * sample_rate)
    start = margin
    while start < n_samples - margin:
        length = int(sample_rate / rate * np.exp(rng.normal(0.0, 0.25)))
        voiced = min(int(0.75 * length), n_samples - margin - start)
        if voiced > 1:
            gain = np.exp(rng.normal(0.0, 0.2))
            bursts.append((start, np.hanning(voiced) ** 0.7 * gain))
        start += max(length, 1)
    return bursts


def _formant_filter(signal, sample_rate, formants, formant_scale):
    """Zero-phase filter with Lorentzian peaks at scaled formants."""
    spectrum = np.fft.rfft(signal)
    freqs = np.fft.rfftfreq(len(signal), 1.0 / sample_rate)
    centres = formants * formant_scale
    half_widths = FORMANT_BANDWIDTHS_HZ * formant_scale / 2
    distance = (freqs[:, None] - centres[None, :]) / half_widths[None, :]
    gain = 0.05 + (1.0 / np.sqrt(1.0 + distance**2)).sum(axis=1)
    return np.fft.irfft(spectrum * gain, n=len(signal))


def _spoken_syllables(source, sample_rate, params, rng):
    """Each syllable of ``source`` on a random vowel, with declination."""
    n_samples = len(source)
    speech = np.zeros(n_samples)
    declination = np.linspace(1.0, 0.7, n_samples)
    for start, burst in _syllables(n_samples, sample_rate, params["rate"], rng):
        vowel = VOWEL_FORMANTS_HZ[rng.integers(len(VOWEL_FORMANTS_HZ))]
        end = start + len(burst)
        speech[start:end] = _formant_filter(
            source[start:end] * burst * declination[start:end],
            sample_rate,
            vowel,
            params["formant_scale"],
        )
    return speech


def synthesize_utterance(
    profile, voice, sample_rate, duration, rng, noise_floor_db=-60.0
):
    """Synthesize one emotional utterance.

    Arguments
    ---------
    profile : dict
        An emotion profile, e.g. ``EMOTION_PROFILES["sad"]``.
    voice : dict
        A speaker voice from ``make_speaker_voice``.
    sample_rate : int
        Sampling rate in Hz.
    duration : float
        Length in seconds.
    rng : numpy.random.Generator
        The random source (all randomness comes from it).
    noise_floor_db : float
        RMS level of the background noise (dBFS).

    Returns
    -------
    numpy.ndarray
        The waveform, float32, peak below 1.

    Example
    -------
    >>> voice = make_speaker_voice("M", np.random.default_rng(0))
    >>> def rms(emotion):
    ...     rng = np.random.default_rng(1)
    ...     profile = EMOTION_PROFILES[emotion]
    ...     wav = synthesize_utterance(profile, voice, 16000, 1.5, rng)
    ...     return np.sqrt(np.mean(wav**2))
    >>> bool(rms("angry") > 2 * rms("sad"))
    True
    """
    n_samples = int(round(duration * sample_rate))
    params = _utterance_params(profile, voice, rng)
    f0 = _pitch_track(n_samples, sample_rate, params, rng)
    source = _harmonic_source(f0, sample_rate, params["tilt"])
    source = source / np.sqrt(np.mean(source**2))
    source += params["breath"] * rng.standard_normal(n_samples)
    speech = _spoken_syllables(source, sample_rate, params, rng)
    speech *= 10 ** (params["level_db"] / 20) / np.sqrt(np.mean(speech**2))
    speech += 10 ** (noise_floor_db / 20) * rng.standard_normal(n_samples)
    peak = np.abs(speech).max()
    if peak > 0.98:
        speech *= 0.98 / peak
    return speech.astype(np.float32)


def _speak_formant(job, profile, sample_rate, duration, rng, noise_floor_db):
    """One planned utterance of the formant synthesiser."""
    return synthesize_utterance(
        profile, job["voice"], sample_rate, duration, rng, noise_floor_db
    )


# The project's own formant synthesiser: the demo's default speech.
FORMANT_SPEECH = Speech(
    "synthetic", EMOTION_PROFILES, make_speaker_voice, _speak_formant
)


def _blend_profiles(first, second, weight):
    """Profile between two emotions (``weight`` of the first)."""
    return {
        key: weight * first[key] + (1 - weight) * second[key] for key in first
    }


def random_profile_mixture(profiles, rng):
    """A profile between the emotions, for speech with no emotion label.

    The emotions' profiles weighted by Dirichlet(0.5) weights, drawn over
    the emotions in sorted order: most mixtures lean towards one or two
    emotions without being any of them.

    Arguments
    ---------
    profiles : dict
        ``{emotion: {field: value}}``, every emotion with the same fields.
    rng : numpy.random.Generator
        Draws the weights.

    Returns
    -------
    dict
        ``{field: value}``.

    Example
    -------
    >>> profiles = {"a": {"rate": 2.0}, "b": {"rate": 4.0}}
    >>> rate = random_profile_mixture(profiles, np.random.default_rng(0))
    >>> bool(2.0 <= rate["rate"] <= 4.0)
    True
    """
    emotions = sorted(profiles)
    weights = rng.dirichlet(np.full(len(emotions), 0.5))
    return {
        field: sum(
            weight * profiles[emotion][field]
            for weight, emotion in zip(weights, emotions, strict=True)
        )
        for field in profiles[emotions[0]]
    }


def unlabelled_utterances(count, duration, sample_rate, seed):
    """Synthetic speech with no emotion label, for label-free pretraining.

    Each utterance mixes the emotion profiles at random
    (:func:`random_profile_mixture`) and is spoken by one of 40 random
    voices, none of which belongs to a corpus.

    Arguments
    ---------
    count : int
        Number of utterances.
    duration : float
        Length of each, in seconds.
    sample_rate : int
        Sampling rate in Hz.
    seed : int
        Seed of everything drawn.

    Returns
    -------
    numpy.ndarray
        ``[count, samples]``, float32.

    Example
    -------
    >>> unlabelled_utterances(3, 0.5, 16000, seed=0).shape
    (3, 8000)
    """
    rng = np.random.default_rng([seed, UNLABELLED_SEED])
    voices = [make_speaker_voice(gender, rng) for gender in "FM" * 20]
    utterances = []
    for _ in range(count):
        profile = random_profile_mixture(EMOTION_PROFILES, rng)
        voice = voices[rng.integers(len(voices))]
        utterances.append(
            synthesize_utterance(profile, voice, sample_rate, duration, rng)
        )
    return np.stack(utterances)


def _dropped_label_profile(label, profiles, rng):
    """Profile of a label the reader drops (frustration, no agreement)."""
    if label == "fru":
        return _blend_profiles(profiles["angry"], profiles["neutral"], 0.5)
    first, second = rng.choice(sorted(profiles), 2, replace=False)
    return _blend_profiles(profiles[first], profiles[second], rng.uniform())


def _iemocap_speaker_labels(n_per_class, n_dropped, rng):
    """Shuffled IEMOCAP labels of one speaker (happy split hap/exc)."""
    labels = []
    for label in IEMOCAP_KEPT:
        if label == "hap":
            labels += [
                "exc" if i % 2 == 0 else "hap" for i in range(n_per_class)
            ]
        else:
            labels += [label] * n_per_class
    labels += [IEMOCAP_DROPPED[i % 2] for i in range(n_dropped)]
    return [labels[i] for i in rng.permutation(len(labels))]


def _iemocap_jobs(root, seed, n_per_class, n_dropped, durations, speech):
    """Plan every IEMOCAP-like utterance: one dict per wav to write."""
    jobs = []
    for session in range(1, 6):
        for gender in ("F", "M"):
            speaker_seed = [seed, CORPUS_SEEDS["iemocap"], session, ord(gender)]
            rng = np.random.default_rng(speaker_seed)
            voice = speech.make_voice(gender, rng)
            labels = _iemocap_speaker_labels(n_per_class, n_dropped, rng)
            for index, label in enumerate(labels):
                dialog = _iemocap_dialog(session, index)
                jobs.append({
                    "corpus": "iemocap",
                    "session": session,
                    "dialog": dialog,
                    "utt_id": f"{dialog}_{gender}{index // 4:03d}",
                    "label": label,
                    "voice": voice,
                    "seed": speaker_seed + [index],
                    "duration": durations,
                    "sentence": index,
                })  # fmt: skip
    for job in jobs:
        job["path"] = os.path.join(
            root, f"Session{job['session']}", "sentences", "wav",
            job["dialog"], job["utt_id"] + ".wav",
        )  # fmt: skip
    return jobs


def _iemocap_dialog(session, index):
    """Dialog of a speaker's ``index``-th utterance (round-robin over 4)."""
    owner = "FM"[index % 2]
    kind = IEMOCAP_DIALOGS[(index // 2) % 2]
    return f"Ses0{session}{owner}_{kind}"


def _casia_jobs(root, seed, n_per_class, durations, speech):
    """Plan every CASIA-like utterance: one dict per wav to write."""
    jobs = []
    for number, (speaker, gender) in enumerate(CASIA_SPEAKERS.items()):
        speaker_seed = [seed, CORPUS_SEEDS["casia"], number]
        voice = speech.make_voice(gender, np.random.default_rng(speaker_seed))
        for emotion_index, emotion in enumerate(CASIA_EMOTIONS):
            for index in range(n_per_class):
                name = f"{CASIA_FIRST_NUMBER + index:03d}.wav"
                jobs.append({
                    "corpus": "casia",
                    "path": os.path.join(root, speaker, emotion, name),
                    "label": emotion,
                    "voice": voice,
                    "seed": speaker_seed + [emotion_index, index],
                    "duration": durations,
                    "sentence": index,
                })  # fmt: skip
    return jobs


def _emodb_jobs(root, seed, n_per_class, durations, speech):
    """Plan every EmoDB-like utterance: one dict per wav to write."""
    jobs = []
    for number, (speaker, gender) in enumerate(EMODB_SPEAKERS.items()):
        speaker_seed = [seed, CORPUS_SEEDS["emodb"], number]
        voice = speech.make_voice(gender, np.random.default_rng(speaker_seed))
        for emotion_index, (letter, emotion) in enumerate(
            SYNTHETIC_EMODB_LETTERS.items()
        ):
            for index in range(n_per_class):
                text = EMODB_TEXTS[index % len(EMODB_TEXTS)]
                version = string.ascii_lowercase[index // len(EMODB_TEXTS)]
                name = f"{speaker}{text}{letter}{version}.wav"
                jobs.append({
                    "corpus": "emodb",
                    "path": os.path.join(root, "wav", name),
                    "label": emotion,
                    "voice": voice,
                    "seed": speaker_seed + [emotion_index, index],
                    "duration": durations,
                    "sentence": index % len(EMODB_TEXTS),
                })  # fmt: skip
    return jobs


def _render(job, sample_rate, noise_floor_db, speech):
    """Speak and write one planned utterance; returns its duration."""
    rng = np.random.default_rng(job["seed"])
    duration = None
    if job["duration"] is not None:
        duration = round(rng.uniform(*job["duration"]), 2)
    emotion = job["label"]
    if emotion in IEMOCAP_LABELS:
        emotion = IEMOCAP_LABELS[emotion][0]
    if emotion is None:
        profile = _dropped_label_profile(job["label"], speech.profiles, rng)
    else:
        profile = speech.profiles[emotion]
    wav = speech.speak(job, profile, sample_rate, duration, rng, noise_floor_db)
    os.makedirs(os.path.dirname(job["path"]), exist_ok=True)
    soundfile.write(job["path"], wav, sample_rate, subtype="PCM_16")
    return len(wav) / sample_rate


def _annotation_block(job, start, end, rng):
    """One turn of an EmoEvaluation file, as in the release."""
    label = job["label"]
    valence, activation, dominance = IEMOCAP_LABELS[label][1]
    lines = [
        f"[{start:.4f} - {end:.4f}]\t{job['utt_id']}\t{label}\t"
        f"[{valence:.4f}, {activation:.4f}, {dominance:.4f}]"
    ]
    categories = [IEMOCAP_LABELS[label][2]] * len(IEMOCAP_ANNOTATORS)
    if label == "xxx":
        names = sorted({entry[2] for entry in IEMOCAP_LABELS.values()})
        categories = list(rng.choice(names, len(categories), replace=False))
    for annotator, category in zip(IEMOCAP_ANNOTATORS, categories, strict=True):
        lines.append(f"{annotator}:\t{category};\t()")
    for annotator in ("A-E3", "A-F1"):
        val, act, dom = (
            int(round(v)) for v in (valence, activation, dominance)
        )
        lines.append(f"{annotator}:\tval {val}; act {act}; dom  {dom};\t()")
    return "\n".join(lines) + "\n\n"


def _turn_order(utt_id):
    """Sort key interleaving F and M turns: ``(number, utt_id)``."""
    return utt_id[-3:], utt_id


def _write_emo_evaluations(root, jobs, durations, seed):
    """Write ``Session*/dialog/EmoEvaluation/<dialog>.txt`` for all dialogs."""
    by_dialog = {}
    for job, duration in zip(jobs, durations, strict=True):
        by_dialog.setdefault((job["session"], job["dialog"]), []).append(
            (job, duration)
        )
    for number, ((session, dialog), turns) in enumerate(
        sorted(by_dialog.items())
    ):
        rng = np.random.default_rng([seed, CORPUS_SEEDS["iemocap"], number])
        folder = os.path.join(
            root, f"Session{session}", "dialog", "EmoEvaluation"
        )
        os.makedirs(folder, exist_ok=True)
        turns.sort(key=lambda turn: _turn_order(turn[0]["utt_id"]))
        text, clock = IEMOCAP_HEADER, rng.uniform(1.0, 3.0)
        for job, duration in turns:
            text += _annotation_block(job, clock, clock + duration, rng)
            clock += duration + rng.uniform(0.3, 1.5)
        with open(os.path.join(folder, dialog + ".txt"), "w") as handle:
            handle.write(text)


def _check_stamp(stamp_path, parameters):
    """True if a complete generation with ``parameters`` is already there."""
    if not os.path.exists(stamp_path):
        return False
    with open(stamp_path) as handle:
        stamp = json.load(handle)
    if stamp.get("parameters") != parameters:
        raise ValueError(
            f"{stamp_path} records synthetic corpora generated with "
            f"{stamp.get('parameters')}, not {parameters}: choose another "
            "root folder, or delete this one and every experiment folder "
            "prepared from it (their finished steps would be reused)"
        )
    return bool(stamp.get("complete"))


def _write_stamp(stamp_path, parameters, complete):
    """Record the generation parameters (and whether it finished)."""
    with open(stamp_path, "w") as handle:
        json.dump({"parameters": parameters, "complete": complete}, handle)


def _generate_once(stamp_path, parameters, write):
    """Call ``write()`` unless the stamp records a complete generation
    with ``parameters`` (a stamp of other parameters is an error)."""
    if _check_stamp(stamp_path, parameters):
        return
    _write_stamp(stamp_path, parameters, complete=False)
    write()
    _write_stamp(stamp_path, parameters, complete=True)


def _check_durations(duration_range):
    """Refuse a bad duration range."""
    low, high = duration_range
    if not 0 < low <= high:
        raise ValueError(f"duration_range must be 0 < min <= max: {low, high}")
    return [low, high]


def _check_count(utterances_per_speaker_emotion):
    """Refuse a corpus with no utterances."""
    if utterances_per_speaker_emotion < 1:
        raise ValueError(
            "utterances_per_speaker_emotion must be >= 1, got "
            f"{utterances_per_speaker_emotion}"
        )


def _check_emodb_count(utterances_per_speaker_emotion):
    """Refuse more utterances than EmoDB's file names can spell."""
    _check_count(utterances_per_speaker_emotion)
    most = len(EMODB_TEXTS) * len(string.ascii_lowercase)
    if utterances_per_speaker_emotion > most:
        raise ValueError(
            f"utterances_per_speaker_emotion must be <= {most} (EmoDB's "
            f"file names), got {utterances_per_speaker_emotion}"
        )


def generate_synthetic_corpora(
    root,
    seed=0,
    utterances_per_speaker_emotion=8,
    dropped_per_speaker=2,
    duration_range=(1.0, 2.0),
    iemocap_sample_rate=16000,
    casia_sample_rate=22050,
    progress=True,
):
    """Write an IEMOCAP-like and a CASIA-like corpus under ``root``.

    Deterministic: the same arguments give the same bytes. A stamp file
    (``root/synthetic_stamp.json``) records the arguments; a complete
    generation with the same arguments is reused as is, and one with other
    arguments raises an error rather than mixing two corpora.

    Arguments
    ---------
    root : str
        Folder to write into (created if needed).
    seed : int
        Seed of every random draw.
    utterances_per_speaker_emotion : int
        Utterances per speaker and emotion: IEMOCAP-like corpus per kept
        class (neutral, happy as ``hap``/``exc``, sad, angry; 10 speakers),
        CASIA-like corpus per emotion (6 emotions; 4 speakers). The default
        gives 320 + 20 IEMOCAP-like and 192 CASIA-like utterances.
    dropped_per_speaker : int
        IEMOCAP-like utterances per speaker labelled ``fru`` or ``xxx``,
        which the reader drops.
    duration_range : tuple of float
        Minimum and maximum utterance length in seconds.
    iemocap_sample_rate : int
        Sampling rate of the IEMOCAP-like wavs (the release has 16 kHz).
    casia_sample_rate : int
        Sampling rate of the CASIA-like wavs.
    progress : bool
        Whether to show a progress bar.

    Returns
    -------
    dict
        ``{"iemocap": <IEMOCAP_full_release folder>, "casia": <CASIA
        folder>}``.

    Example
    -------
    >>> import glob, tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> paths = generate_synthetic_corpora(
    ...     tmp.name, utterances_per_speaker_emotion=1, progress=False
    ... )
    >>> len(glob.glob(os.path.join(paths["casia"], "*", "*", "*.wav")))
    24
    >>> sentences = os.path.join(paths["iemocap"], "Session1", "sentences")
    >>> folder = os.path.join(sentences, "wav", "Ses01F_impro01")
    >>> soundfile.info(
    ...     os.path.join(folder, "Ses01F_impro01_M000.wav")
    ... ).samplerate
    16000
    >>> tmp.cleanup()
    """
    low, high = _check_durations(duration_range)
    parameters = {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "utterances_per_speaker_emotion": utterances_per_speaker_emotion,
        "dropped_per_speaker": dropped_per_speaker,
        "duration_range": [low, high],
        "iemocap_sample_rate": iemocap_sample_rate,
        "casia_sample_rate": casia_sample_rate,
    }
    return write_iemocap_and_casia(
        root,
        parameters,
        FORMANT_SPEECH,
        (low, high),
        progress,
    )


def write_iemocap_and_casia(root, parameters, speech, durations, progress):
    """Write the IEMOCAP-like and CASIA-like corpora of ``speech`` once.

    The shared body of the generators of both speech sources: it plans
    the utterances in the release layouts, speaks and writes them, and
    writes the IEMOCAP-like annotation files, unless the stamp
    (``root/synthetic_stamp.json``) records a complete generation with
    ``parameters``; a stamp of other parameters (another source's
    included) is an error.

    Arguments
    ---------
    root : str
        Folder to write into (created if needed).
    parameters : dict
        The generator's arguments, with ``seed``,
        ``utterances_per_speaker_emotion``, ``dropped_per_speaker``,
        ``iemocap_sample_rate`` and ``casia_sample_rate``.
    speech : Speech
        What speaks the utterances.
    durations : tuple of float or None
        The range each utterance's length is drawn from, or None where the
        speech sets the length itself.
    progress : bool
        Whether to show a progress bar.

    Returns
    -------
    dict
        ``{"iemocap": <IEMOCAP_full_release folder>, "casia": <CASIA
        folder>}``.
    """
    seed = parameters["seed"]
    per_class = parameters["utterances_per_speaker_emotion"]
    _check_count(per_class)
    if parameters["dropped_per_speaker"] < 0:
        raise ValueError(
            "dropped_per_speaker must be >= 0, got "
            f"{parameters['dropped_per_speaker']}"
        )
    paths = {
        "iemocap": os.path.join(root, "IEMOCAP_full_release"),
        "casia": os.path.join(root, "CASIA"),
    }
    os.makedirs(root, exist_ok=True)

    def write():
        iemocap_jobs = _iemocap_jobs(
            paths["iemocap"], seed, per_class,
            parameters["dropped_per_speaker"], durations, speech,
        )  # fmt: skip
        casia_jobs = _casia_jobs(
            paths["casia"], seed, per_class, durations, speech
        )
        bar = tqdm(
            total=len(iemocap_jobs) + len(casia_jobs),
            desc=f"{speech.name} corpora",
            disable=not progress,
        )
        iemocap_durations = []
        for job in iemocap_jobs:
            iemocap_durations.append(
                _render(job, parameters["iemocap_sample_rate"], -50.0, speech)
            )
            bar.update()
        _write_emo_evaluations(
            paths["iemocap"], iemocap_jobs, iemocap_durations, seed
        )
        for job in casia_jobs:
            _render(job, parameters["casia_sample_rate"], -60.0, speech)
            bar.update()
        bar.close()

    _generate_once(os.path.join(root, STAMP_NAME), parameters, write)
    return paths


def generate_synthetic_emodb(
    root,
    seed=0,
    utterances_per_speaker_emotion=8,
    duration_range=(1.0, 2.0),
    sample_rate=16000,
    progress=True,
):
    """Write an EmoDB-like corpus under ``root`` (``root/EmoDB``).

    EmoDB's ten speakers each say ``utterances_per_speaker_emotion``
    utterances of the five emotions with a profile, named as in the
    release (``wav/03a01Fa.wav``: speaker, text, emotion letter, version).
    Deterministic, and reused when complete, as
    :func:`generate_synthetic_corpora` (its stamp is
    ``root/synthetic_emodb_stamp.json``).

    Arguments
    ---------
    root : str
        Folder to write into (created if needed).
    seed : int
        Seed of every random draw.
    utterances_per_speaker_emotion : int
        Utterances per speaker and emotion (at most 260: ten texts times
        26 version letters).
    duration_range : tuple of float
        Minimum and maximum utterance length in seconds.
    sample_rate : int
        Sampling rate of the wavs (the release has 16 kHz).
    progress : bool
        Whether to show a progress bar.

    Returns
    -------
    dict
        ``{"emodb": <EmoDB folder>}``.

    Example
    -------
    >>> root = getfixture("tmp_path")
    >>> paths = generate_synthetic_emodb(
    ...     root, utterances_per_speaker_emotion=1, progress=False
    ... )
    >>> sorted(os.listdir(os.path.join(paths["emodb"], "wav")))[:5]
    ['03a01Aa.wav', '03a01Fa.wav', '03a01Na.wav', '03a01Ta.wav', '03a01Wa.wav']
    """
    low, high = _check_durations(duration_range)
    parameters = {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "utterances_per_speaker_emotion": utterances_per_speaker_emotion,
        "duration_range": [low, high],
        "sample_rate": sample_rate,
    }
    return write_emodb(root, parameters, FORMANT_SPEECH, (low, high), progress)


def write_emodb(root, parameters, speech, durations, progress):
    """Write the EmoDB-like corpus of ``speech`` once.

    As :func:`write_iemocap_and_casia`, with the stamp
    ``root/synthetic_emodb_stamp.json``.

    Arguments
    ---------
    root : str
        Folder to write into (created if needed).
    parameters : dict
        The generator's arguments, with ``seed``,
        ``utterances_per_speaker_emotion`` and ``sample_rate``.
    speech : Speech
        What speaks the utterances.
    durations : tuple of float or None
        The range each utterance's length is drawn from, or None where the
        speech sets the length itself.
    progress : bool
        Whether to show a progress bar.

    Returns
    -------
    dict
        ``{"emodb": <EmoDB folder>}``.
    """
    per_class = parameters["utterances_per_speaker_emotion"]
    _check_emodb_count(per_class)
    paths = {"emodb": os.path.join(root, "EmoDB")}
    os.makedirs(root, exist_ok=True)

    def write():
        jobs = _emodb_jobs(
            paths["emodb"], parameters["seed"], per_class, durations, speech
        )
        description = f"{speech.name} EmoDB"
        for job in tqdm(jobs, desc=description, disable=not progress):
            _render(job, parameters["sample_rate"], -60.0, speech)

    _generate_once(os.path.join(root, EMODB_STAMP_NAME), parameters, write)
    return paths


def prepare_synthetic(
    data_folder, save_folder, corpus, root=None, corpus_name=None, **options
):
    """Generate the synthetic corpora (once) and prepare one of them.

    The reader of the registry's ``synthetic_iemocap`` and
    ``synthetic_casia`` corpora (the demo's) and ``synthetic_emodb``: it
    calls ``generate_synthetic_corpora(root, **options)`` (or
    ``generate_synthetic_emodb``; reused when already generated) and then
    the real reader of ``corpus``.

    Arguments
    ---------
    data_folder : str
        The corpus folder; must be where the generator puts ``corpus``
        (``<root>/IEMOCAP_full_release``, ``<root>/CASIA`` or
        ``<root>/EmoDB``).
    save_folder : str
        Where the reader writes the manifest.
    corpus : str
        ``"iemocap"``, ``"casia"`` or ``"emodb"``.
    root : str, optional
        The folder of the synthetic corpora (default: the parent of
        ``data_folder``).
    corpus_name : str, optional
        The ``corpus`` field of the manifest (default: ``corpus``).
    **options
        Arguments of the generator (``seed``,
        ``utterances_per_speaker_emotion``, ...).

    Returns
    -------
    PreparationReport
        The reader's report.

    Example
    -------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> casia = os.path.join(tmp.name, "data", "CASIA")
    >>> save_folder = os.path.join(tmp.name, "prepared")
    >>> _ = prepare_synthetic(
    ...     casia, save_folder, "casia",
    ...     utterances_per_speaker_emotion=1, progress=False,
    ... )  # fmt: skip
    >>> with open(os.path.join(save_folder, "manifest.json")) as handle:
    ...     len(json.load(handle))
    24
    >>> tmp.cleanup()
    """
    return prepare_generated(
        SYNTHETIC_READERS,
        data_folder,
        save_folder,
        corpus,
        root,
        corpus_name,
        **options,
    )


def prepare_generated(
    readers, data_folder, save_folder, corpus, root, corpus_name, **options
):
    """Generate ``corpus`` with its generator in ``readers`` (once) and
    read it with its real reader: the body of :func:`prepare_synthetic`
    and of the other speech sources' readers.

    Arguments
    ---------
    readers : dict
        Corpus -> (generator, real reader).
    data_folder, save_folder, corpus, root, corpus_name, **options
        As :func:`prepare_synthetic`.

    Returns
    -------
    PreparationReport
        The reader's report.
    """
    if corpus not in readers:
        raise ValueError(
            f"corpus must be one of {sorted(readers)}, got {corpus!r}"
        )
    generate, read = readers[corpus]
    if root is None:
        root = os.path.dirname(os.path.abspath(data_folder))
    paths = generate(root, **options)
    if os.path.abspath(data_folder) != os.path.abspath(paths[corpus]):
        raise ValueError(
            f"data_folder {data_folder} is not where the generated {corpus} "
            f"corpus is written ({paths[corpus]})"
        )
    return read(data_folder, save_folder, corpus_name=corpus_name or corpus)


# corpus -> (generator, real reader).
SYNTHETIC_READERS = {
    "iemocap": (generate_synthetic_corpora, prepare_iemocap),
    "casia": (generate_synthetic_corpora, prepare_casia),
    "emodb": (generate_synthetic_emodb, prepare_emodb),
}
