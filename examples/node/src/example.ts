// Calling esign-gateway from a TypeScript service with @grpc/grpc-js.
//
//   node dist/example.js HOST:PORT send
//   node dist/example.js HOST:PORT watch [cursor-file] [events] [seconds]
//
// `send` sends a Bynn invitation with a request_id and a deadline, retries it
// safely, and shows how a refusal reads. `watch` follows WatchEvents and keeps
// its place in a cursor file, so a restart resumes where it stopped.
// Stubs come from `buf generate` (see buf.gen.yaml) into src/gen.

import { randomUUID } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";

import { BinaryReader } from "@bufbuild/protobuf/wire";
import { credentials, Metadata, ServiceError, status as Code } from "@grpc/grpc-js";

import { EventServiceClient, EventType, eventTypeToJSON, WatchEventsRequest } from "./gen/esign/v1/event_service";
import {
  BynnChannel,
  InvitationServiceClient,
  invitationStateToJSON,
  Provider,
  SendInvitationRequest,
  SendInvitationResponse,
} from "./gen/esign/v1/invitation_service";
import { Status } from "./gen/google/rpc/status";

/** A gateway refusal with its google.rpc details decoded. */
class GatewayError extends Error {
  reason = "";
  metadata: Record<string, string> = {};
  fields: [string, string][] = [];
  quota: [string, string][] = [];
  retryAfterMs: number | undefined;

  constructor(readonly code: Code, message: string, details?: Buffer) {
    super(message);
    for (const any of details ? Status.decode(details).details : []) {
      const type = any.typeUrl.slice(any.typeUrl.lastIndexOf("/") + 1);
      const reader = new BinaryReader(any.value);
      if (type === "google.rpc.ErrorInfo") this.readErrorInfo(reader);
      if (type === "google.rpc.BadRequest") this.fields = pairs(reader);
      if (type === "google.rpc.QuotaFailure") this.quota = pairs(reader);
      if (type === "google.rpc.RetryInfo") this.retryAfterMs = duration(reader);
    }
  }

  static from(error: ServiceError): GatewayError {
    const details = error.metadata?.get("grpc-status-details-bin")[0];
    return new GatewayError(error.code, error.details, details as Buffer | undefined);
  }

  // UNAVAILABLE (nothing done) and ABORTED (the first call still runs) may
  // be sent again with the same request_id; RESOURCE_EXHAUSTED only when
  // RetryInfo says when. An outcome the gateway cannot vouch for never is.
  get retryable(): boolean {
    if (this.metadata.outcome === "unknown") return false;
    if (this.code === Code.RESOURCE_EXHAUSTED) return this.retryAfterMs !== undefined;
    return this.code === Code.UNAVAILABLE || this.code === Code.ABORTED;
  }

  override toString(): string {
    const lines = [`${Code[this.code]} ${this.reason}: ${this.message}`];
    for (const [field, why] of this.fields) lines.push(`  field ${field}: ${why}`);
    for (const [subject, why] of this.quota) lines.push(`  quota ${subject}: ${why}`);
    const meta = Object.entries(this.metadata).sort(([a], [b]) => a.localeCompare(b));
    if (meta.length) lines.push("  " + meta.map(([k, v]) => `${k}=${v}`).join(", "));
    if (this.retryAfterMs !== undefined) lines.push(`  retry after ${this.retryAfterMs / 1000} s`);
    return lines.join("\n");
  }

  // google.rpc.ErrorInfo: reason = 1, domain = 2, metadata = 3 (map entries).
  private readErrorInfo(reader: BinaryReader): void {
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag();
      if (field === 1) this.reason = reader.string();
      else if (field === 3) {
        const entry = new BinaryReader(reader.bytes());
        let key = "";
        let value = "";
        while (entry.pos < entry.len) {
          const [f, w] = entry.tag();
          if (f === 1) key = entry.string();
          else if (f === 2) value = entry.string();
          else entry.skip(w);
        }
        this.metadata[key] = value;
      } else reader.skip(wireType);
    }
  }
}

/** BadRequest and QuotaFailure: repeated (1: string, 2: description) at field 1. */
function pairs(reader: BinaryReader): [string, string][] {
  const out: [string, string][] = [];
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field !== 1) {
      reader.skip(wireType);
      continue;
    }
    const item = new BinaryReader(reader.bytes());
    let first = "";
    let second = "";
    while (item.pos < item.len) {
      const [f, w] = item.tag();
      if (f === 1) first = item.string();
      else if (f === 2) second = item.string();
      else item.skip(w);
    }
    out.push([first, second]);
  }
  return out;
}

/** RetryInfo.retry_delay (google.protobuf.Duration) in milliseconds. */
function duration(reader: BinaryReader): number {
  let ms = 0;
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field !== 1) {
      reader.skip(wireType);
      continue;
    }
    const delay = new BinaryReader(reader.bytes());
    while (delay.pos < delay.len) {
      const [f, w] = delay.tag();
      if (f === 1) ms += Number(delay.int64()) * 1000;
      else if (f === 2) ms += delay.int32() / 1e6;
      else delay.skip(w);
    }
  }
  return ms;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sends the same request (same request_id) again while the gateway says
 * that is safe, waiting as its RetryInfo asks, within one overall deadline. */
async function sendWithRetries(
  client: InvitationServiceClient,
  request: SendInvitationRequest,
  timeoutMs = 10_000,
  attempts = 4,
): Promise<SendInvitationResponse> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await new Promise((resolve, reject) =>
        client.sendInvitation(request, new Metadata(), { deadline: new Date(deadline) }, (error, response) =>
          error ? reject(GatewayError.from(error)) : resolve(response),
        ),
      );
    } catch (error) {
      if (!(error instanceof GatewayError) || !error.retryable || attempt === attempts) throw error;
      const wait = error.retryAfterMs ?? Math.random() * 100 * 2 ** attempt;
      if (Date.now() + wait >= deadline) throw error;
      console.log(`retrying in ${wait} ms after ${Code[error.code]} ${error.reason}`);
      await sleep(wait);
    }
  }
}

function bynnInvitation(email: string, requestId: string): SendInvitationRequest {
  return SendInvitationRequest.fromPartial({
    provider: Provider.PROVIDER_BYNN,
    requestId,
    reference: `onboarding-${requestId.slice(0, 8)}`,
    signers: [{ name: "Lena Jansen", email }],
    bynn: { workflowToken: "wf_demo_onboarding", channel: BynnChannel.BYNN_CHANNEL_EMAIL },
  });
}

async function send(target: string): Promise<void> {
  const client = new InvitationServiceClient(target, credentials.createInsecure());
  const request = bynnInvitation("lena.jansen@example.com", randomUUID());
  const first = await sendWithRetries(client, request);
  const invitation = first.invitations[0];
  console.log(`sent ${invitation.id} state ${invitationStateToJSON(invitation.state)}`);

  // A retry after a lost answer: the same request_id returns the first
  // outcome, and Bynn is not asked twice.
  const again = await sendWithRetries(client, request);
  console.log(`retried with the same request_id: ${again.invitations[0].id} (same: ${again.invitations[0].id === invitation.id})`);

  try {
    await sendWithRetries(client, bynnInvitation("not-an-email", randomUUID()));
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    console.log(`refused as expected:\n${error.toString()}`);
  }
  client.close();
}

async function watch(target: string, cursorFile: string, wanted: number, seconds: number): Promise<void> {
  const client = new EventServiceClient(target, credentials.createInsecure());
  const cursor = existsSync(cursorFile) ? readFileSync(cursorFile, "utf8").trim() : "";
  console.log(`watching from ${cursor ? "cursor " + cursor : "now"}`);
  // A real consumer watches for good; the example stops after a while.
  const stream = client.watchEvents(WatchEventsRequest.fromPartial({ afterCursor: cursor }), {
    deadline: new Date(Date.now() + seconds * 1000),
  });
  let seen = 0;
  try {
    for await (const event of stream) {
      console.log(
        `event ${eventTypeToJSON(event.type as EventType)} ${event.providerEvent} document ${event.documentId} invitation ${event.invitationId}`,
      );
      // Saved after each event is handled: a crash replays at most it.
      writeFileSync(`${cursorFile}.tmp`, event.cursor);
      renameSync(`${cursorFile}.tmp`, cursorFile);
      if (++seen >= wanted) break;
    }
    console.log(`${seen} event(s); cursor saved in ${cursorFile}`);
  } catch (raw) {
    const error = GatewayError.from(raw as ServiceError);
    if (error.code !== Code.DEADLINE_EXCEEDED) throw error;
    console.log(`${seen} event(s) before the example's time ran out; cursor in ${cursorFile}`);
  } finally {
    stream.cancel();
    client.close();
  }
}

async function main(): Promise<void> {
  const [target, command, cursorFile = "events.cursor", events = "1", seconds = "30"] = process.argv.slice(2);
  if (command === "send") await send(target);
  else if (command === "watch") await watch(target, cursorFile, Number(events), Number(seconds));
  else throw new Error("usage: example.js HOST:PORT send|watch [cursor-file] [events] [seconds]");
}

main().catch((error) => {
  console.error(error instanceof GatewayError ? error.toString() : error);
  process.exit(1);
});
