"""The notebooks of ``notebooks/`` run headless on the generated end-to-end warehouse and draw their plots.

Each notebook is executed by nbclient in a fresh kernel of this virtual environment's Python (a kernelspec written
into a temporary ``JUPYTER_PATH``, so no globally installed kernel is picked up by accident). The kernel starts its
own small Spark (``spark.driver.memory`` 1g) and reads the warehouse named by ``AUDIENCE_WAREHOUSE``.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
KERNEL = "audience-pipeline-venv"
TIMEOUT_S = 600

# Plots each notebook draws when every table it reads is in the warehouse and holds rows.
PLOTS = {
    "analyst_segments_and_profiles.ipynb": 5,  # interests, segment sizes, overlaps, size history, evidence
    "privacy_office_quality_and_consent.ipynb": 7,  # checks, quarantine, consent, eligibility, geo, map, Ads & Data
}
# The tables each notebook reads; every one is optional for the notebook (absent: a line, no plot).
TABLES = {
    "analyst_segments_and_profiles.ipynb": {
        "gold/tv_profiles", "gold/web_profiles", "gold/segment_stats", "gold/segment_membership",
        "ops/segment_stats_history", "silver/interest_evidence",
    },
    "privacy_office_quality_and_consent.ipynb": {
        "ops/runs", "ops/dq_results", "ops/quarantine", "silver/consent_state", "silver/eligibility",
        "gold/geo_profiles", "gold/adsdata_export", "gold/adsdata_revocations",
    },
}
SKIPPED = re.compile(r"^(\w+/\w+): not in this warehouse, skipped$", re.MULTILINE)
CUSTOMER_ID = re.compile(r"\bC\d{8}\b")  # the generator's customer numbers (pipelines.generate.people)


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory, monkeypatch_module) -> None:
    """A kernelspec launching this interpreter, and inline matplotlib (figures become ``image/png`` outputs)."""
    spec_dir = tmp_path_factory.mktemp("jupyter") / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "audience pipeline (venv)",
        "language": "python",
    }))
    monkeypatch_module.setenv("JUPYTER_PATH", str(spec_dir.parents[1]))
    monkeypatch_module.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def execute(name: str, warehouse: Path, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    """Run the notebook ``name`` against ``warehouse``; a failing cell raises ``CellExecutionError``."""
    monkeypatch.setenv("AUDIENCE_WAREHOUSE", str(warehouse))
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=TIMEOUT_S, kernel_name=KERNEL,
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return nb


def outputs(nb: nbformat.NotebookNode) -> list[dict]:
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]


def images(nb: nbformat.NotebookNode) -> int:
    return sum(1 for out in outputs(nb) if "image/png" in out.get("data", {}))


def text_of(nb: nbformat.NotebookNode) -> str:
    """Every text the notebook showed: streams, results and tracebacks."""
    parts = []
    for out in outputs(nb):
        parts.append(out.get("text", ""))
        parts += [v for k, v in out.get("data", {}).items() if k.startswith("text/")]
        parts += out.get("traceback", [])
    return "\n".join(p if isinstance(p, str) else "".join(p) for p in parts)


@pytest.mark.parametrize("name", list(PLOTS))
def test_notebook_is_saved_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, name
    assert [c for c in code if c.get("outputs") or c.get("execution_count")] == []


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PLOTS))
def test_notebook_runs_and_draws_its_plots(name, pipeline_run, kernel_env, monkeypatch):
    nb = execute(name, pipeline_run.wh.root, monkeypatch)

    shown = text_of(nb)
    assert [o for o in outputs(nb) if o.get("output_type") == "error"] == []
    assert SKIPPED.findall(shown) == []  # the end-to-end run writes every table the notebooks read
    assert images(nb) == PLOTS[name]
    assert CUSTOMER_ID.findall(shown) == []  # aggregates only: no customer number in any output
    assert str(pipeline_run.wh.root) in shown  # it read the warehouse it was given, not the default


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PLOTS))
def test_notebook_skips_absent_tables(name, tmp_path, kernel_env, monkeypatch):
    """On an empty warehouse every section says its table is missing and skips its plot; nothing fails."""
    nb = execute(name, tmp_path / "empty-warehouse", monkeypatch)

    shown = text_of(nb)
    assert [o for o in outputs(nb) if o.get("output_type") == "error"] == []
    assert images(nb) == 0
    assert sorted(SKIPPED.findall(shown)) == sorted(TABLES[name])
