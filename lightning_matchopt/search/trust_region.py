"""A trust region for the search: how far a design may move from its start (pure functions of tensors).

``search.max_distance`` (vectors) keeps each design within an L2 ball around its start, in z-scored
units; ``search.max_edits`` (token designs) lets at most k positions decode to another token than
the start's, as LaMBO-2's edit budget does. The ascent projects its designs after every step, so
every intermediate design and the final one lie inside the region.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from lightning_matchopt.errors import ConfigError

Project = Callable[[torch.Tensor], torch.Tensor]


def within_distance(x: torch.Tensor, start: torch.Tensor, max_distance: float) -> torch.Tensor:
    """Each row of ``x`` projected onto the L2 ball of radius ``max_distance`` around its row of ``start``.

    A row inside the ball is returned as it is (bit for bit); one outside goes to the sphere along
    the same direction from its start, the nearest point of the ball.
    """
    start = start.to(x)
    step = x - start
    norm = step.norm(dim=1, keepdim=True)
    return torch.where(norm > max_distance, start + step * (max_distance / norm), x)


def position_logits(x: torch.Tensor, denormalize: Project, num_classes: int) -> torch.Tensor:
    """The raw logits of each position, ``(designs, positions, num_classes)``, with class 0's zero prepended.

    ``denormalize``: z-scored designs to raw features, applied to ``x`` in float64 as the written
    designs are (``datamodule.denormalize_x(x.double())``), so the argmax here is ``to_tokens``'s.
    """
    raw = denormalize(x.double()).reshape(len(x), -1, num_classes - 1)
    return torch.cat([raw.new_zeros(raw.shape[:-1] + (1,)), raw], dim=-1)


def within_edits(
    x: torch.Tensor, start: torch.Tensor, max_edits: int, denormalize: Project, num_classes: int,
    start_tokens: torch.Tensor | None = None,
) -> torch.Tensor:
    """Token designs ``x`` (z-scored logits) with at most ``max_edits`` positions decoding unlike ``start``'s.

    Where more positions decode to a token other than the start's, the ``max_edits`` that moved
    most are kept and the others get the start's features back (so they decode to the start's
    token). A position's move is the margin by which its new token's logit beats the start
    token's: the edits the ascent is surest of stay, and those it would undo with the least push
    go. Equal margins keep the earlier position. Designs within the budget are returned as they are.
    ``start_tokens``: the start's tokens, when known (the search decodes them once, not every step).
    """
    start = start.to(x)
    logits = position_logits(x, denormalize, num_classes)
    if start_tokens is None:
        start_tokens = position_logits(start, denormalize, num_classes).argmax(-1)
    changed = logits.argmax(-1) != start_tokens
    margin = logits.max(-1).values - logits.gather(-1, start_tokens[..., None]).squeeze(-1)
    margin = torch.where(changed, margin, torch.tensor(float("-inf"), dtype=margin.dtype, device=margin.device))
    order = torch.sort(margin, dim=1, descending=True, stable=True).indices
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
    reset = (changed & (rank >= max_edits))[..., None]
    shape = (len(x), changed.shape[1], num_classes - 1)
    return torch.where(reset, start.reshape(shape), x.reshape(shape)).reshape(x.shape)


def check_region(max_edits: int | None, max_distance: float | None, discrete: bool) -> None:
    """Raise :class:`~lightning_matchopt.errors.ConfigError` for a bound the task's designs cannot have."""
    if max_edits is not None and not discrete:
        raise ConfigError("search.max_edits bounds token designs; this task's designs are vectors: use search.max_distance")
    if max_distance is not None and discrete:
        raise ConfigError("search.max_distance bounds vector designs; this task's designs are tokens: use search.max_edits")


def trust_region(
    start: torch.Tensor, max_edits: int | None, max_distance: float | None, num_classes: int | None, denormalize: Project
) -> Project | None:
    """The projection onto the region around ``start`` (z-scored designs), or None where neither bound is set.

    ``num_classes``: the task's (None for vectors); ``denormalize``: z-scored designs to raw features.
    """
    check_region(max_edits, max_distance, num_classes is not None)
    if max_edits is not None:
        tokens = position_logits(start, denormalize, num_classes).argmax(-1)
        return lambda x: within_edits(x, start, max_edits, denormalize, num_classes, tokens.to(x.device))
    if max_distance is not None:
        return lambda x: within_distance(x, start, max_distance)
    return None
