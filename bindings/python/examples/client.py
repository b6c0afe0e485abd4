"""A client of a usock server: needs only the socket path (no usock).

    python3 client.py /run/user/1000/usock-k3m9.../sock
"""
import socket
import sys

with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
    client.connect(sys.argv[1])
    client.sendall(b"hello from the Python client\n")
    reply = client.makefile().readline().strip()
print(f'Python client: received "{reply}"')
