import sys

from . import main

if __name__ == "__main__":  # command discovery imports this module too: run only as `python -m`
    sys.exit(main())
