"""Segments: declarative audience definitions (``segments/*.yaml``), validated, compiled and published (S1-S3).

The flow, one module per concern:

* :mod:`~pipelines.segments.model`: parse a definition file into frozen dataclasses, keeping line numbers;
* :mod:`~pipelines.segments.catalogue`: the published attribute catalogue analysts may use, and the
  interpretation of one condition against it;
* :mod:`~pipelines.segments.lint`: schema and policy checks (``file:line: problem``);
* :mod:`~pipelines.segments.compiler`: a rule tree to one Spark ``Column`` (built-in functions only);
* :mod:`~pipelines.segments.stats`: the pipeline stage writing ``gold/segment_membership`` and
  ``gold/segment_stats`` (thresholded sizes) and the transparency labels;
* :mod:`~pipelines.segments.label`: the transparency label (IAB Data Transparency Standard spirit);
* :mod:`~pipelines.segments.preview`: sizes per segment and their change, and the pull-request summary;
* :mod:`~pipelines.segments.cli`: ``audience segments validate|preview``.
"""
