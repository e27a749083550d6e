"""Experiments: cohort simulation, metrics, benchmarks and the ``stickyrec`` command line."""
