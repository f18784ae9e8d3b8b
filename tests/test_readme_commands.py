"""Every `vitlib ...` / `python -m vitlib ...` command in the README's ```bash blocks parses and runs.

The README is read when the tests run, so a renamed flag, command or module fails here. Long commands run
at small sizes: SMALL appends flags (argparse keeps the last value given) and their outputs go to a
temporary folder. Each long command must also state its run time and expected result from a results file.
"""

import json
import math
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from vitlib.cli import build_parser
from vitlib.data import FASHION_MNIST_DIR

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# Appended to each command: small sizes, same code paths (the README's own flags are all parsed and used).
# None: the command writes into the checkout, so it is parsed and its --help run, and its own tests run it.
SMALL = {
    "results": None,
    "experiment": ["--profile", "smoke"],
    "pretrain": ["--profile", "smoke", "--steps", "2", "--batch-size", "8"],
    "finetune": ["--batch-size", "8"],  # and a length and a validation split: _shrunk
    "evaluate": ["--limit", "16"],
    "bench": ["--models", "ViT-Ti/16", "--repeats", "1", "--batch-size", "1", "--cpu-only"],
}
WRITES = ("--out-dir", "--export")  # flags whose paths are written: redirected to the temporary folder
READS = ("--checkpoint",)  # flags whose paths may name what an earlier command wrote
TRAINING = ("pretrain", "finetune")  # long unless shrunk by their own flags (--profile smoke, --help)


def readme_commands(text: str) -> list[tuple[list[str], str]]:
    """(argv after `vitlib`, its comments: the comment lines right above it and its end-of-line comment) for every
    vitlib command in the ```bash / ```sh / ```shell blocks of `text`, in order."""
    found = []
    for block in re.findall(r"^```(?:bash|sh|shell)[^\n]*\n(.*?)^```", text, flags=re.M | re.S):
        above: list[str] = []
        for line in block.replace("\\\n", " ").splitlines():
            stripped = line.strip()
            if stripped.startswith("#"):
                above.append(stripped.lstrip("# "))
                continue
            code, _, comment = stripped.partition(" #")
            for part in re.split(r"\s*(?:&&|\|\||;)\s*", code):
                words = shlex.split(part.removeprefix("$ "))
                while words and re.fullmatch(r"\w+=\S*", words[0]):  # VAR=value prefixes
                    words.pop(0)
                if words[:3] in (["python", "-m", "vitlib"], ["python3", "-m", "vitlib"]):
                    found.append((words[3:], " ".join(above + [comment.strip()]).strip()))
                elif words[:1] == ["vitlib"]:
                    found.append((words[1:], " ".join(above + [comment.strip()]).strip()))
            above = []
    return found


def _command(argv: list[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def _exits_early(argv: list[str]) -> bool:
    return bool({"--help", "-h", "--version"} & set(argv))


COMMANDS = readme_commands(README.read_text())
IDS = [" ".join(argv)[:60] for argv, _ in COMMANDS]


def test_the_readme_has_vitlib_commands_and_documents_the_console_script():
    text = README.read_text()
    assert {_command(argv) for argv, _ in COMMANDS} >= {"pretrain", "finetune", "evaluate"}, COMMANDS
    assert "python -m vitlib" in text and re.search(r"`vitlib[ `]", text), "document `vitlib` beside python -m vitlib"


@pytest.mark.parametrize("argv", [a for a, _ in COMMANDS], ids=IDS)
def test_readme_command_parses(argv, capsys):
    """Every flag and command the README uses exists (argparse, without running anything)."""
    try:
        build_parser().parse_args(argv)
    except SystemExit as e:
        assert e.code == 0 and _exits_early(argv), f"`vitlib {shlex.join(argv)}`: {capsys.readouterr().err}"


LONG = [(argv, comment) for argv, comment in COMMANDS
        if _command(argv) in TRAINING and not _exits_early(argv) and "smoke" not in argv]


@pytest.mark.parametrize("argv, comment", LONG, ids=[" ".join(argv)[:60] for argv, _ in LONG])
def test_long_readme_command_states_time_and_result_from_a_results_file(argv, comment):
    """A long command says how long it runs and what it gives, with numbers that its results file holds,
    or says that they are to come (no recorded run yet)."""
    files = re.findall(r"[\w./-]+\.json", comment)
    assert files, f"`vitlib {shlex.join(argv)}`: a comment above it must cite its results file (.json)"
    path = ROOT / files[0]
    if not path.exists():
        assert "to come" in comment, f"{files[0]} does not exist and the comment does not say the numbers are to come"
        return
    leaves = list(_numbers(json.loads(path.read_text())))
    claims = re.findall(r"(\d+(?:\.\d+)?)\s*(%|min\b|s\b)", comment)
    assert claims, f"`vitlib {shlex.join(argv)}`: state its run time and expected result ({comment!r})"
    for value, unit in claims:
        decimals = len(value.partition(".")[2])
        scale = {"%": lambda k, v: 100 * v, "min": lambda k, v: v / 60 if _is_seconds(k) else math.nan,
                 "s": lambda k, v: v if _is_seconds(k) else math.nan}[unit]
        assert any(round(scale(k, v), decimals) == float(value) for k, v in leaves), \
            f"{value} {unit} in the README is not in {files[0]}"


def _is_seconds(key: str) -> bool:
    """A results file's field of seconds: "seconds", "train_seconds", "wall_seconds" ..."""
    return key == "seconds" or key.endswith("_seconds")


def _numbers(d, key=""):
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _numbers(v, k)
    elif isinstance(d, list):
        for v in d:
            yield from _numbers(v, key)
    elif isinstance(d, (int, float)) and not isinstance(d, bool):
        yield key, float(d)


def _shrunk(argv: list[str], tmp: Path, written: list[str]) -> list[str]:
    """The README's argv with SMALL appended, outputs under tmp, and inputs that an earlier command wrote read from
    there (its newest step_* checkpoint when the README names a step that a small run does not reach)."""
    out = list(argv)
    for i, a in enumerate(out[:-1]):
        if a in WRITES:
            written.append(out[i + 1])
            out[i + 1] = str(tmp / out[i + 1])
        elif a in READS and any(Path(out[i + 1]).is_relative_to(w) for w in written):
            stem = tmp / out[i + 1]
            if not Path(f"{stem}.json").exists() and not stem.is_dir():  # a run's folder: its newest, as is
                steps = sorted(stem.parent.glob("step_*.json"))
                assert steps, f"`vitlib {shlex.join(argv)}`: the command that writes {stem.parent} has not run"
                stem = steps[-1].with_suffix("")
            out[i + 1] = str(stem)
    if _exits_early(argv) or "--list" in argv:  # a listing is instant: it runs as the README writes it
        return out
    if SMALL[_command(argv)] is None:
        return [_command(argv), "--help"]
    if _command(argv) == "finetune":  # its length as the README sets it (steps or minutes), shortened; a small split
        out += ["--minutes", "0.01"] if "--minutes" in argv else ["--steps", "2"]
        out += [] if "--val-fraction" in argv else ["--val-fraction", "0.01"]
    return out + SMALL[_command(argv)]


# Runs commands in one process, as the console script would one by one (importing torch once, not per command).
DRIVER = """
import json, shlex, sys
from vitlib.cli import main
for argv in json.loads(sys.argv[1]):
    try:
        main(argv)
    except SystemExit as e:
        if e.code not in (0, None):
            sys.exit(f"`vitlib {shlex.join(argv)}` exited with {e.code}")
"""


def test_every_readme_command_runs_at_a_small_size(tmp_path):
    script = Path(sys.executable).parent / "vitlib"  # the console script, where this environment installed it
    assert not script.exists() or "vitlib.cli" in script.read_text(), "the console script must run vitlib.cli:main"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    written: list[str] = []
    ran, chain = set(), []  # chain: commands not yet run, none reading what another of them writes

    def run(chain: list[tuple[list[str], list[str]]]) -> None:
        r = subprocess.run([sys.executable, "-c", DRIVER, json.dumps([small for small, _ in chain])],
                           capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
        readme = "; ".join(f"`vitlib {shlex.join(argv)}`" for _, argv in chain)
        assert r.returncode == 0, f"README: {readme}:\n{r.stderr[-3000:]}"

    for argv, _ in COMMANDS:
        if tuple(argv) in ran:
            continue
        ran.add(tuple(argv))
        assert _exits_early(argv) or _command(argv) in SMALL, f"add a small-size rule for `{_command(argv)}` to SMALL"
        if "fashion_mnist" in argv and not FASHION_MNIST_DIR.exists():
            continue  # Debian's dataset-fashion-mnist is not installed here (./setup.sh installs it as root)
        if chain and any(a in READS for a in argv):  # it reads what the chain may write: run the chain first
            run(chain)
            chain = []
        chain.append((_shrunk(argv, tmp_path, written), argv))
    run(chain)


def test_the_readme_is_a_front_door_of_at_most_10000_characters():
    """What it is, the two commands, use, notebooks, results table, layout: the long prose stays in RESULTS.md."""
    text = README.read_text()
    assert len(text) <= 10_000, f"README.md has {len(text):,} characters; move prose to RESULTS.md or the modules"
    for heading in ("## Set up and run", "## Use", "## Notebooks", "## Results", "## Layout"):
        assert heading in text
