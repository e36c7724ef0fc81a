"""The forms. Each is a ``FlaskForm``: it carries a CSRF token, and a post without a valid one is refused."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, EqualTo, Length, Regexp


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


def _lower(value: str | None) -> str | None:
    return value.lower() if isinstance(value, str) else value


USERNAME = [
    DataRequired(),
    Length(min=3, max=40),
    Regexp(r"^[a-z0-9_.-]+$", message="Use letters, digits, '.', '_' and '-' only."),
]


class SignUpForm(FlaskForm):
    username = StringField("Username", validators=USERNAME, filters=[_strip, _lower])
    password = PasswordField("Password", validators=[DataRequired(), Length(min=8, max=128)])
    confirm = PasswordField(
        "Repeat the password", validators=[DataRequired(), EqualTo("password", message="The passwords differ.")]
    )
    submit = SubmitField("Sign up")


class SignInForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=40)], filters=[_strip, _lower])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=128)])
    remember = BooleanField("Remember me")
    submit = SubmitField("Sign in")


class NoteForm(FlaskForm):
    body = TextAreaField("New note", validators=[DataRequired(), Length(max=2000)], filters=[_strip])
    submit = SubmitField("Save note")
