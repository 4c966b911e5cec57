"""The executor: applies a reviewed plan (or rolls a run back) through the `ArmGateway`."""

from __future__ import annotations

from orchestrator.executor.context import Progress
from orchestrator.executor.pacing import PacingPolicy
from orchestrator.executor.retrying import RetryPolicy
from orchestrator.executor.runs import run_plan, run_rollback
from orchestrator.executor.settings import CrashPoint, ExecutorSettings, Tolerance
from orchestrator.executor.work import WorkItem, plan_work

__all__ = [
    "CrashPoint",
    "ExecutorSettings",
    "PacingPolicy",
    "Progress",
    "RetryPolicy",
    "Tolerance",
    "WorkItem",
    "plan_work",
    "run_plan",
    "run_rollback",
]
