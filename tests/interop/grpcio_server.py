"""A gRPC health server no one here wrote: Python grpcio with grpcio-health-checking.

Usage: grpcio_server.py [--require-header NAME:VALUE]... [--refuse-gzip] [--answer-gzip]
                        [CERT KEY [CLIENT_CA]]
Prints its port once serving; then reads lines "NAME STATUS" ("-" for "") from
stdin, sets them, and answers "ok".

--require-header: calls without that header (grpc-health-probe's -rpc-header) end
UNAUTHENTICATED. --refuse-gzip: gRPC core's own refusal of gzip-compressed requests
(UNIMPLEMENTED), which shows that a client really compressed. --answer-gzip: every
answer is gzip-compressed, so a client must take them.
"""

import argparse
import sys
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

# gRPC core's channel argument: bit i enables compression algorithm i; 1 is identity only.
IDENTITY_ONLY = ("grpc.compression_enabled_algorithms_bitset", 1)


class RequireHeaders(grpc.ServerInterceptor):
    def __init__(self, headers):
        self.headers = headers

    def intercept_service(self, continuation, details):
        sent = {(m.key, m.value) for m in details.invocation_metadata}
        missing = [f"{k}: {v}" for k, v in self.headers if (k, v) not in sent]
        if not missing:
            return continuation(details)

        def deny(request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing header " + ", ".join(missing))

        handler = continuation(details)
        if handler is not None and handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(deny)
        return grpc.unary_unary_rpc_method_handler(deny)


def header(text):
    name, value = text.split(":", 1)
    return name.strip().lower(), value.strip()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--require-header", type=header, action="append", default=[])
    parser.add_argument("--refuse-gzip", action="store_true")
    parser.add_argument("--answer-gzip", action="store_true")
    parser.add_argument("tls", nargs="*", metavar="CERT KEY [CLIENT_CA]")
    args = parser.parse_args()

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=16),
        interceptors=[RequireHeaders(args.require_header)] if args.require_header else [],
        options=[IDENTITY_ONLY] if args.refuse_gzip else [],
        compression=grpc.Compression.Gzip if args.answer_gzip else None,
    )
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    if args.tls:
        cert, key = (open(p, "rb").read() for p in args.tls[:2])
        ca = open(args.tls[2], "rb").read() if len(args.tls) > 2 else None
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
    main()
