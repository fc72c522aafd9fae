"""scripts/system-deps.sh: what `make demo` and `make test` install on a fresh Debian machine, and how.

The script runs here against stub commands in a private PATH (apt-get, sudo,
id, cc, dot, chromium, python3 are shell stubs that log their calls), so each
case (root, sudo, neither, no apt-get, nothing missing) is checked without
touching this machine's packages. The real run, on a debootstrapped Debian 12
with only python3 and make, is recorded in the branch's report.
"""

import os
import subprocess

import pytest

from dumps import ROOT

SCRIPT = ROOT / "scripts" / "system-deps.sh"
SH = "/bin/sh"


def make_machine(tmp_path, *, uid=1000, have=(), sudo=False, apt=True):
    """make_machine returns a PATH directory whose commands are stubs: those in ``have`` work, the rest are absent."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"

    def stub(name, body):
        p = bin_dir / name
        p.write_text(f"#!{SH}\n{body}\n")
        p.chmod(0o755)

    stub("id", f"echo {uid}")
    stub("env", 'while [ $# -gt 0 ] && [ "${1#*=}" != "$1" ]; do export "$1"; shift; done; exec "$@"')
    if apt:
        stub("apt-get", f'echo "apt-get $*" >> {log}')
    if sudo:
        stub("sudo", f'echo "sudo" >> {log}; exec "$@"')
    if "cc" in have:
        stub("cc", "exit 0")
    if "dot" in have:
        stub("dot", "exit 0")
    if "chromium" in have:  # the test suite's other tools come with it in these cases: Go 1.19 and gcore
        stub("chromium", "exit 0")
        stub("go", "exit 0")
        stub("gcore", "exit 0")
    stub("python3", "exit 0" if "venv" in have else "exit 1")
    return bin_dir, log


def run(tmp_path, target, bin_dir):
    env = {"PATH": str(bin_dir), "PYTHON": str(bin_dir / "python3"), "GO119": str(bin_dir / "go")}
    return subprocess.run([SH, str(SCRIPT), target], capture_output=True, text=True, env=env, timeout=30)


def calls(log):
    return log.read_text().splitlines() if log.exists() else []


def test_nothing_missing_is_silent_and_installs_nothing(tmp_path):
    # GIVEN a machine with a compiler, venv, dot and chromium
    bin_dir, log = make_machine(tmp_path, uid=0, have=("cc", "venv", "dot", "chromium"))
    # WHEN make test asks for its packages
    p = run(tmp_path, "test", bin_dir)
    # THEN nothing is said and apt-get is not called
    assert (p.returncode, p.stdout, p.stderr) == (0, "", "")
    assert calls(log) == []


def test_root_installs_what_is_missing_with_apt_get(tmp_path):
    # GIVEN root on a machine with only python3's venv (the README's starting point, after python3-venv)
    bin_dir, log = make_machine(tmp_path, uid=0, have=("venv",))
    # WHEN make test asks for its packages
    p = run(tmp_path, "test", bin_dir)
    # THEN apt-get installs exactly the compiler with libc headers, graphviz, chromium, Go 1.19 and gdb, without sudo
    assert p.returncode == 0, p.stderr
    assert calls(log) == ["apt-get update -qq",
                          "apt-get install -y -qq --no-install-recommends gcc libc6-dev graphviz chromium "
                          "golang-1.19-go gdb"]


def test_demo_does_not_install_chromium(tmp_path):
    # GIVEN root with nothing but python3 (no venv either)
    bin_dir, log = make_machine(tmp_path, uid=0, have=())
    # WHEN make demo asks for its packages
    p = run(tmp_path, "demo", bin_dir)
    # THEN it installs what the demo runs, and not the test suite's browser
    assert p.returncode == 0, p.stderr
    assert calls(log)[-1] == "apt-get install -y -qq --no-install-recommends gcc libc6-dev python3-venv graphviz"


def test_a_user_with_sudo_installs_through_sudo(tmp_path):
    bin_dir, log = make_machine(tmp_path, uid=1000, have=("cc", "venv", "chromium"), sudo=True)
    p = run(tmp_path, "test", bin_dir)
    assert p.returncode == 0, p.stderr
    assert calls(log) == ["sudo", "apt-get update -qq",
                          "sudo", "apt-get install -y -qq --no-install-recommends graphviz"]


def test_a_user_without_sudo_is_told_the_one_command_and_stopped(tmp_path):
    # GIVEN a user who is not root and has no sudo, on a machine without graphviz
    bin_dir, log = make_machine(tmp_path, uid=1000, have=("cc", "venv", "chromium"), sudo=False)
    # WHEN make test asks for its packages
    p = run(tmp_path, "test", bin_dir)
    # THEN nothing is installed, make stops (exit 1), and stderr has the exact command to run as root
    assert p.returncode == 1
    assert calls(log) == []
    assert "    apt-get update && apt-get install -y --no-install-recommends graphviz\n" in p.stderr
    assert "run this as root, then make test again" in p.stderr


def test_without_apt_get_it_names_the_packages_and_stops(tmp_path):
    bin_dir, log = make_machine(tmp_path, uid=0, have=("cc", "venv"), apt=False)
    p = run(tmp_path, "demo", bin_dir)
    assert p.returncode == 1
    assert "graphviz" in p.stderr and "no apt-get" in p.stderr


@pytest.mark.skipif(not os.path.exists("/usr/bin/make"), reason="make is not installed")
def test_the_makefile_runs_the_script_before_the_venv_for_demo_and_test():
    # GIVEN the Makefile WHEN make prints what demo and test would run (dry run, nothing executed)
    for target, arg in (("demo", "demo"), ("test", "test")):
        p = subprocess.run(["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, timeout=60)
        lines = p.stdout.splitlines()
        # THEN the system packages come first, before the venv is made
        deps = next(i for i, line in enumerate(lines) if f"scripts/system-deps.sh {arg}" in line)
        venv = next(i for i, line in enumerate(lines) if " -m venv " in line)
        assert deps < venv, p.stdout


def test_ci_only_runs_make_test():
    commands = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert commands[-1] == "make test"
    assert not any("apt-get" in c for c in commands)
