"""The sweeps domain: ``sweep_job`` and its ops. Grid, spec and ranking are plain Python in
btpipeline.sweeps."""
