"""``csnet corpus`` and ``csnet degrade``: look at the embedded photos and degrade any image."""
from __future__ import annotations

import argparse
import json
import sys


def _corpus(args: argparse.Namespace) -> int:
    from csnet.corpus import format_table

    print(format_table())
    return 0


def _degrade(args: argparse.Namespace) -> int:
    from csnet.degrade import degrade_file

    try:
        params = degrade_file(args.image, args.task, args.seed, args.output)
    except (ValueError, OSError) as err:  # bad input, unreadable file, unwritable output
        print(f"csnet degrade: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(params, indent=2))
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a seed is a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed is a non-negative integer, got {text!r}")
    return value


def add_parser(subparsers) -> None:
    """Register ``corpus`` and ``degrade``."""
    corpus = subparsers.add_parser(
        "corpus", help="list the photos embedded in installed packages (name, source, size, split)",
        description="List the natural photos that installed PyPI packages ship, with their split.")
    corpus.set_defaults(func=_corpus)

    degrade = subparsers.add_parser(
        "degrade", help="degrade an image by a task key and print the parameters drawn",
        description="Degrade IMAGE by a task key (e.g. derain, denoise_25, rain+haze) and write "
                    "a PNG. The same seed gives the same bytes.")
    degrade.add_argument("image", metavar="IMAGE", help="input image file (any format Pillow reads)")
    degrade.add_argument("--task", required=True, metavar="KEY",
                         help="task key: denoise_15/25/50, derain, dehaze, deblur, lowlight, a "
                              "primitive (noise, rain, haze, blur, lowlight) or a '+' composite")
    degrade.add_argument("--seed", type=_seed, default=0, metavar="N", help="random seed (default 0)")
    degrade.add_argument("-o", "--output", required=True, metavar="OUT.png", help="output PNG file")
    degrade.set_defaults(func=_degrade)
