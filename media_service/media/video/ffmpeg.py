"""The only place where ffmpeg and ffprobe are spawned.

Every run is an argument list (never a shell), gets a wall-clock limit enforced with SIGKILL on the whole
process group, keeps only a bounded tail of stderr, and reports progress from ffmpeg's own ``-progress``
output. Untrusted inputs go through :func:`safe_input_args` so that a file can never make ffmpeg open
another protocol, another demuxer (HLS, concat, DASH ...) or another file.


Over 500 lines on purpose: all ffmpeg invocation stays in one place (timeouts, process groups, progress,
error tails, the input allow-list), so no other module spawns it."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from media_service.errors import InsufficientStorage, MediaServiceError, ProcessingError

log = logging.getLogger(__name__)

#: Demuxers ffmpeg may use on uploaded files (``-format_whitelist``). ``mov`` covers MP4/MOV/3GP,
#: ``matroska`` covers Matroska and WebM. Everything else (HLS, DASH, concat, image2, AVI ...) is refused.
ALLOWED_DEMUXERS: tuple[str, ...] = ("mov", "matroska")

#: What :func:`safe_input_args` accepts as ``demuxer``: a demuxer name, or one of our format names
#: (``MediaFacts.format``), mapped to the demuxer that reads it.
DEMUXER_FOR_FORMAT: dict[str, str] = {"mov": "mov", "mp4": "mov", "3gp": "mov", "matroska": "matroska",
                                      "webm": "matroska"}

#: Bytes of stderr kept in memory per run; the error message keeps the last :data:`ERROR_TAIL_BYTES`.
STDERR_KEEP_BYTES = 16 * 1024
ERROR_TAIL_BYTES = 4 * 1024

#: Largest ffprobe JSON output accepted, so a hostile file cannot make us buffer gigabytes.
MAX_PROBE_OUTPUT_BYTES = 32 * 1024 * 1024

#: How often ffmpeg writes a progress block (``-stats_period``).
PROGRESS_PERIOD_SECONDS = 0.25

_POLL_SECONDS = 0.05
#: How often ``watch_paths`` are measured. A fast writer can overshoot the cap by what it writes in
#: this time; for a single output file add ffmpeg's own ``-fs`` too, which stops exactly.
_WATCH_EVERY_SECONDS = 0.1


#: How ffmpeg reports ENOSPC/EDQUOT (av_strerror) when it cannot write its output.
_DISK_FULL_SIGNS = ("No space left on device", "Disk quota exceeded")


class FFmpegError(ProcessingError):
    """ffmpeg or ffprobe failed; keeps the command line and the tail of stderr for the job log."""

    code = "ffmpeg_failed"
    title = "Media processing failed"

    def __init__(self, detail: str, *, command: Sequence[str], returncode: int | None,
                 stderr_tail: str = "") -> None:
        super().__init__(detail)
        # Kept as attributes, not problem "extra" members: command lines name server paths.
        self.command = list(command)
        self.returncode = returncode
        self.stderr_tail = stderr_tail[-ERROR_TAIL_BYTES:]


class FFmpegTimeout(FFmpegError):
    """The run took longer than its wall-clock limit and was killed."""

    code = "ffmpeg_timeout"
    title = "Media processing timed out"


class OutputTooLarge(FFmpegError):
    """The files written by the run grew past their size cap and the run was killed."""

    code = "output_too_large"
    title = "Output too large"


@dataclass(frozen=True)
class FFmpegResult:
    """What a finished run left behind: exit status, stderr tail and the last progress block."""

    command: list[str]
    returncode: int
    stderr_tail: str
    elapsed: float
    progress: dict[str, str] = field(default_factory=dict)
    out_time: float | None = None  # seconds of output written (ffmpeg's out_time_us), when known

    @property
    def stderr_lines(self) -> list[str]:
        """Non-empty stderr lines of the kept tail."""
        return [line for line in self.stderr_tail.splitlines() if line.strip()]




@dataclass(frozen=True)
class FFmpegTools:
    """Which ffmpeg and ffprobe run, and how long one run may take (the service's settings of the same names
    in upper case)."""

    ffmpeg_binary: str
    ffprobe_binary: str
    ffmpeg_timeout_seconds: float
    probe_timeout_seconds: float

def safe_input_args(path: str | os.PathLike[str], demuxer: str | None, *,
                    max_pixels: int | None = None) -> list[str]:
    """Options to put in front of an untrusted input, ending with ``-i file:<absolute path>``.

    Only the ``file`` protocol and the allow-listed demuxers can be used, the demuxer is forced when the
    caller knows it (from the sniffed magic bytes, never the name; ``MediaFacts.format`` works too), and
    the ``file:`` prefix stops a name such as ``-x`` or ``http:...`` from being read as an option or a
    URL. ``max_pixels`` makes the decoders refuse bigger frames before allocating them (ffprobe decodes
    a frame or two too).
    """
    args = ["-protocol_whitelist", "file", "-format_whitelist", ",".join(ALLOWED_DEMUXERS)]
    if max_pixels is not None:
        args += ["-max_pixels", str(int(max_pixels))]
    if demuxer is not None:
        if demuxer not in DEMUXER_FOR_FORMAT:
            raise ValueError(f"demuxer {demuxer!r} is not allowed for untrusted input; "
                             f"use one of {sorted(DEMUXER_FOR_FORMAT)}")
        demuxer = DEMUXER_FOR_FORMAT[demuxer]
        args += ["-f", demuxer]
        if demuxer == "mov":
            # Never follow QuickTime data references (alias/URL drefs) to other files.
            args += ["-enable_drefs", "0", "-use_absolute_path", "0"]
    args += ["-i", "file:" + os.path.abspath(os.fspath(path))]
    return args


class _TailBuffer:
    """Keeps the last ``limit`` bytes written to it: stderr of a long run never grows memory."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._data = bytearray()
        self._lock = threading.Lock()

    def feed(self, chunk: bytes) -> None:
        with self._lock:
            self._data += chunk
            if len(self._data) > 2 * self.limit:
                del self._data[:-self.limit]

    def text(self) -> str:
        with self._lock:
            return bytes(self._data[-self.limit:]).decode("utf-8", errors="replace")


def _drain(stream: IO[bytes], sink: Callable[[bytes], None]) -> None:
    """Read a pipe until EOF in a thread, handing each chunk to ``sink``."""
    try:
        for chunk in iter(lambda: stream.read1(65536), b""):  # type: ignore[attr-defined]
            sink(chunk)
    except (OSError, ValueError):
        pass
    finally:
        with contextlib.suppress(OSError):
            stream.close()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and anything it started (it runs in its own session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()


def _tree_size(paths: Iterable[Path]) -> int:
    """Total size in bytes of the given files and folders (recursively); missing ones count 0."""
    total = 0
    stack = [Path(p) for p in paths]
    while stack:
        path = stack.pop()
        try:
            if path.is_dir():
                with os.scandir(path) as entries:
                    for entry in entries:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(Path(entry.path))
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
            elif path.is_file():
                total += path.stat().st_size
        except OSError:
            continue
    return total


_PATH_RE = re.compile(r"(?:file:)?(/[^\s'\"]+)")


def _redact(text: str) -> str:
    """Replace absolute paths by their base name: error details may be shown to API clients."""
    return _PATH_RE.sub(lambda m: os.path.basename(m.group(1)) or "<path>", text)


def _summary(stderr_tail: str) -> str:
    lines = [line.strip() for line in stderr_tail.splitlines() if line.strip()]
    return _redact(lines[-1])[:300] if lines else "no error output"


def _program_name(binary: str) -> str:
    return os.path.basename(binary) or binary


_PR_SET_PDEATHSIG = 1


@functools.cache
def _libc() -> Any:
    import ctypes

    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return None


def _die_with(parent_pid: int) -> Callable[[], None]:
    """A ``preexec_fn`` that makes the kernel SIGKILL the child when the process that started it dies.

    ffmpeg runs in its own session (so a timeout can kill its whole group), which also means a SIGKILLed
    job process would leave it running until its next failed write; with this it dies with the job.
    The caller waits for the child in the thread that started it, so the thread cannot end first.
    """
    libc = _libc()

    def apply() -> None:
        if libc is not None:
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent_pid:  # the parent died before the request took effect
            os._exit(1)

    return apply


class _Run:
    """One child process with the shared kill/timeout/stderr handling."""

    def __init__(self, command: list[str], *, timeout: float) -> None:
        self.command = command
        self.timeout = timeout
        self.stderr = _TailBuffer(STDERR_KEEP_BYTES)
        self.started = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True, close_fds=True, preexec_fn=_die_with(os.getpid()),
            )
        except OSError as exc:
            raise FFmpegError(
                f"{_program_name(command[0])} could not be started ({exc.strerror}); "
                "check that ffmpeg is installed and FFMPEG_BINARY/FFPROBE_BINARY point to it",
                command=command, returncode=None,
            ) from exc
        self._stderr_thread = threading.Thread(
            target=_drain, args=(self.proc.stderr, self.stderr.feed), daemon=True)
        self._stderr_thread.start()

    @property
    def remaining(self) -> float:
        return self.timeout - (time.monotonic() - self.started)

    def kill(self) -> None:
        _kill_group(self.proc)
        self.finish()

    def finish(self) -> int:
        """Wait for the exit (it was killed or has ended) and for the reader threads."""
        try:
            returncode = self.proc.wait(timeout=max(self.remaining, 0) + 5)
        except subprocess.TimeoutExpired:
            _kill_group(self.proc)
            returncode = self.proc.wait()
        self._stderr_thread.join(timeout=5)
        return returncode

    def timeout_error(self) -> FFmpegTimeout:
        name = _program_name(self.command[0])
        return FFmpegTimeout(
            f"{name} took longer than {self.timeout:g} s and was stopped; the file is too long or too "
            "complex to process: shorten it or lower its resolution",
            command=self.command, returncode=self.proc.returncode, stderr_tail=self.stderr.text(),
        )

    def failure(self, returncode: int) -> MediaServiceError:
        """Why the program failed: a full disk is ``storage_full`` (the caller may retry later), anything
        else an ``FFmpegError`` with the tail of its messages."""
        tail = self.stderr.text()
        name = _program_name(self.command[0])
        if any(sign in tail for sign in _DISK_FULL_SIGNS):
            return InsufficientStorage(f"{name} ran out of disk space while writing its output; nothing was "
                                       "kept, try again later")
        return FFmpegError(
            f"{name} failed (exit status {returncode}): {_summary(tail)}",
            command=self.command, returncode=returncode, stderr_tail=tail,
        )


def _parse_out_time(block: dict[str, str]) -> float | None:
    for key, scale in (("out_time_us", 1e-6), ("out_time_ms", 1e-6)):  # out_time_ms is µs too (sic)
        value = block.get(key, "")
        try:
            seconds = int(value) * scale
        except ValueError:
            continue
        return seconds if seconds >= 0 else None
    return None


def run_ffmpeg(args: list[str], *, timeout: float, binary: str = "ffmpeg", duration: float | None = None,
               on_progress: Callable[[float], None] | None = None, max_output_bytes: int | None = None,
               watch_paths: Sequence[Path] = ()) -> FFmpegResult:
    """Run ffmpeg with ``args`` and wait for it, reporting progress and enforcing the limits.

    ``on_progress`` receives a non-decreasing fraction in 0..1 (when ``duration`` is known) and 1.0 once
    ffmpeg has finished; if it raises (a cancelled job, say), ffmpeg is killed and the exception
    propagates. ``timeout`` is wall-clock seconds; over it the process group gets SIGKILL and
    :class:`FFmpegTimeout` is raised. With ``max_output_bytes``, the total size of ``watch_paths``
    (files or folders) is checked while running and :class:`OutputTooLarge` raised when exceeded.
    A non-zero exit raises :class:`FFmpegError` with the command and the stderr tail.
    """
    command = [binary, "-nostdin", "-hide_banner", "-nostats", "-progress", "pipe:1",
               "-stats_period", str(PROGRESS_PERIOD_SECONDS)]
    if not any(a in {"-v", "-loglevel"} for a in args):
        command += ["-loglevel", "error"]
    command += list(args)

    events: queue.Queue[dict[str, str] | None] = queue.Queue()
    pending: dict[str, str] = {}
    buffer = bytearray()

    def on_stdout(chunk: bytes) -> None:
        buffer.extend(chunk)
        while b"\n" in buffer:
            raw, _, rest = bytes(buffer).partition(b"\n")
            buffer[:] = rest
            key, sep, value = raw.decode("utf-8", errors="replace").strip().partition("=")
            if not sep:
                continue
            pending[key] = value
            if key == "progress":  # ffmpeg ends each block with progress=continue|end
                events.put(dict(pending))
                pending.clear()
        if len(buffer) > 65536:  # not ffmpeg's progress format: do not buffer it
            buffer.clear()

    run = _Run(command, timeout=timeout)
    reader = threading.Thread(target=_drain, args=(run.proc.stdout, on_stdout), daemon=True)
    reader.start()
    last_block: dict[str, str] = {}
    out_time: float | None = None
    reported = -1.0
    next_watch = time.monotonic()
    try:
        while True:
            try:
                block = events.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                block = None
            if block is not None:
                last_block = block
                parsed = _parse_out_time(block)
                if parsed is not None:  # 0.0 is a real answer: nothing was written (no readable packets)
                    out_time = parsed
                if on_progress is not None and duration and duration > 0 and out_time is not None:
                    fraction = min(max(out_time / duration, 0.0), 1.0)
                    if fraction > reported and block.get("progress") != "end":
                        reported = fraction
                        on_progress(fraction)
            if max_output_bytes is not None and time.monotonic() >= next_watch:
                next_watch = time.monotonic() + _WATCH_EVERY_SECONDS
                size = _tree_size(watch_paths)
                if size > max_output_bytes:
                    run.kill()
                    raise OutputTooLarge(
                        f"the output grew past {max_output_bytes} bytes and processing was stopped; "
                        "lower the output resolution, bit rate or duration",
                        command=command, returncode=run.proc.returncode, stderr_tail=run.stderr.text(),
                    )
            if run.remaining <= 0:
                run.kill()
                raise run.timeout_error()
            if run.proc.poll() is not None and not reader.is_alive() and events.empty():
                break
    except BaseException:
        if run.proc.poll() is None:
            run.kill()
        raise
    returncode = run.finish()
    reader.join(timeout=5)
    if max_output_bytes is not None and _tree_size(watch_paths) > max_output_bytes:
        raise OutputTooLarge(
            f"the output grew past {max_output_bytes} bytes; lower the output resolution, bit rate "
            "or duration", command=command, returncode=returncode, stderr_tail=run.stderr.text())
    if returncode != 0:
        raise run.failure(returncode)
    if on_progress is not None and reported < 1.0:
        on_progress(1.0)
    return FFmpegResult(command=command, returncode=returncode, stderr_tail=run.stderr.text(),
                        elapsed=time.monotonic() - run.started, progress=last_block, out_time=out_time)


def stream_ffmpeg(args: list[str], sink: Callable[[bytes], bool], *, timeout: float,
                  binary: str = "ffmpeg") -> float:
    """Run ffmpeg with ``args`` (whose output is ``pipe:1``) and hand what it writes to ``sink``, chunk by chunk.

    For reading a stream's bytes (packets copied with ``-c copy``) without a temporary file. ``sink`` runs
    in a reader thread and returns True to stop early: ffmpeg is then killed and no error is raised (the
    sink has what it needed). Same kill/timeout handling as :func:`run_ffmpeg`; returns the seconds taken.
    """
    command = [binary, "-nostdin", "-hide_banner", "-nostats"]
    if not any(a in {"-v", "-loglevel"} for a in args):
        command += ["-loglevel", "error"]
    command += list(args)
    stop = threading.Event()

    def on_stdout(chunk: bytes) -> None:
        if not stop.is_set() and sink(chunk):
            stop.set()

    run = _Run(command, timeout=timeout)
    if _pump_stdout(run, on_stdout, stop):
        return time.monotonic() - run.started
    returncode = run.finish()
    if returncode != 0:
        raise run.failure(returncode)
    return time.monotonic() - run.started


def _pump_stdout(run: _Run, on_stdout: Callable[[bytes], None], stop: threading.Event) -> bool:
    """Hand the process's stdout to ``on_stdout`` (in a reader thread) until it exits, within its time limit.

    Returns True when ``stop`` was set meanwhile: the process is then killed. A timeout kills it and raises.
    """
    reader = threading.Thread(target=_drain, args=(run.proc.stdout, on_stdout), daemon=True)
    reader.start()
    try:
        while run.proc.poll() is None or reader.is_alive():
            if stop.is_set():
                run.kill()
                reader.join(timeout=5)
                return True
            if run.remaining <= 0:
                run.kill()
                raise run.timeout_error()
            reader.join(timeout=_POLL_SECONDS)
    except BaseException:
        if run.proc.poll() is None:
            run.kill()
        raise
    return False


def run_ffprobe(args: list[str], *, timeout: float, binary: str = "ffprobe",
                fail_on: Sequence[str] = ()) -> dict[str, Any]:
    """Run ffprobe with JSON output and return it parsed; same kill/timeout handling as ffmpeg.

    ``fail_on``: stderr texts that make even a zero exit a failure (ffprobe still prints JSON when a
    decoder refused a frame, for example, just with zero sizes).
    """
    command = [binary, "-hide_banner", "-v", "error", "-print_format", "json", *args]
    chunks: list[bytes] = []
    size = 0
    overflow = threading.Event()

    def on_stdout(chunk: bytes) -> None:
        nonlocal size
        size += len(chunk)
        if size > MAX_PROBE_OUTPUT_BYTES:
            overflow.set()
        else:
            chunks.append(chunk)

    run = _Run(command, timeout=timeout)
    if _pump_stdout(run, on_stdout, overflow):
        raise OutputTooLarge(f"ffprobe printed more than {MAX_PROBE_OUTPUT_BYTES} bytes; the file has too many "
                             "streams or packets to inspect", command=command, returncode=run.proc.returncode,
                             stderr_tail=run.stderr.text())
    returncode = run.finish()
    if returncode != 0:
        raise run.failure(returncode)
    tail = run.stderr.text()
    if any(marker in tail for marker in fail_on):
        raise run.failure(returncode)
    try:
        data = json.loads(b"".join(chunks) or b"{}")
    except ValueError as exc:
        raise FFmpegError("ffprobe printed output that is not JSON", command=command,
                          returncode=returncode, stderr_tail=run.stderr.text()) from exc
    if not isinstance(data, dict):
        raise FFmpegError("ffprobe printed unexpected JSON", command=command, returncode=returncode,
                          stderr_tail=run.stderr.text())
    return data


def _capture(command: list[str], timeout: float = 10.0) -> str | None:
    """stdout of a short informational command, or None when it cannot run."""
    try:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                              check=False, start_new_session=True)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", errors="replace")


@functools.lru_cache(maxsize=8)
def ffmpeg_version(binary: str = "ffmpeg") -> str | None:
    """Version string of ``binary`` (e.g. ``5.1.9-0+deb12u1``), or None when it cannot be run.

    Cached per binary: ``doctor`` and ``/v1/health`` ask often and the answer does not change.
    """
    out = _capture([binary, "-hide_banner", "-version"]) or _capture([binary, "-version"])
    if not out:
        return None
    match = re.search(r"version\s+(\S+)", out.splitlines()[0] if out.splitlines() else "")
    return match.group(1) if match else None


#: The frame :func:`has_filter` feeds a graph: tiny, grey, 8-bit, untagged (a graph that needs colour
#: tags or another pixel format sets them itself, e.g. ``format=...,setparams=...``).
PROBE_FRAME_SOURCE = "color=c=gray:s=32x32:d=0.04"


@functools.lru_cache(maxsize=32)
def has_filter(binary: str, name: str, graph: str, *, timeout: float = 30.0) -> bool:
    """Whether this ffmpeg can run ``graph`` (a test of filter ``name``) on one generated frame.

    A filter may be built in and still fail on real input (zscale without a path between two
    colourspaces, for one), so the graph is run rather than looked up in ``-filters``. The answer is
    cached per binary and graph: build the graph the way the real one will see its frames.
    """
    try:
        run_ffmpeg(["-f", "lavfi", "-i", PROBE_FRAME_SOURCE, "-vf", graph, "-f", "null", "-"],
                   binary=binary, timeout=timeout)
    except FFmpegError as exc:
        log.info("ffmpeg filter %s is not usable: %s", name, exc)
        return False
    return True


def ffmpeg_encoders(binary: str = "ffmpeg") -> set[str]:
    """Names of the encoders ``binary`` offers (``libx264``, ``libvpx-vp9`` ...); empty if it cannot run.

    Cached per binary (a fresh set is returned each call, so callers may modify it).
    """
    return set(_encoders(binary))


@functools.lru_cache(maxsize=8)
def _encoders(binary: str) -> frozenset[str]:
    out = _capture([binary, "-hide_banner", "-encoders"])
    if not out:
        return frozenset()
    names: set[str] = set()
    in_table = False
    for line in out.splitlines():
        if line.strip().startswith("------"):
            in_table = True
            continue
        parts = line.split()
        if in_table and len(parts) >= 2 and len(parts[0]) == 6:
            names.add(parts[1])
    return frozenset(names)


def _at_eof(stream: IO[bytes]) -> bool:
    """True when the pipe is closed by the writer (ffmpeg is ending by itself), without blocking."""
    import select

    try:
        readable, _, _ = select.select([stream], [], [], 0.05)
        return bool(readable) and stream.read1(1) == b""  # type: ignore[attr-defined]
    except (OSError, ValueError):
        return True


@contextlib.contextmanager
def open_ffmpeg_stream(args: list[str], *, timeout: float, binary: str = "ffmpeg") -> Iterator[IO[bytes]]:
    """Run ffmpeg with ``args`` (which write to ``pipe:1``) and yield its stdout to read as it is produced.

    For streaming consumers (raw frames at a few per second) that must never hold a whole video in
    memory. The same guarantees as :func:`run_ffmpeg`: an argument list, its own process group killed
    with SIGKILL at ``timeout`` wall-clock seconds (:class:`FFmpegTimeout`), a bounded stderr tail.
    Leaving the block early (a consumer that has seen enough, or an exception) kills ffmpeg without an
    error; if ffmpeg ended by itself with a non-zero status, :class:`FFmpegError` is raised on exit.
    """
    command = [binary, "-nostdin", "-hide_banner", "-nostats"]
    if not any(a in {"-v", "-loglevel"} for a in args):
        command += ["-loglevel", "error"]
    command += list(args)
    run = _Run(command, timeout=timeout)
    timed_out = threading.Event()

    def watchdog() -> None:
        while run.proc.poll() is None:
            if run.remaining <= 0:
                timed_out.set()
                _kill_group(run.proc)
                return
            time.sleep(min(_POLL_SECONDS * 4, max(run.remaining, 0.01)))

    guard = threading.Thread(target=watchdog, daemon=True, name="ffmpeg-stream-watchdog")
    guard.start()
    assert run.proc.stdout is not None
    ended_by_consumer = False
    try:
        yield run.proc.stdout
    except BaseException:
        ended_by_consumer = True
        raise
    finally:
        if run.proc.poll() is None and not (not ended_by_consumer and _at_eof(run.proc.stdout)):
            ended_by_consumer = True  # stopped reading while ffmpeg still had output to give
            _kill_group(run.proc)
        returncode = run.finish()
        with contextlib.suppress(OSError):
            run.proc.stdout.close()
        guard.join(timeout=1)
    if timed_out.is_set():
        raise run.timeout_error()
    if not ended_by_consumer and returncode != 0:
        raise run.failure(returncode)
