"""Tests for ``push_to_hub`` and ``sercl push`` against a fake ``HfApi``.

Nothing here reaches the Hub: the fake records every call and its
arguments, and raises what ``huggingface_hub`` raises for a repository that
already exists (a 409 response through ``hf_raise_for_status``).
"""

import time
import types
from pathlib import Path

import httpx2
import huggingface_hub
import pytest
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import filter_repo_objects, hf_raise_for_status

from speechbrain_sercl.cli import main
from speechbrain_sercl.inference import hub
from speechbrain_sercl.inference.export import (
    EXPORT_FILES,
    HPARAMS_FILE,
    InvalidExportError,
    inference_hparams,
)
from speechbrain_sercl.inference.hub import PushError, push_to_hub

REPO_ID = "you/emotion"
TOKEN = "hf_test_token"


class FakeHfApi:
    """Records each call as ``(name, args, kwargs)``; talks to no one.

    Arguments
    ---------
    existing : set of str
        Repository ids that already exist: ``create_repo`` raises for them
        as ``HfApi`` does, unless ``exist_ok``.
    """

    def __init__(self, existing=()):
        self.existing = set(existing)
        self.calls = []
        self.uploaded = None

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", (repo_id,), kwargs))
        if repo_id in self.existing and not kwargs.get("exist_ok"):
            hf_raise_for_status(_conflict())
        return f"https://huggingface.co/{repo_id}"

    def create_branch(self, repo_id, **kwargs):
        self.calls.append(("create_branch", (repo_id,), kwargs))

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", (), kwargs))
        # The files HfApi would send: its own filter on the relative paths.
        folder = Path(kwargs["folder_path"])
        files = [
            path.relative_to(folder).as_posix()
            for path in sorted(folder.glob("**/*"))
            if path.is_file()
        ]
        self.uploaded = list(
            filter_repo_objects(files, allow_patterns=kwargs["allow_patterns"])
        )
        return types.SimpleNamespace(
            commit_url=f"https://huggingface.co/{REPO_ID}/commit/abc123",
            oid="abc123",
        )


def _conflict():
    """The Hub's answer when a repository of that name exists."""
    request = httpx2.Request("POST", "https://huggingface.co/api/repos/create")
    return httpx2.Response(
        409,
        request=request,
        json={"error": "You already created this model repo"},
    )


def write_export(folder):
    """An export folder that ``validate_export`` accepts, plus stray files."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in EXPORT_FILES:
        (folder / name).write_text("placeholder\n")
    config = {"model_type": "wavlm", "hidden_size": 8}
    (folder / HPARAMS_FILE).write_text(
        inference_hparams(config, {"sampling_rate": 16000}, 4, 16)
    )
    (folder / "notes.txt").write_text("not for publication\n")
    (folder / "save").mkdir()
    (folder / "save" / "classifier.ckpt").write_text("a training checkpoint\n")
    return folder


def _names(api):
    return [name for name, _, _ in api.calls]


@pytest.fixture
def export_folder(tmp_path):
    return write_export(tmp_path / "export")


@pytest.fixture
def no_token(monkeypatch):
    """No token anywhere: neither HF_TOKEN nor a saved login."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)


def test_push_creates_the_repo_then_uploads_the_export_files(export_folder):
    api = FakeHfApi()
    commit = push_to_hub(export_folder, REPO_ID, token=TOKEN, api=api)
    assert api.calls == [
        (
            "create_repo",
            (REPO_ID,),
            {
                "private": False,
                "exist_ok": False,
                "repo_type": "model",
                "token": TOKEN,
            },
        ),
        (
            "upload_folder",
            (),
            {
                "folder_path": str(export_folder),
                "repo_id": REPO_ID,
                "repo_type": "model",
                "revision": None,
                "commit_message": api.calls[1][2]["commit_message"],
                "allow_patterns": list(EXPORT_FILES),
                "token": TOKEN,
            },
        ),
    ]
    assert "speechbrain-sercl" in api.calls[1][2]["commit_message"]
    # notes.txt and save/classifier.ckpt stay home.
    assert sorted(api.uploaded) == sorted(EXPORT_FILES)
    assert commit.oid == "abc123"


def test_push_to_a_revision_creates_the_branch(export_folder):
    api = FakeHfApi()
    push_to_hub(
        export_folder,
        REPO_ID,
        private=True,
        revision="fold-0",
        exist_ok=True,
        token=TOKEN,
        api=api,
    )
    assert _names(api) == ["create_repo", "create_branch", "upload_folder"]
    _, _, create = api.calls[0]
    assert create["private"] is True and create["exist_ok"] is True
    assert api.calls[1] == (
        "create_branch",
        (REPO_ID,),
        {
            "branch": "fold-0",
            "repo_type": "model",
            "exist_ok": True,
            "token": TOKEN,
        },
    )
    _, _, upload = api.calls[2]
    assert upload["revision"] == "fold-0"
    assert upload["repo_id"] == REPO_ID


def test_push_takes_the_saved_token(export_folder, monkeypatch):
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_saved")
    api = FakeHfApi()
    push_to_hub(export_folder, REPO_ID, api=api)
    assert {kwargs["token"] for _, _, kwargs in api.calls} == {"hf_saved"}


def _missing_file(folder):
    (folder / "pooling.ckpt").unlink()
    return "pooling.ckpt is missing"


def _empty_file(folder):
    (folder / "label_encoder.ckpt").write_text("")
    return "label_encoder.ckpt is empty"


def _not_an_export(folder):
    with open(folder / HPARAMS_FILE, "a") as stream:
        stream.write("probe: !apply:os.system [ls]\n")
    return "probe: !apply:os.system is not in an export"


@pytest.mark.parametrize("spoil", [_missing_file, _empty_file, _not_an_export])
def test_invalid_folder_stops_before_any_call(export_folder, spoil):
    problem = spoil(export_folder)
    api = FakeHfApi()
    with pytest.raises(InvalidExportError, match=problem):
        push_to_hub(export_folder, REPO_ID, token=TOKEN, api=api)
    assert api.calls == []


def test_missing_token_stops_before_any_call(export_folder, no_token):
    api = FakeHfApi()
    with pytest.raises(PushError, match="hf auth login.*HF_TOKEN"):
        push_to_hub(export_folder, REPO_ID, api=api)
    assert api.calls == []


def test_invalid_repo_id_stops_before_any_call(export_folder):
    api = FakeHfApi()
    with pytest.raises(ValueError, match="Repo id must be"):
        push_to_hub(export_folder, "you/emotion/extra", token=TOKEN, api=api)
    assert api.calls == []


def test_existing_repo_needs_exist_ok(export_folder):
    api = FakeHfApi(existing={REPO_ID})
    with pytest.raises(PushError, match="already exists.*--exist-ok") as info:
        push_to_hub(export_folder, REPO_ID, token=TOKEN, api=api)
    assert isinstance(info.value.__cause__, HfHubHTTPError)
    assert _names(api) == ["create_repo"]

    push_to_hub(export_folder, REPO_ID, exist_ok=True, token=TOKEN, api=api)
    assert _names(api) == ["create_repo", "create_repo", "upload_folder"]


def test_other_hub_errors_pass_through(export_folder):
    api = FakeHfApi()

    def forbidden(repo_id, **kwargs):
        request = httpx2.Request("POST", "https://huggingface.co/api/repos")
        hf_raise_for_status(httpx2.Response(403, request=request))

    api.create_repo = forbidden
    with pytest.raises(HfHubHTTPError) as info:
        push_to_hub(export_folder, REPO_ID, token=TOKEN, api=api)
    assert not isinstance(info.value, PushError)


@pytest.fixture
def cli_api(monkeypatch):
    """The fake that ``sercl push`` gets instead of ``HfApi``."""
    api = FakeHfApi(existing={"you/taken"})
    tokens = []

    def make_api(token=None):
        tokens.append(token)
        return api

    monkeypatch.setattr(hub, "HfApi", make_api)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: TOKEN)
    api.tokens = tokens
    return api


def test_cli_push(export_folder, cli_api, capsys):
    argv = ["push", str(export_folder), "--repo-id", REPO_ID, "--private"]
    assert main(argv) == 0
    assert cli_api.tokens == [TOKEN]
    assert _names(cli_api) == ["create_repo", "upload_folder"]
    assert cli_api.calls[0][2]["private"] is True
    upload = cli_api.calls[1][2]
    assert upload["folder_path"] == str(export_folder)
    assert upload["allow_patterns"] == list(EXPORT_FILES)
    output = capsys.readouterr().out
    assert f"https://huggingface.co/{REPO_ID}\n" in output
    assert f'EncoderClassifier.from_hparams(source="{REPO_ID}")' in output
    assert "sources you trust" in output


def test_cli_push_to_a_revision(export_folder, cli_api, capsys):
    argv = [
        "push",
        str(export_folder),
        f"--repo-id={REPO_ID}",
        "--revision",
        "fold-0",
        "--exist-ok",
    ]
    assert main(argv) == 0
    assert _names(cli_api) == ["create_repo", "create_branch", "upload_folder"]
    assert cli_api.calls[0][2]["exist_ok"] is True
    assert cli_api.calls[2][2]["revision"] == "fold-0"
    output = capsys.readouterr().out
    assert f"https://huggingface.co/{REPO_ID}/tree/fold-0" in output
    assert 'FetchConfig(revision="fold-0")' in output


def _one_line_error(capsys):
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sercl push: error: ")
    return lines[0]


def test_cli_push_errors_are_one_line(export_folder, cli_api, capsys):
    (export_folder / "ssl.ckpt").unlink()
    assert main(["push", str(export_folder), "--repo-id", REPO_ID]) == 1
    assert "ssl.ckpt is missing" in _one_line_error(capsys)
    assert cli_api.calls == []

    write_export(export_folder.parent / "other")
    argv = ["push", str(export_folder.parent / "other"), "--repo-id"]
    assert main([*argv, "you/taken"]) == 1
    assert "--exist-ok" in _one_line_error(capsys)
    assert _names(cli_api) == ["create_repo"]


def test_cli_push_hub_refusal_is_one_line(export_folder, cli_api, capsys):
    def forbidden(repo_id, **kwargs):
        request = httpx2.Request("POST", "https://huggingface.co/api/repos")
        body = {"error": "You don't have the rights to create a model"}
        hf_raise_for_status(httpx2.Response(403, request=request, json=body))

    cli_api.create_repo = forbidden
    assert main(["push", str(export_folder), "--repo-id", REPO_ID]) == 1
    line = _one_line_error(capsys)
    assert "403 Forbidden" in line and "don't have the rights" in line


def test_cli_push_without_token(export_folder, cli_api, no_token, capsys):
    assert main(["push", str(export_folder), "--repo-id", REPO_ID]) == 1
    assert "HF_TOKEN" in _one_line_error(capsys)
    assert cli_api.calls == []


def test_cli_push_needs_a_repo_id(export_folder, cli_api):
    with pytest.raises(SystemExit) as info:
        main(["push", str(export_folder)])
    assert info.value.code == 2
    assert cli_api.calls == []


@pytest.fixture
def offline_hub(monkeypatch):
    """The real ``HfApi`` on a network that answers only what the test
    lets through (``answers``: path -> JSON); every other request fails as
    httpx fails without a network. ``failed`` records those requests."""
    from huggingface_hub.utils._http import default_client_factory

    hub_state = types.SimpleNamespace(answers={}, failed=[])

    def handler(request):
        if request.url.path in hub_state.answers:
            return httpx2.Response(
                200, json=hub_state.answers[request.url.path]
            )
        hub_state.failed.append(str(request.url))
        raise httpx2.ConnectError(
            "[Errno -3] Temporary failure in name resolution", request=request
        )

    huggingface_hub.set_client_factory(
        lambda: httpx2.Client(transport=httpx2.MockTransport(handler))
    )
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: TOKEN)
    monkeypatch.setattr(time, "sleep", lambda seconds: None)  # no backoff
    yield hub_state
    huggingface_hub.set_client_factory(default_client_factory)


NO_NETWORK = "ConnectError: [Errno -3] Temporary failure in name resolution"


def test_cli_push_without_network_is_one_line(
    export_folder, offline_hub, capsys
):
    assert main(["push", str(export_folder), "--repo-id", REPO_ID]) == 1
    create = f"{huggingface_hub.constants.ENDPOINT}/api/repos/create"
    assert create in offline_hub.failed
    assert _one_line_error(capsys) == (
        f"sercl push: error: no answer from {create} ({NO_NETWORK}): could "
        f"not create {REPO_ID}"
    )


def test_cli_push_cut_after_creating_names_the_repository(
    export_folder, offline_hub, capsys
):
    offline_hub.answers["/api/repos/create"] = {
        "url": f"https://huggingface.co/{REPO_ID}",
        "name": REPO_ID,
    }
    assert main(["push", str(export_folder), "--repo-id", REPO_ID]) == 1
    assert _one_line_error(capsys) == (
        f"sercl push: error: no answer from {offline_hub.failed[-1]} "
        f"({NO_NETWORK}): {REPO_ID} was created by this push and is left "
        "empty; rerun with --exist-ok to upload into it"
    )


def _timed_out(**kwargs):
    request = httpx2.Request("POST", "https://huggingface.co/api/upload")
    raise httpx2.ReadTimeout("The read operation timed out", request=request)


def _refused(**kwargs):
    request = httpx2.Request("POST", "https://huggingface.co/api/upload")
    hf_raise_for_status(httpx2.Response(403, request=request))


@pytest.mark.parametrize(
    ("exist_ok", "upload", "expected"),
    [
        (
            True,
            _timed_out,
            "no answer from https://huggingface.co/api/upload (ReadTimeout: "
            "The read operation timed out): nothing was committed to "
            + REPO_ID,
        ),
        (
            False,
            _refused,
            "the Hub refused: 403 Forbidden",
        ),
    ],
)
def test_a_push_cut_after_the_repository_says_what_it_left(
    export_folder, exist_ok, upload, expected
):
    api = FakeHfApi()
    api.upload_folder = upload
    with pytest.raises(PushError) as failed:
        push_to_hub(
            export_folder, REPO_ID, exist_ok=exist_ok, token=TOKEN, api=api
        )
    message = str(failed.value)
    assert message.startswith(expected)
    assert "\n" not in message
    if not exist_ok:
        assert message.endswith(
            f": {REPO_ID} was created by this push and is left empty; rerun "
            "with --exist-ok to upload into it"
        )
    assert _names(api) == ["create_repo"]
