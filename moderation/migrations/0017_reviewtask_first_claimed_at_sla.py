from django.db import migrations, models
from django.db.models import F


def backfill(apps, schema_editor):
    """A case still claimed now was first claimed no later than its current claim: the best figure we have."""
    ReviewTask = apps.get_model("moderation", "ReviewTask")
    ReviewTask.objects.filter(first_claimed_at=None, claimed_at__isnull=False).update(first_claimed_at=F("claimed_at"))


class Migration(migrations.Migration):

    dependencies = [
        ("moderation", "0016_scanner_finding"),
    ]

    operations = [
        migrations.AddField(
            model_name="reviewtask",
            name="first_claimed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
