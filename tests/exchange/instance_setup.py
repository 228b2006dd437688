"""Run inside one instance's own process (``manage.py shell -c``) by test_two_instances: sets up that
instance through its services and prints one JSON line for the test."""

from __future__ import annotations

import json
import os

from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token

from exchange.partners import partner_create, partner_key_create
from exchange.signing import instance_public_key_b64
from hashing.banks import bank_add_entries, bank_get_or_create
from moderation.models import Partner
from moderation.roles import ADMIN, MODERATOR, roles_sync
from moderation.services.api_keys import api_key_create
from moderation.services.demo import seed_demo


def setup_a(extra: int, b_public_key: str) -> None:
    """Instance A: demo content, a moderator with an API token, ``extra`` more confirmed hashes, and partner
    "bravo" (instance B) allowed to read the confirmed bank and send feedback."""
    seed_demo()
    roles_sync()
    moderator = User.objects.create_user(username="mod-a", password="unused-" + os.urandom(8).hex())
    moderator.groups.add(Group.objects.get(name=MODERATOR))
    token = Token.objects.create(user=moderator)
    confirmed = bank_get_or_create(name="confirmed-takedowns")
    bank_add_entries(bank=confirmed, hashes=[("md5", f"{i:032x}") for i in range(1, extra + 1)],
                     source="case:TD-BULK-0001")
    bravo = partner_create(name="bravo", organisation="Bravo", trust_level="high", allowed_banks=[confirmed],
                           public_keys=[b_public_key])
    _row, key = partner_key_create(partner=bravo, read_banks=[confirmed], feedback=True)
    print(json.dumps({"token": token.key, "key": key}))


def setup_b(remote_key_file: str, a_public_key: str, urls: str) -> None:
    """Instance B: a platform key, and one remote per ``name=url`` pulling A into bank ``from-<name>``."""
    from django.core.management import call_command

    _row, platform_key = api_key_create(kind="platform", name="host platform")
    roles_sync()
    operator = User.objects.create_user(username="admin-b", password="unused-" + os.urandom(8).hex())
    operator.groups.add(Group.objects.get(name=ADMIN))  # runs `manage.py partner remote --user admin-b`
    for pair in urls.split(","):
        name, url = pair.split("=", 1)
        partner_create(name=name, organisation="Alpha", trust_level="high", auto_action="block_on_match")
        call_command("partner", "remote", "--user", "admin-b", name, "--url", url, "--bank", f"from-{name}",
                     "--public-key", a_public_key, "--api-key-file", remote_key_file,
                     "--page-size", "2" if name == "alpha-paged" else "1000")
    print(json.dumps({"platform_key": platform_key, "public_key": instance_public_key_b64(),
                      "partners": sorted(Partner.objects.values_list("name", flat=True))}))

