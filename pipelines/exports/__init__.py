"""Deliveries that leave the company: only pseudonymous, coarse, consent-gated data.

* :mod:`~pipelines.exports.adsdata`: the joint-controller delivery to Ads & Data (A1-A4, C3):
  ``gold/adsdata_export``, ``gold/adsdata_revocations``, files under ``exports/<recipient>/as_of=<date>/``.
"""
