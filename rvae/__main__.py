"""``python -m rvae`` is the ``rvae`` command."""
import sys

from rvae.book.cli import main

sys.exit(main())
