"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def sample_data_dir() -> Path:
    """The real sample data: $SAMPLE_DATA_DIR, or ../shared/data beside the repository."""
    configured = os.environ.get("SAMPLE_DATA_DIR")
    return Path(configured) if configured else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    directory = sample_data_dir()
    if not (directory / "porcine_brain_gangliosides.csv").is_file():
        pytest.fail(
            f"sample data not found in {directory}; set SAMPLE_DATA_DIR to the folder holding "
            "porcine_brain_gangliosides.csv"
        )
    return directory


@pytest.fixture(scope="session")
def porcine_csv(sample_dir: Path) -> Path:
    return sample_dir / "porcine_brain_gangliosides.csv"


@pytest.fixture(scope="session")
def tiny_csv(sample_dir: Path) -> Path:
    return sample_dir / "tiny_with_bom.csv"
