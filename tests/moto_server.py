"""A real S3-compatible server for the tests and the benches: moto in server
mode, from the project venv (`make setup` installs it)."""

import json
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


class MotoServer:
    """A real S3-compatible server: moto in server mode on a free loopback
    port (scripts/moto_server.py: one request at a time, so conditional
    writes are atomic as on S3), run by the project venv's Python (whichever
    interpreter runs the tests), and killed when the session ends."""

    ACCESS_KEY = "testing"
    SECRET_KEY = "moto-secret-never-printed"
    REGION = "us-east-1"

    def __init__(self):
        import socket
        import time

        python = REPO / ".venv" / "bin" / "python"
        probe = subprocess.run([str(python), "-c", "import moto.server"], capture_output=True)
        if probe.returncode != 0:
            raise RuntimeError(f"{python} has no moto[server]: run `make setup`")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.process = subprocess.Popen(
            [str(python), str(REPO / "scripts" / "moto_server.py"), "-H", "127.0.0.1", "-p",
             str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"moto did not start on port {self.port}")
                time.sleep(0.1)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _s3(self, *args: str) -> str:
        """Runs one S3 call with boto3 from the project venv (whichever
        interpreter runs the tests; the per-Spark venvs have no boto3)."""
        code = (
            "import boto3, sys, json\n"
            "s3 = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2],\n"
            "    aws_secret_access_key=sys.argv[3], region_name=sys.argv[4])\n"
            "op, bucket, arg = sys.argv[5:8]\n"
            "if op == 'create':\n"
            "    s3.create_bucket(Bucket=bucket)\n"
            "elif op == 'list':\n"
            "    keys = []\n"
            "    for page in s3.get_paginator('list_objects_v2').paginate(Bucket=bucket, Prefix=arg):\n"
            "        keys += [o['Key'] for o in page.get('Contents', [])]\n"
            "    print(json.dumps(keys))\n"
            "elif op == 'get':\n"
            "    sys.stdout.buffer.write(s3.get_object(Bucket=bucket, Key=arg)['Body'].read())\n"
        )
        python = REPO / ".venv" / "bin" / "python"
        proc = subprocess.run(
            [str(python), "-c", code, self.endpoint, self.ACCESS_KEY, self.SECRET_KEY,
             self.REGION, *args], capture_output=True, text=True)
        if proc.returncode != 0:
            raise AssertionError(f"S3 {args}: {proc.stderr[-2000:]}")
        return proc.stdout

    def create_bucket(self, bucket: str) -> str:
        """Creates `bucket` and returns `s3://bucket`."""
        self._s3("create", bucket, "")
        return f"s3://{bucket}"

    def list_keys(self, bucket: str, prefix: str = "") -> list:
        """Every object key under `prefix` in `bucket`, sorted."""
        return sorted(json.loads(self._s3("list", bucket, prefix)))

    def get(self, bucket: str, key: str) -> bytes:
        """The object's bytes (text: indexes are JSON)."""
        return self._s3("get", bucket, key).encode()

    def storage_options(self) -> dict:
        """object_store's option names for this server."""
        return self.options_for(self.endpoint)

    @classmethod
    def options_for(cls, endpoint: str) -> dict:
        """object_store's option names for the server at `endpoint` (for a
        process that has the endpoint but not the server object)."""
        return {
            "aws_endpoint": endpoint,
            "aws_allow_http": "true",
            "aws_access_key_id": cls.ACCESS_KEY,
            "aws_secret_access_key": cls.SECRET_KEY,
            "aws_region": cls.REGION,
        }

    def stop(self):
        self.process.kill()
        self.process.wait()
