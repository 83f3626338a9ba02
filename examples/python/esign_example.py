"""Calling esign-gateway from a Python service.

    python esign_example.py HOST:PORT send
    python esign_example.py HOST:PORT watch --cursor-file events.cursor [--events N]

`send` sends a Bynn invitation with a request_id and a deadline, retries it
safely, and shows how a refusal reads. `watch` follows WatchEvents and keeps
its place in a cursor file, so a restart resumes where it stopped.

Stubs come from `buf generate` (see buf.gen.yaml) into ./gen.
"""

import argparse
import os
import pathlib
import random
import sys
import time
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).parent / "gen"))

import grpc  # noqa: E402
from google.rpc import error_details_pb2  # noqa: E402
from grpc_status import rpc_status  # noqa: E402

from esign.v1 import event_service_pb2 as events_pb  # noqa: E402
from esign.v1 import event_service_pb2_grpc as events_rpc  # noqa: E402
from esign.v1 import invitation_service_pb2 as pb  # noqa: E402
from esign.v1 import invitation_service_pb2_grpc as rpc  # noqa: E402

# Codes after which the same request (same request_id) may be sent again:
# the gateway either did nothing (UNAVAILABLE before sending) or replays the
# first outcome (ABORTED while the first call still runs). RESOURCE_EXHAUSTED
# is retried only when RetryInfo says when: without it the limit is final.
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED}


class GatewayError(Exception):
    """A gateway refusal with its details decoded."""

    def __init__(self, error: grpc.RpcError):
        self.code = error.code()
        self.message = error.details()
        self.reason = ""
        self.metadata = {}
        self.fields = []
        self.quota = []
        self.retry_after = None
        status = rpc_status.from_call(error)
        for detail in status.details if status else []:
            for kind in (
                error_details_pb2.ErrorInfo,
                error_details_pb2.BadRequest,
                error_details_pb2.QuotaFailure,
                error_details_pb2.RetryInfo,
            ):
                if detail.Is(kind.DESCRIPTOR):
                    value = kind()
                    detail.Unpack(value)
                    self._take(value)
        super().__init__(str(self))

    def _take(self, value):
        if isinstance(value, error_details_pb2.ErrorInfo):
            self.reason = value.reason
            self.metadata = dict(value.metadata)
        elif isinstance(value, error_details_pb2.BadRequest):
            self.fields = [(v.field, v.description) for v in value.field_violations]
        elif isinstance(value, error_details_pb2.QuotaFailure):
            self.quota = [(v.subject, v.description) for v in value.violations]
        elif isinstance(value, error_details_pb2.RetryInfo):
            self.retry_after = value.retry_delay.ToTimedelta().total_seconds()

    @property
    def retryable(self):
        # An outcome the gateway cannot vouch for is never retried blindly.
        if self.metadata.get("outcome") == "unknown":
            return False
        if self.code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            return self.retry_after is not None
        return self.code in RETRYABLE

    def __str__(self):
        parts = [f"{self.code.name} {self.reason}: {self.message}"]
        parts += [f"  field {field}: {why}" for field, why in self.fields]
        parts += [f"  quota {subject}: {why}" for subject, why in self.quota]
        if self.metadata:
            parts.append("  " + ", ".join(f"{k}={v}" for k, v in sorted(self.metadata.items())))
        if self.retry_after is not None:
            parts.append(f"  retry after {self.retry_after:g} s")
        return "\n".join(parts)


def call_with_retries(method, request, timeout=10.0, attempts=4):
    """Calls `method`, sending the same request again (same request_id) while
    the gateway says that is safe, waiting as its RetryInfo asks."""
    deadline = time.monotonic() + timeout
    for attempt in range(1, attempts + 1):
        remaining = deadline - time.monotonic()
        try:
            return method(request, timeout=max(remaining, 0.05))
        except grpc.RpcError as raw:
            error = GatewayError(raw)
            if not error.retryable or attempt == attempts:
                raise error from None
            wait = error.retry_after
            if wait is None:
                wait = random.uniform(0, 0.1 * 2**attempt)
            if time.monotonic() + wait >= deadline:
                raise error from None
            print(f"retrying in {wait:.2f} s after {error.code.name} {error.reason}")
            time.sleep(wait)
    raise AssertionError("unreachable")


def bynn_invitation(email, request_id):
    return pb.SendInvitationRequest(
        provider=pb.PROVIDER_BYNN,
        request_id=request_id,
        reference=f"onboarding-{request_id[:8]}",
        signers=[pb.Signer(name="Lena Jansen", email=email)],
        bynn=pb.BynnOptions(workflow_token="wf_demo_onboarding", channel=pb.BYNN_CHANNEL_EMAIL),
    )


def send(channel):
    stub = rpc.InvitationServiceStub(channel)
    request_id = str(uuid.uuid4())
    request = bynn_invitation("lena.jansen@example.com", request_id)
    first = call_with_retries(stub.SendInvitation, request)
    invitation = first.invitations[0]
    print(f"sent {invitation.id} state {pb.InvitationState.Name(invitation.state)}")

    # A retry after a lost answer: the same request_id returns the first
    # outcome, and Bynn is not asked twice.
    again = call_with_retries(stub.SendInvitation, request)
    print(f"retried with the same request_id: {again.invitations[0].id} (same: {again == first})")

    try:
        call_with_retries(stub.SendInvitation, bynn_invitation("not-an-email", str(uuid.uuid4())))
    except GatewayError as error:
        print(f"refused as expected:\n{error}")


def watch(channel, cursor_file, wanted, idle_seconds):
    stub = events_rpc.EventServiceStub(channel)
    path = pathlib.Path(cursor_file)
    cursor = path.read_text().strip() if path.exists() else ""
    print(f"watching from {'cursor ' + cursor if cursor else 'now'}", flush=True)
    seen = 0
    # A real consumer watches for good; the example stops after a while.
    stream = stub.WatchEvents(events_pb.WatchEventsRequest(after_cursor=cursor), timeout=idle_seconds)
    try:
        for event in stream:
            print(
                f"event {events_pb.EventType.Name(event.type)} {event.provider_event} "
                f"document {event.document_id} invitation {event.invitation_id}",
                flush=True,
            )
            # Saved after each event is handled: a crash replays at most it.
            tmp = path.with_suffix(".tmp")
            tmp.write_text(event.cursor)
            os.replace(tmp, path)
            seen += 1
            if seen >= wanted:
                break
    except grpc.RpcError as raw:
        if raw.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            print(f"{seen} event(s) before the example's time ran out; cursor in {path}")
            return
        error = GatewayError(raw)
        if error.reason == "EVENT_CURSOR_EXPIRED":
            print("the cursor is older than the log; read state with GetDocument, then watch from now")
        raise error from None
    finally:
        stream.cancel()
    print(f"{seen} event(s); cursor saved in {path}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("target")
    parser.add_argument("command", choices=["send", "watch"])
    parser.add_argument("--cursor-file", default="events.cursor")
    parser.add_argument("--events", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    with grpc.insecure_channel(args.target) as channel:
        if args.command == "send":
            send(channel)
        else:
            watch(channel, args.cursor_file, args.events, args.seconds)


if __name__ == "__main__":
    main()
