"""Command line: `python -m vitlib <command> --help`."""

from __future__ import annotations

import argparse
import platform
import sys

import torch


def _bench(args: argparse.Namespace) -> None:
    from .bench import ROWS, format_table, run_bench

    rows = [r for r in ROWS if not args.models or r.name in args.models]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() and not args.cpu_only else [])
    results = []
    for device in devices:
        results += run_bench(rows, batch_size=args.batch_size, repeats=args.repeats, device=device)
    print(f"# torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads" + (f", {torch.cuda.get_device_name()}" if "cuda" in devices else ""))
    print(format_table(results))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vitlib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("bench", help="images/s of vitlib vs timm on the same configs (ratio >= 1: no slower)")
    p.add_argument("--batch-size", type=int, default=8, help="images per step (default 8)")
    p.add_argument("--repeats", type=int, default=10, help="timed repeats per model, alternating (default 10)")
    p.add_argument("--models", nargs="*", help="only these rows, e.g. ViT-Ti/16 (default: all)")
    p.add_argument("--cpu-only", action="store_true", help="skip the GPU even when one is present")
    p.set_defaults(func=_bench)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main(sys.argv[1:])
