"""Records: the run log (the source of truth), the W&B tracker fed from it, and reading runs back."""
