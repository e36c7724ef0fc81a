"""Hostile-input fuzzing for Ampulla.

- ``harness``: the application under test (every converter, form/multipart/JSON/cookie/session/send_file/range
  views) and the drivers that push one request through its raw WSGI callable and its ASGI callable, checking
  the invariants: a 4xx or a correct answer, never a 500, no exception out of the callable, no logged error,
  a well-formed response, bounded memory.
- ``targets``: one ``target_<name>(data: bytes) -> None`` per surface; the same byte decoding is used under
  atheris and when replaying ``tests/corpus/<name>/*``, so a crash file replays byte for byte.
- ``run``: ``python -m tests.fuzz.run TARGET --runs N [--seed S]``, the coverage-guided (libFuzzer) runner.
"""
