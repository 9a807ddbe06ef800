"""Run config files: ``remotesam-bench run --config run.yaml``.

A config file is a YAML (or JSON) mapping whose keys are the long options of
``remotesam-bench run``, with dashes or underscores (``data-root`` or ``data_root``)::

    # run.yaml
    tasks: [ref, det]              # or "ref,det"
    ckpt:                          # a sweep; files, directories, globs, hf:// URIs
      - runs/tiny/last.safetensors
      - hf://1e12Leon/RemoteSAM/checkpoint.pth@main
    data-root: /data/eo
    limit: 200
    precision: bf16
    task-opt: {det: {score_thr: 0.3}}         # or ["det.score_thr=0.3"]
    dataset-root: {det.dior: /data/DIOR}      # or ["det.dior=/data/DIOR"]
    log-to: tensorboard,wandb
    no-progress: true

Values go through the same checks as on the command line (types, choices). Options that take
``KEY=VALUE`` items (``task-opt``, ``dataset-opt``, ``dataset-root``) also take nested mappings.
Relative paths are relative to the current directory, as on the command line. Flags given on
the command line override the file; for repeatable options the command line replaces the
file's list. An unknown key is an error that names it and lists the valid ones.

The resolved options (file merged with the command line) are stored in the run document's
provenance (``provenance.config.options``) and written beside it as
``<results>/runs/<run_id>.config.yaml``, which ``run --config`` accepts again.
"""

from __future__ import annotations

import argparse
import difflib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from remotesam.bench.errors import InputError

__all__ = [
    "ConfigError",
    "apply_config_file",
    "config_values",
    "option_actions",
    "read_config_file",
    "resolved_options",
    "save_config",
]

#: Parser destinations that are not run options (never read from a file, never saved).
_NOT_OPTIONS = {"help", "config", "func", "command"}


class ConfigError(InputError):
    """A config file that cannot be used; the message names the file, the key, what was
    expected and the valid keys."""


def option_actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """``{dest: action}`` of every long option of ``parser`` that a config file may set."""
    out: dict[str, argparse.Action] = {}
    for a in parser._actions:
        if not a.option_strings or a.dest in _NOT_OPTIONS or a.dest.startswith("_"):
            continue
        if isinstance(a, argparse._HelpAction | argparse._VersionAction):
            continue
        out[a.dest] = a
    return out


def _flag(action: argparse.Action) -> str:
    longs = [s for s in action.option_strings if s.startswith("--")]
    return (longs or action.option_strings)[0]


class _DuplicateKey(Exception):
    """A key given twice in one mapping of a config file."""

    def __init__(self, key: Any, first: int, again: int) -> None:
        super().__init__(f"key {key!r} is given twice (lines {first} and {again}); keep one")


def _unique_key_loader() -> type:
    """A ``yaml.SafeLoader`` that refuses a key given twice in one mapping (PyYAML, like
    ``json``, would keep the last one silently)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    if key in seen:
                        raise _DuplicateKey(key, seen[key], line)
                    seen[key] = line
                except TypeError:  # an unhashable key: the base class reports it
                    continue
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML/JSON config file.

    Raises:
        ConfigError: missing or unreadable file, a YAML syntax error (with its line), a key
            given twice in one mapping, a top level that is not a mapping, or a file that
            holds no option (empty, only comments, or ``{}``).
    """
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--config {p}: no such file (current directory {Path.cwd()})")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"--config {p}: cannot read it ({e})") from e
    try:
        data = yaml.load(text, Loader=_unique_key_loader())  # a yaml.SafeLoader subclass
    except yaml.YAMLError as e:
        where = ""
        mark = getattr(e, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"--config {p}: not valid YAML{where}: {problem}") from e
    except _DuplicateKey as e:
        raise ConfigError(f"--config {p}: {e}") from None
    if data is None or (isinstance(data, Mapping) and not data):
        raise ConfigError(f"--config {p}: the file holds no option (empty, only comments or "
                          "{}), so the run would be every task with the defaults; write the "
                          "options, e.g. 'tasks: [ref, det]', or leave out --config")
    if not isinstance(data, Mapping):
        raise ConfigError(f"--config {p}: the top level must be a mapping of option names to "
                          f"values (e.g. 'tasks: [ref, det]'), found a {type(data).__name__}")
    return dict(data)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _flatten(prefix: str, value: Any, out: list[str]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out.append(f"{prefix}={_text(value)}")


def _convert_one(action: argparse.Action, value: Any, where: str) -> Any:
    if isinstance(value, Mapping | list | tuple):
        raise ConfigError(f"{where}: expected a single value, found a {type(value).__name__}")
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a value for {_flag(action)}, found {value!r}")
    text = _text(value)
    if action.type is not None:
        try:
            converted = action.type(text)  # type: ignore[operator]
        except (argparse.ArgumentTypeError, ValueError, TypeError) as e:
            raise ConfigError(f"{where}: {e}") from e
    else:
        converted = text
    if action.choices is not None and converted not in action.choices:
        raise ConfigError(f"{where}: {converted!r} is not one of "
                          f"{', '.join(map(str, action.choices))}")
    return converted


def _convert(action: argparse.Action, key: str, value: Any, source: str) -> Any:
    where = f"{source}: {key}"
    if action.nargs == 0:  # store_true / store_false / store_const
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false (the flag {_flag(action)}), "
                              f"found {value!r}")
        if isinstance(action, argparse._StoreFalseAction):
            return not value
        return action.const if value else action.default
    if isinstance(action, argparse._AppendAction):
        if value is None:
            return []
        items: list[Any]
        if isinstance(value, Mapping):
            if "=" not in str(action.metavar or ""):
                raise ConfigError(f"{where}: expected a list (or a single value), found a "
                                  "mapping")
            flat: list[str] = []
            _flatten("", value, flat)
            items = list(flat)
        elif isinstance(value, list | tuple):
            items = list(value)
        else:
            items = [value]
        return [_convert_one(action, v, f"{where}[{i}]") for i, v in enumerate(items)]
    if value is None:
        return None
    return _convert_one(action, value, where)


def config_values(raw: Mapping[str, Any], actions: Mapping[str, argparse.Action],
                  source: str) -> dict[str, Any]:
    """Check and convert a config mapping into ``{dest: value}`` as argparse would produce.

    Raises:
        ConfigError: an unknown key (with suggestions and the valid keys), a key given twice
            (dash and underscore spellings), or a value the option does not accept.
    """
    out: dict[str, Any] = {}
    valid = sorted(d.replace("_", "-") for d in actions)
    for key, value in raw.items():
        dest = str(key).strip().replace("-", "_")
        if dest not in actions:
            close = difflib.get_close_matches(str(key).replace("_", "-"), valid, n=3, cutoff=0.6)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ConfigError(f"{source}: unknown key {key!r}.{hint} Valid keys: "
                              f"{', '.join(valid)}")
        if dest in out:
            raise ConfigError(f"{source}: the option {key!r} is given twice (dash and "
                              "underscore spellings); keep one")
        out[dest] = _convert(actions[dest], str(key), value, source)
    return out


def _given_on_command_line(parser: argparse.ArgumentParser, argv: Sequence[str]) -> set[str]:
    """Destinations that ``argv`` sets explicitly (parsed again with every default
    suppressed, so a flag given with its default value still counts as given)."""
    saved = [(a, a.default) for a in parser._actions]
    try:
        for a in parser._actions:
            a.default = argparse.SUPPRESS
        ns, _ = parser.parse_known_args(list(argv))
    finally:
        for a, d in saved:
            a.default = d
    return set(vars(ns))


def apply_config_file(args: argparse.Namespace, parser: argparse.ArgumentParser,
                      argv: Sequence[str], path: str | Path) -> argparse.Namespace:
    """``args`` with every option the command line did not set taken from the config file.

    Args:
        args: the parsed command line of the ``run`` subcommand.
        parser: the ``run`` sub-parser (its actions define the valid keys and their checks).
        argv: the command-line arguments of ``run`` (after the subcommand name).
        path: the config file.

    Raises:
        ConfigError: see :func:`read_config_file` and :func:`config_values`.
    """
    actions = option_actions(parser)
    values = config_values(read_config_file(path), actions, str(path))
    given = _given_on_command_line(parser, argv)
    merged = argparse.Namespace(**vars(args))
    for dest, value in values.items():
        if dest not in given:
            setattr(merged, dest, value)
    return merged


def resolved_options(args: argparse.Namespace, parser: argparse.ArgumentParser,
                     config_file: str | Path | None = None) -> dict[str, Any]:
    """The effective ``run`` options as a config mapping (dashed keys, JSON/YAML-able), in the
    parser's order; ``config`` names the file they were merged from (``None``: none)."""
    out: dict[str, Any] = {}
    for dest in option_actions(parser):
        value = getattr(args, dest, None)
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, list | tuple):
            value = [str(v) if isinstance(v, Path) else v for v in value]
        out[dest.replace("_", "-")] = value
    out["config"] = None if config_file is None else str(config_file)
    return out


def save_config(options: Mapping[str, Any], path: str | Path) -> Path:
    """Write resolved options as YAML that ``run --config`` reads back (``config`` itself, the
    file they came from, is written as a comment)."""
    import yaml

    p = Path(path)
    body = {k: v for k, v in options.items() if k != "config"}
    header = "# remotesam-bench run options, resolved (config file merged with the command line)\n"
    if options.get("config"):
        header += f"# merged from: {options['config']}\n"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(header + yaml.safe_dump(body, sort_keys=False, allow_unicode=True),
                 encoding="utf-8")
    return p
