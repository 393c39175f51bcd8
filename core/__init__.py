"""Shared building blocks of herd: chat format, models, tiny-model kit, configs, artifacts,
generation. Imports no stage."""
