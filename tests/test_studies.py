"""`zoo study`: the study registry, the command, its output folder, tables that documents include,
and the measurements the studies are made of (MQAR, repeated tokens, loss by position, early
stopping, the 95% interval)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from zoo_core import StudySpec, artifacts, hookimpl
from zoo_core.catalog import list_studies
from zoo_core.compare import format_cell, interval95
from zoo_core.data import synthetic
from zoo_core.errors import ZooError
from zoo_core.studies import base
from zoo_core.studies.context import effective_context

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "studies.md"
BUILT_IN = [
    "context-usage",
    "data-size",
    "domhan-scan",
    "domhan-svo-sov",
    "induction",
    "long-range",
    "mixer-lm",
    "mixer-parity",
    "mqar",
    "positions",
    "scan-addprim",
    "scan-length",
]


# -- a study a plugin ships: no training, so the machinery is tested in milliseconds -----------
def tiny_study(ctx):
    """Records two tables whose numbers depend on the size it runs at."""
    n = ctx.pick(2, 3, 4)
    ctx.table("counts", ["what", "value"], [["runs", str(n)], ["mean", format_cell_of(n)]])
    ctx.table("size", ["size"], [[ctx.size]])
    ctx.results["n"] = n


def format_cell_of(n):
    values = [float(i) for i in range(n)]
    spread = {"mean": sum(values) / n, "std": 0.0, "ci95": interval95(values), "n": n}
    return format_cell({"m": spread}, "m", "ci95")


class TinyStudies:
    @hookimpl
    def register_studies(self, register):
        register(StudySpec("tiny", f"{__name__}:tiny_study", "counts to n", cpu_minutes=0.1))


@pytest.fixture
def tiny(register_plugin):
    return register_plugin(TinyStudies(), "tiny-studies")


def test_the_built_in_studies_are_registered_with_their_cpu_time():
    studies = {s.name: s for s in list_studies()}
    assert sorted(studies) == BUILT_IN
    for spec in studies.values():
        assert spec.plugin == "builtin-studies"
        assert 0 < spec.cpu_minutes <= 10, f"{spec.name}: a study runs in 10 minutes on a CPU"
        assert spec.cuda, f"{spec.name} says what --device cuda runs"


def test_a_plugin_registers_a_study_and_it_runs(tiny, tmp_path):
    assert tiny.studies["tiny"].plugin == "tiny-studies"
    record = base.run_study("tiny", out=tmp_path / "out")
    assert record["size"] == "cpu" and record["results"] == {"n": 3}
    written = json.loads((tmp_path / "out" / base.STUDY_FILE).read_text())
    assert written["tables"][0]["rows"] == [["runs", "3"], ["mean", "1.000 ± 2.484"]]
    tables = base.table_blocks((tmp_path / "out" / base.TABLES_FILE).read_text())
    assert list(tables) == ["tiny/counts", "tiny/size"]
    assert tables["tiny/size"] == "| size |\n|---|\n| cpu |\n"
    assert base.run_study("tiny", quick=True, out=tmp_path / "q")["size"] == "quick"


def test_a_bad_study_spec_is_reported_and_skipped(register_plugin, capsys):
    class Bad:
        @hookimpl
        def register_studies(self, register):
            register(StudySpec("bad", "m:f", "x", cpu_minutes=-1))

    catalog = register_plugin(Bad(), "bad-studies")
    assert "cpu_minutes must be a number >= 0" in capsys.readouterr().err
    assert "bad" not in catalog.studies


def test_an_unknown_study_is_one_line_with_the_closest_names(zoo):
    proc = zoo("study", "mqr", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "Error: unknown study 'mqr'. Did you mean: mqar? Run `zoo study --list` to see them all."
    ]


def test_study_list_shows_every_study_and_imports_no_torch():
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom zoo_core.cli import cli\n"
        "r = CliRunner().invoke(cli, ['study', '--list'])\n"
        "print(r.exit_code, 'torch' in sys.modules)\nprint(r.output)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines()[0] == "0 False"
    for name in BUILT_IN:
        assert re.search(rf"^{name}\s+\d", out, re.M), f"{name} and its minutes are listed"


def test_the_output_folder_is_never_overwritten_without_overwrite(tiny, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ZooError, match="not empty; choose a new --out, or .* --overwrite"):
        base.run_study("tiny", out=out)
    with pytest.raises(ZooError, match="replaces only an earlier output of `zoo study tiny`"):
        base.run_study("tiny", out=out, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"  # nothing lost

    done = tmp_path / "done"
    base.run_study("tiny", out=done)
    with pytest.raises(ZooError, match="not empty"):
        base.run_study("tiny", out=done, quick=True)
    assert base.run_study("tiny", out=done, quick=True, overwrite=True)["size"] == "quick"
    assert "| quick |" in (done / base.TABLES_FILE).read_text()


def test_resume_keeps_an_earlier_run_and_measures_again(tiny, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ZooError, match="holds none; run the study without --resume"):
        base.run_study("tiny", out=tmp_path / "empty", resume=True)
    first = base.run_study("tiny", out=out)
    (out / "kept.txt").write_text("a run's folder")
    again = base.run_study("tiny", out=out, resume=True)
    assert again["resumed"]["wall_seconds"] == first["wall_seconds"]
    assert (out / "kept.txt").is_file()
    with pytest.raises(ZooError, match="resume it with the same --quick"):
        base.run_study("tiny", out=out, resume=True, quick=True)


def test_a_device_that_is_not_here_is_one_line_and_writes_nothing(tiny, tmp_path):
    with pytest.raises(ZooError, match="unknown device 'tpu'"):
        base.run_study("tiny", device="tpu", out=tmp_path / "a")
    if not torch.cuda.is_available():
        with pytest.raises(ZooError, match="sees no CUDA GPU"):
            base.run_study("tiny", device="cuda", out=tmp_path / "b")
    assert list(tmp_path.iterdir()) == []


def test_a_document_takes_the_tables_of_a_study_and_keeps_the_rest(tiny, tmp_path):
    base.run_study("tiny", out=tmp_path / "out")
    doc = tmp_path / "doc.md"
    doc.write_text(
        "# Intro\n\n<!-- study:tiny/size -->\n| old |\n<!-- /study -->\n\nprose\n"
        "<!-- study:other/x -->\n| x |\n<!-- /study -->\n"
    )
    missing = base.update_document(doc, tmp_path / "out")
    assert missing == ["tiny/counts"]
    assert doc.read_text() == (
        "# Intro\n\n<!-- study:tiny/size -->\n| size |\n|---|\n| cpu |\n<!-- /study -->\n\n"
        "prose\n<!-- study:other/x -->\n| x |\n<!-- /study -->\n"
    )
    with pytest.raises(ZooError, match="holds no tables.md"):
        base.update_document(doc, tmp_path)


def test_the_command_runs_a_study_prints_its_tables_and_updates_a_document(tiny, tmp_path):
    from click.testing import CliRunner

    from zoo_core.cli import cli

    doc = tmp_path / "doc.md"
    doc.write_text("<!-- study:tiny/counts -->\n<!-- /study -->\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["study", "tiny", "--out", str(out), "--doc", str(doc)])
    assert result.exit_code == 0, result.output
    assert "tiny/counts" in result.output and "1.000 ± 2.484" in result.output
    assert "not in" in result.output and "tiny/size" in result.output  # not in the document
    assert "| runs | 3 |" in doc.read_text()
    again = CliRunner().invoke(cli, ["study", "tiny", "--out", str(out)])
    assert again.exit_code == 1 and "--overwrite" in again.output


# -- the documents cannot drift from what `zoo study` wrote --------------------------------------
def committed_outputs():
    return sorted(p.parent.name for p in (ROOT / "docs" / "studies").glob("*/tables.md"))


def test_every_study_table_in_the_doc_is_the_one_its_command_wrote():
    in_doc = base.table_blocks(DOC.read_text())
    written = {}
    for name in committed_outputs():
        written.update(base.table_blocks((ROOT / "docs/studies" / name / "tables.md").read_text()))
    assert set(in_doc) <= set(written), "a table in docs/studies.md that no study wrote"
    for key, table in in_doc.items():
        assert table == written[key], f"docs/studies.md's {key} is not what zoo study wrote"


def number_format(text: str) -> str:
    """``text`` with every number's whole part as 0 and its decimals as d: its format."""
    decimals = re.sub(r"\.(\d+)", lambda m: "." + "d" * len(m[1]), text)
    return re.sub(r"\d+", "0", decimals)


def cells(markdown: str) -> list[list[str]]:
    """A table's cells in :func:`number_format`: its format, whatever was measured."""
    return [
        [number_format(cell.strip()) for cell in line.strip("|").split("|")]
        for line in markdown.splitlines()
    ]


def same_format(quick: str, committed: str) -> bool:
    """The same rows and columns, and every cell of the same format, where a quick run that
    measured nothing ("-", or "- (0 of 2)": a loss that never halved in three steps) may stand
    for any value."""
    a, b = cells(quick), cells(committed)
    if (
        len(a) != len(b)
        or a[:2] != b[:2]
        or any(len(x) != len(y) for x, y in zip(a, b, strict=True))
    ):
        return False
    return all(
        x[0] == y[0] and all(p == q or p.startswith("-") for p, q in zip(x, y, strict=True))
        for x, y in zip(a[2:], b[2:], strict=True)
    )


def test_the_format_check_sees_a_changed_table():
    table = "| variant | acc @0 |\n|---|---|\n| lstm steps=3 | 0.500 ± 0.100 |\n"
    assert same_format(table, table.replace("steps=3", "steps=300").replace("0.500", "0.750"))
    assert same_format(table.replace("0.500 ± 0.100", "-"), table)
    assert same_format(table.replace("0.500 ± 0.100", "- (0 of 2)"), table)
    assert not same_format(table, table.replace("0.500 ± 0.100", "0.50 ± 0.10"))
    assert not same_format(table, table.replace("lstm", "gru"))
    assert not same_format(table, table + "| gru | 0.1 |\n")


@pytest.mark.slow
@pytest.mark.parametrize("name", committed_outputs() or ["(none committed)"])
def test_a_quick_study_writes_tables_of_the_committed_format(name, tmp_path):
    if name == "(none committed)":
        pytest.skip("no study output is committed under docs/studies yet")
    committed = base.table_blocks((ROOT / "docs/studies" / name / "tables.md").read_text())
    record = base.run_study(name, quick=True, out=tmp_path / name)
    quick = base.table_blocks((tmp_path / name / base.TABLES_FILE).read_text())
    assert list(quick) == list(committed)
    for key in committed:
        assert same_format(quick[key], committed[key]), f"{key} changed format"
    assert record["wall_seconds"] < 300


# -- what the studies measure --------------------------------------------------------------------
def test_the_95_interval_is_students_t():
    assert interval95([1.0]) == 0.0
    assert interval95([1.0, 2.0, 3.0]) == pytest.approx(4.303 / 3**0.5)
    assert interval95([0.0, 1.0]) == pytest.approx(12.706 * 0.5**0.5 / 2**0.5)
    cell = {"v": {"mean": 0.5, "std": 0.5**0.5, "n": 2}}  # an older results.json: no ci95
    assert format_cell(cell, "v", "ci95") == "0.500 ± 6.353"


def test_mqar_scores_the_value_of_every_query():
    g = torch.Generator().manual_seed(0)
    seq, mask = synthetic.mqar(64, 5, 20, g)
    assert seq.shape == mask.shape == (64, 4 * 5 + 1)
    assert (mask.sum(dim=1) == 5).all()
    first = synthetic.FIRST_SYMBOL
    for row, m in zip(seq.tolist(), mask.tolist(), strict=True):
        pairs = dict(zip(row[0:10:2], row[1:10:2], strict=True))
        assert len(pairs) == 5 and all(first <= k < first + 10 for k in pairs)  # distinct keys
        assert all(first + 10 <= v < first + 20 for v in pairs.values())
        assert row[10] == synthetic.SEP
        assert sorted(row[11::2]) == sorted(pairs)  # every key is queried once
        answers = [i for i, flag in enumerate(m) if flag]
        assert answers == list(range(12, 21, 2))
        assert all(row[i] == pairs[row[i - 1]] for i in answers)


def test_repeated_tokens_scores_every_foreseeable_repeat():
    seq, mask = synthetic.repeated_tokens(8, 6, 10, torch.Generator().manual_seed(1))
    assert torch.equal(seq[:, :6], seq[:, 6:])
    assert all(len(set(row)) == 6 for row in seq[:, :6].tolist())  # distinct: no ambiguity
    assert mask[:, 7:].all() and not mask[:, :7].any()


@pytest.mark.parametrize(
    "task, length, message",
    [
        ("mqar", 65, "between 1 and vocab_size // 2 \\(64\\)"),
        ("repeated-tokens", 129, "between 2 and vocab_size \\(128\\)"),
    ],
)
def test_a_length_the_vocabulary_cannot_fill_is_one_line(task, length, message):
    from zoo_core.tasks.base import task_class

    cls = task_class(task)
    with pytest.raises(ZooError, match=message):
        cls(cls.Options(length=length)).setup(None)


def test_effective_context_is_where_more_context_stops_helping_by_one_percent():
    assert effective_context([3.0, 2.0, 1.5, 1.49, 1.495]) == 3  # 1.49 is within 1% of 1.5
    assert effective_context([3.0, 2.0, 1.0]) == 3
    assert effective_context([1.0, 1.2, 1.1]) == 1  # no later position is lower
    assert effective_context([2.0]) == 1
    # one position's dip (the text, not the model) is smoothed away; a lasting fall is not
    flat = [3.0, 2.0] + [1.5] * 30
    assert effective_context(flat[:19] + [1.4] + flat[20:]) == 3
    assert effective_context(flat[:19] + [1.4] * 13) > 10
    with pytest.raises(ZooError):
        effective_context([])


def test_loss_by_position_is_the_mean_loss_at_each_position_of_windows_read_afresh(tiny_run):
    import torch.nn.functional as F

    from zoo_core.artifact import load_local
    from zoo_core.studies.context import per_position

    artifact = load_local(tiny_run)
    artifact.task.setup_eval(None)
    artifact.task.val_ids = artifact.task.val_ids[:3001]  # 1,497 windows are checked by hand
    found = per_position(artifact, batch_size=16, seq_len=8)
    losses = found["loss_by_position"]
    assert found["seq_len"] == len(losses) == 8
    ids = artifact.task.val_ids
    by_hand = torch.zeros(8, dtype=torch.float64)
    starts = range(0, len(ids) - 8, 8 // 8 + 1)  # a window every 2 tokens, each read afresh
    with torch.no_grad():
        for start in starts:
            window = ids[start : start + 9].long()  # a token map holds uint16
            logits = artifact.model(window[None, :-1])[0]  # (T, V)
            by_hand += F.cross_entropy(logits, window[1:], reduction="none").double()
    assert losses == pytest.approx((by_hand / len(starts)).tolist(), rel=1e-4)
    assert losses[0] > losses[-1]  # a trained model does better with context
    assert 1 <= found["effective_context"] <= 8


def test_eval_per_position_prints_the_curve_and_plots_it(tiny_run, tmp_path):
    from click.testing import CliRunner

    from zoo_core.cli import cli

    def zoo(*args):
        return CliRunner().invoke(cli, [str(a) for a in args])

    plot = tmp_path / "curve.png"
    proc = zoo("eval", tiny_run, "--per-position", "--seq-len", "16", "--plot", plot)
    assert proc.exit_code == 0, proc.output
    assert "loss at position 1:" in proc.output and "loss at position 16:" in proc.output
    assert re.search(r"effective context: \d+ tokens", proc.output)
    assert plot.read_bytes()[:4] == b"\x89PNG"
    data = json.loads(zoo("eval", tiny_run, "--per-position", "--json").output)
    assert len(data["loss_by_position"]) == 32
    bad = zoo("eval", tiny_run, "--plot", plot)
    assert bad.exit_code == 1 and "go with --per-position" in bad.output
    assert "Traceback" not in bad.output


def test_early_stopping_keeps_the_best_weights_and_stops(tmp_path):
    import zoo_core

    settings = {
        "hidden_size": 16,
        "embed_dim": 16,
        "seq_len": 16,
        "train_fraction": 0.002,  # 0.2% of the text: it overfits long before 400 steps
        "val_fraction": 0.01,
        "eval_batches": 4,
    }
    common = {"task": "lm", "steps": 400, "batch_size": 8, "progress": False}
    artifact, final = zoo_core.train(
        "lstm",
        out=tmp_path / "run",
        overrides={**settings, "eval_interval": 10, "early_stopping": 2, "lr": 0.05},
        **common,
    )
    records = artifacts.read_metrics(tmp_path / "run")
    (at,) = [i for i, r in enumerate(records) if r.get("early_stop")]
    stop = records[at]
    assert stop["step"] < 400
    evaluations = [r["val_loss"] for r in records[:at] if "val_loss" in r]
    assert stop["best_val_loss"] == min(evaluations)
    assert evaluations[-1] > stop["best_val_loss"]  # it stopped because the loss rose
    # the weights kept are the best ones, not the last: scored on the same windows, they give
    # the best interval evaluation's loss again
    again = artifact.task.evaluate(artifact.model, 8, limit=4)["val_loss"]
    assert again == pytest.approx(stop["best_val_loss"], rel=1e-5)
    assert final["step"] == stop["step"]


def test_early_stopping_below_zero_is_refused():
    import zoo_core

    with pytest.raises(ZooError, match="early_stopping must be 0"):
        zoo_core.train("lstm", overrides={"early_stopping": -1}, progress=False)
