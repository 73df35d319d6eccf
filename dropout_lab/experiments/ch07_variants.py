"""Experiments behind chapter 07's figures (the dropout family).

Every function is seeded and returns arrays or plain numbers; the page and
``tests/test_claims_ch07_variants.py`` call the same functions with the same arguments.

Public code, never a solution of a graded exercise. Where torch has the variant built in it
is used as is: ``F.dropout`` (element dropout), ``F.dropout2d`` (SpatialDropout, one coin
per (example, channel)), ``F.alpha_dropout`` / ``nn.AlphaDropout``. Where it has not
(DropConnect, DropBlock, Cutout, DropPath, Multi-Sample Dropout), the mask is built inline
inside the one experiment that needs it, batched for that experiment only (a picture of
masks on a photograph, the forward pass of a model class, a timing loop), and always drawn
from torch's global generator: none of these pieces is a reusable function of the kind the
exercise notebook asks students to write.
"""
from __future__ import annotations

import math
import time
from dropout_lab.experiments.threads import one_thread

import numpy as np

#: SELU's constants (Klambauer et al. 2017), as in torch.nn.SELU.
SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717
#: torch's alpha dropout hard-codes lambda * alpha (aten/src/ATen/native/Dropout.cpp).
TORCH_ALPHA_PRIME = 1.7580993408473766

#: Variants trained by :func:`train_cnn_variants`, with the names used on the page.
CNN_VARIANTS = {
    "none": "no dropout",
    "element": "element dropout",
    "spatial": "SpatialDropout",
    "dropblock": "DropBlock",
    "cutout": "Cutout",
}


def _one_thread():
    """torch on one thread (see dropout_lab.experiments.threads)."""
    return one_thread(numpy_too=False)


# --------------------------------------------------------------------------------------
# The photograph and a small convolutional layer
# --------------------------------------------------------------------------------------

def photo(name: str = "china.jpg", factor: int = 4) -> np.ndarray:
    """One of scikit-learn's two bundled photographs (``china.jpg``, ``flower.jpg``,
    427 x 640 pixels), shrunk ``factor`` times by averaging ``factor`` x ``factor``
    squares; float64 (H, W, 3) in [0, 1]."""
    from sklearn.datasets import load_sample_images

    data = load_sample_images()
    names = [f.rsplit("/", 1)[-1] for f in data.filenames]
    img = data.images[names.index(name)].astype(np.float64) / 255.0
    H, W = (img.shape[0] // factor) * factor, (img.shape[1] // factor) * factor
    img = img[:H, :W].reshape(H // factor, factor, W // factor, factor, 3).mean(axis=(1, 3))
    return img


def _conv_layer(size: int = 7, sigma: float = 1.2):
    """A small fixed conv layer of 8 smooth oriented filters, like the edge and bar detectors
    that the first layer of a trained image network learns: first and second derivatives of
    a Gaussian (scale ``sigma``) at 0, 45, 90 and 135 degrees, each with zero mean and unit
    norm; (8, 1, size, size) float64."""
    import torch

    r = torch.arange(size, dtype=torch.float64) - size // 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    filters = []
    for order in (1, 2):
        for angle in (0.0, 45.0, 90.0, 135.0):
            t = math.radians(angle)
            u = xx * math.cos(t) + yy * math.sin(t)
            g = torch.exp(-(xx**2 + yy**2) / (2 * sigma**2))
            f = -u * g if order == 1 else (u**2 / sigma**2 - 1) * g
            f = f - f.mean()
            filters.append(f / f.norm())
    return torch.stack(filters)[:, None]


def photo_features(factor: int = 4):
    """ReLU feature maps of :func:`_conv_layer` (stride 1, no padding) on the grey-level
    photograph: torch float64 tensor (1, 8, h, w)."""
    import torch
    import torch.nn.functional as F

    grey = torch.as_tensor(photo(factor=factor).mean(axis=2))[None, None]
    return torch.relu(F.conv2d(grey, _conv_layer()))


def photo_masks(p: float = 0.25, block_size: int = 11, cutout_size: int = 48, p_path: float = 0.5,
                n_batch: int = 8, seed: int = 0) -> dict:
    """What each variant does to the photograph (shrunk to 106 x 160).

    Returns numpy images (H, W, 3) for ``original``, ``element`` (torch's dropout on
    every (colour, pixel) entry), ``gaussian`` (times N(1, p/(1-p)) noise, clipped to
    [0, 1] for display), ``dropblock`` (an independent block mask per colour channel,
    gamma from the valid seed region, blocks ``block_size`` pixels wide) and ``cutout``
    (one ``cutout_size`` square shared by the colours, centre uniform over the image,
    clipped at the border); and batches of ``n_batch`` copies (n_batch, H, W, 3) for
    ``spatial`` (torch's dropout2d: each (image, colour) kept or dropped), ``droppath``
    (row mode at ``p_path``: each image of the batch kept or dropped as a whole, as the
    residual branch of one example is) and ``multisample`` (copies that each get their own
    element mask, the K samples of Multi-Sample Dropout). Masks are shown WITHOUT the
    1/(1-p) rescaling so that colours stay in range. ``dropped`` maps each name to the
    fraction of entries that are exactly zero (for ``gaussian``: the fraction whose noise
    factor is negative, which flips the sign).
    """
    import torch
    import torch.nn.functional as F

    x = torch.as_tensor(photo()).permute(2, 0, 1)[None].contiguous()  # (1, 3, H, W)
    _, C, H, W = x.shape
    keep = 1.0 - p
    out, dropped = {"original": x}, {}
    torch.manual_seed(seed)

    out["element"] = F.dropout(x, p) * keep
    eps = 1.0 + math.sqrt(p / keep) * torch.randn(x.shape, dtype=x.dtype)
    out["gaussian"] = (x * eps).clamp(0, 1)
    dropped["gaussian"] = float((eps < 0).double().mean())

    batch = x.expand(n_batch, -1, -1, -1)
    out["spatial"] = F.dropout2d(batch, p) * keep

    # DropBlock, built here for this picture only: seeds at valid centres, squares by max-pooling
    r = block_size // 2
    gamma = p * H * W / (block_size**2 * (H - block_size + 1) * (W - block_size + 1))
    valid = torch.zeros(H, W, dtype=torch.bool)
    valid[r:H - r, r:W - r] = True
    seeds = (torch.rand(x.shape, dtype=x.dtype) < gamma) & valid
    blocks = F.max_pool2d(seeds.double(), block_size, stride=1, padding=r)
    out["dropblock"] = x * (1 - blocks)

    # Cutout: one square for the image, centre uniform over all pixels, clipped at the border
    cy, cx = int(torch.randint(H, (1,))), int(torch.randint(W, (1,)))
    hole = torch.ones(1, 1, H, W, dtype=x.dtype)
    hole[..., max(cy - cutout_size // 2, 0):cy - cutout_size // 2 + cutout_size,
         max(cx - cutout_size // 2, 0):cx - cutout_size // 2 + cutout_size] = 0
    out["cutout"] = x * hole

    coins = (torch.rand(n_batch, 1, 1, 1, dtype=x.dtype) >= p_path).double()
    out["droppath"] = batch * coins
    out["multisample"] = F.dropout(batch, p) * keep

    for k, v in out.items():
        if k not in dropped and k != "original":
            dropped[k] = float((v == 0).double().mean())
    single = ("original", "element", "gaussian", "dropblock", "cutout")
    result = {k: (v[0] if k in single else v).permute(*((1, 2, 0) if k in single else (0, 2, 3, 1))).numpy()
              for k, v in out.items()}
    result.update(dropped=dropped, gamma=gamma, cutout_centre=(cy, cx),
                  cutout_max_fraction=cutout_size**2 / (H * W), paths_dropped=int((coins == 0).sum()))
    return result


def feature_map_masks(p: float = 0.25, block_size: int = 7, seed: int = 0) -> dict:
    """What each variant does to the 8 feature maps of a small conv layer on the photograph.

    The layer: :func:`_conv_layer` (8 smooth oriented 7 x 7 filters, stride 1) on the
    grey-level photograph, then ReLU, giving maps of 100 x 154. Returns (8, h, w) numpy
    arrays for ``none``, ``element`` (torch's dropout), ``dropconnect`` (the same layer
    computed with ONE random mask on its 392 filter weights, rescaled by 1/(1-p): no
    activation is zeroed by the mask, every map changes), ``spatial`` (torch's dropout2d)
    and ``dropblock`` (per-map block masks, rescaled by the whole tensor's kept fraction),
    all rescaled as in training; ``dropconnect_change`` (RMS change of the maps caused by
    DropConnect relative to their RMS), ``zero_fraction`` per name, ``maps_dropped``
    (SpatialDropout's dropped maps) and ``dropblock_scale`` (its rescaling factor).
    """
    import torch
    import torch.nn.functional as F

    grey = torch.as_tensor(photo().mean(axis=2))[None, None]
    w = _conv_layer()
    h = torch.relu(F.conv2d(grey, w))
    _, C, Hh, Wh = h.shape
    keep = 1.0 - p
    torch.manual_seed(seed)
    out = {"none": h, "element": F.dropout(h, p)}

    # DropConnect on this conv layer only: one mask on the (8, 1, 7, 7) weights, for this call
    wmask = (torch.rand(w.shape, dtype=w.dtype) >= p).double()
    out["dropconnect"] = torch.relu(F.conv2d(grey, w * wmask / keep))
    out["spatial"] = F.dropout2d(h, p)

    r = block_size // 2
    gamma = p * Hh * Wh / (block_size**2 * (Hh - block_size + 1) * (Wh - block_size + 1))
    valid = torch.zeros(Hh, Wh, dtype=torch.bool)
    valid[r:Hh - r, r:Wh - r] = True
    seeds = (torch.rand(h.shape, dtype=h.dtype) < gamma) & valid
    kept = 1 - F.max_pool2d(seeds.double(), block_size, stride=1, padding=r)
    scale = float(kept.numel() / kept.sum())
    out["dropblock"] = h * kept * scale

    res = {k: v[0].numpy() for k, v in out.items()}
    res["dropconnect_change"] = float((out["dropconnect"] - h).norm() / h.norm())
    res["zero_fraction"] = {k: float((v == 0).double().mean()) for k, v in out.items()}
    res["maps_dropped"] = int((out["spatial"][0].flatten(1).abs().sum(1) == 0).sum())
    res["dropblock_scale"] = scale
    res["weight_mask_kept"] = float(wmask.mean())
    return res


def dropout2d_on_one_image(p: float = 0.5, shape=(3, 6, 8), seed: int = 0) -> dict:
    """torch's dropout2d on ONE image of shape (C, H, W), without a batch dimension.

    torch reads a 3-D input as (N, C, L) and drops whole ROWS (one coin per (c, h)), not
    channels; it says so in a UserWarning (caught here and returned as ``warning``).
    Returns ``rows_constant`` (every (c, h) row is all kept or all dropped),
    ``channels_constant`` (every channel is all kept or all dropped: what SpatialDropout
    means), the same two facts for the batched input (1, C, H, W) (``batched_*``), and
    ``dropped_rows``, the fraction of rows dropped."""
    import warnings

    import torch
    import torch.nn.functional as F

    x = torch.ones(shape)
    torch.manual_seed(seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = F.dropout2d(x, p)
    yb = F.dropout2d(x[None], p)[0]

    def constant(t, dims):
        return bool(((t.amax(dim=dims) - t.amin(dim=dims)) == 0).all())

    return {"rows_constant": constant(y, (2,)), "channels_constant": constant(y, (1, 2)),
            "batched_rows_constant": constant(yb, (2,)), "batched_channels_constant": constant(yb, (1, 2)),
            "dropped_rows": float((y.amax(dim=2) == 0).float().mean()),
            "warning": " ".join(str(w.message) for w in caught)}


# --------------------------------------------------------------------------------------
# Neighbouring activations carry the same information
# --------------------------------------------------------------------------------------

def neighbour_statistics(maps, max_offset: int = 6) -> dict:
    """Correlation of activations ``d`` positions apart in the same feature map.

    ``maps``: array (N, C, H, W). For each offset d = 1..max_offset, the Pearson
    correlation between a(n, c, i, j) and a(n, c, i, j + d) (and i + d, averaged), per
    channel over all positions and examples, then averaged over channels whose maps are
    not constant. Also ``neighbour_r2``: the fraction of an interior activation's variance
    explained by the best linear fit on the mean of its 4 neighbours (per channel, averaged),
    which measures how well a dropped activation can be restored from neighbours that
    survive. A control with the positions shuffled within each map gives ``shuffled``
    (correlation at d = 1, about 0).
    """
    a = np.asarray(maps, dtype=np.float64)
    N, C, H, W = a.shape
    rng = np.random.default_rng(0)

    def corr(u, v):
        u, v = u - u.mean(), v - v.mean()
        den = np.sqrt((u * u).sum() * (v * v).sum())
        return float((u * v).sum() / den) if den > 0 else np.nan

    live = [c for c in range(C) if a[:, c].std() > 1e-12]
    offsets = np.arange(1, max_offset + 1)
    rows = []
    for d in offsets:
        per = [0.5 * (corr(a[:, c, :, :-d], a[:, c, :, d:]) + corr(a[:, c, :-d, :], a[:, c, d:, :])) for c in live]
        rows.append(np.nanmean(per))
    r2 = []
    for c in live:
        centre = a[:, c, 1:-1, 1:-1].ravel()
        nb = 0.25 * (a[:, c, :-2, 1:-1] + a[:, c, 2:, 1:-1] + a[:, c, 1:-1, :-2] + a[:, c, 1:-1, 2:]).ravel()
        rho = corr(centre, nb)
        if np.isfinite(rho):
            r2.append(rho**2)
    shuffled = []
    for c in live:
        s = a[:, c].reshape(N, -1).copy()
        for row in s:
            rng.shuffle(row)
        s = s.reshape(N, H, W)
        shuffled.append(corr(s[:, :, :-1], s[:, :, 1:]))
    return {"offsets": offsets, "corr": np.array(rows), "neighbour_r2": float(np.mean(r2)),
            "shuffled": float(np.nanmean(shuffled)), "n_channels": len(live)}


# --------------------------------------------------------------------------------------
# A small CNN on (upsampled) digits: none / element / SpatialDropout / DropBlock / Cutout
# --------------------------------------------------------------------------------------

def upsampled_digits(size: int = 16):
    """The course's digits split as torch float32 images (N, 1, size, size), the 8 x 8
    images enlarged by bilinear interpolation (no new information, more room for blocks)."""
    import torch
    import torch.nn.functional as F

    from dropout_lab.data import load_digits_split

    data = load_digits_split()

    def up(X):
        x = torch.as_tensor(X, dtype=torch.float32).reshape(-1, 1, 8, 8)
        return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)

    return {"train": (up(data.X_train), torch.as_tensor(data.y_train)),
            "val": (up(data.X_val), torch.as_tensor(data.y_val)),
            "test": (up(data.X_test), torch.as_tensor(data.y_test))}


def _make_cnn(variant, p, block_size, c1=8, c2=16):
    import torch
    import torch.nn.functional as F
    from torch import nn

    class SmallCNN(nn.Module):
        """conv(1->c1) ReLU pool / conv(c1->c2) ReLU [noise] pool / linear -> 10.

        The noise acts on the 8 x 8 maps of the second conv layer: torch's dropout
        ("element"), torch's dropout2d ("spatial"), or DropBlock written here ("dropblock",
        its rate ``self.rate`` set by the training loop's schedule). Cutout acts on the
        input and lives in the training loop."""

        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
            self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
            self.fc = nn.Linear(c2 * 16, 10)
            self.rate = p

        def features(self, x):
            """Activations of the second conv layer (before any noise), (N, c2, 8, 8)."""
            return torch.relu(self.conv2(F.max_pool2d(torch.relu(self.conv1(x)), 2)))

        def forward(self, x):
            h = self.features(x)
            if self.training and variant == "element":
                h = F.dropout(h, p)
            elif self.training and variant == "spatial":
                h = F.dropout2d(h, p)
            elif self.training and variant == "dropblock" and self.rate > 0:
                N, C, H, W = h.shape
                r = block_size // 2
                gamma = self.rate * H * W / (block_size**2 * (H - block_size + 1) * (W - block_size + 1))
                centre = torch.zeros(H, W, dtype=torch.bool)
                centre[r:H - r, r:W - r] = True
                hit = ((torch.rand(N, C, H, W) < gamma) & centre).float()
                kept = 1.0 - F.max_pool2d(hit, block_size, stride=1, padding=r)
                total = kept.sum()
                h = h * kept * (kept.numel() / total) if total > 0 else h * 0.0
            return self.fc(F.max_pool2d(h, 2).flatten(1))

    return SmallCNN()


def train_cnn_variants(variants=tuple(CNN_VARIANTS), seeds=(0, 1, 2), n_train: int = 500, epochs: int = 20,
                       p: float = 0.25, block_size: int = 3, cutout_size: int = 8, lr: float = 0.1,
                       batch_size: int = 50, size: int = 16) -> dict:
    """Train the small CNN of ``_make_cnn`` on ``n_train`` upsampled training digits.

    SGD with momentum 0.9, learning rate ``lr`` decayed to 0 by a cosine schedule (so the last
    epochs are stable), mini-batches of ``batch_size``, ``epochs`` epochs; torch seeded with the seed (weights, masks, Cutout squares and batch order).
    Element dropout and SpatialDropout use drop probability ``p`` throughout; DropBlock's
    rate rises linearly from 0 to ``p`` over training (Ghiasi et al.'s schedule), with
    blocks of ``block_size``; Cutout zeroes one ``cutout_size`` square per training image
    (centre uniform over the image, clipped at the border; 8 x 8 of 16 x 16 is at most a
    quarter of the image, like p = 0.25). Returns ``{variant: dict}`` with per-epoch
    ``val_acc`` and ``val_loss`` (shape (len(seeds), epochs), eval mode), final
    ``train_acc``, ``train_loss``, ``test_acc``, ``test_loss`` (arrays over seeds, eval mode),
    ``models`` (the trained networks) and ``seconds`` (training time per run).
    """
    import torch
    import torch.nn.functional as F

    data = upsampled_digits(size)
    X_all, y_all = data["train"]
    idx = torch.as_tensor(np.random.default_rng(0).permutation(len(y_all))[:n_train])
    X, y = X_all[idx], y_all[idx]
    steps_total = epochs * math.ceil(n_train / batch_size)
    out = {}
    with _one_thread():
        for variant in variants:
            rec = {k: [] for k in ("val_acc", "val_loss", "train_acc", "train_loss", "test_acc", "test_loss",
                                   "models", "seconds")}
            for seed in seeds:
                torch.manual_seed(seed)
                net = _make_cnn(variant, p, block_size)
                opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
                va, vl, step = [], [], 0
                t0 = time.perf_counter()
                for _ in range(epochs):
                    net.train()
                    perm = torch.randperm(n_train)
                    for i in range(0, n_train, batch_size):
                        b = perm[i:i + batch_size]
                        xb = X[b]
                        if variant == "cutout":
                            n, _, H, W = xb.shape
                            cy = torch.randint(H, (n, 1, 1))
                            cx = torch.randint(W, (n, 1, 1))
                            top, left = cy - cutout_size // 2, cx - cutout_size // 2
                            rows = torch.arange(H).reshape(1, H, 1)
                            cols = torch.arange(W).reshape(1, 1, W)
                            inside = (rows >= top) & (rows < top + cutout_size) & \
                                     (cols >= left) & (cols < left + cutout_size)
                            xb = xb * (~inside).unsqueeze(1)
                        if variant == "dropblock":
                            net.rate = p * step / max(steps_total - 1, 1)
                        for group in opt.param_groups:     # cosine decay of the learning rate to 0
                            group["lr"] = 0.5 * lr * (1 + math.cos(math.pi * step / steps_total))
                        loss = F.cross_entropy(net(xb), y[b])
                        opt.zero_grad()
                        loss.backward()
                        opt.step()
                        step += 1
                    net.eval()
                    with torch.no_grad():
                        logits = net(data["val"][0])
                        va.append(float((logits.argmax(1) == data["val"][1]).float().mean()))
                        vl.append(float(F.cross_entropy(logits, data["val"][1])))
                rec["seconds"].append(time.perf_counter() - t0)
                rec["val_acc"].append(va)
                rec["val_loss"].append(vl)
                net.eval()
                with torch.no_grad():
                    for name, (Xs, ys) in (("train", (X, y)), ("test", data["test"])):
                        logits = net(Xs)
                        rec[name + "_acc"].append(float((logits.argmax(1) == ys).float().mean()))
                        rec[name + "_loss"].append(float(F.cross_entropy(logits, ys)))
                rec["models"].append(net)
            out[variant] = {k: (v if k == "models" else np.array(v)) for k, v in rec.items()}
    return out


def cnn_feature_maps(model, split: str = "val", size: int = 16) -> np.ndarray:
    """Second-conv-layer activations (where the noise acts) of a trained CNN on the
    upsampled ``split`` digits, eval mode: (N, 16, 8, 8)."""
    import torch

    X = upsampled_digits(size)[split][0]
    model.eval()
    with torch.no_grad():
        return model.features(X).numpy()


# --------------------------------------------------------------------------------------
# DropBlock: the seed rate gamma, the realised drop rate, the normalisation
# --------------------------------------------------------------------------------------

def dropblock_rates(ps=(0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4), block_sizes=(3, 5, 7), size: int = 16,
                    n_maps: int = 2000, seed: int = 0) -> dict:
    """Realised fraction of dropped positions for DropBlock masks on ``size`` x ``size`` maps.

    For each block size b and target rate p, ``n_maps`` masks are drawn with the seed rate
    gamma = p H W / (b^2 (H - b + 1)(W - b + 1)), seeds only where the b x b square centred on
    them lies inside the map. Returns ``realised[b]`` (mean dropped fraction per p),
    ``realised_se[b]`` (its standard error over maps), ``exact[b]`` (the expected fraction,
    the mean over positions of 1 - (1 - gamma)^c with c the number of valid centres whose
    square covers the position: overlaps included), ``gamma[b]``, ``covered[b]`` (the fraction
    p would give if blocks never overlapped: gamma b^2 (H-b+1)(W-b+1)/(HW) = p by
    construction), and two wrong seed rates at block size ``block_sizes[1]``:
    ``gamma_is_p`` (gamma = p) and ``no_valid_factor`` (gamma = p / b^2, seeds still only in
    the valid region).
    """
    import torch
    import torch.nn.functional as F

    H = W = size
    ps = np.asarray(ps, dtype=float)
    res = {"ps": ps, "realised": {}, "realised_se": {}, "exact": {}, "gamma": {}, "covered": {}}

    def draw(gamma, b, n):
        r = b // 2
        centre = torch.zeros(H, W, dtype=torch.bool)
        centre[r:H - r, r:W - r] = True
        hit = ((torch.rand(n, 1, H, W, dtype=torch.float64) < gamma) & centre).double()
        dropped = F.max_pool2d(hit, b, stride=1, padding=r)
        return dropped.mean(dim=(1, 2, 3)).numpy()

    with _one_thread():
        torch.manual_seed(seed)
        for b in block_sizes:
            r = b // 2
            line = np.array([sum(1 for u in range(r, H - r) if abs(u - i) <= r) for i in range(H)])
            cover = np.outer(line, line)       # valid centres whose square covers each position
            g = ps * H * W / (b**2 * (H - b + 1) * (W - b + 1))
            fr = [draw(gi, b, n_maps) for gi in g]
            res["gamma"][b] = g
            res["realised"][b] = np.array([f.mean() for f in fr])
            res["realised_se"][b] = np.array([f.std(ddof=1) / math.sqrt(n_maps) for f in fr])
            res["exact"][b] = np.array([np.mean(1 - (1 - gi) ** cover) for gi in g])
            res["covered"][b] = g * b**2 * (H - b + 1) * (W - b + 1) / (H * W)
        b = block_sizes[1] if len(block_sizes) > 1 else block_sizes[0]
        res["wrong_block"] = b
        res["gamma_is_p"] = np.array([draw(pi, b, n_maps // 4).mean() for pi in ps])
        res["no_valid_factor"] = np.array([draw(pi / b**2, b, n_maps).mean() for pi in ps])
    return res


def dropblock_normalisation(p: float = 0.2, block_size: int = 3, shape=(32, 16, 8, 8), n_draws: int = 200,
                            seed: int = 0) -> dict:
    """The rescaling factor of DropBlock: over the whole tensor vs per feature map.

    For ``n_draws`` masks on a tensor of ``shape`` (seed rate from the valid region),
    ``whole`` is numel / (number kept) of each draw, ``per_map`` every map's own
    (positions / kept) factor, ``empty_maps`` the fraction of maps with every position
    dropped (a per-map factor would divide by zero there). Returns arrays and summaries
    ``whole_cv`` and ``per_map_cv`` (coefficient of variation over draws / maps,
    empty maps left out).
    """
    import torch
    import torch.nn.functional as F

    N, C, H, W = shape
    b, r = block_size, block_size // 2
    gamma = p * H * W / (b**2 * (H - b + 1) * (W - b + 1))
    whole, per_map, empty = [], [], 0
    with _one_thread():
        torch.manual_seed(seed)
        centre = torch.zeros(H, W, dtype=torch.bool)
        centre[r:H - r, r:W - r] = True
        for _ in range(n_draws):
            hit = ((torch.rand(N, C, H, W, dtype=torch.float64) < gamma) & centre).double()
            kept = 1 - F.max_pool2d(hit, b, stride=1, padding=r)
            whole.append(float(kept.numel() / kept.sum()))
            k = kept.sum(dim=(2, 3)).reshape(-1)
            empty += int((k == 0).sum())
            per_map.append((H * W / k[k > 0]).numpy())
    whole, per_map = np.array(whole), np.concatenate(per_map)
    return {"whole": whole, "per_map": per_map, "empty_maps": empty / (n_draws * N * C),
            "whole_cv": float(whole.std() / whole.mean()), "per_map_cv": float(per_map.std() / per_map.mean()),
            "gamma": gamma}


# --------------------------------------------------------------------------------------
# Alpha dropout
# --------------------------------------------------------------------------------------

def alpha_constants(p: float) -> dict:
    """The affine correction of alpha dropout, derived on the page: dropped units are set to
    alpha' = -lambda alpha (SELU's negative saturation value), then y = a z + b with
    a = ((1-p)(1 + p alpha'^2))^(-1/2) and b = -a p alpha' (mean 0 and variance 1 kept for
    a standardised input). Returns alpha_prime, a, b, and the value a dropped unit ends at."""
    ap = -TORCH_ALPHA_PRIME
    a = 1.0 / math.sqrt((1 - p) * (1 + p * ap * ap))
    b = -a * p * ap
    return {"alpha_prime": ap, "a": a, "b": b, "dropped_value": a * ap + b}


def alpha_dropout_check(p: float = 0.1, n: int = 1_000_000, seed: int = 0) -> dict:
    """torch's ``F.alpha_dropout`` against the page's formula, on x ~ N(0, 1) (float64).

    The dropped units are recognised as the outputs equal to a alpha' + b; then every
    output must equal a (m x + (1 - m) alpha') + b. Returns ``max_abs_err`` (largest
    deviation from the formula), ``dropped_fraction`` (vs p), the output ``mean`` and
    ``var`` (vs 0 and 1), those of the input, and for comparison the mean and variance
    after torch's plain (inverted) dropout (``dropout_mean``, ``dropout_var``: 0 and
    1/(1-p)) and after setting dropped units to alpha' with no affine correction
    (``no_affine_mean``, ``no_affine_var``: p alpha' and (1-p)(1 + p alpha'^2)).
    """
    import torch
    import torch.nn.functional as F

    c = alpha_constants(p)
    g = torch.Generator().manual_seed(10_000 + seed)   # the input: its own stream, never the masks'
    x = torch.randn(n, generator=g, dtype=torch.float64)
    torch.manual_seed(seed)
    y = F.alpha_dropout(x, p, training=True)
    dropped = (y - c["dropped_value"]).abs() < 1e-12
    m = (~dropped).double()
    formula = c["a"] * (m * x + (1 - m) * c["alpha_prime"]) + c["b"]
    torch.manual_seed(seed + 1)
    d = F.dropout(x, p, training=True)
    z = torch.where(dropped, torch.full_like(x, c["alpha_prime"]), x)
    return {**c, "max_abs_err": float((y - formula).abs().max()), "dropped_fraction": float(dropped.double().mean()),
            "mean": float(y.mean()), "var": float(y.var()), "x_mean": float(x.mean()), "x_var": float(x.var()),
            "dropout_mean": float(d.mean()), "dropout_var": float(d.var()),
            "no_affine_mean": float(z.mean()), "no_affine_var": float(z.var())}


def selu_depth(depth: int = 32, width: int = 256, n: int = 512, p: float = 0.1, seeds=(0, 1, 2)) -> dict:
    """Mean and variance of the activations through a deep SELU network, with noise after
    every layer: none, torch's inverted dropout, torch's alpha dropout (training mode).

    Each layer computes selu(h W^T) with LeCun-normal weights (std 1/sqrt(width), no
    bias, the initialisation of self-normalising networks) from inputs x ~ N(0, 1).
    Returns ``{mode: {"mean": (len(seeds), depth), "var": (len(seeds), depth)}}`` measured
    after each layer's noise, pooled over units and examples.
    """
    import torch
    import torch.nn.functional as F

    out = {m: {"mean": [], "var": []} for m in ("none", "dropout", "alpha")}
    with _one_thread():
        for seed in seeds:
            g = torch.Generator().manual_seed(seed)
            Ws = [torch.randn(width, width, generator=g) / math.sqrt(width) for _ in range(depth)]
            x0 = torch.randn(n, width, generator=g)
            for mode in out:
                torch.manual_seed(10_000 + seed)     # masks: a stream apart from the weights'

                h, means, vars_ = x0, [], []
                for W in Ws:
                    h = F.selu(h @ W.T)
                    if mode == "dropout":
                        h = F.dropout(h, p, training=True)
                    elif mode == "alpha":
                        h = F.alpha_dropout(h, p, training=True)
                    means.append(float(h.mean()))
                    vars_.append(float(h.var()))
                out[mode]["mean"].append(means)
                out[mode]["var"].append(vars_)
    return {m: {k: np.array(v) for k, v in d.items()} for m, d in out.items()}


# --------------------------------------------------------------------------------------
# DropConnect: inference by weight scaling vs moment matching
# --------------------------------------------------------------------------------------

def _make_dropconnect_mlp(p, hidden):
    import torch
    import torch.nn.functional as F
    from torch import nn

    class DropConnectMLP(nn.Module):
        """64 -> hidden ReLU -> 10. While training, the first layer's weights are masked with
        ONE Bernoulli(1-p) mask per forward pass (shared by the mini-batch) and rescaled by
        1/(1-p); the bias is never masked. In eval mode the plain weights are used
        (weight scaling, in the inverted convention)."""

        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(64, hidden), nn.Linear(hidden, 10)

        def forward(self, x):
            w = self.fc1.weight
            if self.training:
                w = w * (torch.rand(w.shape) >= p) / (1 - p)
            return self.fc2(torch.relu(F.linear(x, w, self.fc1.bias)))

    return DropConnectMLP()


def dropconnect_inference(seeds=(0, 1, 2), p: float = 0.5, hidden: int = 128, epochs: int = 30,
                          lr: float = 0.05, n_masks: int = 400) -> dict:
    """Train DropConnect MLPs on the 1000 training digits, then compare three ways of
    computing the test-time hidden layer on the 400 test digits.

    * ``mc``: the average of relu(u) over ``n_masks`` weight masks (the target; its own
      sampling error is estimated from two halves of the masks, ``mc_self_err``);
    * ``weight scaling``: relu(E[u]), the mean network (what eval mode computes);
    * ``moment matching``: E[relu(u)] for u Gaussian with DropConnect's exact mean and
      variance, mean_j = W_j . v + b_j and var_j = p/(1-p) sum_i W_ji^2 v_i^2
      (Wan et al.'s inference, in closed form for the ReLU instead of by sampling).

    Returns per method the relative RMS error of the hidden layer against ``mc``
    (``hidden_err``, arrays over seeds) and the test accuracy of the predictions
    (``acc``: ``mc`` averages the softmax outputs over the masks), plus ``train_seconds``.
    """
    import torch
    import torch.nn.functional as F

    from dropout_lab.data import load_digits_split
    from dropout_lab.experiments.ch04_scaling import expected_relu_gaussian

    data = load_digits_split()
    X = torch.as_tensor(data.X_train, dtype=torch.float32)
    y = torch.as_tensor(data.y_train)
    Xt = torch.as_tensor(data.X_test, dtype=torch.float64)
    yt = data.y_test
    methods = ("mc", "weight scaling", "moment matching")
    rec = {"hidden_err": {m: [] for m in methods[1:]}, "acc": {m: [] for m in methods}, "mc_self_err": [],
           "train_seconds": []}
    with _one_thread():
        for seed in seeds:
            torch.manual_seed(seed)
            net = _make_dropconnect_mlp(p, hidden)
            opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
            t0 = time.perf_counter()
            for _ in range(epochs):
                net.train()
                perm = torch.randperm(len(y))
                for i in range(0, len(y), 50):
                    b = perm[i:i + 50]
                    loss = F.cross_entropy(net(X[b]), y[b])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            rec["train_seconds"].append(time.perf_counter() - t0)
            W = net.fc1.weight.detach().double()
            bias = net.fc1.bias.detach().double()
            W2 = net.fc2.weight.detach().double()
            b2 = net.fc2.bias.detach().double()
            with torch.no_grad():
                mc_sum, half, probs = torch.zeros(len(yt), hidden, dtype=torch.float64), None, 0.0
                for k in range(n_masks):
                    Wm = W * (torch.rand(W.shape, dtype=torch.float64) >= p) / (1 - p)
                    h = torch.relu(Xt @ Wm.T + bias)
                    mc_sum += h
                    probs = probs + torch.softmax(h @ W2.T + b2, dim=1)
                    if k == n_masks // 2 - 1:
                        half = mc_sum.clone() / (k + 1)
                mc = mc_sum / n_masks
                other_half = (mc_sum - half * (n_masks // 2)) / (n_masks - n_masks // 2)
                mean = Xt @ W.T + bias
                var = (Xt**2) @ (W**2).T * p / (1 - p)
                hidden_of = {
                    "weight scaling": torch.relu(mean),
                    "moment matching": torch.as_tensor(expected_relu_gaussian(mean.numpy(), np.sqrt(var.numpy()))),
                }

                def rel(a, ref):
                    return float((a - ref).norm() / ref.norm())

                for m, h in hidden_of.items():
                    rec["hidden_err"][m].append(rel(h, mc))
                    rec["acc"][m].append(float(((h @ W2.T + b2).argmax(1).numpy() == yt).mean()))
                rec["acc"]["mc"].append(float((probs.argmax(1).numpy() == yt).mean()))
                rec["mc_self_err"].append(rel(half, other_half) / 2)
    return {"hidden_err": {m: np.array(v) for m, v in rec["hidden_err"].items()},
            "acc": {m: np.array(v) for m, v in rec["acc"].items()},
            "mc_self_err": np.array(rec["mc_self_err"]), "train_seconds": np.array(rec["train_seconds"])}


# --------------------------------------------------------------------------------------
# DropPath / stochastic depth: the linear decay rule, row vs batch mode
# --------------------------------------------------------------------------------------

def linear_decay(n_blocks: int, p_last: float) -> np.ndarray:
    """Drop probabilities of blocks 1..n_blocks under stochastic depth's linear decay rule:
    p_l = (l / L) p_L (survival 1 - p_l falls linearly from 1 at the input to 1 - p_L)."""
    return np.arange(1, n_blocks + 1) / n_blocks * p_last


def drop_path_experiment(n_blocks: int = 12, p_last: float = 0.5, width: int = 128, batch: int = 64,
                         n_draws: int = 200, repeats: int = 9, seed: int = 0) -> dict:
    """A residual MLP on digits, x_l = x_(l-1) + g_l f_l(x_(l-1)) with f_l = Linear-ReLU-Linear,
    and DropPath with the linear decay rule in row mode (one coin per example and block) and
    batch mode (one coin per block for the whole mini-batch), inverted scaling.

    Over ``n_draws`` forward passes of one mini-batch of ``batch`` digits, returns
    ``active_row`` (n_draws, batch): per example the number of blocks kept (its mean and
    variance should be ``expected_active`` = sum of 1 - p_l and ``expected_active_var`` = sum
    of p_l (1 - p_l)); ``evaluated_row`` and ``evaluated_batch`` (n_draws,): the number of
    branches each mode actually computes per pass (row mode computes all of them and
    multiplies by the mask; batch mode skips a dropped branch); ``seconds``: median time per
    forward pass for ``none``, ``row`` and ``batch`` over ``repeats`` interleaved rounds of 10
    passes (noisy: measured on the machine that runs it) and ``seconds_all`` the rounds.
    """
    import torch
    from torch import nn

    from dropout_lab.data import load_digits_split

    data = load_digits_split()
    x = torch.as_tensor(data.X_train[:batch], dtype=torch.float32)
    probs = linear_decay(n_blocks, p_last)

    class ResidualMLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = nn.Linear(64, width)
            self.branches = nn.ModuleList(nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
                                          for _ in range(n_blocks))
            self.out = nn.Linear(width, 10)
            self.mode, self.evaluated, self.active = "none", 0, None

        def forward(self, x):
            h = torch.relu(self.inp(x))
            self.evaluated, active = 0, torch.zeros(len(x))
            for q, br in zip(probs.tolist(), self.branches):
                if self.mode == "row":            # every branch computed, then masked per example
                    coin = (torch.rand(len(x), 1) >= q).float()
                    h = h + br(h) * coin / (1 - q)
                    self.evaluated += 1
                    active += coin[:, 0]
                elif self.mode == "batch":        # one coin for the batch: a dropped branch is skipped
                    if float(torch.rand(())) >= q:
                        h = h + br(h) / (1 - q)
                        self.evaluated += 1
                        active += 1
                else:
                    h = h + br(h)
                    self.evaluated += 1
                    active += 1
            self.active = active
            return self.out(h)

    res = {"probs": probs, "expected_active": float((1 - probs).sum()),
           "expected_active_var": float((probs * (1 - probs)).sum())}
    with _one_thread():
        torch.manual_seed(seed)
        net = ResidualMLP()
        with torch.no_grad():
            for mode in ("row", "batch"):
                net.mode = mode
                act, ev = [], []
                for _ in range(n_draws):
                    net(x)
                    act.append(net.active.numpy().copy())
                    ev.append(net.evaluated)
                res[f"active_{mode}"] = np.array(act)
                res[f"evaluated_{mode}"] = np.array(ev)
            times = {m: [] for m in ("none", "row", "batch")}
            for _ in range(repeats):
                for m in times:
                    net.mode = m
                    t0 = time.perf_counter()
                    for _ in range(10):
                        net(x)
                    times[m].append((time.perf_counter() - t0) / 10)
    res["seconds"] = {m: float(np.median(v)) for m, v in times.items()}
    res["seconds_all"] = {m: np.array(v) for m, v in times.items()}
    return res


# --------------------------------------------------------------------------------------
# Multi-Sample Dropout
# --------------------------------------------------------------------------------------

def multi_sample_experiment(ks=(1, 2, 4, 8, 16), p: float = 0.5, width: int = 256, batch: int = 64,
                            n_draws: int = 60, repeats: int = 7, seed: int = 0) -> dict:
    """Multi-Sample Dropout on a digits MLP: trunk 64 -> width -> width (ReLU), then K dropout
    samples of the trunk's features sharing one linear head; the loss is the mean over the K
    samples of each sample's cross-entropy (Inoue's recipe).

    For each K: ``grad_sd`` (the spread, over ``n_draws`` mask draws, of the gradient of the
    loss with respect to the head's weights, RMS over the weights; the weights and the
    mini-batch are fixed, so only the masks vary) and ``seconds`` (median time of one
    forward + backward pass over ``repeats`` rounds of 5, measured here; noisy).
    Returns arrays over ``ks``.
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    from dropout_lab.data import load_digits_split

    data = load_digits_split()
    x = torch.as_tensor(data.X_train[:batch], dtype=torch.float32)
    y = torch.as_tensor(data.y_train[:batch])

    class MultiSampleMLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.trunk = nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU())
            self.head = nn.Linear(width, 10)
            self.k = 1

        def loss(self, x, y):
            f = self.trunk(x)
            logits = self.head(F.dropout(f.unsqueeze(0).expand(self.k, -1, -1), p, training=True))
            return F.cross_entropy(logits.reshape(-1, 10), y.repeat(self.k))

    sds, secs = [], []
    with _one_thread():
        torch.manual_seed(seed)
        net = MultiSampleMLP()
        for k in ks:
            net.k = k
            grads = []
            for _ in range(n_draws):
                net.zero_grad()
                net.loss(x, y).backward()
                grads.append(net.head.weight.grad.detach().clone().reshape(-1))
            g = torch.stack(grads)
            sds.append(float(g.std(dim=0).pow(2).mean().sqrt()))
            rounds = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                for _ in range(5):
                    net.zero_grad()
                    net.loss(x, y).backward()
                rounds.append((time.perf_counter() - t0) / 5)
            secs.append(float(np.median(rounds)))
    return {"ks": np.array(ks), "grad_sd": np.array(sds), "seconds": np.array(secs)}


# --------------------------------------------------------------------------------------
# Cost per forward pass
# --------------------------------------------------------------------------------------

def forward_costs(repeats: int = 7, inner: int = 10, seed: int = 0) -> dict:
    """Time per forward pass of each variant's noise, measured on this machine (one thread).

    Convolutional variants act on activations of shape (32, 16, 16, 16), float32, with
    p = 0.1 (DropBlock: blocks of 3; Cutout: 8 x 8 squares; DropPath: one coin per
    example), and are compared with one 3 x 3 convolution 16 -> 16 on the same tensor
    (``conv``). Dense variants act on a (32, 128) batch and are compared with
    ``nn.Linear(128, 128)`` (``linear``): DropConnect with one mask per call
    (``dropconnect_call``) and with one mask per example (``dropconnect_example``: 32 weight
    matrices and a batched matrix product); Multi-Sample Dropout with 8 samples through a
    ``Linear(128, 10)`` head (``multisample8``) against one plain pass through that head
    (``head``). Returns ``seconds`` (median over ``repeats`` interleaved rounds of ``inner``
    calls), ``spread`` (interquartile range / median) and the number of mask entries
    DropConnect draws per call in each mode.
    """
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    a = torch.randn(32, 16, 16, 16)
    conv_w = torch.randn(16, 16, 3, 3) * 0.1
    v = torch.randn(32, 128)
    W = torch.randn(128, 128) * 0.1
    bvec = torch.zeros(128)
    Wh = torch.randn(10, 128) * 0.1
    bh = torch.zeros(10)
    p, keep = 0.1, 0.9

    def block_noise(x, bs=3):
        N, C, H, Wd = x.shape
        r = bs // 2
        gamma = p * H * Wd / (bs**2 * (H - bs + 1) * (Wd - bs + 1))
        centre = torch.zeros(H, Wd, dtype=torch.bool)
        centre[r:H - r, r:Wd - r] = True
        kept = 1.0 - F.max_pool2d(((torch.rand(x.shape) < gamma) & centre).float(), bs, stride=1, padding=r)
        return x * kept * (kept.numel() / kept.sum())

    def square_holes(x, size=8):
        N, _, H, Wd = x.shape
        top, left = torch.randint(H, (N, 1, 1)) - size // 2, torch.randint(Wd, (N, 1, 1)) - size // 2
        rows, cols = torch.arange(H).reshape(1, H, 1), torch.arange(Wd).reshape(1, 1, Wd)
        inside = (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)
        return x * (~inside).unsqueeze(1)

    cases = {
        "conv": lambda: F.conv2d(a, conv_w, padding=1),
        "element": lambda: F.dropout(a, p),
        "gaussian": lambda: a * (1 + math.sqrt(p / keep) * torch.randn_like(a)),
        "alpha": lambda: F.alpha_dropout(a, p, training=True),
        "spatial": lambda: F.dropout2d(a, p),
        "dropblock": lambda: block_noise(a),
        "cutout": lambda: square_holes(a),
        "droppath": lambda: a * (torch.rand(32, 1, 1, 1) >= p) / keep,
        "linear": lambda: F.linear(v, W, bvec),
        "dropconnect_call": lambda: F.linear(v, W * (torch.rand(W.shape) >= p) / keep, bvec),
        "dropconnect_example": lambda: torch.bmm(W * (torch.rand(32, 128, 128) >= p) / keep,
                                                 v.unsqueeze(2)).squeeze(2) + bvec,
        "head": lambda: F.linear(v, Wh, bh),
        "multisample8": lambda: F.linear(F.dropout(v.unsqueeze(0).expand(8, -1, -1), p), Wh, bh),
    }
    rounds = {k: [] for k in cases}
    with _one_thread(), torch.no_grad():
        for f in cases.values():   # warm-up
            f()
        for _ in range(repeats):
            for k, f in cases.items():
                t0 = time.perf_counter()
                for _ in range(inner):
                    f()
                rounds[k].append((time.perf_counter() - t0) / inner)
    med = {k: float(np.median(v)) for k, v in rounds.items()}
    spread = {k: float((np.percentile(v, 75) - np.percentile(v, 25)) / np.median(v)) for k, v in rounds.items()}
    return {"seconds": med, "spread": spread, "dropconnect_example_mask_entries": 32 * 128 * 128,
            "dropconnect_call_mask_entries": 128 * 128}
