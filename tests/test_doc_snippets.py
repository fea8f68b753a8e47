"""The Python code blocks of the user guide and the README run as written.

Each document's ``.. code-block:: python`` blocks run in order in one namespace (as a reader
would paste them), in a temporary folder, with every training loop cut to two epochs so
that the whole guide runs in about a minute: this checks that the snippets are valid code
against the current API, not the figures they would print. Blocks that load a data set of
``../shared/data`` are skipped with the rest of their document when it is absent.
"""

import re
from pathlib import Path

import pytest

import skdeepcluster._base as base_module
import skdeepcluster._engine as engine_module
from skdeepcluster.datasets import default_data_dir

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "docs" / "user_guide.rst", ROOT / "README.rst"]
MAX_EPOCHS = 2


def code_blocks(path):
    """``(line, source)`` of every ``.. code-block:: python`` of a reST file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].strip() == ".. code-block:: python":
            start, body = i + 1, []
            i += 1
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
                body.append(lines[i])
                i += 1
            indent = min(len(line) - len(line.lstrip()) for line in body if line.strip())
            blocks.append((start + 1, "\n".join(line[indent:] for line in body).strip()))
        else:
            i += 1
    return blocks


@pytest.fixture
def short_training(monkeypatch):
    original = engine_module.epoch_loop

    def capped(run_epoch, *, n_epochs, **kwargs):
        return original(run_epoch, n_epochs=min(n_epochs, MAX_EPOCHS), **kwargs)

    monkeypatch.setattr(engine_module, "epoch_loop", capped)
    monkeypatch.setattr(base_module, "epoch_loop", capped)


def test_documents_have_code_blocks():
    assert len(code_blocks(DOCUMENTS[0])) >= 10
    assert len(code_blocks(DOCUMENTS[1])) >= 5


@pytest.mark.slow
@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_code_blocks_run(path, tmp_path, monkeypatch, short_training):
    monkeypatch.chdir(tmp_path)
    shared = {name for name in ("usps", "mnist_test", "usps_11000", "pendigits")
              if (default_data_dir() / f"{name}.npz").exists()}
    namespace = {"__name__": "__doc_snippets__"}
    for line, source in code_blocks(path):
        needed = set(re.findall(r'load_dataset\("(\w+)"', source)) - {"digits"}
        if needed - shared:
            pytest.skip(f"{path.name}:{line} needs {sorted(needed - shared)} (../shared/data)")
        try:
            exec(compile(source, f"{path.name}:{line}", "exec"), namespace)
        except Exception as exc:  # name the block in the failure
            raise AssertionError(f"the code block at {path.name}:{line} failed: "
                                 f"{type(exc).__name__}: {exc}") from exc
