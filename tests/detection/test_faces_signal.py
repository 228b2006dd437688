from __future__ import annotations

import numpy as np

from detection.signals.faces import faces_signal
from tests.detection.images import encode, scene


def test_a_scene_without_people_has_no_face_and_the_signal_never_moves_the_score() -> None:
    signal = faces_signal(encode(scene(2, (640, 480))))

    assert signal.detail["count"] == 0
    assert signal.detail["boxes"] == []
    assert signal.weight == 0.0 and signal.value == 0.5
    assert "No face found" in signal.detail["summary"]


def test_a_flat_image_has_no_face() -> None:
    assert faces_signal(encode(np.full((300, 400, 3), 127, np.uint8))).detail["count"] == 0


def test_it_does_not_raise_on_garbage() -> None:
    signal = faces_signal(b"GIF89a broken")
    assert signal.detail["count"] == 0
    assert "could not be looked for" in signal.detail["summary"]
