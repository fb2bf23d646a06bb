"""Small TCP helpers for tests that stand in for what a deployment has (DNS, port 443): a
listener on loopback whose connections are piped to the test server, until the test ends."""
import contextlib
import socket
import threading


def pipe(a, b):
    """Copies `a` to `b` until `a` ends, then shuts both down."""
    try:
        while chunk := a.recv(65536):
            b.sendall(chunk)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def splice(client, port):
    """Pipes `client` to the server on loopback `port`, both ways."""
    upstream = socket.create_connection(("127.0.0.1", port), timeout=30)
    for a, b in ((client, upstream), (upstream, client)):
        threading.Thread(target=pipe, args=(a, b), daemon=True).start()


@contextlib.contextmanager
def serving(listener, handle):
    """Accepts on `listener` (bound, not yet listening) and hands each connection to `handle`
    on a thread of its own; yields the listener's port; stops and closes when the block ends."""
    listener.listen(16)
    listener.settimeout(0.5)
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=handle, args=(client,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
