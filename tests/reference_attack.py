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


def reference_jsma(model, x, target, *, theta, gamma, clip_min, clip_max, saliency="pair",
                   jacobian="logits", domain_rule="used", start_domain="unsaturated"):
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
