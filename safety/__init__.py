"""Llama-Guard-style safety classifier library, guard training, dataset filtering, refusals."""
