"""Peer: Python grpcio with grpcio-health-checking, as the gRPC docs show them.

Usage: python grpc_py.py PORT. Native gRPC (h2c) only. "" and "bench" are SERVING.
"""

import sys
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


def main() -> None:
    port = sys.argv[1] if len(sys.argv) > 1 else "0"
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("bench", health_pb2.HealthCheckResponse.SERVING)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(f"listening on http://127.0.0.1:{bound}", file=sys.stderr, flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
