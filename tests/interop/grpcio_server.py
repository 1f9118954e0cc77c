"""A gRPC health server no one here wrote: Python grpcio with grpcio-health-checking.

Usage: grpcio_server.py [CERT KEY [CLIENT_CA]]
Prints its port once serving; then reads lines "NAME STATUS" ("-" for "") from
stdin, sets them, and answers "ok".
"""

import sys
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


def main(args):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    if args:
        cert, key = (open(p, "rb").read() for p in args[:2])
        ca = open(args[2], "rb").read() if len(args) > 2 else None
        creds = grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=ca is not None)
        port = server.add_secure_port("127.0.0.1:0", creds)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    print(port, flush=True)
    for line in sys.stdin:
        name, status = line.split()
        servicer.set("" if name == "-" else name, health_pb2.HealthCheckResponse.ServingStatus.Value(status))
        print("ok", flush=True)
    server.stop(0)


if __name__ == "__main__":
    main(sys.argv[1:])
