"""Pre-registrations the package reads and enforces: the packaged file is the committed one (its sha256 is
the pinned hash), the regime search's constants are read from it and equal the values the search ran with,
the committed search outputs follow from it, the search refuses held-out seeds, `reproduce` refuses pilot
seeds, and every report names the file's hash and whether it is the committed one."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from lrdecay.experiments import prereg
from lrdecay.experiments import regime as r
from support import run_cli

ROOT = Path(__file__).resolve().parents[1]
REGIME_DIR = ROOT / "docs" / "regime"


def _copy(tmp_path, edit=None) -> Path:
    """A copy of the packaged file, with ``edit(text) -> text`` applied."""
    text = Path(prereg.packaged_path("patterns")).read_text(encoding="utf-8")
    path = tmp_path / "patterns.toml"
    path.write_text(edit(text) if edit else text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------- the file
def test_packaged_file_is_the_committed_one():
    p = prereg.packaged("patterns")
    raw = Path(prereg.packaged_path("patterns")).read_bytes()
    assert p.sha256 == hashlib.sha256(raw).hexdigest() == prereg.COMMITTED_SHA256["patterns"]
    assert p.committed
    assert p.sha256 in p.describe() and "the committed file" in p.describe()
    assert p.data == "patterns" and prereg.governing(None) == p and prereg.governing("digits") is None


def test_regime_constants_are_read_from_the_file_and_equal_the_registered_values():
    # the values the search was committed and run with (docs/regime/PREREGISTRATION.md), written out here
    assert r.GRID == {
        "width": [128, 256, 512],
        "n_train": [20_000, 50_000],
        "label_noise": [0.1, 0.2, 0.4],
        "preset": ["ps10", "ps10-clean"],
        "stages": ["10-10-10", "10-5-5"],
        "weight_decay": [5e-4, 2e-3],
    }
    assert r.STAGES == {"10-10-10": {"milestones": [10, 20], "epochs": 30},
                        "10-5-5": {"milestones": [10, 15], "epochs": 20}}
    assert r.FIXED == {"model": "mlp", "depth": 3, "batch_size": 128, "lr": 0.1, "lr_small": 0.01,
                       "momentum": 0.9, "gamma": 0.1, "n_test": 5_000, "probe_groups": True, "eval_every": 5}
    assert all(type(r.FIXED[k]) is int for k in ("depth", "batch_size", "n_test", "eval_every"))
    assert r.PILOT_SEEDS == (1000,) and r.CONFIRM_SEEDS == (1001, 1002)
    assert r.N_CONFIRM == 8 and r.PREMISE_MARGIN == 0.02 and r.COST_LIMIT_S == 100.0 and r.TIE_TOLERANCE == 0.001
    assert r.EPOCH_S_PER_32K == {128: 0.28, 256: 0.50, 512: 1.42}
    assert r.PREREGISTRATION.held_out == {"quick": (10, 11, 12), "full": (10, 11, 12, 13, 14)}
    # the file the module read is the packaged one
    assert r.PREREGISTRATION.sha256 == prereg.COMMITTED_SHA256["patterns"]


def test_criterion_text_is_the_one_the_search_recorded():
    recorded = json.loads((REGIME_DIR / "selection.json").read_text(encoding="utf-8"))["criterion"]
    assert r.CRITERION == recorded
    text = (REGIME_DIR / "PREREGISTRATION.md").read_text(encoding="utf-8")
    assert r.CRITERION.strip() in text  # the markdown shows the same words


def test_a_changed_file_is_not_the_committed_one(tmp_path):
    path = _copy(tmp_path, lambda t: t.replace("premise_margin = 0.02", "premise_margin = 0.03"))
    p = prereg.load(path)
    assert p.criterion["premise_margin"] == 0.03
    assert not p.committed and p.sha256 != prereg.COMMITTED_SHA256["patterns"]
    assert "NOT the committed file" in p.describe() and prereg.COMMITTED_SHA256["patterns"] in p.describe()
    # the same bytes elsewhere are the committed file
    (tmp_path / "same").mkdir()
    assert prereg.load(_copy(tmp_path / "same")).committed
    # a name the package does not ship
    other = prereg.load(_copy(tmp_path, lambda t: t.replace('name = "patterns"', 'name = "mine"')))
    assert not other.committed and "ships no pre-registration named 'mine'" in other.describe()


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("pilot = [1000]", "pilot = [1000, 10]"), "both pilot and held-out"),
    (lambda t: t.replace("confirm = [1001, 1002]", "confirm = [1000, 1002]"), "both in seeds.pilot and seeds.confirm"),
    (lambda t: t.replace("format = 1", "format = 2"), "format must be 1"),
    (lambda t: t.replace("[grid]", "typo = 1\n[grid]"), "unknown key(s) ['typo']"),
    (lambda t: t.replace('stages = ["10-10-10", "10-5-5"]', 'stages = ["10-10-10", "9-9"]'), "does not define"),
    (lambda t: t.replace("width = [128, 256, 512]", "width = [128, 128]"), "grid.width repeats"),
    (lambda t: t.replace("pilot = [1000]", "pilot = [-1]"), "seeds.pilot must hold ints >= 0"),
    (lambda t: t.replace("held_out = {", "kept = {"), "unknown key(s) seeds.['kept']"),
    (lambda t: t.replace("[grid]", "[grid"), "not a valid TOML file"),
])
def test_a_broken_file_is_refused_naming_the_key(tmp_path, edit, message):
    with pytest.raises(prereg.PreregistrationError) as e:
        prereg.load(_copy(tmp_path, edit))
    assert message in str(e.value)


def test_missing_file_and_unknown_name():
    with pytest.raises(FileNotFoundError):
        prereg.load("/nonexistent/prereg.toml")
    with pytest.raises(ValueError, match="pre-registration must be one of"):
        prereg.packaged("nope")


# ---------------------------------------------------------------------------------------- seed policy
def test_search_refuses_held_out_seeds():
    p = prereg.packaged("patterns")
    p.check_search_seeds([1000, 1001, 1002, 7])  # pilot seeds (and seeds outside both sets) pass
    for seeds in ([10], [1000, 14]):
        with pytest.raises(prereg.SeedPolicyError, match="held-out seeds"):
            p.check_search_seeds(seeds)
    pt = r.grid_points()[0]
    assert len(r.search_spec([pt], [1000]).runs()) == 3
    with pytest.raises(prereg.SeedPolicyError, match=r"seeds \[12\] are held-out"):
        r.search_spec([pt], [1000, 12])


def test_reports_refuse_pilot_seeds():
    p = prereg.packaged("patterns")
    p.check_report_seeds([10, 11, 12, 0, 5])
    with pytest.raises(prereg.SeedPolicyError, match=r"seeds \[1001\] are pilot seeds"):
        p.check_report_seeds([10, 1001])


@pytest.mark.parametrize("argv", [
    ["reproduce", "--preset", "tiny", "--seeds", "0,1000"],
    ["reproduce", "--preset", "quick", "--only", "stages", "--seeds", "1002"],
    ["run", "gd", "--preset", "tiny", "--seeds", "1001"],
])
@pytest.mark.slow
def test_reproduce_on_pilot_seeds_exits_2_and_writes_nothing(tmp_path, capsys, argv):
    out = tmp_path / "rep"
    code, stdout, err = run_cli([*argv, "--out", str(out)], capsys)
    assert code == 2
    assert "are pilot seeds of the pre-registration 'patterns'" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


# ---------------------------------------------------------------------------------------- reports
def test_report_names_the_preregistration(tmp_path):
    from lrdecay.report import write_report

    res = write_report({}, tmp_path / "a", {"preset": "tiny"})
    text = Path(res["markdown"]).read_text(encoding="utf-8")
    assert f"sha256 {prereg.COMMITTED_SHA256['patterns']}: the committed file" in text
    meta = json.loads(Path(res["json"]).read_text(encoding="utf-8"))["meta"]
    assert meta["preregistration"]["committed"] is True
    assert meta["preregistration"]["sha256"] == prereg.COMMITTED_SHA256["patterns"]
    res = write_report({}, tmp_path / "b", {"preset": "tiny", "data": "digits"})
    assert "pre-registration: none governs digits" in Path(res["markdown"]).read_text(encoding="utf-8")


@pytest.mark.slow
def test_reproduce_prints_the_hash(tmp_path, capsys, one_torch_thread):
    out = tmp_path / "rep"
    code, stdout, err = run_cli(["reproduce", "--preset", "tiny", "--only", "beliefs", "--seeds", "1",
                              "--workers", "1", "--out", str(out)], capsys)
    assert code == 0, err
    line = f"pre-registration 'patterns' (patterns.toml) sha256 {prereg.COMMITTED_SHA256['patterns']}: the committed file"
    assert line in stdout
    assert line in (out / "report.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_regime_reports_the_hash_and_reproduces_the_committed_selection(tmp_path, capsys):
    # every run of the committed search is in runs.jsonl: rerunning it trains nothing
    out = tmp_path / "regime"
    out.mkdir()
    shutil.copy(REGIME_DIR / "runs.jsonl", out / "runs.jsonl")
    code, stdout, err = run_cli(["regime", "--out", str(out), "--workers", "1", "--resume"], capsys)
    assert code == 0, err
    assert f"sha256 {prereg.COMMITTED_SHA256['patterns']}: the committed file" in stdout
    assert "quick: w512-n50000-noise0.4-ps10-clean-10-10-10-wd0.002" in stdout
    assert json.loads((out / "selection.json").read_text(encoding="utf-8")) == json.loads(
        (REGIME_DIR / "selection.json").read_text(encoding="utf-8"))
    assert prereg.COMMITTED_SHA256["patterns"] in (out / "REGIME.md").read_text(encoding="utf-8")
