"""Checks against ../shared/data/detection-eval (50 real photos, 50 AI images; see its README)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detection.learned import data
from detection.learned.evaluate import group_folds
from detection.signals.c2pa_manifest import c2pa_signal
from detection.signals.faces import faces_signal
from detection.signals.metadata import metadata_signal
from detection.signals.watermark import watermark_signal

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "detection-eval"

# Skipped in a clone without ../shared, failed in CI: the shared_data hook in tests/conftest.py decides.
pytestmark = [pytest.mark.shared_data]


def files(kind: str) -> list[Path]:
    return sorted((SHARED / kind).glob("*.jpg"))


@pytest.fixture(scope="module")
def at_640() -> dict[str, bytes]:
    """Every file re-encoded at most 640 px wide (JPEG q95; the AI images stay at their 559 px),
    decoded once for the module (JPEG draft mode makes the large photos quick to read)."""
    return {path.name: _jpeg_bytes(data.load_rgb(path, max_side=640)) for path in files("real") + files("ai")}


def test_no_unmarked_file_is_flagged_by_the_provenance_and_watermark_signals(at_640: dict[str, bytes]) -> None:
    # The set's README: all JPEG without EXIF, no Content Credentials, no watermarks. The watermark is
    # read at 640 px (it skips anything larger than generators write anyway).
    paths = files("real") + files("ai")
    assert len(paths) == 100
    for path in paths:
        raw = path.read_bytes()
        for signal in (c2pa_signal(raw), metadata_signal(raw), watermark_signal(at_640[path.name])):
            assert signal.value <= 0.5, (path.name, signal.name, signal.detail["summary"])


def test_faces_are_found_in_some_people_photos_and_in_none_of_the_others(at_640: dict[str, bytes]) -> None:
    people = [
        faces_signal(at_640[path.name]).detail["count"] for path in files("real") if path.name.startswith("people")
    ]
    others = [
        faces_signal(at_640[path.name]).detail["count"]
        for path in files("real")
        if path.name.startswith(("food", "nature", "city"))
    ]

    assert sum(count > 0 for count in people) >= 2
    assert sum(others) == 0


def test_cross_validation_folds_pair_each_generator_with_a_photo_group_and_never_share_files() -> None:
    items = data.list_items(SHARED)
    folds = group_folds(items)

    assert len(folds) == 5
    for train_index, test_index in folds:
        assert not {items[i].path for i in train_index} & {items[i].path for i in test_index}
        tested = {items[i].group for i in test_index}
        assert len(tested) == 2 and any(g.startswith("ai/") for g in tested)


def test_the_common_size_removes_the_size_difference_between_the_classes() -> None:
    ai = data.common_size(data.load_rgb(files("ai")[0], max_side=1024))
    real = data.common_size(data.load_rgb(files("real")[0], max_side=1024))

    assert ai.shape == real.shape == (data.COMMON_SIDE, data.COMMON_SIDE, 3)
    assert np.isfinite(ai).all() and np.isfinite(real).all()


def _jpeg_bytes(rgb: np.ndarray) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=95)
    return out.getvalue()
