"""One Check with Python grpcio, as a prober would: prints the status, or the
error code and details, within the deadline given in seconds.

Usage: grpcio_check.py ADDR DEADLINE_SECONDS
"""

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main(addr, deadline):
    with grpc.insecure_channel(addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=deadline)
        except grpc.RpcError as err:
            print(f"{err.code().name} {err.details()}", flush=True)
            return 1
        print(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status), flush=True)
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], float(sys.argv[2])))
