"""Flask extensions, unchanged, on Ampulla through ``ampulla.flask_patch``: each module builds an app as the
extension's documentation does and drives it over WSGI and ASGI."""
