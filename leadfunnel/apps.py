from django.apps import AppConfig


class LeadFunnelConfig(AppConfig):
    name = "leadfunnel"
    verbose_name = "LeadFunnel core"
