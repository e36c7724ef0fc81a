"""``app.cli`` custom commands and ``app.test_cli_runner()``."""

from __future__ import annotations

import click
import pytest

from ampulla import Ampulla, current_app


def test_custom_command_runs_in_app_context(app: Ampulla) -> None:
    @app.cli.command("greet")
    @click.argument("name")
    def greet(name: str) -> None:
        click.echo(f"hello {name} from {current_app.name}")

    result = app.test_cli_runner().invoke(args=["greet", "Ann"])
    assert result.exit_code == 0, result.output
    assert result.output == "hello Ann from test_app\n"


def test_app_run_is_ignored_inside_the_cli(
    app: Ampulla, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AMPULLA_RUN_FROM_CLI", "true")
    app.run()  # returns at once instead of starting a second server
    assert "Ignoring app.run()" in capsys.readouterr().err
