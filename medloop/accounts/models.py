"""How each API token was issued: a token of a user who must use a second factor is accepted
only when it was issued with a verified code (see medloop.accounts.tokens)."""

from __future__ import annotations

from django.db import models
from rest_framework.authtoken.models import Token


class TokenGrant(models.Model):
    token = models.OneToOneField(Token, on_delete=models.CASCADE, related_name="grant")
    second_factor = models.BooleanField(
        default=False, help_text="Issued after a verified second-factor code."
    )
    issued_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        how = "with" if self.second_factor else "without"
        return f"token of {self.token.user_id} issued {how} a second factor"
