"""One module per framework, each building the same benchmark application.

Every module exposes ``create_app()`` (the main app serving all plain scenarios) and
``create_hooks_app()`` (an app with before/after request hooks). A scenario names the
factory it needs; a module without that factory is reported as "n/a" for the scenario.
"""
