"""Supervised fine-tuning stage (TRL SFTTrainer underneath; herd supplies data path and masks)."""
