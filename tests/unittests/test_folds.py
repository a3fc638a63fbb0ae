"""Tests of the cross-validation folds (protocols, disk reuse, splits)."""

import json
import os
import random
from collections import Counter

import pytest

from speechbrain_sercl.data.folds import (
    FoldsMismatchError,
    folds_path,
    load_or_create_folds,
    make_folds,
    n_folds_of,
    run_split,
    select_run,
    write_folds,
)
from speechbrain_sercl.layout import FINAL_RUN

IEMOCAP_EMOTIONS = ("neutral", "happy", "sad", "angry")
CASIA_EMOTIONS = ("angry", "fear", "happy", "neutral", "sad", "surprise")


def iemocap_like(per_speaker=24, seed=0):
    """5 sessions x F/M; both genders speak in F and M dialogs."""
    rng = random.Random(seed)
    manifest = {}
    for session in range(1, 6):
        for gender in "FM":
            for index in range(per_speaker):
                dialog = f"Ses0{session}{'FM'[index % 2]}_impro0{index % 3}"
                manifest[f"{dialog}_{gender}{index:03d}"] = {
                    "wav": f"/data/{dialog}_{gender}{index:03d}.wav",
                    "duration": 1.5,
                    "emotion": rng.choice(IEMOCAP_EMOTIONS),
                    "corpus": "iemocap",
                    "speaker": f"Ses0{session}{gender}",
                    "session": f"Session{session}",
                }
    return manifest


def casia_like(per_class=5):
    """4 speakers x 6 emotions; CASIA's session is its speaker."""
    return {
        f"casia_{speaker}_{emotion}_{201 + index}": {
            "wav": f"/data/{speaker}/{emotion}/{201 + index}.wav",
            "duration": 1.2,
            "emotion": emotion,
            "corpus": "casia",
            "speaker": speaker,
            "session": speaker,
        }
        for speaker in ("liuchanhg", "wangzhe", "zhaoquanyin", "ZhaoZuoxiang")
        for emotion in CASIA_EMOTIONS
        for index in range(per_class)
    }


def uneven_classes():
    """Two corpora, classes of 23, 17, 9, 3 and 11, 2 utterances."""
    sizes = {("a", "happy"): 23, ("a", "sad"): 17, ("a", "angry"): 9,
             ("a", "fear"): 3, ("b", "happy"): 11, ("b", "sad"): 2}  # fmt: skip
    return {
        f"{corpus}_{emotion}_{i}": {
            "emotion": emotion,
            "corpus": corpus,
            "speaker": f"{corpus}{i}",
        }  # fmt: skip
        for (corpus, emotion), size in sizes.items()
        for i in range(size)
    }


def fold_members(folds, manifest, key):
    """``{fold: set of manifest[utt][key]}``."""
    members = {}
    for utt_id, fold in folds.items():
        members.setdefault(fold, set()).add(manifest[utt_id][key])
    return members


def test_speaker_folds_iemocap_leave_one_session_out():
    manifest = iemocap_like()
    folds = make_folds(manifest, "speaker")
    assert set(folds) == set(manifest)
    sessions = fold_members(folds, manifest, "session")
    assert len(sessions) == 5
    assert all(len(names) == 1 for names in sessions.values())
    assert set.union(*sessions.values()) == {f"Session{s}" for s in range(1, 6)}
    speakers = fold_members(folds, manifest, "speaker")
    for fold, names in speakers.items():
        others = set.union(*(n for f, n in speakers.items() if f != fold))
        assert names.isdisjoint(others)


def test_speaker_folds_casia_leave_one_speaker_out():
    manifest = casia_like()
    folds = make_folds(manifest, "speaker")
    speakers = fold_members(folds, manifest, "speaker")
    assert len(speakers) == 4 and n_folds_of(folds) == 4
    assert all(len(names) == 1 for names in speakers.values())


def test_speaker_grouping_rules():
    forced = make_folds(iemocap_like(), "speaker", group_by="speaker")
    speakers = fold_members(forced, iemocap_like(), "speaker")
    assert len(speakers) == 10
    assert all(len(names) == 1 for names in speakers.values())
    no_sessions = casia_like()
    for entry in no_sessions.values():
        del entry["session"]
    assert n_folds_of(make_folds(no_sessions, "speaker")) == 4
    with pytest.raises(ValueError, match="group_by"):
        make_folds(casia_like(), "speaker", group_by="dialog")


def test_one_single_speaker_session_groups_the_corpus_by_speaker(tmp_path):
    """Session folds need every session to hold two speakers or more.

    Session1 holds two speakers, Session2 one: a session fold would test
    Session2's speaker alone while Session1's two speakers share a fold,
    so the corpus is grouped by speaker, one fold per speaker in name
    order (written out here by hand). Every session with two speakers:
    one fold per session.
    """
    speakers = {"Session1": ("S1F", "S1M"), "Session2": ("S2F",)}
    manifest = {
        f"{speaker}_{index}": {
            "wav": f"/data/{speaker}_{index}.wav",
            "emotion": IEMOCAP_EMOTIONS[index],
            "corpus": "mixed",
            "speaker": speaker,
            "session": session,
        }
        for session, names in speakers.items()
        for speaker in names
        for index in range(2)
    }
    by_speaker = {
        "S1F_0": 0, "S1F_1": 0, "S1M_0": 1, "S1M_1": 1, "S2F_0": 2, "S2F_1": 2,
    }  # fmt: skip
    assert make_folds(manifest, "speaker") == by_speaker
    manifest_file = tmp_path / "manifest.json"
    manifest_file.write_text(json.dumps(manifest))
    assert load_or_create_folds(str(manifest_file), "speaker") == by_speaker

    manifest["S2M_0"] = {**manifest["S2F_0"], "speaker": "S2M"}
    by_session = {utt: int(utt[1] == "2") for utt in manifest}
    assert by_session["S1M_1"] == 0 and by_session["S2M_0"] == 1
    assert make_folds(manifest, "speaker") == by_session


def test_paper_folds_stratified_and_cover_everything_once():
    manifest = uneven_classes()
    k = 5
    folds = make_folds(manifest, "paper", n_folds=k, seed=3)
    assert sorted(folds) == sorted(manifest)
    assert set(folds.values()) == set(range(k))
    classes = Counter((e["corpus"], e["emotion"]) for e in manifest.values())
    per_fold = Counter(
        (manifest[u]["corpus"], manifest[u]["emotion"], fold)
        for u, fold in folds.items()
    )
    for (corpus, emotion), size in classes.items():
        for fold in range(k):
            count = per_fold[(corpus, emotion, fold)]
            assert abs(count - size / k) < 1, (corpus, emotion, fold)
    for corpus in ("a", "b"):
        sizes = Counter(
            fold for u, fold in folds.items() if manifest[u]["corpus"] == corpus
        )
        assert max(sizes.values()) - min(sizes.values()) <= 1


def test_paper_folds_reproducible_by_seed():
    manifest = iemocap_like()
    first = make_folds(manifest, "paper", n_folds=5, seed=11)
    assert make_folds(manifest, "paper", n_folds=5, seed=11) == first
    assert make_folds(manifest, "paper", n_folds=5, seed=12) != first
    shuffled = dict(random.Random(0).sample(sorted(manifest.items()), 240))
    assert make_folds(shuffled, "paper", n_folds=5, seed=11) == first


def test_bad_requests_are_named():
    with pytest.raises(ValueError, match="protocol"):
        make_folds(casia_like(), "random")
    with pytest.raises(ValueError, match="'u1' has no 'emotion'"):
        make_folds({"u0": {"emotion": "sad"}, "u1": {}}, "paper", n_folds=2)
    with pytest.raises(ValueError, match="fewer than n_folds=5"):
        make_folds({"u": {"emotion": "sad"}}, "paper")
    with pytest.raises(ValueError, match="n_folds"):
        make_folds(casia_like(), "paper", n_folds=1)
    one_speaker = {"u": {"emotion": "sad", "speaker": "s", "session": "s"}}
    with pytest.raises(ValueError, match="single speaker"):
        make_folds(one_speaker, "speaker")
    with pytest.raises(ValueError, match="per corpus"):
        make_folds({**iemocap_like(), **casia_like()}, "speaker")


def test_run_split_never_tests_on_training_data():
    folds = make_folds(casia_like(), "paper", n_folds=3, seed=0)
    for run in range(7):
        train_ids, test_ids = run_split(folds, run)
        assert set(train_ids).isdisjoint(test_ids)
        assert sorted(train_ids + test_ids) == sorted(folds)
        assert {folds[u] for u in test_ids} == {run % 3}
        assert all(folds[u] != run % 3 for u in train_ids)


def test_run_index_modulo_fold_count_across_corpora():
    iemocap = make_folds(iemocap_like(), "speaker")
    casia = make_folds(casia_like(), "speaker")
    assert (n_folds_of(iemocap), n_folds_of(casia)) == (5, 4)
    expected = {0: (0, 0), 4: (4, 0), 5: (0, 1), 7: (2, 3), 19: (4, 3)}
    for run, (iemocap_fold, casia_fold) in expected.items():
        _, iemocap_test = run_split(iemocap, run)
        _, casia_test = run_split(casia, run)
        assert {iemocap[u] for u in iemocap_test} == {iemocap_fold}
        assert {casia[u] for u in casia_test} == {casia_fold}


@pytest.mark.parametrize("protocol", ["paper", "speaker"])
def test_the_final_run_trains_on_every_utterance_and_tests_none(protocol):
    manifest = iemocap_like()
    folds = make_folds(manifest, protocol, n_folds=5, seed=0)
    train_ids, test_ids = run_split(folds, FINAL_RUN)
    assert train_ids == sorted(manifest) and test_ids == []
    # Exactly the union of any fold's two parts.
    assert train_ids == sorted(sum(run_split(folds, 2), []))


def test_select_run_writes_the_final_split(tmp_path):
    manifests = {"iemocap": iemocap_like(), "casia": casia_like()}
    prepared = {}
    for corpus, manifest in manifests.items():
        path = tmp_path / f"{corpus}.json"
        path.write_text(json.dumps(manifest))
        prepared[corpus] = (str(path), make_folds(manifest, "speaker"))
    split = select_run(prepared, FINAL_RUN, str(tmp_path))
    written = json.loads((tmp_path / "fold_split.json").read_text())
    for corpus, manifest in manifests.items():
        assert split.train(corpus) == sorted(manifest)
        assert split.test(corpus) == []
        assert written[corpus] == {"train": sorted(manifest), "test": []}
    assert sorted(split.train()) == sorted(split.manifest)
    assert split.test() == []


def test_fold_count_and_run_index_errors():
    assert n_folds_of({"a": 1, "b": 0}) == 2
    with pytest.raises(ValueError, match="none empty"):
        n_folds_of({"a": 0, "b": 2})
    with pytest.raises(ValueError, match="empty"):
        n_folds_of({})
    for run in (-1, "last", "0", True, 1.0):
        with pytest.raises(ValueError, match="run index"):
            run_split({"a": 0, "b": 1}, run)


@pytest.fixture
def manifest_path(tmp_path):
    path = tmp_path / "iemocap" / "manifest.json"
    path.parent.mkdir()
    path.write_text(json.dumps(iemocap_like()))
    return str(path)


def edit_manifest(path, change):
    with open(path) as handle:
        manifest = json.load(handle)
    change(manifest)
    with open(path, "w") as handle:
        json.dump(manifest, handle)


def test_folds_written_next_to_manifest_and_reused(manifest_path):
    folds = load_or_create_folds(manifest_path, "paper", n_folds=5, seed=7)
    path = os.path.join(os.path.dirname(manifest_path), "folds_paper.json")
    assert folds_path(manifest_path, "paper") == path
    with open(path) as handle:
        record = json.load(handle)
    assert (record["protocol"], record["seed"], record["n_folds"]) == (
        "paper", 7, 5,
    )  # fmt: skip
    assert record["assignment"] == folds
    # Reuse, not recomputation: a hand-edited assignment is what comes back.
    swapped = dict(folds)
    first, second = sorted(u for u in folds if folds[u] in (0, 1))[:2]
    swapped[first], swapped[second] = 1 - folds[first], 1 - folds[second]
    record["assignment"] = swapped
    with open(path, "w") as handle:
        json.dump(record, handle)
    again = load_or_create_folds(manifest_path, "paper", n_folds=5, seed=7)
    assert again == swapped != folds


def test_manifest_hash_tracks_ids_and_emotions_only(manifest_path):
    load_or_create_folds(manifest_path, "paper")
    path = folds_path(manifest_path, "paper")
    with open(path) as handle:
        original = json.load(handle)["manifest_hash"]
    with open(manifest_path) as handle:
        manifest = json.load(handle)
    moved = {u: {**e, "wav": "/elsewhere.wav"} for u, e in manifest.items()}
    reordered = dict(reversed(list(moved.items())))
    write_folds(path, original_folds(path), "paper", 5, 1234, reordered)
    with open(path) as handle:
        assert json.load(handle)["manifest_hash"] == original
    relabelled = dict(manifest)
    first = sorted(manifest)[0]
    relabelled[first] = {**manifest[first], "emotion": "fear"}
    write_folds(path, original_folds(path), "paper", 5, 1234, relabelled)
    with open(path) as handle:
        assert json.load(handle)["manifest_hash"] != original


def original_folds(path):
    with open(path) as handle:
        return json.load(handle)["assignment"]


def first_id(manifest):
    return sorted(manifest)[0]


@pytest.mark.parametrize(
    "change,request_,message",
    [
        (
            lambda m: m.update(new_utt=dict(m[first_id(m)])),
            {},
            "ids added.*new_utt",
        ),
        (lambda m: m.pop(first_id(m)), {}, "ids removed.*Ses01F_impro00_F000"),
        (
            lambda m: m[first_id(m)].update(emotion="fear"),
            {},
            "labels changed: 1 \\(Ses01F_impro00_F000\\)",
        ),
        (None, {"seed": 99}, "seed is 1234, requested 99"),
        (None, {"n_folds": 4}, "n_folds is 5, requested 4"),
    ],
)
def test_paper_disagreements_raise(manifest_path, change, request_, message):
    load_or_create_folds(manifest_path, "paper")
    path = folds_path(manifest_path, "paper")
    with open(path, "rb") as handle:
        before = handle.read()
    if change:
        edit_manifest(manifest_path, change)
    with pytest.raises(FoldsMismatchError, match=message) as error:
        load_or_create_folds(manifest_path, "paper", **request_)
    assert path in str(error.value)
    with open(path, "rb") as handle:
        assert handle.read() == before


def test_speaker_disagreements_raise(manifest_path):
    folds = load_or_create_folds(manifest_path, "speaker", n_folds=3)
    assert n_folds_of(folds) == 5
    assert load_or_create_folds(manifest_path, "speaker", seed=9) == folds
    with pytest.raises(FoldsMismatchError, match="requested 'speaker'"):
        load_or_create_folds(manifest_path, "speaker", group_by="speaker")

    def move_to_session_2(manifest):
        manifest[first_id(manifest)]["session"] = "Session2"

    edit_manifest(manifest_path, move_to_session_2)
    with pytest.raises(
        FoldsMismatchError, match="'Session2'.*folds \\[0, 1\\]"
    ):
        load_or_create_folds(manifest_path, "speaker")


def test_unreadable_files_are_named(tmp_path):
    missing = str(tmp_path / "manifest.json")
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        load_or_create_folds(missing, "paper")
    (tmp_path / "manifest.json").write_text(json.dumps(casia_like()))
    (tmp_path / "folds_paper.json").write_text("{not json")
    with pytest.raises(ValueError, match="folds_paper.json is not valid JSON"):
        load_or_create_folds(missing, "paper")


def test_write_folds_checks_its_input(tmp_path):
    manifest = casia_like()
    folds = make_folds(manifest, "paper", n_folds=5)
    path = str(tmp_path / "folds_paper.json")
    with pytest.raises(ValueError, match="cover exactly"):
        write_folds(
            path, dict(list(folds.items())[1:]), "paper", 5, 0, manifest
        )
    with pytest.raises(ValueError, match="n_folds=4"):
        write_folds(path, folds, "paper", 4, 0, manifest)
    assert not os.path.exists(path)
