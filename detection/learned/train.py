"""Training the artefact model: seeded, with a progress bar, minutes on a CPU, a GPU when present."""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from detection.learned import data
from detection.learned.metrics import summary
from detection.learned.network import ArtefactNet, fit_calibration, image_mean_logits
from detection.learned.patches import Calibration, select_patches
from detection.learned.processes import TRAIN_PROCESSES


@dataclass
class TrainConfig:
    seed: int = 0
    processes: tuple[str, ...] = TRAIN_PROCESSES
    epochs: int = 12
    regions_per_photo: int = 20  # per scaled copy
    scales_per_photo: int = 3
    short_sides: tuple[int, int] = (320, 1400)
    ai_patches_per_image: int = 24
    width: int = 16
    batch_size: int = 64
    learning_rate: float = 4e-3
    device: str = "auto"
    validation_every: int = 5  # every 5th photo (and AI image) is held out for calibration
    eval_region: int = 256  # image-level validation items are regions of this size
    eval_regions_per_photo: int = 6
    notes: list[str] = field(default_factory=list)


@dataclass
class TrainResult:
    net: ArtefactNet
    calibration: Calibration
    threshold: float
    card: dict[str, Any]


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but torch sees no CUDA device here; use --device cpu.")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(
    photos: list[np.ndarray],
    config: TrainConfig,
    ai_images: list[np.ndarray] | None = None,
    progress: Any = None,  # a text stream for the progress bar (None: no bar)
    sources: dict[str, Any] | None = None,
) -> TrainResult:
    """Train on real `photos` (RGB float arrays) and fakes made from them by `config.processes`,
    plus `ai_images` (label 1) when given. Every `validation_every`-th photo / AI image is kept out of
    training and used only to fit the calibration."""
    started = time.monotonic()
    seed_everything(config.seed)
    rng = np.random.default_rng(config.seed)
    device = resolve_device(config.device)
    ai_images = ai_images or []
    train_photos = [photo for index, photo in enumerate(photos) if index % config.validation_every]
    val_photos = [photo for index, photo in enumerate(photos) if not index % config.validation_every]
    train_ai = [image for index, image in enumerate(ai_images) if index % config.validation_every]
    val_ai = [image for index, image in enumerate(ai_images) if not index % config.validation_every]
    if len(photos) <= config.validation_every:
        raise ValueError(f"Training needs at least {config.validation_every + 1} photos; got {len(photos)}.")

    scaled = [
        copy
        for photo in train_photos
        for copy in data.photo_scales(photo, rng, config.scales_per_photo, config.short_sides)
    ]
    x_parts, y_parts = [], []
    x, y = data.process_pairs(scaled, config.processes, rng, config.regions_per_photo)
    x_parts.append(x)
    y_parts.append(y)
    if train_ai:
        x_ai, y_ai = data.image_patches(train_ai, 1, rng, config.ai_patches_per_image)
        # As many real patches again from the photos, so adding AI images does not tilt the balance.
        x_real, y_real = data.image_patches(scaled, 0, rng, max(1, len(x_ai) // max(1, len(scaled))))
        x_parts += [x_ai, x_real]
        y_parts += [y_ai, y_real]
    x_all = torch.from_numpy(np.concatenate(x_parts)).unsqueeze(1)
    y_all = torch.from_numpy(np.concatenate(y_parts))

    net = ArtefactNet(width=config.width).to(device)
    optimiser = torch.optim.AdamW(net.parameters(), lr=config.learning_rate, weight_decay=1e-4)
    steps_per_epoch = (len(x_all) + config.batch_size - 1) // config.batch_size
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=config.learning_rate, total_steps=config.epochs * steps_per_epoch
    )
    loss_fn = nn.BCEWithLogitsLoss()
    generator = torch.Generator().manual_seed(config.seed)
    history: list[float] = []
    bar = tqdm(
        total=config.epochs * steps_per_epoch,
        desc="train_detector",
        unit="batch",
        file=progress,
        disable=progress is None,
        mininterval=1.0,
    )
    net.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(x_all), generator=generator)
        total = 0.0
        for start in range(0, len(order), config.batch_size):
            index = order[start : start + config.batch_size]
            batch = x_all[index]
            # Flips and 90-degree turns: the traces have no orientation, photos do.
            if torch.rand(1, generator=generator).item() < 0.5:
                batch = batch.flip(3)
            batch = torch.rot90(batch, int(torch.randint(0, 4, (1,), generator=generator)), dims=(2, 3))
            optimiser.zero_grad()
            loss = loss_fn(net(batch.to(device)), y_all[index].to(device))
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(index)
            bar.update(1)
        history.append(round(total / len(order), 4))
        bar.set_postfix(loss=history[-1])
    bar.close()
    net.eval()

    # Calibration on held-out photos: whole regions, real and processed, scored as images are.
    val_items: list[np.ndarray] = []
    val_labels: list[int] = []
    for photo in val_photos:
        for copy in data.photo_scales(photo, rng, 1, config.short_sides):
            size = min(config.eval_region, *copy.shape[:2])
            for region in data.eval_regions(copy, rng, config.eval_regions_per_photo, size):
                process = config.processes[int(rng.integers(len(config.processes)))]
                val_items += [region, data.PROCESSES[process](region, rng)]
                val_labels += [0, 1]
    for image in val_ai:
        val_items.append(image)
        val_labels.append(1)
    net_cpu = net.to("cpu")
    logits = image_mean_logits(net_cpu, [select_patches(data.grey(item)) for item in val_items])
    usable = [(logit, label) for logit, label in zip(logits, val_labels, strict=True) if logit is not None]
    mean_logits = np.array([logit for logit, _ in usable], dtype=np.float64)
    labels = np.array([label for _, label in usable])
    calibration = fit_calibration(mean_logits, labels)
    probabilities = np.array([calibration.probability(logit) for logit in mean_logits])
    validation = summary(labels, probabilities, 0.5, seed=config.seed)
    card = {
        "training": {
            "config": {
                key: (list(value) if isinstance(value, tuple) else value) for key, value in asdict(config).items()
            },
            "device": device,
            "seconds": round(time.monotonic() - started, 1),
            "patches": len(x_all),
            "photos_train": len(train_photos),
            "photos_validation": len(val_photos),
            "ai_images_train": len(train_ai),
            "ai_images_validation": len(val_ai),
            "loss_per_epoch": history,
            "parameters": sum(parameter.numel() for parameter in net.parameters()),
            "torch": torch.__version__,
            "sources": sources or {},
        },
        "evaluation": {"validation_processes": validation},
    }
    return TrainResult(net_cpu, calibration, 0.5, card)
