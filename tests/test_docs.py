"""The README matches the code: its config table, and .ci/run runs its test command."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import REPO


def _block_after(marker: str) -> str:
    readme = (REPO / "README.md").read_text()
    match = re.search(re.escape(marker) + r"\s*```bash\n(.+?)\n```", readme, re.S)
    assert match, f"README.md has no bash block after {marker}"
    return match.group(1).strip()


def test_ci_runs_exactly_the_readme_test_command():
    command = _block_after("<!-- test-command -->")
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert command in ci_lines


def test_readme_run_command_runs_the_default():
    command = _block_after("<!-- run-command -->")
    assert command.endswith(".venv/bin/adaptrun")


def test_readme_layout_is_current():
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "layout.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_config_table_is_current():
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "config_table.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout


def test_the_project_cites_only_docs_it_carries():
    """Presets and the README point at docs/ in this repository (the formulas and setups
    they reproduce), never at a file outside it."""
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    texts = {p: (REPO / p).read_text() for p in tracked if p.endswith((".py", ".yaml", ".md"))}
    assert not [p for p, text in texts.items() if "PAPERS.md" in text and p != "tests/test_docs.py"]
    cited = {m for text in texts.values() for m in re.findall(r"docs/[a-z_]+\.md", text)}
    assert "docs/papers.md" in cited
    assert [c for c in sorted(cited) if not (REPO / c).is_file()] == []
    papers = (REPO / "docs" / "papers.md").read_text()
    for preset in (REPO / "conf" / "experiment").glob("*.yaml"):
        assert preset.stem in papers, f"docs/papers.md does not describe {preset.stem}"


def _readme_commands() -> list[list[str]]:
    """Every ``adaptrun ...`` line of the README's bash blocks, comments and line
    continuations resolved, as argument lists."""
    import shlex

    readme = (REPO / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.+?)\n```", readme, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == "adaptrun":
                commands.append(words[1:])
    return commands


def test_the_readmes_help_commands_answer_as_documented(tmp_path):
    from conftest import run_cli

    helps = [args for args in _readme_commands() if "--help" in args]
    assert ["--help"] in helps and ["--help", "activation"] in helps
    for args in helps:
        result = run_cli(args, cwd=tmp_path)
        assert result.returncode == 0, (args, result.stderr)
        assert "neuronwise_slope" in result.stdout, args  # an activation option is listed
    assert not (tmp_path / "outputs").exists()  # help trains nothing


@pytest.mark.slow  # trains one epoch
def test_the_readmes_own_activation_runs_as_documented(tmp_path):
    """The README's Snake, saved as the my_acts.py it names, runs with its command."""
    from conftest import read_metrics, run_cli

    readme = (REPO / "README.md").read_text()
    [code] = [b for b in re.findall(r"```python\n(.+?)\n```", readme, re.S) if "class Snake" in b]
    (tmp_path / "my_acts.py").write_text(code + "\n")
    [args] = [a for a in _readme_commands() if "activation=custom" in a]
    result = run_cli([*args, "trainer.epochs=1", "hydra.run.dir=run"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    metrics = read_metrics(tmp_path / "run")
    assert metrics["status"] == "completed"
    assert metrics["hparams"]["activation.alpha"] == 0.5
    assert metrics["params"]["activation"] > 0  # its alpha trained
    assert metrics["learned_activation"]  # probed: it has no curves() of its own
