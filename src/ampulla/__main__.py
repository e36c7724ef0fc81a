"""``python -m ampulla``: the same as the ``ampulla`` command."""

from .cli import main

if __name__ == "__main__":
    main()
