from django.db import migrations, models


class Migration(migrations.Migration):
    """Audit events record the request that caused them (``X-Request-ID``). Null on every event written before:
    the hash chain's encoding leaves an unset request id out, so those events still verify."""

    dependencies = [
        ("moderation", "0009_dsa_submission_dead_letter"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="request_id",
            field=models.CharField(blank=True, max_length=128, null=True),
        ),
    ]
