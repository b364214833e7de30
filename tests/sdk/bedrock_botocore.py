"""The Bedrock fake checked against AWS's own code (botocore), without any network.

1. A request signed by botocore's SigV4Auth (a cross-region profile id with `:` in the path)
   is accepted by the fake, whose verifier is its own (testkit/src/sigv4.rs); the same
   request with one byte of the body changed, or signed with another secret, gets Bedrock's
   403 InvalidSignatureException.
2. The fake's ConverseStream frames, read with botocore's EventStreamBuffer (which checks both
   CRCs), give the events of a Converse stream in order; an exception frame decodes as one.

Needs: the fake-upstream binary ($FAKE_UPSTREAM_BIN, default target/release/fake-upstream),
botocore. Prints `N passed, N failed`.
"""

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer

REPO = Path(__file__).resolve().parents[2]
FAKE_BIN = os.environ.get("FAKE_UPSTREAM_BIN", str(REPO / "target" / "release" / "fake-upstream"))
SECRET = "test-secret-0123456789abcdef"
MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
RESULTS: list[tuple[str, bool]] = []


def check(name, fn):
    try:
        fn()
        RESULTS.append((name, True))
        print(f"ok   {name}", flush=True)
    except Exception as e:  # noqa: BLE001
        RESULTS.append((name, False))
        print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)


def send(base, op, body: dict, secret=SECRET, tamper=False):
    data = json.dumps(body).encode()
    url = f"{base}/model/{MODEL}/{op}"
    req = AWSRequest(method="POST", url=url, data=data, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials("AKIDEXAMPLE", secret), "bedrock", "us-east-1").add_auth(req)
    if tamper:
        data = data.replace(b"Hi", b"Ho")
    out = urllib.request.Request(url, data=data, method="POST", headers=dict(req.headers.items()))
    try:
        with urllib.request.urlopen(out, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def frames(raw: bytes):
    buf = EventStreamBuffer()
    buf.add_data(raw)
    return [(m.headers, m.payload) for m in buf]


def main() -> int:
    fake = subprocess.Popen([FAKE_BIN, "--provider", "bedrock", "--listen", "127.0.0.1:0", "--api-key", SECRET],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = fake.stdout.readline()
        base = line.strip().removeprefix("listening on ")
        ask = {"messages": [{"role": "user", "content": [{"text": "Hi there"}]}]}

        def botocore_signed_is_accepted():
            status, _, body = send(base, "converse", ask)
            assert status == 200, (status, body)
            assert json.loads(body)["output"]["message"]["content"][0]["text"] == "Hello! You said: Hi there"

        def a_changed_body_or_secret_is_refused():
            for kw in ({"tamper": True}, {"secret": "another-secret-0123456789"}):
                status, headers, body = send(base, "converse", ask, **kw)
                assert status == 403, (kw, status, body)
                kind = {k.lower(): v for k, v in headers.items()}["x-amzn-errortype"]
                assert kind.startswith("InvalidSignatureException"), kind
                assert "signature we calculated does not match" in json.loads(body)["message"]

        def stream_frames_decode_with_botocore():
            status, headers, raw = send(base, "converse-stream", ask)
            assert status == 200, (status, raw)
            assert headers.get("content-type") == "application/vnd.amazon.eventstream", headers
            got = frames(raw)
            types = [h[":event-type"] for h, _ in got]
            assert types[0] == "messageStart" and types[-2:] == ["messageStop", "metadata"], types
            text = "".join(json.loads(p)["delta"].get("text", "") for h, p in got
                           if h[":event-type"] == "contentBlockDelta")
            assert text == "Hello! You said: Hi there", text
            assert all(h[":message-type"] == "event" and h[":content-type"] == "application/json" for h, _ in got)

        def an_exception_frame_decodes_as_one():
            body = {"messages": [{"role": "user", "content": [{"text": "THROTTLE say several words"}]}]}
            _, _, raw = send(base, "converse-stream", body)
            last_headers, last_payload = frames(raw)[-1]
            assert last_headers[":message-type"] == "exception", last_headers
            assert last_headers[":exception-type"] == "throttlingException", last_headers
            assert "Too many tokens" in json.loads(last_payload)["message"]

        check("botocore_signed_request_is_accepted", botocore_signed_is_accepted)
        check("changed_body_or_secret_is_403_invalid_signature", a_changed_body_or_secret_is_refused)
        check("stream_frames_decode_with_botocore", stream_frames_decode_with_botocore)
        check("exception_frame_decodes_with_botocore", an_exception_frame_decodes_as_one)
    finally:
        fake.terminate()
        fake.wait(timeout=10)
    passed = sum(ok for _, ok in RESULTS)
    print(f"{passed} passed, {len(RESULTS) - passed} failed")
    return 0 if passed == len(RESULTS) and RESULTS else 1


if __name__ == "__main__":
    sys.exit(main())
