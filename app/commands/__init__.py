"""Operator commands of the ``claude-code-proxy`` CLI besides ``serve``: ``check-config``, ``users``,
``keys``, ``admin``, ``usage``. Each module defines click commands that call the same services as the
admin API (app/admin/service.py, app/store/*, app/usage/query.py) through :mod:`app.commands.runtime`.
"""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    """Add every operator command to the CLI group (called once from app/cli.py)."""
    from app.commands import admin, config, keys, usage, users

    group.add_command(config.check_config)
    group.add_command(users.users)
    group.add_command(keys.keys)
    group.add_command(admin.admin)
    group.add_command(usage.usage)
