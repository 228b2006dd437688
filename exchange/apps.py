from django.apps import AppConfig


class ExchangeConfig(AppConfig):
    name = "exchange"
    verbose_name = "Hash exchange with partners"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from exchange.signals import on_decision_carried_out, on_decision_reversed
        from moderation.signals import decision_carried_out, decision_reversed

        decision_carried_out.connect(on_decision_carried_out, dispatch_uid="exchange-own-verdicts")
        decision_reversed.connect(on_decision_reversed, dispatch_uid="exchange-own-verdicts-reversed")
