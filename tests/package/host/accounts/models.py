"""A host project's own user model: people log in with their email address, and there is no
username field at all. Named Member (not User) so nothing may rely on the default's name."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models


class MemberManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> Member:
        member = self.model(email=self.normalize_email(email), **extra)
        member.set_password(password)
        member.save(using=self._db)
        return member

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> Member:
        return self.create_user(email, password, is_staff=True, is_superuser=True, **extra)


class Member(AbstractUser):
    username = None  # type: ignore[assignment]
    email = models.EmailField("email address", unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    objects = MemberManager()  # type: ignore[misc]
