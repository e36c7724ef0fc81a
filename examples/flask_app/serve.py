"""The module servers load: the Flask application of ``notesapp``, served by Ampulla.

From the repository's root::

    ampulla --app examples.flask_app.serve:app db upgrade                  # create or update the schema
    gunicorn -w 2 -b 127.0.0.1:8000 examples.flask_app.serve:app           # WSGI
    uvicorn examples.flask_app.serve:app --interface asgi3 --port 8000    # ASGI

This is the only file that knows about Ampulla: its first import makes ``import flask`` (and
``flask_sqlalchemy``) resolve to Ampulla, and the application below it is plain Flask.
"""

import ampulla.flask_patch  # noqa: F401  (first: before anything imports flask)

# isort: split

from .notesapp import create_app

app = create_app()
