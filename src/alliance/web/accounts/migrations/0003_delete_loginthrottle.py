# Login throttling moved to django-axes (its own table, axes_accessattempt); see accounts/throttle.py.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0002_memberships_throttle'),
    ]

    operations = [
        migrations.DeleteModel(
            name='LoginThrottle',
        ),
    ]
