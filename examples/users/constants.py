"""Roles of the example's users (the seed refers to ``constants.ROLE_USER``)."""

ROLE_USER = 0
ROLE_ADMIN = 1
ROLES = {ROLE_USER: "user", ROLE_ADMIN: "admin"}
