"""The `reload:` section (RoadRunner's reload plugin, roadrunner-server/reload:config.go):

    reload:
      interval: 1s            # collect a burst of changes this long, then reset once
      patterns: [".php"]      # for every plugin below, added to its own patterns
      services:
        http:
          dirs: ["."]
          recursive: true
          ignore: ["vendor"]
          patterns: [".twig"]

As in RoadRunner: a pattern matches when the file's name contains it (".php"
matches "a.php"), `dirs` and `ignore` are relative to the working directory,
an ignored directory hides everything under it, `recursive` defaults to false.
fastrr adds: a pattern with `*`, `?` or `[` is a shell glob on the file name;
`dirs` defaults to ["."] (RoadRunner then watches nothing); an interval below
1s is allowed (RoadRunner refuses it: it polls, fastrr is told by the kernel);
`plugins:` is accepted for `services:` (the Go field's name).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from fastrr.config.schema import ConfigContext
from fastrr.config.section import Section
from fastrr.config.units import ConfigError, parse_bool, parse_duration, parse_str_list

DEFAULT_INTERVAL = 1.0
DEFAULT_PATTERNS = [".php"]
# RoadRunner plugins that run workers and that fastrr does not have yet: a reload entry for
# one of them is a warning (the config still works on RoadRunner), any other unknown name an error.
RR_WORKER_PLUGINS = {"grpc", "temporal", "tcp", "centrifuge", "service", "jobs", "http"}


@dataclass
class WatchConfig:
    """One `reload.services.<plugin>` entry, paths made absolute."""

    plugin: str
    key: str  # "reload.services.http", for messages
    dirs: list[str]
    recursive: bool = False
    ignore: list[str] = field(default_factory=list)
    patterns: list[str] = field(default_factory=list)

    def wants(self, path: str) -> bool:
        """Does a change of `path` reset this plugin's workers?"""
        for ignored in self.ignore:
            if path == ignored or path.startswith(ignored + os.sep):
                return False
        name = os.path.basename(path)
        return any(fnmatchcase(name, p) if _is_glob(p) else p in name for p in self.patterns)


@dataclass
class ReloadConfig:
    interval: float = DEFAULT_INTERVAL
    patterns: list[str] = field(default_factory=lambda: list(DEFAULT_PATTERNS))
    watches: dict[str, WatchConfig] = field(default_factory=dict)


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def _known_plugins() -> dict[str, Any]:
    from fastrr.plugins import PLUGINS  # (imported late: fastrr.plugins imports this plugin)

    return {cls.name: cls for cls in PLUGINS if cls.name != "reload"}


def parse_reload(section: Section, ctx: ConfigContext) -> ReloadConfig:
    interval = section.get("interval", parse_duration, DEFAULT_INTERVAL)
    cfg = ReloadConfig(interval=interval or DEFAULT_INTERVAL,  # 0 means unset, as in RoadRunner
                       patterns=section.get("patterns", parse_str_list, list(DEFAULT_PATTERNS)))
    if "services" in section.raw and "plugins" in section.raw:
        raise ConfigError(section.key("plugins"), "give the plugins to reload once, under services (RoadRunner's key)")
    name = "plugins" if "plugins" in section.raw else "services"
    if section.raw.get(name) is None:
        raise ConfigError(section.key("services"), 'required key is missing: the plugins whose workers a change '
                                                   'resets, e.g. {http: {dirs: ["."], recursive: true}}')
    services = section.sub(name)
    if not services.raw:
        raise ConfigError(services.path, "expected at least one plugin, e.g. http")
    known = _known_plugins()
    for plugin in services.raw:
        plugin = str(plugin)
        entry = services.sub(plugin)
        if plugin not in known and plugin not in RR_WORKER_PLUGINS:
            raise ConfigError(entry.path, f"unknown plugin {plugin!r}: expected one of "
                                          f"{', '.join(sorted(set(known) | RR_WORKER_PLUGINS))}")
        cfg.watches[plugin] = _parse_watch(plugin, entry, cfg.patterns)
        if plugin not in known:
            section.warnings.append(f"{entry.path}: fastrr has no {plugin} plugin yet, nothing to reload")
        elif not known[plugin].enabled(ctx.raw):
            section.warnings.append(f"{entry.path}: the {plugin} plugin is not running (no {plugin} section), "
                                    "nothing to reload")
    section.finish()
    return cfg


def _parse_watch(plugin: str, entry: Section, global_patterns: list[str]) -> WatchConfig:
    dirs = entry.get("dirs", parse_str_list, ["."])
    if not dirs:
        raise ConfigError(entry.key("dirs"), 'expected at least one directory, e.g. ["."]')
    # Global patterns first, then the plugin's own (RoadRunner appends them the other way round;
    # matching is "any of", so the order only shows in messages).
    patterns = global_patterns + [p for p in entry.get("patterns", parse_str_list, []) if p not in global_patterns]
    if not patterns:
        raise ConfigError(entry.key("patterns"), "no file patterns here or in reload.patterns: "
                                                 'no change would ever reload, e.g. [".php"]')
    watch = WatchConfig(plugin=plugin, key=entry.path, dirs=[os.path.abspath(d) for d in dirs],
                        recursive=entry.get("recursive", parse_bool, False),
                        ignore=[os.path.abspath(p) for p in entry.get("ignore", parse_str_list, [])],
                        patterns=patterns)
    entry.finish()
    return watch
