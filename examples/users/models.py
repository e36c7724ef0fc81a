"""The seed's ``User`` model, verbatim, on Ampulla's data layer."""

from __future__ import annotations

import concurrent.futures
import hashlib
import hmac
import os
import secrets

from sqlalchemy import Column, Integer, SmallInteger, String

from ampulla.db import Database

from . import constants

db = Database()


#: Threads that hash passwords. scrypt allocates a 16 MiB buffer per hash (128 * r * n bytes), and glibc's
#: malloc keeps such a block in the arena of the thread that freed it; hashed in any of the server's threads
#: (up to 40 for ``def`` views under ASGI) each thread's arena ends up holding one, and the worker's memory grows
#: in 16 MiB steps. Two long-lived threads hold at most two. See docs/security.md ("Memory").
HASH_THREADS = max(1, min(2, os.cpu_count() or 1))
_hash_pool = concurrent.futures.ThreadPoolExecutor(max_workers=HASH_THREADS, thread_name_prefix="password-hash")


def scrypt(raw: bytes, salt: bytes, n: int) -> bytes:
    """``hashlib.scrypt(raw, salt=salt, n=n, r=8, p=1)``, computed in the small password-hashing pool."""
    return _hash_pool.submit(hashlib.scrypt, raw, salt=salt, n=n, r=8, p=1).result()


def _scrypt_cost() -> int:
    """The scrypt work factor: ``PASSWORD_SCRYPT_N`` of the current app (2**14 by default)."""
    from ampulla import current_app

    try:
        return int(current_app.config.get("PASSWORD_SCRYPT_N", 2**14))
    except RuntimeError:
        return 2**14


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
        n = _scrypt_cost()
        digest = scrypt(raw.encode("utf-8"), salt, n)
        self.password = f"scrypt${n}${salt.hex()}${digest.hex()}"

    def check_password(self, raw: str) -> bool:
        try:
            scheme, n_text, salt_hex, digest_hex = self.password.split("$")
            n = int(n_text)
        except (AttributeError, ValueError):
            return False
        if scheme != "scrypt" or n < 2 or n & (n - 1):
            return False
        digest = scrypt(raw.encode("utf-8"), bytes.fromhex(salt_hex), n)
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
