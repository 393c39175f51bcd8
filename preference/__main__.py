"""``python -m herd.preference`` runs DPO (the multi-process stage); see herd.preference.dpo."""

import sys

from herd.preference.dpo import main

if __name__ == "__main__":
    sys.exit(main())
