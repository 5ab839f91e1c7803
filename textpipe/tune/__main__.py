"""`python -m textpipe.tune ...`: the same as `textpipe tune ...`."""
from textpipe.tune.command import main

if __name__ == "__main__":
    raise SystemExit(main())
