"""Evaluation: one round of debates held by the live model through an LCEL chain, and scoring them."""
