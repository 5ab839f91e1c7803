"""`python -m textpipe.train ...`: the same as `textpipe train ...`."""
from textpipe.train.loop import main

if __name__ == "__main__":
    raise SystemExit(main())
