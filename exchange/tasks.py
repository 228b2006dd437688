"""Celery tasks of the exchange: thin wrappers around the sync client and the StopNCII jobs."""

from __future__ import annotations

from celery import shared_task

from exchange.stopncii.client import StopNCIIClient
from exchange.stopncii.jobs import stopncii_bank, stopncii_send_feedback
from exchange.stopncii.jobs import stopncii_fetch as stopncii_fetch_job
from exchange.stopncii.store import StateFile
from exchange.sync import sync_all


@shared_task(name="exchange.tasks.sync_partners", ignore_result=True)
def sync_partners() -> None:
    """Pull every enabled remote and push our feedback (beat schedule ``exchange-sync``)."""
    sync_all()


@shared_task(name="exchange.tasks.stopncii_fetch", ignore_result=True)
def stopncii_fetch() -> None:
    """Fetch StopNCII's changed hashes into its bank from the checkpoint (beat ``stopncii-fetch``, set up only
    when the StopNCII keys are configured)."""
    stopncii_fetch_job(client=StopNCIIClient.from_settings(), bank=stopncii_bank(), state=StateFile.from_settings())


@shared_task(name="exchange.tasks.stopncii_feedback", ignore_result=True)
def stopncii_feedback() -> None:
    """Send our own verdicts on StopNCII's hashes changed since the last run (beat ``stopncii-feedback``)."""
    stopncii_send_feedback(client=StopNCIIClient.from_settings(), bank=stopncii_bank(),
                           state=StateFile.from_settings())
