"""hostd.config.commands: [commands], named commands checked as [session] cmd is."""

from __future__ import annotations

from hostd.config import parse_config
from hostd.config.commands import parse_commands
from tests.hostd.config.samples import problems_of


def test_commands_are_read_by_name() -> None:
    assert dict(parse_config("").commands) == {}
    config = parse_config(
        '[commands]\nsingleuser = ["/opt/hub/bin/jupyterhub-singleuser", "--port={PORT}"]\n'
        'lab-2 = ["/opt/lab/bin/jupyter", "lab"]\n'
    )
    assert dict(config.commands) == {
        "singleuser": ("/opt/hub/bin/jupyterhub-singleuser", "--port={PORT}"),
        "lab-2": ("/opt/lab/bin/jupyter", "lab"),
    }


def test_every_command_problem_is_reported_by_its_name() -> None:
    problems = problems_of(
        '[commands]\n"a b" = ["/bin/x"]\nrelative = ["jupyter"]\nempty = []\n'
        f'{"x" * 65} = ["/bin/x"]\n'
    )
    assert [key for key, _ in problems] == [
        "commands.a b",
        "commands.relative",
        "commands.empty",
        f"commands.{'x' * 65}",
    ]
    assert problems[0][1] == "a command name is letters, digits, '-' and '_'"
    assert problems[1][1].endswith("cmd[0]: invalid path 'jupyter': must be absolute")


def test_commands_are_checked_without_a_session_policy_too() -> None:
    problems: list[tuple[str, str]] = []
    assert dict(parse_commands({"x": ["/bin/x"]}, None, problems)) == {"x": ("/bin/x",)}
    parse_commands({"y": ["y"]}, None, problems)
    assert [key for key, _ in problems] == ["commands.y"]
    # A bad [session] and a bad command are both reported.
    keys = [key for key, _ in problems_of("[session]\ncmd = []\n[commands]\nz = ['z']\n")]
    assert keys == ["session.cmd", "commands.z"]


def test_commands_must_be_a_table() -> None:
    problems: list[tuple[str, str]] = []
    assert dict(parse_commands(5, None, problems)) == {}
    assert problems == [("commands", "expected a table of NAME = [argv...]")]
