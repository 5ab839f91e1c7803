"""What every stage shares and nothing else: atomic file writes (`fileio`), the special tokens (`specials`),
the device rule and process groups (`distributed`), Arrow buffers (`arrow`), argument checks (`checks`) and
the command line's shared argparse helpers (`cli_args`). Imports nothing else of textpipe."""
