"""The README and the docs as printed: every Python block runs in a fresh interpreter and prints the figures
its comments claim; every shell line that uses the package runs; the README's two set-up commands are the
ones CI runs; every link between the pages finds its file and heading."""

import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

from nns_callbacks.cli import main
from tests.docs_pages import PAGES, README, ROOT, blocks, headings, section, slug

PYTHON_BLOCKS = [block for page in PAGES for block in blocks(page, "python")]
SHELL_BLOCKS = [block for page in PAGES for block in blocks(page, "bash")]
CLAIM = re.compile(r"^print\(.*\)\s*#\s*(-?\d[\d.]*)\b")  # print(...)  # 3.86 GMAC: ...
NUMBER = re.compile(r"-?\d[\d.]*")
TEST_EXTRA = "test"


def environment() -> dict:
    """This checkout's package ahead of any installed copy; the suite's temporary cache for measured peaks."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


def claims(code: str) -> list[float]:
    """The figures that ``print(...)  # <figure> ...`` lines say they print, in order."""
    return [float(match.group(1)) for match in map(CLAIM.match, code.splitlines()) if match]


def printed_figures(output: str) -> list[float]:
    """The lines of ``output`` that are one number, in order."""
    return [float(line) for line in output.split("\n") if NUMBER.fullmatch(line.strip())]


def test_the_pages_have_python_blocks_to_run():
    assert [block for block in PYTHON_BLOCKS if block.page == README], "README.md has no Python block"


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda block: block.name)
def test_python_block_runs_as_printed(block, tmp_path):
    done = subprocess.run([sys.executable, "-c", block.text], cwd=tmp_path, env=environment(), capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{block.name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr
    expected = claims(block.text)
    assert printed_figures(done.stdout)[: len(expected)] == expected, f"{block.name}: the comments' figures"


def shell_lines(block) -> list[str]:
    """The lines of a shell block that use the package (``nns-summary``, ``python -c``), comments cut."""
    lines = [shlex.split(line, comments=True) for line in block.text.splitlines()]
    return [words for words in lines if words and (words[0] == "nns-summary" or words[:2] == ["python", "-c"])]


@pytest.mark.parametrize("block", [b for b in SHELL_BLOCKS if shell_lines(b)], ids=lambda block: block.name)
def test_shell_lines_run_in_order(block, tmp_path, monkeypatch, capsys):
    """Each line in the same folder, after the lines before it: a file a command reads is made above it."""
    monkeypatch.chdir(tmp_path)
    for words in shell_lines(block):
        if words[0] == "nns-summary":
            status = main(words[1:])
            err = capsys.readouterr().err
        else:
            done = subprocess.run([sys.executable, *words[1:]], env=environment(), capture_output=True, text=True,
                                  timeout=300, check=False)
            status, err = done.returncode, done.stderr
        assert status == 0, f"{block.name}: {shlex.join(words)} failed:\n{err[-3000:]}"


def setup_commands() -> list[str]:
    """The README's Quick start commands: its section's one shell block, a command a line."""
    text = README.read_text(encoding="utf-8")
    [quick_start] = [heading for heading in headings(text) if heading.text == "Quick start"]
    [block] = [block for block in blocks(README, "bash") if block.text in section(text, quick_start)]
    return block.text.splitlines()


def ci_commands() -> list[str]:
    """The commands of ``.ci/run``, comments left out."""
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_the_readme_gives_two_setup_commands_from_a_fresh_clone():
    run_example, run_tests = setup_commands()
    install = "python3 -m venv .venv && .venv/bin/pip install -e "
    assert run_example.startswith(install) and run_tests.startswith(install)
    script = run_example.rsplit(" ", 1)[-1]
    assert run_example.endswith(f".venv/bin/python {script}") and (ROOT / script).is_file()
    assert f'-e ".[{TEST_EXTRA}]"' in run_tests and run_tests.endswith(".venv/bin/python -m pytest")


def test_ci_runs_the_readmes_test_command_verbatim():
    run_tests = setup_commands()[1]
    assert run_tests in ci_commands()


def test_the_test_extra_exists_and_contributing_gives_the_same_command():
    setup_cfg = (ROOT / "setup.cfg").read_text(encoding="utf-8")
    assert re.search(rf"^\[options\.extras_require\]\n{TEST_EXTRA} =\n", setup_cfg, re.MULTILINE)
    [block] = blocks(ROOT / "CONTRIBUTING.md", "bash")
    assert block.text.strip() == setup_commands()[1]


def test_the_readme_names_the_tensorboard_command_the_quickstart_prints():
    command = ".venv/bin/tensorboard --logdir logs"
    assert command in (ROOT / "examples" / "quickstart.py").read_text(encoding="utf-8")
    assert command in README.read_text(encoding="utf-8")


LINK = re.compile(r"\]\(([^)\s]+)\)")


def local_links(page: pathlib.Path) -> list[str]:
    return [target for target in LINK.findall(page.read_text(encoding="utf-8")) if "://" not in target]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_local_link_finds_its_file_and_heading(page):
    for target in local_links(page):
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name} links to {target}: no such file"
        if anchor:
            anchors = {slug(heading.text) for heading in headings(linked.read_text(encoding="utf-8"))}
            assert anchor in anchors, f"{page.name} links to {target}: no such heading"
