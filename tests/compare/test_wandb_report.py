"""The W&B Report's construction, inspected without network: it is built, never saved."""

from __future__ import annotations

from pathlib import Path

import pytest
import wandb
import wandb_workspaces.reports.v2 as wr
from short_runs import two_runs

from harness import load_run
from harness.compare.wandb_report import build, require_online, save
from harness.errors import UserError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    return two_runs(tmp_path_factory)


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("building the report must not reach W&B")

    monkeypatch.setattr(wandb, "Api", refuse)


def test_the_report_plots_loss_and_rubrics_on_the_step_and_holds_the_table_and_a_run_comparer(runs, no_network):
    frames = [load_run(r) for r in runs]
    report = build(frames, entity="lab", project_name="harness")
    assert (report.entity, report.project) == ("lab", "harness")
    grids = [b for b in report.blocks if isinstance(b, wr.PanelGrid)]
    assert len(grids) == 4
    for grid in grids:
        (runset,) = grid.runsets
        assert (runset.entity, runset.project) == ("lab", "harness")
        assert all(f"'{r.name}'" in runset.filters for r in runs) and 'Metric("ID") in' in runset.filters
    plots = [p for p in grids[0].panels if isinstance(p, wr.LinePlot)]
    assert {p.x for p in plots} == {"train/global_step"}
    ys = [p.y for p in plots]
    assert ["train/loss"] in ys
    for name in ("relevance", "contamination", "fluency"):
        assert [f"rubric/{name}"] in ys
        assert [f"rubric/{name}/monthly-kaggle", f"rubric/{name}/shake-up"] in ys
    (table,) = grids[1].panels
    assert isinstance(table, wr.WeavePanelSummaryTable) and table.table_name == "conversations"
    (traces,) = grids[2].panels
    assert isinstance(traces, wr.WeavePanelSummaryTable) and traces.table_name == "traces"
    (comparer,) = grids[3].panels
    assert isinstance(comparer, wr.RunComparer)
    assert runs[0].name in report.title and runs[1].name in report.title


@pytest.mark.parametrize("mode", ["offline", "disabled"])
def test_saving_needs_wandb_online(runs, monkeypatch, no_network, mode) -> None:
    monkeypatch.setenv("WANDB_MODE", mode)
    with pytest.raises(UserError, match="W&B is offline"):
        require_online()
    with pytest.raises(UserError, match="W&B is offline"):
        save([load_run(runs[0])])
