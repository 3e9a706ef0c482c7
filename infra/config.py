"""Typed configs: YAML files parsed into dataclasses, with ``--key=value`` overrides on top.

Every stage declares its options as a dataclass (validation in ``__post_init__``) and calls
:func:`parse_cli`. A YAML file given by ``--config`` supplies values first; flags override it. Unknown keys,
wrong types and missing required fields are errors that name the file (or flag) and the key.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config problem; the message names the source (file or command line) and the key."""


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: invalid YAML ({getattr(error, 'problem', error)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values at the top level")
    return data


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


class RepeatedFlag(list):
    """Values of a flag given several times: a list option collects them, a scalar one keeps the last."""


def _is_list_type(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_is_list_type(option) for option in typing.get_args(tp))
    return origin in (list, Sequence, tuple) or tp in (list, tuple)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert where it is lossless (int -> float)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if isinstance(value, RepeatedFlag) and not _is_list_type(tp):
        value = value[-1]  # --lr 1e-3 ... --lr 1e-4: the later flag wins, as with argparse
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in args:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: expected one of {list(args)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, where)
    if origin in (list, Sequence, tuple) or tp in (list, tuple):
        if isinstance(value, str) and args and args[0] in (int, float, str):
            value = [_parse_flag_value(part.strip()) for part in value.split(",") if part.strip()]
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]  # "--layers 3" is a list of one
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item_type = args[0] if args else Any
        items = [_coerce(item, item_type, f"{where}[{i}]") for i, item in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        key_type, value_type = args if args else (Any, Any)
        return {
            _coerce(k, key_type, f"{where}.{k}"): _coerce(v, value_type, f"{where}.{k}")
            for k, v in value.items()
        }
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)  # YAML reads "2e-4" as a string
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")


def from_dict(cls: type[T], data: dict[str, Any], source: str = "<config>") -> T:
    """Build dataclass ``cls`` from ``data``; errors name ``source`` and the offending key."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{source}: unknown key {unknown[0]!r} for {cls.__name__} (known: {', '.join(fields)})"
        )
    values = {}
    for name, field in fields.items():
        where = f"{source}: key {name!r}" if ":" not in source else f"{source}.{name}"
        if name in data:
            values[name] = _coerce(data[name], hints[name], where)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{source}: missing required key {name!r} for {cls.__name__}")
    try:
        return cls(**values)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{source}: {error}") from None


def load_config(cls: type[T], path: str | Path, overrides: dict[str, Any] | None = None) -> T:
    data = load_yaml(path)
    for key, value in (overrides or {}).items():
        set_dotted(data, key, value)
    return from_dict(cls, data, str(path))


def to_dict(config: Any) -> dict[str, Any]:
    """The resolved config as plain data (for manifests)."""
    return dataclasses.asdict(config)


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        data = data.setdefault(part, {})
        if not isinstance(data, dict):
            raise ConfigError(f"command line: --{dotted}: {part!r} is not a mapping")
    data[parts[-1]] = value


def _parse_flag_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def split_overrides(argv: Sequence[str]) -> tuple[str | None, dict[str, Any]]:
    """Split ``argv`` into the ``--config`` path and ``{key: value}`` overrides.

    Accepts ``--key=value``, ``--key value`` and a bare ``--flag`` (true). Values are read as YAML scalars.
    """
    config_path = None
    overrides: dict[str, Any] = {}
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise ConfigError(f"command line: unexpected argument {arg!r} (options look like --key=value)")
        body = arg[2:]
        if "=" in body:
            key, raw = body.split("=", 1)
            i += 1
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            key, raw = body, args[i + 1]
            i += 2
        else:
            key, raw = body, "true"
            i += 1
        key = key.replace("-", "_")
        if key == "config":
            config_path = raw
            continue
        value = _parse_flag_value(raw) if raw != "" else ""
        if isinstance(value, (dict, list)) and not raw.lstrip().startswith(("[", "{")):
            value = raw  # e.g. "a: b" typed by hand is text, not a mapping
        if key in overrides:  # a repeated flag collects its values: --data a=1 --data b=2
            previous = overrides[key]
            value = RepeatedFlag([*(previous if isinstance(previous, RepeatedFlag) else [previous]), value])
        overrides[key] = value
    return config_path, overrides


def help_text(cls: type) -> str:
    lines = [f"Options of {cls.__name__} (give them as --key=value, or in a YAML file with --config):"]
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        if field.default is not dataclasses.MISSING:
            default = f" (default: {field.default!r})"
        elif field.default_factory is not dataclasses.MISSING:
            default = f" (default: {field.default_factory()!r})"
        else:
            default = " (required)"
        helptext = field.metadata.get("help", "")
        lines.append(f"  --{field.name}: {_type_name(hints[field.name])}{default}  {helptext}".rstrip())
    return "\n".join(lines)


def parse_cli(
    cls: type[T], argv: Sequence[str] | None = None, *, doc: str | None = None, gpu_stage: bool = False
) -> T:
    """Parse the command line into ``cls``: ``--config file.yaml`` first, then flag overrides.

    On a config error, prints the message and exits with status 2. A ``gpu_stage`` in a SLURM job given GPUs
    that sees no CUDA device stops here too (:func:`infra.devices.check_gpu_job`).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--debug" in argv:  # every stage: the full traceback behind the one-line error
        import os

        argv.remove("--debug")
        os.environ[DEBUG_VARIABLE] = "1"
    if any(arg in ("-h", "--help") for arg in argv):
        if doc:
            print(doc.strip() + "\n")
        print(help_text(cls))
        raise SystemExit(0)
    try:
        if gpu_stage:
            from infra.devices import check_gpu_job

            module = cls.__module__
            if module == "__main__":  # python -m <stage>: the stage's own name
                module = getattr(sys.modules["__main__"].__spec__, "name", module)
            check_gpu_job(module)
        config_path, overrides = split_overrides(argv)
        if config_path:
            return load_config(cls, config_path, overrides)
        data: dict[str, Any] = {}
        for key, value in overrides.items():
            set_dotted(data, key, value)
        return from_dict(cls, data, "command line")
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


DEBUG_VARIABLE = "LPR_DEBUG"


def error_line(error: BaseException) -> str:
    """One line that keeps an error's reason: for a pydantic validation error (vLLM's configs) the first line
    is only "1 validation error for ModelConfig", so each failing field and its message are added."""
    details = getattr(error, "errors", None)
    if type(error).__name__ == "ValidationError" and callable(details):
        try:
            parts = [
                f"{'.'.join(str(p) for p in item.get('loc', ())) or 'value'}: {item.get('msg', '')}"
                for item in details()
            ]
        except Exception:  # noqa: BLE001 - a malformed error object: fall back to its text
            parts = []
        title = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return f"{title}: {'; '.join(' '.join(p.split()) for p in parts)}" if parts else title
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def report_error(error: BaseException) -> int:
    """Print ``error: <one line>`` (the whole traceback too when ``LPR_DEBUG=1`` or ``--debug``); return 2."""
    import os
    import traceback

    if os.environ.get(DEBUG_VARIABLE, "") not in ("", "0"):
        traceback.print_exception(error, file=sys.stderr)
    print(f"error: {error_line(error)}", file=sys.stderr)
    return 2


def run_cli(function: Callable[[Any], Any], args: Any) -> int:
    """Run a stage; an expected failure (bad input, missing file or model, busy or unwritable output)
    becomes one line on stderr naming the file, key or line, and exit status 2 (the traceback with
    ``--debug`` or ``LPR_DEBUG=1``)."""
    from infra.files import OutputBusyError

    try:
        function(args)
    except (ConfigError, ValueError, OutputBusyError, OSError) as error:
        return report_error(error)
    return 0
