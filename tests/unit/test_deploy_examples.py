"""The deployment examples of conf/deploy stay in step with the code: every command they schedule parses with
the real command line, every file they name exists, and the cluster overlay loads."""
from __future__ import annotations

import ast
import json
import re
import shlex
from pathlib import Path

import pytest

from pipelines.cli import build_parser
from pipelines.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "conf" / "deploy"


def audience_args(command: str) -> list[str]:
    """The arguments after ``audience`` or ``pipelines/jobs/submit.py`` in a shell command line."""
    words = shlex.split(command.replace("\\%", "%"))
    for marker in ("audience", "pipelines/jobs/submit.py"):
        hits = [i for i, w in enumerate(words) if w.endswith(marker)]
        if hits:
            args = words[hits[-1] + 1:]
            return args[:args.index(">>")] if ">>" in args else args
    raise AssertionError(f"no audience command in {command!r}")


def parses(args: list[str]) -> None:
    ns = build_parser().parse_args(args)
    assert ns.command == "run" and ns.as_of is not None


def test_databricks_job_runs_the_submit_entry_with_a_valid_command_line():
    job = json.loads((DEPLOY / "databricks-job.json").read_text())
    assert job["max_concurrent_runs"] == 1
    (task,) = job["tasks"]
    assert (ROOT / task["spark_python_task"]["python_file"]).is_file()
    args = [a.replace("{{job.parameters.as_of}}", "2026-11-26") for a in task["spark_python_task"]["parameters"]]
    parses(args)
    conf = args[args.index("--conf") + 1]
    assert (ROOT / conf).is_file()
    assert "AUDIENCE_KEYS" in task.get("spark_env_vars", {}) or any(
        "AUDIENCE_KEYS" in c["new_cluster"].get("spark_env_vars", {}) for c in job["job_clusters"])
    assert not re.search(r'"(secret|key)"\s*:\s*"[A-Za-z0-9+/=]{20,}"', json.dumps(job)), "no key material"


def test_crontab_runs_yesterday_with_a_lock():
    (line,) = [ln for ln in (DEPLOY / "crontab").read_text().splitlines() if ln and not ln.startswith(("#", "CRON_TZ"))]
    assert len(line.split()[:5]) == 5 and "flock" in line
    args = audience_args(line)
    args[args.index("--as-of") + 1] = "2026-11-26"  # $(date -d yesterday +%F)
    parses(args)


def test_airflow_dag_commands_parse_and_keep_days_in_order():
    source = (DEPLOY / "airflow_audience_daily.py").read_text()
    tree = ast.parse(source)
    values = {t.id: node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
              for t in node.targets if isinstance(t, ast.Name)}
    namespace: dict = {}
    for name in ("AUDIENCE", "RUN", "SUBMIT"):
        namespace[name] = eval(compile(ast.Expression(values[name]), "dag", "eval"), namespace)  # literals only
    for name in ("RUN", "SUBMIT"):
        command = namespace[name].split("&&", 1)[1]
        assert "{{ ds }}" in command
        command = command.replace("{{ ds }}", "2026-11-26").replace("$(ls .cache/jars/*.jar | paste -sd,)", "x.jar")
        parses(audience_args(command))
    assert "max_active_runs=1" in source and '"depends_on_past": True' in source


@pytest.mark.parametrize("name", ["cluster.yml"])
def test_cluster_overlay_loads_over_the_base(name):
    settings = load_settings(DEPLOY / name)
    assert settings.spark.shuffle_partitions > load_settings().spark.shuffle_partitions
    assert settings.spark.delta_jars == "provided"
    assert settings.spark.conf["spark.databricks.delta.snapshotPartitions"] == "32"
