"""Every import path users have (the README, torchtext's layout, earlier releases) keeps working after the
package moved into a folder per stage, and each command runs as `python -m textpipe.<command>`."""
import importlib
import os
import subprocess
import sys

import pytest

PATHS = {  # module -> names it must still provide
    "textpipe": ["get_tokenizer", "build_vocab_from_iterator", "Vocab", "load_ag_news", "EncodedCorpus",
                 "make_dataloader", "TextClassifier", "ModelConfig", "BucketBatchSampler", "pad_collate",
                 "offsets_collate", "TextCollate", "load_model", "save_checkpoint", "GloVe", "build_model"],
    "textpipe.tokenizer": ["basic_english", "get_tokenizer", "register_tokenizer"],
    "textpipe.vocab": ["Vocab", "vocab", "build_vocab_from_iterator", "Vectors", "GloVe", "FastText",
                       "pretrained_aliases", "TokenNotFoundError"],
    "textpipe.data": ["get_tokenizer", "to_map_style_dataset"],
    "textpipe.data.utils": ["get_tokenizer", "ngrams_iterator"],
    "textpipe.data.functional": ["to_map_style_dataset", "simple_space_split", "custom_replace"],
    "textpipe.data.table": ["read_table", "iter_table"],
    "textpipe.data.labels": ["LabelVocab"],
    "textpipe.transforms": ["VocabTransform", "ToTensor", "Truncate", "Sequential"],
    "textpipe.functional": ["to_tensor", "truncate", "add_token"],
    "textpipe.datasets": ["AG_NEWS"],
    "textpipe.vectors": ["Vectors", "init_embedding_from_vectors", "init_embedding_from_file"],
    "textpipe.corpus": ["EncodedCorpus", "CorpusWriter"],
    "textpipe.batches": ["pad_collate", "make_dataloader", "BucketBatchSampler"],
    "textpipe.models": ["MODELS", "build_model", "model_config"],
    "textpipe.checkpoint": ["load_checkpoint", "load_model", "save_checkpoint"],
    "textpipe.train": ["fit", "TrainConfig", "prepare_data", "main"],
    "textpipe.tune": ["search", "SearchConfig", "main"],
    "textpipe.evaluate": ["evaluate", "main"],
    "textpipe.predict": ["predict", "main"],
    "textpipe.text": ["Vocab", "basic_english", "register_tokenizer", "build_vocab_from_texts"],
}


@pytest.mark.parametrize("module", list(PATHS))
def test_each_public_path_imports_with_its_names(module):
    m = importlib.import_module(module)
    missing = [n for n in PATHS[module] if not hasattr(m, n)]
    assert missing == [], f"{module} lacks {missing}"


def test_importing_textpipe_imports_no_command_and_no_torch():
    code = ("import sys, textpipe; textpipe.get_tokenizer; textpipe.Vocab; "
            "print(sorted(m for m in sys.modules if m in ('torch', 'ray') or m.startswith(('textpipe.train', "
            "'textpipe.tune', 'textpipe.evaluate', 'textpipe.predict', 'textpipe.core.distributed'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "tune"])
def test_each_command_runs_as_a_module_and_through_the_console_script(command):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    direct = subprocess.run([sys.executable, "-m", f"textpipe.{command}", "--help"], capture_output=True,
                            text=True, env=env)
    assert direct.returncode == 0 and "usage:" in direct.stdout, direct.stderr
    via = subprocess.run([sys.executable, "-m", "textpipe", command, "--help"], capture_output=True, text=True,
                         env=env)
    assert via.returncode == 0 and via.stdout.split("\n", 1)[1] == direct.stdout.split("\n", 1)[1]
