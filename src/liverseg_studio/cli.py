"""``liverseg`` command line.

Each sub-command lives in ``liverseg_studio.commands.<name>`` with
``register(subparsers)``, which adds its parser and sets ``func(args) -> int``.
Exit codes: 0 ok, 2 bad input (one line on stderr, no traceback), 1 internal
error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from typing import Sequence

from liverseg_studio import __version__
from liverseg_studio.core.errors import LiversegError

#: Modules of the optional ``train`` extra: a missing one is a set-up matter, not a bug.
TRAIN_EXTRA_MODULES = frozenset({"torch", "torchvision", "fastai", "onnx", "onnxscript", "safetensors", "matplotlib"})

COMMANDS = ("plugins", "info", "prepare", "segment", "cohort", "train", "evaluate", "export", "bench", "pacs", "listen")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="liverseg",
        description="Liver and liver-tumour segmentation of abdominal CT (offline, CPU).",
    )
    parser.add_argument("--version", action="version", version=f"liverseg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"liverseg_studio.commands.{name}")
        module.register(sub)
    return parser


def one_line(text: object) -> str:
    """``text`` on a single line (library messages may hold newlines)."""
    return " ".join(str(text).split())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except LiversegError as exc:
        if os.environ.get("LIVERSEG_DEBUG"):
            traceback.print_exc()
        print(f"liverseg {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"liverseg {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `liverseg plugins | head`
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return 0
    except MemoryError:
        print(f"liverseg {args.command}: error: not enough memory", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in TRAIN_EXTRA_MODULES:
            return _internal_error(args.command, exc)
        print(
            f"liverseg {args.command}: error: this command needs {exc.name} (install the 'train' extra: "
            "pip install 'liverseg-studio[train]'; the offline executable ships without PyTorch)",
            file=sys.stderr,
        )
        return 2
    except Exception as exc:  # noqa: BLE001 - last line of defence
        return _internal_error(args.command, exc)


def _internal_error(command: str, exc: BaseException) -> int:
    if os.environ.get("LIVERSEG_DEBUG"):
        traceback.print_exception(exc)
    print(
        f"liverseg {command}: internal error: {type(exc).__name__}: {one_line(exc)} "
        "(set LIVERSEG_DEBUG=1 for the traceback)",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
