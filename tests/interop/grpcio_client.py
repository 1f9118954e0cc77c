"""Calls healthweb's Health with Python grpcio, a client no one here wrote.

Prints one line per observation; the Rust test drives status changes from them.
"""

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def status_name(response):
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


def main(addr):
    with grpc.insecure_channel(addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for name in ["", "payments"]:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=10)
            print(f"check {name or repr('')} {status_name(reply)}", flush=True)
        try:
            stub.Check(health_pb2.HealthCheckRequest(service="missing"), timeout=10)
        except grpc.RpcError as err:
            print(f"check missing {err.code().name} {err.details()}", flush=True)
        listed = stub.List(health_pb2.HealthListRequest(), timeout=10)
        pairs = sorted((k, status_name(v)) for k, v in listed.statuses.items())
        print("list " + " ".join(f"{k or repr('')}={v}" for k, v in pairs), flush=True)

        watch = stub.Watch(health_pb2.HealthCheckRequest(service="payments"), timeout=10)
        for i, reply in enumerate(watch):
            print(f"watch payments {status_name(reply)}", flush=True)
            if i == 1:
                watch.cancel()
                break
        unknown = stub.Watch(health_pb2.HealthCheckRequest(service="missing"), timeout=10)
        print(f"watch missing {status_name(next(unknown))}", flush=True)
        unknown.cancel()

        reflection = ProtoReflectionDescriptorDatabase(channel)
        print("reflection " + " ".join(sorted(reflection.get_services())), flush=True)
        health = reflection.FindFileContainingSymbol("grpc.health.v1.Health")
        print(f"reflection file {health.name}", flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
