"""Flags and YAML → a job's config dataclass (``softmax_spark.fit.config``'s ``TrainConfig``,
``EvaluateConfig``): the parser built from the option declarations, the YAML reader, type coercion,
and the one-line ``InputError``s for an unknown key or flag (with a "did you mean"), an abbreviated
flag, a value of the wrong type, an invalid or missing YAML file. ``softmax_spark.fit.config``
re-exports the public functions; the rules are in its docstring.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import logging
import sys
import types
import typing

from softmax_spark.core.errors import InputError

__all__ = ["parse_config", "config_from_dict", "build_parser", "load_yaml", "suggest"]


def _shown(value, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (an error line quotes a value, never a whole
    document)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} characters)"


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _option_fields(cls) -> list:
    """The fields that are options (flags and keys); ``init=False`` fields are derived."""
    return [f for f in dataclasses.fields(cls) if f.init]


def _members(tp) -> list:
    """The non-None types of an annotation: ``int | tuple[int, ...] | None`` → [int, tuple[int, ...]]."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(tp) if a is not type(None)]
    return [tp]


def _describe(tp) -> str:
    if typing.get_origin(tp) in (list, tuple):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return f"list of {args[0].__name__}" if args else "list"
    return getattr(tp, "__name__", str(tp))


class _Mismatch(Exception):
    """The value does not fit this type (``_coerce`` tries the field's next type)."""


def _convert(tp, value, text: bool):
    """``value`` as ``tp``, else ``_Mismatch``. ``text``: a string to parse (a comma-separated
    item, or the value of a field whose type has several members, e.g. ``int | tuple[int, ...]``:
    "3" → 3, "1,4" → (1, 4)); otherwise a YAML value must already have the type."""
    if tp is typing.Any:
        return value
    origin = typing.get_origin(tp)
    if tp is list or origin in (list, tuple):
        if isinstance(value, str):  # "a, b" → [a, b]
            items = [v.strip() for v in value.split(",") if v.strip()]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            raise _Mismatch
        container = tuple if origin is tuple else list
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        if not args:  # an untyped list: the items as given
            return container(items)
        if args[0] is str:  # typed names: surrounding blanks and empty items dropped
            items = [v.strip() if isinstance(v, str) else v for v in items]
            items = [v for v in items if v != ""]
        return container(_convert(args[0], v, text=isinstance(v, str)) for v in items)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp in (int, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and (tp is float or isinstance(value, int)):
            return tp(value)
        if text and isinstance(value, str):
            try:
                return tp(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    raise _Mismatch


def _coerce(cls, name, value, key: str | None = None):
    """A YAML value (or a flag's text) for field ``name`` → its type (ints become floats where
    floats are expected); an ``InputError`` naming ``key`` (default: the config key) if it does not fit."""
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    key = key or f"config key '{name}'"
    if value is None:
        return None
    members = _members(typing.get_type_hints(cls)[name])
    text = isinstance(value, str) and len(members) > 1 and str not in members
    for tp in members:
        try:
            converted = _convert(tp, value, text)
        except _Mismatch:
            continue
        choices = f.metadata.get("choices")
        if choices and converted not in choices:
            raise InputError(f"{key}: {_shown(value)} is not one of {', '.join(choices)}")
        return converted
    raise InputError(f"{key}: expected {' or '.join(_describe(tp) for tp in members)}, got {_shown(value)}")


def build_parser(cls, prog: str, description: str) -> argparse.ArgumentParser:
    # allow_abbrev=False: a prefix of a flag is an unknown flag, never silently that flag
    parser = argparse.ArgumentParser(prog=prog, description=description, allow_abbrev=False)
    parser.add_argument("--config", help="YAML file with the same keys as these flags; flags override it")
    hints = typing.get_type_hints(cls)
    for f in _option_fields(cls):
        flag = _flag(f.name)
        members = _members(hints[f.name])
        tp = members[0] if len(members) == 1 else None
        help_text = f.metadata.get("help", "")
        if tp is bool:
            if f.metadata.get("negatable", True):
                parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
            else:
                parser.add_argument(flag, action="store_const", const=True, default=None, help=help_text)
        elif tp in (int, float):
            parser.add_argument(flag, type=tp, default=None, help=help_text)
        elif tp is str:
            parser.add_argument(flag, default=None, help=help_text, choices=f.metadata.get("choices"))
        else:  # lists, several types, Any: the text, converted by parse_config as a YAML string
            parser.add_argument(flag, default=None, help=help_text)
    return parser


def suggest(word: str, candidates) -> str | None:
    """The candidate ``word`` most likely meant: the only one it is a prefix of, else the
    closest by ``difflib`` (ratio ≥ 0.7), else None."""
    candidates = list(candidates)
    starts = [c for c in candidates if c.startswith(word)] if word else []
    if len(starts) == 1:
        return starts[0]
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.7)
    return close[0] if close else None


def config_from_dict(cls, values: dict, source: str = "config"):
    """``cls`` from a mapping of keys to YAML values; not validated. Keys are the field names
    (``batch_fraction``); the dashed spelling (``batch-fraction``) is read with a deprecation
    warning."""
    names = {f.name for f in _option_fields(cls)}
    kwargs = {}
    dashed = []
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if name not in names:
            hint = suggest(name, names)
            hint = f" (did you mean '{hint}'?)" if hint else ""
            raise InputError(f"{source}: unknown key '{key}'{hint}; known keys: {', '.join(sorted(names))}")
        if name != key:
            dashed.append(f"'{key}' → '{name}'")
        if value is None:  # null: not given
            continue
        try:
            kwargs[name] = _coerce(cls, name, value, key=f"config key '{key}'")
        except InputError as exc:  # say which file the bad value is in
            raise InputError(f"{source}: {exc}") from None
    if dashed:
        logging.getLogger("softmax_spark").warning(
            "%s: keys with '-' are deprecated, write the flag's name with '_': %s", source, ", ".join(dashed))
    return cls(**kwargs)


def _yaml_loader():
    """``yaml.SafeLoader`` refusing aliases (``*name``): a few hundred bytes of nested aliases
    expand to millions of values ("billion laughs"); a config file has no use for them."""
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.composer.ComposerError(
                    None, None, f"alias *{event.anchor} (aliases are not allowed in a config file)", event.start_mark)
            return super().compose_node(parent, index)

    return NoAliasLoader


def load_yaml(path: str) -> dict:
    import yaml

    try:
        with open(path) as f:
            data = yaml.load(f, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader without aliases
    except FileNotFoundError:
        raise InputError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        problem = getattr(exc, "problem", None)
        detail = f": {problem}" if problem else ""
        raise InputError(
            f"config file {path} is not valid YAML{where}{detail}; expected a mapping of keys to values"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"config file {path} must hold a mapping of keys to values")
    return data


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse exits 2 itself; we want InputError's one line
        _print_short_usage(self)
        raise InputError(message)


def _print_short_usage(parser) -> None:
    # the full usage of ~40 flags would bury the error line: one line pointing at --help
    print(f"usage: {parser.prog} [--config FILE] [--flag VALUE ...]; {parser.prog} --help lists every flag",
          file=sys.stderr, flush=True)


def _unrecognized(parser, extras: list[str]) -> str:
    """argparse's message for ``extras``, plus a "did you mean" for each unknown flag."""
    flags = [option[2:] for action in parser._actions for option in action.option_strings if option.startswith("--")]
    hints = []
    for token in extras:
        if token.startswith("--"):
            word = token[2:].split("=", 1)[0]
            match = suggest(word, flags)
            if match:
                hints.append(f"--{word}: did you mean --{match}?")
    message = "unrecognized arguments: " + " ".join(extras)
    return message + ("; " + "; ".join(hints) if hints else "")


def parse_config(cls, argv, prog: str = "job", description: str = ""):
    """--config FILE first, then the command-line flags over it; returns a validated ``cls``."""
    parser = build_parser(cls, prog, description)
    parser.__class__ = _Parser
    namespace, extras = parser.parse_known_args(argv)
    if extras:
        _print_short_usage(parser)
        raise InputError(_unrecognized(parser, extras))
    args = vars(namespace)
    config_path = args.pop("config")
    values = load_yaml(config_path) if config_path else {}
    cfg = config_from_dict(cls, values, source=f"config file {config_path}")
    options = {f.name: f for f in _option_fields(cls)}
    given = {name: value for name, value in args.items() if value is not None}
    for name, value in given.items():
        setattr(cfg, name, _coerce(cls, name, value, key=f"argument {_flag(name)}"))
    for name in given:  # a flag choosing one of two exclusive options drops the file's other one
        for other in options[name].metadata.get("excludes", ()):
            if other not in given:
                setattr(cfg, other, options[other].default)
    validate = getattr(cfg, "validate", None)
    return validate() if validate else cfg
