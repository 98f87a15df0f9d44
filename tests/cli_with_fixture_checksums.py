"""``adaptrun`` exactly as installed, with torchvision's MD5 tables pointed at test fixtures.

Usage: FIXTURE_MD5='{"data_batch_1": "..."}' python cli_with_fixture_checksums.py ARGS...
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from dataset_fixtures import point_checksums_at

point_checksums_at(json.loads(os.environ["FIXTURE_MD5"]))

from adaptrun.cli.main import main  # noqa: E402

main()
