"""dwarfcache keeps what gotypes.Binary derives from a Go binary's symbols and DWARF, keyed by its build ID.

Indexing a binary's DWARF walks every DIE of every compilation unit in
pyelftools (about 3 s for a 2 MB Go program, more for a big one), and the
same binary is imported again and again (every ``record-go`` of a program,
every dump of a service). Its build ID names its contents: Go's
(``.note.go.buildid``) or else the GNU one (``.note.gnu.build-id``). So the
first import stores the index, and the next ones read it instead.

- Where: ``dwarf-v1/<hash of the build ID>.json`` under gctrace's cache root
  (gctrace.cachedir; ``GCTRACE_CACHE=0`` turns it off). A binary without a
  build ID is indexed every time.
- What: the attributes ``Binary._load_symbols`` and ``Binary._index_dwarf``
  set, whatever they are, as long as they are plain data (ints, strings,
  None, bools, lists, tuples, dicts); JSON, with tuples and dicts tagged so
  they come back as they were. No pickle.
- Checked on read: the format and version, the build ID itself, the
  binary's size, a digest of the code that derives the index (gotypes.py and
  this file: a changed gctrace re-indexes), the shape of every value and the
  types of the attributes gotypes has today. Anything else is a miss.
- Written atomically (a unique temporary file renamed onto a regular file of
  our own name); best effort: a failure to write costs the next import its
  speed, never its answer. It deletes nothing but its own temporary files,
  and replaces only entries it wrote.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path

from gctrace import cachedir
from gctrace.cachedir import cache_root

FORMAT = "gctrace.dwarf-index"
VERSION = 1
SUBDIR = "dwarf-v1"

# The attributes gotypes sets today, with the check each must pass once decoded.
_KNOWN = {
    "_syms": lambda v: isinstance(v, list) and all(
        isinstance(s, tuple) and len(s) == 3 and _ints(s[:2]) and isinstance(s[2], str) for s in v),
    "_sym_addr": lambda v: isinstance(v, list) and _ints(v),
    "globals": lambda v: isinstance(v, list) and all(
        isinstance(g, tuple) and len(g) == 3 and isinstance(g[0], str) and _ints(g[1:2])
        and (g[2] is None or _ints(g[2:])) for g in v),
    "struct_by_name": lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v) and _ints(v.values()),
    "type_by_runtime": lambda v: isinstance(v, dict) and _ints(v) and _ints(v.values()),
}


def _ints(xs) -> bool:
    return all(type(x) is int for x in xs)


def build_id(elf) -> str | None:
    """build_id returns the binary's build ID, "go:<id>" or "gnu:<hex>", or None when it has none.

    A note is (namesz, descsz, type) as 4-byte words, then the name and the
    description, each padded to 4 bytes.
    """
    for section, kind in ((".note.go.buildid", "go"), (".note.gnu.build-id", "gnu")):
        sec = elf.get_section_by_name(section)
        if sec is None:
            continue
        data = sec.data()
        order = "little" if elf.little_endian else "big"
        if len(data) < 12:
            continue
        namesz, descsz = int.from_bytes(data[0:4], order), int.from_bytes(data[4:8], order)
        start = 12 + (namesz + 3) // 4 * 4
        desc = data[start:start + descsz]
        if len(desc) != descsz or not desc:
            continue
        if kind == "go":
            text = desc.rstrip(b"\0").decode("ascii", "replace")
            if text:
                return "go:" + text
        else:
            return "gnu:" + desc.hex()
    return None


def _code_digest() -> str:
    return cachedir.sources_digest(Path(__file__).resolve().parent, ("gotypes.py", "dwarfcache.py"))


def entry_path(bid: str) -> Path | None:
    """entry_path is where the index of the binary with build ID bid lives, or None when caching is off."""
    root = cache_root()
    if root is None:
        return None
    return root / SUBDIR / (hashlib.sha256(bid.encode()).hexdigest()[:32] + ".json")


def _encode(v):
    """_encode turns plain data into JSON values: tuples and dicts tagged, anything else refused."""
    if v is None or type(v) in (bool, int, str):
        return v
    if type(v) is list:
        return [_encode(x) for x in v]
    if type(v) is tuple:
        return {"t": [_encode(x) for x in v]}
    if type(v) is dict:
        return {"d": [[_encode(k), _encode(x)] for k, x in v.items()]}
    raise TypeError(f"not plain data: {type(v).__name__}")


def _decode(v):
    """_decode is the inverse of _encode; anything _encode cannot have written raises ValueError."""
    if v is None or type(v) in (bool, int, str):
        return v
    if type(v) is list:
        return [_decode(x) for x in v]
    if type(v) is dict and len(v) == 1:
        if type(v.get("t")) is list:
            return tuple(_decode(x) for x in v["t"])
        if type(v.get("d")) is list:
            out = {}
            for kv in v["d"]:
                if type(kv) is not list or len(kv) != 2:
                    raise ValueError("bad dict item")
                k = _decode(kv[0])
                if not isinstance(k, (int, str, tuple)) or k in out:
                    raise ValueError("bad dict key")
                out[k] = _decode(kv[1])
            return out
    raise ValueError(f"unexpected value {str(v)[:40]}")


def _read(path: Path) -> dict | None:
    """_read returns the entry's JSON document, or None when there is none or it cannot be read."""
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except (OSError, ValueError, RecursionError):
        return None


def load(binary_path, elf, size: int) -> dict | None:
    """load returns the cached index of the binary (attribute name -> value), or None on any miss."""
    bid = build_id(elf)
    path = entry_path(bid) if bid else None
    if path is None:
        return None
    doc = _read(path)
    try:
        if not (isinstance(doc, dict) and doc.get("format") == FORMAT and doc.get("version") == VERSION
                and doc.get("build_id") == bid and doc.get("size") == size and doc.get("code") == _code_digest()
                and isinstance(doc.get("attrs"), dict) and doc["attrs"]):
            return None
        attrs = {k: _decode(v) for k, v in doc["attrs"].items()}
    except (ValueError, RecursionError):
        return None
    if not all(check(attrs[k]) for k, check in _KNOWN.items() if k in attrs):
        return None
    return attrs


def store(elf, size: int, attrs: dict) -> Path | None:
    """store writes the index of the binary; returns the entry written, None when it was not."""
    bid = build_id(elf)
    path = entry_path(bid) if bid else None
    if path is None:
        return None
    try:
        doc = {"format": FORMAT, "version": VERSION, "build_id": bid, "size": size, "code": _code_digest(),
               "attrs": {k: _encode(v) for k, v in attrs.items()}}
        data = json.dumps(doc, separators=(",", ":")).encode()
    except (TypeError, ValueError, RecursionError):
        return None  # an attribute that is not plain data: this gctrace cannot cache its index
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
        if st is not None:
            old = _read(path) if stat.S_ISREG(st.st_mode) else None
            if not (isinstance(old, dict) and old.get("format") == FORMAT):
                return None  # not a regular file we wrote: leave it alone
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        tmp = None
        return path
    except OSError:
        return None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
