"""What every endpoint handler receives."""

from __future__ import annotations

from dataclasses import dataclass, field

from .forms import get_list
from .state import State, paginate


@dataclass
class Ctx:
    state: State
    params: dict
    base_url: str  # this server's public address, for hosted page URLs
    path: str = ""
    args: dict = field(default_factory=dict)

    @property
    def expand(self) -> list[str]:
        return [str(p) for p in get_list(self.params, "expand")]

    def render(self, obj: dict) -> dict:
        return self.state.render(obj, self.expand)

    def page(self, objects: list[dict]) -> dict:
        list_expand = [p[len("data.") :] for p in self.expand if p.startswith("data.")]
        return paginate(
            objects, self.params, self.path, lambda o: self.state.render(o, list_expand)
        )
