"""Hidden reference for chapter 09, dropout in practice. Never shipped to students."""
import numpy as np
import torch
from torch import nn


def max_norm_(weight, max_norm):
    with torch.no_grad():
        norms = weight.norm(dim=1, keepdim=True)
        weight.mul_(torch.clamp(max_norm / norms.clamp_min(1e-30), max=1.0))
    return weight


def dropout_ridge_solution(X, y, p):
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    G = X.T @ X
    return np.linalg.solve(G + p / (1.0 - p) * np.diag(np.diag(G)), X.T @ y)


_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


def mc_dropout_predict(model, x, n_samples):
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    for m in model.modules():
        if isinstance(m, _DROPOUT):
            m.train()
    try:
        with torch.no_grad():
            total = 0.0
            for _ in range(n_samples):
                total = total + torch.softmax(model(x), dim=-1)
            mean_probs = total / n_samples
            entropy = -torch.special.xlogy(mean_probs, mean_probs).sum(dim=-1)
    finally:
        for m, training in modes:
            m.training = training
    return mean_probs, entropy
