"""Reading image folders, grouping files, and turning photos into labelled patches."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from detection.learned.patches import PATCH, grey, normalise
from detection.learned.processes import PROCESSES

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
REGION = 2 * PATCH  # a fake is made from a region twice the patch size; its centre is the patch (no border effects)
COMMON_SIDE = 512  # the common size of the shared evaluation set (close to its AI images' 559 px)
JPEG_PROBABILITY = 0.5  # share of training regions re-encoded, so JPEG traces are not a label cue
JPEG_QUALITIES = (60, 96)
_GROUP = re.compile(r"^([A-Za-z]+\d*)[_-]")


@dataclass(frozen=True)
class Item:
    path: Path
    label: int  # 1 = AI / synthetic, 0 = real
    group: str  # generator or photo category: files of one group stay on one side of every split


def list_items(directory: Path) -> list[Item]:
    """DIR/ai/** and DIR/real/** as labelled items. The group is the subfolder under ai/ or real/ when
    there is one, else the file name's prefix before '_' (``gan_3.jpg`` → ``gan``), else the class."""
    items: list[Item] = []
    for label, name in ((1, "ai"), (0, "real")):
        root = directory / name
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
                continue
            relative = path.relative_to(root)
            if len(relative.parts) > 1:
                group = relative.parts[0]
            else:
                match = _GROUP.match(path.stem)
                group = match.group(1) if match else name
            items.append(Item(path, label, f"{name}/{group}"))
    return items


def load_rgb(path: Path | bytes, max_side: int | None = None) -> np.ndarray:
    """An RGB float32 array in [0, 255]; large JPEGs are decoded at reduced size when `max_side` allows."""
    source = io.BytesIO(path) if isinstance(path, bytes) else path
    with Image.open(source) as image:
        if max_side is not None and image.format == "JPEG":
            image.draft("RGB", (max_side, max_side))
        rgb = image.convert("RGB")
        if max_side is not None and max(rgb.size) > max_side:
            rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        return np.asarray(rgb, dtype=np.float32)


def common_size(rgb: np.ndarray, side: int = COMMON_SIDE) -> np.ndarray:
    """Centre square crop, resized to side x side: removes size as a cue between classes."""
    height, width = rgb.shape[:2]
    short = min(height, width)
    top, left = (height - short) // 2, (width - short) // 2
    crop = Image.fromarray(np.clip(rgb[top : top + short, left : left + short], 0, 255).astype(np.uint8))
    return np.asarray(crop.resize((side, side), Image.Resampling.LANCZOS), dtype=np.float32)


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    out = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).round().astype(np.uint8)).save(out, "JPEG", quality=quality)
    return np.asarray(Image.open(out).convert("RGB"), dtype=np.float32)


def resize(rgb: np.ndarray, factor: float) -> np.ndarray:
    height, width = rgb.shape[:2]
    image = Image.fromarray(np.clip(rgb, 0, 255).round().astype(np.uint8))
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.asarray(image.resize(size, Image.Resampling.LANCZOS), dtype=np.float32)


def _textured_regions(rgb: np.ndarray, count: int, rng: np.random.Generator, size: int = REGION) -> list[np.ndarray]:
    height, width = rgb.shape[:2]
    if height < size or width < size:
        return []
    regions = []
    for _ in range(count * 4):
        top = int(rng.integers(0, height - size + 1))
        left = int(rng.integers(0, width - size + 1))
        region = rgb[top : top + size, left : left + size]
        if grey(region).std() >= 0.03:  # skip flat regions: they hold no trace either way
            regions.append(region)
        if len(regions) == count:
            break
    return regions


def _centre(region: np.ndarray) -> np.ndarray:
    offset = (region.shape[0] - PATCH) // 2
    return region[offset : offset + PATCH, offset : offset + PATCH]


def _maybe_jpeg(region: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < JPEG_PROBABILITY:
        return jpeg(region, int(rng.integers(*JPEG_QUALITIES)))
    return region


def process_pairs(
    photos: list[np.ndarray],
    processes: tuple[str, ...],
    rng: np.random.Generator,
    regions_per_photo: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Real patches (label 0) and the same regions put through a random training process (label 1)."""
    patches: list[np.ndarray] = []
    labels: list[int] = []
    for photo in photos:
        for region in _textured_regions(photo, regions_per_photo, rng):
            fake = PROCESSES[processes[int(rng.integers(len(processes)))]](region, rng)
            patches.append(grey(_centre(_maybe_jpeg(region, rng))))
            labels.append(0)
            patches.append(grey(_centre(_maybe_jpeg(fake, rng))))
            labels.append(1)
    if not patches:
        return np.zeros((0, PATCH, PATCH), np.float32), np.zeros(0, np.float32)
    return normalise(np.stack(patches)), np.array(labels, dtype=np.float32)


def image_patches(
    images: list[np.ndarray], label: int, rng: np.random.Generator, per_image: int
) -> tuple[np.ndarray, np.ndarray]:
    """Patches of whole images with a known label (AI images, or real ones prepared like them)."""
    patches = [
        grey(_centre(_maybe_jpeg(region, rng)))
        for image in images
        for region in _textured_regions(image, per_image, rng)
    ]
    if not patches:
        return np.zeros((0, PATCH, PATCH), np.float32), np.zeros(0, np.float32)
    return normalise(np.stack(patches)), np.full(len(patches), float(label), dtype=np.float32)


def photo_scales(
    photo: np.ndarray, rng: np.random.Generator, count: int, short_sides: tuple[int, int]
) -> list[np.ndarray]:
    """Copies of a photo downscaled so that its short side falls in `short_sides`: cameras, phones and
    platforms all serve photos at many sizes, and the model must not read "smooth" as "fake"."""
    short = min(photo.shape[:2])
    out = []
    for _ in range(count):
        target = int(rng.integers(short_sides[0], short_sides[1] + 1))
        out.append(resize(photo, target / short) if target < short else photo)
    return out


def eval_regions(photo: np.ndarray, rng: np.random.Generator, count: int, size: int) -> list[np.ndarray]:
    """Image-sized regions of a photo for image-level evaluation of processes."""
    return _textured_regions(photo, count, rng, size=size)
