from __future__ import annotations

from pathlib import Path

import pytest

from detection.scoring import score_bytes
from detection.signals import c2pa_manifest
from detection.signals.c2pa_manifest import c2pa_signal
from tests.detection.images import encode, scene
from tests.detection.signing import IPTC, ManifestSigner, make_signer

AI_CREATED = [{"action": "c2pa.created", "digitalSourceType": IPTC + "trainedAlgorithmicMedia"}]
COMPOSITE = [{"action": "c2pa.created", "digitalSourceType": IPTC + "compositeWithTrainedAlgorithmicMedia"}]
CAMERA = [{"action": "c2pa.created", "digitalSourceType": IPTC + "digitalCapture"}]


@pytest.fixture(scope="module")
def signer() -> ManifestSigner:
    return make_signer()


@pytest.fixture
def trusting(signer: ManifestSigner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Add the test root to the trust anchors, as an operator would for a partner's generator."""
    anchors = tmp_path / "anchors.pem"
    anchors.write_text(signer.root_pem)
    monkeypatch.setenv(c2pa_manifest.TRUST_ENV, str(anchors))


def jpeg() -> bytes:
    return encode(scene(7), "JPEG", quality=90)


def test_the_trust_list_ships_with_the_code_and_holds_certificates() -> None:
    text = c2pa_manifest.TRUST_LIST.read_text()
    assert text.count("-----BEGIN CERTIFICATE-----") >= 5


def test_a_signed_ai_declaration_by_an_unlisted_signer_scores_above_0_9(signer: ManifestSigner) -> None:
    data = signer.sign(jpeg(), "image/jpeg", AI_CREATED)
    signal = c2pa_signal(data)
    assert signal.value == pytest.approx(0.98)
    assert signal.detail["validation_state"] == "Valid"
    assert signal.detail["trusted"] is False
    assert signal.detail["signer"] == signer.common_name
    assert signal.detail["declared_source_type"] == "trainedAlgorithmicMedia"
    assert "not on the trust list" in signal.detail["summary"]
    assert score_bytes(data).score >= 0.9


def test_a_signer_chaining_to_a_trust_anchor_is_reported_as_trusted(signer: ManifestSigner, trusting: None) -> None:
    signal = c2pa_signal(signer.sign(jpeg(), "image/jpeg", AI_CREATED))
    assert signal.detail["validation_state"] == "Trusted"
    assert signal.detail["trusted"] is True
    assert signal.value == pytest.approx(0.99)
    assert "chains to the C2PA trust list" in signal.detail["summary"]


def test_a_composite_with_ai_elements_scores_above_0_9(signer: ManifestSigner) -> None:
    data = signer.sign(jpeg(), "image/jpeg", COMPOSITE)
    signal = c2pa_signal(data)
    assert signal.detail["declared_source_type"] == "compositeWithTrainedAlgorithmicMedia"
    assert score_bytes(data).score >= 0.9


def test_a_signed_png_is_read_too(signer: ManifestSigner) -> None:
    data = signer.sign(encode(scene(8)), "image/png", AI_CREATED)
    assert c2pa_signal(data).value == pytest.approx(0.98)
    assert score_bytes(data).score >= 0.9


def test_credentials_that_declare_a_camera_capture_do_not_move_the_score(signer: ManifestSigner) -> None:
    signal = c2pa_signal(signer.sign(jpeg(), "image/jpeg", CAMERA))
    assert signal.value == 0.5
    assert signal.detail["manifest"] is True
    assert "declare no AI generation" in signal.detail["summary"]


def test_a_file_changed_after_signing_is_reported_invalid_with_the_failure(signer: ManifestSigner) -> None:
    data = bytearray(signer.sign(jpeg(), "image/jpeg", AI_CREATED))
    data[-200] ^= 0xFF  # a byte of the image data, after the manifest
    signal = c2pa_signal(bytes(data))
    assert signal.detail["validation_state"] == "Invalid"
    assert signal.detail["failures"]
    assert 0.5 < signal.value < 0.98
    assert "validation failed" in signal.detail["summary"]


def test_no_manifest_is_neutral_and_says_absence_proves_nothing() -> None:
    signal = c2pa_signal(jpeg())
    assert signal.value == 0.5
    assert signal.detail["manifest"] is False
    assert "absence proves nothing" in signal.detail["summary"]


def test_bytes_that_only_mention_c2pa_do_not_raise() -> None:
    signal = c2pa_signal(jpeg()[:-2] + b"jumb c2pa garbage" + b"\xff\xd9")
    assert signal.value == 0.5
