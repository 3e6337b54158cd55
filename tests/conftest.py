"""Shared fixtures: the real data kit (``GLACIERBED_DATA``, default ``<repo>/../shared/data``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The offline data kit; tests fail (not skip) when it is missing."""
    path = Path(os.environ.get("GLACIERBED_DATA", REPO.parent / "shared" / "data")).resolve()
    if not (path / "oggm-sample-data").is_dir():
        pytest.fail(f"data kit not found at {path}: set GLACIERBED_DATA to the shared data folder "
                    f"(e.g. GLACIERBED_DATA=../shared/data)", pytrace=False)
    os.environ["GLACIERBED_DATA"] = str(path)
    return path


@pytest.fixture(scope="session")
def oggm_dir(data_dir: Path) -> Path:
    """The OGGM sample-data subset of the kit."""
    return data_dir / "oggm-sample-data"


@pytest.fixture
def kill_and_resume() -> Callable[..., None]:
    """``kill_and_resume(train, cfg, run_dir)``: a training run killed after its checkpoint of step 4 (no weights
    written), then resumed to the end by the same call, as a user rerunning the command would."""

    def run(train: Callable[..., Any], cfg: Any, run_dir: Path) -> None:
        def kill(step: int, row: dict) -> None:
            if step == 5:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            train(cfg, run_dir, on_step=kill)
        assert not (run_dir / "weights.pt").exists()
        train(cfg, run_dir)

    return run
