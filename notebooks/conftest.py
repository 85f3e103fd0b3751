"""nbval's kernels run the quick profile as `rvae run` does: on one thread (see
rvae.book.runner.QUICK_ENVIRONMENT), so that their outputs match the pinned ones on any machine."""
import os

from rvae.book.runner import QUICK_ENVIRONMENT

os.environ.update(QUICK_ENVIRONMENT)
