"""Airflow DAG for the nightly run and for backfills (an example: copy it to your DAGs folder and adapt paths).

``{{ ds }}`` is the start of the run's data interval: for a daily schedule, the day before the run, which is
the as-of date of the nightly run. ``max_active_runs=1`` and ``depends_on_past=True`` keep the days in order:
every run ingests the landing files no earlier run took, and the profiles of a day build on those of the days
before it. A backfill of a date range is the same DAG over past intervals, one day after the other::

    airflow dags backfill audience_daily --start-date 2026-11-01 --end-date 2026-11-26

(each day a separate, idempotent ``audience run``; re-running a day changes nothing).
"""
from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

AUDIENCE = "/opt/audience-pipeline"
RUN = (
    "cd {root} && .venv/bin/audience run --landing /data/landing --warehouse /data/warehouse --as-of {{{{ ds }}}}"
).format(root=AUDIENCE)
# On a cluster, submit instead (same arguments; see README, "Running on a cluster"):
SUBMIT = (
    "cd {root} && spark-submit --master yarn --deploy-mode client "
    "--jars $(ls .cache/jars/*.jar | paste -sd,) "
    "pipelines/jobs/submit.py run --landing /shared/audience/landing --warehouse /shared/audience/warehouse "
    "--as-of {{{{ ds }}}} --conf conf/deploy/cluster.yml"
).format(root=AUDIENCE)

with DAG(
    dag_id="audience_daily",
    schedule="30 4 * * *",
    start_date=datetime(2026, 11, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"depends_on_past": True, "retries": 1, "retry_delay": timedelta(minutes=15)},
    tags=["audience", "privacy"],
) as dag:
    BashOperator(task_id="audience_run", bash_command=RUN, env={"AUDIENCE_KEYS": "/etc/audience/keys.json"},
                 append_env=True, execution_timeout=timedelta(hours=4))
