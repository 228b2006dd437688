from __future__ import annotations

import io
import json
import math

import pytest
from PIL import Image

from detection import scoring
from detection.scoring import (
    MAX_PIXELS,
    MODEL_VERSION,
    PRIOR,
    ScoreResult,
    ScoringError,
    combine,
    score_bytes,
    score_image,
)
from detection.signals.base import Signal
from tests.detection.conftest import SD_PARAMETERS, Media


def signal(value: float, weight: float = 1.0, name: str = "test") -> Signal:
    return Signal(name=name, value=value, weight=weight, detail={"summary": f"test evidence {value}"})


# -- combine ----------------------------------------------------------------------------------------


def test_no_signals_give_the_prior() -> None:
    assert combine([]) == pytest.approx(PRIOR, abs=1e-12)
    assert combine([], prior=0.7) == pytest.approx(0.7, abs=1e-12)


def test_a_neutral_signal_adds_nothing() -> None:
    assert combine([signal(0.5, weight=3.0)]) == pytest.approx(PRIOR, abs=1e-12)


def test_a_signal_with_weight_zero_is_ignored() -> None:
    assert combine([signal(0.99, weight=0.0), signal(0.01, weight=0.0)]) == pytest.approx(PRIOR, abs=1e-12)


def test_the_score_rises_with_a_signals_value() -> None:
    values = [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 1.0]

    scores = [combine([signal(value)]) for value in values]

    assert scores == sorted(scores)
    assert len(set(scores)) == len(scores)
    assert scores[0] < PRIOR < scores[-1]


def test_more_weight_moves_the_score_further() -> None:
    assert combine([signal(0.9, 0.5)]) < combine([signal(0.9, 1.0)]) < combine([signal(0.9, 2.0)])
    assert combine([signal(0.1, 2.0)]) < combine([signal(0.1, 1.0)]) < PRIOR


def test_it_adds_evidence_in_log_odds_as_documented() -> None:
    def logit(p: float) -> float:
        return math.log(p / (1 - p))

    expected_log_odds = logit(PRIOR) + 1.0 * logit(0.9) + 0.5 * logit(0.3)

    score = combine([signal(0.9, 1.0), signal(0.3, 0.5)])

    assert score == pytest.approx(1 / (1 + math.exp(-expected_log_odds)))


def test_no_single_signal_can_claim_certainty() -> None:
    assert combine([signal(1.0)]) == pytest.approx(combine([signal(0.99)]))
    assert combine([signal(0.0)]) == pytest.approx(combine([signal(0.01)]))
    assert 0.0 < combine([signal(0.0)]) < combine([signal(1.0)]) < 1.0


def test_it_does_not_overflow_with_overwhelming_evidence() -> None:
    assert combine([signal(1.0, weight=1000.0)]) == pytest.approx(1.0)
    assert combine([signal(0.0, weight=1000.0)]) == pytest.approx(0.0)


@pytest.mark.parametrize("prior", [0.0, 1.0, -0.1, 1.5])
def test_it_rejects_a_prior_outside_zero_and_one(prior: float) -> None:
    with pytest.raises(ValueError, match="prior"):
        combine([], prior=prior)


@pytest.mark.parametrize(
    "value, weight, detail",
    [
        (1.2, 1.0, {"summary": "x"}),
        (-0.1, 1.0, {"summary": "x"}),
        (float("nan"), 1.0, {"summary": "x"}),
        (0.5, -1.0, {"summary": "x"}),
        (0.5, 1.0, {}),
    ],
)
def test_a_signal_refuses_impossible_values(value: float, weight: float, detail: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        Signal(name="test", value=value, weight=weight, detail=detail)


# -- score_bytes ------------------------------------------------------------------------------------


def test_it_scores_a_png_with_stable_diffusion_parameters_above_0_9(media: type[Media]) -> None:
    result = score_bytes(media.png(text={"parameters": SD_PARAMETERS}))

    assert result.score > 0.9
    assert result.model_version == MODEL_VERSION
    by_name = {signal.name: signal for signal in result.signals}
    assert by_name["metadata"].detail["generator"] == "Stable Diffusion web UI"


def test_a_plain_generated_png_scores_the_prior(media: type[Media]) -> None:
    result = score_bytes(media.png())

    assert result.score == pytest.approx(PRIOR, abs=1e-6)
    assert [s.name for s in result.signals] == ["metadata", "c2pa", "watermark", "model", "faces", "embedding"]
    assert [s.value for s in result.signals] == [0.5] * 6


def test_it_scores_xmp_trained_algorithmic_media_in_a_jpeg_high(media: type[Media]) -> None:
    data = media.with_jpeg_app1_xmp(media.jpeg(), media.xmp("trainedAlgorithmicMedia"))

    assert score_bytes(data).score > 0.85


def test_it_scores_a_declared_digital_capture_below_the_prior(media: type[Media]) -> None:
    assert score_bytes(media.jpeg(xmp=media.xmp("digitalCapture"))).score < PRIOR


def test_it_scores_exif_software_midjourney_high(media: type[Media]) -> None:
    assert score_bytes(media.jpeg(exif=media.exif(Software="Midjourney"))).score > 0.8


def test_it_scores_camera_exif_only_slightly_below_the_prior(media: type[Media]) -> None:
    score = score_bytes(media.jpeg(exif=media.exif(Make="Nikon", Model="Nikon Z 6"))).score

    assert PRIOR - 0.1 < score < PRIOR


def test_it_refuses_empty_input() -> None:
    with pytest.raises(ScoringError, match="empty"):
        score_bytes(b"")


def test_it_refuses_garbage_bytes_with_a_plain_message() -> None:
    with pytest.raises(ScoringError, match="not an image") as caught:
        score_bytes(b"this is a text file, not a picture\n" * 20)

    assert "JPEG, PNG" in str(caught.value)


def test_it_refuses_formats_outside_the_allow_list() -> None:
    out = io.BytesIO()
    Media.image().save(out, "PPM")

    with pytest.raises(ScoringError, match="not an image"):
        score_bytes(out.getvalue())


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_it_refuses_a_damaged_image(fmt: str) -> None:
    out = io.BytesIO()
    Media.image(size=(256, 256)).save(out, fmt)
    truncated = out.getvalue()[: len(out.getvalue()) // 2]

    with pytest.raises(ScoringError, match="damaged or cut short"):
        score_bytes(truncated)


def test_it_refuses_an_image_above_the_pixel_limit_before_decoding_it(media: type[Media]) -> None:
    # Just over the limit, under Pillow's own bomb warning. The file holds no pixel data, so
    # decoding it would fail as "damaged": the size message shows the check ran first.
    side = math.isqrt(MAX_PIXELS) + 1

    with pytest.raises(ScoringError, match="scaled-down copy") as caught:
        score_bytes(media.png_header_only(side, side))

    assert f"{side} x {side}" in str(caught.value)


# -- ScoreResult --------------------------------------------------------------------------------------


def test_its_result_is_json_serialisable(media: type[Media]) -> None:
    result = score_bytes(media.png(text={"parameters": SD_PARAMETERS}))

    decoded = json.loads(json.dumps(result.as_dict()))

    assert set(decoded) == {"score", "signals", "model_version"}
    assert set(decoded["signals"][0]) == {"name", "value", "weight", "detail"}
    assert decoded["score"] == round(decoded["score"], 4)


def test_its_summary_names_the_decisive_signal() -> None:
    result = ScoreResult(
        score=0.9,
        signals=[signal(0.55, name="watermark"), signal(0.97, name="metadata"), signal(0.5, name="c2pa")],
        model_version=MODEL_VERSION,
    )

    summary = result.summary()

    assert "metadata signal" in summary
    assert "test evidence 0.97" in summary
    assert "towards synthetic" in summary


def test_its_summary_says_when_nothing_was_found(media: type[Media]) -> None:
    summary = score_bytes(media.png()).summary()

    assert "no signal found evidence" in summary
    assert "0.20" in summary


# -- Plugging in signals ------------------------------------------------------------------------------


def test_a_new_signal_plugs_in_through_the_signals_list(
    media: type[Media], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, tuple[int, int] | None]] = []

    def watermark_signal(data: bytes, image: Image.Image | None) -> Signal:
        seen.append((len(data), image.size if image else None))
        return Signal("watermark", 0.9, 1.0, {"summary": "A known invisible watermark was found."})

    monkeypatch.setattr(scoring, "SIGNALS", [scoring.metadata_signal, watermark_signal])
    data = media.png()

    result = score_bytes(data)

    assert [s.name for s in result.signals] == ["metadata", "watermark"]
    assert seen == [(len(data), (48, 32))]
    assert result.score == round(combine(result.signals), 4)
    assert result.score > PRIOR


def test_score_image_uses_the_image_the_caller_opened(media: type[Media]) -> None:
    data = media.png(text={"parameters": SD_PARAMETERS})

    with Image.open(io.BytesIO(data)) as image:
        result = score_image(image, data)

    assert result == score_bytes(data)


# -- Provenance against the learned model ----------------------------------------------------------


def _signal(name: str, value: float, weight: float = 1.0) -> Signal:
    return Signal(name, value, weight, {"summary": f"{name} says {value}"})


@pytest.mark.parametrize("provenance", ["c2pa", "metadata", "watermark"])
def test_a_models_doubt_cannot_pull_declared_provenance_below_what_it_gives_alone(provenance: str) -> None:
    declared = _signal(provenance, 0.98)
    doubtful_model = _signal("model", 0.1, 0.5)

    score = scoring.combine_with_provenance([declared, doubtful_model])

    assert score == pytest.approx(combine([declared]))
    assert score >= 0.9
    assert combine([declared, doubtful_model]) < score


def test_without_provenance_evidence_the_model_may_lower_the_score_below_the_prior() -> None:
    signals = [_signal("c2pa", 0.5), _signal("metadata", 0.5), _signal("model", 0.1, 0.5)]

    assert scoring.combine_with_provenance(signals) == pytest.approx(combine(signals))
    assert scoring.combine_with_provenance(signals) < PRIOR


def test_a_model_that_agrees_with_provenance_adds_to_it() -> None:
    signals = [_signal("metadata", 0.98), _signal("model", 0.9, 0.5)]

    assert scoring.combine_with_provenance(signals) > combine([signals[0]])


def test_the_faces_signal_never_moves_the_score(media: type[Media]) -> None:
    result = score_bytes(media.png())
    faces = next(signal for signal in result.signals if signal.name == "faces")

    assert faces.weight == 0.0
