import sys

from r1lab.cli import main

if __name__ == "__main__":  # not when a spawned process imports it (pipeline/lanes.py)
    sys.exit(main())
