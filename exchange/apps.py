from django.apps import AppConfig


class ExchangeConfig(AppConfig):
    name = "exchange"
    verbose_name = "Hash exchange with partners"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here: these modules import models, which the app registry loads only after this module.
        from exchange.feedback import on_decision_carried_out, on_decision_reversed
        from exchange.selectors import partner_blocked_reasons
        from moderation.services.triage import match_evidence_register
        from moderation.signals import decision_carried_out, decision_reversed

        decision_carried_out.connect(on_decision_carried_out, dispatch_uid="exchange-own-verdicts")
        decision_reversed.connect(on_decision_reversed, dispatch_uid="exchange-own-verdicts-reversed")
        # Triage's partner_blocked reason: partners report they block a hash the case matched.
        match_evidence_register("exchange.partners_blocking", partner_blocked_reasons)
