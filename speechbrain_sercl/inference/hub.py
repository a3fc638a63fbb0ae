"""Publishing an inference folder on the Hugging Face Hub.

:func:`push_to_hub` checks a folder written by ``sercl export`` with
:func:`~speechbrain_sercl.inference.export.validate_export`, finds a token,
creates the model repository (and the branch, with a revision) and uploads the
files of
:data:`~speechbrain_sercl.inference.export.EXPORT_FILES`, and only those.
Everything is checked before the first request. Then, from anywhere:

    from speechbrain.inference.classifiers import EncoderClassifier
    classifier = EncoderClassifier.from_hparams(source="<user>/<name>")

Loading instantiates the classes named in ``hyperparams.yaml``: load models
only from sources you trust.

Authors
 * speechbrain-sercl developers
"""

import os
from urllib.parse import quote

import httpx2  # what huggingface_hub (>= 2) sends its requests with
import huggingface_hub
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import validate_repo_id

from speechbrain_sercl import __version__ as VERSION
from speechbrain_sercl.inference.export import EXPORT_FILES, validate_export

__all__ = ["PushError", "loading_code", "model_url", "push_to_hub"]


# A request that got no answer: no network, a timeout, offline mode
# (huggingface_hub's OfflineModeIsEnabled is a ConnectionError).
_NETWORK_ERRORS = (httpx2.TransportError, ConnectionError)


class PushError(RuntimeError):
    """A push that cannot go on or did not finish: no token, a repository
    already there, no answer from the Hub (the message names the address,
    and a repository the push created)."""


def push_to_hub(
    folder,
    repo_id,
    private=False,
    revision=None,
    exist_ok=False,
    token=None,
    api=None,
):
    """Upload an inference folder to a model repository of the Hub.

    Arguments
    ---------
    folder : str or os.PathLike
        A folder written by ``sercl export``.
    repo_id : str
        ``"user/name"`` (or ``"organisation/name"``).
    private : bool
        Create the repository private. An existing repository keeps its
        visibility.
    revision : str, optional
        The branch to upload to, created from ``main`` if needed (default:
        ``main``).
    exist_ok : bool
        Upload into a repository that already exists (a new commit: files of
        the same name are replaced, others are kept). Without it, an
        existing repository is an error.
    token : str, optional
        A Hugging Face token with write access (default: ``HF_TOKEN``, else
        the one saved by ``hf auth login``).
    api : huggingface_hub.HfApi, optional
        The client to use (default: a new ``HfApi`` with the token).

    Returns
    -------
    huggingface_hub.CommitInfo
        What ``HfApi.upload_folder`` returns (``commit_url``, ``oid``).

    Raises
    ------
    InvalidExportError
        If the folder is not a complete export (nothing is sent).
    huggingface_hub.errors.HFValidationError
        If ``repo_id`` is not a valid repository id (nothing is sent).
    PushError
        If there is no token (nothing is sent), the repository exists and
        ``exist_ok`` is false, a request got no answer, or the Hub refused
        a request after the repository was created (the message says what
        the push left: a repository it created, empty).
    huggingface_hub.errors.HfHubHTTPError
        For any other refusal of the Hub to create the repository (no
        write access, ...).

    Example
    -------
    >>> push_to_hub(getfixture("tmp_path"), "you/emotion")
    Traceback (most recent call last):
    ...
    speechbrain_sercl.inference.export.InvalidExportError: ... is missing; ...
    """
    validate_export(folder)
    validate_repo_id(repo_id)
    token = token or huggingface_hub.get_token()
    if not token:
        raise PushError(
            "no Hugging Face token: run `hf auth login` (formerly "
            "`huggingface-cli login`) or set HF_TOKEN to a token with write "
            "access"
        )
    if api is None:
        api = HfApi(token=token)
    _create_repo(api, repo_id, private, exist_ok, token)
    try:
        if revision is not None:
            api.create_branch(
                repo_id,
                branch=revision,
                repo_type="model",
                exist_ok=True,
                token=token,
            )
        return api.upload_folder(
            folder_path=os.fspath(folder),
            repo_id=repo_id,
            repo_type="model",
            revision=revision,
            commit_message=(
                f"Upload inference folder (speechbrain-sercl {VERSION})"
            ),
            allow_patterns=list(EXPORT_FILES),
            token=token,
        )
    except (*_NETWORK_ERRORS, HfHubHTTPError) as error:
        # A commit holds every file or none: none of the folder is in.
        left = (
            f"nothing was committed to {repo_id}"
            if exist_ok
            else f"{repo_id} was created by this push and is left empty; "
            "rerun with --exist-ok to upload into it"
        )
        raise PushError(f"{_failure(error)}: {left}") from error


def _create_repo(api, repo_id, private, exist_ok, token):
    """Create the model repository (or, with ``exist_ok``, find it)."""
    try:
        api.create_repo(
            repo_id,
            private=private,
            exist_ok=exist_ok,
            repo_type="model",
            token=token,
        )
    except _NETWORK_ERRORS as error:
        raise PushError(
            f"{_failure(error)}: could not create {repo_id}"
        ) from error
    except HfHubHTTPError as error:
        # create_repo raises a plain HfHubHTTPError on 409 Conflict (the
        # concurrent-creation 409 is retried inside it).
        if error.response.status_code != 409:
            raise
        raise PushError(
            f"{repo_id} already exists on the Hub: pass --exist-ok "
            "(exist_ok=True) to upload a new commit into it"
        ) from error


def _failure(error):
    """One line on a request that failed: the address and the error."""
    if isinstance(error, HfHubHTTPError):  # names its address itself
        return "the Hub refused: " + " ".join(str(error).split())
    try:
        address = str(error.request.url)
    except (AttributeError, RuntimeError):  # no request attached
        address = huggingface_hub.constants.ENDPOINT
    detail = " ".join(str(error).split()) or "no detail"
    return f"no answer from {address} ({type(error).__name__}: {detail})"


def model_url(repo_id, revision=None):
    """The Hub page of a model repository, at a branch if given.

    Arguments
    ---------
    repo_id : str
        ``"user/name"``.
    revision : str, optional
        A branch name.

    Returns
    -------
    str
        The address (on ``HF_ENDPOINT`` when it is set).

    Example
    -------
    >>> model_url("you/emotion")
    'https://huggingface.co/you/emotion'
    >>> model_url("you/emotion", revision="fold-0")
    'https://huggingface.co/you/emotion/tree/fold-0'
    """
    url = f"{huggingface_hub.constants.ENDPOINT}/{repo_id}"
    if revision is not None:
        url += f"/tree/{quote(revision, safe='')}"
    return url


def loading_code(repo_id, revision=None):
    """The Python lines that load a published model.

    Arguments
    ---------
    repo_id : str
        ``"user/name"``.
    revision : str, optional
        A branch name.

    Returns
    -------
    str
        The lines, without a trailing newline.

    Example
    -------
    >>> print(loading_code("you/emotion"))
    from speechbrain.inference.classifiers import EncoderClassifier
    classifier = EncoderClassifier.from_hparams(source="you/emotion")
    """
    lines = ["from speechbrain.inference.classifiers import EncoderClassifier"]
    if revision is None:
        lines.append(
            f'classifier = EncoderClassifier.from_hparams(source="{repo_id}")'
        )
    else:
        lines += [
            "from speechbrain.utils.fetching import FetchConfig",
            "classifier = EncoderClassifier.from_hparams(",
            f'    source="{repo_id}",',
            f'    fetch_config=FetchConfig(revision="{revision}"),',
            ")",
        ]
    return "\n".join(lines)
