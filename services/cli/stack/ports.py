"""Who holds a TCP port, so "port taken" errors can name the culprit."""

import socket

import psutil

from services.cli.stack.errors import PortTaken


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether nothing listens on `host:port` (a bind test, like the server's own)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the system picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """Whether something accepts connections on `host:port`."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def listeners() -> dict[int, int | None]:
    """Every listening TCP port and its pid, when the system lets us see it (one scan)."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return {}
    return {
        connection.laddr.port: connection.pid
        for connection in connections
        if connection.status == psutil.CONN_LISTEN and connection.laddr
    }


def listener_pid(port: int) -> int | None:
    """The pid listening on `port`, when the system lets us see it."""
    return listeners().get(port)


def describe_listener(port: int) -> str:
    """A human description of whoever holds `port` ("pid 42 (java)" or "an unknown process")."""
    pid = listener_pid(port)
    if pid is None:
        return "an unknown process"
    try:
        return f"pid {pid} ({psutil.Process(pid).name()})"
    except psutil.Error:
        return f"pid {pid}"


def require_free(port: int, what: str, setting: str) -> None:
    """Raise PortTaken, naming the holder and the setting to change, when `port` is in use."""
    if not port_is_free(port):
        raise PortTaken(
            f"port {port} needed by {what} is taken by {describe_listener(port)}; "
            f"stop it or choose another port with {setting}"
        )
