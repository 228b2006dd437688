"""``manage.py partner add|policy|key|rotate|remote|list``: partners, their policy, keys and remotes.

Every subcommand but ``list`` changes them and needs ``--user``, an admin holding
``moderation.manage_partners``, whom its audit events name as the actor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from exchange.models import KeyScope, PartnerPolicy, Remote
from exchange.partners import (
    partner_create,
    partner_key_create,
    partner_key_rotate,
    partner_policy,
    partner_policy_set,
)
from exchange.signing import BadPublicKey, check_public_key
from exchange.validation import ExchangeError
from hashing.banks import bank_get_or_create
from hashing.management.command_user import add_user_argument
from hashing.models import Bank
from moderation.audit import audit_record
from moderation.management.acting import acting_as
from moderation.models import ApiKey, Partner
from moderation.roles import PERM_MANAGE_PARTNERS

CHANGES = {"add": "add partners", "policy": "change partners' policies", "key": "create partner keys",
           "rotate": "rotate partner keys", "remote": "configure partners' remotes"}  # subcommand: what it does


def _banks(names: list[str]) -> list[Bank]:
    found = {b.name: b for b in Bank.objects.filter(name__in=names)}
    missing = [n for n in names if n not in found]
    if missing:
        raise CommandError(f"No bank named {', '.join(missing)}; see 'manage.py bank list'.")
    return [found[n] for n in names]


def _partner(name: str) -> Partner:
    try:
        return Partner.objects.get(name=name)
    except Partner.DoesNotExist:
        raise CommandError(f"No partner named {name!r}; see 'manage.py partner list'.") from None


class Command(BaseCommand):
    help = "Manage exchange partners: add, policy, key, rotate, remote, list. Keys are printed once."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="Add a partner with its policy.")
        add.add_argument("name")
        add.add_argument("--organisation", required=True)
        add.add_argument("--trust", default=Partner.Trust.LOW, choices=Partner.Trust.values)
        add.add_argument("--auto-action", default=PartnerPolicy.AutoAction.QUEUE_FOR_REVIEW,
                         choices=PartnerPolicy.AutoAction.values)
        add.add_argument("--allow-bank", action="append", default=[], help="A bank the partner may read (repeat).")
        add.add_argument("--public-key", action="append", default=[],
                         help="The partner's Ed25519 public key, base64 (repeat while it rotates).")
        policy = sub.add_parser("policy", help="Change a partner's policy (only the options given).")
        policy.add_argument("name")
        policy.add_argument("--trust", choices=Partner.Trust.values)
        policy.add_argument("--auto-action", choices=PartnerPolicy.AutoAction.values)
        policy.add_argument("--allow-bank", action="append", help="Replaces the allow-list (repeat).")
        policy.add_argument("--public-key", action="append", help="Replaces the pinned keys (repeat).")
        key = sub.add_parser("key", help="Create a scoped API key for a partner; printed once.")
        key.add_argument("name")
        key.add_argument("--read", action="append", default=[], help="A bank the key may read (repeat).")
        key.add_argument("--write", action="store_true", help="The key may push into the partner's bank.")
        key.add_argument("--feedback", action="store_true", help="The key may send feedback.")
        rotate = sub.add_parser("rotate", help="Replace a key (by prefix): same scope, the old one revoked.")
        rotate.add_argument("prefix")
        remote = sub.add_parser("remote", help="Configure the remote instance of a partner that we pull from.")
        remote.add_argument("name")
        remote.add_argument("--url", required=True, help="Base URL of the remote instance, e.g. https://x.example")
        remote.add_argument("--bank", required=True, help="Local bank its hashes go to (created if missing).")
        remote.add_argument("--public-key", required=True, help="The remote instance's public key, base64.")
        remote.add_argument("--api-key-file", required=True, type=Path,
                            help="File holding the key the remote issued us (read once; never echoed).")
        remote.add_argument("--page-size", type=int, default=1000)
        for parser_of_change in (add, policy, key, rotate, remote):
            add_user_argument(parser_of_change)
        sub.add_parser("list", help="List partners, their policy, keys and remotes.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "list":  # reads only: see docs/security.md, "Admin rights"
            self._list(options)
            return
        with acting_as(options.get("user"), PERM_MANAGE_PARTNERS, CHANGES[options["action"]]) as actor:
            try:
                getattr(self, f"_{options['action']}")(options, actor)
            except ExchangeError as exc:
                raise CommandError(str(exc)) from exc

    def _add(self, o: dict[str, Any], actor: str) -> None:
        partner = partner_create(name=o["name"], organisation=o["organisation"], trust_level=o["trust"],
                                 auto_action=o["auto_action"], allowed_banks=_banks(o["allow_bank"]),
                                 public_keys=o["public_key"], actor=actor)
        self.stdout.write(f"Added partner {partner.name!r}.")

    def _policy(self, o: dict[str, Any], actor: str) -> None:
        partner = _partner(o["name"])
        partner_policy_set(partner=partner, auto_action=o["auto_action"], trust_level=o["trust"],
                           allowed_banks=_banks(o["allow_bank"]) if o["allow_bank"] is not None else None,
                           public_keys=o["public_key"], actor=actor)
        self.stdout.write(f"Updated the policy of {partner.name!r}.")

    def _key(self, o: dict[str, Any], actor: str) -> None:
        partner = _partner(o["name"])
        row, key = partner_key_create(partner=partner, read_banks=_banks(o["read"]), write=o["write"],
                                      feedback=o["feedback"], actor=actor)
        self.stdout.write(f"Created partner key (prefix {row.prefix}) for {partner.name!r}. Store it now; "
                          "it cannot be shown again:")
        self.stdout.write(key)

    def _rotate(self, o: dict[str, Any], actor: str) -> None:
        try:
            old = ApiKey.objects.get(prefix=o["prefix"], kind=ApiKey.Kind.PARTNER)
        except ApiKey.DoesNotExist:
            raise CommandError(f"No partner key with prefix {o['prefix']!r}.") from None
        row, key = partner_key_rotate(api_key=old, actor=actor)
        self.stdout.write(f"Revoked {old.prefix}; new key (prefix {row.prefix}). Store it now; it cannot be "
                          "shown again:")
        self.stdout.write(key)

    def _remote(self, o: dict[str, Any], actor: str) -> None:
        partner = _partner(o["name"])
        try:
            public_key = check_public_key(o["public_key"])
        except BadPublicKey as exc:
            raise CommandError(f"--public-key: {exc}") from exc
        try:
            api_key = o["api_key_file"].read_text().strip()
        except OSError as exc:
            raise CommandError(f"--api-key-file cannot be read: {exc.strerror}") from exc
        if not api_key:
            raise CommandError("--api-key-file is empty.")
        if not 1 <= o["page_size"] <= 10000:
            raise CommandError("--page-size must be from 1 to 10000.")
        with transaction.atomic():
            bank = bank_get_or_create(name=o["bank"], kind=Bank.Kind.PARTNER,
                                      description=f"Hashes pulled from partner {partner.name}.")
            remote, created = Remote.objects.update_or_create(
                partner=partner, defaults={"base_url": o["url"].rstrip("/"), "bank": bank, "public_key": public_key,
                                           "api_key": api_key, "page_size": o["page_size"]})
            partner_policy_set(partner=partner, actor=actor)  # applies the auto-action to the bank
            audit_record(actor=actor, action="exchange.remote_configured", object_type="partner",
                         object_id=partner.pk, data={"url": remote.base_url, "bank": bank.name, "created": created})
        self.stdout.write(f"Remote of {partner.name!r} pulls into bank {bank.name!r}.")

    def _list(self, o: dict[str, Any]) -> None:
        for partner in Partner.objects.order_by("name"):
            policy = partner_policy(partner)
            banks = ", ".join(sorted(b.name for b in policy.allowed_banks.all())) or "-"
            self.stdout.write(f"{partner.name} ({partner.organisation}) trust={partner.trust_level} "
                              f"action={policy.auto_action} enabled={partner.enabled} allowed={banks} "
                              f"pinned_keys={len(policy.public_keys)}")
            for scope in KeyScope.objects.filter(api_key__partner=partner).select_related("api_key", "write_bank"):
                key = scope.api_key
                state = "revoked" if key.revoked_at else "active"
                reads = ", ".join(sorted(b.name for b in scope.read_banks.all())) or "-"
                self.stdout.write(f"  key {key.prefix} {state} read={reads} "
                                  f"write={scope.write_bank.name if scope.write_bank else '-'} "
                                  f"feedback={scope.feedback}")
            remote = Remote.objects.filter(partner=partner).select_related("bank").first()
            if remote is not None:
                self.stdout.write(f"  remote {remote.base_url} -> bank {remote.bank.name} "
                                  f"applied={remote.records_applied} last_synced={remote.last_synced_at}")
