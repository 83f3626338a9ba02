"""A Python service calling the gateway through stubs generated from proto/.

Usage: client.py HOST:PORT RESENDABLE_BYNN_TOKEN DELIVERED_BYNN_TOKEN
"""
import sys

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from esign.v1 import invitation_service_pb2 as pb
from esign.v1 import invitation_service_pb2_grpc as rpc


def check(name, condition, detail=""):
    if not condition:
        raise SystemExit(f"python client: FAILED: {name} {detail}")
    print(f"ok: python {name}")


def error_info(error):
    status = rpc_status.from_call(error)
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


def main():
    target, resendable, delivered = sys.argv[1:4]
    with grpc.insecure_channel(target) as channel:
        stub = rpc.InvitationServiceStub(channel)

        accounts = stub.ListProviders(pb.ListProvidersRequest(), timeout=5).accounts
        check("ListProviders", {a.provider for a in accounts} == {pb.PROVIDER_LEEGALITY, pb.PROVIDER_SIGNNOW, pb.PROVIDER_BYNN})

        invitation = stub.GetInvitation(
            pb.GetInvitationRequest(provider=pb.PROVIDER_BYNN, invitation_id=resendable), timeout=5
        ).invitation
        check("GetInvitation", invitation.id == resendable and invitation.state == pb.INVITATION_STATE_PENDING, str(invitation))

        try:
            stub.ResendInvitation(pb.ResendInvitationRequest(provider=pb.PROVIDER_BYNN, invitation_id=delivered), timeout=5)
            check("ResendInvitation on a delivered invitation fails", False)
        except grpc.RpcError as error:
            check("error code", error.code() == grpc.StatusCode.FAILED_PRECONDITION, str(error.code()))
            info = error_info(error)
            check("ErrorInfo reason", info is not None and info.reason == "INVITATION_NOT_RESENDABLE", str(info))
            check("ErrorInfo metadata", info.metadata["status"] == "delivered" and info.metadata["provider"] == "bynn")

        try:
            stub.ResendInvitation(pb.ResendInvitationRequest(invitation_id="x"), timeout=5)
            check("unspecified provider fails", False)
        except grpc.RpcError as error:
            status = rpc_status.from_call(error)
            violations = []
            for detail in status.details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad = error_details_pb2.BadRequest()
                    detail.Unpack(bad)
                    violations = [v.field for v in bad.field_violations]
            check("BadRequest names the field", violations == ["provider"], str(violations))


if __name__ == "__main__":
    main()
