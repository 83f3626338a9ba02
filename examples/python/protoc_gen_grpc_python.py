"""A protoc plugin that produces grpcio's *_pb2_grpc.py files with the
generator bundled in grpcio-tools, so `buf generate` needs no network and
no separately installed grpc_python_plugin binary.

buf hands it a CodeGeneratorRequest on stdin; it runs grpcio-tools' protoc on
the same descriptors and returns what that wrote.
"""

import pathlib
import sys
import tempfile

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from grpc_tools import protoc


def main():
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    response = plugin_pb2.CodeGeneratorResponse(
        supported_features=plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    )
    with tempfile.TemporaryDirectory() as work:
        descriptors = pathlib.Path(work) / "descriptors.pb"
        descriptors.write_bytes(
            descriptor_pb2.FileDescriptorSet(file=request.proto_file).SerializeToString()
        )
        out = pathlib.Path(work) / "out"
        out.mkdir()
        status = protoc.main(
            ["protoc", f"--descriptor_set_in={descriptors}", f"--grpc_python_out={out}"]
            + list(request.file_to_generate)
        )
        if status != 0:
            response.error = f"grpcio-tools protoc exited with {status}"
        for path in sorted(out.rglob("*.py")):
            response.file.add(name=str(path.relative_to(out)), content=path.read_text())
    sys.stdout.buffer.write(response.SerializeToString())


if __name__ == "__main__":
    main()
