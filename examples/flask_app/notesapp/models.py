"""The two tables: users and their notes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import db

#: Compared against when the username is unknown, so a sign-in takes as long whether or not the user exists.
_UNKNOWN_USER_HASH = generate_password_hash("not a password of anyone")


def utcnow() -> datetime:
    """The current UTC time, naive (as SQLite stores it)."""
    return datetime.now(UTC).replace(tzinfo=None)


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    notes: Mapped[list[Note]] = relationship(back_populates="author", cascade="all, delete-orphan")

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @staticmethod
    def check_unknown(password: str) -> bool:
        """Spend the time of a password check for a username that does not exist; always False."""
        check_password_hash(_UNKNOWN_USER_HASH, password)
        return False


class Note(db.Model):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    author: Mapped[User] = relationship(back_populates="notes")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "body": self.body, "created_at": self.created_at.isoformat() + "Z"}
