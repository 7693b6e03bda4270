"""Rich features (thesis ch. 2): methods that build representations richer than one ERM run.

- :mod:`.members`: M copies of IRM's MLP trained at once (one per seed or per Cat member);
- :mod:`.bonsai`: Bonsai / RFC (discovery rounds, synthesis, downstream init or frozen).

The objectives these are evaluated with live next to the training loop,
:mod:`hetmem.train.env_objectives` and :mod:`hetmem.train.fullbatch`.
"""

from hetmem.models.rich.bonsai import Bonsai, BonsaiConfig, discover_and_synthesize
from hetmem.models.rich.members import MemberHead, MemberMLP

__all__ = ["Bonsai", "BonsaiConfig", "MemberHead", "MemberMLP", "discover_and_synthesize"]
