"""Local-disk storage, the default backend.

Objects are written to a temporary name in the target folder, fsynced and renamed into place, so a
crash leaves either the old object or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from media_service.storage.base import Storage, StoredObject, check_key, sha256_file, storage_full_as_error


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileSystemStorage(Storage):
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp_root = self.root / ".tmp"
        self.tmp_root.mkdir(exist_ok=True)

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _publish(self, tmp: Path, key: str) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
        _fsync_dir(target.parent)

    def put_stream(self, key: str, stream: BinaryIO, *, chunk_size: int = 1024 * 1024) -> StoredObject:
        digest = hashlib.sha256()
        size = 0
        tmp = self.tmp_root / f"put-{uuid.uuid4().hex}"
        try:
            with storage_full_as_error(), tmp.open("wb") as handle:
                while block := stream.read(chunk_size):
                    digest.update(block)
                    handle.write(block)
                    size += len(block)
                handle.flush()
                os.fsync(handle.fileno())
            self._publish(tmp, key)
        finally:
            tmp.unlink(missing_ok=True)
        return StoredObject(key=key, size=size, sha256=digest.hexdigest())

    def put_file(self, key: str, path: Path, *, move: bool = False, sha256: str | None = None) -> StoredObject:
        path = Path(path)
        digest = sha256 or sha256_file(path)
        size = path.stat().st_size
        tmp = self.tmp_root / f"put-{uuid.uuid4().hex}"
        try:
            if move:
                try:
                    os.replace(path, tmp)  # same filesystem: no copy
                except OSError:  # another filesystem: copy, then remove the source
                    with storage_full_as_error():
                        shutil.copyfile(path, tmp)
                    path.unlink(missing_ok=True)
            else:
                with storage_full_as_error():
                    shutil.copyfile(path, tmp)
            with tmp.open("rb+") as handle:
                os.fsync(handle.fileno())
            self._publish(tmp, key)
        finally:
            tmp.unlink(missing_ok=True)
        return StoredObject(key=key, size=size, sha256=digest)

    def filesystem_path(self, key: str) -> Path | None:
        return self.path(key)

    def open(self, key: str) -> BinaryIO:
        return self.path(key).open("rb")

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def size(self, key: str) -> int:
        return self.path(key).stat().st_size

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        shutil.rmtree(self.path(prefix.rstrip("/")), ignore_errors=True)

    def check_writable(self) -> None:
        with tempfile.NamedTemporaryFile(dir=self.tmp_root, prefix="health-") as handle:
            handle.write(b"ok")
            handle.flush()

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        path = self.path(key)
        if not path.is_file():
            raise FileNotFoundError(key)
        yield path

    @contextmanager
    def staging_dir(self) -> Iterator[Path]:
        # Inside the root so publishing is a rename on the same filesystem.
        with tempfile.TemporaryDirectory(dir=self.tmp_root, prefix="stage-") as tmp:
            yield Path(tmp)
