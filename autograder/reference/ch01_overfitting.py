"""Hidden reference for chapter 01, overfitting. Never shipped to students."""
import numpy as np


def polynomial_features(x, degree):
    x = np.asarray(x, dtype=np.float64)
    return np.stack([x**k for k in range(degree + 1)], axis=1)


def ridge_fit(X, y, lam):
    if lam < 0:
        raise ValueError(f"lam must be >= 0, got {lam}")
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    # Augmented least squares: ||[X; sqrt(lam) I] w - [y; 0]||^2 = ||y - X w||^2 + lam ||w||^2.
    # lstsq is stable however ill-conditioned X is, and for lam = 0 with more columns than
    # rows it returns the minimum-norm solution.
    d = X.shape[1]
    A = np.vstack([X, np.sqrt(lam) * np.eye(d)])
    b = np.concatenate([y, np.zeros(d)])
    return np.linalg.lstsq(A, b, rcond=None)[0]


def l2_penalty(params, weight_decay):
    return 0.5 * weight_decay * sum((p * p).sum() for p in params)


def l1_penalty(params, strength):
    return strength * sum(p.abs().sum() for p in params)


def early_stopping_epoch(val_losses, patience):
    if patience < 1:
        raise ValueError(f"patience must be >= 1, got {patience}")
    best, best_epoch, waited = float("inf"), 0, 0
    for epoch, loss in enumerate(val_losses):
        if loss < best:
            best, best_epoch, waited = loss, epoch, 0
        else:
            waited += 1
            if waited >= patience:
                break
    return best_epoch
