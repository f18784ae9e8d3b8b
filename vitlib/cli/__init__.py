"""Command line: `vitlib <command> --help`, the same as `python -m vitlib <command> --help`.

    pretrain, finetune, evaluate   vitlib.cli.training: the functions the notebooks call
    experiment                     vitlib.cli.experiment: the studies of vitlib.experiments
    bench, results                 here: vitlib.bench's table; RESULTS.md and the README from figures/*.json
    site                           here: vitlib.site, the notebooks and RESULTS.md as a static HTML site

Expected failures (a bad value, an unknown name, a missing file or dataset, a checkpoint for another model, a
non-finite loss) print one line, `vitlib <command>: error: ...`, that names the flag to change, and exit with
status 2 (vitlib.cli.errors); `--debug` (or VITLIB_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import torch

from .. import __version__
from ..bench import ROWS, format_table, run_bench
from ..results import write_readme_results, write_results_md
from . import experiment, training
from .errors import EXPECTED, Parser, UsageError, at_least, one_line

__all__ = ["main", "build_parser"]


def run_bench_command(args: argparse.Namespace) -> None:
    """`vitlib bench`: vitlib.bench's rows, one at a time, on the CPU and the GPU where there is one."""
    unknown = set(args.models or ()) - {r.name for r in ROWS}
    if unknown:
        raise UsageError(f"unknown model(s) {sorted(unknown)}; known: {[r.name for r in ROWS]}", "--models")
    rows = [r for r in ROWS if not args.models or r.name in args.models]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() and not args.cpu_only else [])
    results = []
    for device in devices:
        for row in rows:  # one row at a time, printed as it finishes: a slow machine still shows progress
            results += run_bench([row], batch_size=args.batch_size, repeats=args.repeats, device=device)
            print("\n".join(format_table(results[-2:]).splitlines()[-2:]), file=sys.stderr, flush=True)
    print(f"# torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads" + (f", {torch.cuda.get_device_name()}" if "cuda" in devices else ""))
    print(format_table(results))


def run_results(args: argparse.Namespace) -> None:
    """`vitlib results`: RESULTS.md and the README's results block, rendered from figures/*.json."""
    print(write_results_md())
    print(write_readme_results())


def run_site(args: argparse.Namespace) -> None:
    """`vitlib site`: the committed notebooks and RESULTS.md as a static HTML site that works offline."""
    from ..site import SITE_DIR, build_site  # imported here: nbconvert, plotly and MathJax are the site extra

    pages = build_site(args.out or SITE_DIR)
    print(f"{len(pages)} pages; open {pages[0]}")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command (the tests parse the README's commands with it)."""
    parser = Parser(prog="vitlib", description="Pre-train, fine-tune, evaluate and time Vision Transformers "
                    "(vitlib). `vitlib` and `python -m vitlib` are the same program; `vitlib <command> --help` "
                    "documents every flag.",
                    epilog="Set VITLIB_DEBUG=1 (or --debug) to see the traceback of an error.")
    parser.add_argument("--version", action="version", version=f"vitlib {__version__} (torch {torch.__version__})")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("bench", help="images/s of vitlib vs timm on the same configs (ratio >= 1: no slower)")
    p.add_argument("--batch-size", type=at_least(1), default=8, help="images per step (default 8)")
    p.add_argument("--repeats", type=at_least(1), default=10,
                   help="timed repeats per model, alternating (default 10)")
    p.add_argument("--models", nargs="*", help="only these rows, e.g. ViT-Ti/16 (default: all)")
    p.add_argument("--cpu-only", action="store_true", help="skip the GPU even when one is present")
    p.set_defaults(func=run_bench_command)
    p = sub.add_parser("results", help="write RESULTS.md and the README's results block from figures/*.json "
                                       "(numbers, figures, provenance)")
    p.set_defaults(func=run_results)
    p = sub.add_parser("site", help="the committed notebooks (not executed) and RESULTS.md as a static HTML site "
                                    "that works offline")
    p.add_argument("--out", type=Path, help="the folder to write (default: site/ in the checkout)")
    p.set_defaults(func=run_site)
    training.add_commands(sub)
    experiment.add_command(sub)
    for p in sub.choices.values():
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,  # also after the command
                       help="show the traceback of an error")
        p.set_defaults(parser=p)  # errors are reported in the words of the command's flags
    return parser


def main(argv: list[str] | None = None) -> None:
    """Run `vitlib argv...` (default: sys.argv[1:])."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for provenance
    debug = args.debug or os.environ.get("VITLIB_DEBUG", "") not in ("", "0")
    try:
        args.func(args)
    except KeyboardInterrupt:
        if debug:
            raise
        resume = " (--resume continues from the last checkpoint in --out-dir)" if "out_dir" in args else ""
        args.parser.exit(130, f"{args.parser.prog}: interrupted{resume}\n")
    except (UsageError, *EXPECTED) as e:
        if debug:
            raise
        args.parser.exit(2, f"{args.parser.prog}: error: {one_line(e, args.parser)}\n")
