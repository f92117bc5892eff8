"""Upload throughput and server memory, against writing the same bytes to the same disk directly.

Starts the real service (gunicorn) on 127.0.0.1 with a fresh data folder, builds a valid MP4 of the
requested size (a real clip plus a large ``free`` box, so validation runs as for any upload), then
measures, in this one run:

* baseline: Python writing the bytes to a file in the same data folder, with fsync;
* tus: the tuspy client, in chunks;
* multipart: one streamed ``POST /v1/assets``;

and prints MiB/s, the ratio to the baseline (goal >= 0.7) and the peak RSS of the server processes
above idle while uploading (goal < 150 MiB above idle).

    .venv/bin/python bench/upload_throughput.py --size-mib 1024
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import requests
from tusclient import client as tus

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import contextlib

from media_service.storage import sha256_file

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MEDIA_SERVICE_TEST_MEDIA", REPO.parent / "shared" / "media"))
MiB = 1024 * 1024


def build_video(target: Path, size: int, workdir: Path) -> None:
    """A faststart MP4 of a real clip followed by a ``free`` box that pads it to ``size`` bytes."""
    clip = workdir / "clip.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(SHARED / "video" / "flower.mp4"), "-c", "copy",
                    "-movflags", "+faststart", str(clip)], check=True)
    head = clip.read_bytes()
    pad = size - len(head) - 16
    with target.open("wb") as out:
        out.write(head)
        out.write((1).to_bytes(4, "big") + b"free" + (pad + 16).to_bytes(8, "big"))
        block = os.urandom(8 * MiB)
        while pad > 0:
            out.write(block[: min(pad, len(block))])
            pad -= len(block)


def direct_write(source: Path, target: Path) -> float:
    start = time.perf_counter()
    with source.open("rb") as src, target.open("wb") as dst:
        while block := src.read(8 * MiB):
            dst.write(block)
        dst.flush()
        os.fsync(dst.fileno())
    elapsed = time.perf_counter() - start
    target.unlink()
    return elapsed


class MemorySampler:
    """Peak summed RSS of a process tree, sampled every 20 ms."""

    def __init__(self, root_pid: int) -> None:
        self.root = psutil.Process(root_pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def current(self) -> int:
        total = 0
        for proc in [self.root, *self.root.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += proc.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.current())

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class MultipartBody:
    """A streamed multipart body with a known length (requests sends Content-Length, not chunks)."""

    def __init__(self, path: Path, boundary: str) -> None:
        self.prefix = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                       f"filename=\"{path.name}\"\r\nContent-Type: video/mp4\r\n\r\n").encode()
        self.suffix = f"\r\n--{boundary}--\r\n".encode()
        self.size = len(self.prefix) + path.stat().st_size + len(self.suffix)
        self.file = path.open("rb")
        self.stage = 0

    def __len__(self) -> int:
        return self.size

    def read(self, n: int = -1) -> bytes:
        if self.stage == 0:
            self.stage = 1
            return self.prefix
        if self.stage == 1:
            data = self.file.read(n if n > 0 else 8 * MiB)
            if data:
                return data
            self.stage = 2
            return self.suffix
        return b""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--chunk-mib", type=int, default=32, help="tus PATCH size")
    args = parser.parse_args()
    size = args.size_mib * MiB

    with tempfile.TemporaryDirectory(prefix="bench-upload-", dir=REPO) as tmp:
        work = Path(tmp)
        data_dir = work / "data"
        source = work / "big.mp4"
        build_video(source, size, work)
        digest = sha256_file(source)

        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIA_SERVICE_")}
        env.update(MEDIA_SERVICE_DATA_DIR=str(data_dir), MEDIA_SERVICE_MAX_MULTIPART_BYTES=str(size + MiB),
                   MEDIA_SERVICE_LOG_LEVEL="WARNING", PYTHONPATH=str(REPO))
        subprocess.run([sys.executable, "-m", "media_service", "db", "upgrade"], env=env, check=True,
                       capture_output=True)
        key = json.loads(subprocess.run([sys.executable, "-m", "media_service", "merchants", "create", "bench",
                                         "--json"], env=env, check=True, capture_output=True,
                                        text=True).stdout)["api_key"]
        headers = {"Authorization": f"Bearer {key}"}
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = subprocess.Popen([sys.executable, "-m", "media_service", "serve", "--port", str(port),
                                   "--no-worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    requests.get(base + "/v1/openapi.json", timeout=1)
                    break
                except requests.ConnectionError:
                    time.sleep(0.1)
            data_dir.mkdir(exist_ok=True)
            baseline = direct_write(source, data_dir / "direct-write.bin")
            idle = MemorySampler(server.pid).current()

            with MemorySampler(server.pid) as tus_memory:
                start = time.perf_counter()
                uploader = tus.TusClient(base + "/v1/uploads/", headers=headers).uploader(
                    str(source), chunk_size=args.chunk_mib * MiB, metadata={"filename": "big.mp4"})
                uploader.upload()
                tus_time = time.perf_counter() - start
            upload_id = uploader.url.rsplit("/", 1)[1]
            state = requests.get(f"{base}/v1/uploads/{upload_id}", headers=headers, timeout=30).json()
            asset = requests.get(f"{base}/v1/assets/{state['asset_id']}", headers=headers, timeout=30).json()
            assert asset["sha256"] == digest, "tus upload arrived corrupted"
            requests.delete(f"{base}/v1/assets/{asset['id']}", headers=headers, timeout=30)

            boundary = "benchboundary7d3f"
            with MemorySampler(server.pid) as multipart_memory:
                start = time.perf_counter()
                response = requests.post(base + "/v1/assets", data=MultipartBody(source, boundary), timeout=600,
                                         headers={**headers,
                                                  "Content-Type": f"multipart/form-data; boundary={boundary}"})
                multipart_time = time.perf_counter() - start
            assert response.status_code == 201, response.text
            assert response.json()["sha256"] == digest
            # the baseline again, after the uploads, and the faster of the two counts (fair to the baseline)
            baseline = min(baseline, direct_write(source, data_dir / "direct-write.bin"))
        finally:
            server.terminate()
            server.wait(timeout=20)

    mib = size / MiB
    rows = [("direct write (baseline)", baseline, None), ("tus (tuspy)", tus_time, tus_memory.peak),
            ("multipart POST", multipart_time, multipart_memory.peak)]
    print(f"upload throughput, {mib:.0f} MiB file, 127.0.0.1, same disk")
    print(f"{'path':<26}{'seconds':>9}{'MiB/s':>9}{'ratio':>8}{'peak RSS above idle':>22}")
    for name, seconds, peak in rows:
        extra = f"{(peak - idle) / MiB:.1f} MiB" if peak is not None else ""
        print(f"{name:<26}{seconds:>9.2f}{mib / seconds:>9.1f}{baseline / seconds:>8.2f}{extra:>22}")
    print(json.dumps({"size_mib": mib, "baseline_s": round(baseline, 3), "tus_s": round(tus_time, 3),
                      "multipart_s": round(multipart_time, 3), "tus_ratio": round(baseline / tus_time, 3),
                      "multipart_ratio": round(baseline / multipart_time, 3),
                      "tus_peak_above_idle_mib": round((tus_memory.peak - idle) / MiB, 1),
                      "multipart_peak_above_idle_mib": round((multipart_memory.peak - idle) / MiB, 1)}))


if __name__ == "__main__":
    main()
