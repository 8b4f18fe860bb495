"""``csnet suite``: run the notebook suite headless, plan its compute, list it, strip notebook outputs, and
generate the README's findings from the result folders."""
from __future__ import annotations

import argparse
import sys


def _selection_arguments(parser: argparse.ArgumentParser, jobs_help: str) -> None:
    """--profile, --only, --jobs and -p: which notebooks at which profile, as `run` and `plan` take them."""
    from csnet.profiles import PROFILE_NAMES

    parser.add_argument("--profile", required=True, help=", ".join(PROFILE_NAMES))
    parser.add_argument("--only", action="append", metavar="NOTEBOOK",
                        help="a notebook's stem, number prefix (01) or file name; repeat for several")
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help=jobs_help)
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                        help="an extra notebook parameter (numbers, True/False/None as papermill reads them; "
                             "'[0, 1, 2]' as a list); every selected notebook must declare it")


def add_parser(subparsers) -> None:
    suite = subparsers.add_parser(
        "suite", help="run, plan, list or strip the notebook suite",
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
    _selection_arguments(run, jobs_help="notebooks run in parallel (default 1)")
    run.add_argument("--kernel", default=None,
                     help="Jupyter kernel (default: 'csnet' if installed in this environment, else python3)")
    run.add_argument("--results-root", default=None, metavar="DIR",
                     help="results root instead of CSNET_RESULTS or <project>/results")
    run.add_argument("--notebooks-dir", default=None, metavar="DIR",
                     help="notebook folder instead of <project>/notebooks")
    run.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    run.add_argument("--dry-run", action="store_true",
                     help="print the compute plan (as `csnet suite plan`) and stop; nothing runs or trains")
    run.add_argument("--seconds-per-step", type=float, default=None, metavar="S",
                     help="with --dry-run: assume S CPU seconds per step instead of measuring")
    run.set_defaults(func=_run)

    plan = commands.add_parser(
        "plan", help="print the compute plan of a suite run: models, shared models, steps, measured minutes",
        description="Which models each notebook (or those named by --only) asks the run store for at the "
                    "profile, how many an earlier notebook or the store already has, the optimiser steps left "
                    "and their CPU minutes at the seconds per step measured here (1 torch thread, once per "
                    "architecture). Training only: evaluation, attribution and recognition-only encoders are "
                    "not timed. Reads the store; trains and writes nothing.")
    _selection_arguments(plan, jobs_help="notebooks run in parallel: wall minutes = CPU minutes / N (default 1)")
    plan.add_argument("--seconds-per-step", type=float, default=None, metavar="S",
                      help="assume S CPU seconds per step for every model instead of measuring (measuring "
                           "takes a few CPU seconds per architecture at cpu scale, minutes at paper scale)")
    plan.add_argument("--notebooks-dir", default=None, metavar="DIR",
                      help="notebook folder instead of <project>/notebooks")
    plan.set_defaults(func=_plan)

    listing = commands.add_parser("list", help="list the notebooks in run order, with their parameters")
    listing.add_argument("--notebooks-dir", default=None, metavar="DIR")
    listing.add_argument("-v", "--verbose", action="store_true", help="show each parameter's type, default and help")
    listing.set_defaults(func=_list)

    strip = commands.add_parser("strip", help="remove outputs and execution counts, keeping cell tags")
    strip.add_argument("paths", nargs="*", metavar="PATH", help="notebooks (default: the suite's notebooks)")
    strip.add_argument("--check", action="store_true",
                       help="change nothing; exit 1 if any notebook has outputs to strip")
    strip.set_defaults(func=_strip)

    findings = commands.add_parser(
        "findings", help="the README's findings blocks, generated from the result folders' tables",
        description="The headline claims of every study under results/<profile>/ (analysis.findings): print "
                    "the Markdown blocks, or with --write replace the text between the README's "
                    "<!-- findings:<study> begin/end --> markers; --check exits 1 when a block differs; "
                    "--snapshot writes the record of the current headline numbers (the first run's).")
    findings.add_argument("--profile", required=True, help="the results folder's profile (cpu, quick, …)")
    findings.add_argument("--write", action="store_true", help="update README.md in place")
    findings.add_argument("--check", action="store_true",
                          help="change nothing; exit 1 if a README block differs from the files")
    findings.add_argument("--snapshot", default=None, metavar="PATH",
                          help="write the headline rows with the commit holding their files to PATH (refuses "
                               "to overwrite: it is the first run's record) and stop")
    findings.add_argument("--first-run", default=None, metavar="PATH",
                          help="the first run's snapshot (default results/<profile>/first_run_headlines.csv)")
    findings.add_argument("--readme", default=None, metavar="PATH", help="README to update (default: the project's)")
    findings.add_argument("--results-root", default=None, metavar="DIR",
                          help="results root instead of CSNET_RESULTS or <project>/results")
    findings.set_defaults(func=_findings)


def _parameters(pairs: list[list[str]], command: str) -> dict | None:
    """The ``-p KEY VALUE`` pairs as a dict, or None (after saying why) when a key is given twice."""
    from csnet.suite import parse_parameter_value

    extra = {}
    for key, value in pairs:
        if key in extra:
            print(f"csnet suite {command}: parameter {key!r} given twice", file=sys.stderr)
            return None
        extra[key] = parse_parameter_value(value)
    return extra


def _print_plan(args: argparse.Namespace, extra: dict, command: str) -> int:
    from analysis.compute_plan import format_plan, suite_plan

    try:
        table = suite_plan(args.profile, only=args.only, params=extra, jobs=args.jobs,
                           seconds_per_step=args.seconds_per_step, notebooks_dir=args.notebooks_dir)
    except (ValueError, FileNotFoundError) as err:
        print(f"csnet suite {command}: {err}", file=sys.stderr)
        return 2
    print(format_plan(table))
    return 0


def _plan(args: argparse.Namespace) -> int:
    extra = _parameters(args.parameter, "plan")
    return 2 if extra is None else _print_plan(args, extra, "plan")


def _run(args: argparse.Namespace) -> int:
    from csnet.suite import run_suite

    extra = _parameters(args.parameter, "run")
    if extra is None:
        return 2
    if args.dry_run:
        return _print_plan(args, extra, "run --dry-run")
    if args.seconds_per_step is not None:
        print("csnet suite run: --seconds-per-step only goes with --dry-run (a plan); a run measures nothing",
              file=sys.stderr)
        return 2
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


def _findings(args: argparse.Namespace) -> int:
    from pathlib import Path

    from analysis import findings
    from csnet.paths import project_root, results_dir

    profile_dir = Path(args.results_root) / args.profile if args.results_root else results_dir(args.profile)
    readme = Path(args.readme) if args.readme else project_root() / "README.md"
    snapshot = Path(args.first_run) if args.first_run else profile_dir / findings.SNAPSHOT_NAME
    if args.write and args.check:
        print("csnet suite findings: --write and --check exclude each other", file=sys.stderr)
        return 2
    try:
        if args.snapshot:
            print(f"wrote {findings.write_snapshot(profile_dir, args.snapshot)}")
            return 0
        if args.check:
            differ = findings.check_readme(readme, profile_dir, snapshot)
            if differ:
                print(f"{readme}: findings blocks that differ from {profile_dir}: {', '.join(differ)} "
                      f"(regenerate with `csnet suite findings --profile {args.profile} --write`)", file=sys.stderr)
            return 1 if differ else 0
        if args.write:
            changed = findings.update_readme(readme, profile_dir, snapshot)
            print(f"updated {readme}: {', '.join(changed)}" if changed else f"{readme} is up to date")
            return 0
        names = [*findings.STUDIES, findings.CHANGES]
        if not snapshot.is_file():
            names.remove(findings.CHANGES)
            print(f"csnet suite findings: no first-run snapshot at {snapshot}: the changes block is left out",
                  file=sys.stderr)
        for name, text in findings.expected_blocks(profile_dir, snapshot, names).items():
            begin, end = findings.markers(name)
            print(f"{begin}{text}{end}\n")
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"csnet suite findings: {err}", file=sys.stderr)
        return 2
    return 0
