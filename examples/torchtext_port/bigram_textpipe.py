"""A bag-of-bigrams AG_NEWS classifier in the style of the older text-classification tutorial, as a script.

The older tutorial loaded AG_NEWS pre-processed with ``ngrams=2`` (a legacy API that is gone); here the same
pipeline is built from the current API: every text becomes its tokens plus its bigrams
(``ngrams_iterator``), numericalized once, and the old ``TextSentiment`` model (a sparse ``EmbeddingBag``
and a linear layer) is trained with SGD (lr 4.0, StepLR gamma 0.9) on 95% of the training split.
``SEED`` (default 0) and ``AG_NEWS_ROOT`` (default ``.data``) make runs comparable.

This file exists twice in this folder: the original, and its port, made by replacing the one library name
by the other and nothing else (``compare.sh`` makes the port, checks it is the file here, runs both).

Run:  SEED=0 AG_NEWS_ROOT=.data python <this file>
"""
import os
import time

import torch
import torch.nn as nn
import textpipe

textpipe.disable_textpipe_deprecation_warning()

from torch.utils.data import DataLoader  # noqa: E402
from torch.utils.data.dataset import random_split  # noqa: E402
from textpipe.data.functional import to_map_style_dataset  # noqa: E402
from textpipe.data.utils import get_tokenizer, ngrams_iterator  # noqa: E402
from textpipe.datasets import AG_NEWS  # noqa: E402
from textpipe.vocab import build_vocab_from_iterator  # noqa: E402

SEED = int(os.environ.get("SEED", "0"))
ROOT = os.environ.get("AG_NEWS_ROOT", ".data")
NGRAMS = 2
BATCH_SIZE = 16
EMBED_DIM = 32
N_EPOCHS = 5
torch.manual_seed(SEED)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

tokenizer = get_tokenizer("basic_english")
train_iter, test_iter = AG_NEWS(root=ROOT, split=("train", "test"))
vocab = build_vocab_from_iterator((ngrams_iterator(tokenizer(text), NGRAMS) for _, text in train_iter),
                                  specials=["<unk>"])
vocab.set_default_index(vocab["<unk>"])
print("vocabulary with bigrams:", len(vocab))


def numericalize(data_iter):
    """(label 1..4, text) -> (class 0..3, tensor of token and bigram ids), as the old dataset stored it."""
    return [(int(label) - 1, torch.tensor(vocab(list(ngrams_iterator(tokenizer(text), NGRAMS)))))
            for label, text in data_iter]


train_dataset = to_map_style_dataset(numericalize(train_iter))
test_dataset = to_map_style_dataset(numericalize(test_iter))


class TextSentiment(nn.Module):
    def __init__(self, vocab_size, embed_dim, num_class):
        super().__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, embed_dim, sparse=True)
        self.fc = nn.Linear(embed_dim, num_class)
        self.init_weights()

    def init_weights(self):
        initrange = 0.5
        self.embedding.weight.data.uniform_(-initrange, initrange)
        self.fc.weight.data.uniform_(-initrange, initrange)
        self.fc.bias.data.zero_()

    def forward(self, text, offsets):
        return self.fc(self.embedding(text, offsets))


model = TextSentiment(len(vocab), EMBED_DIM, 4).to(device)


def generate_batch(batch):
    label = torch.tensor([entry[0] for entry in batch])
    text = [entry[1] for entry in batch]
    offsets = torch.tensor([0] + [len(entry) for entry in text][:-1]).cumsum(dim=0)
    return torch.cat(text), offsets, label


def train_func(sub_train_):
    train_loss, train_acc = 0, 0
    data = DataLoader(sub_train_, batch_size=BATCH_SIZE, shuffle=True, collate_fn=generate_batch)
    for text, offsets, cls in data:
        optimizer.zero_grad()
        text, offsets, cls = text.to(device), offsets.to(device), cls.to(device)
        output = model(text, offsets)
        loss = criterion(output, cls)
        train_loss += loss.item()
        loss.backward()
        optimizer.step()
        train_acc += (output.argmax(1) == cls).sum().item()
    scheduler.step()
    return train_loss / len(sub_train_), train_acc / len(sub_train_)


def test(data_):
    loss, acc = 0, 0
    data = DataLoader(data_, batch_size=BATCH_SIZE, collate_fn=generate_batch)
    for text, offsets, cls in data:
        text, offsets, cls = text.to(device), offsets.to(device), cls.to(device)
        with torch.no_grad():
            output = model(text, offsets)
            loss += criterion(output, cls).item()
            acc += (output.argmax(1) == cls).sum().item()
    return loss / len(data_), acc / len(data_)


criterion = torch.nn.CrossEntropyLoss().to(device)
optimizer = torch.optim.SGD(model.parameters(), lr=4.0)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.9)
train_len = int(len(train_dataset) * 0.95)
sub_train_, sub_valid_ = random_split(train_dataset, [train_len, len(train_dataset) - train_len])

for epoch in range(N_EPOCHS):
    start_time = time.time()
    train_loss, train_acc = train_func(sub_train_)
    valid_loss, valid_acc = test(sub_valid_)
    print(f"Epoch: {epoch + 1} | time {time.time() - start_time:.1f} s")
    print(f"\tLoss: {train_loss:.4f}(train)\t|\taccuracy {train_acc:.4f}(train)")
    print(f"\tLoss: {valid_loss:.4f}(valid)\t|\taccuracy {valid_acc:.4f}(valid)")

test_loss, test_acc = test(test_dataset)
print(f"\tLoss: {test_loss:.4f}(test)\t|\ttest accuracy {test_acc:.4f}")

ag_news_label = {1: "World", 2: "Sports", 3: "Business", 4: "Sci/Tec"}


def predict(text, model, vocab, ngrams):
    with torch.no_grad():
        text = torch.tensor([vocab[token] for token in ngrams_iterator(tokenizer(text), ngrams)])
        output = model(text, torch.tensor([0]))
        return output.argmax(1).item() + 1


ex_text_str = ("MEMPHIS, Tenn. - Four days ago, Jon Rahm was enduring the season's worst weather conditions on "
               "Sunday at The Open on his way to a closing 75 at Royal Portrush. Thanks to his best putting "
               "performance on the PGA Tour, Rahm finished with an 8-under 62 for a three-stroke lead.")
model = model.to("cpu")
print("This is a %s news" % ag_news_label[predict(ex_text_str, model, vocab, NGRAMS)])
