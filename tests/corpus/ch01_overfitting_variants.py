"""Correct implementations of chapter 01's graded functions, written the many
ways students write them. Every one must earn full marks under every seed."""
import numpy as np
import torch


# -- polynomial_features ----------------------------------------------------------------

def pf_vander(x, degree):
    return np.vander(x, degree + 1, increasing=True)


def pf_column_stack(x, degree):
    return np.column_stack([x**k for k in range(degree + 1)])


def pf_broadcast_power(x, degree):
    return np.asarray(x, dtype=float)[:, None] ** np.arange(degree + 1)


def pf_cumulative_product(x, degree):
    out = np.ones((len(x), degree + 1))
    for k in range(1, degree + 1):
        out[:, k] = out[:, k - 1] * x
    return out


def pf_polyvander(x, degree):
    from numpy.polynomial import polynomial as P

    return P.polyvander(x, degree)


def pf_list_of_rows(x, degree):
    return np.array([[xi**k for k in range(degree + 1)] for xi in x])


# -- ridge_fit -----------------------------------------------------------------------------

def _check_lam(lam):
    if lam < 0:
        raise ValueError(f"lam must be non-negative, got {lam}")


def ridge_normal_equations(X, y, lam):
    _check_lam(lam)
    return np.linalg.solve(X.T @ X + lam * np.eye(X.shape[1]), X.T @ y)


def ridge_augmented_lstsq(X, y, lam):
    _check_lam(lam)
    d = X.shape[1]
    A = np.vstack([X, np.sqrt(lam) * np.eye(d)])
    b = np.concatenate([y, np.zeros(d)])
    return np.linalg.lstsq(A, b, rcond=None)[0]


def ridge_svd(X, y, lam):
    _check_lam(lam)
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    return Vt.T @ (s / (s**2 + lam) * (U.T @ y))


def ridge_inverse(X, y, lam):
    if lam < 0:
        raise ValueError("negative lam")
    return np.linalg.inv(X.T @ X + lam * np.identity(X.shape[1])) @ X.T @ y


def ridge_dual_when_wide(X, y, lam):
    _check_lam(lam)
    n, d = X.shape
    if n < d and lam > 0:  # the n x n system: w = X^T (X X^T + lam I)^-1 y
        return X.T @ np.linalg.solve(X @ X.T + lam * np.eye(n), y)
    return np.linalg.solve(X.T @ X + lam * np.eye(d), X.T @ y)


def ridge_torch(X, y, lam):
    _check_lam(lam)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    A = Xt.T @ Xt + lam * torch.eye(X.shape[1], dtype=Xt.dtype)
    return torch.linalg.solve(A, Xt.T @ yt).numpy()


def ridge_lam_added_to_diagonal(X, y, lam):
    _check_lam(lam)
    A = X.T @ X
    A[np.diag_indices_from(A)] += lam
    return np.linalg.solve(A, X.T @ y)


# -- l2_penalty --------------------------------------------------------------------------------

def l2_generator_sum(params, weight_decay):
    return 0.5 * weight_decay * sum(p.pow(2).sum() for p in params)


def l2_stack(params, weight_decay):
    return 0.5 * weight_decay * torch.stack([(p * p).sum() for p in params]).sum()


def l2_norm_squared(params, weight_decay):
    total = 0.0
    for p in params:
        total = total + torch.norm(p) ** 2
    return 0.5 * weight_decay * total


def l2_vector_norm(params, weight_decay):
    return weight_decay / 2 * sum(torch.linalg.vector_norm(p) ** 2 for p in params)


def l2_cat(params, weight_decay):
    flat = torch.cat([p.reshape(-1) for p in params])
    return 0.5 * weight_decay * flat.pow(2).sum()


def l2_zero_tensor_start(params, weight_decay):
    total = torch.tensor(0.0)
    for p in list(params):
        total = total + torch.sum(p**2)
    return total * weight_decay * 0.5


# -- l1_penalty --------------------------------------------------------------------------------

def l1_abs_sum(params, strength):
    return strength * sum(p.abs().sum() for p in params)


def l1_norm_1(params, strength):
    total = 0
    for p in params:
        total = total + torch.norm(p, 1)
    return strength * total


def l1_vector_norm(params, strength):
    return strength * torch.stack([torch.linalg.vector_norm(p, ord=1) for p in params]).sum()


def l1_cat(params, strength):
    return strength * torch.cat([p.flatten() for p in params]).abs().sum()


def l1_torch_abs(params, strength):
    return sum(strength * torch.sum(torch.abs(p)) for p in params)


# -- early_stopping_epoch ----------------------------------------------------------------

def _check_patience(patience):
    if patience < 1:
        raise ValueError(f"patience must be at least 1, got {patience}")


def es_for_counter(val_losses, patience):
    _check_patience(patience)
    best, best_epoch, bad_epochs = float("inf"), 0, 0
    for epoch, loss in enumerate(val_losses):
        if loss < best:
            best, best_epoch, bad_epochs = loss, epoch, 0
        else:
            bad_epochs += 1
            if bad_epochs >= patience:
                break
    return best_epoch


def es_while(val_losses, patience):
    _check_patience(patience)
    losses = list(val_losses)
    best_epoch, epoch, since = 0, 1, 0
    while epoch < len(losses) and since < patience:
        if losses[epoch] < losses[best_epoch]:
            best_epoch, since = epoch, 0
        else:
            since += 1
        epoch += 1
    return best_epoch


def es_distance_to_best(val_losses, patience):
    _check_patience(patience)
    best_epoch = 0
    for epoch in range(1, len(val_losses)):
        if val_losses[epoch] < val_losses[best_epoch]:
            best_epoch = epoch
        elif epoch - best_epoch >= patience:
            break
    return best_epoch


def es_vectorised(val_losses, patience):
    _check_patience(patience)
    losses = np.asarray(val_losses, dtype=float)
    epochs = np.arange(len(losses))
    best_before = np.concatenate([[np.inf], np.minimum.accumulate(losses)[:-1]])
    improved = losses < best_before
    best_idx = np.maximum.accumulate(np.where(improved, epochs, 0))
    stops = np.nonzero(epochs - best_idx >= patience)[0]
    end = stops[0] if len(stops) else len(losses) - 1
    return best_idx[end]  # a numpy integer


def es_counter_class(val_losses, patience):
    """As a training loop's helper object would do it."""
    _check_patience(patience)

    class Stopper:
        def __init__(self):
            self.best, self.best_epoch, self.count = None, None, 0

        def step(self, epoch, loss):
            if self.best is None or loss < self.best:
                self.best, self.best_epoch, self.count = loss, epoch, 0
                return False
            self.count += 1
            return self.count >= patience

    stopper = Stopper()
    for epoch, loss in enumerate(val_losses):
        if stopper.step(epoch, float(loss)):
            break
    return stopper.best_epoch


VARIANTS = {
    "polynomial_features": [
        ("vander-increasing", pf_vander),
        ("column-stack", pf_column_stack),
        ("broadcast-power", pf_broadcast_power),
        ("cumulative-product", pf_cumulative_product),
        ("polyvander", pf_polyvander),
        ("list-of-rows", pf_list_of_rows),
    ],
    "ridge_fit": [
        ("normal-equations-solve", ridge_normal_equations),
        ("augmented-lstsq", ridge_augmented_lstsq),
        ("svd", ridge_svd),
        ("inverse", ridge_inverse),
        ("dual-when-wide", ridge_dual_when_wide),
        ("torch-solve", ridge_torch),
        ("diagonal-in-place", ridge_lam_added_to_diagonal),
    ],
    "l2_penalty": [
        ("generator-sum", l2_generator_sum),
        ("stack", l2_stack),
        ("norm-squared", l2_norm_squared),
        ("vector-norm", l2_vector_norm),
        ("cat", l2_cat),
        ("zero-tensor-start", l2_zero_tensor_start),
    ],
    "l1_penalty": [
        ("abs-sum", l1_abs_sum),
        ("norm-1", l1_norm_1),
        ("vector-norm-ord1", l1_vector_norm),
        ("cat", l1_cat),
        ("torch-abs", l1_torch_abs),
    ],
    "early_stopping_epoch": [
        ("for-counter", es_for_counter),
        ("while", es_while),
        ("distance-to-best", es_distance_to_best),
        ("vectorised", es_vectorised),
        ("stopper-object", es_counter_class),
    ],
}
