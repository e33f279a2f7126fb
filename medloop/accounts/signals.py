"""Token revocation when what a token stood for changes: the password (a leaked token must not
outlive the password reset meant to lock an intruder out), deactivation, and the start of a
second-factor requirement (a granted role that needs one, superuser status, or an
authenticator app set up)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.signals import post_save, pre_save
from django_otp.plugins.otp_totp.models import TOTPDevice

from annotations.models import Membership
from medloop.accounts import second_factor
from medloop.accounts.tokens import revoke_tokens


def _user_changing(sender: Any, instance: Any, **_: Any) -> None:
    if instance.pk is None:
        return
    before = sender.objects.filter(pk=instance.pk).values("password", "is_active").first()
    if before is None:
        return
    if before["password"] != instance.password or (before["is_active"] and not instance.is_active):
        revoke_tokens(instance)


def _user_saved(sender: Any, instance: Any, created: bool, **_: Any) -> None:
    if not created and second_factor.needs_second_factor(instance):
        revoke_tokens(instance, unless_second_factor=True)


def _membership_saved(sender: Any, instance: Membership, **_: Any) -> None:
    if second_factor.required_by_role(instance.user):
        revoke_tokens(instance.user, unless_second_factor=True)


def _device_saved(sender: Any, instance: TOTPDevice, **_: Any) -> None:
    if instance.confirmed:
        revoke_tokens(instance.user, unless_second_factor=True)


def connect() -> None:
    user_model = get_user_model()
    pre_save.connect(_user_changing, sender=user_model, dispatch_uid="accounts.user_changing")
    post_save.connect(_user_saved, sender=user_model, dispatch_uid="accounts.user_saved")
    post_save.connect(_membership_saved, sender=Membership, dispatch_uid="accounts.membership")
    post_save.connect(_device_saved, sender=TOTPDevice, dispatch_uid="accounts.device")
