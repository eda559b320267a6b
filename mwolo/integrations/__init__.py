"""The platform's side of outside parties, each behind a small interface chosen from settings.

``payments``: the mobile-money operators (docs/payments.md).
"""
