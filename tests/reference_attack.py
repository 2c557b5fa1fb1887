"""A naive JSMA written from the paper's pseudocode (Algorithms 2 and 3) for clarity: one
sample at a time, the full Jacobian from N backward passes, the saliency map as an explicit
M x M matrix. Shares no code with jsma_fast."""

from __future__ import annotations

import math

import numpy as np
import torch
from reference import pair_scores, saliency_map


def full_jacobian(model, x: torch.Tensor, sample_shape, jacobian: str):
    """Logits (N,) and the Jacobian dF/dx (N, M) of one flat sample x (M,)."""

    def outputs(flat):
        logits = model(flat.view(sample_shape).unsqueeze(0))[0]
        return logits if jacobian == "logits" else torch.softmax(logits, dim=0)

    x_var = x.detach().clone().requires_grad_(True)
    f = outputs(x_var)
    rows = []
    for j in range(f.shape[0]):
        (g,) = torch.autograd.grad(f[j], x_var, retain_graph=True)
        rows.append(g)
    logits = model(x.detach().view(sample_shape).unsqueeze(0))[0]
    return logits.detach(), torch.stack(rows)


def reference_jsma(
    model,
    x,
    target,
    *,
    theta,
    gamma,
    clip_min,
    clip_max,
    saliency="pair",
    jacobian="logits",
    domain_rule="used",
    start_domain="unsaturated",
):
    """Attacks one sample x (any shape). Returns (x_adv, success, iterations, reason)."""
    sample_shape = x.shape
    x_adv = x.detach().reshape(-1).clone()
    m = x_adv.numel()
    increase = theta > 0
    bound = clip_max if increase else clip_min
    if start_domain == "all":
        domain = np.ones(m, dtype=bool)
    else:
        values = x_adv.numpy()
        domain = values < bound if increase else values > bound
    per_step = 2 if saliency == "pair" else 1
    max_iter = math.floor(m * gamma / per_step)
    mode = "increase" if increase else "decrease"
    iterations = 0
    while True:
        logits, jac = full_jacobian(model, x_adv, sample_shape, jacobian)
        if int(torch.argmax(logits)) == target:
            return x_adv.view(sample_shape), True, iterations, "success"
        if iterations >= max_iter:
            return x_adv.view(sample_shape), False, iterations, "budget"
        if domain.sum() < per_step:
            return x_adv.view(sample_shape), False, iterations, "empty_domain"
        alpha = jac[target].numpy().astype(np.float32)
        beta = sum(jac[j] for j in range(jac.shape[0]) if j != target).numpy().astype(np.float32)
        if saliency == "pair":
            scores = pair_scores(alpha, beta, domain, mode)
            best = int(np.argmax(scores))
            if scores.flat[best] <= 0:
                return x_adv.view(sample_shape), False, iterations, "no_valid_pair"
            chosen = list(divmod(best, m))
        else:
            smap = saliency_map(alpha[None], beta[None], domain[None], mode)[0]
            best = int(np.argmax(smap))
            if smap[best] <= 0:
                return x_adv.view(sample_shape), False, iterations, "no_valid_pair"
            chosen = [best]
        with torch.no_grad():
            for i in chosen:
                # x + theta in the input's float32, then clipped
                changed = np.float32(x_adv[i].item()) + np.float32(theta)
                x_adv[i] = float(np.clip(changed, np.float32(clip_min), np.float32(clip_max)))
                if domain_rule == "used":
                    domain[i] = False
                else:
                    value = float(x_adv[i])
                    domain[i] = value < bound if increase else value > bound
        iterations += 1


# ----------------------------------------------------------------------------- the variants


def _softmax(logits: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits, dim=0)


def _best_pair(alpha, beta, domain, mode):
    """(score, p, q) of the best pair of the map by the explicit M x M matrix; score <= 0
    when none qualifies."""
    m = alpha.shape[0]
    scores = pair_scores(alpha, beta, domain, mode)
    best = int(np.argmax(scores))
    return scores.flat[best], best // m, best % m


def _best_feature(alpha, beta, domain, mode):
    smap = saliency_map(alpha[None], beta[None], domain[None], mode)[0]
    best = int(np.argmax(smap))
    return smap[best], best


def _top2(alpha, domain, mode):
    """The two usable features with the largest alpha (decrease: smallest), by sorting."""
    sign = 1.0 if mode == "increase" else -1.0
    usable = [i for i in range(alpha.shape[0]) if domain[i] and not np.isnan(alpha[i])]
    ranked = sorted(usable, key=lambda i: (-sign * float(alpha[i]), i))
    return ranked[:2]


def _class_derivatives(jac, probabilities, c, variant, jacobian):
    """alpha and beta (float64 or float32 in the Jacobian's dtype) of class c, from the full
    Jacobian (C, M), summing the rows one by one."""
    alpha = jac[c]
    others = [j for j in range(jac.shape[0]) if j != c]
    if variant in ("wjsma", "tjsma"):
        beta = sum(probabilities[j] * jac[j] for j in others)
    elif jacobian == "probs":
        beta = None  # -alpha exactly, formed after the cast
    else:
        beta = sum(jac[j] for j in others)
    return alpha, beta


def reference_variant(
    model,
    x,
    target,
    true_class,
    *,
    variant,
    theta,
    gamma,
    clip_min,
    clip_max,
    saliency="pair",
    jacobian=None,
    domain_rule="used",
    start_domain="unsaturated",
    budget_rule="steps",
    theta_units="range",
    mask=None,
):
    """Attacks one sample x (any shape) with any variant; ``target=None`` is non-targeted.
    ``jacobian=None``: the probabilities for JSMA-F, else the logits. clip_min and clip_max
    are numbers or arrays broadcastable to x's shape; ``theta_units="range"``: theta is a
    fraction of each feature's range and the map reads the derivatives per unit of range;
    ``mask``: bool, broadcastable to x's shape, the features that may change.
    Returns (x_adv, success, iterations, reason)."""
    if jacobian is None:
        jacobian = "probs" if variant == "jsma_f" else "logits"
    sample_shape = x.shape
    x_adv = x.detach().reshape(-1).clone()
    m = x_adv.numel()
    # Per-feature bounds, one value per feature, in the input's dtype.
    lo64 = np.broadcast_to(np.asarray(clip_min, dtype=np.float64), tuple(sample_shape)).ravel()
    hi64 = np.broadcast_to(np.asarray(clip_max, dtype=np.float64), tuple(sample_shape)).ravel()
    clip_min = torch.tensor(lo64, dtype=x.dtype)
    clip_max = torch.tensor(hi64, dtype=x.dtype)
    relative = theta_units == "range"
    step = torch.tensor(
        abs(theta) * (hi64 - lo64) if relative else np.full(m, abs(theta)), dtype=x.dtype
    )
    unit = torch.tensor(hi64 - lo64 if relative else np.ones(m), dtype=x.dtype)
    targeted = target is not None
    up = theta > 0
    per_step = 2 if saliency == "pair" else 1
    max_iter = math.floor(m * gamma / per_step)
    if variant == "maximal" or start_domain == "all":
        domain = np.ones(m, dtype=bool)
    else:
        domain = (x_adv < clip_max).numpy() if up else (x_adv > clip_min).numpy()
    if mask is not None:
        domain &= np.broadcast_to(np.asarray(mask, dtype=bool), tuple(sample_shape)).ravel()
    used = np.zeros(m, dtype=bool)
    # The map's conditions: the direction of theta, or its opposite for a non-targeted attack.
    mode = "increase" if up == targeted else "decrease"
    iterations = 0
    while True:
        logits, jac = full_jacobian(model, x_adv, sample_shape, jacobian)
        predicted = int(torch.argmax(logits))
        if (predicted == target) if targeted else (predicted != true_class):
            return x_adv.view(sample_shape), True, iterations, "success"
        if budget_rule == "steps" and iterations >= max_iter:
            return x_adv.view(sample_shape), False, iterations, "budget"
        if budget_rule == "features" and used.sum() / m > gamma:
            return x_adv.view(sample_shape), False, iterations, "budget"
        if domain.sum() < per_step:
            return x_adv.view(sample_shape), False, iterations, "empty_domain"
        probabilities = _softmax(logits.to(jac.dtype))
        movable_up, movable_down = (x_adv < clip_max).numpy(), (x_adv > clip_min).numpy()
        moves = []  # (score, features, direction) of each search, in the kernels' order
        if variant == "maximal":
            classes = [target] if targeted else list(range(jac.shape[0]))
            for c in classes:
                alpha, beta = _class_derivatives(jac, probabilities, c, variant, jacobian)
                alpha, beta = alpha * unit, None if beta is None else beta * unit
                alpha = alpha.numpy().astype(np.float32)
                beta = -alpha if beta is None else beta.numpy().astype(np.float32)
                for pattern, sign in (("increase", 1), ("decrease", -1)):
                    direction = -sign if (not targeted and c == true_class) else sign
                    movable = domain & (movable_up if direction > 0 else movable_down)
                    if saliency == "pair":
                        score, p, q = _best_pair(alpha, beta, movable, pattern)
                        moves.append((score, [p, q], direction))
                    else:
                        score, i = _best_feature(alpha, beta, movable, pattern)
                        moves.append((score, [i], direction))
        else:
            c = target if targeted else true_class
            alpha, beta = _class_derivatives(jac, probabilities, c, variant, jacobian)
            alpha, beta = alpha * unit, None if beta is None else beta * unit
            if variant == "tjsma":  # the distance to the bound, in units of the step
                distance = ((clip_max - x_adv) if up else (x_adv - clip_min)) / unit
                alpha, beta = distance * alpha, distance * beta
            alpha = alpha.numpy().astype(np.float32)
            beta = -alpha if beta is None else beta.numpy().astype(np.float32)
            direction = 1 if up else -1
            if variant == "top2":
                chosen = _top2(alpha, domain, mode)
                moves.append((1.0 if len(chosen) == 2 else 0.0, chosen, direction))
            elif saliency == "pair":
                score, p, q = _best_pair(alpha, beta, domain, mode)
                moves.append((score, [p, q], direction))
            else:
                score, i = _best_feature(alpha, beta, domain, mode)
                moves.append((score, [i], direction))
        best = max(range(len(moves)), key=lambda s: (moves[s][0], -s))  # earliest of equals
        score, chosen, direction = moves[best]
        if not score > 0:
            return x_adv.view(sample_shape), False, iterations, "no_valid_pair"
        with torch.no_grad():
            for i in chosen:
                if relative and abs(theta) >= 1:  # a whole range: onto the bound
                    x_adv[i] = clip_max[i] if direction > 0 else clip_min[i]
                else:
                    changed = x_adv[i] + direction * step[i]
                    x_adv[i] = changed.clamp(clip_min[i], clip_max[i])
                used[i] = True
                if domain_rule == "used":
                    domain[i] = False
                else:
                    value = x_adv[i]
                    domain[i] = bool(value < clip_max[i] if direction > 0 else value > clip_min[i])
        iterations += 1
