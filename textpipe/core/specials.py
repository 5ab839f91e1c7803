"""The special tokens of textpipe's own pipeline, defined once: `<pad>` = 0, `<unk>` = 1 (the default index).

    >>> SPECIALS[PAD_IDX], SPECIALS[UNK_IDX]
    ('<pad>', '<unk>')
"""
PAD, UNK = "<pad>", "<unk>"
SPECIALS = (PAD, UNK)
PAD_IDX, UNK_IDX = 0, 1
