"""Demo data: a demo platform with generated, safe-for-work images, a demo bank and demo users.

Idempotent: running it again changes nothing that is already there.
"""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.db import transaction
from PIL import Image, ImageDraw, PngImagePlugin

from hashing.algorithms import hash_bytes
from hashing.banks import bank_add_entries, bank_get_or_create
from hashing.models import Bank
from moderation.audit import SYSTEM, audit_record
from moderation.models import DemoContentItem
from moderation.roles import ADMIN, MODERATOR, SENIOR, TRIAGE, roles_sync

DEMO_ITEMS = 36
# Items whose hashes the demo bank holds, so reporting them shows a match.
DEMO_BANKED = (3, 4, 5)
# Items saved as PNG with a Stable Diffusion web UI "parameters" chunk, so they score as AI-made.
DEMO_AI_LABELLED = (3, 7, 11)
DEMO_BANK = "demo-known-items"
DEMO_PASSWORD = "takedown-demo"  # noqa: S105 - printed by make run; demo instances only
DEMO_USERS = {"triage": TRIAGE, "moderator": MODERATOR, "senior": SENIOR, "admin": ADMIN}
SUBJECTS = ["lighthouse", "mountain", "harbour", "forest", "city", "desert", "lake", "bridge", "garden"]


@dataclass(frozen=True)
class DemoSummary:
    items_created: int
    bank_entries_added: int
    users_created: list[str]


def demo_image(number: int, size: int = 384) -> Image.Image:
    """A deterministic abstract landscape-like picture for demo item ``number``."""
    rng = random.Random(number)
    img = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(img)
    top = (rng.randrange(40, 200), rng.randrange(80, 220), rng.randrange(150, 255))
    bottom = (rng.randrange(20, 120), rng.randrange(60, 160), rng.randrange(20, 120))
    for y in range(size):
        t = y / size
        r, g, b = (int(a + (z - a) * t) for a, z in zip(top, bottom, strict=True))
        draw.line([(0, y), (size, y)], fill=(r, g, b))
    for _ in range(rng.randrange(3, 8)):
        x, y = rng.randrange(size), rng.randrange(size // 3, size)
        r = rng.randrange(size // 12, size // 4)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        if rng.random() < 0.5:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
        else:
            points = [(x + r * math.cos(a), y + r * math.sin(a)) for a in
                      (rng.uniform(0, 2 * math.pi) for _ in range(rng.randrange(3, 6)))]
            draw.polygon(points, fill=colour)
    sun = rng.randrange(size // 10, size // 5)
    sx, sy = rng.randrange(sun, size - sun), rng.randrange(sun, size // 3)
    draw.ellipse([sx - sun, sy - sun, sx + sun, sy + sun], fill=(255, 230, 120))
    return img


def demo_image_bytes(number: int) -> tuple[bytes, str]:
    img = demo_image(number)
    buf = io.BytesIO()
    if number in DEMO_AI_LABELLED:
        info = PngImagePlugin.PngInfo()
        subject = SUBJECTS[number % len(SUBJECTS)]
        info.add_text("parameters", f"a painting of a {subject} at dusk\nNegative prompt: blurry\n"
                                    f"Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: {number}, "
                                    "Size: 384x384, Model: demo")
        img.save(buf, format="PNG", pnginfo=info)
        return buf.getvalue(), "image/png"
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue(), "image/jpeg"


def seed_demo() -> DemoSummary:
    """Create the demo platform's items, the demo bank and the demo users if missing."""
    roles_sync()
    created_items = 0
    entries_added = 0
    with transaction.atomic():
        bank = bank_get_or_create(name=DEMO_BANK, kind=Bank.Kind.DEMO,
                                  description="Hashes of a few demo platform items, to show matching.")
        for number in range(1, DEMO_ITEMS + 1):
            if DemoContentItem.objects.filter(number=number).exists():
                continue
            data, mime = demo_image_bytes(number)
            ext = "png" if mime == "image/png" else "jpg"
            item = DemoContentItem(number=number, mime=mime, uploader=f"demo-user-{number % 7 + 1}",
                                   title=f"{SUBJECTS[number % len(SUBJECTS)].title()} #{number}")
            item.file.save(f"demo-{number}.{ext}", ContentFile(data), save=False)
            item.save()
            created_items += 1
            if number in DEMO_BANKED:
                hashes = hash_bytes(data)
                entries_added += len(bank_add_entries(
                    bank=bank, hashes=[("pdq", hashes.pdq), ("md5", hashes.md5)], source="seed_demo"))
        users = []
        user_model = get_user_model()
        for username, role in DEMO_USERS.items():
            user, made = user_model.objects.get_or_create(username=username, defaults={
                "is_staff": role == ADMIN, "is_superuser": role == ADMIN})
            if made:
                user.set_password(DEMO_PASSWORD)
                user.save()
                users.append(username)
            user.groups.add(Group.objects.get(name=role))
        if created_items or users:
            audit_record(actor=SYSTEM, action="demo.seeded", object_type="demo", object_id="1",
                         data={"items": created_items, "bank_entries": entries_added, "users": users})
    return DemoSummary(created_items, entries_added, users)
