"""`python -m textpipe train|evaluate|predict ...`: the `textpipe` console script."""
from textpipe.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
