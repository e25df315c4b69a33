"""``python -m liverseg_studio`` starts the studio (the CLI is ``liverseg``)."""

import sys

from liverseg_studio.qt.app import main

if __name__ == "__main__":
    sys.exit(main())
