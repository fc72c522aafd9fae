"""No dead ends: every --help shows an example, and a command that cannot do what was asked says what would work."""

import click
import pytest
from click.testing import CliRunner

from dumps import FIXTURES
from gctrace.cli import main
from tracer_native import require_native


def commands(group=main, path=()):
    """commands yields (path, command) for every command and group under ``group``, depth first."""
    for name, cmd in sorted(group.commands.items()):
        yield path + (name,), cmd
        if isinstance(cmd, click.Group):
            yield from commands(cmd, path + (name,))


def help_of(*path):
    r = CliRunner().invoke(main, [*path, "--help"])
    assert r.exit_code == 0, r.output
    return r.output


ALL = [" ".join(p) for p, _ in commands()]


def test_the_walk_sees_every_command():
    assert {"analyze", "diff", "record", "record-go", "replay", "render", "why", "top", "cache", "import",
            "import go-heapdump"} <= set(ALL)


@pytest.mark.parametrize("path", ALL)
def test_every_command_help_has_an_example(path):
    # GIVEN a command WHEN its --help is printed
    text = help_of(*path.split())
    # THEN it has an Example(s) section with a whole command line for this very command
    assert "Example" in text
    example_lines = [line.strip() for line in text.splitlines() if line.strip().startswith("gctrace ")]
    assert any(line.startswith(f"gctrace {path} ") or line.startswith(f"gctrace {path}\n")
               for line in example_lines), text


def test_top_level_help_has_the_workflow_and_exit_codes():
    text = help_of()
    assert "Workflow" in text
    for step in ("gctrace record ", "gctrace analyze ", "gctrace why ", "gctrace top ", "gctrace render "):
        assert step in text
    codes = {line.split()[0]: line for line in text.split("Exit status:")[1].splitlines() if line.strip()[:1].isdigit()}
    assert set(codes) >= {"0", "1", "2", "130"}
    assert "--fail-on" in codes["1"] and "bad input" in codes["2"] and "interrupted" in codes["130"]


def test_record_help_lists_every_phase_of_every_scenario():
    from gctrace.tracer.native.scenarios import PHASES

    text = " ".join(help_of("record").split())  # help is wrapped: compare word streams
    for scenario, phases in PHASES.items():
        for phase in phases:
            assert phase in text, (scenario, phase)
    assert "--at mark_done" in text


def test_replay_of_a_swept_concurrent_dump_says_to_record_at_mark_done(tmp_path):
    require_native()
    # GIVEN a dump of `record --gc concurrent` at its default phase (end: after the sweep freed objects)
    swept, done = tmp_path / "swept.jsonl", tmp_path / "done.jsonl"
    r = CliRunner().invoke(main, ["record", "fill-delete", "--n", "300", "--gc", "concurrent", "-q", "-o", str(swept)])
    assert r.exit_code == 0, r.output
    # WHEN it is replayed
    r = CliRunner().invoke(main, ["replay", str(swept), "-o", str(tmp_path / "t.svg")])
    # THEN the one-line error says how to record a dump that can be replayed
    assert r.exit_code == 2
    assert "--gc concurrent --at mark_done" in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "t.svg").exists()
    # AND recording as told gives a dump that replays
    r = CliRunner().invoke(main, ["record", "fill-delete", "--n", "300", "--gc", "concurrent", "--at", "mark_done",
                                  "-q", "-o", str(done)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["replay", str(done), "-o", str(tmp_path / "t.svg")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "t.svg").exists()


def test_unreachable_only_without_garbage_says_so(tmp_path):
    # GIVEN a dump whose every object is reachable (its golden report says unreachable 0)
    dump = FIXTURES / "map_growing_prealloc.json"
    # WHEN only the unreachable objects are drawn
    r = CliRunner().invoke(main, ["render", str(dump), "-o", str(tmp_path / "g.dot"), "--unreachable-only"])
    # THEN it succeeds, draws no object, and says why the picture is empty
    assert r.exit_code == 0, r.output
    assert "every object is reachable" in r.output
    assert "0 objects drawn one by one, 0 summarised" in r.output
    # AND a dump with garbage gets no such note
    r = CliRunner().invoke(main, ["render", str(FIXTURES / "unreachable_cycle.json"), "-o", str(tmp_path / "u.dot"),
                                  "--unreachable-only"])
    assert r.exit_code == 0 and "every object is reachable" not in r.output
