"""Data: the corpus an experiment trains on and the HojiChar cleaning rules applied to it."""
