"""Training loops with a progress bar that keeps quiet when it should.

The bar is shown in an interactive session (a terminal or a notebook) and
hidden when grading (``NBGRADER_EXECUTION`` set), when building the book, or
when stderr is not a terminal outside Jupyter.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

import numpy as np

from .grading_mode import is_grading


def progress_enabled() -> bool:
    """Whether long loops should draw a tqdm bar."""
    if is_grading() or os.environ.get("DROPOUT_LAB_NO_PROGRESS"):
        return False
    if "ipykernel" in sys.modules:
        # A notebook kernel: show the bar to a person, not to the book builder,
        # which runs kernels with no front end attached (no JPY_SESSION_NAME).
        return bool(os.environ.get("JPY_SESSION_NAME"))
    return sys.stderr.isatty()


def progress(iterable, total=None, desc=None):
    """``tqdm(iterable)`` when :func:`progress_enabled`, else the iterable itself."""
    if not progress_enabled():
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False)


@dataclass
class History:
    """Per-epoch curves of a training run (lists of floats)."""

    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_acc: list = field(default_factory=list)


def iterate_minibatches(n: int, batch_size: int, rng: np.random.Generator):
    """Yield index arrays that cover range(n) once in a random order."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = rng.permutation(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def train_numpy_sgd(params: dict, loss_and_grads, data, *, epochs: int, lr: float,
                    batch_size: int = 64, rng: np.random.Generator, desc: str = "train"):
    """Plain minibatch SGD for a numpy network.

    ``loss_and_grads(Xb, yb, params, rng) -> (loss, grads)`` computes the loss
    and gradients of one minibatch (drawing its own dropout mask from rng);
    ``grads`` has ``params``' keys. ``data`` is a :class:`~dropout_lab.data.Split`.
    Validation loss/accuracy use the deterministic network (no dropout).
    ``params`` is updated in place and returned with a :class:`History`.
    """
    from .nets import accuracy, cross_entropy, forward

    history = History()
    for _ in progress(range(epochs), desc=desc):
        losses = []
        for idx in iterate_minibatches(len(data.y_train), batch_size, rng):
            loss, grads = loss_and_grads(data.X_train[idx], data.y_train[idx], params, rng)
            for key in params:
                params[key] -= lr * grads[key]
            losses.append(loss)
        train_logits = forward(data.X_train, params)
        val_logits = forward(data.X_val, params)
        history.train_loss.append(float(np.mean(losses)))
        history.train_acc.append(accuracy(train_logits, data.y_train))
        history.val_loss.append(cross_entropy(val_logits, data.y_val))
        history.val_acc.append(accuracy(val_logits, data.y_val))
    return params, history


def train_torch(model, data, *, epochs: int, lr: float = 0.1, momentum: float = 0.9,
                weight_decay: float = 0.0, batch_size: int = 64, seed: int = 0,
                desc: str = "train"):
    """Minibatch SGD with momentum for a torch classifier on a Split.

    The model is trained in ``train()`` mode and evaluated in ``eval()`` mode
    each epoch; returns the model and a :class:`History`.
    """
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(seed)
    X_train = torch.as_tensor(data.X_train, dtype=torch.float32)
    y_train = torch.as_tensor(data.y_train)
    X_val = torch.as_tensor(data.X_val, dtype=torch.float32)
    y_val = torch.as_tensor(data.y_val)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    history = History()
    for _ in progress(range(epochs), desc=desc):
        model.train()
        order = torch.randperm(len(y_train), generator=gen)
        losses = []
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            opt.zero_grad()
            loss = loss_fn(model(X_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            train_logits = model(X_train)
            val_logits = model(X_val)
        history.train_loss.append(float(np.mean(losses)))
        history.train_acc.append(float((train_logits.argmax(1) == y_train).float().mean()))
        history.val_loss.append(float(loss_fn(val_logits, y_val)))
        history.val_acc.append(float((val_logits.argmax(1) == y_val).float().mean()))
    return model, history
