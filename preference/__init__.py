"""Preference learners of the Llama 3 recipe: Bradley-Terry reward model and DPO."""
