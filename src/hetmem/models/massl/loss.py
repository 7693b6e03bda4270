"""The MaSSL loss: views must agree on how they relate to blocks of a memory of past views."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["MaSSLLossStats", "massl_loss"]


class MaSSLLossStats(NamedTuple):
    """Collapse monitors of one loss evaluation (detached tensors, no host sync).

    - teacher_entropy: mean entropy of the teacher's distribution over a block, in nats;
      at most log(Nb); near 0 means one-hot targets.
    - student_entropy: the same for the student.
    - distinct_rows: number of distinct memory rows that win the teacher's argmax in some
      block, over all teacher views and samples; 1 (or a handful) means collapse.
    """

    teacher_entropy: Tensor
    student_entropy: Tensor
    distinct_rows: Tensor


def massl_loss(
    student: Tensor,
    teacher: Tensor,
    memory: Tensor,
    blocks: Tensor,
    *,
    student_temp: float = 0.1,
    teacher_temp: float = 0.07,
) -> tuple[Tensor, MaSSLLossStats]:
    """Cross-entropy between teacher and student similarity distributions over memory blocks.

    For student view i, teacher view j, sample b and block n with memory rows m_k:

    .. math::
        p^{(i)}_{bnk} = \\mathrm{softmax}_k(s^{(i)}_b \\cdot m_k / \\tau_s), \\quad
        q^{(j)}_{bnk} = \\mathrm{softmax}_k(t^{(j)}_b \\cdot m_k / \\tau_t)

        L = \\frac{1}{|P|} \\sum_{(i, j) \\in P} \\frac{1}{B N} \\sum_{b, n} H(q^{(j)}_{bn}, p^{(i)}_{bn}),
        \\quad P = \\{(i, j) : i \\ne j\\}

    Student view i and teacher view j are the same crop when i == j (the first views of
    the student are the teacher's global views), so those pairs are skipped. The teacher
    side carries no gradient. Blocks are handled in one batched product, not a loop.

    Args:
        student: L2-normalised student embeddings of all views (globals first).
        teacher: L2-normalised teacher embeddings of the global views.
        memory: the memory snapshot the step is scored against (detached).
        blocks: memory row indices of each block (see ``sample_memory_blocks``).
        student_temp: tau_s (0.1 in MaSSL).
        teacher_temp: tau_t (warmed up from 0.04 to 0.07 in MaSSL).

    Shapes:
        - student: (Vs, B, D); teacher: (Vt, B, D) with Vt <= Vs; memory: (K, D);
          blocks: (N, Nb) int64 with values in [0, K).
        - returns a scalar loss and ``MaSSLLossStats`` of scalars.

    Example:
        >>> s = torch.nn.functional.normalize(torch.randn(4, 3, 8), dim=-1)
        >>> t = torch.nn.functional.normalize(torch.randn(2, 3, 8), dim=-1)
        >>> mem = torch.nn.functional.normalize(torch.randn(12, 8), dim=-1)
        >>> loss, stats = massl_loss(s, t, mem, torch.arange(12).view(3, 4))
        >>> loss.shape, bool(stats.teacher_entropy <= torch.log(torch.tensor(4.0)))
        (torch.Size([]), True)
    """
    if student.dim() != 3 or teacher.dim() != 3 or memory.dim() != 2 or blocks.dim() != 2:
        raise ValueError(
            "massl_loss: expected student (Vs, B, D), teacher (Vt, B, D), memory (K, D), blocks (N, Nb); got "
            f"{tuple(student.shape)}, {tuple(teacher.shape)}, {tuple(memory.shape)}, {tuple(blocks.shape)}"
        )
    Vs, B, D = student.shape
    Vt = teacher.shape[0]
    N, Nb = blocks.shape
    if teacher.shape[1:] != (B, D) or memory.shape[1] != D:
        raise ValueError(
            f"massl_loss: batch and width must agree: student {tuple(student.shape)}, "
            f"teacher {tuple(teacher.shape)}, memory {tuple(memory.shape)}"
        )
    if Vt > Vs or Vs * Vt - Vt < 1:
        raise ValueError(f"massl_loss: need 1 <= Vt <= Vs and at least one pair i != j, got Vs={Vs}, Vt={Vt}")
    if student_temp <= 0 or teacher_temp <= 0:
        raise ValueError(f"massl_loss: temperatures must be > 0, got {student_temp}, {teacher_temp}")

    rows = memory.detach()[blocks.reshape(-1)]  # (N*Nb, D) memory rows in block order
    s_logits = (student.reshape(Vs * B, D) @ rows.T).view(Vs, B, N, Nb) / student_temp
    with torch.no_grad():
        t_logits = (teacher.detach().reshape(Vt * B, D) @ rows.T).view(Vt, B, N, Nb) / teacher_temp
        log_q = torch.log_softmax(t_logits, dim=-1)  # (Vt, B, N, Nb)
        q = log_q.exp()
    log_p = torch.log_softmax(s_logits, dim=-1)  # (Vs, B, N, Nb)

    # cross[i, j] = mean over (b, n) of H(q_j, p_i): one (Vs, B*N*Nb) x (B*N*Nb, Vt) product
    cross = -torch.einsum("ibnk,jbnk->ij", log_p, q) / (B * N)  # (Vs, Vt)
    pair = torch.ones(Vs, Vt, dtype=torch.bool, device=cross.device)
    pair[torch.arange(Vt), torch.arange(Vt)] = False  # student view j is teacher view j's crop
    loss = cross[pair].sum() / (Vs * Vt - Vt)

    with torch.no_grad():
        teacher_entropy = -(q * log_q).sum(-1).mean()
        student_entropy = -(log_p.exp() * log_p).sum(-1).mean()
        winners = blocks[torch.arange(N, device=blocks.device), q.argmax(-1)]  # (Vt, B, N) memory row ids
        hit = torch.zeros(memory.shape[0], dtype=torch.bool, device=memory.device)
        hit[winners.reshape(-1)] = True
        distinct_rows = hit.sum()
    return loss, MaSSLLossStats(teacher_entropy, student_entropy, distinct_rows)
