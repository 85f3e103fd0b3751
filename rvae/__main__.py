"""``python -m rvae`` is the ``rvae`` command."""
import sys

from rvae.cli import main

sys.exit(main())
