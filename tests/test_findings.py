"""The README's findings blocks against the verdict files (issue 16: "a test reads both"), and
analysis.findings on small synthetic result folders."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import budget, findings, fusion_comparison, stats
from csnet.cli import main

ROOT = Path(__file__).resolve().parent.parent
PROFILE_DIR = ROOT / "results" / "cpu"
README = ROOT / "README.md"
SNAPSHOT = PROFILE_DIR / findings.SNAPSHOT_NAME


# ----------------------------------------------------------------------------- the committed files


def test_readme_findings_match_the_committed_verdict_files():
    assert findings.check_readme(README, PROFILE_DIR, SNAPSHOT) == [], \
        "regenerate with `csnet suite findings --profile cpu --write`"


def test_committed_headlines_name_every_headline_claim_with_its_published_number():
    table = findings.headlines(PROFILE_DIR).set_index("claim")
    for task in ("denoise_25", "derain", "dehaze"):
        for kind in ("own_vs_baseline", "own_vs_all", "own_vs_random"):
            assert f"01.{kind}.{task}" in table.index
    for other in fusion_comparison.HEADLINE:
        assert f"03.hard_select_vs_{other}.all_tasks" in table.index
    assert {f"04.text_vs_{b}.{s}" for b in ("frequency", "implicit") for s in ("all_classes", "composites")} \
        <= set(table.index)
    # published = CSNet − the opponent's anchor in Table II; Table I's own − all channels; none for soft_gate
    paper = fusion_comparison.PUBLISHED_TABLE2.set_index("mechanism")
    assert table.loc["03.hard_select_vs_none.all_tasks", "published"] == pytest.approx(
        paper.loc["hard_select", "average_psnr"] - paper.loc["none", "average_psnr"])
    assert np.isnan(table.loc["03.hard_select_vs_soft_gate.all_tasks", "published"])
    assert table.loc["01.own_vs_baseline.denoise_25", "published"] == pytest.approx(31.49 - 31.18)
    assert np.isnan(table.loc["01.own_vs_random.derain", "published"])
    assert set(table["verdict"].map(findings.short_verdict)) <= {"different", "inconclusive",
                                                                 "inconclusive (underpowered)"} | {
        v for v in table["verdict"] if v.startswith("equivalent")}


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    except OSError:
        return None
    return done.stdout if done.returncode == 0 else None


def test_snapshot_equals_the_files_at_the_commit_it_names(tmp_path):
    """The first run's record reads back from the files of the commit it names (true before and after
    the re-run: the re-run replaces the folders, not the history)."""
    snapshot = findings.read_snapshot(SNAPSHOT)
    for (commit, study), rows in snapshot.groupby(["commit", "study"], sort=False):
        listing = _git("ls-tree", "--name-only", f"{commit}:results/cpu")
        if listing is None:
            pytest.skip(f"commit {commit} is not in this checkout (a shallow clone?)")
        folder = next(name for name in listing.split() if name.startswith(f"{study}_"))
        (tmp_path / folder).mkdir(exist_ok=True)
        copied = []
        for name in ("manifest.json", *findings.FILES[study]):  # 04's table is newer than its sentence: either
            text = _git("show", f"{commit}:results/cpu/{folder}/{name}")
            if text is not None:
                (tmp_path / folder / name).write_text(text)
                copied.append(name)
        assert "manifest.json" in copied and len(copied) > 1, f"study {study}'s files are not in commit {commit}"
        then = findings.study_headlines(tmp_path, study)
        pd.testing.assert_frame_equal(rows.drop(columns="commit").reset_index(drop=True), then,
                                      check_dtype=False)


def test_findings_reads_results_without_torch():
    code = "import sys, analysis.findings; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


# ----------------------------------------------------------------------------- synthetic folders


def _manifest(folder: Path, started: str = "2026-01-01T00:00:00+00:00", commit: str = "a" * 40) -> None:
    (folder / "manifest.json").write_text(json.dumps({"git": {"commit": commit, "dirty": False},
                                                      "started_utc": started}))


def _scores(shift: float = -1.0, seed: int = 0) -> pd.DataFrame:
    """Per-image PSNR/SSIM of 4 mechanisms × 3 seeds × 2 tasks × 4 images; hard_select ``shift`` dB off."""
    rng = np.random.default_rng(seed)
    rows = []
    for method in ("hard_select", "none", "soft_gate", "cross_attention"):
        for s in range(3):
            for task in ("denoise_25", "derain"):
                for image in "abcd":
                    psnr = 25 + (shift if method == "hard_select" else 0) + rng.normal(0, 0.3)
                    rows.append({"prompt_source": "image", "kind": fusion_comparison.LEARNED, "method": method,
                                 "task": task, "seed": s, "image": image, "psnr": psnr, "ssim": 0.8})
    return pd.DataFrame(rows)


def _study_03(profile_dir: Path, shift: float = -1.0, started: str = "2026-01-01T00:00:00+00:00") -> Path:
    folder = profile_dir / "03_fusion_comparison"
    folder.mkdir(parents=True, exist_ok=True)
    tests = fusion_comparison.paired_tests(_scores(shift), "image", metrics=("psnr",), n_boot=50,
                                           paired_seeds=True, mixed=False)
    tests.to_csv(folder / "paired_tests.csv", index=False)
    _manifest(folder, started)
    return folder


def _readme(path: Path, names) -> Path:
    text = "# Results\n\n" + "".join(f"## {n}\n\nProse.\n\n{findings.markers(n)[0]}\n{findings.markers(n)[1]}\n\n"
                                     for n in names)
    path.write_text(text)
    return path


@pytest.fixture
def synthetic(tmp_path):
    profile_dir = tmp_path / "results" / "cpu"
    _study_03(profile_dir)
    snapshot = findings.write_snapshot(profile_dir)
    readme = _readme(tmp_path / "README.md", ["03", "changes"])
    assert findings.update_readme(readme, profile_dir, snapshot) == ["03", "changes"]
    return profile_dir, readme, snapshot


def test_headlines_read_the_study_table_row_for_row(tmp_path):
    folder = _study_03(tmp_path)
    table = findings.headlines(tmp_path)
    tests = pd.read_csv(folder / "paired_tests.csv")
    assert len(table) == 3 * 3  # 3 headline opponents × (2 tasks + pooled)
    assert table["claim"].iloc[0] == "03.hard_select_vs_none.all_tasks"  # pooled first
    row = table.set_index("claim").loc["03.hard_select_vs_cross_attention.derain"]
    source = tests[(tests["other"] == "cross_attention") & (tests["task"] == "derain")].iloc[0]
    for column in ("estimate", "lo", "hi", "p_holm", "verdict", "test", "n_seeds"):
        assert row[column] == source[column]
    assert row["unit"] == "dB" and row["run_started"] == "2026-01-01T00:00:00+00:00"


def test_readme_blocks_stay_matched_until_a_file_or_the_readme_changes(synthetic):
    profile_dir, readme, snapshot = synthetic
    assert findings.check_readme(readme, profile_dir, snapshot) == []
    assert findings.update_readme(readme, profile_dir, snapshot) == []
    assert "Prose." in readme.read_text()
    block = findings.render(profile_dir, "03")
    assert block in readme.read_text() and "| Hard select (CSNet) − None (Restormer), pooled over tasks" in block

    # a verdict in the study's table changes: only its block differs
    path = profile_dir / "03_fusion_comparison" / "paired_tests.csv"
    tests = pd.read_csv(path)
    pooled = (tests["other"] == "soft_gate") & (tests["task"] == "all tasks")
    flipped = "equivalent within ±0.25" if tests.loc[pooled, "verdict"].iloc[0] != "equivalent within ±0.25" \
        else "different"
    tests.loc[pooled, "verdict"] = flipped
    tests.to_csv(path, index=False)
    assert findings.check_readme(readme, profile_dir, snapshot) == ["03"]
    assert findings.update_readme(readme, profile_dir, snapshot) == ["03"]
    assert findings.check_readme(readme, profile_dir, snapshot) == []

    # a number of the block edited by hand is reported too
    text = readme.read_text()
    estimate = f"{tests.loc[pooled, 'estimate'].iloc[0]:+.2f} ["
    assert estimate in text
    readme.write_text(text.replace(estimate, "+9.99 [", 1))
    assert findings.check_readme(readme, profile_dir, snapshot) == ["03"]


def test_a_study_without_markers_is_reported_and_not_silently_skipped(synthetic, tmp_path):
    profile_dir, _, snapshot = synthetic
    readme = _readme(tmp_path / "other.md", ["changes"])
    assert findings.check_readme(readme, profile_dir, snapshot)[-1] == "03"
    with pytest.raises(ValueError, match=r"no markers for \['03'\].*findings:03 begin"):
        findings.update_readme(readme, profile_dir, snapshot)
    readme.write_text(f"{findings.markers('03')[0]}\nno end\n")
    with pytest.raises(ValueError, match="without its end marker"):
        findings.check_readme(readme, profile_dir, snapshot)


def test_changes_say_no_rerun_then_list_first_and_current_numbers(synthetic):
    profile_dir, readme, snapshot = synthetic
    first = findings.read_snapshot(snapshot)
    assert findings.changes(first, findings.headlines(profile_dir)).startswith("No re-run yet")
    assert "No re-run yet" in readme.read_text()

    _study_03(profile_dir, shift=+0.5, started="2026-06-01T00:00:00+00:00")  # the re-run
    now = findings.headlines(profile_dir)
    gone = "03.hard_select_vs_cross_attention.derain"
    now = pd.concat([now[now["claim"] != gone], now.iloc[[0]].assign(claim="03.new_claim")], ignore_index=True)
    block = findings.changes(first.iloc[1:], now)  # the first run lacks its first claim; the re-run adds one
    assert block.startswith("Re-run since the first run: studies 03.")
    cells = {line.split("|")[1].strip(" `"): [c.strip() for c in line.split("|")[2:5]]
             for line in block.splitlines() if line.startswith("| `")}
    old_row = first.set_index("claim").loc["03.hard_select_vs_none.derain"]
    new_row = now.set_index("claim").loc["03.hard_select_vs_none.derain"]
    before, after, change = cells["03.hard_select_vs_none.derain"]
    assert before.startswith(f"{old_row['estimate']:+.2f} [") and after.startswith(f"{new_row['estimate']:+.2f} [")
    assert change.startswith(f"{new_row['estimate'] - old_row['estimate']:+.2f} dB")
    assert ("verdict changed" in change) == (findings.short_verdict(old_row["verdict"])
                                             != findings.short_verdict(new_row["verdict"]))
    assert cells["03.new_claim"][0] == "—" and cells["03.hard_select_vs_none.all_tasks"][0] == "—"
    assert cells[gone][1] == "—" and cells[gone][2] == ""
    assert findings.check_readme(readme, profile_dir, snapshot) == ["03", "changes"]


def test_snapshot_is_not_overwritten(synthetic):
    profile_dir, _, snapshot = synthetic
    with pytest.raises(FileExistsError, match="record of the first run"):
        findings.write_snapshot(profile_dir, snapshot)
    assert findings.read_snapshot(snapshot)["commit"].fillna("").eq("").all()  # not a git checkout


def test_recogniser_sentences_parse_back_to_their_numbers(tmp_path):
    """Study 04's numbers come from verdict sentences: the parser reads what stats.verdict_sentence writes."""
    rows = [dict(estimate=-0.187, lo=-0.226, hi=-0.146, ci=0.95, seeds_agree=5, n_seed_pairs=5, n_seeds=5,
                 test="paired t over seeds", p_value=0.0002, p_holm=0.0004, verdict="different"),
            dict(estimate=0.021, lo=-0.05, hi=0.08, ci=0.95, seeds_agree=3, n_seed_pairs=5, n_seeds=5,
                 test="paired t over seeds", p_value=0.2, p_holm=0.4,
                 verdict="inconclusive (underpowered: 5 seeds cannot reliably reach α = 0.05 after Holm over 4; "
                         "80% power needs ≥ 4.5 seed SDs)")]
    subjects = ["text anchors: wordllama l2_supercat − frequency cues on composites",
                "text anchors: wordllama l2_supercat − implicit prompts on all classes"]
    parts = ["on the 7 types set, text anchors: wordllama l2_supercat recognises 64.8% of 897 test patches"]
    parts += [stats.verdict_sentence(s, r, unit="points", digits=1, scale=100, crossed="photos")
              for s, r in zip(subjects, rows)]
    folder = tmp_path / "04_degradation_recognition"
    folder.mkdir()
    (folder / "verdict.json").write_text(json.dumps({"verdict": stats.join_verdicts(parts)}))
    _manifest(folder)
    table = findings.headlines(tmp_path).set_index("claim")
    assert list(table.index) == ["04.text_vs_frequency.composites", "04.text_vs_implicit.all_classes"]
    first, second = table.iloc[0], table.iloc[1]
    assert (first["estimate"], first["lo"], first["hi"]) == (-18.7, -22.6, -14.6)
    assert findings.render(tmp_path, "04").count("< 0.001") == 1  # "Holm p < 0.001" stays below 0.001
    assert (first["seeds_agree"], first["n_seed_pairs"], first["n_seeds"]) == (5, 5, 5)
    assert second["p_holm"] == 0.4 and second["verdict"] == rows[1]["verdict"]
    assert second["test"] == "paired t over seeds" and second["unit"] == "points"


def test_recogniser_table_is_read_before_the_sentence(tmp_path):
    """Runs since the table exists: the claims come from recogniser_comparisons.csv at full precision,
    not from the rounded sentence (which here says something else, so reading it would show)."""
    from analysis import recognition

    folder = tmp_path / "04_degradation_recognition"
    folder.mkdir()
    _manifest(folder)
    (folder / "verdict.json").write_text(json.dumps({"verdict": "Nothing parseable."}))
    pd.DataFrame([{"recogniser": "text anchors: onehot", "baseline": recognition.FREQUENCY, "scope": "composites",
                   "unit": "points", "estimate": 12.345, "lo": 8.21, "hi": 16.4, "n_seeds": 5, "seeds_agree": 5,
                   "n_seed_pairs": 5, "test": "paired t over seeds", "p_holm": 0.004, "verdict": "different"}]
                 ).to_csv(folder / findings.COMPARISONS_04, index=False)
    table = findings.headlines(tmp_path).set_index("claim")
    assert list(table.index) == ["04.text_vs_frequency.composites"]
    row = table.iloc[0]
    assert (row["estimate"], row["lo"], row["hi"], row["unit"]) == (12.345, 8.21, 16.4, "points")
    assert row["what"] == "text anchors: onehot − frequency cues, accuracy on composites"
    assert row["source"] == findings.COMPARISONS_04


def test_training_budget_slopes_are_read_when_notebook_05_has_run(tmp_path):
    rng = np.random.default_rng(1)
    rows = [{"mechanism": m, "budget": b, "seed": s, "task": t, "image": i,
             "psnr": 20 + np.log2(b) * (0.3 if m == "hard_select" else 0.1) + rng.normal(0, 0.1)}
            for m in ("hard_select", "none") for b in (50, 100, 200) for s in range(3)
            for t in ("denoise_25", "derain") for i in "abc"]
    folder = tmp_path / "05_training_budget"
    folder.mkdir()
    budget.gap_slopes(pd.DataFrame(rows), n_boot=50).to_csv(folder / "gap_slopes.csv", index=False)
    _manifest(folder)
    assert findings.render(tmp_path, "05").count("No results") == 0
    table = findings.headlines(tmp_path)
    assert list(table["claim"]) == [f"05.gap_slope.hard_select_vs_none.{t}" for t in ("denoise_25", "derain",
                                                                                      "all_tasks")]
    assert (table["unit"] == "dB per doubling").all() and table["published"].isna().all()
    assert (table["estimate"] > 0).all()  # the gap widens by 0.2 dB per doubling
    shutil.rmtree(folder)
    assert findings.render(tmp_path, "05").startswith("_No results for study 05")


def test_errors_name_the_missing_file_and_the_allowed_values(tmp_path):
    with pytest.raises(ValueError, match=r"unknown study '06'.*'05'"):
        findings.study_dir(tmp_path, "06")
    with pytest.raises(FileNotFoundError, match="holds no study folder"):
        findings.headlines(tmp_path)
    folder = tmp_path / "03_fusion_comparison"
    folder.mkdir()
    _manifest(folder)
    with pytest.raises(FileNotFoundError, match="paired_tests.csv is missing"):
        findings.headlines(tmp_path)


def test_cli_prints_writes_and_checks(synthetic, capsys):
    profile_dir, readme, snapshot = synthetic
    root = str(profile_dir.parent)
    common = ["suite", "findings", "--profile", "cpu", "--results-root", root, "--readme", str(readme)]
    assert main(common + ["--check"]) == 0
    assert main(common) == 0
    printed = capsys.readouterr().out
    assert findings.markers("03")[0] in printed and findings.render(profile_dir, "03").strip() in printed
    readme.write_text(readme.read_text().replace("Holm p", "Holm q"))
    assert main(common + ["--check"]) == 1
    assert "03" in capsys.readouterr().err
    assert main(common + ["--write"]) == 0 and main(common + ["--check"]) == 0
    assert main(common + ["--snapshot", str(snapshot)]) == 2
    assert "record of the first run" in capsys.readouterr().err
    snapshot.unlink()
    assert main(common) == 0
    out, err = capsys.readouterr()
    assert "no first-run snapshot" in err and findings.markers("changes")[0] not in out
    assert main(common + ["--check"]) == 2 and "--snapshot" in capsys.readouterr().err
