"""Entry script for ``spark-submit``: the same command line as ``audience`` (contract section 1).

``spark-submit`` runs a Python file, not a console script, so a cluster job is submitted as::

    spark-submit --master spark://HOST:7077 --jars .cache/jars/delta-spark_4.1_2.13-4.1.0.jar,... \\
        pipelines/jobs/submit.py run --landing /data/landing --warehouse /data/warehouse --as-of 2026-11-26

Under ``spark-submit`` the master and the classpath are those of the submission (see
:func:`pipelines.spark.launched_by_spark_submit`); everything else (``conf/``, ``AUDIENCE_KEYS``) is as for
``audience``. The file lives in this folder, not next to ``cli.py``, because Python puts a script's folder first
on ``sys.path``: in ``pipelines/`` the package's own modules (``io.py``) would shadow the standard library.
"""
from pipelines.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
