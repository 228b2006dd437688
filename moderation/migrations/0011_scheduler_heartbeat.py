from django.db import migrations, models


class Migration(migrations.Migration):
    """The scheduler's heartbeat, written by a beat task and read by ``/readyz`` (services/readiness.py)."""

    dependencies = [
        ("moderation", "0010_audit_request_id"),
    ]

    operations = [
        migrations.CreateModel(
            name="Heartbeat",
            fields=[
                ("name", models.CharField(max_length=50, primary_key=True, serialize=False)),
                ("beat_at", models.DateTimeField()),
            ],
        ),
    ]
