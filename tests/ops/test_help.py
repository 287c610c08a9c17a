"""`--help` of every command: what it does, its defaults, an example and its exit codes; and
only the options it implements, the others refused as usage errors (exit 2)."""

from __future__ import annotations

import re

import pytest

from pipelines.cli import build_parser, main

COMMANDS = ("run", "backfill", "report", "views", "check", "sql", "demo", "sandbox", "cleanup")
TARGET = ("--duckdb", "--destination", "--dataset", "--pipelines-dir", "--config-dir")
OUTPUT = ("--json", "--quiet", "--verbose")

# options each command offers, and options of other commands it must not offer
OFFERED = {
    "run": (*TARGET, *OUTPUT, "--bulk-sync-id", "--shard", "--progress"),
    "backfill": (*TARGET, *OUTPUT, "--shard", "--since", "--until", "--full", "--yes"),
    "report": (*TARGET, *OUTPUT, "--html", "--since", "--sync"),
    "views": (*TARGET, *OUTPUT),
    "check": (*TARGET, *OUTPUT),
    "sql": (*TARGET, *OUTPUT, "--csv"),
    "demo": ("--duckdb", "--html"),
    "sandbox": ("--port", "--seed", "--syncs", "--executions"),
    "cleanup": ("--pipelines-dir", "--yes", *OUTPUT),
}
NOT_OFFERED = {
    "run": ("--since", "--until", "--full", "--html", "--sync", "--csv"),
    "backfill": ("--html", "--sync", "--csv"),
    "report": ("--bulk-sync-id", "--shard", "--progress", "--until", "--full", "--csv"),
    "views": ("--html", "--since", "--sync", "--csv", "--shard", "--bulk-sync-id", "--progress"),
    "check": ("--html", "--since", "--sync", "--csv", "--shard", "--progress"),
    "sql": ("--html", "--since", "--sync", "--shard", "--bulk-sync-id", "--progress"),
    "demo": (*OUTPUT, "--dataset", "--destination", "--config-dir", "--since", "--port"),
    "sandbox": (*OUTPUT, *TARGET, "--html"),
    "cleanup": ("--duckdb", "--destination", "--dataset", "--config-dir", "--shard", "--since"),
}
VALUED = {"--since", "--until", "--html", "--sync", "--shard", "--bulk-sync-id", "--progress"}
VALUED |= {"--dataset", "--destination", "--config-dir", "--duckdb", "--pipelines-dir", "--port"}


def help_of(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def offered(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", text))


def test_the_commands_are_the_ones_this_file_knows():
    parser = build_parser()
    choices = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert tuple(choices) == COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_help_says_what_defaults_an_example_and_the_exit_codes(command, capsys):
    text = help_of(command, capsys)
    usage, description = text.split("\n\n")[:2]
    assert usage.startswith(f"usage: polytomic-etl {command} ")
    assert len(description.splitlines()) == 1 and description.endswith(".")  # one line
    assert "(default: " in text
    example = text.split("\nexample:\n", 1)[1].splitlines()[0]
    assert example.startswith(f"  polytomic-etl {command} ")
    codes = text.split("\nexit codes:\n", 1)[1].splitlines()
    numbers = [line.split()[0] for line in codes if re.match(r"  \d ", line)]
    assert numbers[0] == "0" and "4" not in numbers  # 4 is kept for `report --fail-on`
    assert numbers == sorted(numbers)


def test_help_gives_the_defaults_that_matter(capsys):
    texts = {command: " ".join(help_of(command, capsys).split()) for command in COMMANDS}
    for command in ("run", "backfill", "report", "views", "check", "sql"):
        assert "dataset / schema name (default: polytomic)" in texts[command], command
        assert "(default: ./polytomic_etl.duckdb)" in texts[command], command
    assert "default: 30 days before the report's clock" in texts["report"]
    for command in ("run", "backfill"):
        assert "numbered from 0 (0/2 and 1/2)" in texts[command], command
        codes = texts[command].split("exit codes:")[1]
        for code in ("0 ok", "1 the run failed", "2 configuration", "3 another run", "5 inter"):
            assert code in codes, (command, code)
    assert "0 picks a free port (default: 8765)" in texts["sandbox"]
    assert "(default: 1)" in texts["sandbox"].split("--seed SEED", 2)[2]
    assert "(default: demo.duckdb)" in texts["demo"]
    assert "(default: ~/.dlt/pipelines, /var/dlt/pipelines as root)" in texts["cleanup"]
    assert "(default: only list what would go)" in texts["cleanup"]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_offers_only_what_it_implements(command, capsys):
    text = help_of(command, capsys)
    shown = offered(text.split("\nexample:\n")[0])
    assert set(OFFERED[command]) <= shown, set(OFFERED[command]) - shown
    assert not shown & set(NOT_OFFERED[command]), shown & set(NOT_OFFERED[command])
    for option in NOT_OFFERED[command]:
        argv = [command, option, "x"] if option in VALUED else [command, option]
        with pytest.raises(SystemExit) as refused:
            main(argv)
        assert refused.value.code == 2, argv
        assert "unrecognized arguments: " + option in capsys.readouterr().err, argv
