"""Anonymous reports built from customer data: thresholded counts that never single anyone out.

* :mod:`pipelines.reports.viewing`: channel and programme popularity per day and region (C6: may include viewers
  who objected to TV personalisation, as the policy allows for anonymous reporting).
"""
