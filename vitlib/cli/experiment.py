"""`vitlib experiment`: the studies of vitlib.experiments, one subcommand each, with one flag per field of the
study's Config (`vitlib.experiments.fields`); an unset flag keeps the profile's value.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import shlex
import typing
from typing import Any

import torch

from .. import experiments
from .errors import UsageError, at_least, blame


def add_command(sub) -> None:
    """The experiment command and a subcommand per study."""
    p = sub.add_parser("experiment", help=f"run a study of vitlib.experiments ({', '.join(experiments.STUDIES)}); "
                       "resumable",
                       description="Run a study: one row per run appended to figures/<study>.json (full; other "
                                   "profiles: figures/<study>_<profile>.json; smoke: a temporary folder). Rows "
                                   "already in the file are never run again, so an interrupted study continues "
                                   "where it stopped. Example: vitlib experiment transfer --profile full.")
    p.add_argument("--list", action="store_true", help="list the studies, their profiles and budgets")
    studies = p.add_subparsers(dest="study", metavar="STUDY", help=", ".join(experiments.STUDIES))
    for name in experiments.STUDIES:
        _add_study(studies, name)
    p.set_defaults(func=run_experiment, study=None)


def _add_study(studies, name: str) -> None:
    study = experiments.STUDIES[name]
    doc = study.__doc__.strip()
    sp = studies.add_parser(name, help=doc.splitlines()[0], description=doc.split("\n\n")[0] +
                            f" Design, budget and expected result: help(vitlib.experiments.{name}).")
    sp.add_argument("--profile", choices=list(study.PROFILES), default="smoke",
                    help="smoke (seconds, a temporary folder), full (figures/), "
                    + ", ".join(f"{k} (figures/{name}_{k}.json)" for k in study.PROFILES if k not in ("smoke", "full")))
    sp.add_argument("--folder", help="write the results file here instead (a run continues the file it finds)")
    sp.add_argument("--limit", type=at_least(1), metavar="N", help="run at most N more rows, then stop")
    sp.add_argument("--only", metavar="PATTERN", help="run only the missing rows whose key matches this shell "
                    "pattern (keys: --plan), e.g. 'BiT*' or '*/s1', to fit a part into the time at hand")
    sp.add_argument("--plan", action="store_true", help="print the runs (done / to run) and the images "
                    "seen, run nothing")
    sp.add_argument("--threads", type=at_least(1), help="torch intra-op threads")
    sp.add_argument("--list", action="store_true", default=False, help=argparse.SUPPRESS)
    sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback of an error")
    g = sp.add_argument_group(f"study fields (vitlib.experiments.{name}.Config; unset flags keep the profile's value)")
    shown = "full" if "full" in study.PROFILES else list(study.PROFILES)[-1]  # the profile whose values --help shows
    for field, kind, _, help_text in experiments.fields(name):
        value = getattr(study.PROFILES[shown], field)
        _add_field_flag(g, field, kind, f"{help_text} ({shown}: "
                        f"{' '.join(map(str, value)) if isinstance(value, tuple) else repr(value)})")
    sp.set_defaults(func=run_experiment, parser=sp)


def _flag(field: str) -> str:
    """A Config field's flag: images_per_run -> --images-per-run."""
    return "--" + field.replace("_", "-")


def _add_field_flag(g, name: str, kind: Any, help_text: str) -> None:
    """One flag for a Config field: tuples take several values, bools --x / --no-x; unset (None) keeps the
    profile's value."""
    flag = _flag(name)
    if typing.get_origin(kind) is tuple:
        item = typing.get_args(kind)[0]
        g.add_argument(flag, nargs="*", type=at_least(0) if item is int else item, metavar=item.__name__.upper(),
                       help=help_text)
    elif kind is bool:
        g.add_argument(flag, action=argparse.BooleanOptionalAction, help=help_text)
    else:
        g.add_argument(flag, type=at_least(0, kind) if kind in (int, float) else kind, metavar=kind.__name__.upper(),
                       help=help_text)


def _list() -> None:
    """Each study, and per profile its runs, images seen and results file."""
    for name, study in experiments.STUDIES.items():
        print(f"{name}: {study.__doc__.strip().splitlines()[0]}")
        for profile in study.PROFILES:
            cfg = experiments.config(name, profile)
            print(f"  --profile {profile}: {len(study.expand(cfg))} runs, "
                  f"{experiments.images_seen(name, profile):,} training images seen -> "
                  f"{experiments.study_path(name, profile, '<temporary folder>' if profile == 'smoke' else None)}"
                  ".json")


def _runs(args: argparse.Namespace, overrides: dict[str, Any]) -> list[dict[str, Any]]:
    """The runs of the study's Config with `overrides`; a value refused is blamed on the flag of the override that
    the profile refuses alone."""
    def runs(**kw):
        return experiments.STUDIES[args.study].expand(experiments.config(args.study, args.profile, **kw))

    try:
        return runs(**overrides)
    except ValueError:
        for name, value in overrides.items():
            with blame(_flag(name), (ValueError,)):
                runs(**{name: value})
        raise


def _plan(args: argparse.Namespace, specs: list[dict[str, Any]], overrides: dict[str, Any]) -> None:
    """Each run, done or to run, and the images the study sees in all."""
    done = {r["key"] for r in experiments.load_rows(experiments.study_path(args.study, args.profile, args.folder))}
    for spec in specs:
        print(("done  " if spec["key"] in done else "to run ") + spec["key"])
    print(f"{len(specs)} runs ({sum(s['key'] in done for s in specs)} done), "
          f"{experiments.images_seen(args.study, args.profile, **overrides):,} training images seen in all")


def run_experiment(args: argparse.Namespace) -> None:
    """`vitlib experiment [STUDY]`: list the studies, plan one, or run (continue) it."""
    if args.list or args.study is None:
        if not args.list:
            raise UsageError(f"name a study ({', '.join(experiments.STUDIES)}) or pass --list")
        _list()
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {}
    for name, kind, _, _ in experiments.fields(args.study):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = tuple(value) if typing.get_origin(kind) is tuple else value
    specs = _runs(args, overrides)
    if args.plan:
        _plan(args, specs, overrides)
        return
    if args.only is not None and not any(fnmatch.fnmatchcase(s["key"], args.only) for s in specs):
        raise UsageError(f"--only {args.only!r} matches no run of {args.study} ({args.profile}); its keys look like "
                         f"{specs[0]['key']!r}: list them with --plan")
    command = "python -m vitlib " + shlex.join(args.argv)
    with blame("--folder", (OSError,)):
        out = experiments.run(args.study, args.profile, folder=args.folder, command=command, limit=args.limit,
                              only=args.only, **overrides)
    print(json.dumps({"results": str(out["path"]), "rows": len(out["rows"]), "todo": out["todo"]}))
