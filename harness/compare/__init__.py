"""Comparing runs: the self-contained HTML report and the W&B Report, both read from run logs."""
