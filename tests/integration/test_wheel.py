"""The wheel installs on its own: the package, its YAMLs and recipe scripts.

A wheel is built from a copy of the checkout (so no ``build/`` or
``*.egg-info`` lands in the checkout) and installed with ``--no-deps
--no-index`` into a fresh venv. The venv gets the dependencies, without a
network install, from a ``.pth`` file listing this interpreter's
site-packages folders: a path line of a ``.pth`` file does not run the
``.pth`` files of that folder, so an editable install of the checkout is
not picked up: the venv imports the package from the wheel. Every command
runs from an empty folder, as a user of the installed package would.
"""

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "speechbrain_sercl"
PACKAGED_FILES = (
    "hparams/demo.yaml",
    "hparams/wavlm.yaml",
    "hparams/hubert.yaml",
    "hparams/classifier.yaml",
    "hparams/finetune.yaml",
    "recipes/CrossCorpus/train_contrastive.py",
    "recipes/CrossCorpus/train_classifier.py",
)
# When the checkout is not a git work tree, everything is copied but these.
NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "results",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
)
# Folders of the checkout that the "nothing written" check does not walk.
UNSEEN = (".git", ".venv")

pytestmark = pytest.mark.slow


def clean_environment():
    """This process's environment without what would reach the checkout."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    return env


def run(command, cwd, timeout=300):
    """Run a command; fail the test with its output if it fails."""
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def source_files(root):
    """Tracked and untracked, not ignored files of a git checkout, or None."""
    if shutil.which("git") is None or not (root / ".git").exists():
        return None
    result = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        return None
    return sorted({name for name in result.stdout.split("\0") if name})


def copy_checkout(destination):
    """Copy the sources of the checkout, links kept as links."""
    names = source_files(REPO)
    if names is None:
        shutil.copytree(REPO, destination, symlinks=True, ignore=NOT_SOURCES)
        return
    for name in names:
        source = REPO / name
        if not os.path.lexists(source):  # deleted, not yet committed
            continue
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)


def build_wheel(source, folder):
    """``pip wheel`` of ``source`` without network; the wheel's path."""
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            folder,
            source,
        ],
        cwd=folder.parent,
    )
    (wheel,) = folder.glob("speechbrain_sercl-*.whl")
    return wheel


def create_venv(folder):
    """A fresh venv with pip; skips the tests where venv cannot make one."""
    pytest.importorskip("venv", reason="the venv module is missing")
    pytest.importorskip("ensurepip", reason="ensurepip is missing")
    result = subprocess.run(
        [sys.executable, "-m", "venv", folder],
        capture_output=True,
        text=True,
        env=clean_environment(),
    )
    output = result.stdout + result.stderr
    if result.returncode != 0 and "ensurepip" in output:
        pytest.skip(f"venv cannot install pip here: {output.strip()[-300:]}")
    assert result.returncode == 0, output[-3000:]
    return folder / "bin" / "python"


def dependency_folders():
    """The site-packages folders this interpreter imports packages from."""
    folders = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        folders.append(site.getusersitepackages())
    return [folder for folder in folders if os.path.isdir(folder)]


def share_dependencies(python, cwd):
    """Make this interpreter's packages importable in the venv of python."""
    code = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = run([python, "-c", code], cwd=cwd).stdout.strip()
    pth = Path(purelib) / "_test_wheel_dependencies.pth"
    pth.write_text("".join(f"{folder}\n" for folder in dependency_folders()))


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel, installed in a fresh venv; its python and an empty cwd."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    copy_checkout(source)
    wheels = work / "wheels"
    wheels.mkdir()
    wheel = build_wheel(source, wheels)
    python = create_venv(work / "venv")
    empty = work / "empty"
    empty.mkdir()
    share_dependencies(python, empty)
    run(
        [python, "-m", "pip", "install", "--no-deps", "--no-index", wheel],
        cwd=empty,
    )
    return SimpleNamespace(
        venv=work / "venv", python=python, bin=python.parent, empty=empty
    )


def venv_python(installed, code, *arguments):
    """Run python code in the venv from the empty folder; its stdout."""
    command = [installed.python, "-c", code, *arguments]
    return run(command, cwd=installed.empty).stdout.strip()


def test_the_venv_imports_the_wheel_not_the_checkout(installed):
    code = f"import {PACKAGE}; print({PACKAGE}.__file__)"
    location = Path(venv_python(installed, code)).resolve()
    assert location.is_relative_to(installed.venv.resolve()), location
    assert not location.is_relative_to(REPO), location


def test_the_dependencies_come_from_this_interpreter(installed):
    code = "import speechbrain; print(speechbrain.__version__)"
    import speechbrain

    assert venv_python(installed, code) == speechbrain.__version__


def test_sercl_version_runs_from_an_empty_folder(installed):
    from speechbrain_sercl import __version__

    result = run([installed.bin / "sercl", "--version"], cwd=installed.empty)
    assert result.stdout.strip() == f"sercl {__version__}"


def test_the_wheel_carries_the_yamls_and_recipe_scripts(installed):
    code = (
        "import importlib.resources, sys\n"
        f"root = importlib.resources.files({PACKAGE!r})\n"
        "for name in sys.argv[1:]:\n"
        "    print(name, root.joinpath(name).is_file())\n"
    )
    found = venv_python(installed, code, *PACKAGED_FILES).splitlines()
    assert found == [f"{name} True" for name in PACKAGED_FILES]


def checkout_state():
    """Every file of the checkout (but .git, .venv) with size and mtime."""
    state = {}
    for folder, subfolders, files in os.walk(REPO):
        subfolders[:] = [name for name in subfolders if name not in UNSEEN]
        for name in files:
            path = Path(folder) / name
            stat = path.lstat()
            state[path.relative_to(REPO)] = (stat.st_size, stat.st_mtime_ns)
    return state


def test_the_demo_runs_from_an_empty_folder(installed, tmp_path):
    """One run of the demo, small, with the installed package only."""
    before = checkout_state()
    command = [
        installed.bin / "sercl",
        "demo",
        "--output",
        "out",
        "--runs",
        "0",
        "--number_of_epochs=1",
        "--data_utterances_per_emotion=2",
        "--noprogressbar",
    ]
    run(command, cwd=tmp_path, timeout=900)
    assert (tmp_path / "out" / "paper" / "results.md").is_file()
    assert checkout_state() == before
