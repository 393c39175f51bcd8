"""``python -m herd.sft --config X.yaml [key=value ...]`` (what ``accelerate launch -m herd.sft`` runs)."""

import sys

from herd.sft.cli import main

if __name__ == "__main__":
    sys.exit(main())
