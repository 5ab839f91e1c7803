"""The classic text-classification tutorial (AG_NEWS, nn.EmbeddingBag, SGD), as a script.

Written out again from the public text of the text-classification tutorial of the library imported below
(its last release), with two additions so that runs can be compared: a seed (``SEED``, default 0) and the
data directory (``AG_NEWS_ROOT``, default ``.data``, holding ``datasets/AG_NEWS/train.csv`` and ``test.csv``).

This file exists twice in this folder: the original, and its port, made by replacing the one library name
by the other and nothing else (``compare.sh`` makes the port, checks it is the file here, runs both).

Run:  SEED=0 AG_NEWS_ROOT=.data python <this file>
"""
import os
import time

import torch
import textpipe

textpipe.disable_textpipe_deprecation_warning()

from torch import nn  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from torch.utils.data.dataset import random_split  # noqa: E402
from textpipe.data.functional import to_map_style_dataset  # noqa: E402
from textpipe.data.utils import get_tokenizer  # noqa: E402
from textpipe.datasets import AG_NEWS  # noqa: E402
from textpipe.vocab import build_vocab_from_iterator  # noqa: E402

SEED = int(os.environ.get("SEED", "0"))
ROOT = os.environ.get("AG_NEWS_ROOT", ".data")
torch.manual_seed(SEED)

# -- Access to the raw dataset iterators: AG_NEWS yields (label, text) with labels 1..4.
train_iter = iter(AG_NEWS(root=ROOT, split="train"))
print(next(train_iter))

# -- Prepare the data processing pipelines: a tokenizer and a vocabulary built from the training texts.
tokenizer = get_tokenizer("basic_english")
train_iter = AG_NEWS(root=ROOT, split="train")


def yield_tokens(data_iter):
    for _, text in data_iter:
        yield tokenizer(text)


vocab = build_vocab_from_iterator(yield_tokens(train_iter), specials=["<unk>"])
vocab.set_default_index(vocab["<unk>"])
print(vocab(["here", "is", "an", "example"]))

text_pipeline = lambda x: vocab(tokenizer(x))  # noqa: E731
label_pipeline = lambda x: int(x) - 1  # noqa: E731
print(text_pipeline("here is the an example"), label_pipeline("10"))

# -- Generate data batches and iterator: the texts of a batch are concatenated, offsets mark where each starts.
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def collate_batch(batch):
    label_list, text_list, offsets = [], [], [0]
    for _label, _text in batch:
        label_list.append(label_pipeline(_label))
        processed_text = torch.tensor(text_pipeline(_text), dtype=torch.int64)
        text_list.append(processed_text)
        offsets.append(processed_text.size(0))
    label_list = torch.tensor(label_list, dtype=torch.int64)
    offsets = torch.tensor(offsets[:-1]).cumsum(dim=0)
    text_list = torch.cat(text_list)
    return label_list.to(device), text_list.to(device), offsets.to(device)


train_iter = AG_NEWS(root=ROOT, split="train")
dataloader = DataLoader(train_iter, batch_size=8, shuffle=False, collate_fn=collate_batch)
label, text, offsets = next(iter(dataloader))
print("first batch:", label.tolist(), tuple(text.shape), offsets.tolist())


# -- Define the model: nn.EmbeddingBag (mean of the embeddings of a text) and a linear layer.
class TextClassificationModel(nn.Module):
    def __init__(self, vocab_size, embed_dim, num_class):
        super(TextClassificationModel, self).__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, embed_dim, sparse=False)
        self.fc = nn.Linear(embed_dim, num_class)
        self.init_weights()

    def init_weights(self):
        initrange = 0.5
        self.embedding.weight.data.uniform_(-initrange, initrange)
        self.fc.weight.data.uniform_(-initrange, initrange)
        self.fc.bias.data.zero_()

    def forward(self, text, offsets):
        embedded = self.embedding(text, offsets)
        return self.fc(embedded)


# -- Initiate an instance: AG_NEWS has four labels.
train_iter = AG_NEWS(root=ROOT, split="train")
num_class = len(set([label for (label, text) in train_iter]))
vocab_size = len(vocab)
emsize = 64
model = TextClassificationModel(vocab_size, emsize, num_class).to(device)


# -- Define functions to train the model and evaluate results.
def train(dataloader):
    model.train()
    total_acc, total_count = 0, 0
    log_interval = 500
    start_time = time.time()

    for idx, (label, text, offsets) in enumerate(dataloader):
        optimizer.zero_grad()
        predicted_label = model(text, offsets)
        loss = criterion(predicted_label, label)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()
        total_acc += (predicted_label.argmax(1) == label).sum().item()
        total_count += label.size(0)
        if idx % log_interval == 0 and idx > 0:
            elapsed = time.time() - start_time
            print("| epoch {:3d} | {:5d}/{:5d} batches | accuracy {:8.3f} | {:5.2f}s".format(
                epoch, idx, len(dataloader), total_acc / total_count, elapsed))
            total_acc, total_count = 0, 0
            start_time = time.time()


def evaluate(dataloader):
    model.eval()
    total_acc, total_count = 0, 0

    with torch.no_grad():
        for idx, (label, text, offsets) in enumerate(dataloader):
            predicted_label = model(text, offsets)
            loss = criterion(predicted_label, label)  # noqa: F841  (computed as in the tutorial)
            total_acc += (predicted_label.argmax(1) == label).sum().item()
            total_count += label.size(0)
    return total_acc / total_count


# -- Split the dataset and run the model: 95% train / 5% valid, SGD with lr 5, StepLR on a plateau.
EPOCHS = 10  # epoch
LR = 5  # learning rate
BATCH_SIZE = 64  # batch size for training

criterion = torch.nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=LR)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1.0, gamma=0.1)
total_accu = None
train_iter, test_iter = AG_NEWS(root=ROOT)
train_dataset = to_map_style_dataset(train_iter)
test_dataset = to_map_style_dataset(test_iter)
num_train = int(len(train_dataset) * 0.95)
split_train_, split_valid_ = random_split(train_dataset, [num_train, len(train_dataset) - num_train])

train_dataloader = DataLoader(split_train_, batch_size=BATCH_SIZE, shuffle=True, collate_fn=collate_batch)
valid_dataloader = DataLoader(split_valid_, batch_size=BATCH_SIZE, shuffle=True, collate_fn=collate_batch)
test_dataloader = DataLoader(test_dataset, batch_size=BATCH_SIZE, shuffle=True, collate_fn=collate_batch)

for epoch in range(1, EPOCHS + 1):
    epoch_start_time = time.time()
    train(train_dataloader)
    accu_val = evaluate(valid_dataloader)
    if total_accu is not None and total_accu > accu_val:
        scheduler.step()
    else:
        total_accu = accu_val
    print("-" * 59)
    print("| end of epoch {:3d} | time: {:5.2f}s | valid accuracy {:8.4f} ".format(
        epoch, time.time() - epoch_start_time, accu_val))
    print("-" * 59)

# -- Evaluate the model with the test dataset.
print("Checking the results of test dataset.")
accu_test = evaluate(test_dataloader)
print("test accuracy {:8.4f}".format(accu_test))

# -- Test on a random news item.
ag_news_label = {1: "World", 2: "Sports", 3: "Business", 4: "Sci/Tec"}


def predict(text, text_pipeline):
    with torch.no_grad():
        text = torch.tensor(text_pipeline(text))
        output = model(text, torch.tensor([0]))
        return output.argmax(1).item() + 1


ex_text_str = ("MEMPHIS, Tenn. - Four days ago, Jon Rahm was enduring the season's worst weather conditions on "
               "Sunday at The Open on his way to a closing 75 at Royal Portrush, which considering the wind and the "
               "rain was a respectable showing. Thursday's first round at the WGC-FedEx St. Jude Invitational was "
               "another story. With temperatures in the mid-80s and hardly any wind, the Spaniard was 13 strokes "
               "better in a flawless round. Thanks to his best putting performance on the PGA Tour, Rahm finished "
               "with an 8-under 62 for a three-stroke lead, which was even more impressive considering he'd never "
               "played the front nine at TPC Southwind.")

model = model.to("cpu")
print("This is a %s news" % ag_news_label[predict(ex_text_str, text_pipeline)])
