from django.apps import AppConfig


class MonitorConfig(AppConfig):
    name = "alliance.web.monitor"
    label = "monitor"
    verbose_name = "Monitoring: dashboards and alerts"
    default_auto_field = "django.db.models.BigAutoField"
