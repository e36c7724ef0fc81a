"""A Flask application written against Flask and its extensions only, served by Ampulla (see README.md).

The application is the ``notesapp`` package; ``serve.py`` is the module servers load. This file imports
nothing, so that ``serve.py`` can load ``ampulla.flask_patch`` before anything imports Flask.
"""
