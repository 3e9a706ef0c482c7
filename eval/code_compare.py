"""Parent-side comparison (stdlib only: the sandbox child imports it too, for outputs too large to send) of a program's outputs with the expected ones (MBPP+ plus inputs).

The sandbox child pickles outputs as exact builtin values (``PlainPickler``); :func:`load_plain` reads them
here, outside the untrusted process, refusing any other type, and :func:`outputs_match` applies evalplus's
rules: exact equality, a per-task oracle, else ``numpy.allclose``-style closeness with the task's
``atol`` (1e-6 for float outputs when the task gives none).
"""

from __future__ import annotations

from typing import Any

PLAIN_TYPES = {
    t.__name__: t for t in (int, float, str, tuple, list, dict, set, frozenset, bytes, bytearray, complex)
}


def load_plain(data: bytes) -> Any:
    """Unpickle outputs sent by the sandbox child, accepting builtin value types only.

    The child pickles with ``PlainPickler`` (exact builtin types); any other global in the stream is
    refused, so nothing the untrusted program made can run code in this process.
    """
    import io
    import pickle

    class PlainUnpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if module == "builtins" and name in PLAIN_TYPES:
                return PLAIN_TYPES[name]
            raise pickle.UnpicklingError(f"refused global {module}.{name}")

    return PlainUnpickler(io.BytesIO(data)).load()


def close_enough(out: Any, exp: Any, atol: float) -> bool:
    """numpy.allclose(out, exp, rtol=1e-7, atol) for numbers and (nested) sequences."""
    if isinstance(exp, (list, tuple)):
        if not isinstance(out, (list, tuple)) or len(out) != len(exp):
            return False
        return all(close_enough(o, e, atol) for o, e in zip(out, exp))
    if isinstance(out, bool) or isinstance(exp, bool) or not isinstance(out, (int, float)):
        return out == exp
    if not isinstance(exp, (int, float)):
        return False
    return abs(out - exp) <= atol + 1e-7 * abs(exp)


def is_floats(value: Any) -> bool:
    if isinstance(value, float):
        return True
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, float) for v in value)


def special_oracle(oracle: str | None, out: Any, expected: Any) -> bool:
    """evalplus's per-task oracles, for the tasks whose outputs are sets or only need to be non-None."""
    if oracle == "set":
        try:
            return set(out) == set(expected)
        except TypeError:
            return False
    if oracle == "not_none":
        expected = expected if isinstance(expected, bool) else expected is not None
        return out == expected if isinstance(out, bool) else expected == (out is not None)
    if oracle == "always":
        return True
    if oracle == "zero_ok":
        return out == 0
    return False


def outputs_match(
    outputs: list, expected: list, atol: float, oracle: str | None, inputs: list | None = None
) -> tuple[bool, str]:
    """(all outputs match, a detail naming the first input that does not)."""
    if len(outputs) != len(expected):
        return False, f"{len(outputs)} outputs for {len(expected)} expected"
    for index, (out, exp) in enumerate(zip(outputs, expected)):
        tolerance = atol if atol or not is_floats(exp) else 1e-6
        if out == exp or special_oracle(oracle, out, exp):
            continue
        if tolerance and close_enough(out, exp, tolerance):
            continue
        shown = repr(inputs[index])[:120] if inputs is not None else str(index)
        return False, f"output differs for input {shown}: got {repr(out)[:120]}, expected {repr(exp)[:120]}"
    return True, ""
