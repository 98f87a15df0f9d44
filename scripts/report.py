"""Same as the ``adaptrun-report`` command: ``python scripts/report.py SWEEP_DIR``."""

from adaptrun.report.cli import main

if __name__ == "__main__":
    main()
