"""Per-round evaluation: reward, win rate, verifier accuracy, safety VR/FRR, report."""
