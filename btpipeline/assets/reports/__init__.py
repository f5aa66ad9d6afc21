"""The reports domain: ``report/<strategy>`` assets and ``reports_job`` (the rendering itself is
plain Python in btpipeline.reports)."""
