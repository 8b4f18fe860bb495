"""``csnet suite``: run the notebook suite headless, list it, strip notebook outputs."""
from __future__ import annotations

import argparse
import sys


def add_parser(subparsers) -> None:
    suite = subparsers.add_parser(
        "suite", help="run, list or strip the notebook suite",
        description="The notebooks in notebooks/NN_*.ipynb, executed through papermill into "
                    "results/<profile>/<notebook>/ (honours CSNET_RESULTS).")
    commands = suite.add_subparsers(dest="suite_command", metavar="SUITE_COMMAND")

    def print_usage(args: argparse.Namespace) -> int:
        suite.print_help()
        return 2

    suite.set_defaults(func=print_usage)

    run = commands.add_parser(
        "run", help="execute the notebooks at a profile",
        description="Execute every notebook (or those named by --only) with the parameters profile and "
                    "output_dir, writing results/<profile>/<notebook>/ and results/<profile>/index.md. "
                    "A failing notebook keeps its executed copy; the others still run; the exit status "
                    "is 1 if any failed.")
    run.add_argument("--profile", required=True, help="smoke, quick, cpu or paper")
    run.add_argument("--only", action="append", metavar="NOTEBOOK",
                     help="a notebook's stem, number prefix (01) or file name; repeat for several")
    run.add_argument("--jobs", type=int, default=1, metavar="N", help="notebooks run in parallel (default 1)")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                     help="an extra notebook parameter (numbers, True/False/None as papermill reads them; "
                          "'[0, 1, 2]' as a list); every selected notebook must declare it")
    run.add_argument("--kernel", default=None,
                     help="Jupyter kernel (default: 'csnet' if installed in this environment, else python3)")
    run.add_argument("--results-root", default=None, metavar="DIR",
                     help="results root instead of CSNET_RESULTS or <project>/results")
    run.add_argument("--notebooks-dir", default=None, metavar="DIR",
                     help="notebook folder instead of <project>/notebooks")
    run.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    run.set_defaults(func=_run)

    listing = commands.add_parser("list", help="list the notebooks in run order, with their parameters")
    listing.add_argument("--notebooks-dir", default=None, metavar="DIR")
    listing.add_argument("-v", "--verbose", action="store_true", help="show each parameter's type, default and help")
    listing.set_defaults(func=_list)

    strip = commands.add_parser("strip", help="remove outputs and execution counts, keeping cell tags")
    strip.add_argument("paths", nargs="*", metavar="PATH", help="notebooks (default: the suite's notebooks)")
    strip.add_argument("--check", action="store_true",
                       help="change nothing; exit 1 if any notebook has outputs to strip")
    strip.set_defaults(func=_strip)


def _run(args: argparse.Namespace) -> int:
    from csnet.suite import parse_parameter_value, run_suite

    extra = {}
    for key, value in args.parameter:
        if key in extra:
            print(f"csnet suite run: parameter {key!r} given twice", file=sys.stderr)
            return 2
        extra[key] = parse_parameter_value(value)
    try:
        result = run_suite(args.profile, only=args.only, jobs=args.jobs, results_root=args.results_root,
                           extra_params=extra, progress=args.progress, notebooks_dir=args.notebooks_dir,
                           kernel=args.kernel)
    except (ValueError, FileNotFoundError) as err:
        print(f"csnet suite run: {err}", file=sys.stderr)
        return 2
    print(result.summary(), file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


def _list(args: argparse.Namespace) -> int:
    from csnet.suite import discover_notebooks, notebook_parameters

    try:
        notebooks = discover_notebooks(args.notebooks_dir)
    except FileNotFoundError as err:
        print(f"csnet suite list: {err}", file=sys.stderr)
        return 2
    status = 0
    for nb in notebooks:
        try:
            params = notebook_parameters(nb)
        except ValueError as err:
            print(f"{nb.stem}  [not runnable: {err}]")
            status = 1
            continue
        if not args.verbose:
            print(f"{nb.stem}  (parameters: {', '.join(params)})")
            continue
        print(nb.stem)
        for name, p in params.items():
            help_text = f"  # {p['help']}" if p.get("help") else ""
            print(f"    {name}: {p['type']} = {p['default']}{help_text}")
    if not notebooks:
        print("no NN_name.ipynb notebooks found")
    return status


def _strip(args: argparse.Namespace) -> int:
    from csnet.suite import discover_notebooks, strip_outputs

    paths = args.paths or [str(p) for p in discover_notebooks()]
    changed = []
    for path in paths:
        try:
            if strip_outputs(path, check_only=args.check):
                changed.append(path)
        except (OSError, ValueError) as err:
            print(f"csnet suite strip: {path}: {err}", file=sys.stderr)
            return 2
    if args.check:
        if changed:
            print("notebooks with outputs to strip: " + ", ".join(changed), file=sys.stderr)
        return 1 if changed else 0
    for path in changed:
        print(f"stripped {path}")
    return 0
