"""Calibration to a store's own transaction log: reading and summarising logs, the BG/NBD baseline, examples."""
