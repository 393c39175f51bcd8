"""Rejection sampling: K samples per prompt, scoring, best-of-K SFT data and DPO pairs."""
