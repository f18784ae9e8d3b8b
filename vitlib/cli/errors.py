"""How an expected failure becomes one line, `vitlib <command>: error: ...`, that names the flag to change.

A bad flag value is refused by argparse before anything runs (`at_least`, `device_or_auto`). A `ConfigError` of the
library names its fields (vitlib.config): they are spelled as this command's flags (`--warmup-steps 60`), or as
Python (`patch_size=4`) where the command has no flag for them. Any other expected error is printed as it is,
after the flag it is blamed on (`argument --checkpoint: ...`, see `blame`).
"""

from __future__ import annotations

import argparse
import contextlib
import math
from typing import Any

import torch

from ..config import ConfigError

# What a user's input can cause; anything else is a bug and keeps its traceback.
EXPECTED = (ValueError, OSError, ImportError)


class UsageError(Exception):
    """An expected failure. `flag`: the flag to blame (None: the message names it); `hint`: how to fix it."""

    def __init__(self, message: str, flag: str | None = None, hint: str = ""):
        super().__init__(message)
        self.flag, self.hint = flag, hint


@contextlib.contextmanager
def blame(flag: str, errors: tuple[type[BaseException], ...] = EXPECTED, hint: str = ""):
    """Turn the expected errors raised inside into UsageErrors on `flag` (the error stays their cause)."""
    try:
        yield
    except errors as e:
        raise UsageError(str(e), flag, hint) from e


class Parser(argparse.ArgumentParser):
    """argparse whose errors take one line, `vitlib <command>: error: ...`, and exit with status 2. Flags are
    spelled out (no abbreviations), so that a renamed flag fails in the README's commands instead of matching."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{"allow_abbrev": False, **kwargs})

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def at_least(low: float, kind: type = int):
    """An argparse type: a number of `kind`, finite and >= `low`."""
    def check(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if not (math.isfinite(value) and value >= low):
            raise argparse.ArgumentTypeError(f"must be {'an integer' if kind is int else 'a finite number'} >= {low}, "
                                             f"got {text}")
        return value
    check.__name__ = kind.__name__
    return check


def device_or_auto(text: str) -> str:
    """An argparse type: 'auto' or a torch device that exists here."""
    if text == "auto":
        return text
    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a device: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: no CUDA device is available here; use cpu or auto")
    return text


def flag_for(parser: argparse.ArgumentParser, field: str, value: Any, valued: bool = True) -> str | None:
    """A field as this command's flag: `--steps`, or with its value (`valued`) `--steps 50`, `--bf16`,
    `--no-compile`; None where no flag sets it."""
    for action in parser._actions:
        if action.dest != field or not action.option_strings:
            continue
        if not valued:
            if action.nargs != 0:  # the flag that takes the value
                return action.option_strings[-1]
        elif isinstance(action, argparse.BooleanOptionalAction):
            return action.option_strings[0 if value else 1]
        elif action.nargs == 0:  # store_const, store_true, store_false: only the value it stores
            if action.const == value:
                return action.option_strings[-1]
        else:
            shown = " ".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)
            return f"{action.option_strings[-1]} {shown}"
    return None


def one_line(error: BaseException, parser: argparse.ArgumentParser) -> str:
    """What follows `error: ` for an expected failure: a ConfigError with its fields as this command's flags; any
    other error as it is, after the flag it is blamed on; then the hint, in parentheses."""
    flag, hint = getattr(error, "flag", None), getattr(error, "hint", "")
    blamed = isinstance(error, UsageError) and isinstance(error.__cause__, ConfigError)
    source = error.__cause__ if blamed else error
    if isinstance(source, ConfigError):
        message = source.spelled(lambda name, value, valued: flag_for(parser, name, value, valued))
        if flag_for(parser, source.field, source.fields[source.field], valued=False):
            flag = None  # it names the flag to change
    else:
        message = str(error)
    return (f"argument {flag}: " if flag else "") + " ".join(message.split()) + (f" ({hint})" if hint else "")
