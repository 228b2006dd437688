from django.db import migrations, models


class Migration(migrations.Migration):
    """A statement the Transparency Database refused (4xx) is a dead letter: ``submit_refused_at`` is set,
    ``submit_error`` holds the reason, and it is sent again only when someone asks for it."""

    dependencies = [
        ("moderation", "0008_report_receipt_queued_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="statementofreasons",
            name="submit_refused_at",
            field=models.DateTimeField(
                blank=True, db_index=True, null=True,
                help_text="When the Transparency Database refused this statement (a dead letter: not resent "
                          "automatically; see submit_error for the reason)."),
        ),
    ]
