"""Tests of the synthetic corpora: layout, determinism and learnability."""

import contextlib
import glob
import hashlib
import json
import os
import re

import numpy as np
import pytest
import soundfile
import torch
import torchaudio

from speechbrain_sercl.data.folds import load_or_create_folds
from speechbrain_sercl.data.synthetic import (
    EMOTION_PROFILES,
    generate_synthetic_corpora,
    make_speaker_voice,
    prepare_synthetic,
    random_profile_mixture,
    synthesize_utterance,
)

PER_CLASS = 4
SHARED = ("neutral", "happy", "sad", "angry")
CASIA_EMOTIONS = ("angry", "fear", "happy", "neutral", "sad", "surprise")
IEMOCAP_TO_CANONICAL = {
    "neu": "neutral",
    "hap": "happy",
    "exc": "happy",
    "sad": "sad",
    "ang": "angry",
}
# The release's label line, written out independently of the generator.
LABEL_LINE = re.compile(
    r"^\[(?P<start>\d+\.\d{4}) - (?P<end>\d+\.\d{4})\]\t"
    r"(?P<utt>(?P<dialog>Ses0(?P<session>[1-5])[FM]_(impro|script)\d{2}"
    r"(_\d[a-z]?)?)_(?P<gender>[FM])\d{3})\t"
    r"(?P<label>[a-z]{3})\t\[\d\.\d{4}, \d\.\d{4}, \d\.\d{4}\]$"
)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """One small generation shared by the tests of this file."""
    root = str(tmp_path_factory.mktemp("synthetic"))
    return generate_synthetic_corpora(
        root, seed=0, utterances_per_speaker_emotion=PER_CLASS, progress=False
    )


@pytest.fixture(scope="module")
def iemocap_turns(corpora):
    """Every label line of every EmoEvaluation file, parsed by regex."""
    turns = []
    pattern = os.path.join(
        corpora["iemocap"], "Session*", "dialog", "EmoEvaluation", "*.txt"
    )
    for path in sorted(glob.glob(pattern)):
        with open(path) as handle:
            lines = handle.read().splitlines()
        assert lines[0].startswith("% [START_TIME - END_TIME] TURN_NAME")
        for line in lines:
            match = LABEL_LINE.match(line)
            if match:
                turn = match.groupdict()
                turn["file"] = path
                turns.append(turn)
            else:
                assert not line.startswith("[")
    return turns


def _wav_of(root, turn):
    return os.path.join(
        root,
        f"Session{turn['session']}",
        "sentences",
        "wav",
        turn["dialog"],
        turn["utt"] + ".wav",
    )


def test_iemocap_layout(corpora, iemocap_turns):
    root = corpora["iemocap"]
    wavs = set(glob.glob(os.path.join(root, "Session*", "sentences", "wav",
                                      "*", "*.wav")))  # fmt: skip
    labelled = {_wav_of(root, turn) for turn in iemocap_turns}
    assert labelled == wavs
    for turn in iemocap_turns:
        dialog_file = os.path.basename(turn["file"])[: -len(".txt")]
        assert dialog_file == turn["dialog"]
        assert f"Session{turn['session']}" in turn["file"]
    labels = [turn["label"] for turn in iemocap_turns]
    assert {"neu", "hap", "exc", "sad", "ang", "fru", "xxx"} == set(labels)
    speakers = {(t["session"], t["gender"]) for t in iemocap_turns}
    assert len(speakers) == 10
    for session, gender in speakers:
        kept = [
            t["label"] for t in iemocap_turns
            if (t["session"], t["gender"]) == (session, gender)
            and t["label"] in IEMOCAP_TO_CANONICAL
        ]  # fmt: skip
        assert len(kept) == 4 * PER_CLASS
    assert any(
        t["gender"] == "M" and t["dialog"][5] == "F" for t in iemocap_turns
    )


def test_iemocap_times_match_wavs(corpora, iemocap_turns):
    last_end = {}
    for turn in iemocap_turns:
        info = soundfile.info(_wav_of(corpora["iemocap"], turn))
        assert info.samplerate == 16000 and info.channels == 1
        assert info.subtype == "PCM_16"
        start, end = float(turn["start"]), float(turn["end"])
        assert end - start == pytest.approx(info.duration, abs=2e-4)
        assert 1.0 <= info.duration <= 2.0
        assert start > last_end.get(turn["file"], 0.0)
        last_end[turn["file"]] = end


def test_casia_layout(corpora):
    root = corpora["casia"]
    speakers = sorted(os.listdir(root))
    assert len(speakers) == 4
    for speaker in speakers:
        assert sorted(os.listdir(os.path.join(root, speaker))) == sorted(
            CASIA_EMOTIONS
        )
        for emotion in CASIA_EMOTIONS:
            names = os.listdir(os.path.join(root, speaker, emotion))
            assert len(names) == PER_CLASS
            assert all(re.fullmatch(r"\d{3}\.wav", name) for name in names)
            for name in names:
                info = soundfile.info(
                    os.path.join(root, speaker, emotion, name)
                )
                assert info.samplerate == 22050 and info.channels == 1
                assert 1.0 <= info.duration <= 2.0


def _hash_tree(root):
    digests = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as handle:
                digest = hashlib.sha256(handle.read()).hexdigest()
            digests[os.path.relpath(path, root)] = digest
    return digests


def test_deterministic_by_seed(tmp_path):
    def generate(name, seed):
        root = str(tmp_path / name)
        generate_synthetic_corpora(
            root, seed=seed, utterances_per_speaker_emotion=1, progress=False
        )
        return _hash_tree(root)

    first, again, other = generate("a", 0), generate("b", 0), generate("c", 1)
    assert len(first) > 80 and first == again
    assert first.keys() == other.keys() and first != other


def test_stamp_reuse_and_mismatch(corpora):
    root = os.path.dirname(corpora["iemocap"])
    stamp = os.path.join(root, "synthetic_stamp.json")
    with open(stamp) as handle:
        assert json.load(handle)["complete"] is True
    before = _hash_tree(root)
    mtimes = {p: os.path.getmtime(os.path.join(root, p)) for p in before}
    again = generate_synthetic_corpora(
        root, seed=0, utterances_per_speaker_emotion=PER_CLASS, progress=False
    )
    assert again == corpora
    assert all(os.path.getmtime(os.path.join(root, p)) == t
               for p, t in mtimes.items())  # fmt: skip
    # Other parameters (a seed here, a new GENERATOR_VERSION after an
    # upgrade) are refused; the message says that experiments prepared
    # from the old corpora are stale too.
    with pytest.raises(ValueError, match="synthetic_stamp.json") as error:
        generate_synthetic_corpora(root, seed=1, progress=False)
    assert "every experiment folder prepared from it" in str(error.value)


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="utterances_per_speaker_emotion"):
        generate_synthetic_corpora(
            str(tmp_path), utterances_per_speaker_emotion=0
        )
    with pytest.raises(ValueError, match="duration_range"):
        generate_synthetic_corpora(str(tmp_path), duration_range=(2.0, 1.0))
    with pytest.raises(ValueError, match="gender"):
        make_speaker_voice("X", np.random.default_rng(0))


def test_synthesize_utterance_length_and_range():
    voice = make_speaker_voice("F", np.random.default_rng(3))
    for emotion, profile in EMOTION_PROFILES.items():
        wav = synthesize_utterance(
            profile, voice, 22050, 1.37, np.random.default_rng(4)
        )
        assert wav.dtype == np.float32, emotion
        assert wav.shape == (round(1.37 * 22050),)
        assert np.abs(wav).max() < 1.0


def _first_formant_per_syllable(wav, sample_rate):
    """The strongest spectral peak in 200-1000 Hz of every syllable (runs
    of 20 ms frames within 20 dB of the loudest frame)."""
    hop = sample_rate // 50
    frames = wav[: len(wav) // hop * hop].reshape(-1, hop)
    loud = 10 * np.log10((frames**2).mean(1) + 1e-12)
    voiced = loud > loud.max() - 20
    edges = np.flatnonzero(np.diff(np.r_[0, voiced.astype(int), 0]))
    peaks = []
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        segment = wav[start * hop : end * hop]
        power = np.abs(np.fft.rfft(segment * np.hanning(len(segment)))) ** 2
        freqs = np.fft.rfftfreq(len(segment), 1 / sample_rate)
        band = (freqs > 200) & (freqs < 1000)
        peaks.append(freqs[band][power[band].argmax()])
    return np.array(peaks)


def test_syllables_are_spoken_on_different_vowels():
    # Real speech changes its formants from phone to phone; one steady
    # vowel made MFCC statistics an unrealistically good representation.
    # A near-flat harmonic source (tilt 0.2) lets the strongest harmonic
    # below 1 kHz mark the first formant: /i/ and /u/ near 300 Hz, /a/
    # near 730 Hz (Peterson & Barney), /e/ and /o/ between.
    profile = {**EMOTION_PROFILES["neutral"], "tilt": 0.2, "breath": 0.0}
    voice = make_speaker_voice("M", np.random.default_rng(0))
    voice.update(base_f0=100.0, formant_scale=1.0, tilt_offset=0.0)
    wav = synthesize_utterance(
        profile, voice, 16000, 2.0, np.random.default_rng(5)
    )
    first_formants = _first_formant_per_syllable(wav, 16000)
    assert len(first_formants) >= 5
    assert first_formants.min() < 400, first_formants
    assert first_formants.max() > 600, first_formants


@contextlib.contextmanager
def _one_torch_thread():
    """Two shared cores: one thread is faster than contending for two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _mfcc_stats(path, mfcc):
    """Mean and std over time of 20 MFCCs of a wav resampled to 16 kHz."""
    wav, sample_rate = soundfile.read(path, dtype="float32")
    signal = torch.from_numpy(wav)
    if sample_rate != 16000:
        signal = torchaudio.functional.resample(signal, sample_rate, 16000)
    coefficients = mfcc(signal)
    return torch.cat([coefficients.mean(1), coefficients.std(1)]).numpy()


@pytest.fixture(scope="module")
def features(corpora, iemocap_turns):
    """MFCC statistics, emotion and speaker of every kept utterance."""
    mfcc = torchaudio.transforms.MFCC(
        16000, n_mfcc=20, melkwargs={"n_fft": 400, "hop_length": 160,
                                     "n_mels": 40},
    )  # fmt: skip
    rows = {"iemocap": [], "casia": []}
    with _one_torch_thread(), torch.no_grad():
        for turn in iemocap_turns:
            if turn["label"] in IEMOCAP_TO_CANONICAL:
                rows["iemocap"].append((
                    _mfcc_stats(_wav_of(corpora["iemocap"], turn), mfcc),
                    IEMOCAP_TO_CANONICAL[turn["label"]],
                    turn["session"] + turn["gender"],
                ))  # fmt: skip
        pattern = os.path.join(corpora["casia"], "*", "*", "*.wav")
        for path in sorted(glob.glob(pattern)):
            speaker, emotion = path.split(os.sep)[-3:-1]
            rows["casia"].append((_mfcc_stats(path, mfcc), emotion, speaker))
    return {
        corpus: tuple(
            np.array(column) for column in zip(*corpus_rows, strict=True)
        )
        for corpus, corpus_rows in rows.items()
    }


def _classifier():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))


def test_iemocap_learnable_on_held_out_session(features):
    x, y, speaker = features["iemocap"]
    test = np.char.startswith(speaker.astype(str), "5")
    model = _classifier().fit(x[~test], y[~test])
    accuracy = np.mean(model.predict(x[test]) == y[test])
    assert accuracy > 2 * (1 / 4)


def test_casia_learnable_on_held_out_speaker(features):
    x, y, speaker = features["casia"]
    accuracies = []
    for held_out in np.unique(speaker):
        test = speaker == held_out
        model = _classifier().fit(x[~test], y[~test])
        accuracies.append(np.mean(model.predict(x[test]) == y[test]))
    assert min(accuracies) > 1 / 6
    assert np.mean(accuracies) > 2 * (1 / 6)


@pytest.mark.parametrize("train,test", [("iemocap", "casia"),
                                        ("casia", "iemocap")])  # fmt: skip
def test_emotions_transfer_across_corpora(features, train, test):
    def shared_part(corpus):
        x, y, _ = features[corpus]
        keep = np.isin(y, SHARED)
        return x[keep], y[keep]

    model = _classifier().fit(*shared_part(train))
    x_test, y_test = shared_part(test)
    assert np.mean(model.predict(x_test) == y_test) > 2 * (1 / len(SHARED))


def test_real_readers_and_speaker_folds(corpora, tmp_path):
    iemocap = pytest.importorskip("speechbrain_sercl.data.iemocap")
    casia = pytest.importorskip("speechbrain_sercl.data.casia")
    expected = {
        "iemocap": (iemocap.prepare_iemocap, 10 * 4 * PER_CLASS, SHARED, 10),
        "casia": (casia.prepare_casia, 4 * 6 * PER_CLASS, CASIA_EMOTIONS, 4),
    }
    for corpus, (prepare, count, emotions, speakers) in expected.items():
        save_folder = str(tmp_path / corpus)
        prepare(corpora[corpus], save_folder)
        manifest_path = os.path.join(save_folder, "manifest.json")
        with open(manifest_path) as handle:
            manifest = json.load(handle)
        assert len(manifest) == count, corpus
        assert {e["emotion"] for e in manifest.values()} == set(emotions)
        assert len({e["speaker"] for e in manifest.values()}) == speakers
        folds = load_or_create_folds(manifest_path, "speaker")
        groups = {}
        for utt_id, fold in folds.items():
            groups.setdefault(fold, set()).add(manifest[utt_id]["session"])
        assert len(groups) == (5 if corpus == "iemocap" else 4)
        assert all(len(sessions) == 1 for sessions in groups.values())


def test_prepare_synthetic_reuses_corpora_and_checks_folder(corpora, tmp_path):
    root = os.path.dirname(corpora["casia"])
    options = {"utterances_per_speaker_emotion": PER_CLASS, "progress": False}
    save_folder = str(tmp_path / "casia")
    prepare_synthetic(corpora["casia"], save_folder, "casia", root, **options)
    with open(os.path.join(save_folder, "manifest.json")) as handle:
        manifest = json.load(handle)
    assert len(manifest) == 4 * 6 * PER_CLASS
    assert all(e["wav"].startswith(corpora["casia"]) for e in manifest.values())
    with pytest.raises(ValueError, match="data_folder .* is not where"):
        prepare_synthetic(
            corpora["iemocap"], save_folder, "casia", root, **options
        )
    with pytest.raises(ValueError, match="corpus must be one of"):
        prepare_synthetic(corpora["casia"], save_folder, "msp", root, **options)


# EmoDB's letters, written out here: the five with a synthetic profile.
EMODB_LETTERS = {"W": "angry", "A": "fear", "F": "happy", "T": "sad"}
EMODB_LETTERS["N"] = "neutral"
EMODB_SPEAKERS = ("03", "08", "09", "10", "11", "12", "13", "14", "15", "16")


def test_synthetic_emodb_is_read_by_the_real_reader(tmp_path):
    """Every file has an EmoDB release name; the EmoDB reader keeps all of
    them, with the letter's emotion and the name's speaker, in five speaker
    groups of two."""
    from speechbrain_sercl.data.corpora import number_of_classes

    per_class = 2
    data_folder = str(tmp_path / "data" / "EmoDB")
    save_folder = str(tmp_path / "prepared")
    prepare_synthetic(
        data_folder, save_folder, "emodb", seed=0,
        utterances_per_speaker_emotion=per_class, progress=False,
    )  # fmt: skip
    names = sorted(os.listdir(os.path.join(data_folder, "wav")))
    assert len(names) == 10 * 5 * per_class
    pattern = re.compile(r"^(\d\d)(a0[1-7]|b0[1-9]|b10)([WAFTN])([a-z])\.wav$")
    assert all(pattern.match(name) for name in names), names[:3]
    with open(os.path.join(save_folder, "manifest.json")) as handle:
        manifest = json.load(handle)
    assert len(manifest) == len(names)
    for utt_id, entry in manifest.items():
        speaker, letter = utt_id[len("emodb_") :][:2], utt_id[-2]
        assert entry["speaker"] == speaker and speaker in EMODB_SPEAKERS
        assert entry["emotion"] == EMODB_LETTERS[letter]
        info = soundfile.info(entry["wav"])
        assert info.samplerate == 16000 and info.channels == 1
    assert number_of_classes("synthetic_emodb") == 5
    folds = load_or_create_folds(
        os.path.join(save_folder, "manifest.json"), "speaker"
    )
    speakers_by_fold = {}
    for utt_id, fold in folds.items():
        speaker = manifest[utt_id]["speaker"]
        speakers_by_fold.setdefault(fold, set()).add(speaker)
    assert sorted(map(len, speakers_by_fold.values())) == [2] * 5


def test_a_random_profile_mixture_is_a_symmetric_convex_mixture():
    """Each field is a convex combination of the emotions' values with
    weights that favour no emotion: a field equal in every emotion stays
    put, and the mean over many draws is the plain mean of the profiles."""
    profiles = {
        "a": {"rate": 1.0, "pitch": 2.0},
        "b": {"rate": 4.0, "pitch": 2.0},
        "c": {"rate": 10.0, "pitch": 2.0},
    }
    rng = np.random.default_rng(0)
    draws = [random_profile_mixture(profiles, rng) for _ in range(20000)]
    rates = np.array([draw["rate"] for draw in draws], dtype=np.float64)
    assert all(draw.keys() == {"rate", "pitch"} for draw in draws)
    np.testing.assert_allclose([d["pitch"] for d in draws], 2.0, rtol=1e-12)
    assert rates.min() >= 1.0 and rates.max() <= 10.0
    assert rates.std() > 1.0
    assert abs(rates.mean() - (1.0 + 4.0 + 10.0) / 3) < 0.1
