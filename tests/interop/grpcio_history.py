"""healthweb.v1.History through Python grpcio, with no generated code: the
message types come from the server's own reflection, as grpcurl gets them.

Usage: grpcio_history.py ADDR SERVICE
Prints one line per transition, newest first ("transition FROM TO CAUSE COUNT"),
then "uptime DAY_FRACTION BUCKETS", or "error CODE DETAILS".
"""

import sys

import grpc
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message_factory import GetMessageClass
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def main(addr, service):
    with grpc.insecure_channel(addr) as channel:
        pool = DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        history = pool.FindServiceByName("healthweb.v1.History")

        def call(name, **fields):
            method = history.FindMethodByName(name)
            request_type = GetMessageClass(method.input_type)
            response_type = GetMessageClass(method.output_type)
            stub = channel.unary_unary(
                f"/healthweb.v1.History/{name}",
                request_serializer=request_type.SerializeToString,
                response_deserializer=response_type.FromString,
            )
            return stub(request_type(**fields), timeout=10)

        status = pool.FindEnumTypeByName("grpc.health.v1.HealthCheckResponse.ServingStatus")
        cause = pool.FindEnumTypeByName("healthweb.v1.Cause")
        try:
            reply = call("Transitions", service=service, limit=100)
        except grpc.RpcError as err:
            print(f"error {err.code().name} {err.details()}", flush=True)
            return
        for t in reply.transitions:
            print(
                "transition",
                # `from` is a Python keyword: the field is only reachable by name.
                status.values_by_number[getattr(t, "from")].name,
                status.values_by_number[t.to].name,
                cause.values_by_number[t.cause].name,
                t.count,
                flush=True,
            )
        uptime = call("Uptime", service=service)
        print(f"uptime {uptime.day.serving:.3f} {len(uptime.buckets)}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
