"""The Lua scripts (``lua/*.lua``), loaded once and called by SHA.

Each script is ``lib.lua`` (key names, helpers) followed by its own file,
under a ``#!lua`` shebang: Redis then refuses a writing script as a whole
when it is out of memory, instead of failing at its first write.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any

import coredis
from coredis.exceptions import NoScriptError


def _source(name: str) -> str:
    return (resources.files(__package__) / "lua" / name).read_text(encoding="utf-8")


class LuaScript:
    """One script: its source and SHA1; :meth:`call` runs it by SHA, loading it on NOSCRIPT."""

    def __init__(self, name: str, *, writes: bool = True) -> None:
        shebang = "#!lua" if writes else "#!lua flags=no-writes"
        self.name = name
        self.source = f"{shebang}\n{_source('lib.lua')}\n{_source(name)}"
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()

    async def load(self, client: coredis.Redis[str]) -> None:
        """Put the script in Redis's script cache. A checkpoint."""
        await client.script_load(self.source)

    async def call(self, client: coredis.Redis[str], args: list[str]) -> Any:
        """Run it with ``args`` (its ``ARGV``); Redis's answer. A checkpoint.

        After a Redis restart the script cache is empty: the first call gets
        NOSCRIPT, loads the script and runs it again.
        """
        try:
            return await client.evalsha(self.sha, [], args)
        except NoScriptError:
            await self.load(client)
            return await client.evalsha(self.sha, [], args)


COMMIT = LuaScript("commit.lua")
EXPIRE = LuaScript("expire.lua")
DELETE = LuaScript("delete.lua")
LIST = LuaScript("list.lua", writes=False)
CLAIM = LuaScript("claim.lua")
CANCEL = LuaScript("cancel.lua")
HAND_BACK = LuaScript("handback.lua")
HEARTBEAT = LuaScript("heartbeat.lua")
DEAD = LuaScript("dead.lua", writes=False)
REAP = LuaScript("reap.lua")
ALL_SCRIPTS = (COMMIT, EXPIRE, DELETE, LIST, CLAIM, CANCEL, HAND_BACK, HEARTBEAT, DEAD, REAP)
