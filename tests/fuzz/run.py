"""Coverage-guided fuzzing of one target with atheris (libFuzzer).

Usage (from the repository root)::

    python -m tests.fuzz.run TARGET --runs N [--seed S] [--skip-known] [--max-total-time SECONDS] [-- FLAGS]

The seeds and every input that once failed are read from ``tests/corpus/TARGET/`` (read-only: new coverage
goes to a temporary directory, deleted afterwards). A crashing input is written to
``tests/corpus/TARGET/crash-<sha1>`` (``timeout-``/``oom-`` for hangs and memory blow-ups), where
``tests/test_fuzz.py`` replays it on every run: commit it with the fix. An input already in the corpus (a known
failure, not fixed yet) fails the run again but is not saved twice.

libFuzzer flags used: ``-runs=N -seed=S -max_len=8192 -timeout=10 -rss_limit_mb=1024``, the target's
dictionary from ``tests/fuzz/dicts/`` when there is one, and anything after ``--``. ``ampulla``,
``multipart`` and ``itsdangerous`` are instrumented for coverage. The parent process runs the fuzzer in a child
(``PYTHONHASHSEED=0``), passes its output on to standard error (the broken invariant included), prints
``executions: N`` from libFuzzer's final stats, and exits with the child's code: 0 when every input kept the
invariants. Modules whose branches follow thread timing rather than the input are not instrumented, so a seed
explores the same inputs however busy the machine is.

``--skip-known`` ignores failures matching ``targets.KNOWN_BUGS`` (reported bugs), to explore past them.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CORPUS_ROOT = REPO / "tests" / "corpus"
DICT_ROOT = HERE / "dicts"
TARGET_NAMES = ("router", "url_build", "query", "urlencoded", "multipart", "cookies", "json", "range", "session",
                "request")
#: The modules a target exercises; imported under instrumentation (ampulla imports some of them lazily).
INSTRUMENTED_MODULES = (
    "ampulla", "ampulla.app", "ampulla.asgi", "ampulla.wsgi", "ampulla.routing", "ampulla.formparser",
    "ampulla.http", "ampulla.wrappers", "ampulla.response", "ampulla.sessions", "ampulla.sendfile",
    "ampulla.datastructures", "ampulla.blueprints", "ampulla.helpers", "ampulla.json", "ampulla.utils",
    "ampulla.exceptions", "ampulla.ctx", "ampulla.cycle", "ampulla.endpoint", "ampulla.concurrency",
    "ampulla.proxy_fix", "multipart", "itsdangerous",
)
#: Modules whose branches depend on thread timing (which pool worker is idle), not on the input: instrumented,
#: they would steer the fuzzer differently from run to run.
UNINSTRUMENTED_MODULES = ("ampulla.threadpool",)
_STAT_RE = re.compile(r"stat::number_of_executed_units:\s*(\d+)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.run", description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=TARGET_NAMES)
    parser.add_argument("--runs", type=int, default=3000, help="inputs to try (libFuzzer -runs); default 3000")
    parser.add_argument("--seed", type=int, default=1, help="libFuzzer -seed (fixed for reproducible runs)")
    parser.add_argument("--max-len", type=int, default=8192)
    parser.add_argument("--timeout", type=int, default=10, help="seconds per input before it counts as a hang")
    parser.add_argument("--rss-limit-mb", type=int, default=1024)
    parser.add_argument("--max-total-time", type=int, default=0, help="stop after this many seconds (0: no limit)")
    parser.add_argument("--skip-known", action="store_true", help="ignore failures of the reported bugs")
    parser.add_argument("--worker", metavar="OUTPUT_CORPUS", help=argparse.SUPPRESS)
    parser.epilog = "Flags after -- go to libFuzzer unchanged, e.g. -- -max_total_time=60 -jobs=1."
    return parser


def _libfuzzer_args(options: argparse.Namespace, output_corpus: str) -> list[str]:
    corpus = CORPUS_ROOT / options.target
    args = [
        output_corpus,  # libFuzzer writes new inputs to the first directory only
        str(corpus),
        f"-runs={options.runs}",
        f"-seed={options.seed}",
        f"-max_len={options.max_len}",
        f"-timeout={options.timeout}",
        f"-rss_limit_mb={options.rss_limit_mb}",
        f"-artifact_prefix={corpus}{os.sep}",
        "-print_final_stats=1",
    ]
    if options.max_total_time:
        args.append(f"-max_total_time={options.max_total_time}")
    dictionary = DICT_ROOT / f"{options.target}.dict"
    if dictionary.exists():
        args.append(f"-dict={dictionary}")
    return args + list(options.libfuzzer)


def _worker(options: argparse.Namespace) -> None:
    import importlib

    import atheris

    with atheris.instrument_imports(include=["ampulla", "multipart", "itsdangerous"], exclude=UNINSTRUMENTED_MODULES):
        for name in INSTRUMENTED_MODULES:
            importlib.import_module(name)
    from .harness import InvariantError, get_app
    from .targets import KNOWN_BUGS, TARGETS

    get_app()
    target = TARGETS[options.target]
    skip_known = options.skip_known

    def test_one_input(data: bytes) -> None:
        try:
            target(data)
        except InvariantError as e:
            if skip_known and any(pattern.search(str(e)) for pattern in KNOWN_BUGS.values()):
                return
            raise

    atheris.Setup([sys.argv[0], *_libfuzzer_args(options, options.worker)], test_one_input)
    atheris.Fuzz()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    own, extra = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    options = _parser().parse_args(own)
    options.libfuzzer = extra
    if options.worker:
        _worker(options)
        return 0  # pragma: no cover - atheris.Fuzz() exits the process
    corpus = CORPUS_ROOT / options.target
    corpus.mkdir(parents=True, exist_ok=True)
    before = {path.name for path in corpus.iterdir()}
    known = {_digest(path) for path in corpus.iterdir() if path.is_file()}
    output_corpus = tempfile.mkdtemp(prefix=f"ampulla-fuzz-{options.target}-")
    command = [sys.executable, "-m", "tests.fuzz.run", f"--worker={output_corpus}", *argv]
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    executions = 0
    try:
        # libFuzzer reports on stderr, atheris prints the failing invariant on stdout: one stream, in order.
        with subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, errors="replace") as process:
            assert process.stdout is not None
            for line in process.stdout:  # pass it on, keep the final count
                sys.stderr.write(line)
                found = _STAT_RE.search(line)
                if found:
                    executions = int(found.group(1))
        code = process.returncode
    finally:
        shutil.rmtree(output_corpus, ignore_errors=True)
    sys.stderr.flush()
    for path in sorted(corpus.iterdir()):
        if path.name in before or not path.is_file():
            continue
        if _digest(path) in known:  # libFuzzer saves the failing input even when it came from the corpus
            path.unlink()
            print(f"known failing input (already in {corpus.relative_to(REPO)}); not saved again", flush=True)
        else:
            print(f"new failing input saved: {path.relative_to(REPO)}", flush=True)
    print(f"target: {options.target}  executions: {executions}  exit code: {code}", flush=True)
    return code


def _digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes(), usedforsecurity=False).hexdigest()


if __name__ == "__main__":
    sys.exit(main())
