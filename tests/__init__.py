"""stickyrec's test suite (a package, so pytest puts the repository root on ``sys.path``)."""
