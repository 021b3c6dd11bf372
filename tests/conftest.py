"""Suite-wide hooks.

``SNN_REQUIRE_PEERS=1`` (set by ``.ci/run``): a test that skips because an import failed (``pytest.importorskip``,
at module level or inside a test) or a test marked ``peers`` that skips is reported as a *failure*, so a broken
install of a peer library (SpikingJelly, snnTorch, Norse, dcls, NeuroBench) or of a required dependency can never
give a green CI. Under it every other skip fails too (a missing compiler, a non-git checkout, ...), except a skip
whose reason says it needs a CUDA device: only GPU tests may skip in CI.
"""
from __future__ import annotations

import os

import pytest


def _required() -> bool:
    return os.environ.get("SNN_REQUIRE_PEERS", "") not in ("", "0")


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _import_skip(reason: str) -> bool:
    return "could not import" in reason


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if _required() and report.skipped and _import_skip(_skip_reason(report)):
        report.outcome = "failed"
        report.longrepr = f"SNN_REQUIRE_PEERS=1: module skipped because an import failed: {_skip_reason(report)}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not (_required() and report.skipped):
        return
    reason = _skip_reason(report)
    # Only tests that need a CUDA device may skip in CI; any other skip (a missing import, peer, compiler) hides a
    # comparison that must run there.
    if _import_skip(reason) or item.get_closest_marker("peers") is not None or "CUDA device" not in reason:
        report.outcome = "failed"
        report.longrepr = f"SNN_REQUIRE_PEERS=1: a peers test or an import must not skip: {reason}"
