"""A W&B Report over runs (wandb-workspaces): the same curves, conversation table and config comparison as online."""

from __future__ import annotations

import os

import wandb
import wandb_workspaces.reports.v2 as wr
from wandb_workspaces import expr

from harness.errors import UserError
from harness.records.runs import RunFrames
from harness.records.tracking import STEP_KEY, TABLE_KEY, TRACES_KEY, wandb_mode


def project() -> str:
    """The W&B project the runs were logged to: the tracker's rule (`WANDB_PROJECT`, default harness)."""
    return os.environ.get("WANDB_PROJECT", "harness")


def require_online() -> None:
    """Stop with one line unless W&B is online: a Report lives on the server and can only read synced runs."""
    mode = wandb_mode()
    if mode != "online":
        raise UserError(
            f"W&B is offline (mode {mode!r}), so no W&B Report can be created; log in (`wandb login` or "
            "WANDB_API_KEY), upload the runs with `wandb sync runs/<run>/wandb/offline-run-*`, then retry"
        )


def build(runs: list[RunFrames], entity: str, project_name: str | None = None) -> wr.Report:
    """The Report object, not saved: a run set of exactly these runs, line plots of `train/loss` and `rubric/*` on
    `train/global_step`, the cumulative `conversations` table, and a run comparer of their configs."""
    project_name = project_name or project()
    ids = [r.id for r in runs]
    runset = wr.Runset(entity=entity, project=project_name, name="compared runs", filters=[expr.Metric("ID").isin(ids)])
    rubrics = list(dict.fromkeys(name for r in runs for name in r.rubrics))
    scenarios = list(dict.fromkeys(s for r in runs for s in r.conversations["scenario"]))
    curves = [wr.LinePlot(title="train/loss", x=STEP_KEY, y=["train/loss"], layout=wr.Layout(w=8, h=6))]
    curves += [
        wr.LinePlot(
            title=f"rubric/{name}", x=STEP_KEY, y=[f"rubric/{name}"], range_y=(0, 1), layout=wr.Layout(w=8, h=6)
        )
        for name in rubrics
    ]
    per_scenario = [
        wr.LinePlot(
            title=f"rubric/{name} per scenario",
            x=STEP_KEY,
            y=[f"rubric/{name}/{s}" for s in scenarios],
            range_y=(0, 1),
            layout=wr.Layout(w=12, h=8),
        )
        for name in rubrics
    ]
    return wr.Report(
        entity=entity,
        project=project_name,
        title=f"Run comparison: {' vs '.join(ids)}"[:128],
        description="Created by `python -m harness compare --wandb` from the runs' logs.",
        blocks=[
            wr.H2("Loss and rubrics over train/global_step"),
            wr.PanelGrid(runsets=[runset], panels=curves + per_scenario),
            wr.H2("Conversations"),
            wr.P("Every scored conversation, all evaluation steps (an incremental table: each round adds its rows)."),
            wr.PanelGrid(
                runsets=[runset], panels=[wr.WeavePanelSummaryTable(table_name=TABLE_KEY, layout=wr.Layout(w=24, h=14))]
            ),
            wr.H2("Chain traces"),
            wr.P("One row per chain component call: inputs, outputs, latency, tokens in/out, errors."),
            wr.PanelGrid(runsets=[runset], panels=[wr.WeavePanelSummaryTable(table_name=TRACES_KEY)]),
            wr.H2("Configuration"),
            wr.PanelGrid(runsets=[runset], panels=[wr.RunComparer(diff_only="split", layout=wr.Layout(w=24, h=12))]),
        ],
    )


def save(runs: list[RunFrames]) -> str:
    """Build and save the Report (needs W&B online and the runs synced); returns its URL."""
    require_online()
    try:
        entity = os.environ.get("WANDB_ENTITY") or wandb.Api().default_entity
        report = build(runs, entity).save()
    except Exception as e:
        raise UserError(f"W&B Report not saved ({type(e).__name__}: {e}); are the runs synced to W&B?") from None
    return str(report.url)
