"""The Makefile's torch switch, checked with ``make -n`` (a dry run) into a scratch venv path:
one stamp per choice, PyTorch's own index per CUDA variant, a reinstall only when the choice
changes, and the installed-build check run for real against this venv's torch."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def dry_run(venv: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "-n", "--no-print-directory", "run", f"VENV={venv}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def torch_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if "torch" in line]


@pytest.mark.parametrize(
    ("choice", "index"),
    [
        ("cpu", "--index-url https://download.pytorch.org/whl/cpu"),
        ("cu126", "--index-url https://download.pytorch.org/whl/cu126"),
        ("cu118", "--index-url https://download.pytorch.org/whl/cu118"),
        ("pypi", None),  # pip's configured indexes (the default)
    ],
)
def test_each_choice_installs_the_pinned_torch_from_its_index(tmp_path, choice, index):
    venv = tmp_path / ".venv"
    run = dry_run(venv, f"TORCH={choice}")
    assert run.returncode == 0, run.stderr
    lines = torch_lines(run.stdout)
    (install,) = [line for line in lines if 'pip install -q "torch==' in line]
    assert '"torch==2.13.0"' in install  # pinned, never a bare `torch`
    if index:
        assert install.rstrip("; }").endswith(index)
    else:
        assert "--index-url" not in install
    assert f"rm -f {venv}/.torch-*" in run.stdout  # the previous choice's stamp goes
    assert f"touch {venv}/.torch-{choice}" in run.stdout
    assert run.stdout.rstrip().endswith(f"{venv}/bin/python main.py")


def test_a_changed_choice_reinstalls_and_an_unchanged_one_does_not(tmp_path):
    venv = tmp_path / ".venv"
    venv.mkdir()
    (venv / ".torch-cpu").touch()
    (venv / ".installed").touch()
    same = dry_run(venv, "TORCH=cpu")
    assert same.stdout.strip().splitlines() == [f"{venv}/bin/python main.py"]
    other = dry_run(venv, "TORCH=cu126")
    assert f"touch {venv}/.torch-cu126" in other.stdout
    assert f"touch {venv}/.installed" in other.stdout  # the project reinstalled on top


@pytest.mark.parametrize("bad", ["TORCH=rocm", "TORCH_SPEC=torch"])
def test_unknown_choices_are_refused_in_one_line(tmp_path, bad):
    run = dry_run(tmp_path / ".venv", bad)
    assert run.returncode != 0
    assert "choose pypi, cpu" in run.stderr or "use TORCH=pypi" in run.stderr


def test_the_installed_build_check_matches_this_torch(tmp_path):
    """The recipe's check, run with this venv's python: it keeps a matching torch."""
    kind = "cpu" if torch.version.cuda is None else "cu" + torch.version.cuda.replace(".", "")
    results = {}
    for choice in ("pypi", "cpu", "cu126"):
        run = dry_run(tmp_path / ".venv", f"TORCH={choice}")
        check = re.search(r"-c '(import sys, torch;.*?)' 2>/dev/null", run.stdout).group(1)
        results[choice] = subprocess.run([sys.executable, "-c", check], timeout=120).returncode
    if torch.__version__.split("+")[0] != "2.13.0":
        pytest.skip("this venv's torch is not the pinned version")
    assert results[kind] == 0
    assert results["pypi"] == 0  # any build of the pinned version is kept
    others = [c for c in results if c not in (kind, "pypi")]
    assert all(results[c] == 1 for c in others)


def test_system_packages_come_before_the_venv_is_made(tmp_path):
    """Debian's python3 makes no venv without python3-venv, which the apt step installs."""
    lines = dry_run(tmp_path / ".venv").stdout.splitlines()
    apt = next(i for i, line in enumerate(lines) if re.search(r"make\b.* apt\b", line))
    venv = next(i for i, line in enumerate(lines) if "-m venv" in line)
    assert apt < venv


def stub_venv(tmp_path: Path, version: str, cuda: str | None) -> tuple[Path, Path, dict]:
    """A venv whose python imports a stand-in torch (``version``, built for ``cuda``) and whose
    pip only logs what it was asked (nothing is installed), and a PATH where dpkg knows every
    system package: the torch stamp's recipe runs for real, without touching this machine."""
    venv = tmp_path / ".venv"
    (venv / "bin").mkdir(parents=True)
    stub = tmp_path / "stub" / "torch"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text(
        f"import types\n__version__ = {version!r}\nversion = types.SimpleNamespace(cuda={cuda!r})\n"
    )
    log = tmp_path / "pip.log"
    python = venv / "bin" / "python"
    python.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = -m ] && [ "$2" = pip ]; then echo "$@" >> {log}; exit 0; fi\n'
        f'PYTHONPATH={stub.parent} exec {sys.executable} "$@"\n'
    )
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "dpkg").write_text("#!/bin/sh\nexit 0\n")
    for tool in (python, fake_bin / "dpkg"):
        tool.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}"}
    return venv, log, env


def make_torch_stamp(venv: Path, choice: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            f"VENV={venv}",
            f"TORCH={choice}",
            f"{venv}/.torch-{choice}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_cuda_request_answered_with_a_cpu_build_stops_unlabelled(tmp_path):
    """`make run TORCH=cu999` where pip hands out the local CPU wheel: the recipe reinstalls,
    finds the build is not the one asked for, says so in one line and writes no stamp."""
    venv, log, env = stub_venv(tmp_path, "2.13.0+cpu", None)
    run = make_torch_stamp(venv, "cu999", env)
    assert run.returncode != 0
    assert "install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cu999" in (
        log.read_text()
    )  # it did try the install (stubbed)
    (message,) = [line for line in run.stderr.splitlines() if line.startswith("TORCH=cu999")]
    assert "asked for torch 2.13.0 built for CUDA (cu999)" in message
    assert "pip installed torch 2.13.0+cpu without CUDA (CPU only)" in message
    assert not (venv / ".torch-cu999").exists()


@pytest.mark.parametrize(
    ("choice", "version", "cuda"),
    [("cu126", "2.13.0+cu126", "12.6"), ("cpu", "2.13.0+cpu", None), ("pypi", "2.13.0", "12.8")],
)
def test_a_matching_build_is_labelled_and_not_reinstalled(tmp_path, choice, version, cuda):
    venv, log, env = stub_venv(tmp_path, version, cuda)
    run = make_torch_stamp(venv, choice, env)
    assert run.returncode == 0, run.stderr
    assert (venv / f".torch-{choice}").exists()
    assert not log.exists()  # already the build asked for: pip was not run


def test_a_cpu_request_answered_with_a_cuda_build_stops(tmp_path):
    venv, _, env = stub_venv(tmp_path, "2.13.0+cu128", "12.8")
    run = make_torch_stamp(venv, "cpu", env)
    assert run.returncode != 0
    assert "pip installed torch 2.13.0+cu128 built for CUDA 12.8" in run.stderr
    assert not (venv / ".torch-cpu").exists()


def test_the_apt_step_installs_fonts_for_cjk_and_emoji(tmp_path):
    """`make apt` on a machine with none of the fonts: apt-get (stubbed, it only logs) is asked
    for DejaVu, a CJK font and a colour emoji font, and for nothing dpkg already knows."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    log = tmp_path / "apt.log"
    stubs = {
        "dpkg": '#!/bin/sh\ncase "$2" in fonts-*) exit 1;; esac\nexit 0\n',
        "apt-get": f'#!/bin/sh\necho "$@" >> {log}\n',
        "sudo": '#!/bin/sh\nexec "$@"\n',
    }
    for name, text in stubs.items():
        (fake_bin / name).write_text(text)
        (fake_bin / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}"}
    run = subprocess.run(
        ["make", "--no-print-directory", "apt"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    install = [line.split() for line in log.read_text().splitlines() if " install " in line]
    assert len(install) == 1
    words = install[0]
    asked = {w for w in words[words.index("install") + 1 :] if not w.startswith("-")}
    assert asked == {"fonts-dejavu-core", "fonts-wqy-microhei", "fonts-noto-color-emoji"}
