"""Integrity of spike-dataset HDF5 files, checked once before libhdf5 reads them.

Why: libhdf5 trusts the file. A zeroed 4 KiB block inside the global heap that holds the ragged spike arrays
makes it loop forever while decoding that heap collection (an object header of size 0 never advances its
cursor), so ``h5py`` hangs in ``SHD()``, in item reads and in ``snn data info``. Two checks run before the first
``h5py.File`` of a file:

* :func:`heap_problems` walks every global heap collection (``GCOL``) of the file as libhdf5 would, and reports a
  collection whose objects do not tile it (the zeroed block, a truncated collection) instead of looping. It reads
  the file once through ``mmap`` (about a second per GB).
* :func:`published_problems`: for the published SHD/SSC files, the archive tonic downloads (``shd_train.h5.zip``
  ...) is checked against the MD5 that tonic publishes (read from the installed tonic's source, without importing
  it), and the ``.h5`` against the archive's CRC-32 and size of that member; a ``.h5.gz`` beside the file (the
  zenkelab download) is used the same way through its gzip trailer (CRC-32 and size of the content). A published
  file without its archive cannot be checked against a checksum; the heap walk still guards it.

:func:`verify_h5` runs both and remembers a file that passed (keyed by its path, size and mtime, in the cache
folder), so it is not hashed again on every open.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import mmap
import os
import struct
import zipfile
import zlib
from functools import lru_cache
from pathlib import Path

from snn.atomic import write_atomic
from snn.datasets.cache import cache_key, source_identity

__all__ = ["heap_problems", "published_checksums", "published_problems", "verify_h5"]

_CHECK_VERSION = 1
_GCOL_HEADER = 16  # "GCOL", version (1), 3 reserved bytes, collection size (8 bytes)
_OBJ_HEADER = 16  # object index (2), reference count (2), reserved (4), object size (8)
_MIN_COLLECTION = 4096  # libhdf5 never writes a smaller collection (H5HG_MINSIZE)


def heap_problems(path: str | os.PathLike, limit: int = 10) -> list[str]:
    """Global heap collections of an HDF5 file whose objects do not tile them (at most ``limit`` messages).

    Assumes the default 8-byte lengths (every file h5py/libhdf5 writes with default settings, SHD/SSC included).
    """
    problems: list[str] = []
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return ["the file is empty"]
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            pos = mm.find(b"GCOL")
            while pos != -1 and len(problems) < limit:
                # a collection header: version 1 and three zero bytes (a chance "GCOL" in spike data has ~2^-32 odds)
                if pos + _GCOL_HEADER <= size and mm[pos + 4:pos + 8] == b"\x01\x00\x00\x00":
                    problem = _collection_problem(mm, pos, size)
                    if problem:
                        problems.append(problem)
                pos = mm.find(b"GCOL", pos + 4)
    return problems


def _collection_problem(mm: mmap.mmap, pos: int, size: int) -> str | None:
    (length,) = struct.unpack_from("<Q", mm, pos + 8)
    end = pos + length
    if length < _MIN_COLLECTION or end > size:
        return (f"global heap collection at byte {pos} claims {length} bytes (at least {_MIN_COLLECTION}, within "
                f"the file's {size}): the file is truncated or corrupt")
    p = pos + _GCOL_HEADER
    while p + _OBJ_HEADER <= end:
        idx, _refs, _reserved, obj_size = struct.unpack_from("<HHIQ", mm, p)
        if idx == 0:  # the free-space object: the rest of the collection
            if obj_size == 0 or p + obj_size > end:
                return (f"global heap collection at byte {pos} is damaged near byte {p} (an object of size "
                        f"{obj_size}); libhdf5 would loop forever reading it")
            return None
        need = _OBJ_HEADER + (obj_size + 7) // 8 * 8
        if p + need > end:
            return f"global heap object {idx} at byte {p} runs past its collection's end (corrupt)"
        p += need
    return None


@lru_cache(maxsize=1)
def published_checksums() -> dict[str, tuple[str, str]]:
    """``{h5 name: (archive name, archive MD5)}`` for SHD/SSC, read from the installed tonic's dataset source."""
    spec = importlib.util.find_spec("tonic")
    if spec is None or not spec.submodule_search_locations:
        return {}
    source = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "hsd.py"
    try:
        tree = ast.parse(source.read_text())
    except (OSError, SyntaxError):
        return {}
    table: dict[str, tuple[str, str]] = {}
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        values = {t.id: node.value.value for node in cls.body if isinstance(node, ast.Assign)
                  for t in node.targets if isinstance(t, ast.Name) and isinstance(node.value, ast.Constant)}
        for name, archive in values.items():
            md5 = values.get(name.replace("_zip", "_md5"))
            if name.endswith("_zip") and isinstance(archive, str) and archive.endswith(".h5.zip") and md5:
                table[archive[:-4]] = (archive, md5)
    return table


def _digest(path: Path, algo: str) -> tuple[str, int]:
    h = hashlib.md5() if algo == "md5" else None
    crc = 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            if h is not None:
                h.update(block)
            else:
                crc = zlib.crc32(block, crc)
    return (h.hexdigest() if h is not None else f"{crc:08x}"), path.stat().st_size


def published_problems(path: str | os.PathLike) -> tuple[list[str], str]:
    """``(problems, how it was checked)`` of a published SHD/SSC file against its archive beside it.

    ``how`` is ``"not a published file"``, ``"no archive beside it"``, or which archive vouched for it.
    """
    path = Path(path)
    entry = published_checksums().get(path.name)
    if entry is None:
        return [], "not a published file"
    archive_name, md5 = entry
    archive = path.parent / archive_name
    gz = path.parent / f"{path.name}.gz"
    if archive.is_file():
        got, _ = _digest(archive, "md5")
        if got != md5:
            return [f"{archive} fails the published MD5 (expected {md5}, got {got}): download it again"], str(archive)
        with zipfile.ZipFile(archive) as zf:
            members = [i for i in zf.infolist() if Path(i.filename).name == path.name]
        if not members:
            return [f"{archive} holds no {path.name}"], str(archive)
        expected_crc, expected_size = f"{members[0].CRC:08x}", members[0].file_size
        source = f"{archive} (published MD5 {md5})"
    elif gz.is_file():
        with open(gz, "rb") as fh:
            fh.seek(-8, os.SEEK_END)
            crc, isize = struct.unpack("<II", fh.read(8))
        expected_crc, expected_size = f"{crc:08x}", isize
        source = str(gz)
    else:
        return [], "no archive beside it"
    got_crc, size = _digest(path, "crc32")
    if size % (1 << 32) != expected_size % (1 << 32) or got_crc != expected_crc:
        return [f"{path} differs from the published file in {source} (CRC-32 {got_crc} vs {expected_crc}, "
                f"{size} bytes): it is corrupt; extract it again"], source
    return [], source


def verify_h5(path: str | os.PathLike, record_dir: str | os.PathLike | None) -> list[str]:
    """Problems of an HDF5 spike file (heap structure, published checksum); ``[]`` when it is fine.

    A file that passed is recorded in ``record_dir/verified/`` (keyed by path, size and mtime, and by those of
    a ``.zip``/``.gz`` beside it) and not checked again; ``record_dir=None`` checks every time.
    """
    path = Path(path)
    siblings = [p for p in (path.parent / f"{path.name}.zip", path.parent / f"{path.name}.gz") if p.is_file()]
    record = None
    if record_dir is not None:
        key = cache_key("verify_h5", _CHECK_VERSION, source_identity(path), [source_identity(p) for p in siblings])
        record = Path(record_dir) / "verified" / f"{key}.json"
        if record.is_file():
            return []
    problems, how = heap_problems(path), ""
    if not problems:
        problems, how = published_problems(path)
    if not problems and record is not None:
        try:
            record.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(record, json.dumps({"file": str(path), "checked_against": how}))
        except OSError:  # a read-only cache folder: check again next time
            pass
    return problems

