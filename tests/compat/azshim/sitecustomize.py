"""Loaded by Python at start-up when this folder is on PYTHONPATH: makes the Azure CLI (a
separate process) resolve *.localhost names to 127.0.0.1, as browsers do and glibc does not."""
import socket
_real = socket.getaddrinfo
def _gai(host, *a, **k):
    if isinstance(host, bytes):
        host = host.decode()
    if isinstance(host, str) and (host == "localhost" or host.endswith(".localhost")):
        host = "127.0.0.1"
    return _real(host, *a, **k)
socket.getaddrinfo = _gai
