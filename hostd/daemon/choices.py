"""The [[profile_list]] choices one user may take, as the daemon answers them (host layer).

GET /v1/accounts/{user}/profiles: the choices visible to the user's Unix groups, each with
the limits a start with it gets (the user's policy, the admin's per-user profile, then the
choice), so the hub and the spawner show what a start will really get. Starts enforce the
same rules (hostd.daemon.starter): this is a view, never the check.
"""

from __future__ import annotations

from hostd.config import Config
from hostd.config.profile_list import apply_choice
from hostd.daemon.starter import policy_for
from hostd.units.choices import ProfileView

__all__ = ["profile_views"]


def profile_views(config: Config, name: str, groups: tuple[str, ...]) -> list[ProfileView]:
    """The choices ``name`` (in ``groups``) may take, in the admin's order; [] when none."""
    choices = config.profile_list
    default = choices.choose(None, groups)
    policy, _label = policy_for(config, name, groups, None)
    views = []
    for choice in choices.visible(groups):
        resolved = apply_choice(policy, choice, config.commands)
        views.append(
            ProfileView(
                slug=choice.slug,
                display_name=choice.display_name,
                description=choice.description,
                default=choice is default,
                mem_limit_bytes=resolved.mem_limit,
                cpu_limit=resolved.cpu_limit,
                gpus=choice.gpus,
            )
        )
    return views
