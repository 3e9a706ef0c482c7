"""NLTK's Punkt sentence model (``punkt_tab``, English), which the degeneration measures need exactly as the
original script used it (``nltk.sent_tokenize``, ``nltk.word_tokenize``).

    python -m infra.nltk_data            # makes sure it is there; fetches it when missing

It is looked for where NLTK looks (``python -m nltk.downloader punkt_tab`` puts it there on a machine with
internet; the environment's own ``<sys.prefix>/nltk_data`` among them) and in ``<cache>/nltk_data``
(``LPR_CACHE``, default ``.cache``). When missing, this module takes the same files from the package index
alone: the ``llama-index-core`` wheel ships NLTK's ``punkt_tab`` data (``llama_index/core/_static/nltk_cache``),
fetched with ``pip download`` and never installed, into the environment (``scripts/setup_env.sh`` does it once),
so that nothing after setup (a test with a fresh cache, a compute node) reaches the network for it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from infra.paths import cache_dir

RESOURCE = "tokenizers/punkt_tab/english/"
WHEEL = "llama-index-core==0.14.25"
WHEEL_PREFIX = "llama_index/core/_static/nltk_cache/tokenizers/punkt_tab/english/"


class NltkDataError(RuntimeError):
    pass


def data_dir() -> Path:
    """Where the data is put: the environment's ``nltk_data`` (NLTK looks there by itself) when it can be
    written, else the cache's."""
    environment = Path(sys.prefix) / "nltk_data"
    writable = environment if environment.exists() else environment.parent
    return environment if os.access(writable, os.W_OK) else cache_dir() / "nltk_data"


def ensure_punkt(fetch: bool = False) -> None:
    """Make NLTK find the English Punkt model; fetch it when ``fetch`` and it is missing."""
    import nltk

    for directory in (data_dir(), cache_dir() / "nltk_data"):
        if str(directory) not in nltk.data.path:
            nltk.data.path.append(str(directory))
    try:
        nltk.data.find(RESOURCE)
        return
    except LookupError:
        if not fetch:
            raise NltkDataError(
                f"NLTK's punkt_tab (English) is not installed; run `python -m infra.nltk_data` "
                f"(writes {data_dir()})"
            ) from None
    _from_wheel(data_dir() / "tokenizers" / "punkt_tab" / "english")
    nltk.data.find(RESOURCE)


def _from_wheel(target: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", scratch, WHEEL],
            check=True,
        )
        wheel = next(Path(scratch).glob("*.whl"))
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                if name.startswith(WHEEL_PREFIX) and not name.endswith("/"):
                    (partial / name[len(WHEEL_PREFIX) :]).write_bytes(archive.read(name))
        if not (partial / "abbrev_types.txt").is_file():
            raise NltkDataError(f"{wheel.name}: no punkt_tab/english data inside")
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)


def install() -> None:
    """Put the data into :func:`data_dir` (the environment's): copied from where NLTK finds it, else fetched."""
    import nltk

    target = data_dir() / "tokenizers" / "punkt_tab" / "english"
    if (target / "abbrev_types.txt").is_file():
        return
    ensure_punkt(fetch=True)
    found = Path(str(nltk.data.find(RESOURCE)))
    if found.resolve() != target.resolve():
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(found, partial)
        partial.rename(target)


def main() -> int:
    try:
        install()
    except (NltkDataError, OSError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"[nltk_data] punkt_tab (English) available ({data_dir()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
