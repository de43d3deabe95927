"""YAML loading that remembers where every value came from.

Config errors must name file, line and key; PyYAML's node tree has the marks, so we
build plain Python values from nodes and keep a map from key paths to line numbers.
``${ENV}`` references in string scalars are expanded here, where the line is known.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from monitor.errors import ConfigError

KeyPath = tuple[str | int, ...]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class LocatedYaml:
    """A loaded YAML document plus the line of each key path (1-based)."""

    file: str
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    # A folded block scalar (``key: >-`` and lines) as its lines are in the file: the
    # value with each space that folding made of a line break a line break again, and
    # the breaks it dropped before blank lines back. See ``_unfolded``.
    unfolded: dict[KeyPath, str] = field(default_factory=dict)

    def line_of(self, path: KeyPath) -> int | None:
        """The line of the longest prefix of ``path`` that we know."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None

    def error(self, message: str, path: KeyPath = ()) -> ConfigError:
        """A ConfigError located at ``path``."""
        return ConfigError(message, file=self.file, line=self.line_of(path))


# LibYAML's composer when PyYAML was built with it (the wheels are): the same nodes and
# marks, several times faster than the pure-Python one on a config of a thousand sources.
_COMPOSER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(path: Path, env: Mapping[str, str] | None = None) -> LocatedYaml:
    """Read and parse ``path``; syntax errors become ConfigErrors with the line."""
    env = os.environ if env is None else env
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=str(path)) from exc
    except UnicodeDecodeError as exc:
        line = exc.object.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"cannot read: not UTF-8 text ({exc.reason} at byte {exc.start})",
            file=str(path),
            line=line,
        ) from exc
    return parse_yaml(text, str(path), env)


def parse_yaml(text: str, file: str, env: Mapping[str, str]) -> LocatedYaml:
    """Parse YAML text that came from ``file``."""
    try:
        node = yaml.compose(text, Loader=_COMPOSER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"invalid YAML: {problem}", file=file, line=line) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=file) from exc
    located = LocatedYaml(file=file, data=None)
    if node is not None:
        located.data = _Builder(located, env, text).build(node, ())
    return located


class _Builder:
    """Python values from composed nodes, noting each key's line on the way.

    Whatever a node cannot become (an unknown ``!tag``, ``!!int seven``, a list as a key,
    an alias inside the very node it names) is a ConfigError at its line: anything else
    would escape as a traceback, and on a reload would stop the daemon.
    """

    def __init__(self, out: LocatedYaml, env: Mapping[str, str], text: str = "") -> None:
        self.out = out
        self.env = env
        self.text = text
        self._lines: list[str] | None = None  # the text's lines, split once if needed
        self.constructor = yaml.SafeLoader("")  # one for the whole document
        self.building: set[int] = set()  # ids of the collections being built (aliases)

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        if not isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            return self._scalar(node, path)
        if id(node) in self.building:  # where it is used; the node's mark is its anchor's
            raise self.out.error(f"{dotted(path)}: an alias refers to itself", path)
        self.building.add(id(node))
        try:
            return self._collection(node, path)
        finally:
            self.building.discard(id(node))

    def _collection(self, node: yaml.MappingNode | yaml.SequenceNode, path: KeyPath) -> Any:
        out = self.out
        out.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise self._error(key_node, "YAML merge keys (<<) are not supported")
                if not isinstance(key_node, yaml.ScalarNode):
                    raise self._error(key_node, f"{dotted(path)}: a key must be a plain value")
                key = self._construct(key_node, path)
                if key in result:
                    raise self._error(key_node, f"duplicate key {key!r}")
                child = (*path, key)
                out.lines[child] = key_node.start_mark.line + 1
                result[key] = self.build(value_node, child)
            return result
        return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]

    def _scalar(self, node: yaml.Node, path: KeyPath) -> Any:
        self.out.lines.setdefault(path, node.start_mark.line + 1)
        value = self._construct(node, path)
        if isinstance(value, str) and "${" in value:
            return _expand_env(value, self.env, self.out, path)
        if isinstance(value, str) and getattr(node, "style", None) == ">":
            if self._lines is None:
                self._lines = self.text.splitlines()
            unfolded = _unfolded(value, node, self._lines)
            if unfolded is not None:
                self.out.unfolded[path] = unfolded
        return value

    def _construct(self, node: yaml.Node, path: KeyPath) -> Any:
        """The Python value of a scalar node, or a ConfigError at its line."""
        try:
            return self.constructor.construct_object(node)
        except yaml.MarkedYAMLError as exc:
            problem = exc.problem or exc.context or "cannot be read"
            raise self._error(node, f"{dotted(path)}: invalid YAML: {problem}") from None
        except (ValueError, TypeError):
            # The value's own text is not repeated: it may be an expanded secret.
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise self._error(node, f"{dotted(path)}: not a valid {tag}") from None

    def _error(self, node: yaml.Node, message: str) -> ConfigError:
        return ConfigError(message, file=self.out.file, line=node.start_mark.line + 1)


def _expand_env(value: str, env: Mapping[str, str], out: LocatedYaml, path: KeyPath) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise out.error(f"{dotted(path)}: environment variable {name} is not set", path)

    return _ENV_REF.sub(replace, value)


def _unfolded(value: str, node: yaml.Node, text: list[str]) -> str | None:
    """A folded block scalar's ``value`` with its lines as the file has them, or None.

    Folding made one space of each line break between two lines of text, and dropped the
    break before a blank line; the text gives the file's lines back, so that a column of
    the value (see ``unfolded_column``) is on the line of the file that holds it. None
    when the text rebuilt so does not fold back to ``value`` character by character."""
    first = node.start_mark.line + 1  # the line after the ``>`` indicator
    lines = text[first : node.end_mark.line + 1]
    if not lines or not lines[0].strip():
        return None
    indent = len(lines[0]) - len(lines[0].lstrip(" "))
    body = []
    for line in lines:  # up to the first line indented less (the next key's, say)
        if line.strip() and not line.startswith(" " * indent):
            break
        body.append(line[indent:])
    while body and not body[-1].strip():
        body.pop()
    joined = "\n".join(body) + "\n" * (len(value) - len(value.rstrip("\n")))
    return joined if _alignment(value, joined) is not None else None


def unfolded_column(value: str, unfolded: str, column: int) -> int | None:
    """The column of ``unfolded`` (a folded scalar's text as ``_unfolded`` gives it)
    where ``column`` of ``value`` is; None when ``unfolded`` does not fold to ``value``
    (an expanded ``${ENV}``, say)."""
    columns = _alignment(value, unfolded)
    if columns is None or not 1 <= column <= len(columns):
        return None
    return columns[column - 1] + 1


def _alignment(value: str, unfolded: str) -> list[int] | None:
    """Where each character of ``value``, and its end, is in ``unfolded``: the same
    characters, but for a space that was a line break and breaks that folding dropped."""
    columns: list[int] = []
    j = 0
    for char in value:
        while j < len(unfolded) and unfolded[j] == "\n" and char not in " \n":
            j += 1  # the break before a blank line: folding dropped it
        if j == len(unfolded) or not (char == unfolded[j] or (char, unfolded[j]) == (" ", "\n")):
            return None
        columns.append(j)
        j += 1
    return [*columns, j] if j == len(unfolded) else None


def dotted(path: KeyPath) -> str:
    """``sources[0].every`` from ``("sources", 0, "every")``."""
    parts: list[str] = []
    for part in path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts) or "(top level)"
