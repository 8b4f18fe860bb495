"""The README's findings, generated from a profile's committed result folders (issue 16).

Each study of the suite ends in tables of seed-level comparisons (``analysis.stats``: estimate, crossed
seed × image interval, sign agreement over seeds, t over seeds, Holm, three-way verdict). This module
reads the *headline* rows of those tables back — the comparisons a study names as its claims, the ones
``analysis.design`` gives at least ``HEADLINE_MIN_SEEDS`` seeds — one row per claim with a stable id
(``01.own_vs_baseline.denoise_25``), and renders them as the Markdown blocks the README shows between
``<!-- findings:<study> begin -->`` and ``<!-- findings:<study> end -->``. So the README's numbers are
the verdict files' numbers, and ``check_readme`` (run by ``tests/test_findings.py``) says which block
no longer matches.

The claims per study (folder ``<profile_dir>/<study>_*``):

- ``01`` (Table I): own channels − the Restormer baseline without selection, − all channels of the same
  network (``paired_comparisons.csv``) and − random sets of the same size (``specificity.csv``), per
  Table I column; the variant ``hard_select`` (the mask-noise control is not a claim);
- ``02`` (channel sensitivity): each mechanism's overlap above chance (``mechanism_summary.csv``) and
  ``hard_select`` − each other mechanism per measure (``mechanism_comparisons.csv``);
- ``03`` (fusion comparison): ``hard_select`` − each headline opponent (``fusion_comparison.HEADLINE``),
  pooled over tasks and per task, PSNR with the image prompt, the test condition (``paired_tests.csv``);
- ``04`` (recognition): the text-anchored recogniser − the frequency cues and − the implicit prompts, over
  all classes and on composites. The notebook writes no table of these four tests, so they are read
  from the sentences of ``verdict.json`` (``stats.verdict_sentence``'s format; estimates to 0.1 point,
  p-values to 3 decimals, as the sentences give them);
- ``05`` (training budget): the slope of each gap ``hard_select − other`` per doubling of the budget
  (``gap_slopes.csv``), when the folder exists.

``published`` is the paper's number for the same difference where the paper has one (Table I for 01,
Table II for 03, from ``analysis.table1.paper_value`` and ``analysis.fusion_comparison.PUBLISHED_TABLE2``);
the paper reports no recognition accuracy, no channel-sensitivity measure and one training budget, so
02, 04 and 05 have none.

``write_snapshot`` keeps the first run's headline rows (``first_run_headlines.csv``) with the git commit
that holds the files they were read from; ``changes`` compares them with the current files for the
README's "what changed since the first run".
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from analysis import fusion_comparison, table1
from analysis.style import display_name
from analysis.tables import format_p, to_markdown

STUDIES = ("01", "02", "03", "04", "05")
COLUMNS = ["study", "claim", "what", "unit", "estimate", "lo", "hi", "n_seeds", "seeds_agree", "n_seed_pairs",
           "test", "p_holm", "verdict", "published", "source", "run_commit", "run_started"]
SNAPSHOT_NAME = "first_run_headlines.csv"
COMMAND = "csnet suite findings --profile {profile} --write"
CHANGES = "changes"
DIGITS = {"dB": 2, "points": 1, "dB per doubling": 2}  # decimals of an estimate by unit (3 otherwise)
ABOVE_CHANCE_TEST = "t over seeds against 0"  # analysis.sensitivity.mechanism_summary's test (not in its CSV)
_P_BELOW = float(np.nextafter(0.001, 0))  # a sentence's "p < 0.001": below the threshold, shown as "< 0.001"


# ----------------------------------------------------------------------------- reading one study


def study_dir(profile_dir: str | Path, study: str) -> Path | None:
    """The folder ``<profile_dir>/<study>_*`` of a study (``"01"`` … ``"05"``), None when absent."""
    if study not in STUDIES:
        raise ValueError(f"unknown study {study!r}; the studies are {list(STUDIES)}")
    found = sorted(p for p in Path(profile_dir).glob(f"{study}_*") if p.is_dir())
    if len(found) > 1:
        raise ValueError(f"{profile_dir} holds several folders for study {study}: {[p.name for p in found]}")
    return found[0] if found else None


def _manifest(folder: Path) -> dict:
    path = folder / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: every study folder has the manifest its notebook wrote")
    return json.loads(path.read_text())


def _read(folder: Path, name: str) -> pd.DataFrame:
    path = folder / name
    if not path.is_file():
        present = sorted(p.name for p in folder.glob("*.csv*"))
        raise FileNotFoundError(f"{path} is missing; its headline claims are read from it (tables present: "
                                f"{present or 'none'})")
    return pd.read_csv(path)


def _row(claim: str, what: str, unit: str, record, *, source: str, published: float = float("nan"),
         test: str | None = None, **override) -> dict:
    """A headline row from a row of ``stats.add_verdicts`` (a mapping); ``override`` replaces columns."""
    get = record.get
    row = {"claim": claim, "what": what, "unit": unit, "estimate": get("estimate"), "lo": get("lo"),
           "hi": get("hi"), "n_seeds": get("n_seeds"), "seeds_agree": get("seeds_agree", np.nan),
           "n_seed_pairs": get("n_seed_pairs", np.nan), "test": test if test is not None else get("test"),
           "p_holm": get("p_holm"), "verdict": get("verdict"), "published": published, "source": source}
    row.update(override)
    return row


def _slug(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(text).lower()).strip("_")


def _claims_01(folder: Path) -> list[dict]:
    rows = []
    comparisons = _read(folder, "paired_comparisons.csv")
    comparisons = comparisons[comparisons["variant"] == "hard_select"]
    kinds = ((table1.BASELINE, "own_vs_baseline", "own channels − Restormer baseline without selection"),
             (table1.ALL, "own_vs_all", "own channels − all channels of the same network"))
    for other, key, words in kinds:
        for record in comparisons[comparisons["other"] == other].to_dict("records"):
            task = record["task"]
            published = table1.paper_value(record["own"], task) - table1.paper_value(other, task)
            rows.append(_row(f"01.{key}.{task}", f"{words}, {display_name(task)}", "dB", record,
                             source="paired_comparisons.csv", published=published))
    spec = _read(folder, "specificity.csv")
    spec = spec[(spec["variant"] == "hard_select") & (spec["kind"] == "own − random")]
    for record in spec.to_dict("records"):
        task = record["task"]
        rows.append(_row(f"01.own_vs_random.{task}",
                         f"own channels − random sets of the same size, {display_name(task)}", "dB", record,
                         source="specificity.csv",
                         published=(table1.paper_value(record["channels"], task)
                                    - table1.paper_value(table1.RANDOM, task))))
    return rows


_MEASURES_02 = {"jaccard_above_chance": ("between-task overlap above chance", "Jaccard"),
                "specificity": ("specificity index", "index")}


def _claims_02(folder: Path) -> list[dict]:
    rows = []
    summary = _read(folder, "mechanism_summary.csv")
    for record in summary.to_dict("records"):
        mechanism = record["mechanism"]
        rows.append(_row(f"02.above_chance.{mechanism}",
                         f"between-task overlap of the top sensitive channels above chance, {display_name(mechanism)}",
                         "Jaccard", record, source="mechanism_summary.csv", test=ABOVE_CHANCE_TEST,
                         estimate=record["jaccard_above_chance"], lo=record["jaccard_above_chance_lo"],
                         hi=record["jaccard_above_chance_hi"], p_holm=record["above_chance_p_holm"],
                         verdict=record["above_chance_verdict"]))
    comparisons = _read(folder, "mechanism_comparisons.csv")
    for record in comparisons.to_dict("records"):
        words, unit = _MEASURES_02.get(record["measure"], (record["measure"], ""))
        rows.append(_row(f"02.{record['measure']}.{record['reference']}_vs_{record['other']}",
                         f"{words}, {display_name(record['reference'])} − {display_name(record['other'])}", unit,
                         record, source="mechanism_comparisons.csv"))
    return rows


def _published_03(mechanism: str, task: str) -> float:
    table = fusion_comparison.PUBLISHED_TABLE2.set_index("mechanism")
    column = "average_psnr" if task == fusion_comparison.POOLED else f"{task}_psnr"
    if mechanism not in table.index or column not in table.columns:
        return float("nan")
    return float(table.loc[mechanism, column])


def _claims_03(folder: Path) -> list[dict]:
    tests = _read(folder, "paired_tests.csv")
    tests = tests[(tests["prompt_source"] == "image") & (tests["metric"] == "psnr")
                  & tests["other"].isin(fusion_comparison.HEADLINE)]
    rows = []
    for other in fusion_comparison.HEADLINE:
        group = tests[tests["other"] == other]
        pooled = group[group["task"] == fusion_comparison.POOLED]
        for record in pd.concat([pooled, group.drop(pooled.index)]).to_dict("records"):
            task, reference = record["task"], record["reference"]
            where = "pooled over tasks" if task == fusion_comparison.POOLED else display_name(task)
            rows.append(_row(f"03.{reference}_vs_{other}.{_slug(task)}",
                             f"{display_name(reference)} − {display_name(other)}, {where} (image prompt)", "dB",
                             record, source="paired_tests.csv",
                             published=_published_03(reference, task) - _published_03(other, task)))
    return rows


COMPARISONS_04 = "recogniser_comparisons.csv"  # analysis.recognition_stats.recogniser_comparisons, in points
_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_SENTENCE_04 = re.compile(
    rf"(?P<recogniser>text anchors: [^;]+?) − (?P<baseline>[^;:]+?) on (?P<scope>all classes|composites): "
    rf"(?P<estimate>{_NUMBER}) points \((?P<ci>\d+)% CI (?P<lo>{_NUMBER}) to (?P<hi>{_NUMBER}) "
    rf"over seeds and photos\), "
    rf"(?:(?P<agree>\d+) of (?P<pairs>\d+) seeds? agree, )?(?P<test>[^;]+?) over (?P<n>\d+) seeds? "
    rf"p (?P<p_sign>[=<]) (?P<p>{_NUMBER}) \(Holm p (?P<holm_sign>[=<]) (?P<holm>{_NUMBER})\): "
    rf"(?P<verdict>different|equivalent within ±[^;]+?|inconclusive(?: \([^)]*\))?)(?=;|\.?$)")


def _claims_04(folder: Path) -> list[dict]:
    if (folder / COMPARISONS_04).is_file():
        table = _read(folder, COMPARISONS_04)
        return [_row(f"04.text_vs_{_slug(record['baseline'].split()[0])}.{_slug(record['scope'])}",
                     f"{record['recogniser']} − {record['baseline'].split(' (')[0]}, accuracy on {record['scope']}",
                     "points", record, source=COMPARISONS_04) for record in table.to_dict("records")]
    return _claims_04_from_sentence(folder)


def _claims_04_from_sentence(folder: Path) -> list[dict]:
    """Study 04 written before its comparisons had a table (the first cpu run): read from the verdict."""
    path = folder / "verdict.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; study 04's recogniser comparisons are read from it")
    sentence = json.loads(path.read_text())["verdict"]
    rows = []
    for match in _SENTENCE_04.finditer(sentence):
        m = match.groupdict()
        baseline = m["baseline"]
        record = {"estimate": float(m["estimate"]), "lo": float(m["lo"]), "hi": float(m["hi"]),
                  "n_seeds": int(m["n"]), "seeds_agree": float(m["agree"]) if m["agree"] else np.nan,
                  "n_seed_pairs": float(m["pairs"]) if m["pairs"] else np.nan, "test": f"{m['test']} over seeds",
                  "p_holm": _P_BELOW if m["holm_sign"] == "<" else float(m["holm"]), "verdict": m["verdict"]}
        rows.append(_row(f"04.text_vs_{_slug(baseline.split()[0])}.{_slug(m['scope'])}",
                         f"{m['recogniser']} − {baseline}, accuracy on {m['scope']}", "points", record,
                         source="verdict.json"))
    return rows


def _claims_05(folder: Path) -> list[dict]:
    slopes = _read(folder, "gap_slopes.csv")
    if "metric" in slopes:
        slopes = slopes[slopes["metric"] == "psnr"]
    rows = []
    for record in slopes.to_dict("records"):
        task = str(record["task"])
        where = "pooled over tasks" if task == "all tasks" else display_name(task)
        rows.append(_row(f"05.gap_slope.{record['reference']}_vs_{record['other']}.{_slug(task)}",
                         f"gap {display_name(record['reference'])} − {display_name(record['other'])} per doubling "
                         f"of the budget, {where}", "dB per doubling", record, source="gap_slopes.csv"))
    return rows


READERS: dict[str, Callable[[Path], list[dict]]] = {
    "01": _claims_01, "02": _claims_02, "03": _claims_03, "04": _claims_04, "05": _claims_05}
# The files each study's claims are read from (with manifest.json; 04 from the first present, its table
# or, before the table existed, its verdict sentence): what a snapshot's commit must hold.
FILES = {"01": ("paired_comparisons.csv", "specificity.csv"),
         "02": ("mechanism_summary.csv", "mechanism_comparisons.csv"),
         "03": ("paired_tests.csv",), "04": (COMPARISONS_04, "verdict.json"), "05": ("gap_slopes.csv",)}


def study_headlines(profile_dir: str | Path, study: str) -> pd.DataFrame:
    """The headline rows of one study (empty, with :data:`COLUMNS`, when its folder is absent)."""
    folder = study_dir(profile_dir, study)
    if folder is None:
        return pd.DataFrame(columns=COLUMNS)
    manifest = _manifest(folder)
    git = manifest.get("git") or {}
    commit = str(git.get("commit") or "unknown")[:12] + (" (dirty)" if git.get("dirty") else "")
    rows = [{"study": study, **row, "run_commit": commit, "run_started": manifest.get("started_utc", "")}
            for row in READERS[study](folder)]
    if not rows:
        raise ValueError(f"{folder} has no headline claims in {list(FILES[study])}: the tables are there but "
                         f"hold none of the comparisons study {study} names as headline")
    return pd.DataFrame(rows, columns=COLUMNS)


def headlines(profile_dir: str | Path) -> pd.DataFrame:
    """One row per headline claim of every study found in ``profile_dir`` (e.g. ``results/cpu``):
    ``study, claim`` (stable id), ``what`` (plain words), ``unit``, ``estimate, lo, hi`` (the study's
    interval), ``n_seeds``, ``seeds_agree`` of ``n_seed_pairs``, ``test``, ``p_holm``, ``verdict`` (as
    the study wrote it), ``published`` (the paper's number for the same difference, NaN where it has
    none), ``source`` (the file read), ``run_commit`` / ``run_started`` (from the study's manifest)."""
    profile_dir = Path(profile_dir)
    frames = [study_headlines(profile_dir, study) for study in STUDIES if study_dir(profile_dir, study)]
    if not frames:
        raise FileNotFoundError(f"{profile_dir} holds no study folder ({', '.join(s + '_*' for s in STUDIES)})")
    return pd.concat(frames, ignore_index=True)


# ----------------------------------------------------------------------------- Markdown


def _number(value: float, unit: str, signed: bool = True) -> str:
    digits = DIGITS.get(unit, 3)
    return f"{value:{'+' if signed else ''}.{digits}f}"


def _with_unit(text: str, unit: str) -> str:
    return f"{text} {unit}" if unit in DIGITS else text


def short_verdict(verdict: str) -> str:
    """The three-way label without its explanation: "different", "equivalent within ±m …",
    "inconclusive" or "inconclusive (underpowered)"."""
    text = str(verdict)
    if text.startswith("inconclusive"):
        return "inconclusive (underpowered)" if "underpowered" in text else "inconclusive"
    return text


def _agree(row) -> str:
    if pd.isna(row["seeds_agree"]) or pd.isna(row["n_seed_pairs"]):
        return ""
    return f"{int(row['seeds_agree'])} of {int(row['n_seed_pairs'])}"


def _ours(row) -> str:
    unit = row["unit"]
    interval = f"[{_number(row['lo'], unit)}, {_number(row['hi'], unit)}]"
    return _with_unit(f"{_number(row['estimate'], unit)} {interval}", unit)


def _shown_path(path: Path) -> str:
    from csnet.paths import project_root

    path = Path(path).resolve()
    try:
        return path.relative_to(project_root().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def render(profile_dir: str | Path, study: str) -> str:
    """The README block of one study: where the numbers come from, then a table (claim, ours with its
    95% interval and unit, seeds agreeing in sign, test, Holm p, verdict, the paper's published number)."""
    profile_dir = Path(profile_dir)
    folder = study_dir(profile_dir, study)
    if folder is None:
        return f"_No results for study {study} under `{_shown_path(profile_dir)}/` yet._\n"
    rows = study_headlines(profile_dir, study)
    sources = ", ".join(f"`{name}`" for name in dict.fromkeys(rows["source"]))
    first = rows.iloc[0]
    header = (f"_Generated from `{_shown_path(folder)}/` ({sources}; analysis run {first['run_started']}, "
              f"code commit {first['run_commit']}) by `{COMMAND.format(profile=profile_dir.name)}`; "
              f"`tests/test_findings.py` checks that it matches the files. Paper: the published number of "
              f"the same difference, on their data (not comparable)._")
    shown = pd.DataFrame({
        "claim": rows["what"],
        "ours [95% CI]": [_ours(r) for _, r in rows.iterrows()],
        "seeds agree": [_agree(r) for _, r in rows.iterrows()],
        "test": [str(t).replace("over seeds", f"over {int(n)} seeds") for t, n in zip(rows["test"], rows["n_seeds"])],
        "Holm p": ["" if pd.isna(p) else format_p(float(p)) for p in rows["p_holm"]],
        "verdict": [short_verdict(v) for v in rows["verdict"]],
        "paper (published)": ["—" if pd.isna(p) else _with_unit(_number(p, u), u)
                              for p, u in zip(rows["published"], rows["unit"])],
    })
    bold = pd.DataFrame(False, index=shown.index, columns=shown.columns)
    numeric = [False, True, True, False, True, False, True]
    return header + "\n\n" + to_markdown(shown, bold, numeric, caption=None)


def _provenance(frame: pd.DataFrame) -> dict:
    return {study: tuple(group[["run_commit", "run_started"]].astype(str).iloc[0])
            for study, group in frame.groupby(frame["study"].astype(str).str.zfill(2), sort=True)}


def _cell(row) -> str:
    if row is None:
        return "—"
    test = str(row["test"]).split(" t ")[0]  # paired / Welch
    return f"{_ours(row)}; {int(row['n_seeds'])} seeds, {test}: {short_verdict(row['verdict'])}"


def changes(first_run: pd.DataFrame, current: pd.DataFrame) -> str:
    """The "what changed since the first run" block: per claim id, the first run's estimate, seeds, test
    and verdict beside the current ones, and the change of the estimate; claims on one side only are
    listed with "—" on the other. Studies whose files come from the same analysis run (manifest commit
    and start time) on both sides are named as not re-run; when none was, the block says so."""
    first_run, current = first_run.copy(), current.copy()
    for frame in (first_run, current):
        frame["study"] = frame["study"].astype(str).str.zfill(2)
    before, after = _provenance(first_run), _provenance(current)
    same = [s for s in STUDIES if s in before and before.get(s) == after.get(s)]
    if same and set(same) == set(before) | set(after):
        return (f"No re-run yet: the files of studies {', '.join(same)} are the first run's (the same analysis "
                f"run as the snapshot of its headline numbers), so there is nothing to compare.\n")
    changed = [s for s in STUDIES if s in set(before) | set(after) and s not in same]
    old = first_run[first_run["study"].isin(changed)].set_index("claim")
    new = current[current["study"].isin(changed)].set_index("claim")
    claims = list(dict.fromkeys([*new.index, *old.index]))
    records = []
    for claim in claims:
        a = old.loc[claim] if claim in old.index else None
        b = new.loc[claim] if claim in new.index else None
        either = b if b is not None else a
        delta = ""
        if a is not None and b is not None:
            delta = _with_unit(_number(float(b["estimate"]) - float(a["estimate"]), either["unit"]), either["unit"])
            if short_verdict(a["verdict"]) != short_verdict(b["verdict"]):
                delta += "; verdict changed"
        records.append({"claim": f"`{claim}`", "first run": _cell(a), "now": _cell(b), "change": delta})
    table = pd.DataFrame(records, columns=["claim", "first run", "now", "change"])
    bold = pd.DataFrame(False, index=table.index, columns=table.columns)
    lines = [f"Re-run since the first run: studies {', '.join(changed)}."]
    if same:
        lines.append(f"Not re-run: studies {', '.join(same)}.")
    return " ".join(lines) + "\n\n" + to_markdown(table, bold, [False, False, False, True], caption=None)


# ----------------------------------------------------------------------------- the snapshot


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, check=False)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def results_commit(folder: str | Path) -> str:
    """The last git commit that changed ``folder`` ("" outside a git checkout); ``ValueError`` when the
    files read from it have uncommitted changes (no commit holds them)."""
    folder = Path(folder)
    commit = _git(folder, "log", "-1", "--format=%H", "--", ".")
    if not commit:
        return ""
    dirty = _git(folder, "status", "--porcelain", "--untracked-files=all", "--", ".")
    if dirty:
        raise ValueError(f"{folder} has uncommitted changes ({dirty.splitlines()[0]} …): commit the results "
                         f"first, so that the snapshot names the commit that holds them")
    return commit


def write_snapshot(profile_dir: str | Path, path: str | Path | None = None, *, overwrite: bool = False) -> Path:
    """Write the headline rows of ``profile_dir`` (default path ``<profile_dir>/first_run_headlines.csv``)
    with a first column ``commit``: the git commit that holds each study's files. It is the record of
    the first run's numbers; an existing snapshot is kept unless ``overwrite`` (after a re-run the result
    folders hold other numbers, and the record would be lost)."""
    from csnet.io import atomic_write

    profile_dir = Path(profile_dir)
    path = Path(path) if path is not None else profile_dir / SNAPSHOT_NAME
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists: it is the record of the first run's headline numbers; remove it "
                              f"first if a new record is really meant")
    frame = headlines(profile_dir)
    commits = {s: results_commit(study_dir(profile_dir, s)) for s in dict.fromkeys(frame["study"])}
    frame.insert(0, "commit", frame["study"].map(commits))
    with atomic_write(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path


def read_snapshot(path: str | Path) -> pd.DataFrame:
    """A snapshot written by :func:`write_snapshot` (study ids kept as text: ``"01"``, not 1)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: write the first run's record with "
                                f"`csnet suite findings --profile <profile> --snapshot {path}`")
    return pd.read_csv(path, dtype={"study": str, "commit": str}, keep_default_na=True)


# ----------------------------------------------------------------------------- the README


def markers(name: str) -> tuple[str, str]:
    """The README's begin and end markers of block ``name`` (a study id or ``changes``)."""
    return f"<!-- findings:{name} begin -->", f"<!-- findings:{name} end -->"


def _blocks(text: str) -> dict[str, tuple[int, int]]:
    """Marker name → (start, end) of the text between its begin and end markers."""
    out = {}
    for match in re.finditer(r"<!-- findings:(\w+) begin -->", text):
        name = match.group(1)
        end = text.find(markers(name)[1], match.end())
        if end < 0:
            raise ValueError(f"README block {name!r} has a begin marker without its end marker {markers(name)[1]!r}")
        out[name] = (match.end(), end)
    return out


def expected_blocks(profile_dir: str | Path, snapshot: str | Path | pd.DataFrame,
                    names: Sequence[str] | None = None) -> dict[str, str]:
    """Block name → the text its markers should enclose: each study's :func:`render` and the
    :func:`changes` of the snapshot against the current files."""
    names = list(names) if names is not None else [*STUDIES, CHANGES]
    out = {}
    for name in names:
        if name == CHANGES:
            first = snapshot if isinstance(snapshot, pd.DataFrame) else read_snapshot(snapshot)
            out[name] = changes(first, headlines(profile_dir))
        elif name in STUDIES:
            out[name] = render(profile_dir, name)
        else:
            raise ValueError(f"unknown findings block {name!r}; the blocks are {[*STUDIES, CHANGES]}")
    return {name: f"\n{text.rstrip()}\n" for name, text in out.items()}


def _required(profile_dir: Path) -> list[str]:
    return [s for s in STUDIES if study_dir(profile_dir, s)] + [CHANGES]


def update_readme(readme_path: str | Path, profile_dir: str | Path, snapshot: str | Path | pd.DataFrame) -> list[str]:
    """Replace the text between every ``<!-- findings:<name> begin/end -->`` pair of the README with its
    generated block (atomic write); returns the names of the blocks that changed. Every study present
    under ``profile_dir`` and the ``changes`` block must have markers."""
    from csnet.io import atomic_write

    readme_path = Path(readme_path)
    text = readme_path.read_text()
    blocks = _blocks(text)
    missing = [name for name in _required(Path(profile_dir)) if name not in blocks]
    if missing:
        raise ValueError(f"{readme_path} has no markers for {missing}; add "
                         + ", ".join(" … ".join(markers(m)) for m in missing))
    wanted = expected_blocks(profile_dir, snapshot, list(blocks))
    changed = [name for name, (start, end) in blocks.items() if text[start:end] != wanted[name]]
    for name, (start, end) in sorted(blocks.items(), key=lambda item: -item[1][0]):
        text = text[:start] + wanted[name] + text[end:]
    if changed:
        with atomic_write(readme_path) as tmp:
            tmp.write_text(text)
    return changed


def check_readme(readme_path: str | Path, profile_dir: str | Path, snapshot: str | Path | pd.DataFrame) -> list[str]:
    """The names of the README's findings blocks that differ from what the files give (a study present
    under ``profile_dir`` without markers counts as differing); empty when every block matches."""
    text = Path(readme_path).read_text()
    blocks = _blocks(text)
    wanted = expected_blocks(profile_dir, snapshot, list(blocks))
    differ = [name for name, (start, end) in blocks.items() if text[start:end] != wanted[name]]
    return differ + [name for name in _required(Path(profile_dir)) if name not in blocks]

