"""The seed's ``User`` model, verbatim, on Ampulla's data layer."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import Column, Integer, SmallInteger, String

from ampulla.db import Database

from . import constants

db = Database()


class UserBase:
    """Behaviour shared by user models: roles and password hashing (scrypt; the password is never stored)."""

    role: int
    password: str

    def is_admin(self) -> bool:
        return self.role == constants.ROLE_ADMIN

    @property
    def role_name(self) -> str:
        return constants.ROLES.get(self.role, "user")

    def set_password(self, raw: str) -> None:
        salt = secrets.token_bytes(16)
        digest = hashlib.scrypt(raw.encode("utf-8"), salt=salt, n=2**14, r=8, p=1)
        self.password = f"scrypt${salt.hex()}${digest.hex()}"

    def check_password(self, raw: str) -> bool:
        try:
            scheme, salt_hex, digest_hex = self.password.split("$")
        except (AttributeError, ValueError):
            return False
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(raw.encode("utf-8"), salt=bytes.fromhex(salt_hex), n=2**14, r=8, p=1)
        return hmac.compare_digest(digest.hex(), digest_hex)


class User(UserBase, db.Model):
    __tablename__ = 'user'
    __table_args__ = {'sqlite_autoincrement': True}

    id = Column(Integer, primary_key=True)
    name = Column(String(64), unique=True)
    email = Column(String(120), unique=True, default="")
    role = Column(SmallInteger, default=constants.ROLE_USER)
    password = Column(String)

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "email": self.email, "role": self.role_name}
