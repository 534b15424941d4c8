"""``python -m workers <pool>``: run one worker pool (what each container of a deployment runs)."""

from __future__ import annotations

import sys

from stratlab.cli.main import main

if __name__ == "__main__":
    sys.argv = ["stratlab", "worker", *sys.argv[1:]]
    main()
