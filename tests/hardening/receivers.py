"""Webhook receivers on 127.0.0.1 that behave well or badly: prompt, dripping, silent, flooding.

Each records the requests it got (headers and body) with their arrival time, so tests can measure who
was served when. They are plain sockets and threads: no HTTP framework between the test and the bytes.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Call:
    headers: dict[str, str]
    body: bytes
    at: float
    wall: float


@dataclass
class Receiver:
    """``mode``: 'ok' (answer 200 at once), 'drip' (headers, then 1 byte every ``drip_seconds``),
    'silent' (read the request, never answer), 'flood' (200 with an endless body)."""

    mode: str = "ok"
    drip_seconds: float = 3.0
    status: int = 200
    host: str = "127.0.0.1"
    port: int = 0
    calls: list[Call] = field(default_factory=list)
    connections: int = 0

    def __post_init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.host, self.port))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self._closed = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hook"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
            length = int(headers.get("Content-Length", "0"))
            while len(body) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                body += chunk
            with self._lock:
                self.calls.append(Call(headers, body, time.monotonic(), time.time()))
            if self.mode == "silent":
                self._closed.wait(60)
            elif self.mode == "drip":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: text/plain\r\n\r\n")
                for _ in range(1000):
                    if self._closed.wait(self.drip_seconds):
                        return
                    conn.sendall(b"x")
            elif self.mode == "flood":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
                block = b"y" * 65536
                while not self._closed.is_set():
                    conn.sendall(block)
            else:
                reason = b"OK" if self.status < 400 else b"Error"
                conn.sendall(b"HTTP/1.1 %d %s\r\nContent-Length: 2\r\nContent-Type: application/json\r\n"
                             b"Connection: close\r\n\r\n{}" % (self.status, reason))
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self._closed.set()
        self._sock.close()
