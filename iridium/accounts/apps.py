from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "iridium.accounts"
    label = "accounts"
    verbose_name = "Accounts and plans"
