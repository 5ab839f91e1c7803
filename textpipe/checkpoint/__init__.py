"""Checkpoints: one `torch.save` dict, written atomically, read safely and checked (`format` is the only place
that knows the keys; `_io` writes and packs, `_integrity` checksums and cross-checks).

    >>> from textpipe.checkpoint import load_model   # model, vocab, ckpt = load_model("runs/x/best.pt")
"""
from textpipe.checkpoint._integrity import CheckpointError
from textpipe.checkpoint.format import (FORMAT_VERSION, READABLE_VERSIONS, ResumeState, capture_rng_state,
                                        check_resume, checkpoint_dict, class_names, copy_checkpoint, data_info,
                                        load_checkpoint, load_model, model_config_of, rank_rng_state,
                                        restore_rng_state, save_checkpoint, strip_module_prefix, write_checkpoint)

__all__ = ["CheckpointError", "FORMAT_VERSION", "READABLE_VERSIONS", "ResumeState", "capture_rng_state",
           "check_resume", "checkpoint_dict", "class_names", "copy_checkpoint", "data_info", "load_checkpoint",
           "load_model", "model_config_of", "rank_rng_state", "restore_rng_state", "save_checkpoint",
           "strip_module_prefix", "write_checkpoint"]
